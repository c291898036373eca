/**
 * Model folders in Hugging Face's layout (model.safetensors + config.json + tokenizer files), and
 * the training state beside them (optimizer moments, step, data position, RNG) for exact resume.
 * Every file is written atomically.
 * @module
 */

import { join } from "node:path";
import { readSafetensors, serializeSafetensors, type TensorToWrite } from "../formats/safetensors.ts";
import { loadCheckpointTensors } from "../formats/checkpoint_files.ts";
import { type BertConfig, type ConfigOverrides, configToJson, parseBertConfig } from "./config.ts";
import { parameterSpecs } from "./params.ts";
import { matchWeights, type WeightReport, type Weights } from "./weights.ts";
import type { MomentState } from "./optimizer.ts";
import { writeFileAtomic } from "./atomic.ts";

/** File names inside a model folder. */
export const FILES = {
  weights: "model.safetensors",
  config: "config.json",
  state: "training_state.safetensors",
} as const;

/** The model's tensors in HF order, ready for {@linkcode serializeSafetensors}. */
function modelTensors(config: BertConfig, weights: Weights): [string, TensorToWrite][] {
  return parameterSpecs(config).map((spec) => {
    const data = weights.get(spec.name);
    if (!data) throw new RangeError(`Cannot save: parameter "${spec.name}" is missing`);
    return [spec.name, { shape: spec.shape, data }];
  });
}

/** The bytes of `model.safetensors` (deterministic: the same weights give the same bytes). */
export function modelSafetensors(config: BertConfig, weights: Weights): Uint8Array {
  return serializeSafetensors(modelTensors(config, weights), { format: "pt" });
}

/** Writes model.safetensors and config.json (and tokenizer files when given) into `dir`. */
export async function saveModel(
  dir: string,
  config: BertConfig,
  weights: Weights,
  tokenizerFiles?: Record<string, Uint8Array | string | Record<string, unknown>>,
): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await writeFileAtomic(join(dir, FILES.weights), modelSafetensors(config, weights));
  await writeFileAtomic(join(dir, FILES.config), JSON.stringify(configToJson(config), null, 2) + "\n");
  for (const [name, content] of Object.entries(tokenizerFiles ?? {})) {
    const data = typeof content === "string" || content instanceof Uint8Array
      ? content
      : JSON.stringify(content, null, 2) + "\n";
    await writeFileAtomic(join(dir, name), data);
  }
}

/** A model folder read back: config, weights matched to the architecture, and what was new/unused. */
export interface LoadedModel extends WeightReport {
  /** The validated config.json (labels and dropout overridden when asked). */
  config: BertConfig;
  /** The weights file(s) read. */
  source: string;
}

/**
 * Reads a Hugging Face model folder: config.json plus model.safetensors (or shards, or
 * pytorch_model.bin). Parameters the checkpoint lacks (a fresh classifier head) are initialised as HF
 * does, seeded.
 * @param dir The folder, e.g. a run folder, `downloadModelFiles("bert-base-uncased")` or a
 *   `transformers` `save_pretrained()` folder.
 * @param options `labels` (replaces the config's labels: a new head for a new task), `dropout`
 *   (overrides both probabilities) and `seed` (of a new head).
 * @returns The config, the weights, and which parameters were newly initialised or unused.
 * @throws {Deno.errors.NotFound} without config.json or a weights file; {SyntaxError} for invalid
 *   JSON; {RangeError} for an unsupported config or a tensor of the wrong shape (naming both shapes).
 * @example
 * ```ts
 * import { loadModel, saveModel } from "./checkpoint.ts";
 * import { createModelConfig } from "./api.ts";
 * import { initWeights } from "./weights.ts";
 * const config = createModelConfig({ vocabSize: 20 });
 * const dir = await Deno.makeTempDir();
 * await saveModel(dir, config, initWeights(config, 1));
 * const model = await loadModel(dir, { dropout: 0 });
 * console.log(model.config.hidden_dropout_prob, model.weights.size, model.initialized); // 0 41 []
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function loadModel(
  dir: string,
  options: ConfigOverrides & { seed?: number } = {},
): Promise<LoadedModel> {
  const configPath = join(dir, FILES.config);
  let text: string;
  try {
    text = await Deno.readTextFile(configPath);
  } catch (e) {
    const Kind = e instanceof Deno.errors.NotFound ? Deno.errors.NotFound : Error;
    throw new Kind(
      `Cannot read "${configPath}" (${
        (e as Error).message
      }): a model folder needs config.json and model.safetensors`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SyntaxError(`Config "${configPath}" is not valid JSON: ${(e as Error).message}`);
  }
  const config = parseBertConfig(json, configPath, options);
  const loaded = await loadCheckpointTensors(dir);
  const floats = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, t] of loaded.tensors) {
    if (t.data instanceof Float32Array) floats.set(name, { shape: t.shape, data: t.data });
  }
  const source = loaded.files.join(", ");
  const report = matchWeights(floats, config, { seed: options.seed, source });
  return { config, source, ...report };
}

/** Everything beyond the weights that an exact resume needs. */
export interface TrainingState {
  /** Optimizer steps taken. */
  step: number;
  /** Epoch to continue in (0-based) and the number of its batches already consumed. */
  epoch: number;
  batchInEpoch: number;
  /** Free-form JSON (options, RNG state, metrics so far). */
  info: Record<string, unknown>;
  moments: Map<string, MomentState>;
}

/** Writes training_state.safetensors: moments as tensors, the rest as JSON metadata. */
export async function saveTrainingState(dir: string, state: TrainingState): Promise<void> {
  const tensors: [string, TensorToWrite][] = [];
  for (const [name, m] of state.moments) {
    tensors.push([`exp_avg.${name}`, { shape: [m.expAvg.length], data: m.expAvg }]);
    tensors.push([`exp_avg_sq.${name}`, { shape: [m.expAvgSq.length], data: m.expAvgSq }]);
  }
  const meta = {
    step: String(state.step),
    epoch: String(state.epoch),
    batch_in_epoch: String(state.batchInEpoch),
    info: JSON.stringify(state.info),
  };
  await writeFileAtomic(join(dir, FILES.state), serializeSafetensors(tensors, meta));
}

/** Reads training_state.safetensors written by {@linkcode saveTrainingState}. */
export async function loadTrainingState(dir: string): Promise<TrainingState> {
  const path = join(dir, FILES.state);
  const file = await readSafetensors(path);
  const moments = new Map<string, MomentState>();
  for (const [key, t] of file.tensors) {
    if (!key.startsWith("exp_avg.")) continue;
    const name = key.slice("exp_avg.".length);
    const sq = file.tensors.get(`exp_avg_sq.${name}`);
    if (!sq) throw new SyntaxError(`Training state "${path}" lacks exp_avg_sq for "${name}"`);
    moments.set(name, { expAvg: t.data as Float32Array, expAvgSq: sq.data as Float32Array });
  }
  const m = file.metadata;
  const int = (k: string) => {
    const v = Number(m[k]);
    if (!Number.isInteger(v) || v < 0) throw new SyntaxError(`Training state "${path}": "${k}" is ${m[k]}`);
    return v;
  };
  let info: Record<string, unknown>;
  try {
    info = JSON.parse(m.info ?? "{}");
  } catch {
    throw new SyntaxError(`Training state "${path}": "info" metadata is not JSON`);
  }
  return { step: int("step"), epoch: int("epoch"), batchInEpoch: int("batch_in_epoch"), info, moments };
}
