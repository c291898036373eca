/**
 * The float16 variant (`model.fp16.onnx`) for onnxruntime's WebGPU provider, which has no int8
 * kernels: the float32 graph with float16 weights and activations. Inputs stay int64 and the output
 * `logits` stays float32 (one Cast at the end), so every runtime feeds and reads it alike.
 *
 * A pass over the float32 model rather than a second graph builder: every float32 initializer
 * becomes float16 (values beyond float16's range are clamped to ±{@linkcode FLOAT16_CLAMP}, so the
 * attention mask's float32 minimum becomes -32768: still a zero weight after softmax, where -inf
 * would give 0 * -inf = NaN), and every Cast to float32 casts to float16 instead.
 * @module
 */

import { DataType, decodeModel, encodeModel, type NodeProto } from "./onnx_proto.ts";
import { OUTPUT_NAME } from "./bert_onnx.ts";

/** `TensorProto.DataType.FLOAT16`. */
export const FLOAT16 = 10;
/**
 * Where float32 values beyond float16's range are clamped: half of float16's largest finite value
 * (65504), so the attention mask's "float32 min" plus a score stays finite (-65504 + a negative
 * score rounds to -inf, and a row of -inf gives NaN in softmax's max subtraction).
 */
export const FLOAT16_CLAMP = 32768;

/** float32 values -> float16 little-endian bytes, rounded to nearest, clamped to ±FLOAT16_CLAMP. */
export function toFloat16Bytes(values: Float32Array): Uint8Array {
  const half = new Float16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    half[i] = v > FLOAT16_CLAMP ? FLOAT16_CLAMP : v < -FLOAT16_CLAMP ? -FLOAT16_CLAMP : v;
  }
  return new Uint8Array(half.buffer);
}

/**
 * Rewrites a float32 BERT ONNX model (as `buildBertOnnx` writes it) into its float16 form.
 * @throws {RangeError} when the model has no `logits` output or a float initializer without raw data.
 * @example
 * ```ts ignore
 * import { float16Model } from "./fp16.ts";
 * const fp16 = float16Model(await Deno.readFile("model.onnx"));
 * ```
 */
export function float16Model(float32Model: Uint8Array): Uint8Array {
  const model = decodeModel(float32Model);
  const graph = model.graph;
  for (const t of graph.initializer) {
    if (t.data_type !== DataType.FLOAT) continue;
    if (!t.raw_data) throw new RangeError(`Initializer "${t.name}" has no raw_data; re-export the model`);
    const raw = t.raw_data;
    // A copy: protobufjs may hand out a Node Buffer, whose slice() is a view, not a copy.
    const values = new Float32Array(new Uint8Array(raw).buffer, 0, raw.byteLength / 4);
    t.raw_data = toFloat16Bytes(values);
    t.data_type = FLOAT16;
  }
  for (const node of graph.node) {
    if (node.op_type !== "Cast") continue;
    for (const a of node.attribute ?? []) {
      if (a.name === "to" && Number(a.i) === DataType.FLOAT) a.i = FLOAT16;
    }
  }
  const producer = graph.node.find((n) => n.output.includes(OUTPUT_NAME));
  if (producer === undefined) throw new RangeError(`The model has no "${OUTPUT_NAME}" output`);
  const half = `${OUTPUT_NAME}_float16`;
  producer.output = producer.output.map((o) => o === OUTPUT_NAME ? half : o);
  const cast: NodeProto = {
    op_type: "Cast",
    input: [half],
    output: [OUTPUT_NAME],
    attribute: [{ name: "to", type: 2, i: DataType.FLOAT }],
  };
  graph.node.push(cast);
  return encodeModel(model);
}
