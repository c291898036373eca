import assert from "node:assert/strict";
import {
  dynamicQuantizeLinearRef,
  emitInt8Gather,
  emitInt8Linear,
  INT8_MAX,
  int8LinearRef,
  quantizeLinearWeight,
  quantizeRows,
} from "./quantize.ts";
import { GraphBuilder } from "./graph.ts";
import { DataType } from "./onnx_proto.ts";
import { web } from "./_test_util.ts";
import { Rng } from "../../kernels/random.ts";
import { assertClose, randn } from "../../tests/util.ts";
import { EXACT, KERNEL_F32 } from "../../tests/tolerance.ts";

Deno.test("quantizeLinearWeight() transposes to (in, out) and rounds within half a step per column", () => {
  const rng = new Rng(11);
  const out = 7;
  const inp = 45;
  const w = Float32Array.from(randn(rng, out * inp, 0.3));
  w.fill(0, 2 * inp, 3 * inp); // an all-zero output row must stay exactly zero
  const q = quantizeLinearWeight(w, out, inp);
  for (let n = 0; n < out; n++) {
    let maxAbs = 0;
    for (let k = 0; k < inp; k++) maxAbs = Math.max(maxAbs, Math.abs(w[n * inp + k]));
    for (let k = 0; k < inp; k++) {
      const back = q.data[k * out + n] * q.scales[n];
      assert.ok(
        Math.abs(back - w[n * inp + k]) <= q.scales[n] / 2 * (1 + 1e-6),
        `W[${n}, ${k}] = ${w[n * inp + k]} came back as ${back} (scale ${q.scales[n]})`,
      );
    }
    // The largest magnitude of each column uses the full symmetric range.
    if (maxAbs > 0) {
      assert.equal(
        Math.max(...Array.from({ length: inp }, (_, k) => Math.abs(q.data[k * out + n]))),
        INT8_MAX,
      );
    }
  }
  assert.equal(q.scales[2], 1);
  assert.ok(q.data.every((v) => v >= -INT8_MAX && v <= INT8_MAX));
});

Deno.test("quantizeRows() rounds each row within half a step of its own scale", () => {
  const rng = new Rng(12);
  const rows = 9;
  const cols = 13;
  const t = Float32Array.from(randn(rng, rows * cols));
  for (let c = 0; c < cols; c++) t[4 * cols + c] *= 100; // one big row must not coarsen the others
  const q = quantizeRows(t, rows, cols);
  const back = Array.from(q.data, (v, i) => v * q.scales[Math.floor(i / cols)]);
  for (let i = 0; i < t.length; i++) {
    const step = q.scales[Math.floor(i / cols)];
    assert.ok(Math.abs(back[i] - t[i]) <= step / 2 * (1 + 1e-6), `element ${i}: ${t[i]} -> ${back[i]}`);
  }
  assert.ok(q.scales[4] > 50 * q.scales[0]);
  assert.throws(() => quantizeRows(t, rows, cols + 1), { name: "RangeError", message: /shape \[9, 14\]/ });
});

Deno.test("dynamicQuantizeLinearRef() matches onnxruntime's DynamicQuantizeLinear", async () => {
  const rng = new Rng(13);
  const g = new GraphBuilder("dql");
  const x = g.input("x", DataType.FLOAT, [64]);
  const [q, s, z] = g.node("DynamicQuantizeLinear", [x], { outputs: 3 });
  g.output(q, DataType.UINT8, [64]);
  g.output(s, DataType.FLOAT, []);
  g.output(z, DataType.UINT8, []);
  const session = await web.InferenceSession.create(g.encode());
  for (const shift of [0, 3, -3]) {
    const input = Float32Array.from(randn(rng, 64), (v) => v + shift); // mixed, all-positive, all-negative
    const out = await session.run({ x: new web.Tensor("float32", input, [64]) });
    const ref = dynamicQuantizeLinearRef(input);
    assertClose([out[s].data[0] as number], [ref.scale], KERNEL_F32, "scale");
    assert.equal(out[z].data[0], ref.zeroPoint, `zero point for shift ${shift}`);
    // x / scale can land within float32 rounding of a .5 boundary; allow those to differ by one step.
    const mismatches = Array.from(out[q].data as Uint8Array).filter((v, i) => Math.abs(v - ref.q[i]) > 1);
    assert.deepEqual(mismatches, [], `quantized values for shift ${shift}`);
  }
  await session.release();
});

/** Runs y = linear(x) through an emitted int8 layer on onnxruntime-web. */
async function runLinear(
  build: (g: GraphBuilder, x: string) => string,
  x: Float32Array,
  m: number,
  k: number,
) {
  const g = new GraphBuilder("linear");
  const input = g.input("x", DataType.FLOAT, [m, k]);
  const y = build(g, input);
  g.output(y, DataType.FLOAT, [m, "n"]);
  const session = await web.InferenceSession.create(g.encode());
  const out = await session.run({ x: new web.Tensor("float32", x, [m, k]) });
  await session.release();
  return out[y].data as Float32Array;
}

Deno.test("emitInt8Linear() matches int8LinearRef() in every form and weight storage", async () => {
  const rng = new Rng(14);
  const [m, k, n] = [7, 45, 13];
  const x = Float32Array.from(randn(rng, m * k));
  const w = Float32Array.from(randn(rng, n * k, 0.2));
  const bias = Float32Array.from(randn(rng, n, 0.1));
  const ref = int8LinearRef(x, w, bias, m, k, n);
  for (const form of ["DynamicQuantizeMatMul", "MatMulIntegerToFloat", "MatMulInteger"] as const) {
    for (const weightType of ["uint8", "int8"] as const) {
      const y = await runLinear(
        (g, input) => emitInt8Linear(g, input, w, bias, "fc", { form, weightType }),
        x,
        m,
        k,
      );
      assertClose(y, ref, KERNEL_F32, `${form} ${weightType}`);
    }
  }
  // And the reference itself stays near the float result: |error| <= sum_k |x||w| * (1/254 + 1/255) roughly.
  let worst = 0;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let exact = bias[j];
      let mass = 0;
      for (let p = 0; p < k; p++) {
        exact += x[i * k + p] * w[j * k + p];
        mass += Math.abs(x[i * k + p] * w[j * k + p]);
      }
      worst = Math.max(worst, Math.abs(ref[i * n + j] - exact) / mass);
    }
  }
  assert.ok(worst < 0.05, `int8 linear relative error ${worst}`);
});

Deno.test("emitInt8Gather() returns the dequantized rows of the ids", async () => {
  const rng = new Rng(15);
  const [rows, cols] = [11, 6];
  const table = Float32Array.from(randn(rng, rows * cols));
  const ids = [3, 0, 10, 3, 7, 1];
  const g = new GraphBuilder("gather");
  const input = g.input("ids", DataType.INT64, [2, 3]);
  const y = emitInt8Gather(g, table, cols, input, "emb");
  g.output(y, DataType.FLOAT, [2, 3, cols]);
  const session = await web.InferenceSession.create(g.encode());
  const out = await session.run({ ids: new web.Tensor("int64", BigInt64Array.from(ids, BigInt), [2, 3]) });
  await session.release();
  const q = quantizeRows(table, rows, cols);
  const expected = ids.flatMap((r) =>
    Array.from({ length: cols }, (_, c) => Math.fround(q.data[r * cols + c] * q.scales[r]))
  );
  assertClose(out[y].data as Float32Array, expected, EXACT, "dequantized rows");
});
