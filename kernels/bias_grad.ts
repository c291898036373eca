/**
 * Bias gradient: dbias[c] (+)= sum over rows r of dy[r, c] (the backward of a bias added to every row,
 * as in nn.Linear). One deterministic pass: each workgroup owns 32 columns; its 8 row lanes sum rows
 * lane, lane + 8, ... in order, then lane 0 adds the 8 partial sums in a fixed order. No atomics, so the
 * result is bit-identical from run to run.
 * @module
 */

import { type Dispatch, type Gpu, grid } from "./runtime.ts";

const COLS = 32; // columns per workgroup (x)
const LANES = 8; // row lanes per column (y)

/**
 * WGSL for dbias[c] (+)= sum_r dy[r, c]; dtype is a parameter so f16 can follow.
 *
 * @example
 * ```ts
 * import { biasGradWgsl } from "./bias_grad.ts";
 * if (!biasGradWgsl(true).includes("dbias[c] + total")) throw new Error("accumulates");
 * ```
 */
export function biasGradWgsl(accumulate: boolean, dtype: "f32" = "f32"): string {
  return /* wgsl */ `
// bias grad: dbias[c] ${accumulate ? "+=" : "="} sum_r dy[r, c]
// bindings: params {rows, cols}, dy: (rows, cols) row-major, dbias: (cols)
struct Params { rows: u32, cols: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<${dtype}>;
@group(0) @binding(2) var<storage, read_write> dbias: array<${dtype}>;
var<workgroup> partial: array<${dtype}, ${COLS * LANES}>; // [lane][column]
@compute @workgroup_size(${COLS}, ${LANES})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_id) lid: vec3u) {
  let c = (wid.x + wid.y * nwg.x) * ${COLS}u + lid.x;
  var sum = ${dtype}(0);
  if (c < p.cols) {
    for (var r = lid.y; r < p.rows; r += ${LANES}u) { sum += dy[r * p.cols + c]; }
  }
  partial[lid.y * ${COLS}u + lid.x] = sum;
  workgroupBarrier();
  if (lid.y != 0u || c >= p.cols) { return; }
  var total = partial[lid.x];
  for (var lane = 1u; lane < ${LANES}u; lane++) { total += partial[lane * ${COLS}u + lid.x]; }
  dbias[c] = ${accumulate ? "dbias[c] + total" : "total"};
}`;
}

/** Arguments of {@linkcode biasGrad}. */
export interface BiasGradArgs {
  /** dy: (rows, cols) row-major, the gradient of the output the bias was added to. */
  dy: GPUBuffer;
  /** dbias: (cols). */
  dbias: GPUBuffer;
  rows: number;
  cols: number;
  /** Add to dbias (gradients accumulate across micro-batches) instead of overwriting it. @default false */
  accumulate?: boolean;
}

/**
 * Prepares dbias[c] (+)= sum_r dy[r, c]. Returns the dispatches to run in order (one today).
 *
 * @example
 * ```ts
 * import { biasGrad } from "./bias_grad.ts";
 * import { Gpu } from "./runtime.ts";
 * const gpu = await Gpu.create();
 * const dy = gpu.upload("dy", new Float32Array([1, 2, 3, 4, 5, 6])); // (rows 2, cols 3)
 * const dbias = gpu.upload("dbias", new Float32Array([100, 100, 100]));
 * gpu.run(biasGrad(gpu, { dy, dbias, rows: 2, cols: 3, accumulate: true }));
 * const got = await gpu.readF32(dbias, 3);
 * if (got.join() !== "105,107,109") throw new Error(`got ${got}`);
 * ```
 * @throws {RangeError} for non-positive sizes or buffers smaller than the shapes.
 */
export function biasGrad(gpu: Gpu, args: BiasGradArgs): Dispatch[] {
  const { dy, dbias, rows, cols, accumulate = false } = args;
  for (const [name, v] of [["rows", rows], ["cols", cols]] as const) {
    if (!Number.isSafeInteger(v) || v < 1) {
      throw new RangeError(
        `biasGrad: ${name} must be a positive integer, got ${v} (rows=${rows}, cols=${cols})`,
      );
    }
  }
  if (rows * cols * 4 > dy.size) {
    throw new RangeError(
      `biasGrad: dy (${rows}, ${cols}) needs ${
        rows * cols * 4
      } bytes but buffer "${dy.label}" has ${dy.size}`,
    );
  }
  if (cols * 4 > dbias.size) {
    throw new RangeError(
      `biasGrad: dbias (${cols}) needs ${cols * 4} bytes but buffer "${dbias.label}" has ${dbias.size}`,
    );
  }
  return [
    gpu.dispatch(
      "biasGrad",
      biasGradWgsl(accumulate),
      [["u32", rows], ["u32", cols]],
      [dy, dbias],
      grid(cols, COLS),
    ),
  ];
}

/**
 * float64 CPU reference: the column sums of dy (rows, cols).
 *
 * @example
 * ```ts
 * import { biasGradRef } from "./bias_grad.ts";
 * const db = biasGradRef([1, 2, 3, 4, 5, 6], 2, 3); // [5, 7, 9]
 * if (db[2] !== 9) throw new Error("column sum");
 * ```
 */
export function biasGradRef(dy: ArrayLike<number>, rows: number, cols: number): Float64Array {
  if (dy.length < rows * cols) {
    throw new RangeError(
      `biasGradRef: dy has ${dy.length} elements but (${rows}, ${cols}) needs ${rows * cols}`,
    );
  }
  const out = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[c] += dy[r * cols + c];
  }
  return out;
}
