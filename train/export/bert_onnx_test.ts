import assert from "node:assert/strict";
import { bertGraph, type BertOnnxOptions, buildBertOnnx } from "./bert_onnx.ts";
import { argmaxRows, loadFixture, node, randomBatch, runLogits, web } from "./_test_util.ts";
import { encodeModel } from "./onnx_proto.ts";
import { BERT_BASE, numLabels, parseBertConfig } from "../config.ts";
import { parameterSpecs } from "../params.ts";
import { Rng } from "../../kernels/random.ts";
import { assertClose } from "../../tests/util.ts";
import { INT8_LOGITS, ONNX_F32, REDUCTION_F32 } from "../../tests/tolerance.ts";

for (const name of ["tiny", "odd", "regression"]) {
  Deno.test(`buildBertOnnx() float32 logits match PyTorch on the "${name}" fixture`, async () => {
    const fx = await loadFixture(name);
    const logits = await runLogits(web, buildBertOnnx(fx.config, fx.weights), fx.batch);
    assertClose(logits, fx.logits, ONNX_F32, `${name} logits`);
  });
}

function maxAbs(values: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < values.length; i++) m = Math.max(m, Math.abs(values[i]));
  return m;
}

Deno.test("buildBertOnnx() int8 logits stay within INT8_LOGITS of float32 and keep the argmax", async () => {
  let rows = 0;
  let agree = 0;
  for (const name of ["tiny", "odd", "regression"]) {
    const fx = await loadFixture(name);
    const float32 = buildBertOnnx(fx.config, fx.weights);
    const int8 = buildBertOnnx(fx.config, fx.weights, { quantize: "int8" });
    const rng = new Rng(21);
    for (const batch of [fx.batch, randomBatch(rng, fx.config, 24, fx.config.max_position_embeddings - 1)]) {
      const f = await runLogits(web, float32, batch);
      const q = await runLogits(web, int8, batch);
      const bound = { abs: INT8_LOGITS.abs * maxAbs(f), rel: 0 };
      assertClose(q, f, bound, `${name} int8 vs float32 (batch ${batch.batch}x${batch.sequence})`);
      if (numLabels(fx.config) > 1) {
        const fa = argmaxRows(f, numLabels(fx.config));
        const qa = argmaxRows(q, numLabels(fx.config));
        rows += fa.length;
        agree += fa.filter((v, i) => v === qa[i]).length;
      }
    }
  }
  // Near-ties may flip; on random inputs nearly all predictions must survive quantization.
  assert.ok(agree >= 0.95 * rows, `int8 argmax agreed on ${agree} of ${rows} rows`);
});

Deno.test("buildBertOnnx() runs the same on onnxruntime-node and onnxruntime-web", async () => {
  const ortNode = await node();
  const fx = await loadFixture("odd");
  const batch = randomBatch(new Rng(22), fx.config, 16, 8);
  const float32 = buildBertOnnx(fx.config, fx.weights);
  assertClose(
    await runLogits(ortNode, float32, batch),
    await runLogits(web, float32, batch),
    REDUCTION_F32,
    "float32",
  );
  // int8: uint8-stored weights keep node's x86 kernels exact (int8-stored ones saturate there), so
  // node's int8 is as close to float32 as web's.
  const int8 = buildBertOnnx(fx.config, fx.weights, { quantize: "int8" });
  const f = await runLogits(web, float32, batch);
  const bound = { abs: INT8_LOGITS.abs * maxAbs(f), rel: 0 };
  assertClose(await runLogits(ortNode, int8, batch), f, bound, "onnxruntime-node int8 vs float32");
});

Deno.test("buildBertOnnx() int8 forms and weight storages give the same logits", async () => {
  const fx = await loadFixture("tiny");
  const batch = randomBatch(new Rng(23), fx.config, 6, 9);
  const base = await runLogits(web, buildBertOnnx(fx.config, fx.weights, { quantize: "int8" }), batch);
  for (const int8Linear of ["MatMulIntegerToFloat", "MatMulInteger"] as const) {
    for (const int8Weights of ["uint8", "int8"] as const) {
      const bytes = buildBertOnnx(fx.config, fx.weights, { quantize: "int8", int8Linear, int8Weights });
      assertClose(await runLogits(web, bytes, batch), base, REDUCTION_F32, `${int8Linear} ${int8Weights}`);
    }
  }
});

const FORMS: Record<string, BertOnnxOptions> = {
  fused: {},
  unfused: { fused: false },
  portable: { portable: true },
};

Deno.test("buildBertOnnx() fused (default), unfused and portable graphs give the same logits", async () => {
  for (const name of ["tiny", "odd", "regression"]) {
    const fx = await loadFixture(name);
    const padded = randomBatch(new Rng(24), fx.config, 5, fx.config.max_position_embeddings - 1);
    for (const quantize of ["none", "int8"] as const) {
      const fused = await runLogits(web, buildBertOnnx(fx.config, fx.weights, { quantize }), padded);
      for (const [form, options] of Object.entries(FORMS)) {
        const bytes = buildBertOnnx(fx.config, fx.weights, { ...options, quantize });
        if (quantize === "none") {
          assertClose(
            await runLogits(web, bytes, fx.batch),
            fx.logits,
            ONNX_F32,
            `${name} ${form} vs PyTorch`,
          );
        }
        assertClose(await runLogits(web, bytes, padded), fused, REDUCTION_F32, `${name} ${form} ${quantize}`);
      }
    }
  }
});

Deno.test("buildBertOnnx() fused graph uses onnxruntime's transformer ops; portable only standard ONNX", () => {
  const config = parseBertConfig({
    hidden_size: 8,
    num_hidden_layers: 2,
    num_attention_heads: 2,
    intermediate_size: 16,
    vocab_size: 20,
    max_position_embeddings: 8,
  });
  const weights = new Map(
    parameterSpecs(config).map((s) => [s.name, new Float32Array(s.shape.reduce((a, b) => a * b, 1))]),
  );
  const ops = (options: BertOnnxOptions) => {
    const model = bertGraph(config, weights, options).build();
    return { model, ops: new Set(model.graph.node.map((n) => `${n.domain ?? ""}:${n.op_type}`)) };
  };
  const fused = ops({ quantize: "int8" });
  for (const op of ["MultiHeadAttention", "SkipLayerNormalization", "Gelu", "DynamicQuantizeMatMul"]) {
    assert.ok(fused.ops.has(`com.microsoft:${op}`), `fused int8 lacks ${op}: ${[...fused.ops]}`);
  }
  assert.ok(ops({}).ops.has("com.microsoft:BiasGelu"));
  assert.ok(!fused.ops.has(":Erf") && !fused.ops.has(":Softmax") && !fused.ops.has(":Transpose"));
  for (const quantize of ["none", "int8"] as const) {
    const portable = ops({ quantize, portable: true });
    assert.deepEqual([...portable.ops].filter((op) => !op.startsWith(":")), [], `portable ${quantize}`);
    assert.deepEqual(portable.model.opset_import, [{ domain: "", version: 17 }]);
  }
  assert.throws(() => buildBertOnnx(config, weights, { portable: true, fused: true }), {
    name: "RangeError",
    message: /portable graph uses standard ONNX ops only/,
  });
  assert.throws(
    () => buildBertOnnx(config, weights, { portable: true, int8Linear: "DynamicQuantizeMatMul" }),
    {
      name: "RangeError",
      message: /int8Linear "DynamicQuantizeMatMul"/,
    },
  );
});

Deno.test("buildBertOnnx() int8 is at most 27% of float32 for bert-base", () => {
  // Exact encoded sizes, extrapolated by layer: size(L layers) = size(1) + (L - 1) * per-layer bytes,
  // where a layer's bytes do not depend on the vocabulary (measured on a 2-word vocabulary).
  const zeros = (config: ReturnType<typeof parseBertConfig>) =>
    new Map(
      parameterSpecs(config).map((s) => [s.name, new Float32Array(s.shape.reduce((a, b) => a * b, 1))]),
    );
  const size = (layers: number, vocab: number, quantize: "none" | "int8") => {
    const config = parseBertConfig({ ...BERT_BASE, num_hidden_layers: layers, vocab_size: vocab });
    const weights = zeros(config);
    // Random-looking values are not needed: sizes depend only on shapes.
    return encodeModel(bertGraph(config, weights, { quantize }).build()).length;
  };
  const bertBase = (quantize: "none" | "int8") =>
    size(1, BERT_BASE.vocab_size, quantize) +
    (BERT_BASE.num_hidden_layers - 1) * (size(2, 2, quantize) - size(1, 2, quantize));
  const float32 = bertBase("none");
  const int8 = bertBase("int8");
  // float32 is the parameters' 4 bytes each plus a little graph: ~438 MB, as HF's model.onnx.
  assert.ok(float32 > 437e6 && float32 < 439e6, `float32 bert-base ${float32} bytes`);
  assert.ok(
    int8 <= 0.27 * float32,
    `int8 ${int8} bytes is ${(100 * int8 / float32).toFixed(2)}% of ${float32}`,
  );
});

Deno.test("buildBertOnnx() names a missing or mis-sized weight", () => {
  const config = parseBertConfig({
    hidden_size: 8,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    intermediate_size: 16,
    vocab_size: 20,
    max_position_embeddings: 8,
  });
  const weights = new Map(
    parameterSpecs(config).map((s) => [s.name, new Float32Array(s.shape.reduce((a, b) => a * b, 1))]),
  );
  const missing = new Map(weights);
  missing.delete("bert.encoder.layer.0.attention.self.key.weight");
  assert.throws(() => buildBertOnnx(config, missing), {
    name: "RangeError",
    message: /"bert.encoder.layer.0.attention.self.key.weight" is missing/,
  });
  const wrong = new Map(weights).set("classifier.weight", new Float32Array(3 * 8));
  assert.throws(() => buildBertOnnx(config, wrong), {
    name: "RangeError",
    message: /"classifier.weight" .* has 24 values, expected shape \[2,8\]/,
  });
});
