/**
 * int8 dynamic quantization, as onnxruntime's `quantize_dynamic` does it: weights are quantized
 * offline to symmetric int8 (zero point 0, one scale per output column), activations at run time to
 * uint8 by the graph itself. Embedding tables are quantized per row and dequantized after the Gather.
 *
 * The CPU functions here are the spec; the `emit*` functions write the matching ONNX nodes.
 * @module
 */

import type { GraphBuilder } from "./graph.ts";
import { DataType } from "./onnx_proto.ts";

/** Symmetric int8 range: [-127, 127] keeps zero exact and the range symmetric (no -128). */
export const INT8_MAX = 127;

/** int8 values with one float32 scale per group (column or row). value ~= q * scale. */
export interface QuantizedTensor {
  data: Int8Array;
  scales: Float32Array;
}

/**
 * How a quantized linear layer is written:
 * - "DynamicQuantizeMatMul": one com.microsoft DynamicQuantizeMatMul node (quantizes the activation,
 *   u8 x s8 matmul, scales and bias fused).
 * - "MatMulIntegerToFloat": DynamicQuantizeLinear + com.microsoft MatMulIntegerToFloat (scales, bias).
 * - "MatMulInteger": standard ONNX only: DynamicQuantizeLinear, MatMulInteger, Cast, Mul, Add.
 */
export type Int8LinearForm = "DynamicQuantizeMatMul" | "MatMulIntegerToFloat" | "MatMulInteger";

function scaleOf(maxAbs: number): number {
  // An all-zero group gets scale 1 so dequantisation stays exact (0 * 1) and never divides by zero.
  return maxAbs > 0 ? maxAbs / INT8_MAX : 1;
}

/** round(v / scale) clamped to [-127, 127]; `inv` is 1 / scale (one division per group, not per value). */
function quantizeValue(v: number, inv: number): number {
  const r = Math.round(v * inv);
  return r > INT8_MAX ? INT8_MAX : r < -INT8_MAX ? -INT8_MAX : r;
}

/**
 * Quantizes a PyTorch linear weight W: (out, in) into B = W^T: (in, out) int8 for MatMul, with one
 * scale per output column: scale[n] = max_k |W[n, k]| / 127, B[k, n] = round(W[n, k] / scale[n]).
 * @throws {RangeError} when `weight.length !== out * inp`.
 * @example
 * ```ts
 * import { quantizeLinearWeight } from "./quantize.ts";
 * const q = quantizeLinearWeight(new Float32Array([1, -2, 0.5, 4]), 2, 2);
 * // q.data is [[64, 16], [-127, 127]] (in, out); q.scales is [2/127, 4/127]
 * ```
 */
export function quantizeLinearWeight(weight: Float32Array, out: number, inp: number): QuantizedTensor {
  if (weight.length !== out * inp) {
    throw new RangeError(
      `Linear weight has ${weight.length} values but shape [${out}, ${inp}] needs ${out * inp}`,
    );
  }
  const data = new Int8Array(out * inp);
  const scales = new Float32Array(out);
  for (let n = 0; n < out; n++) {
    let maxAbs = 0;
    for (let k = 0; k < inp; k++) {
      const a = Math.abs(weight[n * inp + k]);
      if (a > maxAbs) maxAbs = a;
    }
    const s = Math.fround(scaleOf(maxAbs));
    const inv = 1 / s;
    scales[n] = s;
    for (let k = 0; k < inp; k++) data[k * out + n] = quantizeValue(weight[n * inp + k], inv);
  }
  return { data, scales };
}

/**
 * Quantizes an embedding table (rows, cols) per row: scale[r] = max_c |T[r, c]| / 127.
 * @throws {RangeError} when `table.length !== rows * cols`.
 * @example
 * ```ts
 * import { quantizeRows } from "./quantize.ts";
 * const q = quantizeRows(new Float32Array([0.5, -1, 0, 0]), 2, 2);
 * // q.data is [64, -127, 0, 0]; q.scales is [1/127, 1] (an all-zero row keeps scale 1)
 * ```
 */
export function quantizeRows(table: Float32Array, rows: number, cols: number): QuantizedTensor {
  if (table.length !== rows * cols) {
    throw new RangeError(
      `Table has ${table.length} values but shape [${rows}, ${cols}] needs ${rows * cols}`,
    );
  }
  const data = new Int8Array(rows * cols);
  const scales = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let maxAbs = 0;
    for (let c = 0; c < cols; c++) {
      const a = Math.abs(table[r * cols + c]);
      if (a > maxAbs) maxAbs = a;
    }
    const s = Math.fround(scaleOf(maxAbs));
    const inv = 1 / s;
    scales[r] = s;
    for (let c = 0; c < cols; c++) data[r * cols + c] = quantizeValue(table[r * cols + c], inv);
  }
  return { data, scales };
}

/**
 * The uint8 activation quantization DynamicQuantizeLinear applies at run time (ONNX spec, float64
 * here): scale = (max(0, x) - min(0, x)) / 255, zero point = saturate(round(-min / scale)),
 * q = saturate(round(x / scale) + zero point), rounding half to even.
 * @example
 * ```ts
 * import { dynamicQuantizeLinearRef } from "./quantize.ts";
 * const { q, scale, zeroPoint } = dynamicQuantizeLinearRef([-1, 0, 2]);
 * // scale 3/255, zeroPoint 85, q [0, 85, 255]
 * ```
 */
export function dynamicQuantizeLinearRef(
  x: ArrayLike<number>,
): { q: Uint8Array; scale: number; zeroPoint: number } {
  let lo = 0;
  let hi = 0;
  for (let i = 0; i < x.length; i++) {
    lo = Math.min(lo, x[i]);
    hi = Math.max(hi, x[i]);
  }
  const scale = (hi - lo) / 255;
  const clip = (v: number) => Math.max(0, Math.min(255, v));
  const zeroPoint = scale === 0 ? 0 : clip(roundHalfEven(-lo / scale));
  const q = new Uint8Array(x.length);
  for (let i = 0; i < x.length; i++) {
    q[i] = scale === 0 ? zeroPoint : clip(roundHalfEven(x[i] / scale) + zeroPoint);
  }
  return { q, scale, zeroPoint };
}

function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v - Math.trunc(v)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * CPU reference of the quantized linear layer: x (M, K) row-major, W (N, K) as in nn.Linear, bias (N).
 * y = (q(x) - zp) * s_x @ (B * scale) + bias, in float64, from the same quantization the graph uses.
 * @example
 * ```ts
 * import { int8LinearRef } from "./quantize.ts";
 * const y = int8LinearRef([1, 2], new Float32Array([0.5, -0.25]), new Float32Array([0.1]), 1, 2, 1);
 * // y[0] ~= 1 * 0.5 + 2 * -0.25 + 0.1
 * ```
 */
export function int8LinearRef(
  x: ArrayLike<number>,
  weight: Float32Array,
  bias: Float32Array,
  m: number,
  k: number,
  n: number,
): Float64Array {
  const w = quantizeLinearWeight(weight, n, k);
  const a = dynamicQuantizeLinearRef(x);
  const y = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let acc = 0; // exact integer accumulation, as MatMulInteger's int32
      for (let p = 0; p < k; p++) acc += (a.q[i * k + p] - a.zeroPoint) * w.data[p * n + j];
      y[i * n + j] = acc * a.scale * w.scales[j] + bias[j];
    }
  }
  return y;
}

/** How {@linkcode emitInt8Linear} writes a layer. */
export interface Int8LinearOptions {
  /** Node pattern. @default "DynamicQuantizeMatMul" */
  form?: Int8LinearForm;
  /**
   * Storage of the symmetric int8 weights: "int8" as is (zero point 0), or "uint8" as q + 128 with
   * zero point 128 (same values, so the same result on exact kernels). onnxruntime-node's x86 u8 x s8
   * kernels sum pairs of u8 * s8 products in int16 and saturate on full-range weights; its u8 x u8
   * kernels do not. @default "uint8"
   */
  weightType?: "int8" | "uint8";
}

/**
 * Emits y = x @ W^T + bias with W quantized offline (per output column) and x quantized at run time.
 * x: (..., K) float32; weight: (N, K) nn.Linear layout; returns the name of y: (..., N) float32.
 * @example
 * ```ts
 * import { GraphBuilder } from "./graph.ts";
 * import { DataType } from "./onnx_proto.ts";
 * import { emitInt8Linear } from "./quantize.ts";
 * const g = new GraphBuilder("fc");
 * const x = g.input("x", DataType.FLOAT, ["m", 3]);
 * const y = emitInt8Linear(g, x, new Float32Array([1, 2, 3, -1, 0, 1]), new Float32Array([0, 0.5]), "fc");
 * g.output(y, DataType.FLOAT, ["m", 2]);
 * ```
 */
export function emitInt8Linear(
  g: GraphBuilder,
  x: string,
  weight: Float32Array,
  bias: Float32Array,
  name: string,
  options: Int8LinearOptions = {},
): string {
  const form = options.form ?? "DynamicQuantizeMatMul";
  const n = bias.length;
  const k = weight.length / n;
  const q = quantizeLinearWeight(weight, n, k);
  let b: string;
  let bZero: string;
  if ((options.weightType ?? "uint8") === "uint8") {
    const offset = new Uint8Array(q.data.length);
    for (let i = 0; i < offset.length; i++) offset[i] = q.data[i] + 128;
    b = g.initializer(`${name}.weight_uint8`, offset, [k, n]);
    bZero = g.initializer(`${name}.weight_zero_point`, new Uint8Array([128]), []);
  } else {
    b = g.initializer(`${name}.weight_int8`, q.data, [k, n]);
    bZero = ""; // omitted optional input: zero point 0
  }
  const bScale = g.initializer(`${name}.weight_scale`, q.scales, [n]);
  const biasName = g.initializer(`${name}.bias`, bias, [n]);
  if (form === "DynamicQuantizeMatMul") {
    // Inputs: A, B, b_scale, b_zero_point, bias.
    return g.op("DynamicQuantizeMatMul", [x, b, bScale, bZero, biasName], {}, "com.microsoft");
  }
  const [xq, xScale, xZero] = g.node("DynamicQuantizeLinear", [x], { outputs: 3 });
  if (form === "MatMulIntegerToFloat") {
    // Inputs: A, B, a_scale, b_scale, a_zero_point, b_zero_point, bias.
    return g.op("MatMulIntegerToFloat", [xq, b, xScale, bScale, xZero, bZero, biasName], {}, "com.microsoft");
  }
  const acc = g.op("MatMulInteger", bZero ? [xq, b, xZero, bZero] : [xq, b, xZero]); // int32 (..., N)
  const scale = g.op("Mul", [xScale, bScale]); // (N): s_x * s_w[n]
  const y = g.op("Mul", [g.op("Cast", [acc], { to: DataType.FLOAT }), scale]);
  return g.op("Add", [y, biasName]);
}

/**
 * Emits an embedding lookup from a per-row int8 table: Gather the int8 rows and their scales, then
 * multiply. table: (rows, cols) float32; ids: int64 (...); returns (..., cols) float32.
 * @example
 * ```ts
 * import { GraphBuilder } from "./graph.ts";
 * import { DataType } from "./onnx_proto.ts";
 * import { emitInt8Gather } from "./quantize.ts";
 * const g = new GraphBuilder("embed");
 * const ids = g.input("ids", DataType.INT64, ["n"]);
 * g.output(emitInt8Gather(g, new Float32Array([0.5, -1, 2, 0]), 2, ids, "table"), DataType.FLOAT, ["n", 2]);
 * ```
 */
export function emitInt8Gather(
  g: GraphBuilder,
  table: Float32Array,
  cols: number,
  ids: string,
  name: string,
): string {
  const rows = table.length / cols;
  const q = quantizeRows(table, rows, cols);
  const data = g.initializer(`${name}_int8`, q.data, [rows, cols]);
  const scales = g.initializer(`${name}_scale`, q.scales, [rows, 1]);
  const gathered = g.op("Cast", [g.op("Gather", [data, ids], { axis: 0 })], { to: DataType.FLOAT }); // (..., cols)
  return g.op("Mul", [gathered, g.op("Gather", [scales, ids], { axis: 0 })]); // (..., cols) * (..., 1)
}
