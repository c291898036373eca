/**
 * The classification head's loss and its gradient in one kernel, as Hugging Face
 * BertForSequenceClassification computes the loss:
 *
 * - numLabels > 1, CrossEntropyLoss: loss_b = logsumexp(logits_b) - logits_b[label_b];
 *   dlogits_b = (softmax(logits_b) - onehot(label_b))·gradScale.
 * - numLabels = 1, MSELoss (regression): loss_b = (logit_b - label_b)²;
 *   dlogit_b = 2·(logit_b - label_b)·gradScale.
 *
 * loss = lossScale·Σ_b loss_b (lossScale 1/B gives the mean), written by a single workgroup in a
 * fixed order so it is deterministic. Labels are float32: the class index as a float for
 * classification, the target for regression. A class label that is not an integer in
 * [0, numLabels) makes the loss and that row's dlogits NaN, so a bad batch cannot train silently
 * (no out-of-bounds read happens).
 *
 * Mixed precision: logits and dlogits stay f32. An optional `scale` buffer (f32[1], the dynamic loss
 * scale S of torch.cuda.amp.GradScaler, written by the host) multiplies dlogits by S, so the whole
 * backward carries S·grad; the loss value stays unscaled.
 * @module
 */

import type { Dispatch, Gpu } from "./runtime.ts";

/** Threads in the single workgroup (power of two for the tree reduction). */
const WG = 64;

/**
 * WGSL for the fused loss forward and backward. `scaled` binds `scale` (f32[1]) after dlogits and
 * multiplies every dlogit by scale[0].
 */
export function lossWgsl(dtype: "f32" = "f32", scaled = false): string {
  const gradScale = scaled ? "p.gradScale * scale[0]" : "p.gradScale";
  return /* wgsl */ `
// bindings: params {batch, numLabels, gradScale, lossScale, accumulate, nan}, logits: (B, L),
// labels: (B) f32, loss: (1), dlogits: (B, L). One workgroup; thread t takes rows t, t + ${WG}, ...
// WGSL has no NaN literal, so the host passes one in the uniform (nan) for invalid labels.
struct Params { batch: u32, numLabels: u32, gradScale: f32, lossScale: f32, accumulate: u32, nan: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<${dtype}>;
@group(0) @binding(2) var<storage, read> labels: array<f32>;
@group(0) @binding(3) var<storage, read_write> loss: array<f32>;
@group(0) @binding(4) var<storage, read_write> dlogits: array<${dtype}>;
${
    scaled
      ? "@group(0) @binding(5) var<storage, read> scale: array<f32>; // [S], the loss scale\n"
      : ""
  }var<workgroup> red: array<f32, ${WG}>;

fn crossEntropyRow(b: u32) -> f32 {
  let L = p.numLabels;
  let base = b * L;
  var m = f32(logits[base]);
  for (var j = 1u; j < L; j++) { m = max(m, f32(logits[base + j])); }
  var s = 0.0;
  for (var j = 0u; j < L; j++) { s += exp(f32(logits[base + j]) - m); }
  let label = labels[b];
  let valid = label >= 0.0 && label < f32(L) && floor(label) == label;
  let c = select(0u, u32(label), valid);
  for (var j = 0u; j < L; j++) {
    let g = exp(f32(logits[base + j]) - m) / s - select(0.0, 1.0, j == c);
    dlogits[base + j] = ${dtype}(select(p.nan, g * ${gradScale}, valid));
  }
  return select(p.nan, log(s) + m - f32(logits[base + c]), valid);
}

fn squaredErrorRow(b: u32) -> f32 {
  let d = f32(logits[b]) - labels[b];
  dlogits[b] = ${dtype}(2.0 * d * ${gradScale});
  return d * d;
}

@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32) {
  var acc = 0.0;
  for (var b = lid; b < p.batch; b += ${WG}u) {
    if (p.numLabels == 1u) { acc += squaredErrorRow(b); } else { acc += crossEntropyRow(b); }
  }
  red[lid] = acc;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] += red[lid + s]; }
    workgroupBarrier();
  }
  if (lid == 0u) {
    var total = red[0] * p.lossScale;
    if (p.accumulate != 0u) { total += loss[0]; }
    loss[0] = total;
  }
}`;
}

/** Arguments of {@linkcode lossForwardBackward}. */
export interface LossArgs {
  /** (B, L) classifier output. */
  logits: GPUBuffer;
  /** (B) float32: class index as a float (L > 1) or regression target (L = 1). */
  labels: GPUBuffer;
  /** (1) the loss. */
  loss: GPUBuffer;
  /** (B, L) gradient of the scaled loss; must not alias logits. */
  dlogits: GPUBuffer;
  /** B, rows of logits. */
  batch: number;
  /** L, the config's num_labels: 1 means regression (MSE), more means classification. */
  numLabels: number;
  /** Multiplies dlogits. Default 1/B (the mean's gradient); 1/(B·accum) for gradient accumulation. */
  gradScale?: number;
  /** Multiplies Σ_b loss_b. Default 1/B (the mean). */
  lossScale?: number;
  /** loss += instead of loss = (micro-batches). Default false. */
  accumulateLoss?: boolean;
  /**
   * f32[1], the dynamic loss scale S (GradScaler's), written by the host: dlogits are multiplied by
   * scale[0] after gradScale; the loss is not. Omitted: no scaling (and the WGSL is unchanged).
   */
  scale?: GPUBuffer;
}

/**
 * Prepares the loss and dlogits of a batch (one dispatch, in an array so callers can spread it).
 * @throws {RangeError} for non-positive shapes, non-finite scales or buffers too small.
 */
export function lossForwardBackward(gpu: Gpu, a: LossArgs): Dispatch[] {
  const op = "lossForwardBackward()";
  for (const [name, v] of [["batch", a.batch], ["numLabels", a.numLabels]] as const) {
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(`${op}: ${name} must be a positive integer, got ${v}`);
    }
  }
  const gradScale = a.gradScale ?? 1 / a.batch;
  const lossScale = a.lossScale ?? 1 / a.batch;
  for (const [name, v] of [["gradScale", gradScale], ["lossScale", lossScale]] as const) {
    if (!Number.isFinite(v)) throw new RangeError(`${op}: ${name} must be finite, got ${v}`);
  }
  const sizes: [string, GPUBuffer, number, string][] = [
    ["logits", a.logits, a.batch * a.numLabels, `(B ${a.batch}, L ${a.numLabels})`],
    ["dlogits", a.dlogits, a.batch * a.numLabels, `(B ${a.batch}, L ${a.numLabels})`],
    ["labels", a.labels, a.batch, `(B ${a.batch})`],
    ["loss", a.loss, 1, "(1)"],
  ];
  if (a.scale) sizes.push(["scale", a.scale, 1, "(1)"]);
  for (const [name, buf, n, shape] of sizes) {
    if (buf.size < n * 4) {
      throw new RangeError(
        `${op}: buffer "${name}" has ${buf.size} bytes but ${shape} needs ${n * 4}; allocate a larger buffer`,
      );
    }
  }
  const { logits, labels, loss, dlogits, scale } = a;
  if (new Set([logits, labels, loss, dlogits]).size < 4) {
    throw new RangeError(`${op}: "logits", "labels", "loss" and "dlogits" must be four different buffers`);
  }
  if (scale && (scale === loss || scale === dlogits)) {
    throw new RangeError(`${op}: "scale" must not be the "loss" or "dlogits" buffer (they are written)`);
  }
  return [gpu.dispatch(
    "lossForwardBackward",
    lossWgsl("f32", scale !== undefined),
    [
      ["u32", a.batch],
      ["u32", a.numLabels],
      ["f32", gradScale],
      ["f32", lossScale],
      ["u32", a.accumulateLoss ? 1 : 0],
      ["f32", NaN],
    ],
    scale ? [logits, labels, loss, dlogits, scale] : [logits, labels, loss, dlogits],
    [1],
  )];
}

/**
 * CPU reference (float64) of CrossEntropyLoss (mean over the batch). logits: (B, L); labels: (B)
 * class indices. Returns the mean loss and dlogits = (softmax - onehot)/B, its exact gradient.
 * @example
 * ```ts
 * import { crossEntropyRef } from "./loss.ts";
 * const { loss } = crossEntropyRef([0, 0], [1], 1, 2); // loss = ln 2
 * ```
 */
export function crossEntropyRef(
  logits: ArrayLike<number>,
  labels: ArrayLike<number>,
  B: number,
  L: number,
): { loss: number; dlogits: Float64Array } {
  const dlogits = new Float64Array(B * L);
  let loss = 0;
  for (let b = 0; b < B; b++) {
    const c = labels[b];
    if (!Number.isInteger(c) || c < 0 || c >= L) {
      throw new RangeError(`crossEntropyRef(): label ${c} of row ${b} is not a class index in [0, ${L})`);
    }
    let m = -Infinity;
    for (let j = 0; j < L; j++) m = Math.max(m, logits[b * L + j]);
    let s = 0;
    for (let j = 0; j < L; j++) s += Math.exp(logits[b * L + j] - m);
    loss += Math.log(s) + m - logits[b * L + c];
    for (let j = 0; j < L; j++) {
      dlogits[b * L + j] = (Math.exp(logits[b * L + j] - m) / s - (j === c ? 1 : 0)) / B;
    }
  }
  return { loss: loss / B, dlogits };
}

/**
 * CPU reference (float64) of MSELoss (mean over the batch) for one output. logits, labels: (B).
 * Returns the mean loss and dlogits = 2(logit - label)/B.
 */
export function mseRef(
  logits: ArrayLike<number>,
  labels: ArrayLike<number>,
  B: number,
): { loss: number; dlogits: Float64Array } {
  const dlogits = new Float64Array(B);
  let loss = 0;
  for (let b = 0; b < B; b++) {
    const d = logits[b] - labels[b];
    loss += d * d;
    dlogits[b] = (2 * d) / B;
  }
  return { loss: loss / B, dlogits };
}
