/**
 * Global L2 norm over many gradient buffers and torch's clip coefficient, deterministic in two passes:
 * pass 1 writes one partial sum of squares per 4096-element chunk of every gradient into `scratch`;
 * pass 2 (one workgroup) sums all partials in a fixed order and writes `result = [total, clip]` with
 * total = sqrt(sum_i ||g_i||^2) and clip = min(1, maxNorm / (total + 1e-6)), as
 * `torch.nn.utils.clip_grad_norm_` (torch 1.13) computes them. Gradients are not rescaled here:
 * AdamW multiplies by `clip` as it reads them.
 * @module
 */

import { type Dispatch, type Gpu, grid } from "./runtime.ts";

/** Threads per workgroup in both passes. */
const WG = 256;
/** Elements per partial sum: each of the WG threads sums 16 elements, strided for coalescing. */
const CHUNK = WG * 16;

function partialCount(n: number): number {
  return Math.ceil(n / CHUNK);
}

/**
 * Bytes of the scratch buffer {@linkcode gradNorm} needs for gradients of these element counts
 * (one f32 partial per 4096 elements of each).
 * @example
 * ```ts
 * import { gradNormScratchBytes } from "./grad_norm.ts";
 * gradNormScratchBytes([768 * 768, 768]); // 4 * (144 + 1) = 580
 * ```
 */
export function gradNormScratchBytes(sizes: number[]): number {
  let partials = 0;
  for (const n of sizes) partials += partialCount(n);
  return Math.max(4, partials * 4);
}

/** WGSL for pass 1: scratch[offset + j] = sum of squares of grad chunk j. */
export function gradNormPartialsWgsl(dtype: "f32" = "f32"): string {
  return /* wgsl */ `
// bindings: params {n, offset, partials}, grad: (n), scratch: (>= offset + partials)
struct Params { n: u32, offset: u32, partials: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> grad: array<${dtype}>;
@group(0) @binding(2) var<storage, read_write> scratch: array<f32>;
var<workgroup> sums: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_id) lid: vec3u) {
  let j = wid.x + wid.y * nwg.x; // workgroup-uniform, so the early exit keeps barriers uniform
  if (j >= p.partials) { return; }
  var s = 0.0;
  for (var k = 0u; k < ${CHUNK / WG}u; k++) {
    let i = j * ${CHUNK}u + k * ${WG}u + lid.x;
    if (i < p.n) { let g = f32(grad[i]); s += g * g; }
  }
  sums[lid.x] = s;
  // fixed-shape tree: the same order on every run
  for (var stride = ${WG / 2}u; stride > 0u; stride /= 2u) {
    workgroupBarrier();
    if (lid.x < stride) { sums[lid.x] += sums[lid.x + stride]; }
  }
  if (lid.x == 0u) { scratch[p.offset + j] = sums[0]; }
}`;
}

/** WGSL for pass 2: result = [sqrt(sum of partials), clip coefficient]. */
export function gradNormTotalWgsl(): string {
  return /* wgsl */ `
// bindings: params {partials, clipping, maxNorm}, scratch: (partials), result: [total, clip]
struct Params { partials: u32, clipping: u32, maxNorm: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> scratch: array<f32>;
@group(0) @binding(2) var<storage, read_write> result: array<f32>;
var<workgroup> sums: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_id) lid: vec3u) {
  var s = 0.0;
  for (var i = lid.x; i < p.partials; i += ${WG}u) { s += scratch[i]; }
  sums[lid.x] = s;
  for (var stride = ${WG / 2}u; stride > 0u; stride /= 2u) {
    workgroupBarrier();
    if (lid.x < stride) { sums[lid.x] += sums[lid.x + stride]; }
  }
  if (lid.x == 0u) {
    let total = sqrt(sums[0]);
    result[0] = total;
    // torch: clamp(max_norm / (total_norm + 1e-6), max=1.0), in float32
    result[1] = select(1.0, min(p.maxNorm / (total + 1e-6), 1.0), p.clipping == 1u);
  }
}`;
}

/**
 * Prepares the dispatches (one per gradient, then one total) that write `result = [total, clip]`
 * (f32). `maxNorm <= 0` or `Infinity` disables clipping (clip = 1). `scratch` needs
 * {@linkcode gradNormScratchBytes} of the gradient sizes.
 * @example
 * ```ts ignore
 * const plan = gradNorm(gpu, { grads: [{ buffer: dW, n: 768 * 768 }], result, maxNorm: 1, scratch });
 * gpu.run(plan);
 * ```
 */
export function gradNorm(
  gpu: Gpu,
  a: { grads: { buffer: GPUBuffer; n: number }[]; result: GPUBuffer; maxNorm: number; scratch: GPUBuffer },
): Dispatch[] {
  const op = "gradNorm";
  if (Number.isNaN(a.maxNorm)) {
    throw new RangeError(`${op}: maxNorm is NaN; pass a positive number, or 0 or Infinity for no clipping`);
  }
  a.grads.forEach((g, i) => {
    if (!Number.isInteger(g.n) || g.n < 1) {
      throw new RangeError(`${op}: gradient ${i} has n = ${g.n}, expected a positive integer`);
    }
    if (g.buffer.size < g.n * 4) {
      throw new RangeError(
        `${op}: gradient ${i} ("${g.buffer.label}") has ${g.buffer.size} bytes but n = ${g.n} needs ${
          g.n * 4
        }`,
      );
    }
  });
  const need = gradNormScratchBytes(a.grads.map((g) => g.n));
  if (a.scratch.size < need) {
    throw new RangeError(
      `${op}: scratch has ${a.scratch.size} bytes but needs ${need}: size it with gradNormScratchBytes()`,
    );
  }
  if (a.result.size < 8) throw new RangeError(`${op}: result has ${a.result.size} bytes, needs 8`);
  const dispatches: Dispatch[] = [];
  let offset = 0;
  for (const g of a.grads) {
    const partials = partialCount(g.n);
    dispatches.push(
      gpu.dispatch(
        `${op}.partials`,
        gradNormPartialsWgsl(),
        [["u32", g.n], ["u32", offset], ["u32", partials]],
        [g.buffer, a.scratch],
        grid(partials, 1),
        { family: "gradNorm", flops: 2 * g.n },
      ),
    );
    offset += partials;
  }
  const clipping = a.maxNorm > 0 && Number.isFinite(a.maxNorm);
  dispatches.push(
    gpu.dispatch(
      `${op}.total`,
      gradNormTotalWgsl(),
      [["u32", offset], ["u32", clipping ? 1 : 0], ["f32", clipping ? a.maxNorm : 0]],
      [a.scratch, a.result],
      [1],
    ),
  );
  return dispatches;
}

/**
 * CPU reference (float64): `[total, clip]` for gradients `grads` (same order as {@linkcode gradNorm}).
 */
export function gradNormRef(grads: ArrayLike<number>[], maxNorm: number): [number, number] {
  let s = 0;
  for (const g of grads) for (let i = 0; i < g.length; i++) s += g[i] * g[i];
  const total = Math.sqrt(s);
  const clip = maxNorm > 0 && Number.isFinite(maxNorm) ? Math.min(1, maxNorm / (total + 1e-6)) : 1;
  return [total, clip];
}
