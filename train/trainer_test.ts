/**
 * Twenty optimizer steps against PyTorch (tests/torch/fixtures_training.py): AdamW with weight decay
 * 0.01 and the no-decay group, HF linear warmup 2, clipping at 1.0 (active on 8 of 20 steps), batches
 * with padding, dropout off. Loss, learning rate and pre-clip gradient norm of every step, then the
 * final weights.
 */
import { floatTensor, readSafetensors } from "../formats/safetensors.ts";
import { loadModel } from "./checkpoint.ts";
import { Trainer, type TrainOptions } from "./trainer.ts";
import { parseTable } from "./data/tabular.ts";
import { wordTokenizer } from "../tests/word_tokenizer.ts";
import { assertClose, GPU_TEST, testGpu } from "../tests/util.ts";
import { TRAINING_F32 } from "../tests/tolerance.ts";

const dir = new URL("../tests/fixtures/training/", import.meta.url).pathname;

export const PARITY_RECIPE: TrainOptions = {
  epochs: 1,
  batchSize: 4,
  maxLength: 8,
  lr: 3e-3,
  eps: 1e-8,
  weightDecay: 0.01,
  warmupSteps: 2,
  maxGradNorm: 1.0,
  seed: 42,
  shuffle: false,
  dynamicPadding: false,
  gradAccum: 1,
};

Deno.test({
  name: "Trainer.fit() matches 20 PyTorch AdamW steps with warmup, weight decay and clipping",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const model = await loadModel(dir);
    const data = parseTable(await Deno.readTextFile(`${dir}train.tsv`), "train.tsv", {
      textColumn: "sentence",
      labelColumn: "label",
    });
    const trainer = new Trainer(
      gpu,
      model.config,
      model.weights,
      await wordTokenizer(`${dir}vocab.txt`),
      PARITY_RECIPE,
    );
    const { steps } = await trainer.fit(data, null);
    const expected = JSON.parse(await Deno.readTextFile(`${dir}steps.json`));
    if (steps.length !== 20) throw new Error(`expected 20 steps, got ${steps.length}`);
    assertClose(
      steps.map((s) => s.learning_rate),
      expected.map((e: { learning_rate: number }) => e.learning_rate),
      {
        abs: 0,
        rel: 1e-12,
      },
      "learning rates",
    );
    assertClose(
      steps.map((s) => s.loss),
      expected.map((e: { loss: number }) => e.loss),
      TRAINING_F32,
      "losses",
    );
    assertClose(
      steps.map((s) => s.grad_norm),
      expected.map((e: { grad_norm: number }) => e.grad_norm),
      TRAINING_F32,
      "grad norms",
    );
    const final = await readSafetensors(`${dir}final.safetensors`);
    for (const [name, w] of await trainer.weights()) {
      assertClose(w, floatTensor(final, name), TRAINING_F32, `final ${name}`);
    }
  },
});
