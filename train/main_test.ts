/**
 * `deno task train` end to end, in process: the PyTorch parity run through the real CLI, tokenizer and
 * data loader; flag errors; an unwritable output folder; a non-finite loss.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { main, TRAIN_FLAGS } from "./main.ts";
import { helpText, UsageError } from "./cli.ts";
import { floatTensor, readSafetensors } from "../formats/safetensors.ts";
import { loadModel } from "./checkpoint.ts";
import { NonFiniteLossError, Trainer } from "./trainer.ts";
import { parseTable } from "./data/tabular.ts";
import { wordTokenizer } from "../tests/word_tokenizer.ts";
import { PARITY_RECIPE } from "./trainer_test.ts";
import { assertClose, GPU_TEST } from "../tests/util.ts";
import { TRAINING_F32 } from "../tests/tolerance.ts";

const fixture = new URL("../tests/fixtures/training/", import.meta.url).pathname;

/** Runs main() with console output captured. */
async function run(args: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => lines.push(a.join(" "));
  try {
    return { code: await main(args), out: lines.join("\n") };
  } finally {
    console.log = log;
  }
}

async function expectUsage(args: string[], pattern: RegExp): Promise<void> {
  const err = await main(args).then(() => null, (e) => e as Error);
  if (!(err instanceof UsageError || err instanceof RangeError) || !pattern.test(err.message)) {
    throw new Error(`${JSON.stringify(args)}: expected an error matching ${pattern}, got ${err}`);
  }
}

Deno.test({
  name: "deno task train with --val-split 0 --no-shuffle --dropout 0 equals 20 PyTorch steps",
  ...GPU_TEST,
  fn: async () => {
    const out = await Deno.makeTempDir();
    try {
      const { code } = await run([
        ...["--model", fixture, "--data", join(fixture, "train.tsv"), "--output", out],
        ...["--val-split", "0", "--no-shuffle", "--dropout", "0", "--epochs", "1", "--batch-size", "4"],
        ...["--max-length", "8", "--lr", "3e-3", "--warmup-steps", "2", "--weight-decay", "0.01"],
      ]);
      if (code !== 0) throw new Error(`exit code ${code}`);
      const metrics = JSON.parse(await Deno.readTextFile(join(out, "metrics.json")));
      const expected = JSON.parse(await Deno.readTextFile(join(fixture, "steps.json")));
      for (const key of ["loss", "learning_rate", "grad_norm"]) {
        assertClose(
          metrics.steps.map((s: Record<string, number>) => s[key]),
          expected.map((s: Record<string, number>) => s[key]),
          TRAINING_F32,
          key,
        );
      }
      const final = await readSafetensors(join(fixture, "final.safetensors"));
      const trained = await loadModel(out);
      for (const [name, w] of trained.weights) assertClose(w, floatTensor(final, name), TRAINING_F32, name);
      // The run folder is a HF model folder with the tokenizer files and the training arguments.
      for (const f of ["config.json", "model.safetensors", "vocab.txt", "training_args.json", "loss.svg"]) {
        await Deno.stat(join(out, f));
      }
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test("deno task train names the flag at fault", async () => {
  const data = ["--data", join(fixture, "train.tsv"), "--model", fixture, "--max-length", "8"];
  await expectUsage(["--bogus"], /Unknown flag --bogus/);
  await expectUsage(["--epoch", "3"], /Unknown flag --epoch: did you mean --epochs\?/);
  await expectUsage(["--learning_rate", "1e-5"], /did you mean --lr\?/);
  await expectUsage(
    ["--batch-size", "0", ...data],
    /--batch-size "0" is not accepted: expected an integer >= 1/,
  );
  await expectUsage(["--lr=-1", ...data], /--lr "-1" is not accepted: expected a number > 0/);
  await expectUsage(["--lr", "-1", ...data], /--lr "-1" is not accepted: expected a number > 0/);
  await expectUsage(["--epochs", "two", ...data], /--epochs "two" is not accepted: expected an integer >= 1/);
  await expectUsage(["--epochs", "0", ...data], /--epochs "0" is not accepted: expected an integer >= 1/);
  await expectUsage(
    ["--lr-scheduler", "step"],
    /--lr-scheduler "step" is not accepted: expected one of linear, constant, cosine/,
  );
  await expectUsage(
    ["--task", "cola", "--data", join(fixture, "train.tsv")],
    /is not a zip: with --task cola, expected the CoLA zip/,
  );
  await expectUsage(
    ["--data", "nowhere.tsv"],
    /--data "nowhere.tsv": no such file or folder; expected a TSV, CSV or JSONL file/,
  );
  await expectUsage(
    ["--model", "./nowhere", ...data.slice(0, 2)],
    /--model ".\/nowhere": no such file or folder; expected a model folder with config.json/,
  );
  await expectUsage([...data, "--test-data", "dev=missing.tsv"], /--test-data "missing.tsv": no such file/);
  await expectUsage(
    [...data, "--val-split", "0", "--load-best-model-at-end"],
    /--load-best-model-at-end needs validation data/,
  );
  await expectUsage(
    [...data, "--max-length", "17"],
    /--max-length 17 exceeds the model's max_position_embeddings 16/,
  );
  await expectUsage(["--task", "squad"], /--task "squad" is unknown; the GLUE tasks are cola, sst2/);
  await expectUsage([], /Pass --task <GLUE task> or --data/);
  const help = helpText("usage", TRAIN_FLAGS);
  for (
    const flag of [
      "--model",
      "--task",
      "--epochs",
      "--batch-size",
      "--max-length",
      "--lr",
      "--eps",
      "--weight-decay",
      "--warmup-steps",
      "--warmup-ratio",
      "--max-grad-norm",
      "--seed",
      "--val-split",
      "--dropout",
      "--no-shuffle",
      "--dynamic-padding",
      "--grad-accum",
      "--output",
      "--resume",
      "--validation-data",
      "--test-data",
      "--eval-batch-size",
      "--max-train-samples",
      "--max-eval-samples",
      "--logging-steps",
      "--eval-steps",
      "--save-steps",
      "--lr-scheduler",
      "--load-best-model-at-end",
      "--metric-for-best-model",
      "--token",
      "--revision",
    ]
  ) {
    if (!help.includes(flag)) throw new Error(`--help lacks ${flag}`);
  }
  if (!help.includes("(default: 2e-5)") || !help.includes("(default: 32)")) {
    throw new Error("--help lacks defaults");
  }
});

Deno.test({
  name: "deno task train reports an unwritable output folder before training",
  ...GPU_TEST,
  fn: async () => {
    const file = await Deno.makeTempFile();
    try {
      const err = await main([
        "--model",
        fixture,
        "--data",
        join(fixture, "train.tsv"),
        "--max-length",
        "8",
        "--output",
        join(file, "run"),
      ])
        .then(() => null, (e) => e as Error);
      if (!err || !/Output folder ".*run" is not writable/.test(err.message)) throw new Error(`got ${err}`);
    } finally {
      await Deno.remove(file);
    }
  },
});

Deno.test({
  name: "Trainer.fit() stops on a non-finite loss and names the step",
  ...GPU_TEST,
  fn: async () => {
    const { testGpu } = await import("../tests/util.ts");
    const model = await loadModel(fixture);
    model.weights.get("classifier.weight")![0] = NaN;
    const data = parseTable(await Deno.readTextFile(join(fixture, "train.tsv")), "train.tsv", {
      textColumn: "sentence",
      labelColumn: "label",
    });
    const trainer = new Trainer(
      await testGpu(),
      model.config,
      model.weights,
      await wordTokenizer(join(fixture, "vocab.txt")),
      PARITY_RECIPE,
    );
    const err = await trainer.fit(data, null).then(() => null, (e) => e as Error);
    if (!(err instanceof NonFiniteLossError) || err.step !== 1 || !/became NaN at step 1/.test(err.message)) {
      throw new Error(`got ${err}`);
    }
  },
});

Deno.test({
  name: "deno task train downloads a hub model id through HF_ENDPOINT into the cache, then trains",
  ...GPU_TEST,
  fn: async () => {
    const { startHubServer } = await import("../tests/hub_server.ts");
    const files: Record<string, Uint8Array<ArrayBuffer>> = {};
    for (const f of ["config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json"]) {
      files[f] = await Deno.readFile(join(fixture, f));
    }
    const server = startHubServer({ "test-org/tiny-bert": { files, lfs: ["model.safetensors"] } });
    const tmp = await Deno.makeTempDir();
    const previous = Deno.env.get("HF_ENDPOINT");
    Deno.env.set("HF_ENDPOINT", server.origin);
    try {
      const args = [
        ...[
          "--model",
          "test-org/tiny-bert",
          "--data",
          join(fixture, "train.tsv"),
          "--cache-dir",
          join(tmp, "cache"),
        ],
        ...["--epochs", "1", "--batch-size", "8", "--max-length", "8", "--val-split", "0.2"],
      ];
      const first = await run([...args, "--output", join(tmp, "a")]);
      if (first.code !== 0) throw new Error(`exit code ${first.code}`);
      const fetched = server.requests.map((r) => r.path.split("/").pop()).sort().join();
      if (
        !fetched.includes("config.json") || !fetched.includes("model.safetensors") ||
        !fetched.includes("vocab.txt")
      ) {
        throw new Error(`requests: ${fetched}`);
      }
      // The second run is served from the cache: no model file is fetched again.
      const before = server.requests.length;
      const second = await run([...args, "--output", join(tmp, "b")]);
      if (
        second.code !== 0 || server.requests.some((r, i) => i >= before && /model\.safetensors$/.test(r.path))
      ) {
        throw new Error(`second run fetched again: ${JSON.stringify(server.requests.slice(before))}`);
      }
      if (!/Validation: accuracy/.test(first.out)) throw new Error(`no validation line in:\n${first.out}`);
      // An id the hub does not have names the URL and says how to use a local folder.
      const err = await main([...args, "--model", "test-org/missing", "--output", join(tmp, "c")]).then(
        () => null,
        (e) => e,
      );
      if (
        !err || !/test-org\/missing\/resolve\/main\//.test(err.message) ||
        !/config\.json/.test(err.message) || !/--model <folder>/.test(err.message)
      ) {
        throw new Error(`got ${err}`);
      }
    } finally {
      if (previous === undefined) Deno.env.delete("HF_ENDPOINT");
      else Deno.env.set("HF_ENDPOINT", previous);
      await server.close();
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test({
  name: "deno task train: validation/test files, sample caps, eval/save/logging steps, cosine, best model",
  ...GPU_TEST,
  fn: async () => {
    const out = await Deno.makeTempDir();
    const tsv = join(fixture, "train.tsv");
    try {
      const { code, out: printed } = await run([
        ...["--model", fixture, "--data", tsv, "--validation-data", tsv, "--validation-data", `more=${tsv}`],
        ...["--test-data", `dev=${tsv}`],
        ...[
          "--max-train-samples",
          "16",
          "--max-eval-samples",
          "8",
          "--batch-size",
          "4",
          "--eval-batch-size",
          "8",
        ],
        ...["--epochs", "2", "--max-length", "8", "--lr", "1e-3", "--lr-scheduler", "cosine", "--no-shuffle"],
        ...["--eval-steps", "3", "--save-steps", "3", "--logging-steps", "2", "--output", out],
        ...["--load-best-model-at-end", "--metric-for-best-model", "loss"],
      ]);
      assert.equal(code, 0);
      const metrics = JSON.parse(await Deno.readTextFile(join(out, "metrics.json")));
      assert.deepEqual(metrics.steps.map((s: { step: number }) => s.step), [1, 2, 3, 4, 5, 6, 7, 8]);
      // cosine (num_cycles 0.5, no warmup) over 8 steps
      metrics.steps.forEach((s: { step: number; learning_rate: number }) => {
        const want = 1e-3 * 0.5 * (1 + Math.cos(Math.PI * (s.step - 1) / 8));
        assert.ok(Math.abs(s.learning_rate - want) < 1e-12, `step ${s.step}: ${s.learning_rate} vs ${want}`);
      });
      // every 3 steps mid-epoch, plus each epoch end; 8 validation examples
      const main = metrics.evaluations.filter((e: { set?: string }) => e.set === undefined);
      assert.deepEqual(main.map((e: { step: number }) => e.step), [3, 4, 6, 8]);
      assert.ok(metrics.evaluations.every((e: { examples: number }) => e.examples === 8));
      // the second validation set is evaluated at the same steps, with the same figures (same file)
      const more = metrics.evaluations.filter((e: { set?: string }) => e.set === "more");
      assert.deepEqual(
        more.map((e: { step: number; loss: number }) => [e.step, e.loss]),
        main.map((e: { step: number; loss: number }) => [e.step, e.loss]),
      );
      assert.match(printed, /Validation \(more\) at step 4: accuracy/);
      const best = main.reduce((
        a: { loss: number },
        b: { loss: number },
      ) => (b.loss < a.loss ? b : a));
      assert.deepEqual(metrics.final.best_model, { step: best.step, metric: "loss", value: best.loss });
      assert.equal(metrics.final.tests.dev.examples, 8);
      // The run folder ends with the best weights.
      const [final, kept] = [await loadModel(out), await loadModel(join(out, "checkpoints", "best"))];
      for (const [name, w] of kept.weights) assert.deepEqual(final.weights.get(name), w, name);
      // Without a terminal: a line per logging step (2, 4, 6, 8) and at each epoch start and end.
      const lines = printed.split("\n").filter((l) => /^\s+step \d+\/4 \(\d+\/8 overall\)/.test(l));
      assert.deepEqual(lines.map((l) => Number(l.match(/\((\d+)\/8/)![1])), [1, 2, 4, 5, 6, 8]);
      assert.match(lines[1], /samples\/s {2}ETA \S+/);
      assert.match(printed, /Validation at step 3: accuracy/);
      const args = JSON.parse(await Deno.readTextFile(join(out, "training_args.json")));
      assert.equal(args.lrScheduler, "cosine");
      assert.equal(args.train_examples, 16);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});
