/**
 * LayerNorm over the last dimension (nn.LayerNorm with `eps` from the config), with an optional
 * fused residual add, and its backward.
 *
 * Forward, per row: s = x (+ residual), mean = Σs/C, var = Σ(s - mean)²/C, rstd = 1/sqrt(var + eps),
 * out = (s - mean)·rstd·gamma + beta; mean and rstd are saved. The variance takes a second pass over
 * the row, and both sums run over s minus the row's first value, so a large common offset such as
 * 1e3 + noise keeps float32 precision.
 *
 * Backward (xhat = (s - mean)·rstd, g = dout·gamma), dx per row:
 *   ds = rstd·(g - mean(g) - xhat·mean(g·xhat))
 * dgamma = Σ_rows dout·xhat and dbeta = Σ_rows dout are column sums, computed with the layer's bias
 * gradients by kernels/param_grads.ts; {@linkcode layerNormBackwardRef} gives all three for the tests.
 * No float atomics, so every result is deterministic. The row kernels come in two variants
 * ({@linkcode LayerNormVariant}): a workgroup per row for GPUs, a thread per row for software
 * adapters.
 *
 * `dtype` "f16" stores the activations (x, residual, sum, out, dout, input, dx, dxDrop) as float16;
 * gamma, beta, mean and rstd stay float32, and all arithmetic is float32.
 * The finite-difference and PyTorch tests stay on the f32 path (f16 storage rounds the same math).
 * @module
 */

import {
  BufferView,
  type Dispatch,
  type Dtype,
  dtypeBytes,
  type Gpu,
  grid,
  type Param,
  requireDtype,
  wgslEnable,
} from "./runtime.ts";
import { dropoutHashWgsl, dropoutScale, dropoutThreshold } from "./dropout.ts";
import { checkBuffer, checkCount } from "./_checks.ts";

/** Threads per workgroup of the row kernels (power of two for the tree reduction). */
const ROW_WG = 128;
/** Threads per workgroup of the fallback row kernels (one thread per row). */
const FALLBACK_WG = 64;

/** Throws if a buffer the kernel writes is also bound under another name (WebGPU rejects that). */
function checkNoAlias(
  op: string,
  writes: Record<string, GPUBuffer | undefined>,
  all: Record<string, GPUBuffer | undefined>,
): void {
  for (const [w, wb] of Object.entries(writes)) {
    for (const [r, rb] of Object.entries(all)) {
      if (wb && w !== r && wb === rb) {
        throw new RangeError(`${op}: "${w}" must be a different buffer from "${r}"`);
      }
    }
  }
}

/**
 * Which row kernel runs: "workgroup" (one workgroup per row, tree reductions in workgroup memory:
 * real GPUs), "fallback" (one thread per row, no barriers: software adapters such as lavapipe, where
 * barriers are slow), or "auto" (fallback exactly when `gpu.isFallback`).
 */
export type LayerNormVariant = "auto" | "fallback" | "workgroup";

/**
 * The parts of a row kernel that differ between the variants: entry point arguments, how the row and
 * the thread's first column are found, the column loop step, and the row reduction (a tree over the
 * workgroup, or nothing when one thread owns the row) over values of `type`.
 */
function rowKernel(
  perThread: boolean,
  type: "f32" | "vec2f",
): { attrs: string; head: string; step: string; reduce: string } {
  if (perThread) {
    return {
      attrs: `@compute @workgroup_size(${FALLBACK_WG})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {`,
      head: `let row = gid.x + gid.y * nwg.x * ${FALLBACK_WG}u;
  let first = 0u;
  let leader = true;`,
      step: "1u",
      reduce: `fn reduceSum(v: ${type}) -> ${type} { return v; }`,
    };
  }
  return {
    attrs: `var<private> lid: u32;
@compute @workgroup_size(${ROW_WG})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) localIndex: u32) {
  lid = localIndex;`,
    head: `let row = wg.x + wg.y * nwg.x;
  let first = lid;
  let leader = lid == 0u;`,
    step: `${ROW_WG}u`,
    reduce: `var<workgroup> red: array<${type}, ${ROW_WG}>;
fn reduceSum(v: ${type}) -> ${type} { // from uniform control flow only
  red[lid] = v;
  workgroupBarrier();
  for (var s = ${ROW_WG / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] += red[lid + s]; }
    workgroupBarrier();
  }
  let total = red[0];
  workgroupBarrier();
  return total;
}`,
  };
}

function usePerThread(gpu: Gpu, variant: LayerNormVariant): boolean {
  return variant === "fallback" || (variant === "auto" && gpu.isFallback);
}

function rowGroups(rows: number, perThread: boolean): [number, number] {
  return perThread ? grid(rows, FALLBACK_WG) : grid(rows, 1);
}

/**
 * WGSL for the forward. With `fused`, s = x + residual is also written to `sum` (the backward's
 * input); otherwise s = x. `perThread` selects the fallback variant (one thread per row). With `drop`
 * (implies `fused`), s = dropout(x) + residual with kernels/dropout.ts's mask, and gamma and beta are
 * read from one binding at element offsets (the storage-binding budget is 8).
 */
export function layerNormForwardWgsl(
  dtype: Dtype = "f32",
  fused = false,
  perThread = false,
  drop = false,
): string {
  if (drop) return layerNormForwardDropoutWgsl(dtype, perThread);
  // With f16 storage, s is rounded to f16 before the statistics: they then describe the stored sum.
  const s = fused ? roundTo(dtype, "f32(x[i]) + f32(residual[i])") : "f32(x[i])";
  const k = rowKernel(perThread, "f32");
  const io = fused
    ? `@group(0) @binding(1) var<storage, read> x: array<${dtype}>;
@group(0) @binding(2) var<storage, read> residual: array<${dtype}>;
@group(0) @binding(3) var<storage, read_write> sum: array<${dtype}>;`
    : `@group(0) @binding(1) var<storage, read> x: array<${dtype}>;`;
  const b = fused ? 4 : 2;
  return wgslEnable(dtype) + /* wgsl */ `
// layerNormForward (${perThread ? "one thread" : "one workgroup"} per row)
// bindings: params {rows, cols, eps}, x: (rows, cols),${
    fused ? " residual: (rows, cols), sum: (rows, cols)," : ""
  } gamma: (cols), beta: (cols),
// out: (rows, cols), mean: (rows), rstd: (rows)
struct Params { rows: u32, cols: u32, eps: f32 }
@group(0) @binding(0) var<uniform> p: Params;
${io}
@group(0) @binding(${b}) var<storage, read> gamma: array<f32>;
@group(0) @binding(${b + 1}) var<storage, read> beta: array<f32>;
@group(0) @binding(${b + 2}) var<storage, read_write> out: array<${dtype}>;
@group(0) @binding(${b + 3}) var<storage, read_write> mean: array<f32>;
@group(0) @binding(${b + 4}) var<storage, read_write> rstd: array<f32>;
${k.reduce}
fn load(i: u32) -> f32 { return ${s}; }
${k.attrs}
  ${k.head}
  if (row >= p.rows) { return; }
  let base = row * p.cols;
  // Sums run over s - shift (shift = the row's first value), so a large common offset neither
  // swamps the float32 sums nor the mean's rounding: mu is the mean of s - shift.
  let shift = load(base);
  var s = 0.0;
  for (var j = first; j < p.cols; j += ${k.step}) {
    let v = load(base + j);
    ${fused ? "sum[base + j] = " + dtype + "(v);" : ""}
    s += v - shift;
  }
  let mu = reduceSum(s) / f32(p.cols);
  var q = 0.0;
  for (var j = first; j < p.cols; j += ${k.step}) {
    let d = load(base + j) - shift - mu;
    q += d * d;
  }
  let rs = 1.0 / sqrt(reduceSum(q) / f32(p.cols) + p.eps);
  for (var j = first; j < p.cols; j += ${k.step}) {
    out[base + j] = ${dtype}((load(base + j) - shift - mu) * rs * f32(gamma[j]) + f32(beta[j]));
  }
  if (leader) {
    mean[row] = shift + mu;
    rstd[row] = rs;
  }
}`;
}

/** `e` (an f32 expression) rounded to `dtype` and widened back: the value a `dtype` store keeps. */
function roundTo(dtype: Dtype, e: string): string {
  return dtype === "f32" ? e : `f32(${dtype}(${e}))`;
}

function layerNormForwardDropoutWgsl(dtype: Dtype, perThread: boolean): string {
  const k = rowKernel(perThread, "f32");
  const s = roundTo(
    dtype,
    `f32(select(${dtype}(0.0), ${dtype}(f32(x[i]) * p.scale), keep)) + f32(residual[i])`,
  );
  return wgslEnable(dtype) + /* wgsl */ `
// layerNormForward of dropout(x) + residual (${perThread ? "one thread" : "one workgroup"} per row)
// bindings: params {rows, cols, eps, gammaAt, betaAt, threshold, scale, stream}, x, residual, sum: (rows, cols),
// gb: gamma at gammaAt and beta at betaAt (cols each), out: (rows, cols), mean, rstd: (rows), seed: u32
struct Params { rows: u32, cols: u32, eps: f32, gammaAt: u32, betaAt: u32, threshold: u32, scale: f32, stream: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<${dtype}>;
@group(0) @binding(2) var<storage, read> residual: array<${dtype}>;
@group(0) @binding(3) var<storage, read_write> sum: array<${dtype}>;
@group(0) @binding(4) var<storage, read> gb: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<${dtype}>;
@group(0) @binding(6) var<storage, read_write> mean: array<f32>;
@group(0) @binding(7) var<storage, read_write> rstd: array<f32>;
@group(0) @binding(8) var<storage, read> seed: array<u32>;
${dropoutHashWgsl()}
${k.reduce}
fn load(i: u32) -> f32 {
  let keep = dropoutHash(seed[0], p.stream, i) >= p.threshold;
  return ${s};
}
${k.attrs}
  ${k.head}
  if (row >= p.rows) { return; }
  let base = row * p.cols;
  // As the plain forward: sums over s - shift; the mask is hashed once per element (s kept in sum).
  let shift = load(base);
  var s = 0.0;
  for (var j = first; j < p.cols; j += ${k.step}) {
    let v = load(base + j);
    sum[base + j] = ${dtype}(v);
    s += v - shift;
  }
  let mu = reduceSum(s) / f32(p.cols);
  var q = 0.0;
  for (var j = first; j < p.cols; j += ${k.step}) {
    let d = f32(sum[base + j]) - shift - mu;
    q += d * d;
  }
  let rs = 1.0 / sqrt(reduceSum(q) / f32(p.cols) + p.eps);
  for (var j = first; j < p.cols; j += ${k.step}) {
    let y = (f32(sum[base + j]) - shift - mu) * rs * f32(gb[p.gammaAt + j]) + f32(gb[p.betaAt + j]);
    out[base + j] = ${dtype}(y);
  }
  if (leader) {
    mean[row] = shift + mu;
    rstd[row] = rs;
  }
}`;
}

/**
 * WGSL for the backward's dx pass; `accumulate` is a uniform flag, `perThread` the fallback variant.
 * With `drop`, dx also goes through an inverted dropout into `dxDrop` (the gradient of the branch that
 * was dropped before the residual add; the mask regenerated as kernels/dropout.ts does).
 */
export function layerNormBackwardDxWgsl(dtype: Dtype = "f32", perThread = false, drop = false): string {
  const k = rowKernel(perThread, "vec2f");
  return wgslEnable(dtype) + /* wgsl */ `
// layerNormBackwardDx (${perThread ? "one thread" : "one workgroup"} per row)${
    drop ? ", and its dropout" : ""
  }
// bindings: params {rows, cols, accumulate${
    drop ? ", threshold, scale, stream" : ""
  }}, dout: (rows, cols), input: (rows, cols), gamma: (cols),
// mean: (rows), rstd: (rows), dx: (rows, cols)${
    drop ? ", seed: u32 (seed[0] read), dxDrop: (rows, cols)" : ""
  }
struct Params { rows: u32, cols: u32, accumulate: u32${
    drop ? ", threshold: u32, scale: f32, stream: u32" : ""
  } }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dout: array<${dtype}>;
@group(0) @binding(2) var<storage, read> input: array<${dtype}>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> mean: array<f32>;
@group(0) @binding(5) var<storage, read> rstd: array<f32>;
@group(0) @binding(6) var<storage, read_write> dx: array<${dtype}>;
${
    drop
      ? `@group(0) @binding(7) var<storage, read> seed: array<u32>;
@group(0) @binding(8) var<storage, read_write> dxDrop: array<${dtype}>;
${dropoutHashWgsl()}`
      : ""
  }
${k.reduce}
${k.attrs}
  ${k.head}
  if (row >= p.rows) { return; }
  let base = row * p.cols;
  let mu = mean[row];
  let rs = rstd[row];
  // (Σ g, Σ g·xhat) with g = dout·gamma
  var acc = vec2f(0.0);
  for (var j = first; j < p.cols; j += ${k.step}) {
    let g = f32(dout[base + j]) * f32(gamma[j]);
    acc += vec2f(g, g * (f32(input[base + j]) - mu) * rs);
  }
  let m = reduceSum(acc) / f32(p.cols);
  for (var j = first; j < p.cols; j += ${k.step}) {
    let g = f32(dout[base + j]) * f32(gamma[j]);
    let xhat = (f32(input[base + j]) - mu) * rs;
    var v = rs * (g - m.x - xhat * m.y);
    if (p.accumulate != 0u) { v += f32(dx[base + j]); }
    dx[base + j] = ${dtype}(v);${
    drop
      ? `
    let keep = dropoutHash(seed[0], p.stream, base + j) >= p.threshold;
    dxDrop[base + j] = select(${dtype}(0.0), ${dtype}(f32(${dtype}(v)) * p.scale), keep);`
      : ""
  }
  }
}`;
}

/** Arguments of {@linkcode layerNormForward}. */
export interface LayerNormForwardArgs {
  /** (rows, cols) input. */
  x: GPUBuffer;
  /** Optional (rows, cols) residual: s = x + residual is normalized (needs `sum`). */
  residual?: GPUBuffer;
  /** (rows, cols) output of x + residual when `residual` is given; the backward's input. */
  sum?: GPUBuffer;
  /** (cols) scale (nn.LayerNorm weight). */
  gamma: GPUBuffer;
  /** (cols) shift (nn.LayerNorm bias). */
  beta: GPUBuffer;
  /** (rows, cols) normalized output; must not alias x, residual or sum. */
  out: GPUBuffer;
  /** (rows) saved row means. */
  mean: GPUBuffer;
  /** (rows) saved 1/sqrt(var + eps). */
  rstd: GPUBuffer;
  /** Rows normalized independently (B·T). */
  rows: number;
  /** Values per row (hidden size C). */
  cols: number;
  /** Added to the biased variance inside the square root (config `layer_norm_eps`). */
  eps: number;
  /**
   * Normalize dropout(x) + residual instead (needs `residual`; mask as kernels/dropout.ts, so its
   * backward regenerates it). gamma and beta must then be views of one buffer (the parameter arena).
   */
  dropout?: { p: number; seed: GPUBuffer; stream: number };
  /** Storage type of x, residual, sum and out (gamma, beta, mean, rstd are f32). @default "f32" */
  dtype?: Dtype;
}

/**
 * Prepares the LayerNorm forward over `rows` rows of `cols` values, optionally normalizing
 * x + residual (written to `sum`). Rows may exceed 65,535 (a 2-D grid of workgroups). `variant`
 * picks the row kernel (see {@linkcode LayerNormVariant}).
 * @throws {RangeError} for non-positive shapes, a residual without `sum`, or buffers too small.
 */
export function layerNormForward(
  gpu: Gpu,
  a: LayerNormForwardArgs,
  variant: LayerNormVariant = "auto",
): Dispatch {
  const op = "layerNormForward()";
  checkCount(op, "rows", a.rows);
  checkCount(op, "cols", a.cols);
  if (!(a.eps >= 0) || !Number.isFinite(a.eps)) {
    throw new RangeError(`${op}: eps must be a finite number >= 0, got ${a.eps}`);
  }
  const fused = a.residual !== undefined;
  if (fused !== (a.sum !== undefined)) {
    throw new RangeError(`${op}: pass both "residual" and "sum" (to fuse the residual add) or neither`);
  }
  const dtype = a.dtype ?? "f32";
  requireDtype(gpu, dtype, op);
  const n = a.rows * a.cols * dtypeBytes(dtype);
  const shape = `rows ${a.rows} x cols ${a.cols}`;
  const rowBuffers: [string, GPUBuffer | undefined][] = [["x", a.x], ["residual", a.residual], [
    "sum",
    a.sum,
  ], ["out", a.out]];
  for (const [name, buf] of rowBuffers) if (buf) checkBuffer(op, name, buf, n, shape);
  checkBuffer(op, "gamma", a.gamma, a.cols * 4, `cols ${a.cols}`);
  checkBuffer(op, "beta", a.beta, a.cols * 4, `cols ${a.cols}`);
  checkBuffer(op, "mean", a.mean, a.rows * 4, `rows ${a.rows}`);
  checkBuffer(op, "rstd", a.rstd, a.rows * 4, `rows ${a.rows}`);
  const { x, residual, sum, gamma, beta, out, mean, rstd } = a;
  checkNoAlias(op, { sum, out, mean, rstd }, { x, residual, sum, gamma, beta, out, mean, rstd });
  const perThread = usePerThread(gpu, variant);
  if (a.dropout) return layerNormForwardDropout(gpu, a, a.dropout, perThread);
  const buffers = fused
    ? [a.x, a.residual!, a.sum!, a.gamma, a.beta, a.out, a.mean, a.rstd]
    : [a.x, a.gamma, a.beta, a.out, a.mean, a.rstd];
  return gpu.dispatch(
    fused ? "layerNormForward.residual" : "layerNormForward",
    layerNormForwardWgsl(dtype, fused, perThread),
    [["u32", a.rows], ["u32", a.cols], ["f32", a.eps]],
    buffers,
    rowGroups(a.rows, perThread),
  );
}

function layerNormForwardDropout(
  gpu: Gpu,
  a: LayerNormForwardArgs,
  d: { p: number; seed: GPUBuffer; stream: number },
  perThread: boolean,
): Dispatch {
  const op = "layerNormForward()";
  if (!a.residual) {
    throw new RangeError(`${op}: dropout is fused only with a residual; pass "residual" and "sum"`);
  }
  if (!Number.isInteger(d.stream) || d.stream < 0 || d.stream > 0xffffffff) {
    throw new RangeError(`${op}: dropout stream must be a u32 (layer * 8 + site), got ${d.stream}`);
  }
  const { gamma, beta } = a;
  if (!(gamma instanceof BufferView && beta instanceof BufferView && gamma.buffer === beta.buffer)) {
    throw new RangeError(
      `${op}: with dropout, gamma and beta must be views of one buffer (the parameter arena) so they bind as one`,
    );
  }
  if ([a.sum, a.out, a.mean, a.rstd].includes(d.seed)) {
    throw new RangeError(`${op}: "seed" must be its own buffer`);
  }
  const first = Math.min(gamma.offset, beta.offset);
  const end = Math.max(gamma.offset + gamma.size, beta.offset + beta.size);
  const gb = new BufferView(gamma.buffer, first, end - first, `${gamma.label}+${beta.label}`);
  return gpu.dispatch(
    "layerNormForward.residual.dropout",
    layerNormForwardWgsl(a.dtype ?? "f32", true, perThread, true),
    [
      ["u32", a.rows],
      ["u32", a.cols],
      ["f32", a.eps],
      ["u32", (gamma.offset - first) / 4],
      ["u32", (beta.offset - first) / 4],
      ["u32", dropoutThreshold(d.p)],
      ["f32", dropoutScale(d.p)],
      ["u32", d.stream],
    ],
    [a.x, a.residual, a.sum!, gb, a.out, a.mean, a.rstd, d.seed],
    rowGroups(a.rows, perThread),
  );
}

/** Arguments of {@linkcode layerNormBackwardDx}. */
export interface LayerNormBackwardDxArgs {
  /** (rows, cols) gradient of the output. */
  dout: GPUBuffer;
  /** Storage type of dout, input, dx and dxDrop (gamma, mean, rstd: f32). @default "f32" */
  dtype?: Dtype;
  /** (rows, cols) the LayerNorm input: x, or `sum` when the residual was fused. */
  input: GPUBuffer;
  /** (cols) */
  gamma: GPUBuffer;
  /** (rows) from the forward. */
  mean: GPUBuffer;
  /** (rows) from the forward. */
  rstd: GPUBuffer;
  /** (rows, cols) gradient of the input; must not alias dout or input. */
  dx: GPUBuffer;
  /** Rows (B·T). */
  rows: number;
  /** Values per row (hidden size C). */
  cols: number;
  /** dx += result instead of dx = result. Default false. */
  accumulateDx?: boolean;
  /**
   * Also dxDrop = dropout(dx) with the forward's mask (p, seed buffer, stream as in kernels/dropout.ts):
   * the gradient of a branch dropped before the residual add. Needs accumulateDx off; p = 0 is a plain copy.
   */
  dropout?: { p: number; seed: GPUBuffer; stream: number; dxDrop: GPUBuffer };
}

/**
 * Prepares the LayerNorm backward's dx pass (one dispatch); dgamma and dbeta are column sums that
 * kernels/param_grads.ts reduces together with the layer's bias gradients. With a fused residual, dx is
 * the gradient of the sum, which flows to both the residual and x unchanged. `variant` picks the row
 * kernel ({@linkcode LayerNormVariant}).
 * @throws {RangeError} for non-positive shapes, buffers too small, or dx aliasing an input.
 */
export function layerNormBackwardDx(
  gpu: Gpu,
  a: LayerNormBackwardDxArgs,
  variant: LayerNormVariant = "auto",
): Dispatch {
  const op = "layerNormBackwardDx()";
  checkCount(op, "rows", a.rows);
  checkCount(op, "cols", a.cols);
  const dtype = a.dtype ?? "f32";
  requireDtype(gpu, dtype, op);
  const n = a.rows * a.cols * dtypeBytes(dtype);
  const shape = `rows ${a.rows} x cols ${a.cols}`;
  checkBuffer(op, "dout", a.dout, n, shape);
  checkBuffer(op, "input", a.input, n, shape);
  checkBuffer(op, "dx", a.dx, n, shape);
  checkBuffer(op, "gamma", a.gamma, a.cols * 4, `cols ${a.cols}`);
  checkBuffer(op, "mean", a.mean, a.rows * 4, `rows ${a.rows}`);
  checkBuffer(op, "rstd", a.rstd, a.rows * 4, `rows ${a.rows}`);
  const { dout, input, gamma, mean, rstd, dx } = a;
  const d = a.dropout;
  if (d) {
    if (a.accumulateDx) {
      throw new RangeError(`${op}: dropout needs accumulateDx off (dxDrop is dropout of dx itself)`);
    }
    if (!Number.isInteger(d.stream) || d.stream < 0 || d.stream > 0xffffffff) {
      throw new RangeError(`${op}: dropout stream must be a u32 (layer * 8 + site), got ${d.stream}`);
    }
    checkBuffer(op, "dropout.dxDrop", d.dxDrop, n, shape);
    checkNoAlias(op, { dx, dxDrop: d.dxDrop }, {
      dout,
      input,
      gamma,
      mean,
      rstd,
      dx,
      seed: d.seed,
      dxDrop: d.dxDrop,
    });
  } else checkNoAlias(op, { dx }, { dout, input, gamma, mean, rstd, dx });
  const perThread = usePerThread(gpu, variant);
  const params: Param[] = [["u32", a.rows], ["u32", a.cols], ["u32", a.accumulateDx ? 1 : 0]];
  if (d) params.push(["u32", dropoutThreshold(d.p)], ["f32", dropoutScale(d.p)], ["u32", d.stream]);
  return gpu.dispatch(
    d ? "layerNormBackwardDx.dropout" : "layerNormBackwardDx",
    layerNormBackwardDxWgsl(dtype, perThread, !!d),
    params,
    d
      ? [a.dout, a.input, a.gamma, a.mean, a.rstd, a.dx, d.seed, d.dxDrop]
      : [a.dout, a.input, a.gamma, a.mean, a.rstd, a.dx],
    rowGroups(a.rows, perThread),
  );
}

/**
 * CPU reference (float64). x: (rows, cols) row-major; gamma, beta: (cols).
 * Returns out (rows, cols), mean (rows) and rstd = 1/sqrt(var + eps) (rows), var biased.
 * @example
 * ```ts
 * import { layerNormRef } from "./layernorm.ts";
 * const { out } = layerNormRef([1, 3], [1, 1], [0, 0], 1, 2, 0); // out ≈ [-1, 1]
 * ```
 */
export function layerNormRef(
  x: ArrayLike<number>,
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
  rows: number,
  cols: number,
  eps: number,
): { out: Float64Array; mean: Float64Array; rstd: Float64Array } {
  const out = new Float64Array(rows * cols);
  const mean = new Float64Array(rows);
  const rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const b = r * cols;
    let s = 0;
    for (let j = 0; j < cols; j++) s += x[b + j];
    const mu = s / cols;
    let q = 0;
    for (let j = 0; j < cols; j++) q += (x[b + j] - mu) ** 2;
    const rs = 1 / Math.sqrt(q / cols + eps);
    for (let j = 0; j < cols; j++) out[b + j] = (x[b + j] - mu) * rs * gamma[j] + beta[j];
    mean[r] = mu;
    rstd[r] = rs;
  }
  return { out, mean, rstd };
}

/**
 * CPU reference of the backward (float64). dout, x: (rows, cols); gamma: (cols); mean, rstd: (rows)
 * from {@linkcode layerNormRef}. Returns dx (rows, cols), dgamma and dbeta (cols), not accumulated.
 */
export function layerNormBackwardRef(
  dout: ArrayLike<number>,
  x: ArrayLike<number>,
  gamma: ArrayLike<number>,
  mean: ArrayLike<number>,
  rstd: ArrayLike<number>,
  rows: number,
  cols: number,
): { dx: Float64Array; dgamma: Float64Array; dbeta: Float64Array } {
  const dx = new Float64Array(rows * cols);
  const dgamma = new Float64Array(cols);
  const dbeta = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    const b = r * cols;
    let sg = 0;
    let sgx = 0;
    for (let j = 0; j < cols; j++) {
      const xhat = (x[b + j] - mean[r]) * rstd[r];
      const g = dout[b + j] * gamma[j];
      sg += g;
      sgx += g * xhat;
      dgamma[j] += dout[b + j] * xhat;
      dbeta[j] += dout[b + j];
    }
    for (let j = 0; j < cols; j++) {
      const xhat = (x[b + j] - mean[r]) * rstd[r];
      dx[b + j] = rstd[r] * (dout[b + j] * gamma[j] - sg / cols - xhat * sgx / cols);
    }
  }
  return { dx, dgamma, dbeta };
}
