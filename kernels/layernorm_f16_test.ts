/**
 * LayerNorm with float16 activations (dtype "f16"): GPU vs the float64 reference on the f16-rounded
 * inputs, for every path train/model.ts takes (plain, residual, residual + dropout; dx with and without
 * its dropout) in both row kernels, at engine-like widths and row counts that are not a multiple of
 * the workgroup.
 */
import { throws } from "node:assert/strict";
import {
  layerNormBackwardDx,
  layerNormBackwardRef,
  layerNormForward,
  layerNormRef,
  type LayerNormVariant,
} from "./layernorm.ts";
import { paramGrads } from "./param_grads.ts";
import { dropoutMaskRef, dropoutScale } from "./dropout.ts";
import { Rng } from "./random.ts";
import { BufferView, Gpu, roundF16 } from "./runtime.ts";
import { assertClose, f32, GPU_TEST, randn, testGpu } from "../tests/util.ts";
import { F16_ONE_ULP, F16_STORE, REDUCTION_F32 } from "../tests/tolerance.ts";
import { uploadF16 } from "../tests/f16.ts";

const VARIANTS: LayerNormVariant[] = ["fallback", "workgroup"];
// rows x cols: hidden sizes 32..768; 70 and 37 rows are not multiples of the 64-row fallback workgroup.
const SHAPES: [number, number][] = [[70, 32], [21, 45], [5, 300], [37, 768]];

/** A poisoned float16 buffer of `n` values. */
function out16(gpu: Gpu, label: string, n: number): GPUBuffer {
  const b = gpu.buffer(label, n * 2);
  gpu.poison(b);
  return b;
}

/** A poisoned float32 buffer of `n` values. */
function out32(gpu: Gpu, label: string, n: number): GPUBuffer {
  const b = gpu.buffer(label, n * 4);
  gpu.poison(b);
  return b;
}

/** gamma and beta as views of one arena-like f32 buffer (what the fused dropout path needs). */
function arenaViews(gpu: Gpu, gamma: Float32Array, beta: Float32Array) {
  const cols = gamma.length;
  const gammaAt = Math.ceil(cols / 64) * 64;
  const host = new Float32Array(2 * gammaAt);
  host.set(beta, 0);
  host.set(gamma, gammaAt);
  const arena = gpu.upload("arena", host);
  return {
    gamma: new BufferView(arena, gammaAt * 4, cols * 4, "gamma"),
    beta: new BufferView(arena, 0, cols * 4, "beta"),
  };
}

Deno.test({
  name: "layerNormForward() f16: plain, residual and residual + dropout match the float64 reference",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(61);
    const drop = { p: 0.1, seed: 777, stream: 9 };
    const scale = dropoutScale(drop.p);
    for (const [rows, cols] of SHAPES) {
      const n = rows * cols;
      const x = roundF16(randn(rng, n, 2));
      const residual = roundF16(randn(rng, n));
      const gamma = f32(randn(rng, cols).map((v) => 1 + 0.3 * v));
      const beta = f32(randn(rng, cols, 0.5));
      const views = arenaViews(gpu, gamma, beta);
      const keep = dropoutMaskRef(drop.seed, drop.stream, n, drop.p);
      for (const variant of VARIANTS) {
        for (const mode of ["plain", "residual", "dropout"] as const) {
          const label = `${mode} ${rows}x${cols} ${variant}`;
          const fused = mode !== "plain";
          const [out, sum] = [out16(gpu, "out", n), fused ? out16(gpu, "sum", n) : undefined];
          const [mean, rstd] = [out32(gpu, "mean", rows), out32(gpu, "rstd", rows)];
          gpu.run([layerNormForward(gpu, {
            x: uploadF16(gpu, "x", x),
            residual: fused ? uploadF16(gpu, "residual", residual) : undefined,
            sum,
            gamma: mode === "dropout" ? views.gamma : gpu.upload("gamma", gamma),
            beta: mode === "dropout" ? views.beta : gpu.upload("beta", beta),
            out,
            mean,
            rstd,
            rows,
            cols,
            eps: 1e-12,
            dropout: mode === "dropout"
              ? { ...drop, seed: gpu.upload("seed", new Uint32Array(4).fill(drop.seed)) }
              : undefined,
            dtype: "f16",
          }, variant)]);
          // s as stored: the f64 sum of the f16 inputs (the kept x scaled and rounded first, as a
          // separate f16 dropout would store it), rounded to f16.
          let s: Float64Array = x;
          if (mode === "residual") s = roundF16(x.map((v, i) => v + residual[i]));
          if (mode === "dropout") {
            s = roundF16(x.map((v, i) => (keep[i] ? Math.f16round(v * scale) : 0) + residual[i]));
          }
          const gotSum = sum ? await gpu.readF16(sum, n) : x;
          assertClose(gotSum, s, F16_ONE_ULP, `sum ${label}`);
          // Normalizing what was stored: the statistics describe the f16 sum the backward reads.
          const ref = layerNormRef(gotSum, gamma, beta, rows, cols, 1e-12);
          assertClose(await gpu.readF16(out, n), ref.out, F16_STORE, `out ${label}`);
          assertClose(await gpu.readF32(mean, rows), ref.mean, REDUCTION_F32, `mean ${label}`);
          assertClose(await gpu.readF32(rstd, rows), ref.rstd, REDUCTION_F32, `rstd ${label}`);
        }
      }
    }
  },
});

/** Backward inputs on f16-rounded activations, with the forward's f32 statistics. */
function backwardCase(rng: Rng, rows: number, cols: number) {
  const n = rows * cols;
  const input = roundF16(randn(rng, n, 2).map((v) => v + 0.5));
  const gamma = f32(randn(rng, cols).map((v) => 1 + 0.3 * v));
  const { mean, rstd } = layerNormRef(input, gamma, new Float64Array(cols), rows, cols, 1e-12);
  return { input, dout: roundF16(randn(rng, n)), gamma, mean: f32(mean), rstd: f32(rstd) };
}

Deno.test({
  name: "layerNormBackwardDx() f16: dx with and without dropout (dxDrop), and accumulated, vs the reference",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(67);
    const drop = { p: 0.1, seed: 4321, stream: 17 };
    const scale = dropoutScale(drop.p);
    for (const [rows, cols] of SHAPES) {
      const n = rows * cols;
      const c = backwardCase(rng, rows, cols);
      const ref = layerNormBackwardRef(c.dout, c.input, c.gamma, c.mean, c.rstd, rows, cols).dx;
      const keep = dropoutMaskRef(drop.seed, drop.stream, n, drop.p);
      const dx0 = roundF16(randn(rng, n));
      for (const variant of VARIANTS) {
        for (const mode of ["plain", "dropout", "accumulate"] as const) {
          const label = `${mode} ${rows}x${cols} ${variant}`;
          const dx = mode === "accumulate" ? uploadF16(gpu, "dx", dx0) : out16(gpu, "dx", n);
          const dxDrop = out16(gpu, "dxDrop", n);
          const seed = gpu.upload("seed", new Uint32Array(4).fill(drop.seed));
          gpu.run([layerNormBackwardDx(gpu, {
            dout: uploadF16(gpu, "dout", c.dout),
            input: uploadF16(gpu, "input", c.input),
            gamma: gpu.upload("gamma", c.gamma),
            mean: gpu.upload("mean", c.mean),
            rstd: gpu.upload("rstd", c.rstd),
            dx,
            rows,
            cols,
            accumulateDx: mode === "accumulate",
            dropout: mode === "dropout" ? { ...drop, seed, dxDrop } : undefined,
            dtype: "f16",
          }, variant)]);
          const got = await gpu.readF16(dx, n);
          const want = mode === "accumulate" ? ref.map((v, i) => v + dx0[i]) : ref;
          assertClose(got, want, F16_STORE, `dx ${label}`);
          if (mode === "dropout") {
            // dxDrop = dropout of the stored dx (as a separate f16 dropout would compute it).
            const wantDrop = got.map((v, i) => (keep[i] ? Math.f16round(v * scale) : 0));
            assertClose(await gpu.readF16(dxDrop, n), wantDrop, F16_ONE_ULP, `dxDrop ${label}`);
          }
        }
      }
    }
  },
});

Deno.test({
  name:
    "layerNormBackwardDx() + paramGrads() f16, as the engine runs them: dx in f16, dgamma/dbeta += in f32",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(71);
    const [rows, cols] = [70, 96];
    const n = rows * cols;
    const c = backwardCase(rng, rows, cols);
    const ref = layerNormBackwardRef(c.dout, c.input, c.gamma, c.mean, c.rstd, rows, cols);
    const [g0, b0] = [f32(randn(rng, cols)), f32(randn(rng, cols))];
    const [dout, input] = [uploadF16(gpu, "dout", c.dout), uploadF16(gpu, "input", c.input)];
    const [mean, rstd] = [gpu.upload("mean", c.mean), gpu.upload("rstd", c.rstd)];
    for (const variant of VARIANTS) {
      // One f32 gradient buffer as the arena: dbeta at 0, dgamma after it.
      const grads = gpu.upload("grads", new Float32Array([...b0, ...g0]));
      const dx = out16(gpu, "dx", n);
      gpu.run([
        layerNormBackwardDx(gpu, {
          dout,
          input,
          gamma: gpu.upload("gamma", c.gamma),
          mean,
          rstd,
          dx,
          rows,
          cols,
          dtype: "f16",
        }, variant),
        paramGrads(gpu, {
          rows,
          layerNorm: { dout, input, mean, rstd, cols, gammaAt: cols, betaAt: 0 },
          grads,
          dtype: "f16",
        }),
      ]);
      assertClose(await gpu.readF16(dx, n), ref.dx, F16_STORE, `dx ${variant}`);
      const got = await gpu.readF32(grads, 2 * cols);
      const wantG = ref.dgamma.map((v, i) => v + g0[i]);
      const wantB = ref.dbeta.map((v, i) => v + b0[i]);
      assertClose(got.subarray(cols), wantG, REDUCTION_F32, `dgamma ${variant}`);
      assertClose(got.subarray(0, cols), wantB, REDUCTION_F32, `dbeta ${variant}`);
    }
  },
});

Deno.test({
  name: "layerNorm f16 size checks count 2 bytes per activation and 4 per statistic",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const [rows, cols] = [4, 8]; // 32 values: 64 bytes in f16, 128 in f32
    const b = (bytes: number) => gpu.buffer("b", bytes);
    const args = {
      x: b(64),
      gamma: b(32),
      beta: b(32),
      out: b(64),
      mean: b(16),
      rstd: b(16),
      rows,
      cols,
      eps: 1e-5,
    };
    layerNormForward(gpu, { ...args, dtype: "f16" }); // f16 activations fit in 64 bytes
    throws(
      () => layerNormForward(gpu, args),
      (e) =>
        e instanceof RangeError &&
        e.message.includes('buffer "x" has 64 bytes but rows 4 x cols 8 needs 128'),
    );
    throws(
      () => layerNormForward(gpu, { ...args, gamma: b(16), dtype: "f16" }),
      (e) => e instanceof RangeError && e.message.includes('buffer "gamma" has 16 bytes but cols 8 needs 32'),
    );
    const dxArgs = {
      dout: b(64),
      input: b(64),
      gamma: b(32),
      mean: b(16),
      rstd: b(16),
      dx: b(48),
      rows,
      cols,
    };
    throws(
      () => layerNormBackwardDx(gpu, { ...dxArgs, dtype: "f16" }),
      (e) =>
        e instanceof RangeError &&
        e.message.includes('buffer "dx" has 48 bytes but rows 4 x cols 8 needs 64'),
    );
  },
});

Deno.test({
  name: "layerNorm f16 kernels refuse a device without shader-f16, naming the kernel",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await Gpu.create({ f16: false });
    try {
      const b = gpu.buffer("b", 64);
      const shape = { rows: 2, cols: 8 };
      const fails = (fn: () => unknown, what: string) =>
        throws(fn, (e) => e instanceof Error && e.message.includes(`${what}: float16 needs`));
      fails(
        () =>
          layerNormForward(gpu, {
            ...shape,
            x: b,
            gamma: b,
            beta: b,
            out: gpu.buffer("o", 64),
            mean: gpu.buffer("m", 16),
            rstd: gpu.buffer("r", 16),
            eps: 1e-5,
            dtype: "f16",
          }),
        "layerNormForward()",
      );
      const dx = { dout: b, input: b, gamma: b, mean: b, rstd: b, dx: gpu.buffer("dx", 64), ...shape };
      fails(() => layerNormBackwardDx(gpu, { ...dx, dtype: "f16" }), "layerNormBackwardDx()");
    } finally {
      gpu.device.destroy();
    }
  },
});
