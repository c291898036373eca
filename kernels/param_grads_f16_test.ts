/**
 * paramGrads with float16 activations (dtype "f16"): dout, input and the biases' dy are f16, mean, rstd
 * and the gradient arena f32. The column sums run in f32 and are stored in f32, so the comparison with
 * the float64 reference on the f16-rounded inputs has only float32 summation error (REDUCTION_F32).
 */
import { throws } from "node:assert/strict";
import { layerNormParamGradsRef, paramGrads } from "./param_grads.ts";
import { biasGradRef } from "./bias_grad.ts";
import { layerNormRef } from "./layernorm.ts";
import { Rng } from "./random.ts";
import { Gpu, roundF16 } from "./runtime.ts";
import { assertClose, f32, GPU_TEST, randn, testGpu } from "../tests/util.ts";
import { REDUCTION_F32 } from "../tests/tolerance.ts";
import { uploadF16 } from "../tests/f16.ts";

// (rows, LayerNorm cols, bias cols): the engine's LayerNorm job at hidden sizes 32..768 over row counts
// that are not a multiple of the 8 row lanes, odd column counts (odd f16 byte sizes), and bias jobs.
const CASES: [number, number, number[]][] = [
  [70, 768, []],
  [37, 32, []],
  [21, 45, [7, 33]],
  [9, 0, [31]],
];

Deno.test({
  name:
    "paramGrads() f16: f32 column sums of f16 activations, overwriting or accumulating into the f32 arena",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(83);
    for (const [rows, lnCols, biasCols] of CASES) {
      const input = roundF16(randn(rng, rows * lnCols, 3).map((v) => v + 1));
      const dout = roundF16(randn(rng, rows * lnCols));
      const dys = biasCols.map((cols) => roundF16(randn(rng, rows * cols)));
      const r = layerNormRef(
        input,
        new Float64Array(lnCols).fill(1),
        new Float64Array(lnCols),
        rows,
        lnCols,
        1e-12,
      );
      const [mean, rstd] = [f32(r.mean), f32(r.rstd)];
      // beta first, then gamma, then the biases, with gaps, as scattered as arena offsets can be.
      const betaAt = 3;
      const gammaAt = betaAt + lnCols + 5;
      const ats: number[] = [];
      let end = gammaAt + lnCols + 2;
      for (const cols of biasCols) {
        ats.push(end);
        end += cols + 1;
      }
      for (const accumulate of [false, true]) {
        const init = f32(randn(rng, end + 4));
        const grads = gpu.upload("grads", init);
        gpu.run([paramGrads(gpu, {
          rows,
          layerNorm: lnCols
            ? {
              dout: uploadF16(gpu, "dout", dout),
              input: uploadF16(gpu, "input", input),
              mean: gpu.upload("mean", mean),
              rstd: gpu.upload("rstd", rstd),
              cols: lnCols,
              gammaAt,
              betaAt,
            }
            : undefined,
          biases: biasCols.map((cols, i) => ({ dy: uploadF16(gpu, `dy${i}`, dys[i]), cols, at: ats[i] })),
          grads,
          accumulate,
          dtype: "f16",
        })]);
        const want = Float64Array.from(init);
        const put = (at: number, v: Float64Array) =>
          v.forEach((y, i) => (want[at + i] = (accumulate ? want[at + i] : 0) + y));
        if (lnCols) {
          const [dg, db] = layerNormParamGradsRef(dout, input, mean, rstd, rows, lnCols);
          put(gammaAt, dg);
          put(betaAt, db);
        }
        biasCols.forEach((cols, i) => put(ats[i], biasGradRef(dys[i], rows, cols)));
        const label = `rows ${rows}, ln ${lnCols}, biases ${biasCols}, accumulate ${accumulate}`;
        assertClose(await gpu.readF32(grads, init.length), want, REDUCTION_F32, label);
      }
    }
  },
});

Deno.test({
  name: "paramGrads() f16 size checks count 2 bytes per activation; grads stay 4 bytes per value",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const b = (bytes: number) => gpu.buffer("b", bytes);
    // rows 4 x cols 8: 64 bytes of f16 activations (128 in f32); mean/rstd 16 bytes; grads 2·8 f32 = 64.
    const ln = { dout: b(64), input: b(64), mean: b(16), rstd: b(16), cols: 8, gammaAt: 0, betaAt: 8 };
    paramGrads(gpu, { rows: 4, layerNorm: ln, grads: b(64), dtype: "f16" });
    throws(
      () => paramGrads(gpu, { rows: 4, layerNorm: ln, grads: b(64) }),
      /buffer "layerNorm.dout" has 64 bytes/,
    );
    throws(
      () => paramGrads(gpu, { rows: 4, layerNorm: ln, grads: b(48), dtype: "f16" }),
      /buffer "grads" has 48 bytes/,
    );
  },
});

Deno.test({
  name: "paramGrads() f16 refuses a device without shader-f16, naming the kernel",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await Gpu.create({ f16: false });
    try {
      const dy = gpu.buffer("dy", 64);
      throws(
        () =>
          paramGrads(gpu, {
            rows: 2,
            biases: [{ dy, cols: 8, at: 0 }],
            grads: gpu.buffer("g", 64),
            dtype: "f16",
          }),
        (e) => e instanceof Error && e.message.includes("paramGrads(): float16 needs"),
      );
    } finally {
      gpu.device.destroy();
    }
  },
});
