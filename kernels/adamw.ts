/**
 * One AdamW step, as torch.optim.AdamW in torch 1.13 (single-tensor path, amsgrad=False,
 * maximize=False), on the gradient scaled by the clip coefficient of `gradNorm()` (grad_norm.ts):
 *
 *   g = grad * clip
 *   p *= 1 - lr * wd
 *   m = beta1 * m + (1 - beta1) * g
 *   v = beta2 * v + (1 - beta2) * g * g
 *   p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps),  bc1 = 1 - beta1^t, bc2 = 1 - beta2^t
 *
 * Values that change per step (lr, the bias corrections) live in a small `hyper` storage buffer the
 * host rewrites with {@linkcode writeAdamHyper}, so the dispatch is recorded once.
 * @module
 */

import { type Dispatch, type Gpu, grid } from "./runtime.ts";

const WG = 256;

/** Per-step hyper-parameters as the host computes them (float64) before they are stored as f32. */
export interface AdamHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** 1-based optimizer step t (torch's state["step"] after its increment). */
  step: number;
}

/**
 * f32 slots of the hyper buffer. Like torch, the host computes bc1, bc2, lr / bc1, sqrt(bc2),
 * 1 - beta1 and 1 - beta2 in float64; the kernel sees their float32 roundings.
 */
export const ADAM_HYPER_LAYOUT = {
  lr: 0,
  beta1: 1,
  beta2: 2,
  eps: 3,
  /** 1 - beta1^t */
  bc1: 4,
  /** 1 - beta2^t */
  bc2: 5,
  /** lr / bc1 */
  stepSize: 6,
  /** sqrt(bc2) */
  bc2Sqrt: 7,
  oneMinusBeta1: 8,
  oneMinusBeta2: 9,
} as const;

/** Bytes of the hyper buffer: 10 f32 slots padded to 16 bytes. */
export const ADAM_HYPER_BYTES: number = 48;

/**
 * The f32 image of the hyper buffer for step `h.step` (see {@linkcode ADAM_HYPER_LAYOUT}).
 * @example
 * ```ts
 * import { adamHyperValues } from "./adamw.ts";
 * const v = adamHyperValues({ lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: 1 });
 * // v[4] = 1 - 0.9 = 0.1 (bc1), v[6] = lr / bc1 = 0.01 (step size)
 * ```
 * @throws {RangeError} when step is not a positive integer or a hyper-parameter is out of range.
 */
export function adamHyperValues(h: AdamHyper): Float32Array {
  if (!Number.isInteger(h.step) || h.step < 1) {
    throw new RangeError(`AdamW step must be a positive integer (1 for the first update), got ${h.step}`);
  }
  if (!(h.lr >= 0) || !Number.isFinite(h.lr)) throw new RangeError(`AdamW lr must be >= 0, got ${h.lr}`);
  if (!(h.beta1 >= 0 && h.beta1 < 1)) throw new RangeError(`AdamW beta1 must be in [0, 1), got ${h.beta1}`);
  if (!(h.beta2 >= 0 && h.beta2 < 1)) throw new RangeError(`AdamW beta2 must be in [0, 1), got ${h.beta2}`);
  if (!(h.eps >= 0)) throw new RangeError(`AdamW eps must be >= 0, got ${h.eps}`);
  const bc1 = 1 - h.beta1 ** h.step;
  const bc2 = 1 - h.beta2 ** h.step;
  const v = new Float32Array(ADAM_HYPER_BYTES / 4);
  const L = ADAM_HYPER_LAYOUT;
  v[L.lr] = h.lr;
  v[L.beta1] = h.beta1;
  v[L.beta2] = h.beta2;
  v[L.eps] = h.eps;
  v[L.bc1] = bc1;
  v[L.bc2] = bc2;
  v[L.stepSize] = h.lr / bc1;
  v[L.bc2Sqrt] = Math.sqrt(bc2);
  v[L.oneMinusBeta1] = 1 - h.beta1;
  v[L.oneMinusBeta2] = 1 - h.beta2;
  return v;
}

/**
 * Writes step `h.step`'s hyper-parameters into `hyper` (queued before the next submit).
 * @example
 * ```ts ignore
 * writeAdamHyper(gpu, hyper, { lr: learningRateAt(step, schedule), beta1: 0.9, beta2: 0.999, eps: 1e-8, step: step + 1 });
 * ```
 */
export function writeAdamHyper(gpu: Gpu, hyper: GPUBuffer, h: AdamHyper): void {
  if (hyper.size < ADAM_HYPER_BYTES) {
    throw new RangeError(
      `AdamW hyper buffer has ${hyper.size} bytes, needs ADAM_HYPER_BYTES = ${ADAM_HYPER_BYTES}`,
    );
  }
  gpu.write(hyper, adamHyperValues(h));
}

const HYPER_WGSL = /* wgsl */ `
struct Hyper {
  lr: f32, beta1: f32, beta2: f32, eps: f32, bc1: f32, bc2: f32, stepSize: f32, bc2Sqrt: f32,
  oneMinusBeta1: f32, oneMinusBeta2: f32,
}`;

/** The update of element i at weight decay `wd`, each operation in torch's order and grouping, in f32. */
function updateWgsl(dtype: string, wd: string): string {
  return /* wgsl */ `
  let g = f32(grad[i]) * clip[1];                             // clip_grad_norm_: grad.mul_(clip)
  var w = f32(param[i]) * (1.0 - h.lr * ${wd});               // param.mul_(1 - lr * wd)
  let m = expAvg[i] * h.beta1 + g * h.oneMinusBeta1;          // exp_avg.mul_(b1).add_(g, alpha=1-b1)
  let v = expAvgSq[i] * h.beta2 + (h.oneMinusBeta2 * g) * g;  // exp_avg_sq.mul_(b2).addcmul_(g, g, 1-b2)
  let denom = sqrt(v) / h.bc2Sqrt + h.eps;                    // (exp_avg_sq.sqrt() / bc2_sqrt).add_(eps)
  w = w + (-h.stepSize * m) / denom;                          // param.addcdiv_(m, denom, -step_size)
  expAvg[i] = m;
  expAvgSq[i] = v;
  param[i] = ${dtype}(w);`;
}

/** Elements per entry of a flat arena's segment table (256 bytes: the arena's tensor alignment). */
export const ADAMW_BLOCK = 64;

/**
 * The segment table of a flat arena for {@linkcode adamwFlatStep}: one u32 per 64-element block,
 * `valid | decay << 8`, where the block's first `valid` elements belong to a tensor and `decay` says
 * whether that tensor takes weight decay (HF's no-decay group: biases and LayerNorm weights).
 * Tensors must start at multiples of 64 elements; the padding after each is skipped.
 * @example
 * ```ts
 * import { adamwSegmentTable } from "./adamw.ts";
 * adamwSegmentTable([{ offset: 0, length: 70, decay: true }, { offset: 128, length: 3, decay: false }], 192);
 * // Uint32Array [64 | 256, 6 | 256, 3]
 * ```
 * @throws {RangeError} for a misaligned, overlapping or out-of-range segment.
 */
export function adamwSegmentTable(
  segments: readonly { offset: number; length: number; decay: boolean }[],
  total: number,
): Uint32Array {
  if (!Number.isInteger(total) || total < 1 || total % ADAMW_BLOCK !== 0) {
    throw new RangeError(`adamwSegmentTable: total ${total} must be a positive multiple of ${ADAMW_BLOCK}`);
  }
  const table = new Uint32Array(total / ADAMW_BLOCK);
  let end = 0;
  for (const { offset, length, decay } of segments) {
    if (offset % ADAMW_BLOCK !== 0 || offset < end || length < 1 || offset + length > total) {
      throw new RangeError(
        `adamwSegmentTable: segment [${offset}, ${
          offset + length
        }) must start at a multiple of ${ADAMW_BLOCK} after ${end} and end by ${total}`,
      );
    }
    for (let b = offset / ADAMW_BLOCK; b * ADAMW_BLOCK < offset + length; b++) {
      table[b] = Math.min(ADAMW_BLOCK, offset + length - b * ADAMW_BLOCK) | (decay ? 256 : 0);
    }
    end = offset + length;
  }
  return table;
}

/** WGSL for one AdamW step over a window of a flat arena, decay and padding from the segment table. */
export function adamwFlatWgsl(dtype: "f32" = "f32"): string {
  return /* wgsl */ `
// bindings: params {n, first, weightDecay}, hyper: Hyper, clip: [total, clip], table: (arena / 64),
// param, grad, expAvg, expAvgSq: (n) windows starting at arena element \`first\`
struct Params { n: u32, first: u32, weightDecay: f32 }
${HYPER_WGSL}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> h: Hyper;
@group(0) @binding(2) var<storage, read> clip: array<f32>;
@group(0) @binding(3) var<storage, read> table: array<u32>;
@group(0) @binding(4) var<storage, read_write> param: array<${dtype}>;
@group(0) @binding(5) var<storage, read> grad: array<${dtype}>;
@group(0) @binding(6) var<storage, read_write> expAvg: array<f32>;
@group(0) @binding(7) var<storage, read_write> expAvgSq: array<f32>;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * ${WG}u;
  if (i >= p.n) { return; }
  let e = p.first + i;
  let seg = table[e / ${ADAMW_BLOCK}u];
  if (e % ${ADAMW_BLOCK}u >= (seg & 255u)) { return; } // padding between tensors
  let wd = select(0.0, p.weightDecay, (seg >> 8u) != 0u);
${updateWgsl(dtype, "wd")}
}`;
}

/**
 * Prepares one AdamW update over `n` elements of a flat arena window that starts at arena element
 * `first` (a multiple of 64): every tensor in it at once, weight decay where the segment `table`
 * ({@linkcode adamwSegmentTable}, bound whole) says so, padding untouched. Same math as
 * {@linkcode adamwRef} on each segment.
 * @example
 * ```ts ignore
 * const d = adamwFlatStep(gpu, { param, grad, expAvg, expAvgSq, table, first: 0, n: 4096,
 *   weightDecay: 0.01, hyper, clip: normResult });
 * ```
 */
export function adamwFlatStep(
  gpu: Gpu,
  a: {
    param: GPUBuffer;
    grad: GPUBuffer;
    expAvg: GPUBuffer;
    expAvgSq: GPUBuffer;
    table: GPUBuffer;
    first: number;
    n: number;
    weightDecay: number;
    hyper: GPUBuffer;
    clip: GPUBuffer;
  },
): Dispatch {
  const op = "adamwFlatStep";
  checkArgs(op, a);
  if (!Number.isInteger(a.first) || a.first < 0 || a.first % ADAMW_BLOCK !== 0) {
    throw new RangeError(`${op}: first must be a multiple of ${ADAMW_BLOCK}, got ${a.first}`);
  }
  const blocks = Math.ceil((a.first + a.n) / ADAMW_BLOCK);
  if (a.table.size < blocks * 4) {
    throw new RangeError(
      `${op}: table ("${a.table.label}") has ${a.table.size} bytes but elements up to ${a.first + a.n} need ${
        blocks * 4
      }`,
    );
  }
  return gpu.dispatch(
    op,
    adamwFlatWgsl(),
    [["u32", a.n], ["u32", a.first], ["f32", a.weightDecay]],
    [a.hyper, a.clip, a.table, a.param, a.grad, a.expAvg, a.expAvgSq],
    grid(a.n, WG),
    { family: "adamw", flops: ADAMW_FLOPS * a.n },
  );
}

/** FLOPs of one element's update, about (the operations in {@linkcode adamwFlatWgsl}, sqrt and divisions as one). */
const ADAMW_FLOPS = 16;

function checkArgs(
  op: string,
  a: {
    param: GPUBuffer;
    grad: GPUBuffer;
    expAvg: GPUBuffer;
    expAvgSq: GPUBuffer;
    n: number;
    weightDecay: number;
    hyper: GPUBuffer;
    clip: GPUBuffer;
  },
): void {
  if (!Number.isInteger(a.n) || a.n < 1) {
    throw new RangeError(`${op}: n must be a positive integer, got ${a.n}`);
  }
  if (!(a.weightDecay >= 0) || !Number.isFinite(a.weightDecay)) {
    throw new RangeError(`${op}: weightDecay must be a finite number >= 0, got ${a.weightDecay}`);
  }
  for (const k of ["param", "grad", "expAvg", "expAvgSq"] as const) {
    if (a[k].size < a.n * 4) {
      throw new RangeError(
        `${op}: ${k} ("${a[k].label}") has ${a[k].size} bytes but n = ${a.n} needs ${a.n * 4}`,
      );
    }
  }
  if (a.hyper.size < ADAM_HYPER_BYTES) {
    throw new RangeError(
      `${op}: hyper has ${a.hyper.size} bytes, needs ADAM_HYPER_BYTES = ${ADAM_HYPER_BYTES}`,
    );
  }
  if (a.clip.size < 8) throw new RangeError(`${op}: clip has ${a.clip.size} bytes, needs 8 ([total, clip])`);
}

/**
 * CPU reference (float64) of one tensor's update (what {@linkcode adamwFlatStep} does to each segment):
 * updates `param`, `expAvg` and `expAvgSq` in place for step `h.step` with gradient `grad * clip`.
 */
export function adamwRef(
  a: {
    param: Float64Array;
    grad: ArrayLike<number>;
    expAvg: Float64Array;
    expAvgSq: Float64Array;
    weightDecay: number;
    clip: number;
  },
  h: AdamHyper,
): void {
  const bc1 = 1 - h.beta1 ** h.step;
  const bc2 = 1 - h.beta2 ** h.step;
  const stepSize = h.lr / bc1;
  const bc2Sqrt = Math.sqrt(bc2);
  for (let i = 0; i < a.param.length; i++) {
    const g = a.grad[i] * a.clip;
    a.param[i] *= 1 - h.lr * a.weightDecay;
    a.expAvg[i] = a.expAvg[i] * h.beta1 + g * (1 - h.beta1);
    a.expAvgSq[i] = a.expAvgSq[i] * h.beta2 + (1 - h.beta2) * g * g;
    a.param[i] -= (stepSize * a.expAvg[i]) / (Math.sqrt(a.expAvgSq[i]) / bc2Sqrt + h.eps);
  }
}

/**
 * CPU reference (float64) of {@linkcode adamwFlatStep} over a whole arena: {@linkcode adamwRef} on each
 * segment with `weightDecay` where the segment decays and 0 where not; padding stays as it is.
 */
export function adamwFlatRef(
  a: {
    param: Float64Array;
    grad: ArrayLike<number>;
    expAvg: Float64Array;
    expAvgSq: Float64Array;
    segments: readonly { offset: number; length: number; decay: boolean }[];
    weightDecay: number;
    clip: number;
  },
  h: AdamHyper,
): void {
  for (const { offset, length, decay } of a.segments) {
    const end = offset + length;
    const grad = Array.from({ length }, (_, i) => a.grad[offset + i]);
    adamwRef({
      param: a.param.subarray(offset, end),
      grad,
      expAvg: a.expAvg.subarray(offset, end),
      expAvgSq: a.expAvgSq.subarray(offset, end),
      weightDecay: decay ? a.weightDecay : 0,
      clip: a.clip,
    }, h);
  }
}
