/**
 * Crash safety of `deno task train`: the CLI runs in a subprocess that the test kills with SIGKILL
 * mid-epoch and inside checkpoint writes (made deterministic by the test hook of `train/atomic.ts`,
 * which pauses an atomic write between its flushed temporary file and the rename). After each kill
 * the previous checkpoint must still load, and `--resume` must end with the weights of an
 * uninterrupted run, bit for bit (same adapter, same kernels, same order of operations).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadModel, loadTrainingState } from "./checkpoint.ts";
import { latestCheckpoint } from "./run.ts";
import { PAUSE_BEFORE_RENAME_ENV } from "./atomic.ts";
import { assertClose } from "../tests/util.ts";

const MAIN = new URL("./main.ts", import.meta.url).pathname;
const fixture = new URL("../tests/fixtures/training/", import.meta.url).pathname;
// Two epochs of 18 steps; dropout and shuffling on, so the resume must replay their random streams.
const RECIPE = [
  ...["--model", fixture, "--data", join(fixture, "train.tsv"), "--max-length", "8", "--batch-size", "4"],
  ...["--epochs", "2", "--dropout", "0.1", "--lr", "1e-3", "--seed", "3"],
];
const EPOCH_1 = "step-000018";
const EPOCH_2 = "step-000036";

/** A training subprocess whose output the test can wait on. */
interface Training {
  /** Resolves once `pattern` matched `count` times in stdout + stderr; rejects if the process exits first. */
  waitFor(pattern: RegExp, count?: number): Promise<void>;
  /** SIGKILL (unless it has exited), then the exit code; 137 means the kill did it. */
  kill(): Promise<number>;
  /** The exit status (and all output). */
  done: Promise<{ code: number; output: string }>;
}

function train(output: string, extra: string[] = [], env: Record<string, string> = {}): Training {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...RECIPE, "--output", output, ...extra],
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const sink = (stream: ReadableStream<Uint8Array>) =>
    stream.pipeThrough(new TextDecoderStream()).pipeTo(
      new WritableStream({ write: (t) => void (text += t) }),
    );
  const drained = Promise.all([sink(child.stdout), sink(child.stderr)]);
  let exited = false;
  const done = child.status.then(async (s) => {
    exited = true;
    await drained;
    return { code: s.code, output: text };
  });
  return {
    done,
    async waitFor(pattern, count = 1) {
      const global = new RegExp(pattern.source, "g");
      const deadline = Date.now() + 60_000;
      while ((text.match(global)?.length ?? 0) < count) {
        if (exited || Date.now() > deadline) {
          const why = exited ? "exited" : "was still running after 60 s";
          throw new Error(`Training ${why} before printing ${pattern} ${count} time(s):\n${text}`);
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    async kill() {
      if (!exited) child.kill("SIGKILL");
      return (await done).code;
    },
  };
}

/** Asserts that checkpoints/latest.json names `step` and that its model and training state load. */
async function assertCheckpoint(out: string, step: string): Promise<void> {
  const latest = await latestCheckpoint(out);
  assert.equal(latest, join(out, "checkpoints", step));
  const model = await loadModel(latest!);
  assert.equal(model.initialized.length, 0, `"${latest}" lacks ${model.initialized}`);
  const state = await loadTrainingState(latest!);
  assert.deepEqual([state.step, state.epoch, state.batchInEpoch], [18, 1, 0]);
  assert.ok(state.moments.size > 0);
}

/** Every file under `dir`, relative. */
async function files(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isDirectory) out.push(...await files(join(dir, e.name), `${prefix}${e.name}/`));
    else out.push(`${prefix}${e.name}`);
  }
  return out.sort();
}

Deno.test({
  name: "train/main.ts killed mid-epoch and inside checkpoint writes resumes to the uninterrupted weights",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    const tmp = await Deno.makeTempDir({ prefix: "crash_test_" });
    const full = join(tmp, "full");
    const cut = join(tmp, "cut");
    // The uninterrupted run goes on beside the interrupted ones.
    const baseline = train(full);
    try {
      // The interrupted runs must die by the kill (exit code 137), not finish or fail first.
      const killed = async (run: Training) => assert.equal(await run.kill(), 137, (await run.done).output);

      await t.step("SIGKILL mid-epoch 2 keeps the epoch 1 checkpoint current", async () => {
        const run = train(cut);
        // The first step line of epoch 2 is printed after the epoch 1 checkpoint and 1 of 18 steps.
        await run.waitFor(/Epoch 2 \/ 2 =+\n\s+step 1\/18/);
        await killed(run);
        await assertCheckpoint(cut, EPOCH_1);
        const metrics = JSON.parse(await Deno.readTextFile(join(cut, "metrics.json")));
        assert.equal(metrics.steps.length, 18, "the kill landed after epoch 2's checkpoint");
      });

      await t.step(
        "SIGKILL between a step folder's model and training state keeps the old checkpoint",
        async () => {
          const run = train(cut, ["--resume"], { [PAUSE_BEFORE_RENAME_ENV]: "training_state.safetensors" });
          await run.waitFor(/test hook: paused before renaming/);
          await killed(run);
          await assertCheckpoint(cut, EPOCH_1);
          // The kill landed inside the window: the new folder has its weights, not yet its state.
          const partial = await files(join(cut, "checkpoints", EPOCH_2));
          assert.ok(partial.includes("model.safetensors"), partial.join());
          assert.ok(!partial.includes("training_state.safetensors"), partial.join());
          assert.ok(partial.some((f) => f.startsWith("training_state.safetensors.tmp-")), partial.join());
        },
      );

      await t.step("SIGKILL before the latest.json rename keeps the old checkpoint", async () => {
        const run = train(cut, ["--resume"], { [PAUSE_BEFORE_RENAME_ENV]: "latest.json" });
        await run.waitFor(/test hook: paused before renaming/);
        await killed(run);
        await assertCheckpoint(cut, EPOCH_1);
        const complete = await files(join(cut, "checkpoints", EPOCH_2));
        assert.ok(complete.includes("training_state.safetensors"), complete.join());
        const left = await files(join(cut, "checkpoints"));
        assert.ok(left.some((f) => f.startsWith("latest.json.tmp-")), left.join());
      });

      await t.step("--resume ends with the uninterrupted run's weights and leaves no debris", async () => {
        const resumed = await train(cut, ["--resume"]).done;
        assert.equal(resumed.code, 0, resumed.output);
        assert.match(
          resumed.output,
          new RegExp(`resuming from .*${EPOCH_1} \\(step 18, epoch 2, batch 0\\)`),
        );
        const uninterrupted = await baseline.done;
        assert.equal(uninterrupted.code, 0, uninterrupted.output);
        const a = await loadModel(full);
        const b = await loadModel(cut);
        for (const [name, w] of a.weights) assertClose(b.weights.get(name)!, w, { abs: 0, rel: 0 }, name);
        const losses = async (dir: string) =>
          JSON.parse(await Deno.readTextFile(join(dir, "metrics.json"))).steps.map((s: { loss: number }) =>
            s.loss
          );
        assertClose(await losses(cut), await losses(full), { abs: 0, rel: 0 }, "step losses");
        // One checkpoint left, and no temporary file of the killed writers anywhere.
        const left = await files(cut);
        assert.deepEqual(
          left.filter((f) => f.startsWith("checkpoints/") && !f.startsWith(`checkpoints/${EPOCH_2}/`)),
          [
            "checkpoints/latest.json",
          ],
        );
        assert.deepEqual(left.filter((f) => f.includes(".tmp-")), []);
      });
    } finally {
      await baseline.kill();
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
