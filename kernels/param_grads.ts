/**
 * A layer's parameter reductions in one dispatch: a LayerNorm's dgamma/dbeta and up to two linear
 * biases' gradients, all column sums over the same rows, written into one view of the gradient arena
 * at element offsets (the engine's per-layer replacement for two LayerNorm parameter passes and
 * several bias-gradient dispatches).
 *
 *   dgamma[c] (+)= Σ_r dout[r, c]·xhat[r, c], xhat = (input[r, c] - mean[r])·rstd[r]
 *   dbeta[c]  (+)= Σ_r dout[r, c]
 *   dbiasA[c] (+)= Σ_r dyA[r, c],  dbiasB[c] (+)= Σ_r dyB[r, c]
 *
 * Columns of the three jobs are laid end to end (LayerNorm, A, B); each workgroup owns 32 of them and
 * its 8 row lanes sum rows lane, lane + 8, ... in order, then lane 0 adds the 8 partial sums in a fixed
 * order: no atomics, bit-identical from run to run.
 *
 * `dtype` "f16" reads dout, input and the biases' dy as float16; mean, rstd and the gradient arena stay
 * float32, and the sums are float32. The f32 path is the one the float64 and PyTorch tests cover.
 * @module
 */

import {
  type Dispatch,
  type Dtype,
  dtypeBytes,
  type Gpu,
  grid,
  requireDtype,
  wgslEnable,
} from "./runtime.ts";
import { checkBuffer, checkCount } from "./_checks.ts";

const COLS = 32; // columns per workgroup (x)
const LANES = 8; // row lanes per column (y)
const BLOCK = 32; // rows a lane sums on their own before adding them to its total (error grows with
// rows / (LANES x BLOCK) + BLOCK additions instead of rows / LANES)

/** A lane's rows lid.y, lid.y + LANES, ... summed in blocks of BLOCK rows: `body` adds row r to `block`. */
function laneSum(body: string): string {
  return `for (var r0 = lid.y; r0 < p.rows; r0 += ${LANES * BLOCK}u) {
      var block = vec2f(0.0);
      for (var r = r0; r < min(r0 + ${LANES * BLOCK}u, p.rows); r += ${LANES}u) {
        ${body}
      }
      sum += block;
    }`;
}

/**
 * WGSL of {@linkcode paramGrads}.
 * @example
 * ```ts
 * import { paramGradsWgsl } from "./param_grads.ts";
 * if (!paramGradsWgsl().includes("workgroupBarrier")) throw new Error("lanes meet in workgroup memory");
 * ```
 */
export function paramGradsWgsl(dtype: Dtype = "f32"): string {
  return wgslEnable(dtype) + /* wgsl */ `
// param grads: LayerNorm dgamma/dbeta (lnCols columns) then bias A (colsA) then bias B (colsB), column sums
// bindings: params, dout/input: (rows, lnCols), mean/rstd: (rows), dyA: (rows, colsA), dyB: (rows, colsB),
// grads: a view of the gradient arena written at the element offsets in params
struct Params {
  rows: u32, lnCols: u32, colsA: u32, colsB: u32,
  gammaAt: u32, betaAt: u32, biasAAt: u32, biasBAt: u32,
  accumulate: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dout: array<${dtype}>;
@group(0) @binding(2) var<storage, read> input: array<${dtype}>;
@group(0) @binding(3) var<storage, read> mean: array<f32>;
@group(0) @binding(4) var<storage, read> rstd: array<f32>;
@group(0) @binding(5) var<storage, read> dyA: array<${dtype}>;
@group(0) @binding(6) var<storage, read> dyB: array<${dtype}>;
@group(0) @binding(7) var<storage, read_write> grads: array<f32>;
var<workgroup> partial: array<vec2f, ${COLS * LANES}>; // [lane][column]: (Σ dout·xhat or Σ dy, Σ dout)
@compute @workgroup_size(${COLS}, ${LANES})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_id) lid: vec3u) {
  let j = (wid.x + wid.y * nwg.x) * ${COLS}u + lid.x;
  let total = p.lnCols + p.colsA + p.colsB;
  var sum = vec2f(0.0);
  if (j < p.lnCols) {
    ${
    laneSum(`let d = f32(dout[r * p.lnCols + j]);
        block += vec2f(d * (f32(input[r * p.lnCols + j]) - mean[r]) * rstd[r], d);`)
  }
  } else if (j < p.lnCols + p.colsA) {
    let c = j - p.lnCols;
    ${laneSum("block.x += f32(dyA[r * p.colsA + c]);")}
  } else if (j < total) {
    let c = j - p.lnCols - p.colsA;
    ${laneSum("block.x += f32(dyB[r * p.colsB + c]);")}
  }
  partial[lid.y * ${COLS}u + lid.x] = sum;
  workgroupBarrier();
  if (lid.y != 0u || j >= total) { return; }
  var s = partial[lid.x];
  for (var lane = 1u; lane < ${LANES}u; lane++) { s += partial[lane * ${COLS}u + lid.x]; }
  var at: u32;
  if (j < p.lnCols) {
    at = p.betaAt + j;
    grads[at] = f32(select(0.0, f32(grads[at]), p.accumulate != 0u) + s.y);
    at = p.gammaAt + j;
  } else if (j < p.lnCols + p.colsA) {
    at = p.biasAAt + j - p.lnCols;
  } else {
    at = p.biasBAt + j - p.lnCols - p.colsA;
  }
  grads[at] = f32(select(0.0, f32(grads[at]), p.accumulate != 0u) + s.x);
}`;
}

/** A bias gradient job: dbias = column sums of dy (rows, cols), at element `at` of the grads view. */
export interface BiasJob {
  dy: GPUBuffer;
  cols: number;
  at: number;
}

/** Arguments of {@linkcode paramGrads}. */
export interface ParamGradsArgs {
  /** Rows every job sums over (B·T, or B for the pooler and classifier). */
  rows: number;
  /** A LayerNorm's parameter gradients: its output gradient, input (the residual sum), saved mean/rstd. */
  layerNorm?: {
    dout: GPUBuffer;
    input: GPUBuffer;
    mean: GPUBuffer;
    rstd: GPUBuffer;
    cols: number;
    /** Element offsets of dgamma and dbeta in `grads`. */
    gammaAt: number;
    betaAt: number;
  };
  /** Up to two bias gradients. */
  biases?: BiasJob[];
  /** The gradient view every result is written into (must not be one of the inputs). */
  grads: GPUBuffer;
  /** += (gradients accumulate over micro-batches) instead of =. @default true */
  accumulate?: boolean;
  /** Storage type of layerNorm.dout, layerNorm.input and the biases' dy (the rest is f32). @default "f32" */
  dtype?: Dtype;
}

/**
 * Prepares one dispatch for a LayerNorm's dgamma/dbeta and up to two bias gradients.
 * @example
 * ```ts
 * import { paramGrads } from "./param_grads.ts";
 * import { Gpu } from "./runtime.ts";
 * const gpu = await Gpu.create();
 * const dy = gpu.upload("dy", new Float32Array([1, 2, 3, 4, 5, 6])); // (rows 2, cols 3)
 * const grads = gpu.upload("grads", new Float32Array([0, 100, 100, 100]));
 * gpu.run([paramGrads(gpu, { rows: 2, biases: [{ dy, cols: 3, at: 1 }], grads })]);
 * const got = await gpu.readF32(grads, 4);
 * if (got.join() !== "0,105,107,109") throw new Error(`got ${got}`);
 * ```
 * @throws {RangeError} for non-positive sizes, more than two biases, buffers too small, or grads aliasing an input.
 */
export function paramGrads(gpu: Gpu, a: ParamGradsArgs): Dispatch {
  const op = "paramGrads()";
  checkCount(op, "rows", a.rows);
  const biases = a.biases ?? [];
  if (biases.length > 2) throw new RangeError(`${op}: at most 2 biases per dispatch, got ${biases.length}`);
  if (!a.layerNorm && biases.length === 0) {
    throw new RangeError(`${op}: nothing to compute: pass layerNorm or biases`);
  }
  const ln = a.layerNorm;
  const dtype = a.dtype ?? "f32";
  requireDtype(gpu, dtype, op);
  const bytes = dtypeBytes(dtype);
  const inputs: GPUBuffer[] = [];
  const need = (name: string, buf: GPUBuffer, bytes: number, shape: string) => {
    checkBuffer(op, name, buf, bytes, shape);
    inputs.push(buf);
  };
  const writes: [string, number, number][] = []; // name, first element, count
  if (ln) {
    checkCount(op, "layerNorm.cols", ln.cols);
    const shape = `rows ${a.rows} x cols ${ln.cols}`;
    need("layerNorm.dout", ln.dout, a.rows * ln.cols * bytes, shape);
    need("layerNorm.input", ln.input, a.rows * ln.cols * bytes, shape);
    need("layerNorm.mean", ln.mean, a.rows * 4, `rows ${a.rows}`);
    need("layerNorm.rstd", ln.rstd, a.rows * 4, `rows ${a.rows}`);
    writes.push(["dgamma", ln.gammaAt, ln.cols], ["dbeta", ln.betaAt, ln.cols]);
  }
  biases.forEach((b, i) => {
    checkCount(op, `biases[${i}].cols`, b.cols);
    need(`biases[${i}].dy`, b.dy, a.rows * b.cols * bytes, `rows ${a.rows} x cols ${b.cols}`);
    writes.push([`biases[${i}]`, b.at, b.cols]);
  });
  for (const [name, at, count] of writes) {
    if (!Number.isInteger(at) || at < 0) {
      throw new RangeError(`${op}: ${name} offset must be an integer >= 0, got ${at}`);
    }
    checkBuffer(op, "grads", a.grads, (at + count) * 4, `${name} at element ${at} (${count} values)`);
  }
  if (inputs.includes(a.grads)) {
    throw new RangeError(`${op}: grads must not alias an input; write to the gradient arena`);
  }
  // Unused bindings take any input (read-only, never read).
  const any = inputs[0];
  const [colsA, colsB] = [biases[0]?.cols ?? 0, biases[1]?.cols ?? 0];
  const lnCols = ln?.cols ?? 0;
  const total = lnCols + colsA + colsB;
  return gpu.dispatch(
    "paramGrads",
    paramGradsWgsl(dtype),
    [
      ["u32", a.rows],
      ["u32", lnCols],
      ["u32", colsA],
      ["u32", colsB],
      ["u32", ln?.gammaAt ?? 0],
      ["u32", ln?.betaAt ?? 0],
      ["u32", biases[0]?.at ?? 0],
      ["u32", biases[1]?.at ?? 0],
      ["u32", a.accumulate === false ? 0 : 1],
    ],
    [
      ln?.dout ?? any,
      ln?.input ?? any,
      ln?.mean ?? any,
      ln?.rstd ?? any,
      biases[0]?.dy ?? any,
      biases[1]?.dy ?? any,
      a.grads,
    ],
    grid(total, COLS),
    { family: "paramGrads", flops: a.rows * (4 * lnCols + colsA + colsB) },
  );
}

/**
 * float64 CPU reference: [dgamma, dbeta] of a LayerNorm from its output gradient, input and saved
 * statistics (mean, rstd), as column sums over `rows`.
 * @example
 * ```ts
 * import { layerNormParamGradsRef } from "./param_grads.ts";
 * const [dg, db] = layerNormParamGradsRef([1, 1], [2, 4], [3], [1], 1, 2); // xhat = [-1, 1]
 * if (dg[0] !== -1 || db[1] !== 1) throw new Error("column sums");
 * ```
 */
export function layerNormParamGradsRef(
  dout: ArrayLike<number>,
  input: ArrayLike<number>,
  mean: ArrayLike<number>,
  rstd: ArrayLike<number>,
  rows: number,
  cols: number,
): [Float64Array, Float64Array] {
  if (dout.length < rows * cols || input.length < rows * cols || mean.length < rows || rstd.length < rows) {
    throw new RangeError(`layerNormParamGradsRef: inputs are smaller than (${rows}, ${cols})`);
  }
  const dg = new Float64Array(cols);
  const db = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const d = dout[r * cols + c];
      dg[c] += d * (input[r * cols + c] - mean[r]) * rstd[r];
      db[c] += d;
    }
  }
  return [dg, db];
}
