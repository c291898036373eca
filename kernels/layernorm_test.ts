import { throws } from "node:assert/strict";
import {
  layerNormBackwardDx,
  layerNormBackwardRef,
  layerNormForward,
  layerNormRef,
  type LayerNormVariant,
} from "./layernorm.ts";
import { paramGrads } from "./param_grads.ts";
import { Rng } from "./random.ts";
import { dropout, dropoutRef } from "./dropout.ts";
import { BufferView, type Gpu } from "./runtime.ts";
import { readSafetensors, type SafetensorsFile } from "../formats/safetensors.ts";
import {
  assertClose,
  dot,
  f32,
  finiteDifference,
  GPU_TEST,
  on2dGrid,
  randn,
  testGpu,
} from "../tests/util.ts";
import { EXACT, FINITE_DIFF, KERNEL_F32, REDUCTION_F32, REF_F64 } from "../tests/tolerance.ts";

const FIXTURE = new URL("../tests/fixtures/kernels/layernorm.safetensors", import.meta.url).pathname;

/** Both row kernels are tested here: lavapipe picks "fallback" on its own, real GPUs "workgroup". */
const VARIANTS: LayerNormVariant[] = ["fallback", "workgroup"];

// Odd shapes: B·T = 21 rows of C = 45; a single value; rows longer than the workgroup (300 > 128).
const SHAPES: [number, number][] = [[21, 45], [1, 5], [1, 1], [5, 300]];

function fixture(file: SafetensorsFile, name: string): Float32Array | Float64Array {
  const t = file.tensors.get(name);
  if (!t) throw new Error(`Fixture tensor "${name}" is missing: run tests/torch/fixtures_elementwise.py`);
  return t.data as Float32Array | Float64Array;
}

/** Asserts that `fn` throws a RangeError whose message contains `fragment`. */
function assertRangeError(fn: () => unknown, fragment: string): void {
  throws(fn, (e) => e instanceof RangeError && e.message.includes(fragment));
}

/** x + residual in float32, as the kernel adds. */
function add32(a: ArrayLike<number>, b: ArrayLike<number>): Float32Array {
  return Float32Array.from(a, (v, i) => v + b[i]);
}

interface ForwardInputs {
  x: ArrayLike<number>;
  residual?: ArrayLike<number>;
  gamma: ArrayLike<number>;
  beta: ArrayLike<number>;
  rows: number;
  cols: number;
  eps: number;
}

/** Runs the forward with poisoned outputs; returns out, mean, rstd and sum (when fused). */
async function gpuForward(gpu: Gpu, a: ForwardInputs, variant: LayerNormVariant, gridX = 0) {
  const { rows, cols } = a;
  const out = gpu.buffer("out", rows * cols * 4);
  const mean = gpu.buffer("mean", rows * 4);
  const rstd = gpu.buffer("rstd", rows * 4);
  const sum = a.residual ? gpu.buffer("sum", rows * cols * 4) : undefined;
  for (const b of [out, mean, rstd, sum]) if (b) gpu.poison(b);
  const d = layerNormForward(gpu, {
    x: gpu.upload("x", f32(a.x)),
    residual: a.residual ? gpu.upload("residual", f32(a.residual)) : undefined,
    sum,
    gamma: gpu.upload("gamma", f32(a.gamma)),
    beta: gpu.upload("beta", f32(a.beta)),
    out,
    mean,
    rstd,
    rows,
    cols,
    eps: a.eps,
  }, variant);
  gpu.run([gridX ? on2dGrid(d, gridX) : d]);
  return {
    out: await gpu.readF32(out, rows * cols),
    mean: await gpu.readF32(mean, rows),
    rstd: await gpu.readF32(rstd, rows),
    sum: sum ? await gpu.readF32(sum, rows * cols) : new Float32Array(),
  };
}

interface BackwardInputs {
  dout: ArrayLike<number>;
  input: ArrayLike<number>;
  gamma: ArrayLike<number>;
  mean: ArrayLike<number>;
  rstd: ArrayLike<number>;
  rows: number;
  cols: number;
  /** Initial dx: accumulate into it (otherwise dx is poisoned and overwritten). */
  dx0?: ArrayLike<number>;
  /** Initial dgamma and dbeta: paramGrads accumulates into them (otherwise poisoned and overwritten). */
  params0?: [ArrayLike<number>, ArrayLike<number>];
}

/**
 * Runs the backward as the engine does: layerNormBackwardDx for dx (on a 2-D grid when `gridX`), and
 * paramGrads' LayerNorm job for dgamma and dbeta, written into one f32 buffer at scattered element
 * offsets (beta first, then gamma, with gaps) as into the gradient arena. Returns dx, dgamma, dbeta.
 */
async function gpuBackward(gpu: Gpu, a: BackwardInputs, variant: LayerNormVariant, gridX = 0) {
  const { rows, cols } = a;
  const start = (name: string, n: number, init?: ArrayLike<number>) => {
    if (init) return gpu.upload(name, f32(init));
    const b = gpu.buffer(name, n * 4);
    gpu.poison(b);
    return b;
  };
  const dx = start("dx", rows * cols, a.dx0);
  const [betaAt, gammaAt, size] = [3, cols + 8, 2 * cols + 10];
  let params0: Float32Array | undefined;
  if (a.params0) {
    params0 = new Float32Array(size);
    params0.set(f32(a.params0[0]), gammaAt);
    params0.set(f32(a.params0[1]), betaAt);
  }
  const grads = start("grads", size, params0);
  const dout = gpu.upload("dout", f32(a.dout));
  const input = gpu.upload("input", f32(a.input));
  const mean = gpu.upload("mean", f32(a.mean));
  const rstd = gpu.upload("rstd", f32(a.rstd));
  const d = layerNormBackwardDx(gpu, {
    dout,
    input,
    gamma: gpu.upload("gamma", f32(a.gamma)),
    mean,
    rstd,
    dx,
    rows,
    cols,
    accumulateDx: a.dx0 !== undefined,
  }, variant);
  gpu.run([
    gridX ? on2dGrid(d, gridX) : d,
    paramGrads(gpu, {
      rows,
      layerNorm: { dout, input, mean, rstd, cols, gammaAt, betaAt },
      grads,
      accumulate: a.params0 !== undefined,
    }),
  ]);
  const g = await gpu.readF32(grads, size);
  return {
    dx: await gpu.readF32(dx, rows * cols),
    dgamma: g.subarray(gammaAt, gammaAt + cols),
    dbeta: g.subarray(betaAt, betaAt + cols),
  };
}

function randomForward(rng: Rng, rows: number, cols: number, eps: number, residual = false): ForwardInputs {
  return {
    x: f32(randn(rng, rows * cols, 2)),
    residual: residual ? f32(randn(rng, rows * cols, 3)) : undefined,
    gamma: f32(randn(rng, cols).map((v) => 1 + 0.2 * v)),
    beta: f32(randn(rng, cols, 0.2)),
    rows,
    cols,
    eps,
  };
}

function forwardRef(a: ForwardInputs) {
  const s = a.residual ? add32(a.x, a.residual) : a.x;
  return { s, ...layerNormRef(s, a.gamma, a.beta, a.rows, a.cols, a.eps) };
}

Deno.test({
  name: "layerNormForward() matches its CPU reference on odd shapes",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(11);
    for (const variant of VARIANTS) {
      for (const [rows, cols] of SHAPES) {
        const a = randomForward(rng, rows, cols, 1e-12);
        const got = await gpuForward(gpu, a, variant);
        const want = forwardRef(a);
        const label = `layerNormForward ${variant} ${rows}x${cols}`;
        assertClose(got.out, want.out, KERNEL_F32, `${label} out`);
        assertClose(got.mean, want.mean, KERNEL_F32, `${label} mean`);
        // One column has variance 0: rstd = 1/sqrt(eps) = 1e6, compared relatively.
        assertClose(got.rstd, want.rstd, KERNEL_F32, `${label} rstd`);
      }
    }
  },
});

Deno.test({
  name: "layerNormForward() fuses the residual add and writes the float32 sum",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(12);
    for (const variant of VARIANTS) {
      for (const [rows, cols] of SHAPES) {
        const a = randomForward(rng, rows, cols, 1e-5, true);
        const got = await gpuForward(gpu, a, variant);
        const want = forwardRef(a);
        const label = `layerNormForward residual ${variant} ${rows}x${cols}`;
        assertClose(got.sum, want.s, EXACT, `${label} sum`);
        assertClose(got.out, want.out, KERNEL_F32, `${label} out`);
        assertClose(got.rstd, want.rstd, KERNEL_F32, `${label} rstd`);
      }
    }
  },
});

Deno.test({
  name: "layerNormForward() keeps its accuracy with a large mean offset",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(13);
    for (const variant of VARIANTS) {
      // Values ~1e3 + N(0, 1): a one-pass E[x²] - E[x]² in float32 loses ~1e6·6e-8 of a variance of 1.
      const a = randomForward(rng, 5, 768, 1e-12);
      a.x = f32(randn(rng, 5 * 768).map((v) => 1000 + v));
      const got = await gpuForward(gpu, a, variant);
      const want = forwardRef(a);
      assertClose(got.out, want.out, REDUCTION_F32, `layerNormForward offset ${variant} out`);
      assertClose(got.rstd, want.rstd, REDUCTION_F32, `layerNormForward offset ${variant} rstd`);
    }
  },
});

function randomBackward(rng: Rng, rows: number, cols: number): BackwardInputs {
  const input = f32(randn(rng, rows * cols, 2));
  const gamma = f32(randn(rng, cols).map((v) => 1 + 0.2 * v));
  const { mean, rstd } = layerNormRef(input, gamma, new Float64Array(cols), rows, cols, 1e-5);
  return { dout: f32(randn(rng, rows * cols)), input, gamma, mean: f32(mean), rstd: f32(rstd), rows, cols };
}

function backwardRef(a: BackwardInputs) {
  return layerNormBackwardRef(a.dout, a.input, a.gamma, a.mean, a.rstd, a.rows, a.cols);
}

Deno.test({
  name: "layerNormBackwardDx() and paramGrads() match the CPU reference backward, writing and accumulating",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(14);
    // 70 rows: more than paramGrads' 8 row lanes and not a multiple of them (the SHAPES have 1, 5, 21).
    for (const variant of VARIANTS) {
      for (const [rows, cols] of [...SHAPES, [70, 45]]) {
        const a = randomBackward(rng, rows, cols);
        const want = backwardRef(a);
        const label = `layerNorm backward ${variant} ${rows}x${cols}`;
        const fresh = await gpuBackward(gpu, a, variant);
        assertClose(fresh.dx, want.dx, KERNEL_F32, `${label} dx`);
        assertClose(fresh.dgamma, want.dgamma, REDUCTION_F32, `${label} dgamma`);
        assertClose(fresh.dbeta, want.dbeta, REDUCTION_F32, `${label} dbeta`);
        const dx0 = f32(randn(rng, rows * cols));
        const g0 = f32(randn(rng, cols));
        const b0 = f32(randn(rng, cols));
        const acc = await gpuBackward(gpu, { ...a, dx0, params0: [g0, b0] }, variant);
        assertClose(acc.dx, want.dx.map((v, i) => v + dx0[i]), KERNEL_F32, `${label} dx +=`);
        assertClose(acc.dgamma, want.dgamma.map((v, i) => v + g0[i]), REDUCTION_F32, `${label} dgamma +=`);
        assertClose(acc.dbeta, want.dbeta.map((v, i) => v + b0[i]), REDUCTION_F32, `${label} dbeta +=`);
      }
    }
  },
});

Deno.test({
  name: "layerNormForward() and layerNormBackwardDx() index rows on a 2-D grid of workgroups",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(15);
    // "workgroup": one workgroup per row on a 4-wide grid; "fallback": 64 rows per workgroup, 1 wide.
    for (const [variant, gridX] of [["workgroup", 4], ["fallback", 1]] as const) {
      const [rows, cols] = [150, 7];
      const a = randomForward(rng, rows, cols, 1e-5, true);
      const got = await gpuForward(gpu, a, variant, gridX);
      const want = forwardRef(a);
      assertClose(got.out, want.out, KERNEL_F32, `layerNormForward ${variant} 2-D grid out`);
      assertClose(got.sum, want.s, EXACT, `layerNormForward ${variant} 2-D grid sum`);
      const b = randomBackward(rng, rows, cols);
      const bwd = await gpuBackward(gpu, b, variant, gridX);
      assertClose(bwd.dx, backwardRef(b).dx, KERNEL_F32, `layerNormBackwardDx ${variant} 2-D grid dx`);
    }
  },
});

Deno.test({
  name: "layerNormBackwardDx() and paramGrads() over 40,001 rows: dx rows and dgamma/dbeta column sums",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(16);
    // 40,001 rows: each of paramGrads' 8 row lanes sums its 5,000 or 5,001 terms in blocks of 32, then lane
    // 0 adds the 8 partials; dx spans 626 workgroups of the thread-per-row kernel.
    const a = randomBackward(rng, 40_001, 3);
    const got = await gpuBackward(gpu, a, "fallback");
    const want = backwardRef(a);
    assertClose(got.dx, want.dx, KERNEL_F32, "layerNormBackwardDx 40001 rows dx");
    // Sums of 40,001 float32 terms: the absolute error grows with the count. Blocked lanes keep it small:
    // 7.0e-5 measured on a dgamma of -90.1 (relative 7.7e-7); summing each lane's 5,000 terms in one running
    // sum gave 4.25e-4 on a dbeta of -2.26, at the edge of this bound. The order is fixed: runs repeat bit for bit.
    const LONG_SUM = { abs: 2e-4, rel: 1e-4 };
    assertClose(got.dgamma, want.dgamma, LONG_SUM, "paramGrads 40001 rows dgamma");
    assertClose(got.dbeta, want.dbeta, LONG_SUM, "paramGrads 40001 rows dbeta");
  },
});

Deno.test("layerNormBackwardRef() matches finite differences", () => {
  const rng = new Rng(17);
  const [rows, cols, eps] = [3, 7, 1e-5];
  const x = randn(rng, rows * cols, 2);
  const gamma = randn(rng, cols).map((v) => 1 + 0.3 * v);
  const beta = randn(rng, cols);
  const w = randn(rng, rows * cols);
  const { mean, rstd } = layerNormRef(x, gamma, beta, rows, cols, eps);
  const got = layerNormBackwardRef(w, x, gamma, mean, rstd, rows, cols);
  const loss = (xx: Float64Array, g: Float64Array, b: Float64Array) =>
    dot(layerNormRef(xx, g, b, rows, cols, eps).out, w);
  assertClose(got.dx, finiteDifference((v) => loss(v, gamma, beta), x), FINITE_DIFF, "dx");
  assertClose(got.dgamma, finiteDifference((v) => loss(x, v, beta), gamma), FINITE_DIFF, "dgamma");
  assertClose(got.dbeta, finiteDifference((v) => loss(x, gamma, v), beta), FINITE_DIFF, "dbeta");
});

Deno.test({
  name: "layerNormForward(), layerNormBackwardDx() and paramGrads() match PyTorch nn.LayerNorm",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const file = await readSafetensors(FIXTURE);
    for (const [name, rows, cols] of [["res", 21, 45], ["eps", 5, 33]] as const) {
      const t = (k: string) => fixture(file, `${name}.${k}`);
      const a: ForwardInputs = {
        x: t("x"),
        residual: file.tensors.has(`${name}.residual`) ? t("residual") : undefined,
        gamma: t("gamma"),
        beta: t("beta"),
        rows,
        cols,
        eps: t("eps")[0],
      };
      // The float64 reference against torch float64 on the same inputs.
      const ref = forwardRef(a);
      assertClose(ref.out, t("out"), REF_F64, `${name} ref out`);
      assertClose(ref.rstd, t("rstd"), REF_F64, `${name} ref rstd`);
      const b: BackwardInputs = {
        dout: t("dout"),
        input: ref.s,
        gamma: a.gamma,
        mean: ref.mean,
        rstd: ref.rstd,
        rows,
        cols,
      };
      const refB = backwardRef(b);
      assertClose(refB.dx, t("dx"), REF_F64, `${name} ref dx`);
      assertClose(refB.dgamma, t("dgamma"), REF_F64, `${name} ref dgamma`);
      assertClose(refB.dbeta, t("dbeta"), REF_F64, `${name} ref dbeta`);
      // Both GPU variants against torch float64, and against the float32 module itself.
      for (const variant of VARIANTS) {
        const label = `${name} ${variant}`;
        const got = await gpuForward(gpu, a, variant);
        assertClose(got.out, t("out"), KERNEL_F32, `${label} out`);
        assertClose(got.out, t("out_f32"), KERNEL_F32, `${label} out vs torch float32`);
        assertClose(got.mean, t("mean"), KERNEL_F32, `${label} mean`);
        assertClose(got.rstd, t("rstd"), KERNEL_F32, `${label} rstd`);
        const bwd = await gpuBackward(gpu, { ...b, mean: got.mean, rstd: got.rstd }, variant);
        assertClose(bwd.dx, t("dx"), KERNEL_F32, `${label} dx`);
        assertClose(bwd.dgamma, t("dgamma"), REDUCTION_F32, `${label} dgamma`);
        assertClose(bwd.dbeta, t("dbeta"), REDUCTION_F32, `${label} dbeta`);
      }
    }
  },
});

Deno.test({
  name: "layerNormForward(), layerNormBackwardDx() and paramGrads() reject bad shapes and small buffers",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const b = (n: number) => gpu.buffer("b", n * 4);
    const fwd = {
      x: b(6),
      gamma: b(3),
      beta: b(3),
      out: b(6),
      mean: b(2),
      rstd: b(2),
      rows: 2,
      cols: 3,
      eps: 1e-5,
    };
    assertRangeError(
      () => layerNormForward(gpu, { ...fwd, rows: 0 }),
      "rows must be a positive integer, got 0",
    );
    assertRangeError(
      () => layerNormForward(gpu, { ...fwd, rows: 9 }),
      'buffer "x" has 32 bytes but rows 9 x cols 3',
    );
    assertRangeError(() => layerNormForward(gpu, { ...fwd, residual: b(6) }), '"residual" and "sum"');
    assertRangeError(
      () => layerNormForward(gpu, { ...fwd, eps: -1 }),
      "eps must be a finite number >= 0, got -1",
    );
    assertRangeError(
      () => layerNormForward(gpu, { ...fwd, out: fwd.x }),
      '"out" must be a different buffer from "x"',
    );
    const bwd = {
      dout: b(6),
      input: b(6),
      gamma: b(3),
      mean: b(2),
      rstd: b(2),
      dx: b(6),
      rows: 2,
      cols: 3,
    };
    assertRangeError(
      () => layerNormBackwardDx(gpu, { ...bwd, dx: bwd.dout }),
      '"dx" must be a different buffer from "dout"',
    );
    assertRangeError(
      () => layerNormBackwardDx(gpu, { ...bwd, cols: 2.5 }),
      "cols must be a positive integer, got 2.5",
    );
    const ln = { dout: bwd.dout, input: bwd.input, mean: bwd.mean, rstd: bwd.rstd, gammaAt: 0, betaAt: 3 };
    assertRangeError(
      () => paramGrads(gpu, { rows: 2, layerNorm: { ...ln, cols: 2.5 }, grads: b(6) }),
      "layerNorm.cols must be a positive integer, got 2.5",
    );
    assertRangeError(
      () => paramGrads(gpu, { rows: 2, layerNorm: { ...ln, cols: 3 }, grads: b(4) }),
      'buffer "grads" has 16 bytes but dbeta at element 3 (3 values) needs 24',
    );
  },
});

/** layerNormBackwardDx with its dropout on (both variants): returns [dx, dxDrop]. */
async function gpuDxDropout(
  gpu: Gpu,
  a: BackwardInputs,
  variant: LayerNormVariant,
  drop: { p: number; seed: number; stream: number },
): Promise<[Float32Array, Float32Array]> {
  const n = a.rows * a.cols;
  const dx = gpu.buffer("dx", n * 4);
  const dxDrop = gpu.buffer("dxDrop", n * 4);
  gpu.poison(dx);
  gpu.poison(dxDrop);
  const seed = gpu.upload("seed", new Uint32Array([drop.seed, 0, 0, 0]));
  gpu.run([layerNormBackwardDx(gpu, {
    dout: gpu.upload("dout", f32(a.dout)),
    input: gpu.upload("input", f32(a.input)),
    gamma: gpu.upload("gamma", f32(a.gamma)),
    mean: gpu.upload("mean", f32(a.mean)),
    rstd: gpu.upload("rstd", f32(a.rstd)),
    dx,
    rows: a.rows,
    cols: a.cols,
    dropout: { p: drop.p, seed, stream: drop.stream, dxDrop },
  }, variant)]);
  // The unfused pair on the same dx: dropout() as its own dispatch must give the same bits.
  const sep = gpu.buffer("sep", n * 4);
  gpu.run([dropout(gpu, { x: dx, out: sep, n, p: drop.p, seed, stream: drop.stream })]);
  const [got, gotDrop, want] = [
    await gpu.readF32(dx, n),
    await gpu.readF32(dxDrop, n),
    await gpu.readF32(sep, n),
  ];
  assertClose(gotDrop, want, EXACT, `dxDrop equals dropout(dx) bit for bit [${variant}]`);
  return [got, gotDrop];
}

Deno.test({
  name:
    "layerNormBackwardDx() with dropout: dx as the reference and dxDrop = dropout(dx), also vs PyTorch dx",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(29);
    for (const [rows, cols] of SHAPES) {
      const x = randn(rng, rows * cols, 2);
      const gamma = randn(rng, cols).map((v) => 1 + 0.3 * v);
      const { mean, rstd } = layerNormRef(f32(x), gamma, new Float64Array(cols), rows, cols, 1e-5);
      const b: BackwardInputs = {
        dout: randn(rng, rows * cols),
        input: f32(x),
        gamma,
        mean,
        rstd,
        rows,
        cols,
      };
      const ref = layerNormBackwardRef(f32(b.dout), b.input, f32(gamma), f32(mean), f32(rstd), rows, cols).dx;
      for (const variant of VARIANTS) {
        const drop = { p: 0.3, seed: 12345, stream: 7 };
        const [dx, dxDrop] = await gpuDxDropout(gpu, b, variant, drop);
        assertClose(dx, ref, KERNEL_F32, `dx ${rows}x${cols} ${variant}`);
        assertClose(
          dxDrop,
          dropoutRef(ref, drop.seed, drop.stream, drop.p),
          KERNEL_F32,
          `dxDrop ${rows}x${cols}`,
        );
      }
    }
    // torch's LayerNorm dx on the fixture, then the mask: the dropped branch's gradient.
    const file = await readSafetensors(FIXTURE);
    const t = (k: string) => fixture(file, `res.${k}`);
    const [rows, cols] = [21, 45];
    const s = add32(t("x"), t("residual"));
    const r = layerNormRef(s, t("gamma"), t("beta"), rows, cols, t("eps")[0]);
    const b: BackwardInputs = {
      dout: t("dout"),
      input: s,
      gamma: t("gamma"),
      mean: r.mean,
      rstd: r.rstd,
      rows,
      cols,
    };
    for (const variant of VARIANTS) {
      const drop = { p: 0.1, seed: 99, stream: 3 };
      const [dx, dxDrop] = await gpuDxDropout(gpu, b, variant, drop);
      assertClose(dx, t("dx"), KERNEL_F32, `torch dx ${variant}`);
      assertClose(
        dxDrop,
        dropoutRef(t("dx"), drop.seed, drop.stream, drop.p),
        KERNEL_F32,
        `torch dx dropped ${variant}`,
      );
    }
    const one = gpu.buffer("one", 4 * 4);
    assertRangeError(
      () =>
        layerNormBackwardDx(gpu, {
          dout: one,
          input: one,
          gamma: one,
          mean: one,
          rstd: one,
          dx: gpu.buffer("dx", 16),
          rows: 1,
          cols: 4,
          accumulateDx: true,
          dropout: { p: 0.1, seed: one, stream: 0, dxDrop: gpu.buffer("dd", 16) },
        }),
      "dropout needs accumulateDx off",
    );
  },
});

Deno.test({
  name:
    "layerNormForward() with dropout equals dropout() then the residual forward, bit for bit, and the reference",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(31);
    const drop = { p: 0.25, seed: 4242, stream: 10 };
    for (const [rows, cols] of SHAPES) {
      const n = rows * cols;
      const [x, residual] = [f32(randn(rng, n, 2)), f32(randn(rng, n))];
      // gamma and beta as views of one arena-like buffer, beta first and not adjacent
      const gamma = f32(randn(rng, cols).map((v) => 1 + 0.3 * v));
      const beta = f32(randn(rng, cols));
      const gammaAt = Math.ceil(cols / 64) * 64 + 64;
      const host = new Float32Array(gammaAt + Math.ceil(cols / 64) * 64);
      host.set(beta, 0);
      host.set(gamma, gammaAt);
      const arena = gpu.upload("arena", host);
      const gv = new BufferView(arena, gammaAt * 4, cols * 4, "gamma");
      const bv = new BufferView(arena, 0, cols * 4, "beta");
      const seed = gpu.upload("seed", new Uint32Array([drop.seed, 0, 0, 0]));
      for (const variant of VARIANTS) {
        const outs = (label: string) =>
          ["sum", "out", "mean", "rstd"].map((k) => {
            const b = gpu.buffer(`${label}.${k}`, (k === "mean" || k === "rstd" ? rows : n) * 4);
            gpu.poison(b);
            return b;
          });
        const [sum, out, mean, rstd] = outs("fused");
        const [xb, rb] = [gpu.upload("x", x), gpu.upload("residual", residual)];
        gpu.run([layerNormForward(gpu, {
          x: xb,
          residual: rb,
          sum,
          gamma: gv,
          beta: bv,
          out,
          mean,
          rstd,
          rows,
          cols,
          eps: 1e-5,
          dropout: { ...drop, seed },
        }, variant)]);
        const [sum2, out2, mean2, rstd2] = outs("pair");
        const dropped = gpu.buffer("dropped", n * 4);
        gpu.run([
          dropout(gpu, { x: xb, out: dropped, n, p: drop.p, seed, stream: drop.stream }),
          layerNormForward(gpu, {
            x: dropped,
            residual: rb,
            sum: sum2,
            gamma: gv,
            beta: bv,
            out: out2,
            mean: mean2,
            rstd: rstd2,
            rows,
            cols,
            eps: 1e-5,
          }, variant),
        ]);
        const what = `${rows}x${cols} ${variant}`;
        for (
          const [a, b, k] of [[sum, sum2, n], [out, out2, n], [mean, mean2, rows], [
            rstd,
            rstd2,
            rows,
          ]] as const
        ) {
          assertClose(await gpu.readF32(a, k), await gpu.readF32(b, k), EXACT, `fused vs pair ${what}`);
        }
        const s = add32(f32(dropoutRef(x, drop.seed, drop.stream, drop.p)), residual);
        const ref = layerNormRef(s, gamma, beta, rows, cols, 1e-5);
        assertClose(await gpu.readF32(out, n), ref.out, KERNEL_F32, `out vs reference ${what}`);
      }
    }
    const one = gpu.buffer("one", 16);
    assertRangeError(
      () =>
        layerNormForward(gpu, {
          x: one,
          residual: gpu.buffer("r", 16),
          sum: gpu.buffer("s", 16),
          gamma: gpu.buffer("g", 16),
          beta: gpu.buffer("b", 16),
          out: gpu.buffer("o", 16),
          mean: gpu.buffer("m", 4),
          rstd: gpu.buffer("v", 4),
          rows: 1,
          cols: 4,
          eps: 1e-5,
          dropout: { ...drop, seed: gpu.buffer("seed", 16) },
        }),
      "views of one buffer",
    );
  },
});
