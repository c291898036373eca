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
import {
  checkPath,
  cliExitCode,
  type Flag,
  type FlagValues,
  helpText,
  namedPath,
  parseFlags,
  UsageError,
  versionText,
} from "./cli.ts";
import { loadModel } from "./checkpoint.ts";
import { colaUrl, download, downloadModelFiles } from "./hub.ts";
import { loadCola } from "./data/cola.ts";
import { loadTable } from "./data/tabular.ts";
import type { Dataset } from "./data/dataset.ts";
import { splitTrainValidation } from "./data/cola.ts";
import { formatGlueScores, GLUE, type GlueScores, loadGlue } from "./data/glue.ts";
import { glueScoresOf, isColaPublic, taskOrUsage } from "./glue_cli.ts";
import { DEFAULT_TRAIN_OPTIONS, type TrainOptions, validateTrainOptions } from "./trainer.ts";
import { BEST_MODEL_METRICS, type RunData, runTraining } from "./run.ts";
import { LR_SCHEDULERS, type LrScheduler } from "./schedule.ts";
import { type Precision, PRECISIONS } from "./model.ts";
import { consoleProgress, downloadProgress, formatEval, installInterrupt } from "./console.ts";

const D = DEFAULT_TRAIN_OPTIONS;

/** What a model folder must hold, for path errors. */
export const MODEL_FOLDER = "a model folder with config.json and model.safetensors or pytorch_model.bin";
const TABLE_FILE = "a TSV, CSV or JSONL file with the text and label columns";
const COLA_SOURCE = "the CoLA zip (cola_public_1.1.zip) or the folder holding it";

/** The flags of `deno task train`, with the tutorial's defaults. */
export const TRAIN_FLAGS: Record<string, Flag> = {
  model: {
    type: "string",
    default: "bert-base-uncased",
    value: "id|folder",
    help: "Hugging Face model id or a local model folder",
  },
  revision: { type: "string", default: "main", value: "branch|tag|commit", help: "Hub revision of --model" },
  token: {
    type: "string",
    value: "hf_...",
    help: "Hub token for private and gated models (default: $HF_TOKEN, else $HF_HOME/token)",
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
    help:
      "Training data: TSV/CSV/JSONL file or URL (with --task: the task's GLUE folder or zip, or the CoLA " +
      "zip; default: download it)",
  },
  "validation-data": {
    type: "string",
    value: "[name=]path",
    multiple: true,
    help:
      "Validation file (same columns as --data) instead of the --val-split hold-out; the first picks the best model",
  },
  "test-data": {
    type: "string",
    value: "[name=]path",
    multiple: true,
    help: "A test file evaluated at the end, e.g. --test-data dev=dev.tsv",
  },
  "text-column": { type: "string", default: "sentence", value: "name", help: "Text column of --data" },
  "text-pair-column": { type: "string", value: "name", help: "Second text column for sentence-pair tasks" },
  "label-column": { type: "string", default: "label", value: "name", help: "Label column of --data" },
  "max-train-samples": { type: "int", min: 1, help: "Train on the first N training examples only" },
  "max-eval-samples": { type: "int", min: 1, help: "Evaluate on the first N of each validation/test set" },
  epochs: { type: "int", min: 1, default: D.epochs, help: "Training epochs" },
  "batch-size": { type: "int", min: 1, default: D.batchSize, help: "Examples per batch" },
  "eval-batch-size": { type: "int", min: 1, help: "Examples per evaluation batch (default: --batch-size)" },
  "max-length": {
    type: "int",
    min: 2,
    default: D.maxLength,
    help: "Tokens per sequence incl. [CLS]/[SEP]; longer texts are truncated",
  },
  lr: { type: "number", above: 0, default: D.lr, help: "AdamW learning rate" },
  "lr-scheduler": {
    type: "string",
    choices: LR_SCHEDULERS,
    default: "linear",
    help: "Schedule after warmup, as transformers defines it (cosine: half a cycle)",
  },
  eps: { type: "number", min: 0, default: D.eps, help: "AdamW epsilon" },
  "weight-decay": {
    type: "number",
    min: 0,
    default: D.weightDecay,
    help: "AdamW weight decay (not on biases and LayerNorm weights)",
  },
  "warmup-steps": { type: "int", min: 0, default: 0, help: "Linear warmup steps" },
  "warmup-ratio": {
    type: "number",
    min: 0,
    max: 1,
    help: "Warmup as a fraction of all steps (instead of --warmup-steps)",
  },
  precision: {
    type: "string",
    choices: PRECISIONS,
    default: "f32",
    help:
      "f16: mixed precision (f16 activations, f32 weights and optimizer, dynamic loss scaling); needs shader-f16",
  },
  "max-grad-norm": {
    type: "number",
    min: 0,
    default: D.maxGradNorm,
    help: "Clip gradients to this global L2 norm (0: off)",
  },
  seed: {
    type: "int",
    min: 0,
    default: D.seed,
    help: "Seed for the split, shuffling, dropout and a new classifier head",
  },
  "val-split": {
    type: "number",
    min: 0,
    below: 1,
    help: "Fraction of the training data held out for per-epoch validation (default: 0.1; 0 for GLUE " +
      "tasks other than cola, which report their dev sets)",
  },
  dropout: {
    type: "number",
    min: 0,
    below: 1,
    help: "Overrides both dropout probabilities (0 turns dropout off)",
  },
  "no-shuffle": { type: "boolean", help: "Keep the data file's order" },
  "dynamic-padding": { type: "boolean", help: "Pad each batch to its longest sequence, not --max-length" },
  "gradient-checkpointing": {
    type: "boolean",
    help:
      "Keep only each layer's input and recompute it in the backward: less memory, ~1 more forward a step",
  },
  "grad-accum": { type: "int", min: 1, default: D.gradAccum, help: "Micro-batches per optimizer step" },
  "logging-steps": {
    type: "int",
    min: 1,
    default: 50,
    help: "Without a terminal, print a progress line every N steps",
  },
  "eval-steps": { type: "int", min: 1, help: "Also evaluate on the validation data every N steps" },
  "save-steps": { type: "int", min: 1, help: "Also write a resumable checkpoint every N steps" },
  "load-best-model-at-end": {
    type: "boolean",
    help: "End with the weights of the best validation evaluation (see --metric-for-best-model)",
  },
  "metric-for-best-model": {
    type: "string",
    choices: BEST_MODEL_METRICS,
    default: "loss",
    help: "Validation metric for --load-best-model-at-end (loss: lower is better; others higher)",
  },
  output: { type: "string", value: "folder", help: "Run folder (default: runs/<task or data>-<time>)" },
  resume: { type: "boolean", help: "Continue the run in --output from its last checkpoint" },
  "cache-dir": {
    type: "string",
    value: "folder",
    help:
      "Download cache (default: the Hugging Face hub cache for models, ~/.cache/bert-webgpu for CoLA and GLUE)",
  },
};

const USAGE = `Fine-tune BERT for sequence classification on WebGPU.

Usage: deno task train --task cola|sst2|mrpc|stsb|qqp|mnli|qnli|rte|wnli [options]
       deno task train --data <file> --text-column <name> --label-column <name> [options]`;

const isUrl = (s: string) => /^https?:\/\//i.test(s);

/** A local model folder (checked), or the hub id's snapshot folder in the cache (downloaded). */
async function resolveModelDir(v: FlagValues): Promise<string> {
  const model = v.model as string;
  const local = await Deno.stat(model).catch(() => null);
  if (local || model.startsWith(".") || model.startsWith("/") || model.includes("\\")) {
    await checkPath("model", model, "folder", MODEL_FOLDER);
    await checkPath("model", join(model, "config.json"), "file", MODEL_FOLDER).catch(() => {
      throw new UsageError(`--model "${model}" has no config.json; expected ${MODEL_FOLDER}`);
    });
    return model;
  }
  return await downloadModelFiles(model, {
    cacheDir: v["cache-dir"] as string | undefined,
    revision: v.revision as string,
    token: v.token as string | undefined,
    progress: (file) => downloadProgress(`${model} ${file}`),
  });
}

/** A --data-like table file: checks a local path first so the error names the flag. */
async function table(flag: string, path: string, v: FlagValues, label2id?: Record<string, number>) {
  if (!isUrl(path)) await checkPath(flag, path, "file", TABLE_FILE);
  return await loadTable(path, {
    label2id,
    textColumn: v["text-column"] as string,
    textPairColumn: v["text-pair-column"] as string | undefined,
    labelColumn: v["label-column"] as string,
  });
}

function firstN(ds: Dataset, n: number | undefined): Dataset {
  return n === undefined || ds.examples.length <= n ? ds : { ...ds, examples: ds.examples.slice(0, n) };
}

async function loadData(
  v: FlagValues,
  seed: number,
): Promise<{ data: RunData; labels: string[]; glue?: string }> {
  const glue = v.task === undefined ? undefined : taskOrUsage(v.task as string).name;
  const valSplit = (v["val-split"] as number | undefined) ??
    (glue === undefined || glue === "cola" ? 0.1 : 0);
  const shuffle = !v["no-shuffle"];
  let data: RunData;
  let labels: string[];
  const source = v.data as string | undefined;
  if (glue !== undefined && source !== undefined && !isUrl(source)) {
    const dir = GLUE[glue as keyof typeof GLUE].dir;
    const expected = glue === "cola"
      ? `${COLA_SOURCE}, or GLUE's CoLA folder or zip`
      : `GLUE ${dir}'s folder or zip`;
    const info = await checkPath("data", source, "any", expected);
    if (info.isFile && !source.toLowerCase().endsWith(".zip")) {
      throw new UsageError(
        `--data "${source}" is not a zip: with --task ${glue}, expected ${expected} (for your own file, leave out --task)`,
      );
    }
  }
  if (glue !== undefined && !(glue === "cola" && isColaPublic(source))) {
    const splits = await loadGlue(glue, v.data as string | undefined, {
      cacheDir: v["cache-dir"] as string | undefined,
      onProgress: downloadProgress(GLUE[glue as keyof typeof GLUE].dir),
    });
    for (const { file, lines } of splits.skipped) {
      console.log(
        `Skipped ${lines.length} row(s) of ${file} with missing fields, as GLUE's readers do (lines ${
          lines.slice(0, 10).join(", ")
        }${lines.length > 10 ? ", ..." : ""})`,
      );
    }
    labels = splits.train.labels;
    // The dev set(s) are the reported evaluation; --val-split also holds out part of train.
    if ((v["validation-data"] as string[]).length || valSplit === 0) {
      data = { train: splits.train, validation: null, tests: splits.dev };
    } else {
      data = { ...splitTrainValidation({ ...splits.train, name: glue }, valSplit, seed), tests: splits.dev };
    }
  } else if (v.task !== undefined) {
    let source = (v.data as string | undefined) ?? colaUrl();
    if (isUrl(source)) {
      source = await download(source, {
        cacheDir: v["cache-dir"] as string | undefined,
        onProgress: downloadProgress("CoLA"),
        hint: "download cola_public_1.1.zip yourself and pass --data <its path or folder>",
      });
    } else {
      const info = await checkPath("data", source, "any", COLA_SOURCE);
      if (info.isFile && !source.toLowerCase().endsWith(".zip")) {
        throw new UsageError(
          `--data "${source}" is not a zip: with --task cola, expected ${COLA_SOURCE} (for your own file, leave out --task)`,
        );
      }
    }
    const cola = await loadCola(source, { seed, valSplit, shuffle });
    data = {
      train: cola.train,
      validation: cola.validation.examples.length ? cola.validation : null,
      tests: { out_of_domain_dev: cola.outOfDomainDev, in_domain_dev: cola.inDomainDev },
    };
    labels = cola.train.labels;
  } else {
    if (v.data === undefined) {
      throw new UsageError("Pass --task <GLUE task> or --data <file>: run with --help for the flags");
    }
    const all = await table("data", v.data as string, v);
    labels = all.labels;
    if ((v["validation-data"] as string[]).length || valSplit === 0) data = { train: all, validation: null };
    else data = { ...splitTrainValidation(all, valSplit, seed) };
  }
  const label2id = Object.fromEntries(labels.map((l, i) => [l, i]));
  for (const [i, spec] of (v["validation-data"] as string[]).entries()) {
    const { name, path } = namedPath("validation-data", spec);
    const ds = { ...(await table("validation-data", path, v, label2id)), name };
    if (i === 0) data.validation = ds;
    else data.moreValidation = { ...data.moreValidation, [name]: ds };
  }
  for (const spec of v["test-data"] as string[]) {
    const { name, path } = namedPath("test-data", spec);
    data.tests = { ...data.tests, [name]: await table("test-data", path, v, label2id) };
  }
  const maxEval = v["max-eval-samples"] as number | undefined;
  return {
    data: {
      train: firstN(data.train, v["max-train-samples"] as number | undefined),
      validation: data.validation && firstN(data.validation, maxEval),
      moreValidation: data.moreValidation &&
        Object.fromEntries(Object.entries(data.moreValidation).map(([k, ds]) => [k, firstN(ds, maxEval)])),
      tests: data.tests &&
        Object.fromEntries(Object.entries(data.tests).map(([k, ds]) => [k, firstN(ds, maxEval)])),
    },
    labels,
    glue,
  };
}

/** Parses flags into the recipe. */
export function recipeFromFlags(v: FlagValues): TrainOptions {
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
    lrScheduler: v["lr-scheduler"] as LrScheduler,
    precision: v.precision as Precision,
    ...(v["gradient-checkpointing"] ? { gradientCheckpointing: true } : {}),
    ...(v["eval-batch-size"] !== undefined ? { evalBatchSize: v["eval-batch-size"] as number } : {}),
    ...(v["eval-steps"] !== undefined ? { evalSteps: v["eval-steps"] as number } : {}),
    ...(v["save-steps"] !== undefined ? { saveSteps: v["save-steps"] as number } : {}),
  };
}

/** Runs the command (help and version included); returns the exit code, throws usage errors. */
export async function main(args: string[]): Promise<number> {
  const { values: v, help, version } = parseFlags(args, TRAIN_FLAGS);
  if (help) {
    console.log(helpText(USAGE, TRAIN_FLAGS));
    return 0;
  }
  if (version) {
    console.log(versionText());
    return 0;
  }
  return await train(v, args);
}

async function train(v: FlagValues, args: string[]): Promise<number> {
  const recipe = recipeFromFlags(v);
  try {
    validateTrainOptions(recipe); // before any download or data loading
  } catch (e) {
    throw e instanceof RangeError ? new UsageError(e.message) : e;
  }
  const output = (v.output as string | undefined) ??
    join("runs", `${v.task ?? "data"}-${new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19)}`);
  if (v.resume && v.output === undefined) throw new UsageError("--resume needs --output <run folder>");
  const dropout = v.dropout as number | undefined;
  const { data, labels, glue } = await loadData(v, recipe.seed);
  if (v["load-best-model-at-end"] && !data.validation) {
    throw new UsageError(
      "--load-best-model-at-end needs validation data: --validation-data <file> or --val-split > 0",
    );
  }
  const modelDir = await resolveModelDir(v);
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
    extraArgs: { model: v.model, revision: v.revision, task: v.task, data: v.data },
    loadBestModelAtEnd: Boolean(v["load-best-model-at-end"]),
    metricForBestModel: v["metric-for-best-model"] as (typeof BEST_MODEL_METRICS)[number],
  }, {
    ...consoleProgress(recipe.epochs, { loggingSteps: v["logging-steps"] as number }),
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
  Deno.exit(await cliExitCode(Deno.args, USAGE, TRAIN_FLAGS, (v) => train(v, Deno.args)));
}
