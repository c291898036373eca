import assert from "node:assert/strict";
import { join } from "node:path";
import { createModelConfig, evaluate, fineTune, saveModelFolder } from "./api.ts";
import { loadModel } from "./checkpoint.ts";
import { initWeights } from "./weights.ts";
import { runTraining } from "./run.ts";
import { DEFAULT_TRAIN_OPTIONS, Trainer } from "./trainer.ts";
import { learningRateAt } from "./schedule.ts";
import { accuracy } from "./data/metrics.ts";
import type { Dataset } from "./data/dataset.ts";
import { loadTokenizer, tokenizerFromVocab } from "../tokenizer/mod.ts";
import { GPU_TEST, testGpu } from "../tests/util.ts";

const tokenizer = tokenizerFromVocab([
  "[PAD]",
  "[UNK]",
  "[CLS]",
  "[SEP]",
  "good",
  "bad",
  "film",
  "plot",
  "very",
]);
const WORDS = ["good", "bad", "film", "plot", "very"];

/** Seeded-looking but fixed toy data: the label is whether "good" occurs. */
function toyData(n: number, name = "toy"): Dataset {
  const examples = Array.from({ length: n }, (_, i) => {
    const text = [WORDS[i % 5], WORDS[(i * 3 + 1) % 5], WORDS[(i * 7 + 2) % 5]].join(" ");
    return { text, label: text.includes("good") ? 1 : 0 };
  });
  return { name, labels: ["bad", "good"], examples };
}

function toyModel(seed = 1) {
  const config = createModelConfig({ vocabSize: tokenizer.vocabSize, labels: ["bad", "good"] });
  return { config, weights: initWeights(config, seed) };
}

const RECIPE = { epochs: 2, batchSize: 4, maxLength: 6, lr: 1e-3, seed: 3 } as const;

Deno.test("createModelConfig() builds a tiny or base config with the labels and validates its inputs", () => {
  const tiny = createModelConfig({ vocabSize: 50, labels: ["a", "b", "c"], dropout: 0 });
  assert.deepEqual(
    [tiny.vocab_size, tiny.hidden_size, tiny.num_hidden_layers, tiny.hidden_dropout_prob, tiny.label2id],
    [50, 64, 2, 0, { a: 0, b: 1, c: 2 }],
  );
  const base = createModelConfig({ vocabSize: 30522, size: "base", config: { num_hidden_layers: 3 } });
  assert.deepEqual([base.hidden_size, base.num_hidden_layers, base.id2label], [768, 3, {
    "0": "LABEL_0",
    "1": "LABEL_1",
  }]);
  assert.equal(createModelConfig({ vocabSize: 5, labels: ["score"] }).problem_type, "regression");
  assert.throws(
    () => createModelConfig({ vocabSize: 0 }),
    { name: "RangeError", message: /vocabSize 0 must be a positive integer/ },
  );
  // @ts-expect-error: an unknown size preset
  assert.throws(() => createModelConfig({ vocabSize: 5, size: "huge" }), {
    name: "RangeError",
    message: /size "huge" is unknown/,
  });
  assert.throws(
    () => createModelConfig({ vocabSize: 5, config: { hidden_size: 30 } }),
    { name: "RangeError", message: /hidden_size 30 is not a multiple of num_attention_heads 4/ },
  );
});

Deno.test("fineTune() rejects bad arguments before touching the GPU, naming the value and the fix", async () => {
  const data = { train: toyData(8) };
  const model = toyModel();
  await assert.rejects(
    // @ts-expect-error: a misspelled option
    () => fineTune(model, data, { tokenizer, batch_size: 4 }),
    { name: "TypeError", message: /unknown option "batch_size"/ },
  );
  await assert.rejects(() => fineTune(model, data, {}), {
    name: "TypeError",
    message: /options.tokenizer is missing/,
  });
  await assert.rejects(
    () => fineTune(model, data, { tokenizer, batchSize: 0 }),
    (e: Error) =>
      e instanceof RangeError && /fineTune\(\): batchSize must be an integer >= 1, got 0/.test(e.message),
  );
  await assert.rejects(
    () => fineTune(model, { train: { ...toyData(8), labels: ["a", "b", "c"] } }, { tokenizer }),
    { name: "RangeError", message: /the model has 2 labels \(bad, good\) but the data has 3/ },
  );
  await assert.rejects(
    () =>
      fineTune(model, data, {
        tokenizer: tokenizerFromVocab(
          [...Array(80).keys()].map(String).concat(["[PAD]", "[UNK]", "[CLS]", "[SEP]"]),
        ),
      }),
    { name: "RangeError", message: /tokenizer has 84 tokens but the model's vocab_size is 9/ },
  );
  await assert.rejects(() => fineTune(model, data, { tokenizer, resume: true }), {
    name: "TypeError",
    message: /resume needs/,
  });
  // @ts-expect-error: data without train
  await assert.rejects(() => fineTune(model, {}, { tokenizer }), {
    name: "TypeError",
    message: /data.train is undefined/,
  });
  await assert.rejects(() => fineTune(null as never, data, { tokenizer }), {
    name: "TypeError",
    message: /model is null/,
  });
  await assert.rejects(
    () => fineTune("/no/such/model", data),
    { name: "NotFound", message: /"\/no\/such\/model\/config.json"/ },
  );
});

Deno.test({
  name:
    "fineTune() trains exactly as runTraining() with the tutorial defaults and removes its temporary folder",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const data = { train: toyData(12), validation: toyData(6, "val"), tests: { test: toyData(5, "test") } };
    const written: string[] = [];
    const steps: number[] = [];
    const result = await fineTune(toyModel(), data, {
      ...RECIPE,
      tokenizer,
      gpu,
      onStep: (log, p) => steps.push(log.step + 100 * p.totalSteps),
      onMessage: (m) => written.push(m),
    });
    const tmp = await Deno.makeTempDir();
    try {
      const reference = await runTraining(gpu, toyModel(), tokenizer, data, {
        ...DEFAULT_TRAIN_OPTIONS,
        ...RECIPE,
        output: tmp,
      });
      assert.deepEqual(result.steps, reference.steps);
      assert.deepEqual(result.tests, reference.tests);
      assert.deepEqual(result.epochs.map((e) => e.validation), reference.epochs.map((e) => e.validation));
      const saved = await loadModel(tmp);
      for (const [name, w] of saved.weights) assert.deepEqual(result.weights.get(name), w, name);
      assert.deepEqual(steps, [601, 602, 603, 604, 605, 606]);
      // The run folder was temporary: it is gone and the result says so.
      assert.equal(result.output, null);
      assert.equal(result.stopped, null);
      const folder = written.find((m) =>
        m.startsWith("checkpoint written: ")
      )!.slice(20).split("/checkpoints/")[0];
      assert.equal(await Deno.stat(folder).then(() => true, () => false), false, `${folder} still exists`);
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test({
  name: "fineTune() uses warmupRatio instead of the default warmupSteps, and keepOutput keeps the run folder",
  ...GPU_TEST,
  fn: async () => {
    const result = await fineTune(toyModel(), { train: toyData(8) }, {
      ...RECIPE,
      warmupRatio: 0.5,
      tokenizer,
      keepOutput: true,
      gpu: await testGpu(),
    });
    try {
      const totalSteps = 4;
      const expected = [0, 1, 2, 3].map((s) =>
        learningRateAt(s, { lr: RECIPE.lr, warmupSteps: 2, totalSteps })
      );
      assert.deepEqual(result.steps.map((s) => s.learning_rate), expected);
      assert.ok(result.output !== null);
      const args = JSON.parse(await Deno.readTextFile(join(result.output, "training_args.json")));
      assert.equal(args.warmupRatio, 0.5);
      assert.equal(args.warmupSteps, undefined);
      // The tokenizer's files travel with the model, so the folder is self-contained.
      const reloaded = await loadTokenizer(result.output);
      assert.deepEqual(reloaded.encode("very good film").ids, tokenizer.encode("very good film").ids);
    } finally {
      if (result.output) await Deno.remove(result.output, { recursive: true });
    }
  },
});

Deno.test({
  name: "fineTune() stops cleanly on an aborted signal and resumes to the uninterrupted result",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const output = await Deno.makeTempDir();
    try {
      const data = { train: toyData(16) };
      const full = await fineTune(toyModel(), data, { ...RECIPE, tokenizer, gpu });
      const controller = new AbortController();
      const cut = await fineTune(toyModel(), data, {
        ...RECIPE,
        tokenizer,
        gpu,
        output,
        onStep: (log) => log.step === 2 && controller.abort(),
        signal: controller.signal,
      });
      assert.ok(cut.stopped !== null && cut.stopped.step < 8, `stopped at ${JSON.stringify(cut.stopped)}`);
      assert.equal(cut.output, output);
      assert.deepEqual(cut.tests, {});
      const rest = await fineTune(output, data, { ...RECIPE, tokenizer, gpu, output, resume: true });
      assert.equal(rest.stopped, null);
      assert.deepEqual(rest.steps.map((s) => s.loss), full.steps.map((s) => s.loss));
      for (const [name, w] of full.weights) assert.deepEqual(rest.weights.get(name), w, name);
    } finally {
      await Deno.remove(output, { recursive: true });
    }
  },
});

Deno.test({
  name: "evaluate() gives the Trainer's figures for a model in memory and for its saved folder",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const model = toyModel(5);
    const data = toyData(10);
    const inMemory = await evaluate(model, data, { tokenizer, gpu, batchSize: 4 });
    const trainer = new Trainer(gpu, model.config, model.weights, tokenizer, {
      ...DEFAULT_TRAIN_OPTIONS,
      batchSize: 4,
      maxLength: 64,
      dynamicPadding: true,
      shuffle: false,
    });
    assert.deepEqual(inMemory, await trainer.evaluate(data));
    assert.equal(inMemory.accuracy, accuracy(inMemory.predictions, data.examples.map((e) => e.label)));

    const dir = await saveModelFolder(await Deno.makeTempDir(), model, { tokenizer });
    try {
      const fromFolder = await evaluate(dir, data, { gpu, batchSize: 4 });
      assert.deepEqual(fromFolder, inMemory);
      await assert.rejects(
        () => evaluate(dir, { ...data, labels: ["a", "b", "c"] }, { gpu }),
        { name: "RangeError", message: /has 2 labels but the data has 3/ },
      );
      await assert.rejects(() => evaluate(model, data, { gpu }), {
        name: "TypeError",
        message: /options.tokenizer is missing/,
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
