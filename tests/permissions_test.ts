// The proposed deno.json tasks (tests/permissions.ts) run the demo path under exactly their flags, as
// `deno task --eval "<task>"` subprocesses in the project root: a tiny demo (train + export) served for
// one request, and a tiny fine-tuning run evaluated and exported. Then the same flags must refuse what
// they do not grant: writing outside runs/, reaching a host other than the download hosts, and
// serving a folder outside runs/.
import assert from "node:assert/strict";
import { join } from "node:path";
import { FLAGS, TASKS } from "./permissions.ts";
import { freePort } from "./spawn.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const FIXTURE = "tests/fixtures/training";

interface Run {
  code: number;
  output: string;
}

/** A deno.json-style task string with `args`, run by deno's task shell from the project root. */
function task(command: string, args: string[], env: Record<string, string> = {}): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["task", "--eval", [command, ...args].join(" ")],
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

async function finish(child: Deno.ChildProcess): Promise<Run> {
  const { code, stdout, stderr } = await child.output();
  const text = new TextDecoder();
  return { code, output: text.decode(stdout) + text.decode(stderr) };
}

const run = (command: string, args: string[], env?: Record<string, string>) =>
  finish(task(command, args, env));

function assertRan(what: string, r: Run): void {
  assert.equal(r.code, 0, `${what} failed under its flags:\n${r.output}`);
  assert.doesNotMatch(r.output, /NotCapable|Requires \w+ access/, what);
}

function assertRefused(what: string, r: Run, message: RegExp): void {
  assert.notEqual(r.code, 0, `${what} should have been refused:\n${r.output}`);
  assert.match(r.output, message, what);
}

/** Starts the serve task on a free port and waits for /health; returns the child and its origin. */
async function serve(modelDir: string): Promise<{ child: Deno.ChildProcess; origin: string }> {
  const port = freePort();
  // PORT chooses the port, as `PORT=9000 deno task serve` does.
  const child = task(TASKS.serve, [], { MODEL_DIR: modelDir, PORT: String(port) });
  const origin = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const ok = await fetch(`${origin}/health`).then((r) => r.body?.cancel().then(() => r.ok), () => false);
    if (ok) return { child, origin };
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill("SIGTERM");
  throw new Error(`The serve task did not answer /health within 60 s:\n${(await finish(child)).output}`);
}

Deno.test({
  name: "TASKS run the demo path under exactly their permission flags and refuse the rest",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    const base = `runs/.permissions-test-${crypto.randomUUID().slice(0, 8)}`;
    const demo = `${base}/demo`;
    const trained = `${base}/train`;
    try {
      await t.step("demo (train + export) and train run", async () => {
        const [d, tr] = await Promise.all([
          run(TASKS.demo, ["--train-size", "64", "--epochs", "1", "--output", demo]),
          run(TASKS.train, [
            ...["--model", FIXTURE, "--data", `${FIXTURE}/train.tsv`, "--output", trained],
            ...["--max-length", "8", "--batch-size", "8", "--epochs", "1"],
          ]),
        ]);
        assertRan("demo", d);
        assertRan("train", tr);
        await Deno.stat(join(ROOT, demo, "export", "serve.json"));
        await Deno.stat(join(ROOT, trained, "model.safetensors"));
      });

      await t.step("eval and export of the trained model; serve answers for the demo's export", async () => {
        const evaluated = task(TASKS.eval, [
          "--model",
          trained,
          "--data",
          `${FIXTURE}/train.tsv`,
          "--max-length",
          "8",
        ]);
        const exported = task(TASKS.export, [
          "--model",
          trained,
          "--output",
          `${trained}/export`,
          "--max-length",
          "8",
        ]);
        const server = await serve(`${demo}/export`);
        try {
          const response = await fetch(`${server.origin}/classify`, {
            method: "POST",
            body: JSON.stringify({ text: "the dogs near the cat run ." }),
          });
          const reply = await response.json();
          assert.equal(response.status, 200, JSON.stringify(reply));
          assert.equal(reply.results.length, 1);
        } finally {
          server.child.kill("SIGTERM");
          await finish(server.child);
        }
        const [e, x] = await Promise.all([finish(evaluated), finish(exported)]);
        assertRan("eval", e);
        assert.match(e.output, /accuracy \d/);
        assertRan("export", x);
        await Deno.stat(join(ROOT, trained, "export", "model.int8.onnx"));
      });

      await t.step(
        "the flags refuse writes outside runs/, other hosts and folders outside runs/",
        async () => {
          const outside = await Deno.makeTempDir({ prefix: "permissions_test_" });
          const closedPort = freePort();
          try {
            const [write, net, read] = await Promise.all([
              run(TASKS.train, [
                ...["--model", FIXTURE, "--data", `${FIXTURE}/train.tsv`, "--output", `${outside}/run`],
                ...["--max-length", "8", "--epochs", "1"],
              ]),
              // A hub id is downloaded from HF_ENDPOINT: a host the flags do not list.
              run(TASKS.train, [
                "--model",
                "someone/bert",
                "--data",
                `${FIXTURE}/train.tsv`,
                "--output",
                `${base}/x`,
              ], {
                HF_ENDPOINT: `http://127.0.0.1:${closedPort}`,
              }),
              run(TASKS.serve, [], { MODEL_DIR: `${FIXTURE}`, PORT: String(freePort()) }),
            ]);
            assertRefused(
              "train --output outside runs/",
              write,
              new RegExp(`Requires write access to "${outside}/run`),
            );
            assertRefused(
              "a download from another host",
              net,
              new RegExp(`Requires net access to "127\\.0\\.0\\.1:${closedPort}"`),
            );
            assertRefused(
              "serving a folder outside runs/",
              read,
              /Requires read access to "tests\/fixtures\/training/,
            );
          } finally {
            await Deno.remove(outside, { recursive: true });
          }
        },
      );
    } finally {
      await Deno.remove(join(ROOT, base), { recursive: true }).catch(() => {});
    }
  },
});

Deno.test("FLAGS never grant everything", () => {
  for (const [name, flags] of Object.entries(FLAGS)) {
    assert.doesNotMatch(flags, /(^| )(-A|--allow-all|--allow-run|--allow-ffi)( |$)/, name);
    assert.doesNotMatch(flags, /--allow-(write|net|env)( |$)/, `${name}: unscoped write, net or env`);
  }
});

Deno.test("deno.json tasks use exactly the permission flags proven here", async () => {
  const { TASKS } = await import("./permissions.ts");
  const config = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  for (const [name, command] of Object.entries(TASKS)) {
    if (config.tasks[name] !== command) {
      throw new Error(
        `deno.json task "${name}" is\n  ${config.tasks[name]}\nbut tests/permissions.ts proves\n  ${command}`,
      );
    }
  }
});
