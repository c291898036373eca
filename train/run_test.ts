import { join } from "node:path";
import { loadModel } from "./checkpoint.ts";
import { latestCheckpoint, runTraining } from "./run.ts";
import { parseTable } from "./data/tabular.ts";
import type { TrainOptions } from "./trainer.ts";
import { wordTokenizer } from "../tests/word_tokenizer.ts";
import { assertClose, GPU_TEST, testGpu } from "../tests/util.ts";

const dir = new URL("../tests/fixtures/training/", import.meta.url).pathname;

// Dropout on, shuffling on and gradient accumulation: everything that must replay exactly on resume.
const BASE_RECIPE: TrainOptions = {
  epochs: 2,
  batchSize: 4,
  maxLength: 8,
  lr: 1e-3,
  eps: 1e-8,
  weightDecay: 0.01,
  warmupSteps: 3,
  maxGradNorm: 1.0,
  seed: 5,
  shuffle: true,
  dynamicPadding: true,
  gradAccum: 2,
};

async function setup() {
  const gpu = await testGpu();
  const model = await loadModel(dir, { dropout: 0.1 });
  const all = parseTable(await Deno.readTextFile(`${dir}train.tsv`), "train.tsv", {
    textColumn: "sentence",
    labelColumn: "label",
  });
  const data = {
    train: { ...all, examples: all.examples.slice(0, 40) },
    validation: { ...all, examples: all.examples.slice(40, 56) },
  };
  return { gpu, model, data, tokenizer: await wordTokenizer(`${dir}vocab.txt`) };
}

for (const precision of ["f32", "f16"] as const) {
  Deno.test({
    name:
      `runTraining() stopped mid-epoch then resumed ends with the same weights as an uninterrupted run (${precision})`,
    ...GPU_TEST,
    fn: () => resumeMatchesUninterrupted(precision),
  });
}

async function resumeMatchesUninterrupted(precision: "f32" | "f16"): Promise<void> {
  {
    const RECIPE: TrainOptions = { ...BASE_RECIPE, precision };
    const tmp = await Deno.makeTempDir();
    try {
      const s = await setup();
      const full = await runTraining(s.gpu, s.model, s.tokenizer, s.data, {
        ...RECIPE,
        output: join(tmp, "full"),
      });
      let seen = 0;
      const first = await runTraining(s.gpu, s.model, s.tokenizer, s.data, {
        ...RECIPE,
        output: join(tmp, "cut"),
      }, {
        onStep: () => seen++,
        shouldStop: () => seen >= 3,
      });
      // Readback runs one step behind, so the stop lands after step 3 or 4: mid-epoch 0 either way.
      const at = first.stopped;
      if (!at || at.epoch !== 0 || at.step < 3 || at.step > 4 || at.batchInEpoch !== 2 * at.step) {
        throw new Error(`expected a stop mid-epoch 0, got ${JSON.stringify(at)}`);
      }
      const rest = await runTraining(s.gpu, s.model, s.tokenizer, s.data, {
        ...RECIPE,
        output: join(tmp, "cut"),
        resume: true,
      });
      if (rest.stopped || rest.steps.length !== full.steps.length) {
        throw new Error(`resumed run has ${rest.steps.length} steps, uninterrupted ${full.steps.length}`);
      }
      assertClose(
        rest.steps.map((x) => x.loss),
        full.steps.map((x) => x.loss),
        { abs: 0, rel: 0 },
        "step losses",
      );
      const a = await loadModel(join(tmp, "full"));
      const b = await loadModel(join(tmp, "cut"));
      for (const [name, w] of a.weights) assertClose(b.weights.get(name)!, w, { abs: 0, rel: 0 }, name);
      // The run folder: metrics with one entry per step, the SVG curve, and one checkpoint left.
      const metrics = JSON.parse(await Deno.readTextFile(join(tmp, "cut", "metrics.json")));
      const keys = Object.keys(metrics.steps[0]).sort().join();
      const expected = precision === "f16"
        ? "epoch,grad_norm,learning_rate,loss,loss_scale,skipped,step"
        : "epoch,grad_norm,learning_rate,loss,step";
      if (metrics.steps.length !== full.steps.length || keys !== expected) {
        throw new Error(`metrics.json steps: ${metrics.steps.length}, keys ${keys}`);
      }
      if (metrics.epochs.length !== 2 || !(metrics.epochs[1].validation.accuracy >= 0)) {
        throw new Error(`metrics.json epochs: ${JSON.stringify(metrics.epochs)}`);
      }
      const svg = await Deno.readTextFile(join(tmp, "cut", "loss.svg"));
      if (!svg.startsWith("<svg") || !svg.includes("<path")) throw new Error("loss.svg has no curve");
      const latest = await latestCheckpoint(join(tmp, "cut"));
      const left = [...Deno.readDirSync(join(tmp, "cut", "checkpoints"))].map((e) => e.name).sort();
      if (!latest?.endsWith("step-000010") || left.join() !== "latest.json,step-000010") {
        throw new Error(`checkpoints: ${latest}, ${left}`);
      }
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  }
}
