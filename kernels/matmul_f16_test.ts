/**
 * matmul with f16 storage (mixed precision): every operand-dtype combination the engine uses, on every
 * kernel, against the float64 matmulRef on the same f16-rounded inputs. Outputs stored as f16 get
 * MATMUL_F16 (one f16 rounding); outputs stored as f32 keep REDUCTION_F32, so an output or an
 * accumulator wrongly rounded to f16 fails.
 */
import { throws } from "node:assert/strict";
import {
  chooseMatmulKernel,
  matmul,
  type MatmulDtypes,
  matmulExtents,
  type MatmulKernel,
  type MatmulLayout,
  matmulRef,
  type MatmulShader,
  matmulWgsl,
} from "./matmul.ts";
import { Rng } from "./random.ts";
import { uploadF16 } from "../tests/f16.ts";
import { type Dtype, type Gpu, roundF16 } from "./runtime.ts";
import { assertClose, GPU_TEST, randn, testGpu } from "../tests/util.ts";
import { EXACT, MATMUL_F16, REDUCTION_F32 } from "../tests/tolerance.ts";

type Variant = "fallback" | "tiled";

/** `n` values from N(0, scale^2), rounded to what `dtype` stores (so the GPU and the reference agree). */
function values(rng: Rng, n: number, dtype: Dtype, scale = 1): Float64Array {
  const x = randn(rng, n, scale);
  return dtype === "f16" ? roundF16(x) : Float64Array.from(x, Math.fround);
}

/** A buffer holding `x` stored as `dtype`. */
function upload(gpu: Gpu, label: string, x: ArrayLike<number>, dtype: Dtype): GPUBuffer {
  return dtype === "f32" ? gpu.upload(label, Float32Array.from(x)) : uploadF16(gpu, label, x);
}

async function read(gpu: Gpu, buffer: GPUBuffer, n: number, dtype: Dtype): Promise<Float32Array> {
  return dtype === "f32" ? await gpu.readF32(buffer, n) : await gpu.readF16(buffer, n);
}

/** One engine product: its layout (with dtypes, beta and activation) and which extras it binds. */
interface Case {
  what: string;
  layout: MatmulLayout;
  bias?: boolean;
  rowSum?: boolean;
}

/**
 * Runs one case on the GPU against matmulRef on the same rounded inputs. Outputs the product does not
 * read start as NaN (out with beta 0, aux with "gelu", rowSum with beta 0): an element read before it
 * is written shows as NaN, and elements outside every output matrix must stay NaN.
 */
async function check(gpu: Gpu, variant: Variant, kernel: MatmulKernel, c: Case, rng: Rng): Promise<void> {
  const { layout } = c;
  const dt = { a: "f32", b: "f32", out: "f32", ...layout.dtypes } as Required<MatmulDtypes>;
  const name = `${c.what} [${kernel}, a ${dt.a}, b ${dt.b}, out ${dt.out}]`;
  const picked = chooseMatmulKernel(layout, variant, true);
  if (picked !== kernel) throw new Error(`${name}: expected the ${kernel} kernel, got ${picked}`);
  const ext = matmulExtents(layout);
  const beta = layout.beta ?? 0;
  const nan = (n: number) => new Float64Array(n).fill(NaN);
  const a = values(rng, ext.a, dt.a);
  const b = values(rng, ext.b, dt.b);
  const bias = c.bias ? values(rng, layout.N, "f32") : undefined;
  const out0 = beta === 0 ? nan(ext.out) : values(rng, ext.out, dt.out);
  const aux0 = layout.activation === "geluGrad"
    ? values(rng, ext.out, dt.out, 2)
    : layout.activation === "gelu"
    ? nan(ext.out)
    : undefined;
  const rs0 = c.rowSum ? (beta === 0 ? nan(layout.M) : values(rng, layout.M, "f32")) : undefined;

  const out = upload(gpu, "out", out0, dt.out);
  const aux = aux0 && upload(gpu, "aux", aux0, dt.out);
  const rowSum = rs0 && upload(gpu, "rowSum", rs0, "f32");
  gpu.run([matmul(gpu, {
    ...layout,
    a: upload(gpu, "a", a, dt.a),
    b: upload(gpu, "b", b, dt.b),
    bias: bias && upload(gpu, "bias", bias, "f32"),
    aux,
    rowSum,
    out,
  }, variant)]);

  const wantAux = aux0 && Float64Array.from(aux0);
  const wantRs = rs0 && Float64Array.from(rs0);
  const want = matmulRef(a, b, Float64Array.from(out0), { ...layout, bias, aux: wantAux, rowSum: wantRs });
  const tol = dt.out === "f16" ? MATMUL_F16 : REDUCTION_F32;
  const compare = (got: Float32Array, expected: Float64Array, t: typeof tol, what: string) => {
    const covered: number[] = [];
    for (let i = 0; i < expected.length; i++) {
      if (!Number.isNaN(expected[i])) covered.push(i);
      else if (!Number.isNaN(got[i])) throw new Error(`${name}: ${what} element ${i} written outside out`);
    }
    if (covered.length === 0) throw new Error(`${name}: ${what} has no element to compare`);
    assertClose(covered.map((i) => got[i]), covered.map((i) => expected[i]), t, `${name}: ${what}`);
  };
  compare(await read(gpu, out, ext.out, dt.out), want, tol, "out");
  if (aux && wantAux) {
    // "gelu" writes the pre-activation (rounded once); "geluGrad" only reads it.
    const auxTol = layout.activation === "gelu" ? tol : EXACT;
    compare(await read(gpu, aux, ext.out, dt.out), wantAux, auxTol, "aux");
  }
  if (rowSum && wantRs) compare(await gpu.readF32(rowSum, layout.M), wantRs, REDUCTION_F32, "rowSum");
}

const F16_F32_F16: MatmulDtypes = { a: "f16", b: "f32", out: "f16" };

/**
 * The linear layer's products with f16 activations and f32 weights, BT rows, `out` output features
 * and `inp` input features (W stored (out, inp) as nn.Linear).
 */
function linearCases(BT: number, out: number, inp: number): Case[] {
  return [
    {
      what: "y = gelu(x·Wᵀ + b), pre-activation to aux",
      layout: { M: BT, N: out, K: inp, transB: true, activation: "gelu", dtypes: F16_F32_F16 },
      bias: true,
    },
    {
      what: "dW += dYᵀ·X, db += colsum(dY) (f32 gradient arena)",
      layout: { M: out, N: inp, K: BT, transA: true, beta: 1, dtypes: { a: "f16", b: "f16", out: "f32" } },
      rowSum: true,
    },
    {
      what: "dX = (dY·W) ⊙ gelu'(pre)",
      layout: { M: BT, N: inp, K: out, activation: "geluGrad", dtypes: F16_F32_F16 },
    },
    {
      what: "dX += (dY·W) ⊙ gelu'(pre)",
      layout: { M: BT, N: inp, K: out, beta: 1, activation: "geluGrad", dtypes: F16_F32_F16 },
    },
    { what: "dX += dY·W", layout: { M: BT, N: inp, K: out, beta: 1, dtypes: F16_F32_F16 } },
  ];
}

/**
 * The pooler's products at the first token of each sequence of a (B, T, H) f16 hidden state: forward
 * reads it with lda = T·H into an f32 pooled output, and the dgrad writes f32 products into the f16
 * gradient of that state with ldc = T·H (the other rows must stay untouched).
 */
function poolerCases(B: number, T: number, H: number): Case[] {
  return [
    {
      what: "pooled = h[:, 0]·Wᵀ + b",
      layout: { M: B, N: H, K: H, transB: true, lda: T * H, dtypes: { a: "f16", b: "f32", out: "f32" } },
      bias: true,
    },
    {
      what: "dH[:, 0] = dPooled·W",
      layout: { M: B, N: H, K: H, ldc: T * H, dtypes: { a: "f32", b: "f32", out: "f16" } },
    },
  ];
}

/**
 * Attention per (b, h), all f16, straight from a (B, T, 3C) Q|K|V buffer (C = H·D; Q, K and V at
 * column offsets 0, C and 2C, head h at h·D) and (B·H, T, T) scores; the gradients dQ, dK and dV go to
 * their column blocks of a (B, T, 3C) dQKV buffer, the blocks of the other two staying untouched.
 */
function attentionCases(B: number, H: number, T: number, D: number): Case[] {
  const C = H * D;
  const f16 = { dtypes: { a: "f16", b: "f16", out: "f16" } as MatmulDtypes, batch: B * H, heads: H };
  const qkv = (block: number) => ({
    ld: 3 * C,
    stride: [T * 3 * C, D] as [number, number],
    offset: block * C,
  });
  const btc = { ld: C, stride: [T * C, D] as [number, number], offset: 0 }; // ctx, dCtx (B, T, C)
  const btt = { ld: T, stride: [H * T * T, T * T] as [number, number], offset: 0 }; // (B·H, T, T)
  type Operand = typeof btc;
  const io = (a: Operand, b: Operand, c: Operand) => ({
    lda: a.ld,
    strideA: a.stride,
    offsetA: a.offset,
    ldb: b.ld,
    strideB: b.stride,
    offsetB: b.offset,
    ldc: c.ld,
    strideC: c.stride,
    offsetC: c.offset,
  });
  const scale = 1 / Math.sqrt(D);
  const [Q, K, V] = [qkv(0), qkv(1), qkv(2)];
  const tt = { M: T, N: T, K: D, transB: true };
  const td = { M: T, N: D, K: T };
  return [
    { what: "scores = Q·Kᵀ·scale", layout: { ...f16, ...tt, alpha: scale, ...io(Q, K, btt) } },
    { what: "ctx = P·V", layout: { ...f16, ...td, ...io(btt, V, btc) } },
    { what: "dP = dCtx·Vᵀ", layout: { ...f16, ...tt, ...io(btc, V, btt) } },
    { what: "dV = Pᵀ·dCtx", layout: { ...f16, ...td, transA: true, ...io(btt, btc, V) } },
    { what: "dQ = dS·K·scale", layout: { ...f16, ...td, alpha: scale, ...io(btt, K, Q) } },
    { what: "dK = dSᵀ·Q·scale", layout: { ...f16, ...td, transA: true, alpha: scale, ...io(btt, Q, K) } },
  ];
}

/**
 * Cases per kernel: ragged shapes and offsets for "scalar" (and "tiled", with several 64x64 tiles),
 * multiples of 4 for "vec4", and M, N >= 128 for "vec4-wide" (which shares the vec4 generator and
 * compiles slowest: the linear products plus the attention scores, its only batched shapes that wide).
 */
const KERNELS: [MatmulKernel, Variant, Case[]][] = [
  ["scalar", "fallback", [
    ...linearCases(21, 33, 45),
    ...poolerCases(3, 5, 45),
    ...attentionCases(3, 2, 7, 5),
  ]],
  ["vec4", "fallback", [...linearCases(20, 36, 44), ...poolerCases(3, 4, 44), ...attentionCases(2, 2, 8, 4)]],
  ["vec4-wide", "fallback", [...linearCases(132, 136, 128), ...attentionCases(1, 2, 128, 8).slice(0, 1)]],
  ["tiled", "tiled", [...linearCases(70, 66, 33), ...poolerCases(3, 3, 70), ...attentionCases(2, 2, 70, 5)]],
];

for (const [kernel, variant, cases] of KERNELS) {
  Deno.test({
    name: `matmul() ${kernel} with f16 operands matches matmulRef for every product the engine runs`,
    ...GPU_TEST,
    fn: async () => {
      const gpu = await testGpu();
      const rng = new Rng(61);
      for (const c of cases) await check(gpu, variant, kernel, c, rng);
    },
  });
}

Deno.test("matmulWgsl() with explicit f32 dtypes is the default source; f16 enables f16 first", () => {
  const kernels: MatmulKernel[] = ["vec4", "vec4-wide", "scalar", "tiled"];
  for (const kernel of kernels) {
    const shader: MatmulShader = {
      kernel,
      transA: true,
      transB: false,
      bias: true,
      beta: true,
      activation: "geluGrad",
      rowSum: true,
    };
    const f32 = matmulWgsl(shader);
    if (matmulWgsl(shader, { a: "f32", b: "f32", out: "f32" }) !== f32) {
      throw new Error(`${kernel}: f32 differs`);
    }
    if (f32.includes("f16")) throw new Error(`${kernel}: the f32 source mentions f16`);
    const f16 = matmulWgsl(shader, { b: "f16" });
    if (!f16.startsWith("enable f16;\n")) throw new Error(`${kernel}: f16 source does not enable f16 first`);
  }
});

Deno.test({
  name: "matmul() counts f16 buffers in 2-byte elements and rejects unknown dtypes",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const [M, N, K] = [4, 4, 4];
    const f16 = (n: number) => gpu.buffer("f16", n * 2);
    // 16 f16 elements fit the 32 bytes an f32 check would reject; 17 do not.
    const d = matmul(gpu, {
      a: f16(16),
      b: f16(16),
      out: f16(16),
      M,
      N,
      K,
      dtypes: { a: "f16", b: "f16", out: "f16" },
    });
    if (d.cost.bytes !== 3 * 32) throw new Error(`cost counts ${d.cost.bytes} bytes, want 96`);
    throws(
      () =>
        matmul(gpu, { a: f16(16), b: f16(16), out: f16(16), M, N: 9, K, dtypes: { a: "f16", out: "f16" } }),
      /B spans 36 float32 elements but buffer "f16" holds 8/,
    );
    throws(
      () => matmul(gpu, { a: f16(16), b: f16(16), out: f16(16), M: 5, N, K, dtypes: { a: "f16", b: "f16" } }),
      /A spans 20 float16 elements but buffer "f16" holds 16 .*dtypes a=f16 b=f16 out=f32/,
    );
    throws(
      () => matmul(gpu, { a: f16(16), b: f16(16), out: f16(16), M, N, K, dtypes: { a: "bf16" as Dtype } }),
      /dtypes.a must be "f32" or "f16", got "bf16"/,
    );
  },
});
