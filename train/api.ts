/**
 * The library face of training: small functions over the CLI's machinery (`runTraining`, `Trainer`,
 * `loadModel`, `saveModel`) that take at most two required arguments plus an options object, report
 * progress through callbacks instead of a progress bar, and stop cleanly on an `AbortSignal`.
 *
 * @example
 * ```ts
 * import { createModelConfig, evaluate, fineTune, Gpu, initWeights, tokenizerFromVocab } from "../mod.ts";
 *
 * const gpu = await Gpu.create(); // one device for every call (each call makes its own otherwise)
 * const tokenizer = tokenizerFromVocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "good", "bad", "film"]);
 * const data = {
 *   name: "reviews",
 *   labels: ["negative", "positive"],
 *   examples: Array.from({ length: 16 }, (_, i) => ({ text: i % 2 ? "good film" : "bad film", label: i % 2 })),
 * };
 * const config = createModelConfig({ vocabSize: tokenizer.vocabSize, labels: data.labels });
 * const trained = await fineTune({ config, weights: initWeights(config, 1) }, { train: data }, {
 *   tokenizer,
 *   gpu,
 *   epochs: 1,
 *   batchSize: 8,
 *   maxLength: 8,
 *   lr: 1e-3,
 * });
 * const result = await evaluate(trained, data, { tokenizer, gpu });
 * console.log(trained.steps.length, result.examples); // 2 16
 * gpu.device.destroy();
 * ```
 * @module
 */

import { Gpu } from "../kernels/runtime.ts";
import { loadTokenizer } from "../tokenizer/load.ts";
import { BERT_BASE, type BertConfig, numLabels, parseBertConfig } from "./config.ts";
import { loadModel, saveModel } from "./checkpoint.ts";
import type { Weights } from "./weights.ts";
import type { Dataset } from "./data/dataset.ts";
import {
  DEFAULT_TRAIN_OPTIONS,
  type EpochLog,
  type EvalResult,
  type StepLog,
  Trainer,
  type TrainOptions,
  type TrainPosition,
  validateTrainOptions,
} from "./trainer.ts";
import { type RunTokenizer, runTraining } from "./run.ts";

/** A model in memory: its config and its parameters by Hugging Face name. */
export interface ModelWeights {
  /** The architecture and labels. */
  config: BertConfig;
  /** Every parameter, float32, PyTorch layout. */
  weights: Weights;
}

/** A model folder path (config.json + model.safetensors or pytorch_model.bin), or a model in memory. */
export type ModelSource = string | ModelWeights;

/** The data of {@linkcode fineTune}. */
export interface TrainingData {
  /** The examples trained on. */
  train: Dataset;
  /** Evaluated after every epoch (figures in `EpochLog.validation`). */
  validation?: Dataset | null;
  /** Evaluated once at the end, by name (figures in `FineTuneResult.tests`). */
  tests?: Record<string, Dataset>;
}

/** Where a step stands in its epoch and in the run, for progress displays. */
export interface StepProgress {
  /** Optimizer steps done in this epoch. */
  epochStep: number;
  /** Optimizer steps in one epoch. */
  epochSteps: number;
  /** Optimizer steps in the whole run. */
  totalSteps: number;
}

/** Options of {@linkcode fineTune}: the CLI's recipe (tutorial defaults) plus library hooks. */
export interface FineTuneOptions extends Partial<TrainOptions> {
  /**
   * Turns text into ids (a `Tokenizer`, or any {@linkcode RunTokenizer}). Required when `model` is
   * not a folder holding tokenizer.json or vocab.txt. Its files are saved next to the model.
   */
  tokenizer?: RunTokenizer;
  /** Overrides both dropout probabilities of the model (0 turns dropout off). */
  dropout?: number;
  /**
   * Run folder (the trained model in Hugging Face layout, metrics.json, loss.svg, checkpoints/).
   * @default a temporary folder, removed afterwards unless `keepOutput`
   */
  output?: string;
  /** Keep the temporary run folder when `output` is not given. @default false */
  keepOutput?: boolean;
  /** Continue the run in `output` from its last checkpoint (same recipe). @default false */
  resume?: boolean;
  /** Called after every optimizer step (one step late: the loss is read back asynchronously). */
  onStep?(log: StepLog, progress: StepProgress): void;
  /** Called after every epoch, with the validation figures when there is validation data. */
  onEpoch?(log: EpochLog): void;
  /** Messages worth showing a person ("checkpoint written: ..."). */
  onMessage?(message: string): void;
  /** Stops cleanly after the current step: a checkpoint is written and `stopped` says where. */
  signal?: AbortSignal;
  /** The WebGPU device to train on. @default a new device, destroyed afterwards */
  gpu?: Gpu;
}

/** What {@linkcode fineTune} returns: the trained model and the run's figures. */
export interface FineTuneResult extends ModelWeights {
  /** One entry per optimizer step. */
  steps: StepLog[];
  /** One entry per finished epoch. */
  epochs: EpochLog[];
  /** Figures on each of `data.tests`, by name (empty when the run was stopped). */
  tests: Record<string, Omit<EvalResult, "predictions">>;
  /** The run folder, or null when it was a temporary folder and has been removed. */
  output: string | null;
  /** Where the run stopped when `signal` aborted it (resume with `{ output, resume: true }`); else null. */
  stopped: TrainPosition | null;
}

/** Options of {@linkcode evaluate}. */
export interface EvaluateOptions {
  /** Required when `model` is not a folder holding tokenizer.json or vocab.txt. */
  tokenizer?: RunTokenizer;
  /** Examples per forward pass. @default 32 */
  batchSize?: number;
  /** Longer texts are truncated. @default 64, or max_position_embeddings when smaller */
  maxLength?: number;
  /** The WebGPU device. @default a new device, destroyed afterwards */
  gpu?: Gpu;
}

/** Options of {@linkcode createModelConfig}. */
export interface ModelConfigOptions {
  /** Tokens in the vocabulary: the tokenizer's `vocabSize`. */
  vocabSize: number;
  /** Class names in id order; one name makes a regression model. @default ["LABEL_0", "LABEL_1"] */
  labels?: readonly string[];
  /**
   * "tiny": 2 layers, hidden 64, 4 heads, intermediate 128, 128 positions (trains in seconds on a
   * software adapter); "base": bert-base-uncased's shape.
   * @default "tiny"
   */
  size?: "tiny" | "base";
  /** Overrides both dropout probabilities (0 turns dropout off). @default 0.1 */
  dropout?: number;
  /** Any other config.json field, by its Hugging Face name (e.g. `{ num_hidden_layers: 4 }`). */
  config?: Record<string, unknown>;
}

/** Options of {@linkcode saveModelFolder}. */
export interface SaveModelOptions {
  /** Also write its tokenizer.json, vocab.txt and tokenizer_config.json. */
  tokenizer?: RunTokenizer;
}

/** The "tiny" preset of {@linkcode createModelConfig}: 2 layers, 64 wide, 128 positions (fast on llvmpipe). */
const TINY = {
  hidden_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  intermediate_size: 128,
  max_position_embeddings: 128,
};

const TRAIN_KEYS = Object.keys(DEFAULT_TRAIN_OPTIONS).concat(
  "warmupRatio",
  "precision",
  "gradientCheckpointing",
) as (keyof TrainOptions)[];
const FINE_TUNE_KEYS = new Set<string>([
  ...TRAIN_KEYS,
  "tokenizer",
  "dropout",
  "output",
  "keepOutput",
  "resume",
  "onStep",
  "onEpoch",
  "onMessage",
  "signal",
  "gpu",
]);

/** The recipe of `options`: tutorial defaults, a given warmupRatio replacing the default warmupSteps. */
function recipeOf(options: Partial<TrainOptions>): TrainOptions {
  const recipe: TrainOptions = { ...DEFAULT_TRAIN_OPTIONS };
  for (const key of TRAIN_KEYS) {
    if (options[key] !== undefined) (recipe as unknown as Record<string, unknown>)[key] = options[key];
  }
  if (options.warmupRatio !== undefined && options.warmupSteps === undefined) recipe.warmupSteps = undefined;
  return recipe;
}

/** Runs `check`; a RangeError naming a CLI flag ("--batch-size") is re-thrown naming the option. */
function withOptionNames(fn: string, check: () => void): void {
  try {
    check();
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    const message = e.message.replace(
      /--([a-z-]+)/g,
      (_, flag: string) => flag.replace(/-([a-z])/g, (_m: string, c: string) => c.toUpperCase()),
    );
    throw new RangeError(`${fn}: ${message}`, { cause: e });
  }
}

function checkDataset(value: unknown, what: string, fn: string): Dataset {
  const ds = value as Dataset | undefined;
  if (typeof ds !== "object" || ds === null || !Array.isArray(ds.examples) || !Array.isArray(ds.labels)) {
    throw new TypeError(
      `${fn}: ${what} is ${
        ds === null ? "null" : typeof ds
      }, not a data set; pass { name, labels, examples } as loadTable() or loadCola() return`,
    );
  }
  return ds;
}

/** The model's config and weights, with labels and dropout applied, and a tokenizer. */
async function resolveModel(
  model: ModelSource,
  fn: string,
  options: {
    labels: readonly string[];
    /** Evaluation keeps a folder's labels and needs its trained head; training replaces the labels. */
    trained?: boolean;
    dropout?: number;
    seed?: number;
    tokenizer?: RunTokenizer;
  },
): Promise<{ config: BertConfig; weights: Weights; tokenizer: RunTokenizer }> {
  let config: BertConfig;
  let weights: Weights;
  if (typeof model === "string" && options.trained) {
    const loaded = await loadModel(model, { dropout: 0 });
    if (loaded.initialized.length) {
      throw new RangeError(
        `${fn}: model folder "${model}" has no trained classifier (${loaded.source} lacks ${
          loaded.initialized.join(", ")
        }); fine-tune it first`,
      );
    }
    if (numLabels(loaded.config) !== options.labels.length) {
      throw new RangeError(
        `${fn}: model folder "${model}" has ${numLabels(loaded.config)} labels but the data has ` +
          `${options.labels.length}; load the data with the model's label2id`,
      );
    }
    config = loaded.config;
    weights = loaded.weights;
  } else if (typeof model === "string") {
    // A folder's classifier head follows the data's labels (a new head is initialised, seeded).
    const loaded = await loadModel(model, {
      labels: options.labels,
      dropout: options.dropout,
      seed: options.seed,
    });
    config = loaded.config;
    weights = loaded.weights;
  } else if (typeof model === "object" && model !== null && model.config && model.weights instanceof Map) {
    const labels = Object.values(model.config.id2label);
    if (numLabels(model.config) !== options.labels.length) {
      throw new RangeError(
        `${fn}: the model has ${numLabels(model.config)} labels (${labels.join(", ")}) but the data has ` +
          `${options.labels.length} (${options.labels.join(", ")}); create the config with ` +
          `createModelConfig({ labels: data.labels, ... })`,
      );
    }
    const dropout = options.dropout;
    if (dropout !== undefined && !(dropout >= 0 && dropout < 1)) {
      throw new RangeError(`${fn}: dropout ${dropout} is outside [0, 1); pass e.g. 0.1, or 0 to turn it off`);
    }
    config = dropout === undefined
      ? model.config
      : { ...model.config, hidden_dropout_prob: dropout, attention_probs_dropout_prob: dropout };
    weights = model.weights;
  } else {
    throw new TypeError(
      `${fn}: model is ${
        model === null ? "null" : typeof model
      }; pass a model folder path or { config, weights } (createModelConfig() and initWeights())`,
    );
  }
  let tokenizer = options.tokenizer;
  if (tokenizer === undefined) {
    if (typeof model !== "string") {
      throw new TypeError(
        `${fn}: options.tokenizer is missing; a model in memory needs one (loadTokenizer() or tokenizerFromVocab())`,
      );
    }
    try {
      tokenizer = await loadTokenizer(model);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      throw new Deno.errors.NotFound(
        `${fn}: model folder "${model}" has no tokenizer.json or vocab.txt; pass options.tokenizer`,
        { cause: e },
      );
    }
  } else if (typeof tokenizer?.encodeBatch !== "function") {
    throw new TypeError(
      `${fn}: options.tokenizer has no encodeBatch(); pass a Tokenizer from loadTokenizer()`,
    );
  }
  const vocabSize = (tokenizer as { vocabSize?: unknown }).vocabSize;
  if (typeof vocabSize === "number" && vocabSize > config.vocab_size) {
    throw new RangeError(
      `${fn}: the tokenizer has ${vocabSize} tokens but the model's vocab_size is ${config.vocab_size}; ` +
        `create the config with createModelConfig({ vocabSize: tokenizer.vocabSize, ... })`,
    );
  }
  return { config, weights, tokenizer };
}

/**
 * A fresh BERT classifier config with Hugging Face field names: a tiny architecture (or
 * bert-base's), the given vocabulary size and labels. Pair it with `initWeights(config, seed)` to
 * train from scratch.
 * @param options The vocabulary size (required), labels, size preset, dropout and any config.json field.
 * @returns A validated {@linkcode BertConfig}.
 * @throws {RangeError} for a vocabulary size that is not a positive integer, or an unsupported field
 *   value (the message names the field).
 * @example
 * ```ts
 * import { createModelConfig } from "../mod.ts";
 * const config = createModelConfig({ vocabSize: 100, labels: ["no", "yes"], config: { num_hidden_layers: 1 } });
 * console.log(config.hidden_size, config.num_hidden_layers, config.id2label); // 64 1 { "0": "no", "1": "yes" }
 * ```
 */
export function createModelConfig(options: ModelConfigOptions): BertConfig {
  const { vocabSize, size = "tiny" } = options ?? {};
  if (!Number.isInteger(vocabSize) || vocabSize < 1) {
    throw new RangeError(
      `createModelConfig(): vocabSize ${vocabSize} must be a positive integer; pass tokenizer.vocabSize`,
    );
  }
  if (size !== "tiny" && size !== "base") {
    throw new RangeError(`createModelConfig(): size "${size}" is unknown; use "tiny" or "base"`);
  }
  const shape = size === "tiny" ? { ...BERT_BASE, ...TINY } : BERT_BASE;
  return parseBertConfig({ ...shape, ...options.config, vocab_size: vocabSize }, "createModelConfig()", {
    labels: options.labels ?? ["LABEL_0", "LABEL_1"],
    dropout: options.dropout,
  });
}

/**
 * Fine-tunes (or trains from scratch) a BERT classifier on WebGPU with the tutorial's recipe:
 * AdamW, linear schedule, gradient clipping, an evaluation after every epoch and on the test sets at
 * the end. The run folder is the CLI's (`deno task train`): resumable, with metrics and a loss curve.
 * @param model A model folder (its classifier head follows `data.train.labels`) or `{ config, weights }`.
 * @param data The training data, with optional validation and named test sets.
 * @param options The recipe (defaults: {@linkcode DEFAULT_TRAIN_OPTIONS}), tokenizer, run folder,
 *   progress callbacks, abort signal and device.
 * @returns The trained config and weights, per-step and per-epoch logs, test figures and the run folder.
 * @throws {TypeError} for a missing tokenizer, an unknown option or data that is not a data set;
 *   {RangeError} for a bad recipe value (naming the option) or labels that do not match the model;
 *   `NonFiniteLossError` when the loss diverges.
 * @example
 * ```ts
 * import { createModelConfig, fineTune, initWeights, tokenizerFromVocab } from "../mod.ts";
 *
 * const tokenizer = tokenizerFromVocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "yes", "no"]);
 * const examples = Array.from({ length: 8 }, (_, i) => ({ text: i % 2 ? "yes" : "no", label: i % 2 }));
 * const train = { name: "toy", labels: ["no", "yes"], examples };
 * const config = createModelConfig({ vocabSize: tokenizer.vocabSize, labels: train.labels });
 * const losses: number[] = [];
 * const result = await fineTune({ config, weights: initWeights(config, 7) }, { train }, {
 *   tokenizer,
 *   epochs: 2,
 *   batchSize: 4,
 *   maxLength: 4,
 *   lr: 1e-3,
 *   onStep: (log) => losses.push(log.loss),
 * });
 * console.log(losses.length, result.epochs.length, result.output); // 4 2 null
 * ```
 */
export async function fineTune(
  model: ModelSource,
  data: TrainingData,
  options: FineTuneOptions = {},
): Promise<FineTuneResult> {
  const fn = "fineTune()";
  for (const key of Object.keys(options ?? {})) {
    if (!FINE_TUNE_KEYS.has(key)) {
      throw new TypeError(
        `${fn}: unknown option "${key}"; the options are ${[...FINE_TUNE_KEYS].join(", ")}`,
      );
    }
  }
  if (typeof data !== "object" || data === null) {
    throw new TypeError(
      `${fn}: data is ${data === null ? "null" : typeof data}; pass { train, validation?, tests? }`,
    );
  }
  const train = checkDataset(data.train, "data.train", fn);
  const validation = data.validation == null ? null : checkDataset(data.validation, "data.validation", fn);
  const tests: Record<string, Dataset> = {};
  for (const [name, ds] of Object.entries(data.tests ?? {})) {
    tests[name] = checkDataset(ds, `data.tests.${name}`, fn);
  }
  if (options.resume && options.output === undefined) {
    throw new TypeError(`${fn}: resume needs the run folder; pass { output: "<run folder>", resume: true }`);
  }
  const recipe = recipeOf(options);
  const { config, weights, tokenizer } = await resolveModel(model, fn, {
    labels: train.labels,
    dropout: options.dropout,
    seed: recipe.seed,
    tokenizer: options.tokenizer,
  });
  withOptionNames(fn, () => validateTrainOptions(recipe, config));

  const temporary = options.output === undefined;
  const output = options.output ?? await Deno.makeTempDir({ prefix: "bert-webgpu-run-" });
  const gpu = options.gpu ?? await Gpu.create();
  const signal = options.signal;
  try {
    const run = await runTraining(
      gpu,
      { config, weights },
      tokenizer,
      { train, validation, tests },
      { ...recipe, output, resume: options.resume },
      {
        onStep: options.onStep,
        onEpoch: options.onEpoch,
        onMessage: options.onMessage,
        shouldStop: signal ? () => signal.aborted : undefined,
      },
    );
    // Every epoch end and every stop writes the model folder: read the final weights from it.
    const trained = await loadModel(output);
    const kept = !temporary || options.keepOutput === true;
    return {
      config: trained.config,
      weights: trained.weights,
      steps: run.steps,
      epochs: run.epochs,
      tests: run.tests,
      output: kept ? output : null,
      stopped: run.stopped,
    };
  } finally {
    if (options.gpu === undefined) gpu.device.destroy();
    if (temporary && !options.keepOutput) await Deno.remove(output, { recursive: true }).catch(() => {});
  }
}

/**
 * Evaluates a classifier on a labelled data set on WebGPU (dropout off, dynamic padding): loss,
 * accuracy, Matthews correlation, F1 (binary for two labels, else macro) and every prediction.
 * @param model A model folder with a trained classifier head, or `{ config, weights }` (e.g. a
 *   {@linkcode fineTune} result).
 * @param data A data set whose labels are the model's (same count, same ids).
 * @param options Tokenizer (required for a model in memory without one), batch size, truncation
 *   length and device.
 * @returns The figures and the predicted class id (or regression value) of each example, in order.
 * @throws {TypeError} for a missing tokenizer or data that is not a data set; {RangeError} when the
 *   data's label count differs from the model's or the folder has no trained classifier.
 * @example
 * ```ts
 * import { createModelConfig, evaluate, initWeights, tokenizerFromVocab } from "../mod.ts";
 *
 * const tokenizer = tokenizerFromVocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "yes", "no"]);
 * const data = { name: "toy", labels: ["no", "yes"], examples: [{ text: "yes", label: 1 }, { text: "no", label: 0 }] };
 * const config = createModelConfig({ vocabSize: tokenizer.vocabSize, labels: data.labels });
 * const result = await evaluate({ config, weights: initWeights(config, 1) }, data, { tokenizer });
 * console.log(result.examples, result.predictions.length); // 2 2
 * ```
 */
export async function evaluate(
  model: ModelSource,
  data: Dataset,
  options: EvaluateOptions = {},
): Promise<EvalResult> {
  const fn = "evaluate()";
  const ds = checkDataset(data, "data", fn);
  const resolved = await resolveModel(model, fn, {
    labels: ds.labels,
    trained: true,
    tokenizer: options.tokenizer,
  });
  const { config } = resolved;
  const recipe: TrainOptions = {
    ...DEFAULT_TRAIN_OPTIONS,
    batchSize: options.batchSize ?? 32,
    maxLength: options.maxLength ?? Math.min(DEFAULT_TRAIN_OPTIONS.maxLength, config.max_position_embeddings),
    dynamicPadding: true,
    shuffle: false,
  };
  withOptionNames(fn, () => validateTrainOptions(recipe, config));
  const gpu = options.gpu ?? await Gpu.create();
  try {
    const trainer = new Trainer(gpu, config, resolved.weights, resolved.tokenizer, recipe);
    return await trainer.evaluate(ds);
  } finally {
    if (options.gpu === undefined) gpu.device.destroy();
  }
}

/**
 * Writes a model folder in Hugging Face's layout: model.safetensors, config.json (with id2label) and,
 * when a tokenizer is given, its files. {@linkcode loadModel}, {@linkcode fineTune}, `exportModel()`
 * and Hugging Face `transformers` read it back.
 * @param dir The folder (created when missing; files in it are replaced atomically).
 * @param model The config and weights to save.
 * @param options The tokenizer whose files to save alongside.
 * @returns The folder path, as given.
 * @throws {RangeError} when a parameter of the architecture is missing from `model.weights`.
 * @example
 * ```ts
 * import { createModelConfig, initWeights, loadModel, saveModelFolder } from "../mod.ts";
 *
 * const config = createModelConfig({ vocabSize: 10, labels: ["a", "b", "c"] });
 * const dir = await saveModelFolder(await Deno.makeTempDir(), { config, weights: initWeights(config, 3) });
 * const loaded = await loadModel(dir);
 * console.log(loaded.config.id2label["2"], loaded.initialized.length); // c 0
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function saveModelFolder(
  dir: string,
  model: ModelWeights,
  options: SaveModelOptions = {},
): Promise<string> {
  if (typeof dir !== "string" || dir === "") {
    throw new TypeError(`saveModelFolder(): dir ${JSON.stringify(dir)} must be a folder path`);
  }
  if (typeof model !== "object" || model === null || !(model.weights instanceof Map)) {
    throw new TypeError(`saveModelFolder(): model must be { config, weights }, got ${typeof model}`);
  }
  await saveModel(dir, model.config, model.weights, options.tokenizer?.files?.());
  return dir;
}
