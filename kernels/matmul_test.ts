import { throws } from "node:assert/strict";
import {
  chooseMatmulKernel,
  matmul,
  matmulExtents,
  type MatmulKernel,
  type MatmulLayout,
  matmulRef,
} from "./matmul.ts";
import { biasGradRef } from "./bias_grad.ts";
import { Rng } from "./random.ts";
import type { Gpu } from "./runtime.ts";
import { readSafetensors, type SafetensorsFile } from "../formats/safetensors.ts";
import { assertClose, dot, f32, finiteDifference, GPU_TEST, randn, testGpu } from "../tests/util.ts";
import { FINITE_DIFF, REDUCTION_F32, REF_F64 } from "../tests/tolerance.ts";

const FIXTURE = new URL("../tests/fixtures/kernels/matmul.safetensors", import.meta.url).pathname;

type Variant = "fallback" | "tiled";

/** One GPU-vs-reference comparison: a layout, whether a bias is added, and the input magnitude. */
interface Case {
  layout: MatmulLayout;
  bias?: boolean;
  /** Inputs drawn from N(0, scale^2); outputs are compared divided by scale^2. @default 1 */
  scale?: number;
  /** The kernel the variant must pick, so every path is proven to have run. */
  kernel: MatmulKernel;
}

/**
 * Runs one case on the GPU against matmulRef on the same float32 inputs. With beta 0 the output is
 * poisoned (and the reference starts from NaN), so a read of `out` or an unwritten element shows;
 * elements outside every output matrix (padding, batch gaps) must keep their initial value.
 */
async function check(gpu: Gpu, variant: Variant, c: Case, rng: Rng, what: string): Promise<void> {
  const { layout, scale = 1 } = c;
  const name = `${what} [${variant}, ${JSON.stringify(layout)}]`;
  const kernel = chooseMatmulKernel(layout, variant, true);
  if (kernel !== c.kernel) throw new Error(`${name}: expected the ${c.kernel} kernel, got ${kernel}`);
  const ext = matmulExtents(layout);
  const a = f32(randn(rng, ext.a, scale));
  const b = f32(randn(rng, ext.b, scale));
  const bias = c.bias ? f32(randn(rng, layout.N, scale * scale)) : undefined;
  const beta = layout.beta ?? 0;
  const before = beta === 0 ? new Float32Array(ext.out).fill(NaN) : f32(randn(rng, ext.out, scale * scale));
  const out = gpu.upload("out", before);
  if (beta === 0) gpu.poison(out);
  const d = matmul(gpu, {
    ...layout,
    a: gpu.upload("a", a),
    b: gpu.upload("b", b),
    out,
    bias: bias && gpu.upload("bias", bias),
  }, variant);
  gpu.run([d]);
  const got = await gpu.readF32(out, ext.out);
  const want = matmulRef(a, b, Float64Array.from(before), { ...layout, bias });
  const covered: number[] = [];
  for (let i = 0; i < want.length; i++) {
    if (Number.isNaN(want[i])) {
      if (!Number.isNaN(got[i])) throw new Error(`${name}: wrote element ${i} outside every output matrix`);
    } else covered.push(i);
  }
  const s2 = scale * scale;
  assertClose(covered.map((i) => got[i] / s2), covered.map((i) => want[i] / s2), REDUCTION_F32, name);
}

/** Flags and shape of one case; ld padding and batch strides with gaps make every offset matter. */
function padded(
  M: number,
  N: number,
  K: number,
  transA: boolean,
  transB: boolean,
  pad: number,
): MatmulLayout {
  const lda = (transA ? M : K) + pad;
  const ldb = (transB ? K : N) + pad;
  const ldc = N + pad;
  const heads = 2;
  // Matrix (outer, inner) starts at outer * s0 + inner * s1, with a gap of `pad` between matrices.
  const strides = (rows: number, ld: number): [number, number] => {
    const size = rows * ld + pad;
    return [heads * size + pad, size];
  };
  return {
    M,
    N,
    K,
    transA,
    transB,
    lda,
    ldb,
    ldc,
    batch: 3 * heads,
    heads,
    strideA: strides(transA ? K : M, lda),
    strideB: strides(transB ? N : K, ldb),
    strideC: strides(M, ldc),
    alpha: 0.75,
  };
}

const TRANSPOSES: [boolean, boolean][] = [[false, false], [false, true], [true, false], [true, true]];

/**
 * bias and beta per transpose pair (FF, FT, TF, TT). Each pipeline compiles for ~0.5-4 s on lavapipe,
 * so FF, FT and TF reuse the flags of the BERT products below (dX += dY·W, y = x·Wᵀ + b, dW += dYᵀ·X)
 * and TT takes bias and beta together.
 */
const FLAGS: { bias: boolean; beta: number }[] = [
  { bias: false, beta: 0.5 },
  { bias: true, beta: 0 },
  { bias: false, beta: 0.5 },
  { bias: true, beta: 0.5 },
];

/**
 * Shapes per kernel, one per transpose pair (null: skipped), each including M, N, K from {1, 5, 7, 33,
 * 45} or the alignment the kernel needs, and at least one shape spanning several workgroups in each
 * direction. "vec4-wide" is "vec4" with a bigger block from the same generator and compiles slowest,
 * so it runs FT and TF only: together they take every load path (A and B, stored plain and
 * transposed), the bias and beta.
 */
const GENERIC: [MatmulKernel, Variant, number, ([number, number, number] | null)[]][] = [
  ["scalar", "fallback", 3, [[1, 5, 7], [45, 33, 1], [7, 1, 45], [70, 66, 9]]],
  ["vec4", "fallback", 4, [[33, 8, 12], [1, 12, 44], [12, 36, 45], [200, 68, 8]]],
  ["vec4-wide", "fallback", 4, [null, [129, 136, 8], [132, 260, 5], null]],
  ["tiled", "tiled", 3, [[70, 5, 33], [1, 130, 7], [45, 70, 17], [7, 33, 45]]],
];

Deno.test({
  name: "matmul() matches matmulRef for every transpose, bias, alpha and beta on padded, offset batches",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(11);
    for (const [kernel, variant, pad, shapes] of GENERIC) {
      for (const [t, [transA, transB]] of TRANSPOSES.entries()) {
        if (!shapes[t]) continue;
        const [M, N, K] = shapes[t];
        const { bias, beta } = FLAGS[t];
        // Offsets place every operand inside a wider buffer (a Q|K|V row); multiples of pad keep vec4 aligned.
        const offsets = { offsetA: 2 * pad, offsetB: 3 * pad, offsetC: pad };
        const layout = { ...padded(M, N, K, transA, transB, pad), beta, ...offsets };
        await check(gpu, variant, { layout, bias, kernel }, rng, "generic");
      }
    }
  },
});

/** BERT linear layer at B=3, T=7: forward, dX (fresh and accumulated) and dW (accumulated). */
function linearCases(BT: number, N: number, K: number, kernel: MatmulKernel): [string, Case][] {
  return [
    ["y = x·Wᵀ + b", { layout: { M: BT, N, K, transB: true }, bias: true, kernel }],
    ["dX = dY·W", { layout: { M: BT, N: K, K: N }, kernel }],
    ["dX += dY·W", { layout: { M: BT, N: K, K: N, beta: 1 }, kernel }],
    ["dW += dYᵀ·X", { layout: { M: N, N: K, K: BT, transA: true, beta: 1 }, kernel }],
  ];
}

Deno.test({
  name: "matmul() computes the linear layer's forward, dX and dW like matmulRef",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(12);
    const cases: [Variant, [string, Case][]][] = [
      ["fallback", linearCases(21, 33, 45, "scalar")],
      ["fallback", linearCases(21, 36, 44, "vec4")],
      ["tiled", linearCases(21, 33, 45, "tiled")],
    ];
    for (const [variant, list] of cases) {
      for (const [what, c] of list) await check(gpu, variant, c, rng, what);
    }
  },
});

/**
 * Attention products per (b, h) straight from the (B, T, H·D) layout: q, k, v, ctx and their
 * gradients are (B, T, C) with C = H·D (head h is columns h·D..h·D+D-1); scores and probabilities
 * are (B·H, T, T).
 */
function attentionCases(B: number, H: number, T: number, D: number, kernel: MatmulKernel): [string, Case][] {
  const C = H * D;
  const heads = { batch: B * H, heads: H };
  const btc = { ld: C, stride: [T * C, D] as [number, number] }; // a (B, T, H·D) tensor
  const btt = { ld: T, stride: [H * T * T, T * T] as [number, number] }; // a (B·H, T, T) tensor
  const scale = 1 / Math.sqrt(D);
  return [
    ["scores = Q·Kᵀ·scale", {
      kernel,
      layout: {
        ...heads,
        M: T,
        N: T,
        K: D,
        transB: true,
        alpha: scale,
        lda: btc.ld,
        strideA: btc.stride,
        ldb: btc.ld,
        strideB: btc.stride,
        ldc: btt.ld,
        strideC: btt.stride,
      },
    }],
    ["ctx = P·V", {
      kernel,
      layout: {
        ...heads,
        M: T,
        N: D,
        K: T,
        lda: btt.ld,
        strideA: btt.stride,
        ldb: btc.ld,
        strideB: btc.stride,
        ldc: btc.ld,
        strideC: btc.stride,
      },
    }],
    ["dP = dCtx·Vᵀ", {
      kernel,
      layout: {
        ...heads,
        M: T,
        N: T,
        K: D,
        transB: true,
        lda: btc.ld,
        strideA: btc.stride,
        ldb: btc.ld,
        strideB: btc.stride,
        ldc: btt.ld,
        strideC: btt.stride,
      },
    }],
    ["dV = Pᵀ·dCtx", {
      kernel,
      layout: {
        ...heads,
        M: T,
        N: D,
        K: T,
        transA: true,
        lda: btt.ld,
        strideA: btt.stride,
        ldb: btc.ld,
        strideB: btc.stride,
        ldc: btc.ld,
        strideC: btc.stride,
      },
    }],
    ["dQ = dS·K·scale", {
      kernel,
      layout: {
        ...heads,
        M: T,
        N: D,
        K: T,
        alpha: scale,
        lda: btt.ld,
        strideA: btt.stride,
        ldb: btc.ld,
        strideB: btc.stride,
        ldc: btc.ld,
        strideC: btc.stride,
      },
    }],
    ["dK = dSᵀ·Q·scale", {
      kernel,
      layout: {
        ...heads,
        M: T,
        N: D,
        K: T,
        transA: true,
        alpha: scale,
        lda: btt.ld,
        strideA: btt.stride,
        ldb: btc.ld,
        strideB: btc.stride,
        ldc: btc.ld,
        strideC: btc.stride,
      },
    }],
  ];
}

Deno.test({
  name: "matmul() computes attention products in the (B, T, H·D) layout like matmulRef",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(13);
    const cases: [Variant, [string, Case][]][] = [
      ["fallback", attentionCases(3, 2, 7, 5, "scalar")],
      ["fallback", attentionCases(3, 2, 8, 4, "vec4")],
      ["tiled", attentionCases(3, 2, 7, 5, "tiled")],
    ];
    for (const [variant, list] of cases) {
      for (const [what, c] of list) await check(gpu, variant, c, rng, what);
    }
  },
});

Deno.test({
  name: "matmul() keeps float32 relative accuracy for tiny and huge magnitudes",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(14);
    for (const scale of [1e-15, 1e15]) {
      await check(
        gpu,
        "fallback",
        { layout: { M: 7, N: 33, K: 45, transB: true }, scale, kernel: "scalar" },
        rng,
        "x",
      );
      await check(
        gpu,
        "fallback",
        { layout: { M: 7, N: 36, K: 44, transB: true }, scale, kernel: "vec4" },
        rng,
        "x",
      );
      await check(
        gpu,
        "tiled",
        { layout: { M: 7, N: 33, K: 45, transB: true }, scale, kernel: "tiled" },
        rng,
        "x",
      );
    }
  },
});

Deno.test("chooseMatmulKernel() picks tiled on real GPUs and the register-blocked fallback on software", () => {
  const aligned: MatmulLayout = { M: 200, N: 256, K: 64 };
  const ragged: MatmulLayout = { M: 200, N: 255, K: 64 };
  const pairs: [MatmulLayout, "auto" | "fallback" | "tiled", boolean, MatmulKernel][] = [
    [aligned, "auto", false, "tiled"],
    [aligned, "auto", true, "vec4-wide"],
    [aligned, "tiled", true, "tiled"],
    [aligned, "fallback", false, "vec4-wide"],
    [{ M: 64, N: 64, K: 64 }, "fallback", true, "vec4"],
    [ragged, "auto", true, "scalar"],
    [{ ...aligned, lda: 66 }, "fallback", true, "scalar"],
    [{ ...aligned, strideB: [2, 0] }, "fallback", true, "scalar"],
    [{ ...aligned, transA: true, M: 202 }, "fallback", true, "scalar"],
    [{ ...aligned, transB: true, K: 63 }, "fallback", true, "scalar"],
    // transA without transB reads whole rows of A and B per k, so K needs no alignment.
    [{ ...aligned, transA: true, K: 63 }, "fallback", true, "vec4-wide"],
  ];
  for (const [layout, variant, isFallback, want] of pairs) {
    const got = chooseMatmulKernel(layout, variant, isFallback);
    if (got !== want) throw new Error(`${JSON.stringify(layout)} ${variant}: expected ${want}, got ${got}`);
  }
});

Deno.test({
  name: "matmul() rejects invalid shapes, strides and buffers with a RangeError naming the op",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const buf = (n: number) => gpu.buffer("x", n * 4);
    const [a, b, out] = [buf(6), buf(12), buf(8)]; // A (2, 3), B (3, 4), out (2, 4)
    const ok = { a, b, out, M: 2, N: 4, K: 3 };
    matmul(gpu, ok); // the valid baseline prepares fine
    const bad: [string, Parameters<typeof matmul>[1]][] = [
      ["M must be an integer", { ...ok, M: 0 }],
      ["K must be an integer", { ...ok, K: 1.5 }],
      ["lda 2 is smaller", { ...ok, lda: 2 }],
      ["ldc 3 is smaller", { ...ok, ldc: 3 }],
      ["batch 3 is not a multiple of heads 2", { ...ok, batch: 3, heads: 2 }],
      ["strideA[1] must be an integer", { ...ok, batch: 2, strideA: [0, -1] }],
      ["beta must be finite", { ...ok, beta: NaN }],
      ["A spans 12", { ...ok, batch: 2, heads: 2 }],
      ["out spans 9", { ...ok, ldc: 5 }],
      ["bias spans 4", { ...ok, bias: gpu.device.createBuffer({ size: 12, usage: GPUBufferUsage.STORAGE }) }],
      ["out must not alias", { ...ok, out: a, M: 1, N: 3, K: 2 }],
      ["out must not alias", { ...ok, bias: out }],
    ];
    for (const [message, args] of bad) {
      throws(
        () => matmul(gpu, args),
        (e: unknown) =>
          e instanceof RangeError && e.message.includes("matmul: ") &&
          e.message.includes(message),
        message,
      );
    }
    throws(() => matmulRef([1, 2], [1], new Float64Array(1), { M: 1, N: 1, K: 2 }), RangeError);
  },
});

/**
 * The backward formulas the model uses, written with matmulRef itself, for out = alpha·op(A)·op(B) + bias:
 * d op(A) = alpha·dC·op(B)ᵀ and d op(B) = alpha·op(A)ᵀ·dC, returned in A's and B's stored layouts.
 */
function matmulBackwardRef(
  a: Float64Array,
  b: Float64Array,
  dC: Float64Array,
  l: { M: number; N: number; K: number; transA: boolean; transB: boolean; alpha: number },
): { dA: Float64Array; dB: Float64Array } {
  const { M, N, K, transA, transB, alpha } = l;
  const dA = new Float64Array(M * K);
  const dB = new Float64Array(K * N);
  if (transA) matmulRef(b, dC, dA, { M: K, N: M, K: N, transA: transB, transB: true, alpha }); // (K, M) = op(B)·dCᵀ
  else matmulRef(dC, b, dA, { M, N: K, K: N, transB: !transB, alpha }); // (M, K) = dC·op(B)ᵀ
  if (transB) matmulRef(dC, a, dB, { M: N, N: K, K: M, transA: true, transB: transA, alpha }); // (N, K) = dCᵀ·op(A)
  else matmulRef(a, dC, dB, { M: K, N, K: M, transA: !transA, alpha }); // (K, N) = op(A)ᵀ·dC
  return { dA, dB };
}

Deno.test("matmulRef() backward formulas for A, B and bias match finite differences", () => {
  const rng = new Rng(15);
  const [M, N, K, alpha] = [3, 5, 4, 0.7];
  for (const [transA, transB] of TRANSPOSES) {
    const l = { M, N, K, transA, transB, alpha };
    const a = randn(rng, M * K);
    const b = randn(rng, K * N);
    const bias = randn(rng, N);
    const w = randn(rng, M * N); // loss = sum(w * out), so dOut = w
    const loss = (x: Float64Array, y: Float64Array, c: Float64Array) =>
      dot(w, matmulRef(x, y, new Float64Array(M * N), { ...l, bias: c }));
    const { dA, dB } = matmulBackwardRef(a, b, w, l);
    const what = `transA=${transA} transB=${transB}`;
    assertClose(dA, finiteDifference((x) => loss(x, b, bias), a), FINITE_DIFF, `dA ${what}`);
    assertClose(dB, finiteDifference((y) => loss(a, y, bias), b), FINITE_DIFF, `dB ${what}`);
    assertClose(
      biasGradRef(w, M, N),
      finiteDifference((c) => loss(a, b, c), bias),
      FINITE_DIFF,
      `dbias ${what}`,
    );
  }
});

function tensor(file: SafetensorsFile, name: string): Float64Array {
  const t = file.tensors.get(name);
  if (!t) throw new Error(`Fixture tensor "${name}" is missing: rerun tests/torch/fixtures_matmul.py`);
  return Float64Array.from(t.data as Float32Array | Float64Array);
}

/** matmul on the GPU (variant) and matmulRef on the same inputs; out starts from `init` when beta != 0. */
async function both(
  gpu: Gpu,
  variant: Variant,
  a: Float64Array,
  b: Float64Array,
  layout: MatmulLayout,
  bias?: Float64Array,
  init?: Float64Array,
): Promise<[Float32Array, Float64Array]> {
  const n = matmulExtents(layout).out;
  const out = init ? gpu.upload("out", f32(init)) : gpu.buffer("out", n * 4);
  if (!init) gpu.poison(out);
  gpu.run([matmul(gpu, {
    ...layout,
    a: gpu.upload("a", f32(a)),
    b: gpu.upload("b", f32(b)),
    out,
    bias: bias && gpu.upload("bias", f32(bias)),
  }, variant)]);
  const ref = matmulRef(a, b, init ? Float64Array.from(init) : new Float64Array(n), { ...layout, bias });
  return [await gpu.readF32(out, n), ref];
}

Deno.test({
  name: "matmul() matches PyTorch F.linear, batched torch.matmul and attention with their autograd gradients",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const fx = await readSafetensors(FIXTURE);
    const t = (name: string) => tensor(fx, name);
    for (const variant of ["fallback", "tiled"] as const) {
      const compare = async (
        what: string,
        result: Promise<[Float32Array, Float64Array]>,
        torch: Float64Array,
      ) => {
        const [gpuOut, refOut] = await result;
        assertClose(refOut, torch, REF_F64, `matmulRef ${what}`);
        assertClose(gpuOut, torch, REDUCTION_F32, `matmul ${what} [${variant}]`);
      };
      // Linear: x (21, 45), w (33, 45); dW accumulates onto a previous gradient g0.
      const [BT, N, K] = [21, 33, 45];
      const [x, w, dy] = [t("linear.x"), t("linear.w"), t("linear.dy")];
      await compare(
        "F.linear y",
        both(gpu, variant, x, w, { M: BT, N, K, transB: true }, t("linear.b")),
        t("linear.y"),
      );
      await compare("linear dx", both(gpu, variant, dy, w, { M: BT, N: K, K: N }), t("linear.dx"));
      const g0 = Float64Array.from(f32(randn(new Rng(16), N * K)));
      const dwPlusG0 = t("linear.dw").map((v, i) => v + g0[i]);
      await compare(
        "linear dw (accumulated)",
        both(gpu, variant, dy, x, { M: N, N: K, K: BT, transA: true, beta: 1 }, undefined, g0),
        dwPlusG0,
      );
      // Batched: a (6, 5, 33) @ b (6, 33, 7).
      const [Z, m, n, k] = [6, 5, 7, 33];
      const [a, b, dc] = [t("batched.a"), t("batched.b"), t("batched.dc")];
      await compare(
        "torch.matmul c",
        both(gpu, variant, a, b, { M: m, N: n, K: k, batch: Z }),
        t("batched.c"),
      );
      await compare(
        "batched da",
        both(gpu, variant, dc, b, { M: m, N: k, K: n, batch: Z, transB: true }),
        t("batched.da"),
      );
      await compare(
        "batched db",
        both(gpu, variant, a, dc, { M: k, N: n, K: m, batch: Z, transA: true }),
        t("batched.db"),
      );
      // Attention at B=3, T=7, H=2, D=5, reusing the layouts of the products above.
      const products = attentionCases(3, 2, 7, 5, "tiled").map(([, c]) => c.layout);
      const [scores, ctx, dP, dV, dQ, dK] = products;
      const [q, kk, v, p] = [t("attention.q"), t("attention.k"), t("attention.v"), t("attention.p")];
      const [dS, dCtx] = [t("attention.dscores"), t("attention.dctx")];
      await compare("attention scores", both(gpu, variant, q, kk, scores), t("attention.scores"));
      await compare("attention ctx", both(gpu, variant, p, v, ctx), t("attention.ctx"));
      await compare("attention dp", both(gpu, variant, dCtx, v, dP), t("attention.dp"));
      await compare("attention dv", both(gpu, variant, p, dCtx, dV), t("attention.dv"));
      await compare("attention dq", both(gpu, variant, dS, kk, dQ), t("attention.dq"));
      await compare("attention dk", both(gpu, variant, dS, q, dK), t("attention.dk"));
    }
  },
});

/** A value on both paths: what the GPU computed (float32) and what the float64 reference computed. */
type Pair = { gpu: Float64Array; ref: Float64Array };
const same = (x: Float64Array): Pair => ({ gpu: x, ref: x });

/** One matmul on the GPU (from the GPU path's values) and matmulRef (from the reference path's). */
async function pairStep(
  gpu: Gpu,
  variant: Variant,
  a: Pair,
  b: Pair,
  layout: MatmulLayout,
  bias?: Float64Array,
  init?: Pair,
): Promise<Pair> {
  const n = init ? init.gpu.length : matmulExtents(layout).out;
  const out = init ? gpu.upload("out", f32(init.gpu)) : gpu.buffer("out", n * 4);
  if (!init) gpu.poison(out);
  gpu.run([matmul(gpu, {
    ...layout,
    a: gpu.upload("a", f32(a.gpu)),
    b: gpu.upload("b", f32(b.gpu)),
    out,
    bias: bias && gpu.upload("bias", f32(bias)),
  }, variant)]);
  const ref = matmulRef(a.ref, b.ref, init ? Float64Array.from(init.ref) : new Float64Array(n), {
    ...layout,
    bias,
  });
  return { gpu: Float64Array.from(await gpu.readF32(out, n)), ref };
}

Deno.test({
  name:
    "fused Q/K/V: one matmul against [Wq; Wk; Wv], heads read at column offsets, equals three torch linears",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const fx = await readSafetensors(
      new URL("../tests/fixtures/kernels/qkv.safetensors", import.meta.url).pathname,
    );
    const t = (name: string) => tensor(fx, name);
    const [B, T, H, D] = [3, 7, 2, 5];
    const [C, BT, C3] = [H * D, B * T, 3 * H * D];
    const cat = (...xs: Float64Array[]) => {
      const out = new Float64Array(xs.reduce((n, x) => n + x.length, 0));
      xs.reduce((at, x) => (out.set(x, at), at + x.length), 0);
      return out;
    };
    const w = same(cat(t("wq"), t("wk"), t("wv"))); // (3C, C): the arena's adjacent weights
    const bias = cat(t("bq"), t("bk"), t("bv"));
    const [x, p] = [same(t("x")), same(t("p"))];
    const heads = { batch: B * H, heads: H };
    const td = (offset: number) => ({ ld: C3, stride: [T * C3, D] as [number, number], offset });
    const tt = { ld: T, stride: [H * T * T, T * T] as [number, number] };
    const ctxL = { ld: C, stride: [T * C, D] as [number, number] };
    const q = td(0), k = td(C), v = td(2 * C);
    for (const variant of ["fallback", "tiled"] as const) {
      const check = (what: string, r: Pair, torch: Float64Array) => {
        assertClose(r.ref, torch, REF_F64, `matmulRef ${what}`);
        assertClose(r.gpu, torch, REDUCTION_F32, `matmul ${what} [${variant}]`);
      };
      const step = (a: Pair, b: Pair, layout: MatmulLayout, bias?: Float64Array, init?: Pair) =>
        pairStep(gpu, variant, a, b, layout, bias, init);
      const qkv = await step(x, w, { M: BT, N: C3, K: C, transB: true }, bias);
      const scores = await step(qkv, qkv, {
        ...heads,
        M: T,
        N: T,
        K: D,
        transB: true,
        lda: q.ld,
        strideA: q.stride,
        offsetA: q.offset,
        ldb: k.ld,
        strideB: k.stride,
        offsetB: k.offset,
        ldc: tt.ld,
        strideC: tt.stride,
      });
      check("scores = Q·Kᵀ", scores, t("scores"));
      const ctx = await step(p, qkv, {
        ...heads,
        M: T,
        N: D,
        K: T,
        lda: tt.ld,
        strideA: tt.stride,
        ldb: v.ld,
        strideB: v.stride,
        offsetB: v.offset,
        ldc: ctxL.ld,
        strideC: ctxL.stride,
      });
      check("ctx = P·V", ctx, t("ctx"));
      // dQ, dK, dV written side by side into one (BT, 3C) gradient, each product filling its columns.
      const [dS, dCtx] = [same(t("dscores")), same(t("dctx"))];
      const out = (o: { ld: number; stride: [number, number]; offset: number }) => ({
        ldc: o.ld,
        strideC: o.stride,
        offsetC: o.offset,
      });
      const base = { ...heads, M: T, N: D, K: T, lda: tt.ld, strideA: tt.stride };
      let dQKV = same(new Float64Array(BT * C3));
      dQKV = await step(
        dS,
        qkv,
        { ...base, ldb: k.ld, strideB: k.stride, offsetB: k.offset, ...out(q) },
        undefined,
        dQKV,
      );
      dQKV = await step(
        dS,
        qkv,
        { ...base, transA: true, ldb: q.ld, strideB: q.stride, ...out(k) },
        undefined,
        dQKV,
      );
      dQKV = await step(
        p,
        dCtx,
        { ...base, transA: true, ldb: ctxL.ld, strideB: ctxL.stride, ...out(v) },
        undefined,
        dQKV,
      );
      const dW = await step(dQKV, x, { M: C3, N: C, K: BT, transA: true });
      check("dW for all three in one product", dW, cat(t("dwq"), t("dwk"), t("dwv")));
      check("dX summing the three in one product", await step(dQKV, w, { M: BT, N: C, K: C3 }), t("dx"));
      const db = cat(t("dbq"), t("dbk"), t("dbv"));
      assertClose(biasGradRef(dQKV.ref, BT, C3), db, REF_F64, "biasGradRef over the fused columns");
      assertClose(
        biasGradRef(dQKV.gpu, BT, C3),
        db,
        REDUCTION_F32,
        `bias grads from the GPU's dQKV [${variant}]`,
      );
    }
  },
});
