import assert from "node:assert/strict";
import { FLOAT16, FLOAT16_CLAMP, float16Model, toFloat16Bytes } from "./fp16.ts";
import { buildBertOnnx } from "./bert_onnx.ts";
import { DataType, decodeModel } from "./onnx_proto.ts";
import { parseBertConfig } from "../config.ts";
import { initWeights } from "../weights.ts";

Deno.test("toFloat16Bytes() rounds to nearest and clamps beyond float16's range", () => {
  const bits = new Uint16Array(toFloat16Bytes(Float32Array.from([1, -2, 0.1, 1e6, -3.4e38, 1e-9])).buffer);
  // 0x3c00 = 1, 0xc000 = -2, 0x2e66 = 0.0999755859375 (nearest to 0.1), ±32768, 0.
  assert.deepEqual(Array.from(bits), [0x3c00, 0xc000, 0x2e66, 0x7800, 0xf800, 0]);
  assert.equal(FLOAT16_CLAMP, 32768);
});

Deno.test("float16Model() of the portable graph makes every float initializer and cast float16, logits stay float32", () => {
  const config = parseBertConfig({
    hidden_size: 8,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    intermediate_size: 16,
    vocab_size: 20,
    max_position_embeddings: 8,
  });
  const f32 = decodeModel(buildBertOnnx(config, initWeights(config, 1), { portable: true }));
  const model = decodeModel(float16Model(buildBertOnnx(config, initWeights(config, 1), { portable: true })));
  const floats = f32.graph.initializer.filter((t) => t.data_type === DataType.FLOAT).map((t) => t.name);
  assert.ok(floats.length > 10);
  for (const t of model.graph.initializer) {
    assert.notEqual(t.data_type, DataType.FLOAT, t.name);
    if (floats.includes(t.name)) assert.equal(t.data_type, FLOAT16, t.name);
  }
  const casts = model.graph.node.filter((n) => n.op_type === "Cast");
  assert.deepEqual(casts.map((n) => Number(n.attribute![0].i)), [FLOAT16, DataType.FLOAT]);
  assert.deepEqual(casts.at(-1)!.output, ["logits"]);
  assert.equal(model.graph.output[0].type.tensor_type.elem_type, DataType.FLOAT);
});
