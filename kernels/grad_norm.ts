/**
 * Global L2 norm over many gradient buffers and torch's clip coefficient, deterministic in two passes:
 * pass 1 writes one partial sum of squares per 4096-element chunk of every gradient into `scratch`;
 * pass 2 (one workgroup) sums all partials in a fixed order and writes `result = [total, clip]` with
 * total = sqrt(sum_i ||g_i||^2) and clip = min(1, maxNorm / (total + 1e-6)), as
 * `torch.nn.utils.clip_grad_norm_` (torch 1.13) computes them. Gradients are not rescaled here:
 * AdamW multiplies by `clip` as it reads them.
 *
 * Mixed precision (dynamic loss scaling, as torch.cuda.amp.GradScaler): with a `scale` buffer
 * (f32[1] holding S) the gradients hold S·g. Pass 1 multiplies each by 1/S before squaring (the norm
 * is of the unscaled gradients, and finite scaled gradients cannot overflow the sum) and makes a
 * partial +inf when any of its elements is inf or NaN; pass 2 writes `result = [total, clip/S,
 * foundInf]`: total is +inf when any partial is not finite, foundInf is 1 then (else 0), and AdamW's
 * g·result[1] both unscales and clips. Non-finite values are detected from the bits (exponent all
 * ones), never by float comparisons, which compilers may fold assuming finite math. The caller must
 * skip the step (and back off S) when foundInf is 1.
 * @module
 */

import { type Dispatch, type Gpu, grid, type Param } from "./runtime.ts";

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

/** WGSL true when the f32 bits `bits` (a u32 expression) are inf or NaN: the exponent is all ones. */
function nonFinite(bits: string): string {
  return `(${bits} & 0x7f800000u) == 0x7f800000u`;
}

/**
 * WGSL for pass 1: scratch[offset + j] = sum of squares of grad chunk j. `scaled`: each gradient is
 * multiplied by 1/scale[0] first, and a chunk holding inf or NaN writes +inf (from the uniform: WGSL
 * has no inf literal).
 */
export function gradNormPartialsWgsl(dtype: "f32" = "f32", scaled = false): string {
  const load = scaled
    ? `let raw = f32(grad[i]);
      if (${nonFinite("bitcast<u32>(raw)")}) { flag = 1u; }
      let g = raw * inv;`
    : "let g = f32(grad[i]);";
  return /* wgsl */ `
// bindings: params {n, offset, partials${scaled ? ", inf" : ""}}, grad: (n)${
    scaled ? " scaled by S" : ""
  }, scratch: (>= offset + partials)${scaled ? ", scale: [S]" : ""}
struct Params { n: u32, offset: u32, partials: u32${scaled ? ", inf: f32" : ""} }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> grad: array<${dtype}>;
@group(0) @binding(2) var<storage, read_write> scratch: array<f32>;
${scaled ? "@group(0) @binding(3) var<storage, read> scale: array<f32>;\n" : ""}${sharedArrays(scaled)}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_id) lid: vec3u) {
  let j = wid.x + wid.y * nwg.x; // workgroup-uniform, so the early exit keeps barriers uniform
  if (j >= p.partials) { return; }${scaled ? "\n  let inv = 1.0 / scale[0];\n  var flag = 0u;" : ""}
  var s = 0.0;
  for (var k = 0u; k < ${CHUNK / WG}u; k++) {
    let i = j * ${CHUNK}u + k * ${WG}u + lid.x;
    if (i < p.n) {
      ${load}
      s += g * g;
    }
  }
${treeSum(scaled)}
  if (lid.x == 0u) { scratch[p.offset + j] = ${scaled ? "select(sums[0], p.inf, bad[0] != 0u)" : "sums[0]"}; }
}`;
}

/** The workgroup arrays of a pass: partial sums, and with `flagged` the non-finite flags. */
function sharedArrays(flagged: boolean): string {
  return `var<workgroup> sums: array<f32, ${WG}>;${
    flagged ? `\nvar<workgroup> bad: array<u32, ${WG}>;` : ""
  }`;
}

/**
 * Sums each thread's `s` (and ORs its `flag` when `flagged`) into sums[0] (bad[0]) over a fixed-shape
 * tree: the same order on every run.
 */
function treeSum(flagged: boolean): string {
  return `  sums[lid.x] = s;${flagged ? "\n  bad[lid.x] = flag;" : ""}
  for (var stride = ${WG / 2}u; stride > 0u; stride /= 2u) {
    workgroupBarrier();
    if (lid.x < stride) {
      sums[lid.x] += sums[lid.x + stride];${flagged ? "\n      bad[lid.x] |= bad[lid.x + stride];" : ""}
    }
  }`;
}

/**
 * WGSL for pass 2: result = [sqrt(sum of partials), clip coefficient]. `scaled`: result = [total
 * (+inf when a partial is not finite), clip / scale[0], foundInf (1.0 or 0.0)].
 */
export function gradNormTotalWgsl(scaled = false): string {
  // torch: clamp(max_norm / (total_norm + 1e-6), max=1.0), in float32
  const clip = "select(1.0, min(p.maxNorm / (total + 1e-6), 1.0), p.clipping == 1u)";
  const write = scaled
    ? `// the sum of finite partials may itself overflow: test the total's bits too
    let found = bad[0] != 0u || ${nonFinite("bitcast<u32>(sums[0])")};
    let total = select(sqrt(sums[0]), p.inf, found);
    result[0] = total;
    result[1] = ${clip} * (1.0 / scale[0]); // clip, and unscale by 1/S
    result[2] = select(0.0, 1.0, found);`
    : `let total = sqrt(sums[0]);
    result[0] = total;
    result[1] = ${clip};`;
  return /* wgsl */ `
// bindings: params {partials, clipping, maxNorm${scaled ? ", inf" : ""}}, scratch: (partials), result: ${
    scaled ? "[total, clip / S, foundInf], scale: [S]" : "[total, clip]"
  }
struct Params { partials: u32, clipping: u32, maxNorm: f32${scaled ? ", inf: f32" : ""} }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> scratch: array<f32>;
@group(0) @binding(2) var<storage, read_write> result: array<f32>;
${scaled ? "@group(0) @binding(3) var<storage, read> scale: array<f32>;\n" : ""}${sharedArrays(scaled)}
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_id) lid: vec3u) {
  var s = 0.0;${scaled ? "\n  var flag = 0u;" : ""}
  for (var i = lid.x; i < p.partials; i += ${WG}u) {
    let v = scratch[i];${scaled ? `\n    if (${nonFinite("bitcast<u32>(v)")}) { flag = 1u; }` : ""}
    s += v;
  }
${treeSum(scaled)}
  if (lid.x == 0u) {
    ${write}
  }
}`;
}

/**
 * Prepares the dispatches (one per gradient, then one total) that write `result = [total, clip]`
 * (f32). `maxNorm <= 0` or `Infinity` disables clipping (clip = 1). `scratch` needs
 * {@linkcode gradNormScratchBytes} of the gradient sizes. With `scale` (f32[1], the loss scale S
 * the gradients carry) `result = [unscaled total, clip / S, foundInf]` (see the module doc).
 * @example
 * ```ts ignore
 * const plan = gradNorm(gpu, { grads: [{ buffer: dW, n: 768 * 768 }], result, maxNorm: 1, scratch });
 * gpu.run(plan);
 * ```
 */
export function gradNorm(
  gpu: Gpu,
  a: {
    grads: { buffer: GPUBuffer; n: number }[];
    result: GPUBuffer;
    maxNorm: number;
    scratch: GPUBuffer;
    /** f32[1]: the loss scale S the gradients carry (omitted: unscaled, result = [total, clip]). */
    scale?: GPUBuffer;
  },
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
  const scale = a.scale;
  const resultBytes = scale ? 12 : 8;
  if (a.result.size < resultBytes) {
    throw new RangeError(
      `${op}: result has ${a.result.size} bytes, needs ${resultBytes}${
        scale ? " ([total, clip / S, foundInf])" : ""
      }`,
    );
  }
  if (scale) {
    if (scale.size < 4) throw new RangeError(`${op}: scale has ${scale.size} bytes, needs 4 ([S])`);
    if (scale === a.result || scale === a.scratch) {
      throw new RangeError(`${op}: "scale" must be its own buffer, not "result" or "scratch"`);
    }
  }
  const dispatches: Dispatch[] = [];
  let offset = 0;
  for (const g of a.grads) {
    const partials = partialCount(g.n);
    dispatches.push(
      scale
        ? gpu.dispatch(
          `${op}.partials`,
          gradNormPartialsWgsl("f32", true),
          [["u32", g.n], ["u32", offset], ["u32", partials], ["f32", Infinity]],
          [g.buffer, a.scratch, scale],
          grid(partials, 1),
          { family: "gradNorm", flops: 3 * g.n },
        )
        : gpu.dispatch(
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
  const total: Param[] = [["u32", offset], ["u32", clipping ? 1 : 0], ["f32", clipping ? a.maxNorm : 0]];
  dispatches.push(
    scale
      ? gpu.dispatch(`${op}.total`, gradNormTotalWgsl(true), [...total, ["f32", Infinity]], [
        a.scratch,
        a.result,
        scale,
      ], [1])
      : gpu.dispatch(`${op}.total`, gradNormTotalWgsl(), total, [a.scratch, a.result], [1]),
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

/**
 * CPU reference (float64) of {@linkcode gradNorm} with a loss scale: `grads` hold S·g; returns
 * `[total of g, clip / S, foundInf]`, total = +Infinity and foundInf = 1 when any element is inf or NaN.
 */
export function gradNormScaledRef(
  grads: ArrayLike<number>[],
  maxNorm: number,
  scale: number,
): [number, number, number] {
  const found = grads.some((g) => Array.prototype.some.call(g, (v: number) => !Number.isFinite(v)));
  const [total, clip] = found
    ? [Infinity, maxNorm > 0 && Number.isFinite(maxNorm) ? 0 : 1]
    : gradNormRef(grads.map((g) => Array.from(g, (v) => v / scale)), maxNorm);
  return [total, clip / scale, found ? 1 : 0];
}
