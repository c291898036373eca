/**
 * Attention softmax with the scale and padding mask fused in, exactly as Hugging Face BERT computes
 * it: v = scores·scale + (1 - mask)·finfo(float32).min, probs = softmax(v) over the key axis.
 *
 * scores and probs are (B·H, T, T) row-major (query rows, key columns); the mask is (B, T) float32
 * with 1 for tokens to attend to and 0 for padding (the `attention_mask` of the batch as f32).
 * A masked key gets probability exactly 0 whenever its row has an unmasked key; a row whose keys are
 * all masked comes out uniform, as in PyTorch.
 *
 * Backward: dscores = scale · probs ⊙ (dprobs - Σ_j dprobs·probs), the gradient w.r.t. the raw
 * (unscaled) scores; the mask has no gradient.
 *
 * `dtype` "f16" stores scores, probs, dropped, dprobs and dscores as float16 (the mask stays float32;
 * the softmax runs in float32). The finite-difference and PyTorch tests stay on the f32 path.
 * @module
 */

import {
  type Dispatch,
  type Dtype,
  dtypeBytes,
  type Gpu,
  grid,
  type Param,
  requireDtype,
  wgslEnable,
} from "./runtime.ts";
import { checkBuffer, checkCount } from "./_checks.ts";
import { dropoutHashWgsl, dropoutMaskRef, dropoutScale, dropoutThreshold } from "./dropout.ts";

/**
 * Attention dropout fused into the softmax (one dispatch each way instead of two). The mask is
 * {@linkcode dropout}'s on the flat (B·H, T, T) index, so the fused and separate forms agree exactly.
 */
export interface SoftmaxDropout {
  /** Drop probability in [0, 1). */
  p: number;
  /** u32 storage buffer; word 0 is the step's seed. */
  seed: GPUBuffer;
  /** Per-site constant (layer·8 + site), a u32. */
  stream: number;
}

/**
 * Threads per workgroup: one row's threads (a power of two for the tree reduction; T is at most 512),
 * or the rows of one workgroup in the fallback.
 */
const WG = 64;

/** torch.finfo(torch.float32).min, the additive mask value Hugging Face uses for float32 models. */
export const F32_MIN: number = -3.4028234663852886e38;

/**
 * exp(d) for d <= 0, exactly 0 below -104 (where float32 exp underflows anyway), so a masked key
 * (d ≈ -3.4e38) is 0 even where a driver's exp approximation misbehaves for huge arguments.
 */
const SAFE_EXP = /* wgsl */ `
fn safeExp(d: f32) -> f32 { return select(exp(d), 0.0, d < -104.0); }`;

/**
 * Which row kernel runs: "workgroup" (one workgroup per row, tree reductions in workgroup memory:
 * real GPUs), "fallback" (one thread per row, no barriers: software adapters such as lavapipe, where
 * barriers are slow), or "auto" (fallback exactly when `gpu.isFallback`).
 */
export type SoftmaxVariant = "auto" | "fallback" | "workgroup";

/**
 * The parts of a row kernel that differ between the variants: entry point, how the row and the
 * thread's first column are found, the column loop step, and the row reductions (trees over the
 * workgroup, or nothing when one thread owns the row).
 */
function rowKernel(perThread: boolean): { attrs: string; head: string; step: string; reduce: string } {
  if (perThread) {
    return {
      attrs: `@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {`,
      head: `let row = gid.x + gid.y * nwg.x * ${WG}u;
  let first = 0u;`,
      step: "1u",
      reduce: `fn reduceMax(v: f32) -> f32 { return v; }
fn reduceSum(v: f32) -> f32 { return v; }`,
    };
  }
  const tree = (name: string, combine: string) => /* wgsl */ `
fn ${name}(v: f32) -> f32 { // from uniform control flow only
  red[lid] = v;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] = ${combine}; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}`;
  return {
    attrs: `var<private> lid: u32;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) localIndex: u32) {
  lid = localIndex;`,
    head: `let row = wg.x + wg.y * nwg.x;
  let first = lid;`,
    step: `${WG}u`,
    reduce: `var<workgroup> red: array<f32, ${WG}>;${tree("reduceMax", "max(red[lid], red[lid + s])")}${
      tree("reduceSum", "red[lid] + red[lid + s]")
    }`,
  };
}

function usePerThread(gpu: Gpu, variant: SoftmaxVariant): boolean {
  return variant === "fallback" || (variant === "auto" && gpu.isFallback);
}

function rowGroups(rows: number, perThread: boolean): [number, number] {
  return perThread ? grid(rows, WG) : grid(rows, 1);
}

function checkScale(op: string, scale: number): void {
  if (!Number.isFinite(scale)) throw new RangeError(`${op}: scale must be finite, got ${scale}`);
}

/** WGSL for the forward, one (b, h, query) row per workgroup or, with `perThread`, per thread. */
export function attentionSoftmaxForwardWgsl(dtype: Dtype = "f32", perThread = false, drop = false): string {
  const k = rowKernel(perThread);
  const store = drop
    ? `let pr = safeExp(v - rowMax) / total;
    probs[base + j] = ${dtype}(pr);
    let keep = dropoutHash(seed[0], p.stream, base + j) >= p.threshold;
    dropped[base + j] = select(${dtype}(0.0), ${dtype}(pr * p.dscale), keep);`
    : `probs[base + j] = ${dtype}(safeExp(v - rowMax) / total);`;
  return wgslEnable(dtype) + /* wgsl */ `
// attentionSoftmaxForward (${perThread ? "one thread" : "one workgroup"} per row${
    drop ? ", with dropout" : ""
  })
// bindings: params {rows = B*H*T, T, heads, scale${
    drop ? ", threshold, dscale, stream" : ""
  }}, scores: (B*H, T, T), mask: (B, T) f32 1/0,
// probs: (B*H, T, T)${drop ? ", seed: u32 (seed[0] read), dropped: (B*H, T, T) = dropout(probs)" : ""}
struct Params { rows: u32, T: u32, heads: u32, scale: f32${
    drop ? ", threshold: u32, dscale: f32, stream: u32" : ""
  } }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> scores: array<${dtype}>;
@group(0) @binding(2) var<storage, read> mask: array<f32>;
@group(0) @binding(3) var<storage, read_write> probs: array<${dtype}>;
${
    drop
      ? `@group(0) @binding(4) var<storage, read> seed: array<u32>;
@group(0) @binding(5) var<storage, read_write> dropped: array<${dtype}>;
${dropoutHashWgsl()}`
      : ""
  }
${k.reduce}
${SAFE_EXP}
${k.attrs}
  ${k.head}
  if (row >= p.rows) { return; }
  let base = row * p.T;
  let maskBase = (row / (p.T * p.heads)) * p.T; // row = (b*H + h)*T + query
  var m = ${F32_MIN};
  for (var j = first; j < p.T; j += ${k.step}) {
    m = max(m, f32(scores[base + j]) * p.scale + (1.0 - mask[maskBase + j]) * ${F32_MIN});
  }
  let rowMax = reduceMax(m);
  var s = 0.0;
  for (var j = first; j < p.T; j += ${k.step}) {
    let v = f32(scores[base + j]) * p.scale + (1.0 - mask[maskBase + j]) * ${F32_MIN};
    s += safeExp(v - rowMax);
  }
  let total = reduceSum(s);
  for (var j = first; j < p.T; j += ${k.step}) {
    let v = f32(scores[base + j]) * p.scale + (1.0 - mask[maskBase + j]) * ${F32_MIN};
    ${store}
  }
}`;
}

/**
 * WGSL for the backward (`perThread`: the fallback variant). `inPlace` binds dprobs read-write and
 * overwrites it with dscores (WebGPU forbids binding one buffer both read-only and writable in a
 * dispatch). Each thread reads its own elements for the dot product before the reduction's barriers
 * and writes them only after, so the in-place form is race-free.
 */
export function attentionSoftmaxBackwardWgsl(
  dtype: Dtype = "f32",
  inPlace = false,
  perThread = false,
  drop = false,
): string {
  const k = rowKernel(perThread);
  const out = inPlace ? "dprobs" : "dscores";
  // With dropout, dprobs is the gradient of the dropped probs: the softmax sees keep ? dprobs·dscale : 0.
  const grad = (i: string) =>
    drop
      ? `select(0.0, f32(dprobs[${i}]) * p.dscale, dropoutHash(seed[0], p.stream, ${i}) >= p.threshold)`
      : `f32(dprobs[${i}])`;
  return wgslEnable(dtype) + /* wgsl */ `
// attentionSoftmaxBackward (${perThread ? "one thread" : "one workgroup"} per row${
    drop ? ", with dropout" : ""
  })
// bindings: params {rows, T, scale${
    drop ? ", threshold, dscale, stream" : ""
  }}, probs: (rows, T), dprobs: (rows, T)${inPlace ? " (overwritten)" : ", dscores: (rows, T)"}${
    drop ? ", seed: u32 (seed[0] read)" : ""
  }
struct Params { rows: u32, T: u32, scale: f32${drop ? ", threshold: u32, dscale: f32, stream: u32" : ""} }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> probs: array<${dtype}>;
@group(0) @binding(2) var<storage, ${inPlace ? "read_write" : "read"}> dprobs: array<${dtype}>;
${inPlace ? "" : `@group(0) @binding(3) var<storage, read_write> dscores: array<${dtype}>;`}
${
    drop
      ? `@group(0) @binding(${inPlace ? 3 : 4}) var<storage, read> seed: array<u32>;\n${dropoutHashWgsl()}`
      : ""
  }
${k.reduce}
${k.attrs}
  ${k.head}
  if (row >= p.rows) { return; }
  let base = row * p.T;
  var d = 0.0;
  for (var j = first; j < p.T; j += ${k.step}) { d += ${grad("base + j")} * f32(probs[base + j]); }
  let dot = reduceSum(d);
  for (var j = first; j < p.T; j += ${k.step}) {
    ${out}[base + j] = ${dtype}(p.scale * f32(probs[base + j]) * (${grad("base + j")} - dot));
  }
}`;
}

/** Arguments of {@linkcode attentionSoftmaxForward}. */
export interface AttentionSoftmaxForwardArgs {
  /** (B·H, T, T) raw scores Q·Kᵀ. */
  scores: GPUBuffer;
  /** (B, T) float32: 1 attend, 0 padding. */
  mask: GPUBuffer;
  /** (B·H, T, T) output; may not alias scores. */
  probs: GPUBuffer;
  /** B, sequences in the batch. */
  batch: number;
  /** H, attention heads. */
  heads: number;
  /** Sequence length (queries and keys). */
  T: number;
  /** Multiplies the scores before the mask is added: 1/sqrt(head_dim). */
  scale: number;
  /** Also writes `dropped` = dropout(probs) in the same dispatch (p > 0). */
  dropout?: SoftmaxDropout & {
    /** (B·H, T, T) output; may not alias scores, mask or probs. */
    dropped: GPUBuffer;
  };
  /** Storage type of scores, probs and dropped (the mask is f32). @default "f32" */
  dtype?: Dtype;
}

function checkDropout(op: string, d: SoftmaxDropout): Param[] {
  if (!Number.isInteger(d.stream) || d.stream < 0 || d.stream > 0xffffffff) {
    throw new RangeError(`${op}: dropout.stream must be a u32 (layer * 8 + site), got ${d.stream}`);
  }
  if (!(d.p > 0 && d.p < 1)) {
    throw new RangeError(`${op}: dropout.p must be in (0, 1), got ${d.p}; omit "dropout" for p = 0`);
  }
  checkBuffer(op, "dropout.seed", d.seed, 4, "(1) u32");
  return [["u32", dropoutThreshold(d.p)], ["f32", dropoutScale(d.p)], ["u32", d.stream]];
}

/**
 * Prepares probs = softmax(scores·scale + (1 - mask)·F32_MIN) over the key axis. `variant` picks
 * the row kernel ({@linkcode SoftmaxVariant}).
 * @throws {RangeError} for non-positive shapes, a non-finite scale or buffers too small.
 */
export function attentionSoftmaxForward(
  gpu: Gpu,
  a: AttentionSoftmaxForwardArgs,
  variant: SoftmaxVariant = "auto",
): Dispatch {
  const op = "attentionSoftmaxForward()";
  checkCount(op, "batch", a.batch);
  checkCount(op, "heads", a.heads);
  checkCount(op, "T", a.T);
  checkScale(op, a.scale);
  const dtype = a.dtype ?? "f32";
  requireDtype(gpu, dtype, op);
  const rows = a.batch * a.heads * a.T;
  const bytes = rows * a.T * dtypeBytes(dtype);
  const shape = `(B·H ${a.batch * a.heads}, T ${a.T}, T ${a.T})`;
  checkBuffer(op, "scores", a.scores, bytes, shape);
  checkBuffer(op, "probs", a.probs, bytes, shape);
  checkBuffer(op, "mask", a.mask, a.batch * a.T * 4, `(B ${a.batch}, T ${a.T})`);
  if (a.probs === a.scores || a.probs === a.mask) {
    throw new RangeError(`${op}: "probs" must be a different buffer from "scores" and "mask"`);
  }
  const perThread = usePerThread(gpu, variant);
  const params: Param[] = [["u32", rows], ["u32", a.T], ["u32", a.heads], ["f32", a.scale]];
  const buffers = [a.scores, a.mask, a.probs];
  const drop = a.dropout;
  if (drop) {
    params.push(...checkDropout(op, drop));
    checkBuffer(op, "dropout.dropped", drop.dropped, bytes, shape);
    if ([a.scores, a.mask, a.probs, drop.seed].includes(drop.dropped)) {
      throw new RangeError(
        `${op}: "dropout.dropped" must be its own buffer, not scores, mask, probs or seed`,
      );
    }
    buffers.push(drop.seed, drop.dropped);
  }
  return gpu.dispatch(
    drop ? "attentionSoftmaxForward.dropout" : "attentionSoftmaxForward",
    attentionSoftmaxForwardWgsl(dtype, perThread, drop !== undefined),
    params,
    buffers,
    rowGroups(rows, perThread),
  );
}

/** Arguments of {@linkcode attentionSoftmaxBackward}. */
export interface AttentionSoftmaxBackwardArgs {
  /** (rows, T) saved forward output. */
  probs: GPUBuffer;
  /** (rows, T) gradient of probs. */
  dprobs: GPUBuffer;
  /** (rows, T) gradient of the raw scores; may be the same buffer as dprobs (in place). */
  dscores: GPUBuffer;
  /** B·H·T query rows. */
  rows: number;
  /** Sequence length (keys per row). */
  T: number;
  /** The forward's scale. */
  scale: number;
  /** The forward's dropout: dprobs is then the gradient of the dropped probs. */
  dropout?: SoftmaxDropout;
  /** Storage type of probs, dprobs and dscores. @default "f32" */
  dtype?: Dtype;
}

/**
 * Prepares dscores = scale · probs ⊙ (dprobs - rowsum(dprobs ⊙ probs)). `variant` picks the row
 * kernel ({@linkcode SoftmaxVariant}).
 * @throws {RangeError} for non-positive shapes, a non-finite scale or buffers too small.
 */
export function attentionSoftmaxBackward(
  gpu: Gpu,
  a: AttentionSoftmaxBackwardArgs,
  variant: SoftmaxVariant = "auto",
): Dispatch {
  const op = "attentionSoftmaxBackward()";
  checkCount(op, "rows", a.rows);
  checkCount(op, "T", a.T);
  checkScale(op, a.scale);
  const dtype = a.dtype ?? "f32";
  requireDtype(gpu, dtype, op);
  const bytes = a.rows * a.T * dtypeBytes(dtype);
  const shape = `(rows ${a.rows}, T ${a.T})`;
  checkBuffer(op, "probs", a.probs, bytes, shape);
  checkBuffer(op, "dprobs", a.dprobs, bytes, shape);
  checkBuffer(op, "dscores", a.dscores, bytes, shape);
  if (a.probs === a.dprobs || a.probs === a.dscores) {
    throw new RangeError(`${op}: "probs" must be a different buffer from "dprobs" and "dscores"`);
  }
  const inPlace = a.dscores === a.dprobs;
  const perThread = usePerThread(gpu, variant);
  const params: Param[] = [["u32", a.rows], ["u32", a.T], ["f32", a.scale]];
  const buffers = inPlace ? [a.probs, a.dprobs] : [a.probs, a.dprobs, a.dscores];
  const drop = a.dropout;
  if (drop) {
    params.push(...checkDropout(op, drop));
    if (buffers.includes(drop.seed)) {
      throw new RangeError(`${op}: "dropout.seed" must be its own buffer, not probs, dprobs or dscores`);
    }
    buffers.push(drop.seed);
  }
  return gpu.dispatch(
    `attentionSoftmaxBackward${inPlace ? ".inPlace" : ""}${drop ? ".dropout" : ""}`,
    attentionSoftmaxBackwardWgsl(dtype, inPlace, perThread, drop !== undefined),
    params,
    buffers,
    rowGroups(a.rows, perThread),
  );
}

/**
 * CPU reference (float64). scores: (B·H, T, T) row-major; mask: (B, T) 1/0. Returns probs with the
 * same shape, computed as softmax(scores·scale + (1 - mask)·F32_MIN) per row.
 * @example
 * ```ts
 * import { attentionSoftmaxRef } from "./softmax.ts";
 * // One head, T = 2, the second key masked: probs = [1, 0] in both rows.
 * const probs = attentionSoftmaxRef([0.5, 3, 1, 2], [1, 0], 1, 1, 2, 1);
 * ```
 */
export function attentionSoftmaxRef(
  scores: ArrayLike<number>,
  mask: ArrayLike<number>,
  batch: number,
  heads: number,
  T: number,
  scale: number,
): Float64Array {
  const rows = batch * heads * T;
  const probs = new Float64Array(rows * T);
  const v = new Float64Array(T);
  for (let r = 0; r < rows; r++) {
    const b = Math.floor(r / (heads * T));
    let max = -Infinity;
    for (let j = 0; j < T; j++) {
      v[j] = scores[r * T + j] * scale + (1 - mask[b * T + j]) * F32_MIN;
      max = Math.max(max, v[j]);
    }
    let sum = 0;
    for (let j = 0; j < T; j++) sum += v[j] = Math.exp(v[j] - max);
    for (let j = 0; j < T; j++) probs[r * T + j] = v[j] / sum;
  }
  return probs;
}

/**
 * CPU reference of the fused softmax + dropout (float64): probs as {@linkcode attentionSoftmaxRef}
 * and dropped = dropout(probs) with the mask of {@linkcode dropoutMaskRef} over the flat index.
 */
export function attentionSoftmaxDropoutRef(
  scores: ArrayLike<number>,
  mask: ArrayLike<number>,
  batch: number,
  heads: number,
  T: number,
  scale: number,
  drop: { p: number; seed: number; stream: number },
): { probs: Float64Array; dropped: Float64Array } {
  const probs = attentionSoftmaxRef(scores, mask, batch, heads, T, scale);
  const keep = dropoutMaskRef(drop.seed, drop.stream, probs.length, drop.p);
  const s = dropoutScale(drop.p);
  return { probs, dropped: probs.map((v, i) => (keep[i] ? v * s : 0)) };
}

/**
 * CPU reference of the fused backward (float64): dprobs is the gradient of the dropped probs;
 * returns dscores = attentionSoftmaxBackwardRef(probs, dropout(dprobs)).
 */
export function attentionSoftmaxDropoutBackwardRef(
  probs: ArrayLike<number>,
  dprobs: ArrayLike<number>,
  rows: number,
  T: number,
  scale: number,
  drop: { p: number; seed: number; stream: number },
): Float64Array {
  const keep = dropoutMaskRef(drop.seed, drop.stream, rows * T, drop.p);
  const s = dropoutScale(drop.p);
  const d = Float64Array.from({ length: rows * T }, (_, i) => (keep[i] ? dprobs[i] * s : 0));
  return attentionSoftmaxBackwardRef(probs, d, rows, T, scale);
}

/**
 * CPU reference of the backward (float64). probs, dprobs: (rows, T). Returns dscores (rows, T),
 * the gradient w.r.t. the unscaled scores.
 */
export function attentionSoftmaxBackwardRef(
  probs: ArrayLike<number>,
  dprobs: ArrayLike<number>,
  rows: number,
  T: number,
  scale: number,
): Float64Array {
  const dscores = new Float64Array(rows * T);
  for (let r = 0; r < rows; r++) {
    let dot = 0;
    for (let j = 0; j < T; j++) dot += dprobs[r * T + j] * probs[r * T + j];
    for (let j = 0; j < T; j++) {
      dscores[r * T + j] = scale * probs[r * T + j] * (dprobs[r * T + j] - dot);
    }
  }
  return dscores;
}
