/**
 * `deno task train`: the BERT fine-tuning tutorial as a command.
 *
 *   deno task train --task cola                      # bert-base-uncased on CoLA (downloads both)
 *   deno task train --model ./my-bert --data train.tsv --text-column sentence --label-column label
 * @module
 */

import { join } from "node:path";
import { Gpu } from "../kernels/runtime.ts";
import { loadTokenizer } from "../tokenizer/mod.ts";
import { type Flag, helpText, parseFlags, UsageError } from "./cli.ts";
import { loadModel } from "./checkpoint.ts";
import { COLA_URL, downloadModelFiles } from "./hub.ts";
import { loadCola } from "./data/cola.ts";
import { loadTable } from "./data/tabular.ts";
import type { Dataset } from "./data/dataset.ts";
import { splitTrainValidation } from "./data/cola.ts";
import { formatGlueScores, type GlueScores, loadGlue } from "./data/glue.ts";
import { glueScoresOf, isColaPublic, taskOrUsage } from "./glue_cli.ts";
import { DEFAULT_TRAIN_OPTIONS, type TrainOptions, validateTrainOptions } from "./trainer.ts";
import { type RunData, runTraining } from "./run.ts";
import { consoleProgress, formatEval, installInterrupt } from "./console.ts";

const D = DEFAULT_TRAIN_OPTIONS;

/** The flags of `deno task train`, with the tutorial's defaults. */
export const TRAIN_FLAGS: Record<string, Flag> = {
  model: {
    type: "string",
    default: "bert-base-uncased",
    value: "id|folder",
    help: "Hugging Face model id or a local model folder",
  },
  task: {
    type: "string",
    value: "name",
    help:
      "GLUE task: cola (the tutorial's CoLA zip, 90/10 split), sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli " +
      "(train.tsv, reported on the dev set(s) with the task's GLUE metric)",
  },
  data: {
    type: "string",
    value: "path|url",
    help: "Training data: TSV/CSV/JSONL file or URL (with --task: the task's GLUE folder or zip; " +
      "default: download it)",
  },
  "text-column": { type: "string", default: "sentence", value: "name", help: "Text column of --data" },
  "text-pair-column": { type: "string", value: "name", help: "Second text column for sentence-pair tasks" },
  "label-column": { type: "string", default: "label", value: "name", help: "Label column of --data" },
  epochs: { type: "int", default: D.epochs, help: "Training epochs" },
  "batch-size": { type: "int", default: D.batchSize, help: "Examples per batch" },
  "max-length": {
    type: "int",
    default: D.maxLength,
    help: "Tokens per sequence incl. [CLS]/[SEP]; longer texts are truncated",
  },
  lr: { type: "number", default: D.lr, help: "AdamW learning rate" },
  eps: { type: "number", default: D.eps, help: "AdamW epsilon" },
  "weight-decay": {
    type: "number",
    default: D.weightDecay,
    help: "AdamW weight decay (not on biases and LayerNorm weights)",
  },
  "warmup-steps": { type: "int", default: 0, help: "Linear warmup steps" },
  "warmup-ratio": { type: "number", help: "Warmup as a fraction of all steps (instead of --warmup-steps)" },
  "max-grad-norm": {
    type: "number",
    default: D.maxGradNorm,
    help: "Clip gradients to this global L2 norm (0: off)",
  },
  seed: {
    type: "int",
    default: D.seed,
    help: "Seed for the split, shuffling, dropout and a new classifier head",
  },
  "val-split": {
    type: "number",
    help: "Fraction of the training data held out for per-epoch validation (default: 0.1; 0 for GLUE " +
      "tasks other than cola, which report their dev sets)",
  },
  dropout: { type: "number", help: "Overrides both dropout probabilities (0 turns dropout off)" },
  "no-shuffle": { type: "boolean", help: "Keep the data file's order" },
  "dynamic-padding": { type: "boolean", help: "Pad each batch to its longest sequence, not --max-length" },
  "grad-accum": { type: "int", default: D.gradAccum, help: "Micro-batches per optimizer step" },
  output: { type: "string", value: "folder", help: "Run folder (default: runs/<task or data>-<time>)" },
  resume: { type: "boolean", help: "Continue the run in --output from its last checkpoint" },
  "cache-dir": {
    type: "string",
    value: "folder",
    help: "Download cache (default: $BERT_WEBGPU_CACHE or ~/.cache/bert-webgpu)",
  },
};

const USAGE = `Fine-tune BERT for sequence classification on WebGPU.

Usage: deno task train --task cola|sst2|mrpc|stsb|qqp|mnli|qnli|rte|wnli [options]
       deno task train --data <file> --text-column <name> --label-column <name> [options]`;

async function resolveModelDir(model: string, cacheDir?: string): Promise<string> {
  try {
    if ((await Deno.stat(model)).isDirectory) return model;
  } catch { /* not a local folder: a hub id */ }
  if (model.startsWith(".") || model.startsWith("/")) {
    throw new UsageError(
      `--model "${model}" is not a folder: pass a folder with config.json, model.safetensors and tokenizer files`,
    );
  }
  return await downloadModelFiles(model, { cacheDir });
}

async function loadData(
  v: Record<string, unknown>,
  seed: number,
): Promise<{ data: RunData; labels: string[]; glue?: string }> {
  const glue = v.task === undefined ? undefined : taskOrUsage(v.task as string).name;
  const valSplit = (v["val-split"] as number | undefined) ??
    (glue === undefined || glue === "cola" ? 0.1 : 0);
  if (!(valSplit >= 0 && valSplit < 1)) {
    throw new UsageError(`--val-split must be in [0, 1), got ${valSplit}`);
  }
  const shuffle = !v["no-shuffle"];
  if (glue !== undefined && !(glue === "cola" && isColaPublic(v.data as string | undefined))) {
    const splits = await loadGlue(glue, v.data as string | undefined, {
      cacheDir: v["cache-dir"] as string | undefined,
    });
    for (const { file, lines } of splits.skipped) {
      console.log(
        `Skipped ${lines.length} row(s) of ${file} with missing fields, as GLUE's readers do (lines ${
          lines.slice(0, 10).join(", ")
        }${lines.length > 10 ? ", ..." : ""})`,
      );
    }
    const split = valSplit === 0
      ? null
      : splitTrainValidation({ ...splits.train, name: glue }, valSplit, seed);
    return {
      data: { train: split?.train ?? splits.train, validation: split?.validation ?? null, tests: splits.dev },
      labels: splits.train.labels,
      glue,
    };
  }
  if (v.task !== undefined) {
    const cola = await loadCola((v.data as string | undefined) ?? COLA_URL, {
      seed,
      valSplit,
      cacheDir: v["cache-dir"] as string | undefined,
      shuffle,
    });
    return {
      data: {
        train: cola.train,
        validation: cola.validation.examples.length ? cola.validation : null,
        tests: { out_of_domain_dev: cola.outOfDomainDev, in_domain_dev: cola.inDomainDev },
      },
      labels: cola.train.labels,
      glue,
    };
  }
  if (v.data === undefined) {
    throw new UsageError("Pass --task <GLUE task> or --data <file>: run with --help for the flags");
  }
  const all: Dataset = await loadTable(v.data as string, {
    textColumn: v["text-column"] as string,
    textPairColumn: v["text-pair-column"] as string | undefined,
    labelColumn: v["label-column"] as string,
  });
  if (valSplit === 0) return { data: { train: all, validation: null }, labels: all.labels };
  const { train, validation } = splitTrainValidation(all, valSplit, seed);
  return { data: { train, validation }, labels: all.labels };
}

/** Parses flags into the recipe. */
export function recipeFromFlags(v: Record<string, unknown>): TrainOptions {
  return {
    epochs: v.epochs as number,
    batchSize: v["batch-size"] as number,
    maxLength: v["max-length"] as number,
    lr: v.lr as number,
    eps: v.eps as number,
    weightDecay: v["weight-decay"] as number,
    warmupSteps: v["warmup-ratio"] === undefined ? v["warmup-steps"] as number : undefined,
    warmupRatio: v["warmup-ratio"] as number | undefined,
    maxGradNorm: v["max-grad-norm"] as number,
    seed: v.seed as number,
    shuffle: !v["no-shuffle"],
    dynamicPadding: Boolean(v["dynamic-padding"]),
    gradAccum: v["grad-accum"] as number,
  };
}

/** Runs the command; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const { values: v, help } = parseFlags(args, TRAIN_FLAGS);
  if (help) {
    console.log(helpText(USAGE, TRAIN_FLAGS));
    return 0;
  }
  const recipe = recipeFromFlags(v);
  validateTrainOptions(recipe); // before any download or data loading
  const output = (v.output as string | undefined) ??
    join("runs", `${v.task ?? "data"}-${new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19)}`);
  if (v.resume && v.output === undefined) throw new UsageError("--resume needs --output <run folder>");
  const dropout = v.dropout as number | undefined;
  if (dropout !== undefined && !(dropout >= 0 && dropout < 1)) {
    throw new UsageError(`--dropout must be in [0, 1), got ${dropout}`);
  }
  const { data, labels, glue } = await loadData(v, recipe.seed);
  const modelDir = await resolveModelDir(v.model as string, v["cache-dir"] as string | undefined);
  const model = await loadModel(modelDir, { labels, dropout, seed: recipe.seed });
  if (model.initialized.length) {
    console.log(
      `Some weights were newly initialized (not in ${model.source}): ${model.initialized.join(", ")}`,
    );
  }
  if (recipe.maxLength > model.config.max_position_embeddings) {
    throw new UsageError(
      `--max-length ${recipe.maxLength} exceeds the model's max_position_embeddings ${model.config.max_position_embeddings}`,
    );
  }
  const tokenizer = await loadTokenizer(modelDir);
  const gpu = await Gpu.create();
  console.log(
    `WebGPU adapter: ${gpu.report.description || gpu.report.vendor}${
      gpu.report.isFallback ? " (software)" : ""
    }`,
  );
  console.log(
    `Training on ${data.train.examples.length} examples, validating on ${
      data.validation?.examples.length ?? 0
    }; run folder ${output}`,
  );
  const stop = installInterrupt();
  let scores: GlueScores | undefined;
  const result = await runTraining(gpu, model, tokenizer, data, {
    ...recipe,
    output,
    resume: Boolean(v.resume),
    extraArgs: { model: v.model, task: v.task, data: v.data },
  }, {
    ...consoleProgress(recipe.epochs),
    shouldStop: stop.requested,
    onMessage: (m) => console.log(m),
    onTestResults: (results) => {
      if (glue === undefined) return;
      scores = glueScoresOf(glue, results, data.tests ?? {});
      return { glue: scores };
    },
  });
  stop.dispose();
  if (result.stopped) {
    console.log(
      `Stopped at step ${result.stopped.step}. Resume with: deno task train ${
        args.filter((a) => a !== "--resume").join(" ")
      }${v.output === undefined ? ` --output ${output}` : ""} --resume`,
    );
    return 130;
  }
  for (const [name, r] of Object.entries(result.tests)) console.log(`${name}: ${formatEval(r)}`);
  if (scores) { for (const line of formatGlueScores(scores)) console.log(line); }
  console.log(`Model folder: ${output} (export with: deno task export --model ${output})`);
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    Deno.exit(e instanceof UsageError ? 2 : 1);
  }
}
