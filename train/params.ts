/**
 * The parameter layout of BertForSequenceClassification, stated in one place: Hugging Face names
 * and PyTorch shapes. Linear weights are [out, in] (nn.Linear), embeddings [rows, hidden],
 * LayerNorm weight/bias [hidden].
 * @module
 */

import { type BertConfig, numLabels } from "./config.ts";

/** One named parameter. */
export interface ParamSpec {
  name: string;
  shape: number[];
  /** How a fresh parameter is initialised (HF `_init_weights`). */
  init: "normal" | "zeros" | "ones";
}

/** Names of one encoder layer's parameters, with the layer prefix. */
export function layerNames(i: number) {
  const p = `bert.encoder.layer.${i}`;
  return {
    query: `${p}.attention.self.query`,
    key: `${p}.attention.self.key`,
    value: `${p}.attention.self.value`,
    attnOut: `${p}.attention.output.dense`,
    attnLn: `${p}.attention.output.LayerNorm`,
    inter: `${p}.intermediate.dense`,
    out: `${p}.output.dense`,
    outLn: `${p}.output.LayerNorm`,
  };
}

/** Every parameter of the model, in Hugging Face's state_dict order. */
export function parameterSpecs(config: BertConfig): ParamSpec[] {
  const H = config.hidden_size;
  const I = config.intermediate_size;
  const specs: ParamSpec[] = [];
  const linear = (name: string, out: number, inp: number) => {
    specs.push({ name: `${name}.weight`, shape: [out, inp], init: "normal" });
    specs.push({ name: `${name}.bias`, shape: [out], init: "zeros" });
  };
  const layerNorm = (name: string) => {
    specs.push({ name: `${name}.weight`, shape: [H], init: "ones" });
    specs.push({ name: `${name}.bias`, shape: [H], init: "zeros" });
  };
  specs.push({
    name: "bert.embeddings.word_embeddings.weight",
    shape: [config.vocab_size, H],
    init: "normal",
  });
  specs.push({
    name: "bert.embeddings.position_embeddings.weight",
    shape: [config.max_position_embeddings, H],
    init: "normal",
  });
  specs.push({
    name: "bert.embeddings.token_type_embeddings.weight",
    shape: [config.type_vocab_size, H],
    init: "normal",
  });
  layerNorm("bert.embeddings.LayerNorm");
  for (let i = 0; i < config.num_hidden_layers; i++) {
    const n = layerNames(i);
    linear(n.query, H, H);
    linear(n.key, H, H);
    linear(n.value, H, H);
    linear(n.attnOut, H, H);
    layerNorm(n.attnLn);
    linear(n.inter, I, H);
    linear(n.out, H, I);
    layerNorm(n.outLn);
  }
  linear("bert.pooler.dense", H, H);
  linear("classifier", numLabels(config), H);
  return specs;
}

/** Number of scalar parameters. */
export function parameterCount(config: BertConfig): number {
  return parameterSpecs(config).reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0);
}

/** Bytes every tensor of a flat arena is aligned to: WebGPU's largest minStorageBufferOffsetAlignment. */
export const FLAT_ALIGN_BYTES = 256;

/** Where each parameter sits in a flat arena (parameters, gradients and both moments share it). */
export interface FlatLayout {
  /** In state_dict order: element offset (a multiple of FLAT_ALIGN_BYTES / 4) and element count. */
  entries: { name: string; offset: number; length: number }[];
  /** Elements of the arena, padding included (a multiple of FLAT_ALIGN_BYTES / 4). */
  total: number;
}

/**
 * The flat layout of `specs`: state_dict order, each tensor at the next aligned offset.
 * @example
 * ```ts
 * import { flatLayout } from "./params.ts";
 * const l = flatLayout([{ name: "w", shape: [3, 5], init: "normal" }, { name: "b", shape: [3], init: "zeros" }]);
 * // l.entries[1].offset === 64 (15 floats padded to 256 bytes); l.total === 128
 * ```
 */
export function flatLayout(specs: readonly ParamSpec[]): FlatLayout {
  const align = FLAT_ALIGN_BYTES / 4;
  let at = 0;
  const entries = specs.map((spec) => {
    const length = spec.shape.reduce((a, b) => a * b, 1);
    const entry = { name: spec.name, offset: at, length };
    at += Math.ceil(length / align) * align;
    return entry;
  });
  return { entries, total: at };
}
