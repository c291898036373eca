/**
 * Host-side weights: fresh initialisation as Hugging Face's `_init_weights` does it (seeded), and
 * matching a loaded state dict against the model's parameter specs.
 * @module
 */

import { Rng } from "../kernels/random.ts";
import type { BertConfig } from "./config.ts";
import { parameterSpecs, type ParamSpec } from "./params.ts";

/** Parameters by Hugging Face name, float32, PyTorch layout. */
export type Weights = Map<string, Float32Array>;

/** Elements in a shape. */
export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Fresh values for one parameter: normal(0, initializer_range), zeros or ones. */
export function initParameter(spec: ParamSpec, config: BertConfig, rng: Rng): Float32Array {
  const data = new Float32Array(numel(spec.shape));
  if (spec.init === "ones") data.fill(1);
  else if (spec.init === "normal") {
    for (let i = 0; i < data.length; i++) data[i] = rng.normal() * config.initializer_range;
    // nn.Embedding(padding_idx=pad_token_id): HF zeroes the padding row.
    if (spec.name === "bert.embeddings.word_embeddings.weight") {
      const H = config.hidden_size;
      data.fill(0, config.pad_token_id * H, (config.pad_token_id + 1) * H);
    }
  }
  return data;
}

/**
 * A whole model initialised from scratch as Hugging Face initialises BERT: normal(0,
 * initializer_range) weights, zero biases, unit LayerNorm scales, a zero [PAD] embedding row.
 * @param config The architecture (e.g. from `createModelConfig()`).
 * @param seed Seeds every draw: the same seed gives the same weights.
 * @returns Every parameter by Hugging Face name, float32, PyTorch `[out, in]` layout.
 * @example
 * ```ts
 * import { initWeights } from "./weights.ts";
 * import { createModelConfig } from "./api.ts";
 * const weights = initWeights(createModelConfig({ vocabSize: 20, labels: ["a", "b", "c"] }), 42);
 * console.log(weights.get("classifier.weight")!.length); // 192 (3 labels x hidden 64)
 * ```
 */
export function initWeights(config: BertConfig, seed: number): Weights {
  const rng = new Rng(seed);
  const out: Weights = new Map();
  for (const spec of parameterSpecs(config)) out.set(spec.name, initParameter(spec, config, rng));
  return out;
}

/** What {@linkcode matchWeights} found. */
export interface WeightReport {
  /** Every parameter of the architecture, by Hugging Face name. */
  weights: Weights;
  /** Parameters the checkpoint lacked, freshly initialised (HF: "newly initialized"). */
  initialized: string[];
  /** Checkpoint tensors the model does not use (e.g. the MLM head). */
  unexpected: string[];
}

/** Names HF uses for the same tensor: bare BertModel names and old LayerNorm gamma/beta. */
function candidates(name: string): string[] {
  const names = [name];
  if (name.startsWith("bert.")) names.push(name.slice(5));
  for (const n of [...names]) {
    if (n.endsWith("LayerNorm.weight")) names.push(n.replace(/weight$/, "gamma"));
    if (n.endsWith("LayerNorm.bias")) names.push(n.replace(/bias$/, "beta"));
  }
  return names;
}

/**
 * Matches checkpoint tensors to the model: accepts `bert.`-prefixed and bare names, initialises what
 * is missing (a fresh classifier head, as HF does) and reports unused tensors.
 * @throws {RangeError} when a tensor has the wrong shape (names the tensor and both shapes), or when
 * encoder weights are missing (only the pooler and classifier may be new).
 */
export function matchWeights(
  tensors: Map<string, { shape: number[]; data: Float32Array }>,
  config: BertConfig,
  options: { seed?: number; source?: string } = {},
): WeightReport {
  const source = options.source ?? "checkpoint";
  const rng = new Rng(options.seed ?? 42);
  const used = new Set<string>();
  const weights: Weights = new Map();
  const initialized: string[] = [];
  const missing: string[] = [];
  for (const spec of parameterSpecs(config)) {
    const found = candidates(spec.name).find((n) => tensors.has(n));
    if (found === undefined) {
      if (spec.name.startsWith("classifier.") || spec.name.startsWith("bert.pooler.")) {
        initialized.push(spec.name);
        weights.set(spec.name, initParameter(spec, config, rng));
      } else missing.push(spec.name);
      continue;
    }
    const t = tensors.get(found)!;
    used.add(found);
    if (t.shape.length !== spec.shape.length || t.shape.some((d, i) => d !== spec.shape[i])) {
      throw new RangeError(
        `Cannot load checkpoint "${source}": tensor "${found}" has shape [${t.shape}], expected [${spec.shape}]` +
          (spec.name.startsWith("classifier.")
            ? " (a different number of labels: pass the labels of this data set)"
            : ""),
      );
    }
    weights.set(spec.name, t.data);
  }
  if (missing.length) {
    throw new RangeError(
      `Cannot load checkpoint "${source}": ${missing.length} tensors are missing, e.g. ${
        missing.slice(0, 5).map((n) => `"${n}"`).join(", ")
      }; is it a BERT checkpoint with this config?`,
    );
  }
  const unexpected = [...tensors.keys()].filter((n) => !used.has(n));
  return { weights, initialized, unexpected };
}
