import assert from "node:assert/strict";
import {
  accepted,
  cliExitCode,
  type Flag,
  namedPath,
  nearestFlag,
  parseFlags,
  UsageError,
  VERSION,
} from "./cli.ts";

const FLAGS: Record<string, Flag> = {
  epochs: { type: "int", min: 1, default: 4, help: "" },
  lr: { type: "number", above: 0, help: "" },
  shift: { type: "number", help: "A number where negatives make sense" },
  split: { type: "number", min: 0, below: 1, help: "" },
  scheduler: { type: "string", choices: ["linear", "cosine"], default: "linear", help: "" },
  "test-data": { type: "string", multiple: true, help: "" },
  quiet: { type: "boolean", help: "" },
};

function usage(args: string[], pattern: RegExp) {
  assert.throws(
    () => parseFlags(args, FLAGS),
    (e: Error) => e instanceof UsageError && pattern.test(e.message),
  );
}

Deno.test("parseFlags() parses negatives where allowed, repeats, snake_case and = forms", () => {
  const { values } = parseFlags(
    ["--shift", "-2.5", "--test_data", "a=x.tsv", "--test-data=b=y.tsv", "--quiet", "--lr", "1e-3"],
    FLAGS,
  );
  assert.deepEqual(values, {
    epochs: 4,
    lr: 1e-3,
    shift: -2.5,
    split: undefined,
    scheduler: "linear",
    "test-data": ["a=x.tsv", "b=y.tsv"],
    quiet: true,
  });
  assert.equal(parseFlags(["-h"], FLAGS).help, true);
  assert.equal(parseFlags(["--version"], FLAGS).version, true);
});

Deno.test("parseFlags() errors name the flag, the value and what is accepted", () => {
  usage(["--lr", "-1"], /^--lr "-1" is not accepted: expected a number > 0$/);
  usage(["--epochs", "abc"], /^--epochs "abc" is not accepted: expected an integer >= 1$/);
  usage(["--epochs", "1.5"], /expected an integer >= 1/);
  usage(["--split", "1"], /^--split "1" is not accepted: expected a number in \[0, 1\)$/);
  usage(["--scheduler", "step"], /expected one of linear, cosine/);
  usage(["--epochs"], /^--epochs needs a value: expected an integer >= 1$/);
  usage(["--epochs", "--quiet"], /--epochs needs a value/);
  usage(["--quiet=yes"], /--quiet takes no value/);
  usage(["--epoch", "3"], /^Unknown flag --epoch: did you mean --epochs\?/);
  usage(["--num_train_epochs", "3"], /did you mean --epochs\?/);
  usage(["--zzzzzzzz"], /^Unknown flag --zzzzzzzz \(run with --help/);
  usage(["stray"], /Unexpected argument "stray"/);
  for (const e of [/\n/]) assert.ok(!e.test(accepted(FLAGS.split)));
});

Deno.test("nearestFlag() and namedPath()", () => {
  assert.equal(nearestFlag("batch-sise", ["batch-size", "eval-batch-size"]), "batch-size");
  assert.equal(nearestFlag("learning-rate", ["lr"]), "lr");
  assert.deepEqual(namedPath("test-data", "dev=data/dev.tsv"), { name: "dev", path: "data/dev.tsv" });
  assert.deepEqual(namedPath("test-data", "data/dev.tsv"), { name: "dev", path: "data/dev.tsv" });
  assert.deepEqual(namedPath("test-data", "https://x.org/a.tsv?b=c"), {
    name: "a",
    path: "https://x.org/a.tsv?b=c",
  });
});

Deno.test("cliExitCode(): 0 for --help and --version, 2 for usage errors, 1 for other errors", async () => {
  const lines: string[] = [];
  const [log, error] = [console.log, console.error];
  console.log = console.error = (...a: unknown[]) => lines.push(a.join(" "));
  try {
    const run = (args: string[], body = () => Promise.resolve()) => cliExitCode(args, "usage", FLAGS, body);
    assert.equal(await run(["--help"]), 0);
    assert.match(lines.at(-1)!, /-h, --help/);
    assert.equal(await run(["--version"]), 0);
    assert.equal(
      lines.at(-1),
      `bert-webgpu ${VERSION} (deno ${Deno.version.deno}, v8 ${Deno.version.v8}, typescript ${Deno.version.typescript})`,
    );
    assert.equal(await run(["--epochs", "0"]), 2);
    assert.equal(lines.at(-1), 'error: --epochs "0" is not accepted: expected an integer >= 1');
    assert.equal(await run([], () => Promise.reject(new UsageError("bad"))), 2);
    assert.equal(await run([], () => Promise.reject(new Error("boom"))), 1);
  } finally {
    [console.log, console.error] = [log, error];
  }
  const denoJson = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  assert.equal(VERSION, denoJson.version, "VERSION follows deno.json");
});
