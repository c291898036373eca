/**
 * `deno task demo`: the offline end-to-end demo (README command 1). It needs no network and no
 * pretrained weights: it generates a synthetic sentence-acceptability task from a tiny grammar,
 * builds a vocabulary, trains a tiny BERT from scratch on WebGPU (a software adapter is fine),
 * evaluates it, exports int8 ONNX and says how to serve it.
 * @module
 */

import { join } from "node:path";
import { Gpu } from "../../kernels/runtime.ts";
import { tokenizerFromVocab } from "../../tokenizer/mod.ts";
import { parseBertConfig } from "../config.ts";
import { initWeights } from "../weights.ts";
import { runTraining } from "../run.ts";
import type { Dataset } from "../data/dataset.ts";
import type { TrainOptions } from "../trainer.ts";
import { exportModel } from "../export/export.ts";
import { consoleProgress, formatEval, installInterrupt } from "../console.ts";
import { type Flag, runCli } from "../cli.ts";
import { DEMO_LABELS, type DemoExample, generateDemoData } from "./grammar.ts";
import { demoVocabulary } from "./vocab.ts";

/** The demo's run folder (serve's default MODEL_DIR is its export/ subfolder). */
export const DEMO_OUTPUT = "runs/demo";

/** The tiny BERT the demo trains from scratch. */
export function demoConfig(vocabSize: number, overrides: Record<string, unknown> = {}) {
  return parseBertConfig(
    {
      vocab_size: vocabSize,
      hidden_size: 64,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      intermediate_size: 128,
      max_position_embeddings: 32,
      // From scratch on 4,000 sentences: no dropout, and a wider init than BERT's 0.02 (post-LN
      // trains faster from it; measured with the torch twin in tests/torch/demo_learnability.py).
      hidden_dropout_prob: 0,
      attention_probs_dropout_prob: 0,
      initializer_range: 0.05,
      layer_norm_eps: 1e-12,
      ...overrides,
    },
    "demo config",
    { labels: DEMO_LABELS },
  );
}

/** The demo's recipe: from-scratch training wants a larger rate and a warmup than fine-tuning. */
export const DEMO_RECIPE: TrainOptions = {
  epochs: 3,
  batchSize: 16,
  maxLength: 24,
  lr: 2e-3,
  eps: 1e-8,
  weightDecay: 0.01,
  warmupRatio: 0.1,
  maxGradNorm: 1.0,
  seed: 42,
  shuffle: true,
  dynamicPadding: true,
  gradAccum: 1,
};

const FLAGS: Record<string, Flag> = {
  output: { type: "string", default: DEMO_OUTPUT, value: "folder", help: "Run folder" },
  "train-size": { type: "int", min: 1, default: 4000, help: "Generated training sentences" },
  epochs: { type: "int", min: 1, default: DEMO_RECIPE.epochs, help: "Training epochs" },
  seed: {
    type: "int",
    min: 0,
    default: DEMO_RECIPE.seed,
    help: "Seed for the data, the initial weights and training",
  },
  "no-export": { type: "boolean", help: "Skip the ONNX export" },
};

function dataset(name: string, examples: DemoExample[]): Dataset {
  return {
    name,
    labels: [...DEMO_LABELS],
    examples: examples.map((e) => ({ text: e.text, label: e.label })),
  };
}

/** Runs the demo; returns the validation and test figures. */
export async function runDemo(options: {
  output?: string;
  trainSize?: number;
  epochs?: number;
  seed?: number;
  export?: boolean;
  quiet?: boolean;
  /** config.json fields that override the demo's architecture. */
  config?: Record<string, unknown>;
}) {
  const log = options.quiet ? () => {} : console.log;
  const seed = options.seed ?? DEMO_RECIPE.seed;
  const output = options.output ?? DEMO_OUTPUT;
  const t0 = performance.now();
  const data = generateDemoData({ seed, train: options.trainSize ?? 4000 });
  const vocab = demoVocabulary();
  const tokenizer = tokenizerFromVocab(vocab);
  const config = demoConfig(tokenizer.vocabSize, options.config);
  const majority = Math.max(...[0, 1].map((c) => data.test.filter((e) => e.label === c).length)) /
    data.test.length;
  const gpu = await Gpu.create();
  log(
    `WebGPU adapter: ${gpu.report.description || gpu.report.vendor}${
      gpu.report.isFallback ? " (software)" : ""
    }`,
  );
  log(
    `Demo: ${data.train.length} generated sentences (agreement, word order, determiners, objects), ` +
      `a ${config.num_hidden_layers}-layer BERT (hidden ${config.hidden_size}) from scratch; run folder ${output}`,
  );
  const stop = installInterrupt();
  const recipe = { ...DEMO_RECIPE, epochs: options.epochs ?? DEMO_RECIPE.epochs, seed };
  const result = await runTraining(
    gpu,
    { config, weights: initWeights(config, seed) },
    tokenizer,
    {
      train: dataset("demo train", data.train),
      validation: dataset("demo validation", data.validation),
      tests: { test: dataset("demo test", data.test) },
    },
    { ...recipe, output, extraArgs: { demo: true } },
    options.quiet
      ? { shouldStop: stop.requested }
      : { ...consoleProgress(recipe.epochs), shouldStop: stop.requested, onMessage: log },
  );
  stop.dispose();
  if (result.stopped) {
    log(`Stopped. Resume is available with: deno task train --help (the demo itself starts over)`);
    return null;
  }
  const validation = result.epochs.at(-1)!.validation!;
  const test = result.tests.test;
  log(`\nValidation: ${formatEval(validation)}`);
  log(`Test:       ${formatEval(test)} (majority class: ${(100 * majority).toFixed(1)}%)`);
  let exported: string | null = null;
  if (options.export !== false) {
    exported = join(output, "export");
    const r = await exportModel(output, { output: exported, maxLength: recipe.maxLength });
    log(`Exported ONNX: ${Object.values(r.files).join(", ")}`);
    log(`Serve it:  MODEL_DIR=${exported} deno task serve`);
    log(`Then:      curl -s localhost:8000/classify -d '{"texts": ["the dog runs.", "the dogs runs."]}'`);
  }
  log(`Done in ${((performance.now() - t0) / 1000).toFixed(0)} s.`);
  return { validation, test, majority, output, exported };
}

if (import.meta.main) {
  await runCli(
    Deno.args,
    "Train a tiny BERT from scratch on a generated grammar task (offline).\n\nUsage: deno task demo [options]",
    FLAGS,
    async (v) => {
      const r = await runDemo({
        output: v.output as string,
        trainSize: v["train-size"] as number,
        epochs: v.epochs as number,
        seed: v.seed as number,
        export: !v["no-export"],
      });
      return r ? 0 : 130;
    },
  );
}
