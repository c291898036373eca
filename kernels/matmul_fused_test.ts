/**
 * What is fused into matmul: the GELU in the epilogue, "gelu" (the first FFN linear: pre = x·Wᵀ + b
 * saved, out = gelu(pre)) and "geluGrad" (the FFN's dgrad: out = (dY·W) ⊙ gelu'(pre)); and the bias
 * gradient in the weight gradient (rowSum: db (+)= colsum(dY) while dW (+)= dYᵀ·X), on every kernel.
 */
import { throws } from "node:assert/strict";
import {
  chooseMatmulKernel,
  matmul,
  type MatmulActivation,
  matmulExtents,
  type MatmulKernel,
  type MatmulLayout,
  matmulRef,
} from "./matmul.ts";
import { geluBackward, geluForward, geluRef } from "./gelu.ts";
import { biasGrad } from "./bias_grad.ts";
import { Rng } from "./random.ts";
import type { Gpu } from "./runtime.ts";
import {
  assertClose,
  dot,
  f32,
  finiteDifference,
  fixtureTensors,
  GPU_TEST,
  randn,
  testGpu,
} from "../tests/util.ts";
import { FINITE_DIFF, KERNEL_F32, REDUCTION_F32, REF_F64 } from "../tests/tolerance.ts";

const FIXTURE = new URL("../tests/fixtures/kernels/fused.safetensors", import.meta.url).pathname;
const SCRIPT = "/usr/bin/python3 tests/torch/fixtures_fused.py";

type Variant = "fallback" | "tiled";

/** Runs a fused matmul; returns out and, for "gelu", the pre-activation written to aux. */
async function gpuFused(
  gpu: Gpu,
  variant: Variant,
  layout: MatmulLayout,
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  o: { bias?: ArrayLike<number>; init?: ArrayLike<number>; pre?: ArrayLike<number> },
): Promise<{ out: Float32Array; aux: Float32Array }> {
  const n = matmulExtents(layout).out;
  const out = o.init ? gpu.upload("out", f32(o.init)) : gpu.buffer("out", n * 4);
  if (!o.init) gpu.poison(out);
  const aux = o.pre ? gpu.upload("aux", f32(o.pre)) : gpu.buffer("aux", n * 4);
  if (!o.pre) gpu.poison(aux);
  gpu.run([matmul(gpu, {
    ...layout,
    a: gpu.upload("a", f32(a)),
    b: gpu.upload("b", f32(b)),
    bias: o.bias && gpu.upload("bias", f32(o.bias)),
    aux,
    out,
  }, variant)]);
  return { out: await gpu.readF32(out, n), aux: await gpu.readF32(aux, n) };
}

/** (M, N, K) per kernel: ragged for "scalar", aligned for the vec4 kernels, several workgroups each way. */
const SHAPES: [MatmulKernel, Variant, [number, number, number]][] = [
  ["scalar", "fallback", [21, 45, 7]],
  ["vec4", "fallback", [33, 44, 12]],
  ["vec4-wide", "fallback", [130, 132, 8]],
  ["tiled", "tiled", [70, 66, 9]],
];

Deno.test({
  name: "matmul() with activation gelu / geluGrad matches matmulRef on every kernel",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(41);
    for (const [kernel, variant, [M, N, K]] of SHAPES) {
      // Forward: pre = x·Wᵀ + b (W stored (N, K)), out = gelu(pre).
      const fwd: MatmulLayout = { M, N, K, transB: true, activation: "gelu" };
      if (chooseMatmulKernel(fwd, variant, true) !== kernel) {
        throw new Error(`${kernel}: wrong kernel picked`);
      }
      const [x, w, bias] = [f32(randn(rng, M * K)), f32(randn(rng, N * K, 0.5)), f32(randn(rng, N))];
      const got = await gpuFused(gpu, variant, fwd, x, w, { bias });
      const pre = new Float64Array(M * N);
      const want = matmulRef(x, w, new Float64Array(M * N), { ...fwd, bias, aux: pre });
      assertClose(got.aux, pre, REDUCTION_F32, `${kernel} gelu: pre-activation`);
      // gelu of the GPU's own pre-activation, so only the epilogue's rounding is compared.
      assertClose(got.out, geluRef(got.aux), KERNEL_F32, `${kernel} gelu: out vs gelu(pre)`);
      assertClose(got.out, want, REDUCTION_F32, `${kernel} gelu: out`);
      // Backward: out (+)= (dY·W) ⊙ gelu'(pre), dY (M, K), W (K, N); fresh and accumulated (beta 1).
      for (const beta of [0, 1]) {
        const bwd: MatmulLayout = { M, N, K, beta, activation: "geluGrad" };
        const [dy, w2, p] = [f32(randn(rng, M * K)), f32(randn(rng, K * N)), f32(randn(rng, M * N, 3))];
        const init = beta ? f32(randn(rng, M * N)) : undefined;
        const g = await gpuFused(gpu, variant, bwd, dy, w2, { pre: p, init });
        const r = matmulRef(dy, w2, init ? Float64Array.from(init) : new Float64Array(M * N), {
          ...bwd,
          aux: Float64Array.from(p),
        });
        assertClose(g.out, r, REDUCTION_F32, `${kernel} geluGrad beta ${beta}`);
        assertClose(g.aux, p, { abs: 0, rel: 0 }, `${kernel} geluGrad leaves aux unchanged`);
      }
    }
  },
});

Deno.test({
  name: "matmul() with a fused GELU equals matmul then geluForward / geluBackward (the unfused engine)",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(42);
    const [M, N, K] = [64, 128, 32]; // the tiny config's FFN: 2 x 32 tokens, I = 128, C = 32
    for (const variant of ["fallback", "tiled"] as const) {
      const x = gpu.upload("x", f32(randn(rng, M * K)));
      const w = gpu.upload("w", f32(randn(rng, N * K, 0.3)));
      const bias = gpu.upload("bias", f32(randn(rng, N)));
      const [pre, out, pre2, out2] = ["pre", "out", "pre2", "out2"].map((l) => gpu.buffer(l, M * N * 4));
      const lin = { a: x, b: w, bias, M, N, K, transB: true };
      gpu.run([
        matmul(gpu, { ...lin, out: pre }, variant),
        geluForward(gpu, { x: pre, out, n: M * N }),
        matmul(gpu, { ...lin, out: out2, activation: "gelu", aux: pre2 }, variant),
      ]);
      const n = M * N;
      assertClose(await gpu.readF32(pre2, n), await gpu.readF32(pre, n), KERNEL_F32, `pre [${variant}]`);
      assertClose(await gpu.readF32(out2, n), await gpu.readF32(out, n), KERNEL_F32, `gelu [${variant}]`);
      // dgrad: dY (M, C = K) · W2 (K, N), then ⊙ gelu'(pre).
      const dy = gpu.upload("dy", f32(randn(rng, M * K)));
      const w2 = gpu.upload("w2", f32(randn(rng, K * N, 0.3)));
      const [d, d2] = ["d", "d2"].map((l) => gpu.buffer(l, n * 4));
      gpu.run([
        matmul(gpu, { a: dy, b: w2, out: d, M, N, K }, variant),
        geluBackward(gpu, { x: pre, dout: d, dx: d, n }),
        matmul(gpu, { a: dy, b: w2, out: d2, M, N, K, activation: "geluGrad", aux: pre }, variant),
      ]);
      assertClose(await gpu.readF32(d2, n), await gpu.readF32(d, n), KERNEL_F32, `geluGrad [${variant}]`);
    }
  },
});

Deno.test("matmulRef() geluGrad is the finite-difference gradient of gelu(pre)·W2ᵀ w.r.t. pre", () => {
  const rng = new Rng(43);
  const [N, C, I] = [4, 3, 6];
  const pre = randn(rng, N * I, 2);
  const w2 = randn(rng, C * I); // (C, I), nn.Linear weight of the second FFN linear
  const dout = randn(rng, N * C);
  const loss = (p: Float64Array) =>
    dot(dout, matmulRef(geluRef(p), w2, new Float64Array(N * C), { M: N, N: C, K: I, transB: true }));
  const grad = matmulRef(dout, w2, new Float64Array(N * I), {
    M: N,
    N: I,
    K: C,
    activation: "geluGrad",
    aux: pre,
  });
  assertClose(grad, finiteDifference(loss, pre), FINITE_DIFF, "dpre");
});

Deno.test({
  name: "matmul() gelu / geluGrad match PyTorch F.gelu(F.linear) and its autograd gradient",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const t = await fixtureTensors(FIXTURE, SCRIPT);
    const [N, C, I] = [21, 12, 44];
    const [x, w1, b1, w2, dout] = ["x", "w1", "b1", "w2", "dout"].map((k) => t(`gelu.${k}`));
    const fwd: MatmulLayout = { M: N, N: I, K: C, transB: true, activation: "gelu" };
    const bwd: MatmulLayout = { M: N, N: I, K: C, activation: "geluGrad" };
    const pre = new Float64Array(N * I);
    assertClose(
      matmulRef(x, w1, new Float64Array(N * I), { ...fwd, bias: b1, aux: pre }),
      t("gelu.inter"),
      REF_F64,
      "ref inter",
    );
    assertClose(pre, t("gelu.pre"), REF_F64, "ref pre");
    const pre32 = t("gelu.pre_f32");
    const dpre = matmulRef(dout, w2, new Float64Array(N * I), { ...bwd, aux: Float64Array.from(pre32) });
    assertClose(dpre, t("gelu.dpre"), REF_F64, "ref dpre");
    for (const variant of ["fallback", "tiled"] as const) {
      const f = await gpuFused(gpu, variant, fwd, x, w1, { bias: b1 });
      assertClose(f.aux, t("gelu.pre"), REDUCTION_F32, `pre [${variant}]`);
      assertClose(f.out, t("gelu.inter"), REDUCTION_F32, `inter [${variant}]`);
      const g = await gpuFused(gpu, variant, bwd, dout, w2, { pre: pre32 });
      assertClose(g.out, t("gelu.dpre"), REDUCTION_F32, `dpre [${variant}]`);
    }
  },
});

Deno.test({
  name: "matmul() rejects an activation without aux, aux without an activation, and aliased aux",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const [a, b, out, aux] = ["a", "b", "out", "aux"].map((l) => gpu.buffer(l, 64));
    const l = { a, b, out, M: 4, N: 4, K: 4 };
    throws(() => matmul(gpu, { ...l, activation: "gelu" }), /activation "gelu" needs an "aux" buffer/);
    throws(() => matmul(gpu, { ...l, aux }), /"aux" is only used with an activation/);
    throws(() => matmul(gpu, { ...l, activation: "geluGrad", aux: a }), /aux must not alias/);
    throws(
      () => matmul(gpu, { ...l, activation: "gelu", aux: gpu.buffer("small", 16) }),
      /aux spans 16 float32 elements/,
    );
    throws(
      () => matmul(gpu, { ...l, activation: "relu" as MatmulActivation, aux }),
      /activation must be "gelu" or "geluGrad"/,
    );
  },
});

/** dW (+)= dYᵀ·X with db (+)= colsum(dY) per kernel: (rows, out, in), ragged for "scalar". */
const DW_SHAPES: [MatmulKernel, Variant, [number, number, number]][] = [
  ["scalar", "fallback", [21, 33, 45]],
  ["vec4", "fallback", [24, 36, 44]],
  ["vec4-wide", "fallback", [12, 132, 136]],
  ["tiled", "tiled", [70, 66, 33]],
];

Deno.test({
  name: "matmul() rowSum (fused bias gradient) matches matmulRef and biasGrad() on every kernel",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(44);
    for (const [kernel, variant, [rows, out, inp]] of DW_SHAPES) {
      for (const beta of [0, 1]) {
        const layout: MatmulLayout = { M: out, N: inp, K: rows, transA: true, beta };
        if (chooseMatmulKernel(layout, variant, true) !== kernel) {
          throw new Error(`${kernel}: wrong kernel picked`);
        }
        const [dy, x] = [f32(randn(rng, rows * out)), f32(randn(rng, rows * inp))];
        const [dw0, db0] = [f32(randn(rng, out * inp)), f32(randn(rng, out))];
        const [dyb, xb] = [gpu.upload("dy", dy), gpu.upload("x", x)];
        const dw = gpu.upload("dw", dw0);
        const db = gpu.upload("db", db0);
        const db2 = gpu.upload("db2", db0);
        if (!beta) gpu.poison(db);
        gpu.run([
          matmul(gpu, { ...layout, a: dyb, b: xb, out: dw, rowSum: db }, variant),
          biasGrad(gpu, { dy: dyb, dbias: db2, rows, cols: out, accumulate: beta !== 0 }),
        ].flat());
        const wantDb = Float64Array.from(db0);
        const wantDw = matmulRef(dy, x, Float64Array.from(dw0), { ...layout, rowSum: wantDb });
        const what = `${kernel} beta ${beta}`;
        assertClose(await gpu.readF32(dw, out * inp), wantDw, REDUCTION_F32, `${what}: dW`);
        const gotDb = await gpu.readF32(db, out);
        assertClose(gotDb, wantDb, REDUCTION_F32, `${what}: db vs matmulRef`);
        assertClose(gotDb, await gpu.readF32(db2, out), REDUCTION_F32, `${what}: db vs biasGrad()`);
      }
    }
  },
});

Deno.test("matmulRef() rowSum of dYᵀ is the finite-difference gradient of x·Wᵀ + b w.r.t. b", () => {
  const rng = new Rng(45);
  const [rows, out, inp] = [5, 4, 3];
  const [x, w, b, dy] = [
    randn(rng, rows * inp),
    randn(rng, out * inp),
    randn(rng, out),
    randn(rng, rows * out),
  ];
  const loss = (bias: Float64Array) =>
    dot(dy, matmulRef(x, w, new Float64Array(rows * out), { M: rows, N: out, K: inp, transB: true, bias }));
  const db = new Float64Array(out);
  matmulRef(dy, x, new Float64Array(out * inp), { M: out, N: inp, K: rows, transA: true, rowSum: db });
  assertClose(db, finiteDifference(loss, b), FINITE_DIFF, "db");
});

Deno.test({
  name: "matmul() dW with rowSum matches PyTorch F.linear's autograd weight and bias gradients",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const t = await fixtureTensors(
      new URL("../tests/fixtures/kernels/matmul.safetensors", import.meta.url).pathname,
      "/usr/bin/python3 tests/torch/fixtures_matmul.py",
    );
    const [BT, N, K] = [21, 33, 45]; // x (21, 45), w (33, 45)
    const layout: MatmulLayout = { M: N, N: K, K: BT, transA: true };
    const [dy, x] = [t("linear.dy"), t("linear.x")];
    const ref = new Float64Array(N);
    matmulRef(dy, x, new Float64Array(N * K), { ...layout, rowSum: ref });
    assertClose(ref, t("linear.db"), REF_F64, "ref db");
    for (const variant of ["fallback", "tiled"] as const) {
      const [dw, db] = [gpu.buffer("dw", N * K * 4), gpu.buffer("db", N * 4)];
      gpu.poison(dw);
      gpu.poison(db);
      gpu.run([
        matmul(gpu, {
          ...layout,
          a: gpu.upload("dy", f32(dy)),
          b: gpu.upload("x", f32(x)),
          out: dw,
          rowSum: db,
        }, variant),
      ]);
      assertClose(await gpu.readF32(dw, N * K), t("linear.dw"), REDUCTION_F32, `dw [${variant}]`);
      assertClose(await gpu.readF32(db, N), t("linear.db"), REDUCTION_F32, `db [${variant}]`);
    }
  },
});

Deno.test({
  name: "matmul() rejects rowSum on batches and aliased with an operand",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const [a, b, out, rs] = ["a", "b", "out", "rs"].map((l) => gpu.buffer(l, 256));
    throws(() => matmul(gpu, { a, b, out, M: 2, N: 2, K: 2, batch: 2, rowSum: rs }), /rowSum needs batch 1/);
    throws(() => matmul(gpu, { a, b, out, M: 2, N: 2, K: 2, rowSum: a }), /rowSum must not alias/);
  },
});
