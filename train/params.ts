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
  /**
   * Tensors sharing a pack sit back to back in a flat arena, with no padding between them, in spec
   * order, the pack starting where its first member would (fused kernels bind them as one tensor).
   */
  pack?: string;
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
    /** Packs of the query, key and value weights (`.weight`) and biases (`.bias`): one fused projection. */
    qkv: `${p}.attention.self.qkv`,
  };
}

/** Every parameter of the model, in Hugging Face's state_dict order. */
export function parameterSpecs(config: BertConfig): ParamSpec[] {
  const H = config.hidden_size;
  const I = config.intermediate_size;
  const specs: ParamSpec[] = [];
  const linear = (name: string, out: number, inp: number, pack?: { weight?: string; bias?: string }) => {
    specs.push({ name: `${name}.weight`, shape: [out, inp], init: "normal", pack: pack?.weight });
    specs.push({ name: `${name}.bias`, shape: [out], init: "zeros", pack: pack?.bias });
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
    // Q, K and V weights adjacent, and their biases: one fused [3·hidden, hidden] projection.
    const qkv = { weight: `${n.qkv}.weight`, bias: `${n.qkv}.bias` };
    linear(n.query, H, H, qkv);
    linear(n.key, H, H, qkv);
    linear(n.value, H, H, qkv);
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
  /**
   * In state_dict order: element offset and count. Offsets are multiples of FLAT_ALIGN_BYTES / 4 except
   * inside a pack, whose members follow each other with no gap (offsets then need not increase).
   */
  entries: { name: string; offset: number; length: number }[];
  /** Elements of the arena, padding included (a multiple of FLAT_ALIGN_BYTES / 4). */
  total: number;
}

/**
 * The flat layout of `specs`: state_dict order, each tensor (or pack) at the next aligned offset; the
 * members of a pack back to back from the pack's offset.
 * @example
 * ```ts
 * import { flatLayout } from "./params.ts";
 * const l = flatLayout([{ name: "w", shape: [3, 5], init: "normal" }, { name: "b", shape: [3], init: "zeros" }]);
 * // l.entries[1].offset === 64 (15 floats padded to 256 bytes); l.total === 128
 * ```
 */
export function flatLayout(specs: readonly ParamSpec[]): FlatLayout {
  const align = FLAT_ALIGN_BYTES / 4;
  const numelOf = (spec: ParamSpec) => spec.shape.reduce((a, b) => a * b, 1);
  const offsets = new Map<string, number>();
  let at = 0;
  for (const spec of specs) {
    if (offsets.has(spec.name)) continue;
    const members = spec.pack === undefined ? [spec] : specs.filter((s) => s.pack === spec.pack);
    let end = at;
    for (const m of members) {
      offsets.set(m.name, end);
      end += numelOf(m);
    }
    at += Math.ceil((end - at) / align) * align;
  }
  const entries = specs.map((spec) => ({
    name: spec.name,
    offset: offsets.get(spec.name)!,
    length: numelOf(spec),
  }));
  return { entries, total: at };
}
