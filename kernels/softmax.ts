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
 * @module
 */

import { type Dispatch, type Gpu, grid } from "./runtime.ts";
import { checkBuffer, checkCount } from "./_checks.ts";

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
export function attentionSoftmaxForwardWgsl(dtype: "f32" = "f32", perThread = false): string {
  const k = rowKernel(perThread);
  return /* wgsl */ `
// attentionSoftmaxForward (${perThread ? "one thread" : "one workgroup"} per row)
// bindings: params {rows = B*H*T, T, heads, scale}, scores: (B*H, T, T), mask: (B, T) f32 1/0,
// probs: (B*H, T, T)
struct Params { rows: u32, T: u32, heads: u32, scale: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> scores: array<${dtype}>;
@group(0) @binding(2) var<storage, read> mask: array<f32>;
@group(0) @binding(3) var<storage, read_write> probs: array<${dtype}>;
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
    probs[base + j] = ${dtype}(safeExp(v - rowMax) / total);
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
  dtype: "f32" = "f32",
  inPlace = false,
  perThread = false,
): string {
  const k = rowKernel(perThread);
  const out = inPlace ? "dprobs" : "dscores";
  return /* wgsl */ `
// attentionSoftmaxBackward (${perThread ? "one thread" : "one workgroup"} per row)
// bindings: params {rows, T, scale}, probs: (rows, T), dprobs: (rows, T)${
    inPlace ? " (overwritten)" : ", dscores: (rows, T)"
  }
struct Params { rows: u32, T: u32, scale: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> probs: array<${dtype}>;
@group(0) @binding(2) var<storage, ${inPlace ? "read_write" : "read"}> dprobs: array<${dtype}>;
${inPlace ? "" : `@group(0) @binding(3) var<storage, read_write> dscores: array<${dtype}>;`}
${k.reduce}
${k.attrs}
  ${k.head}
  if (row >= p.rows) { return; }
  let base = row * p.T;
  var d = 0.0;
  for (var j = first; j < p.T; j += ${k.step}) { d += f32(dprobs[base + j]) * f32(probs[base + j]); }
  let dot = reduceSum(d);
  for (var j = first; j < p.T; j += ${k.step}) {
    ${out}[base + j] = ${dtype}(p.scale * f32(probs[base + j]) * (f32(dprobs[base + j]) - dot));
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
  const rows = a.batch * a.heads * a.T;
  const shape = `(B·H ${a.batch * a.heads}, T ${a.T}, T ${a.T})`;
  checkBuffer(op, "scores", a.scores, rows * a.T * 4, shape);
  checkBuffer(op, "probs", a.probs, rows * a.T * 4, shape);
  checkBuffer(op, "mask", a.mask, a.batch * a.T * 4, `(B ${a.batch}, T ${a.T})`);
  if (a.probs === a.scores || a.probs === a.mask) {
    throw new RangeError(`${op}: "probs" must be a different buffer from "scores" and "mask"`);
  }
  const perThread = usePerThread(gpu, variant);
  return gpu.dispatch(
    "attentionSoftmaxForward",
    attentionSoftmaxForwardWgsl("f32", perThread),
    [["u32", rows], ["u32", a.T], ["u32", a.heads], ["f32", a.scale]],
    [a.scores, a.mask, a.probs],
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
  const bytes = a.rows * a.T * 4;
  const shape = `(rows ${a.rows}, T ${a.T})`;
  checkBuffer(op, "probs", a.probs, bytes, shape);
  checkBuffer(op, "dprobs", a.dprobs, bytes, shape);
  checkBuffer(op, "dscores", a.dscores, bytes, shape);
  if (a.probs === a.dprobs || a.probs === a.dscores) {
    throw new RangeError(`${op}: "probs" must be a different buffer from "dprobs" and "dscores"`);
  }
  const inPlace = a.dscores === a.dprobs;
  const perThread = usePerThread(gpu, variant);
  return gpu.dispatch(
    inPlace ? "attentionSoftmaxBackward.inPlace" : "attentionSoftmaxBackward",
    attentionSoftmaxBackwardWgsl("f32", inPlace, perThread),
    [["u32", a.rows], ["u32", a.T], ["f32", a.scale]],
    inPlace ? [a.probs, a.dprobs] : [a.probs, a.dprobs, a.dscores],
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
