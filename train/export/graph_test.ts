import assert from "node:assert/strict";
import { float, GraphBuilder } from "./graph.ts";
import { DataType, decodeModel } from "./onnx_proto.ts";
import { onnxCheck, web } from "./_test_util.ts";
import { Rng } from "../../kernels/random.ts";
import { assertClose, randn } from "../../tests/util.ts";
import { KERNEL_F32 } from "../../tests/tolerance.ts";

Deno.test("GraphBuilder.node() rejects an input that is not defined yet", () => {
  const g = new GraphBuilder("g");
  const x = g.input("x", DataType.FLOAT, [2]);
  assert.throws(() => g.op("Add", [x, "later"]), { name: "RangeError", message: /Add uses "later"/ });
});

Deno.test("GraphBuilder.node() rejects a plain non-integer attribute and asks for float()", () => {
  const g = new GraphBuilder("g");
  const x = g.input("x", DataType.FLOAT, [2]);
  assert.throws(
    () => g.op("LayerNormalization", [x], { epsilon: 1e-5 }),
    { name: "TypeError", message: /"epsilon" of LayerNormalization is 0.00001; .*float\(\)/ },
  );
});

Deno.test("GraphBuilder.initializer() rejects data that does not fill its dims", () => {
  const g = new GraphBuilder("g");
  assert.throws(() => g.initializer("w", new Float32Array(5), [2, 3]), {
    name: "RangeError",
    message: /"w" has 5 values but dims \[2,3\] need 6/,
  });
});

Deno.test("GraphBuilder keeps value names unique and shares equal constants", () => {
  const g = new GraphBuilder("g");
  const x = g.input("x", DataType.FLOAT, ["n"]);
  const a = g.initializer("w", new Float32Array([1]), []);
  const b = g.initializer("w", new Float32Array([2]), []);
  assert.notEqual(a, b);
  assert.equal(g.float32([0.5]), g.float32([0.5]));
  assert.notEqual(g.float32([0.5]), g.float32([0.25]));
  const [y1] = g.node("Add", [x, a]);
  const [y2] = g.node("Add", [y1, b]);
  assert.notEqual(y1, y2);
  assert.throws(() => g.input("x", DataType.FLOAT, [1]), {
    name: "RangeError",
    message: /"x" is already defined/,
  });
});

Deno.test("GraphBuilder.build() imports com.microsoft only when a node uses it", () => {
  const plain = new GraphBuilder("plain");
  plain.output(plain.op("Relu", [plain.input("x", DataType.FLOAT, [1])]), DataType.FLOAT, [1]);
  assert.deepEqual(plain.build().opset_import, [{ domain: "", version: 17 }]);
  const contrib = new GraphBuilder("contrib");
  const x = contrib.input("x", DataType.FLOAT, [1]);
  contrib.output(contrib.op("Gelu", [x], {}, "com.microsoft"), DataType.FLOAT, [1]);
  assert.deepEqual(contrib.build().opset_import, [{ domain: "", version: 17 }, {
    domain: "com.microsoft",
    version: 1,
  }]);
});

Deno.test("GraphBuilder.build() refuses a graph without outputs", () => {
  assert.throws(() => new GraphBuilder("empty").build(), {
    name: "RangeError",
    message: /"empty" has no outputs/,
  });
});

Deno.test("GraphBuilder.encode() gives a model onnx accepts and onnxruntime-web runs", async () => {
  // y = LayerNorm(x * w + b) over the last axis, x: (n, 5); checked against a float64 CPU reference.
  const g = new GraphBuilder("affine_norm");
  const x = g.input("x", DataType.FLOAT, ["n", 5]);
  const rng = new Rng(3);
  const w = Float32Array.from(randn(rng, 5));
  const b = Float32Array.from(randn(rng, 5));
  const scaled = g.op("Add", [g.op("Mul", [x, g.initializer("w", w, [5])]), g.initializer("b", b, [5])]);
  const y = g.op("LayerNormalization", [scaled, g.float32([1, 1, 1, 1, 1]), g.float32([0, 0, 0, 0, 0])], {
    axis: -1,
    epsilon: float(1e-5),
  });
  g.output(y, DataType.FLOAT, ["n", 5]);
  const bytes = g.encode();
  assert.equal(decodeModel(bytes).graph.node.length, 3);

  const path = await Deno.makeTempFile({ suffix: ".onnx" });
  try {
    await Deno.writeFile(path, bytes);
    const check = await onnxCheck(path);
    assert.equal(check.code, 0, check.output);
  } finally {
    await Deno.remove(path);
  }

  const n = 3;
  const input = Float32Array.from(randn(rng, n * 5));
  const session = await web.InferenceSession.create(bytes);
  const out = (await session.run({ [x]: new web.Tensor("float32", input, [n, 5]) }))[y].data as Float32Array;
  await session.release();
  const expected: number[] = [];
  for (let r = 0; r < n; r++) {
    const row = Array.from({ length: 5 }, (_, c) => input[r * 5 + c] * w[c] + b[c]);
    const mean = row.reduce((s, v) => s + v, 0) / 5;
    const variance = row.reduce((s, v) => s + (v - mean) ** 2, 0) / 5;
    for (const v of row) expected.push((v - mean) / Math.sqrt(variance + 1e-5));
  }
  assertClose(out, expected, KERNEL_F32, "LayerNormalization");
});
