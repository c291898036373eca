import { throws } from "node:assert/strict";
import { layerNormParamGradsRef, paramGrads } from "./param_grads.ts";
import { biasGradRef } from "./bias_grad.ts";
import { layerNormBackwardRef, layerNormRef } from "./layernorm.ts";
import { Rng } from "./random.ts";
import type { Gpu } from "./runtime.ts";
import { readSafetensors } from "../formats/safetensors.ts";
import { assertClose, dot, f32, finiteDifference, GPU_TEST, randn, testGpu } from "../tests/util.ts";
import { FINITE_DIFF, REDUCTION_F32, REF_F64 } from "../tests/tolerance.ts";

const fixtures = new URL("../tests/fixtures/kernels/", import.meta.url).pathname;

interface Inputs {
  rows: number;
  ln?: { dout: Float32Array; input: Float32Array; cols: number };
  biases: { dy: Float32Array; cols: number }[];
}

/** LayerNorm statistics of `input` (what the forward saved), float32 as the GPU holds them. */
function stats(input: ArrayLike<number>, rows: number, cols: number) {
  const r = layerNormRef(input, new Float64Array(cols).fill(1), new Float64Array(cols), rows, cols, 1e-5);
  return { mean: f32(r.mean), rstd: f32(r.rstd) };
}

/**
 * Runs paramGrads with the results placed at scattered offsets of one grads buffer that starts from
 * `init`; returns the buffer read back, the float64 reference of the same, and each job's range.
 */
async function run(gpu: Gpu, x: Inputs, accumulate: boolean, rng: Rng) {
  const lnCols = x.ln?.cols ?? 0;
  // dbeta, gap, dgamma, gap, bias B, gap, bias A: offsets that are neither ordered nor aligned.
  const betaAt = 3;
  const gammaAt = betaAt + lnCols + 5;
  const bAt = gammaAt + lnCols + 2;
  const aAt = bAt + (x.biases[1]?.cols ?? 0) + 1;
  const size = aAt + (x.biases[0]?.cols ?? 0) + 4;
  const init = f32(randn(rng, size));
  const grads = gpu.upload("grads", init);
  const st = x.ln && stats(x.ln.input, x.rows, lnCols);
  gpu.run([paramGrads(gpu, {
    rows: x.rows,
    layerNorm: x.ln && {
      dout: gpu.upload("dout", x.ln.dout),
      input: gpu.upload("input", x.ln.input),
      mean: gpu.upload("mean", st!.mean),
      rstd: gpu.upload("rstd", st!.rstd),
      cols: lnCols,
      gammaAt,
      betaAt,
    },
    biases: x.biases.map((b, i) => ({
      dy: gpu.upload(`dy${i}`, b.dy),
      cols: b.cols,
      at: i === 0 ? aAt : bAt,
    })),
    grads,
    accumulate,
  })]);
  const want = Float64Array.from(init);
  const put = (at: number, v: Float64Array) =>
    v.forEach((y, i) => (want[at + i] = (accumulate ? want[at + i] : 0) + y));
  if (x.ln) {
    const [dg, db] = layerNormParamGradsRef(x.ln.dout, x.ln.input, st!.mean, st!.rstd, x.rows, lnCols);
    put(gammaAt, dg);
    put(betaAt, db);
  }
  x.biases.forEach((b, i) => put(i === 0 ? aAt : bAt, biasGradRef(b.dy, x.rows, b.cols)));
  return { got: await gpu.readF32(grads, size), want };
}

// (rows, LayerNorm cols, bias cols...): single rows and columns, more rows than row lanes, jobs that
// straddle workgroups of 32 columns, and each job alone.
const CASES: [number, number, number[]][] = [
  [21, 33, [7, 45]],
  [1, 1, [1, 1]],
  [300, 100, [96, 300]],
  [70, 5, []],
  [70, 0, [5]],
  [9, 0, [40, 3]],
  [9, 12, [17]],
];

Deno.test({
  name: "paramGrads() matches the float64 column sums, overwriting or accumulating, touching nothing else",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(41);
    for (const [rows, lnCols, biasCols] of CASES) {
      const x: Inputs = {
        rows,
        ln: lnCols
          ? { dout: f32(randn(rng, rows * lnCols)), input: f32(randn(rng, rows * lnCols, 3)), cols: lnCols }
          : undefined,
        biases: biasCols.map((cols) => ({ dy: f32(randn(rng, rows * cols)), cols })),
      };
      for (const accumulate of [false, true]) {
        const { got, want } = await run(gpu, x, accumulate, rng);
        assertClose(
          got,
          want,
          REDUCTION_F32,
          `rows ${rows}, ln ${lnCols}, biases ${biasCols}, accumulate ${accumulate}`,
        );
      }
    }
  },
});

Deno.test("layerNormParamGradsRef() equals layerNormBackwardRef's dgamma/dbeta and finite differences", () => {
  const rng = new Rng(43);
  const [rows, cols, eps] = [4, 6, 1e-5];
  const x = randn(rng, rows * cols, 2);
  const gamma = randn(rng, cols).map((v) => 1 + 0.3 * v);
  const beta = randn(rng, cols);
  const w = randn(rng, rows * cols);
  const { mean, rstd } = layerNormRef(x, gamma, beta, rows, cols, eps);
  const [dg, db] = layerNormParamGradsRef(w, x, mean, rstd, rows, cols);
  const full = layerNormBackwardRef(w, x, gamma, mean, rstd, rows, cols);
  assertClose(dg, full.dgamma, REF_F64, "dgamma vs layerNormBackwardRef");
  assertClose(db, full.dbeta, REF_F64, "dbeta vs layerNormBackwardRef");
  const loss = (g: Float64Array, b: Float64Array) => dot(layerNormRef(x, g, b, rows, cols, eps).out, w);
  assertClose(dg, finiteDifference((v) => loss(v, beta), gamma), FINITE_DIFF, "dgamma");
  assertClose(db, finiteDifference((v) => loss(gamma, v), beta), FINITE_DIFF, "dbeta");
});

Deno.test({
  name: "paramGrads() matches PyTorch nn.LayerNorm dgamma/dbeta and the bias gradient of autograd",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const ln = await readSafetensors(`${fixtures}layernorm.safetensors`);
    const t = (name: string) => ln.tensors.get(name)!.data as Float32Array | Float64Array;
    for (const [name, rows, cols] of [["res", 21, 45], ["eps", 5, 33]] as const) {
      const x = t(`${name}.x`);
      const input = ln.tensors.has(`${name}.residual`)
        ? f32(Float64Array.from(x, (v, i) => Math.fround(v + t(`${name}.residual`)[i])))
        : f32(x);
      const r = layerNormRef(input, t(`${name}.gamma`), t(`${name}.beta`), rows, cols, t(`${name}.eps`)[0]);
      const grads = gpu.buffer("grads", 2 * cols * 4);
      gpu.run([paramGrads(gpu, {
        rows,
        layerNorm: {
          dout: gpu.upload("dout", f32(t(`${name}.dout`))),
          input: gpu.upload("input", input),
          mean: gpu.upload("mean", f32(r.mean)),
          rstd: gpu.upload("rstd", f32(r.rstd)),
          cols,
          gammaAt: 0,
          betaAt: cols,
        },
        grads,
        accumulate: false,
      })]);
      const got = await gpu.readF32(grads, 2 * cols);
      assertClose(got.subarray(0, cols), t(`${name}.dgamma`), REDUCTION_F32, `${name} dgamma`);
      assertClose(got.subarray(cols), t(`${name}.dbeta`), REDUCTION_F32, `${name} dbeta`);
    }
    const bg = await readSafetensors(`${fixtures}bias_grad.safetensors`);
    const dy = bg.tensors.get("dy")!;
    const [rows, cols] = dy.shape;
    const grads = gpu.buffer("grads", cols * 4);
    gpu.poison(grads);
    gpu.run([paramGrads(gpu, {
      rows,
      biases: [{ dy: gpu.upload("dy", f32(dy.data as Float32Array)), cols, at: 0 }],
      grads,
      accumulate: false,
    })]);
    assertClose(
      await gpu.readF32(grads, cols),
      bg.tensors.get("dbias")!.data as Float64Array,
      REDUCTION_F32,
      "dbias",
    );
  },
});

Deno.test({
  name: "paramGrads() rejects bad arguments with a RangeError naming the op",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const dy = gpu.buffer("dy", 6 * 4);
    const grads = gpu.buffer("grads", 4 * 4);
    throws(() => paramGrads(gpu, { rows: 2, grads }), /paramGrads\(\): nothing to compute/);
    throws(() => paramGrads(gpu, { rows: 2, biases: [{ dy, cols: 3, at: 2 }], grads }), /buffer "grads"/);
    throws(
      () => paramGrads(gpu, { rows: 4, biases: [{ dy, cols: 3, at: 0 }], grads }),
      /buffer "biases\[0\]\.dy"/,
    );
    throws(() => paramGrads(gpu, { rows: 2, biases: [{ dy, cols: 3, at: 0 }], grads: dy }), /must not alias/);
    const three = [0, 1, 2].map(() => ({ dy, cols: 1, at: 0 }));
    throws(() => paramGrads(gpu, { rows: 2, biases: three, grads }), /at most 2 biases/);
  },
});
