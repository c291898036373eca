/**
 * `precision: "f16"` end to end on the tiny training fixture: it follows the f32 run, skips a step
 * whose gradients overflow (GradScaler), fails clearly without shader-f16, and its weights export
 * through the same float32 path the f32 engine's logits agree with.
 */
import { Gpu } from "../kernels/runtime.ts";
import { Rng } from "../kernels/random.ts";
import { loadModel } from "./checkpoint.ts";
import { BertEngine } from "./model.ts";
import { Trainer, type TrainOptions } from "./trainer.ts";
import { parseTable } from "./data/tabular.ts";
import { buildBertOnnx } from "./export/bert_onnx.ts";
import { randomBatch, runLogits, web } from "./export/_test_util.ts";
import type { BertConfig } from "./config.ts";
import type { Weights } from "./weights.ts";
import { wordTokenizer } from "../tests/word_tokenizer.ts";
import { assertClose, GPU_TEST, testGpu } from "../tests/util.ts";
import { F16_TRAINING_LOSS, ONNX_F32 } from "../tests/tolerance.ts";

const dir = new URL("../tests/fixtures/training/", import.meta.url).pathname;

// 40 examples in batches of 4 for 5 epochs: 50 optimizer steps, dropout on, clipping on.
const RECIPE: TrainOptions = {
  epochs: 5,
  batchSize: 4,
  maxLength: 8,
  lr: 1e-3,
  eps: 1e-8,
  weightDecay: 0.01,
  warmupSteps: 5,
  maxGradNorm: 1.0,
  seed: 7,
  shuffle: true,
  dynamicPadding: false,
  gradAccum: 1,
};

async function setup(examples = 40) {
  const model = await loadModel(dir, { dropout: 0.1 });
  const all = parseTable(await Deno.readTextFile(`${dir}train.tsv`), "train.tsv", {
    textColumn: "sentence",
    labelColumn: "label",
  });
  const data = { ...all, examples: all.examples.slice(0, examples) };
  return { model, data, tokenizer: await wordTokenizer(`${dir}vocab.txt`) };
}

/** The f32 engine's logits for a random padded batch, and the batch. */
async function engineLogits(gpu: Gpu, config: BertConfig, weights: Weights) {
  const batch = randomBatch(new Rng(3), config, 3, 8);
  const engine = BertEngine.create(gpu, config, weights, { maxBatch: 3, maxSeqLen: 8 });
  engine.setBatch({
    inputIds: Int32Array.from(batch.inputIds),
    attentionMask: Int32Array.from(batch.attentionMask),
    tokenTypeIds: Int32Array.from(batch.tokenTypeIds),
    labels: new Float32Array(3),
    batchSize: 3,
    seqLen: 8,
  });
  gpu.run(engine.inferencePlan(3, 8).forward);
  return { batch, logits: await gpu.readF32(engine.logits, 3 * 2) };
}

Deno.test({
  name: "precision f16 follows the f32 run's losses over 50 steps, and its weights export like f32 ones",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const s = await setup();
    const run = async (precision: "f32" | "f16") => {
      const trainer = new Trainer(gpu, s.model.config, s.model.weights, s.tokenizer, {
        ...RECIPE,
        precision,
      });
      const { steps } = await trainer.fit(s.data, null);
      return { steps, weights: await trainer.weights(), trainer };
    };
    const f32 = await run("f32");
    const f16 = await run("f16");
    if (f16.steps.length !== 50 || f32.steps.length !== 50) {
      throw new Error(`expected 50 steps each, got f32 ${f32.steps.length}, f16 ${f16.steps.length}`);
    }
    // Every f16 step logs its scale; f32 steps log none.
    for (const step of f16.steps) {
      if (!(step.loss_scale! > 0) || typeof step.skipped !== "boolean") {
        throw new Error(`f16 step ${step.step} logs loss_scale ${step.loss_scale}, skipped ${step.skipped}`);
      }
    }
    if (f32.steps.some((x) => "loss_scale" in x || "skipped" in x)) throw new Error("f32 steps log a scale");
    assertClose(f16.steps.map((x) => x.loss), f32.steps.map((x) => x.loss), F16_TRAINING_LOSS, "step losses");
    // Training moved the weights: the comparison above is not between two untrained models.
    const first = f32.steps[0].loss;
    const last = f32.steps.at(-1)!.loss;
    if (!(last < first)) throw new Error(`f32 loss did not fall: ${first} -> ${last}`);

    // Export: the f16 run's master weights are f32 and go through the one float32 export path.
    const { batch, logits } = await engineLogits(gpu, s.model.config, f16.weights);
    const onnx = buildBertOnnx(s.model.config, f16.weights, {});
    assertClose(
      await runLogits(web, onnx, batch),
      logits,
      ONNX_F32,
      "exported logits vs engine (f16-trained weights)",
    );
  },
});

Deno.test({
  name: "precision f16: a step whose gradients overflow is skipped and the loss scale halves",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const s = await setup(4);
    const trainer = new Trainer(gpu, s.model.config, s.model.weights, s.tokenizer, {
      ...RECIPE,
      epochs: 1,
      precision: "f16",
    });
    // A scale no f16 activation gradient survives: dL/dlogits x 1e30 overflows in the first f16 buffer.
    trainer.scaler!.load({ scale: 1e30, growthTracker: 5, skipped: 0 });
    const before = await trainer.weights();
    const { steps } = await trainer.fit(s.data, null);
    if (steps.length !== 1 || steps[0].skipped !== true || steps[0].loss_scale !== Math.fround(1e30)) {
      throw new Error(`expected one skipped step at scale 1e30, got ${JSON.stringify(steps)}`);
    }
    if (trainer.optimizer.step !== 0) throw new Error(`AdamW counted ${trainer.optimizer.step} steps`);
    const state = trainer.scaler!.state();
    if (
      state.scale !== Math.fround(Math.fround(1e30) * 0.5) || state.growthTracker !== 0 || state.skipped !== 1
    ) {
      throw new Error(`scaler after the skip: ${JSON.stringify(state)}`);
    }
    for (const [name, w] of await trainer.weights()) {
      assertClose(w, before.get(name)!, { abs: 0, rel: 0 }, name);
    }
  },
});

Deno.test({
  name: "precision f16 without shader-f16 fails naming the feature and the fix",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await Gpu.create({ f16: false });
    try {
      const s = await setup(4);
      let message = "";
      try {
        BertEngine.create(gpu, s.model.config, s.model.weights, {
          maxBatch: 2,
          maxSeqLen: 8,
          precision: "f16",
        });
      } catch (e) {
        message = (e as Error).message;
      }
      if (!/shader-f16/.test(message) || !/--precision f32/.test(message)) {
        throw new Error(`expected an error naming shader-f16 and --precision f32, got "${message}"`);
      }
    } finally {
      gpu.device.destroy();
    }
  },
});
