/**
 * Batched, strided matrix multiply: out = alpha * op(A)·op(B) + bias + beta * out, the engine's
 * dominant cost (linear layers, their gradients, and attention read straight from the (B, T, H·D)
 * layout with no permute kernels).
 *
 * Layout: op(A) is (M, K), op(B) is (K, N), out is (M, N), all row-major with row strides
 * lda / ldb / ldc in elements. `transA` stores A as (K, M); `transB` stores B as (N, K) (an
 * nn.Linear weight). Matrix z of a batch starts at `outer * stride[0] + inner * stride[1]` with
 * z = outer * heads + inner.
 *
 * Four kernels, all generated per (transA, transB, bias, beta != 0, activation, rowSum, dtypes) so
 * pipelines are cached by those choices and never by shape (shapes, strides, alpha and beta are
 * uniform parameters):
 * - "vec4" (fallback variant, aligned shapes): no shared memory; each thread owns an 8x8 output block
 *   in registers and loads A, B and out as vec4. Best on software adapters (lavapipe).
 * - "vec4-wide" (fallback variant, aligned and M, N >= 128): the same with a 16x16 block per thread,
 *   ~1.5x faster on lavapipe but ~4x slower to compile.
 * - "scalar" (fallback variant, ragged shapes or strides that are not multiples of 4): the 8x8
 *   register block with scalar loads.
 * - "tiled" (the "tiled" variant, picked by "auto" on real GPUs): 64x64 output tile per workgroup of
 *   16x16 threads, 4x4 outputs per thread, K in slices of 16 staged in shared memory; transposes are
 *   handled by the tile load so global reads stay coalesced.
 *
 * Mixed precision: `dtypes` gives each of A, B and out its storage type (f32 or f16; `aux` follows out,
 * bias and rowSum stay f32). Every kernel converts on load and on store and accumulates in f32 (the
 * tiled kernel's shared-memory tiles are f32). Finite-difference and PyTorch fixtures stay on the f32
 * path: f16 storage is a rounding of the same math.
 * @module
 */

import {
  type Dispatch,
  type Dtype,
  dtypeBytes,
  type Gpu,
  type Param,
  requireDtype,
  wgslEnable,
} from "./runtime.ts";
import { erfWgsl, geluBackwardRef, geluRef } from "./gelu.ts";

/**
 * An element-wise function fused into the epilogue (y = alpha * op(A)·op(B) + bias + beta * out):
 * - "gelu": writes y to `aux` (the pre-activation the backward needs) and gelu(y) to out
 *   (the first FFN linear with its GELU, one dispatch instead of two);
 * - "geluGrad": reads the pre-activation x from `aux` and writes y·gelu'(x) to out (the FFN's
 *   dgrad matmul with the GELU backward, one dispatch instead of two).
 */
export type MatmulActivation = "gelu" | "geluGrad";

/**
 * Storage type of each operand (default f32 each): activations in f16, weights and gradients in f32.
 * `aux` follows `out`; `bias` and `rowSum` are always f32.
 */
export interface MatmulDtypes {
  /** Storage type of A. @default "f32" */
  a?: Dtype;
  /** Storage type of B. @default "f32" */
  b?: Dtype;
  /** Storage type of out (and aux). @default "f32" */
  out?: Dtype;
}

/** Arguments of {@linkcode matmul}: out = alpha * op(A)·op(B) + bias + beta * out. */
export interface MatmulArgs {
  /** A: (M, K), or (K, M) when `transA`. */
  a: GPUBuffer;
  /** B: (K, N), or (N, K) when `transB`. */
  b: GPUBuffer;
  /** out: (M, N); must not alias `a` or `b`. */
  out: GPUBuffer;
  /** bias: (N), added to every row. */
  bias?: GPUBuffer;
  /** Rows of op(A) and out. */
  M: number;
  /** Columns of op(B) and out. */
  N: number;
  /** The contracted dimension. */
  K: number;
  /** A stored as (K, M) instead of (M, K). */
  transA?: boolean;
  /** B stored as (N, K) instead of (K, N); y = x·Wᵀ for an nn.Linear weight W (out, in). */
  transB?: boolean;
  /** Row stride of A in elements. @default the stored width: transA ? M : K */
  lda?: number;
  /** Row stride of B in elements. @default the stored width: transB ? K : N */
  ldb?: number;
  /** Row stride of out in elements. @default N */
  ldc?: number;
  /** Number of matrices. @default 1 */
  batch?: number;
  /** Batch index z = outer * heads + inner. @default 1 */
  heads?: number;
  /** Element offset of A per (outer, inner) batch index. @default packed: [heads * size, size] */
  strideA?: [number, number];
  /** Element offset of B per (outer, inner) batch index. @default packed */
  strideB?: [number, number];
  /** Element offset of out per (outer, inner) batch index. @default packed */
  strideC?: [number, number];
  /** Element offset of A's first matrix (a column block of a wider buffer, e.g. K inside a Q|K|V row). @default 0 */
  offsetA?: number;
  /** Element offset of B's first matrix. @default 0 */
  offsetB?: number;
  /** Element offset of out's first matrix. @default 0 */
  offsetC?: number;
  /** @default 1 */
  alpha?: number;
  /** 0 never reads out (it may hold NaN); 1 accumulates. @default 0 */
  beta?: number;
  /** Label of the prepared dispatch. @default "matmul" */
  label?: string;
  /** Fused epilogue function ({@linkcode MatmulActivation}); needs `aux`. */
  activation?: MatmulActivation;
  /** (M, N) with out's layout: written pre-activation ("gelu") or read GELU input ("geluGrad"). */
  aux?: GPUBuffer;
  /**
   * (M): rowSum[i] = Σ_k op(A)[i, k], plus rowSum[i] when beta != 0 (accumulating like out). With
   * op(A) = dYᵀ this is the bias gradient fused into the weight gradient dW = dYᵀ·X, one dispatch
   * instead of two. Only for batch 1.
   */
  rowSum?: GPUBuffer;
  /** Storage types of A, B and out (and aux); f16 needs the device's shader-f16. @default all f32 */
  dtypes?: MatmulDtypes;
}

/** Which kernel runs a {@linkcode matmul}. */
export type MatmulKernel = "vec4" | "vec4-wide" | "scalar" | "tiled";

/** The compile-time choices one WGSL source is generated for. */
export interface MatmulShader {
  kernel: MatmulKernel;
  transA: boolean;
  transB: boolean;
  bias: boolean;
  /** Reads out and adds beta * out (beta != 0). */
  beta: boolean;
  /** Fused epilogue function; absent for a plain matmul. */
  activation?: MatmulActivation;
  /** Also writes the row sums of op(A) (a fused bias gradient). */
  rowSum?: boolean;
}

/** {@linkcode MatmulDtypes} with every default applied. */
type Dtypes = Required<MatmulDtypes>;

/** Applies the f32 defaults and validates each storage type. */
function resolveDtypes(d: MatmulDtypes | undefined): Dtypes {
  const out: Dtypes = { a: d?.a ?? "f32", b: d?.b ?? "f32", out: d?.out ?? "f32" };
  for (const [name, v] of Object.entries(out)) {
    if (v !== "f32" && v !== "f16") {
      throw new RangeError(`matmul: dtypes.${name} must be "f32" or "f16", got ${JSON.stringify(v)}`);
    }
  }
  return out;
}

/** Every shape number resolved to its default, validated, plus the elements each operand spans. */
interface Layout {
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
  lda: number;
  ldb: number;
  ldc: number;
  batch: number;
  heads: number;
  strideA: [number, number];
  strideB: [number, number];
  strideC: [number, number];
  offsetA: number;
  offsetB: number;
  offsetC: number;
  alpha: number;
  beta: number;
  /** One past the largest element index of each operand. */
  extentA: number;
  extentB: number;
  extentC: number;
}

/** The shape part of {@linkcode MatmulArgs}: everything but the buffers. */
export type MatmulLayout = Omit<MatmulArgs, "a" | "b" | "out" | "bias" | "aux" | "rowSum">;

const U32_MAX = 0xffffffff;

function describe(args: MatmulLayout): string {
  const { M, N, K, transA = false, transB = false, batch = 1, heads = 1, dtypes } = args;
  const d = dtypes && Object.values(dtypes).includes("f16")
    ? `, dtypes a=${dtypes.a ?? "f32"} b=${dtypes.b ?? "f32"} out=${dtypes.out ?? "f32"}`
    : "";
  return `M=${M}, N=${N}, K=${K}, transA=${transA}, transB=${transB}, batch=${batch}, heads=${heads}${d}`;
}

/** Applies defaults and validates every shape number; errors name the op, the value and the shapes. */
function resolveLayout(args: MatmulLayout): Layout {
  const shapes = describe(args);
  const int = (name: string, v: number, min: number): number => {
    if (!Number.isSafeInteger(v) || v < min || v > U32_MAX) {
      throw new RangeError(`matmul: ${name} must be an integer >= ${min}, got ${v} (${shapes})`);
    }
    return v;
  };
  const M = int("M", args.M, 1);
  const N = int("N", args.N, 1);
  const K = int("K", args.K, 1);
  const transA = args.transA ?? false;
  const transB = args.transB ?? false;
  const batch = int("batch", args.batch ?? 1, 1);
  const heads = int("heads", args.heads ?? 1, 1);
  if (batch % heads !== 0) {
    throw new RangeError(`matmul: batch ${batch} is not a multiple of heads ${heads} (${shapes})`);
  }
  const ld = (name: string, v: number | undefined, width: number): number => {
    const value = int(name, v ?? width, 1);
    if (value < width) {
      throw new RangeError(
        `matmul: ${name} ${value} is smaller than the stored row width ${width} (${shapes}); pass ${name} >= ${width}`,
      );
    }
    return value;
  };
  const lda = ld("lda", args.lda, transA ? M : K);
  const ldb = ld("ldb", args.ldb, transB ? K : N);
  const ldc = ld("ldc", args.ldc, N);
  const stride = (name: string, v: [number, number] | undefined, size: number): [number, number] => {
    const s = v ?? [heads * size, size];
    if (!Array.isArray(s) || s.length !== 2) {
      throw new RangeError(`matmul: ${name} must be [outer, inner], got ${JSON.stringify(s)} (${shapes})`);
    }
    return [int(`${name}[0]`, s[0], 0), int(`${name}[1]`, s[1], 0)];
  };
  const strideA = stride("strideA", args.strideA, (transA ? K : M) * lda);
  const strideB = stride("strideB", args.strideB, (transB ? N : K) * ldb);
  const strideC = stride("strideC", args.strideC, M * ldc);
  const offsetA = int("offsetA", args.offsetA ?? 0, 0);
  const offsetB = int("offsetB", args.offsetB ?? 0, 0);
  const offsetC = int("offsetC", args.offsetC ?? 0, 0);
  const alpha = args.alpha ?? 1;
  const beta = args.beta ?? 0;
  for (const [name, v] of [["alpha", alpha], ["beta", beta]] as const) {
    if (!Number.isFinite(v)) throw new RangeError(`matmul: ${name} must be finite, got ${v} (${shapes})`);
  }
  // One past the last element touched: last batch matrix, last row, last column.
  const outers = batch / heads - 1;
  const extent = (o: number, s: [number, number], rows: number, ldx: number, cols: number) =>
    o + outers * s[0] + (heads - 1) * s[1] + (rows - 1) * ldx + cols;
  const extentA = extent(offsetA, strideA, transA ? K : M, lda, transA ? M : K);
  const extentB = extent(offsetB, strideB, transB ? N : K, ldb, transB ? K : N);
  const extentC = extent(offsetC, strideC, M, ldc, N);
  for (const [name, e] of [["A", extentA], ["B", extentB], ["out", extentC]] as const) {
    if (e > U32_MAX) {
      throw new RangeError(`matmul: ${name} spans ${e} elements, past the u32 index range (${shapes})`);
    }
  }
  return {
    M,
    N,
    K,
    transA,
    transB,
    lda,
    ldb,
    ldc,
    batch,
    heads,
    strideA,
    strideB,
    strideC,
    offsetA,
    offsetB,
    offsetC,
    alpha,
    beta,
    extentA,
    extentB,
    extentC,
  };
}

/**
 * Elements each operand spans (one past its largest index) for the given shapes, strides and batch:
 * the element counts to allocate for A, B and out (times dtypeBytes of each operand's dtype).
 *
 * @example
 * ```ts
 * import { matmulExtents } from "./matmul.ts";
 * const { a, b, out } = matmulExtents({ M: 7, N: 5, K: 3, transB: true }); // 21, 15, 35
 * if (out !== 35) throw new Error("packed (M, N)");
 * ```
 */
export function matmulExtents(args: MatmulLayout): { a: number; b: number; out: number } {
  const l = resolveLayout(args);
  return { a: l.extentA, b: l.extentB, out: l.extentC };
}

/**
 * True when every vec4 load and store of the "vec4" kernel is aligned and in range. Counted in
 * elements, so it holds for every dtype: an `array<vec4<f16>>` is indexed like `array<vec4<f32>>`
 * (element / 4), with 8-byte instead of 16-byte elements.
 */
function vec4Aligned(l: Layout): boolean {
  const strides = [
    ...l.strideA,
    ...l.strideB,
    ...l.strideC,
    l.lda,
    l.ldb,
    l.ldc,
    l.offsetA,
    l.offsetB,
    l.offsetC,
  ];
  if (strides.some((s) => s % 4 !== 0)) return false;
  // Contiguous dimensions are read 4 at a time: A's rows hold K (or M when transA), B's hold N (or K
  // when transB), out's and the bias's hold N.
  if (l.N % 4 !== 0) return false;
  if (l.transA ? l.M % 4 !== 0 : l.K % 4 !== 0) return false;
  return !(l.transB && l.K % 4 !== 0);
}

/**
 * The kernel {@linkcode matmul} picks: "auto" means "tiled" on real GPUs and the register-blocked
 * fallback on software adapters; the fallback uses vec4 loads when shapes and strides allow, with the
 * 16x16 block once M and N fill its 128x128 workgroup tile.
 *
 * @example
 * ```ts
 * import { chooseMatmulKernel } from "./matmul.ts";
 * const linear = { M: 2048, N: 768, K: 768, transB: true };
 * if (chooseMatmulKernel(linear, "auto", false) !== "tiled") throw new Error("real GPU");
 * if (chooseMatmulKernel(linear, "auto", true) !== "vec4-wide") throw new Error("lavapipe");
 * if (chooseMatmulKernel({ ...linear, K: 45 }, "auto", true) !== "scalar") throw new Error("ragged K");
 * ```
 */
export function chooseMatmulKernel(
  args: MatmulLayout,
  variant: "auto" | "fallback" | "tiled",
  isFallback: boolean,
): MatmulKernel {
  const layout = resolveLayout(args);
  const tiled = variant === "tiled" || (variant === "auto" && !isFallback);
  if (tiled) return "tiled";
  if (!vec4Aligned(layout)) return "scalar";
  const [rows, cols] = REG_BLOCK["vec4-wide"];
  return layout.M >= rows * REG_WG[1] && layout.N >= cols * REG_WG[0] ? "vec4-wide" : "vec4";
}

const PARAMS_WGSL = `struct Params {
  M: u32, N: u32, K: u32, heads: u32,
  lda: u32, ldb: u32, ldc: u32, batch: u32,
  sa0: u32, sa1: u32, sb0: u32, sb1: u32,
  sc0: u32, sc1: u32, alpha: f32, beta: f32,
  oa: u32, ob: u32, oc: u32,
}`;

function params(l: Layout): Param[] {
  return [
    ["u32", l.M],
    ["u32", l.N],
    ["u32", l.K],
    ["u32", l.heads],
    ["u32", l.lda],
    ["u32", l.ldb],
    ["u32", l.ldc],
    ["u32", l.batch],
    ["u32", l.strideA[0]],
    ["u32", l.strideA[1]],
    ["u32", l.strideB[0]],
    ["u32", l.strideB[1]],
    ["u32", l.strideC[0]],
    ["u32", l.strideC[1]],
    ["f32", l.alpha],
    ["f32", l.beta],
    ["u32", l.offsetA],
    ["u32", l.offsetB],
    ["u32", l.offsetC],
  ];
}

/** A stored value (or vec4) of type `d` as f32 arithmetic: `f32(x)` for f16, `x` itself for f32. */
function widen(d: Dtype, vec: boolean, x: string): string {
  return d === "f32" ? x : `${vec ? "vec4<f32>" : "f32"}(${x})`;
}

/** An f32 value (or vec4) `x` as the storage type `d`: `f16(x)` for f16, `x` itself for f32. */
function narrow(d: Dtype, vec: boolean, x: string): string {
  return d === "f32" ? x : `${vec ? "vec4<f16>" : "f16"}(${x})`;
}

/**
 * Binding declarations: params, A, B, bias?, aux?, rowSum?, out. The vec4 kernels bind vec4 arrays;
 * A, B and out (and aux) have their storage types, bias and rowSum are f32.
 */
function bindings(s: MatmulShader, dt: Dtypes): string {
  const vec = s.kernel === "vec4" || s.kernel === "vec4-wide";
  const elem = (d: Dtype) => (vec ? `vec4<${d}>` : d);
  const decls = [
    `var<storage, read> A: array<${elem(dt.a)}>;`,
    `var<storage, read> B: array<${elem(dt.b)}>;`,
  ];
  if (s.bias) decls.push(`var<storage, read> bias: array<${elem("f32")}>;`);
  if (s.activation) {
    decls.push(
      `var<storage, ${s.activation === "gelu" ? "read_write" : "read"}> Aux: array<${elem(dt.out)}>;`,
    );
  }
  if (s.rowSum) decls.push(`var<storage, read_write> RS: array<f32>;`);
  decls.push(`var<storage, read_write> C: array<${elem(dt.out)}>;`);
  return `${PARAMS_WGSL}
@group(0) @binding(0) var<uniform> p: Params;
${decls.map((d, i) => `@group(0) @binding(${i + 1}) ${d}`).join("\n")}${
    s.activation ? activationWgsl() : ""
  }`;
}

/**
 * WGSL of the fused epilogue functions, for f32 and vec4<f32> values (f16 storage is widened first):
 * gelu(y) = y·Φ(y) and gelu'(x) = Φ(x) + x·φ(x), the same arithmetic as geluForwardWgsl /
 * geluBackwardWgsl.
 */
function activationWgsl(): string {
  const dtype = "f32";
  return /* wgsl */ `
${erfWgsl()}
fn gelu1(y: f32) -> f32 { return y * phi(y); }
fn dgelu1(x: f32) -> f32 {
  let c = clamp(x, -1e4, 1e4);
  return phi(x) + x * 0.39894228040143268 * exp(-0.5 * c * c);
}
fn gelu4(y: vec4<${dtype}>) -> vec4<${dtype}> { return vec4<${dtype}>(gelu1(y.x), gelu1(y.y), gelu1(y.z), gelu1(y.w)); }
fn dgelu4(x: vec4<${dtype}>) -> vec4<${dtype}> {
  return vec4<${dtype}>(dgelu1(x.x), dgelu1(x.y), dgelu1(x.z), dgelu1(x.w));
}`;
}

/** Batch offsets of A, B and out for matrix z (element units). */
const BATCH_BASES = `
  let outer = z / p.heads;
  let inner = z - outer * p.heads;
  let baseA = p.oa + outer * p.sa0 + inner * p.sa1;
  let baseB = p.ob + outer * p.sb0 + inner * p.sb1;
  let baseC = p.oc + outer * p.sc0 + inner * p.sc1;`;

/**
 * `out = alpha * acc + bias + beta * out` for one element (or vec4, `vec`) at index `idx`, then the
 * fused activation, if any; out and aux are stored as `d` (converted on load and store).
 */
function epilogue(
  s: MatmulShader,
  idx: string,
  acc: string,
  biasValue: string,
  d: Dtype,
  vec = false,
): string {
  const terms = [`p.alpha * ${acc}`];
  if (s.bias) terms.push(biasValue);
  if (s.beta) terms.push(`p.beta * ${widen(d, vec, `C[${idx}]`)}`);
  const y = terms.join(" + ");
  const f = vec ? "4" : "1";
  const store = (x: string) => narrow(d, vec, x);
  if (s.activation === "gelu") {
    return `{ let y = ${y}; Aux[${idx}] = ${store("y")}; C[${idx}] = ${store(`gelu${f}(y)`)}; }`;
  }
  if (s.activation === "geluGrad") {
    return `C[${idx}] = ${store(`(${y}) * dgelu${f}(${widen(d, vec, `Aux[${idx}]`)})`)};`;
  }
  return `C[${idx}] = ${store(y)};`;
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const LANE = ["x", "y", "z", "w"];

/** Threads per workgroup of the register-blocked kernels (x over column blocks, y over row blocks). */
const REG_WG: [number, number] = [8, 8];

/**
 * Outputs one thread owns in a register-blocked kernel, [rows, columns]. On lavapipe these kernels are
 * bound by loads (gathers across SIMD lanes), so a bigger block is faster: 8x8 gave 1.9 GFLOP/s and
 * 16x16 about 3 GFLOP/s on 2 cores, but 16x16 takes ~2 s (vs ~0.5 s) to compile, so it is kept for
 * matrices big enough to fill its 128x128 workgroup tile.
 */
const REG_BLOCK: Record<Exclude<MatmulKernel, "tiled">, [number, number]> = {
  scalar: [8, 8],
  vec4: [8, 8],
  "vec4-wide": [16, 16],
};

/**
 * Register-blocked kernel without shared memory ("vec4", "vec4-wide" or "scalar"): thread (x, y) of
 * matrix z owns out rows i0..i0+R-1 and columns j0..j0+C-1 as R*C/4 vec4 accumulators. Rows and
 * columns past the edge are clamped for loads (valid memory, never stored), so the inner loop has no
 * branches.
 */
function registerBlockedWgsl(s: MatmulShader, dt: Dtypes): string {
  const vec = s.kernel !== "scalar";
  const [REG_ROWS, REG_COLS] = REG_BLOCK[s.kernel as Exclude<MatmulKernel, "tiled">];
  const VEC_COLS = REG_COLS / 4; // accumulator vec4s per row
  const dtype = "f32"; // arithmetic; loads widen from and stores narrow to each operand's dtype
  const v4 = `vec4<${dtype}>`;
  // A k-chunk of 4 when a vec4 load runs along k (A without transA, or B with transB).
  const kc = vec && (!s.transA || s.transB) ? 4 : 1;
  const setup: string[] = [];
  const load: string[] = [];
  let aAt: (r: number, kk: number) => string;
  let bAt: (kk: number, h: number) => string;

  // ---- A: op(A)[i, k] ----
  if (!s.transA) {
    // Stored (M, K): row i0+r starts at baseA + i*lda; read along k.
    for (const r of range(REG_ROWS)) {
      const row = `(baseA + min(i0 + ${r}u, p.M - 1u) * p.lda)`;
      setup.push(`let ra${r} = ${vec ? `${row} / 4u` : row};`);
      load.push(`let a${r} = ${widen(dt.a, vec, `A[ra${r} + ${vec ? "k / 4u" : "k"}]`)};`);
    }
    aAt = (r, kk) => (vec && kc === 4 ? `a${r}.${LANE[kk]}` : `a${r}`);
  } else if (vec) {
    // Stored (K, M): row k holds op(A)[i0..i0+7, k] as two vec4 (M % 4 == 0, clamped per vec4).
    setup.push(`let lda4 = p.lda / 4u;`);
    for (const h of range(REG_ROWS / 4)) {
      setup.push(`let ca${h} = baseA / 4u + min(i0 / 4u + ${h}u, p.M / 4u - 1u);`);
    }
    for (const kk of range(kc)) {
      for (const h of range(REG_ROWS / 4)) {
        load.push(`let a${kk}_${h} = ${widen(dt.a, true, `A[ca${h} + (k + ${kk}u) * lda4]`)};`);
      }
    }
    aAt = (r, kk) => `a${kk}_${r >> 2}.${LANE[r & 3]}`;
  } else {
    for (const r of range(REG_ROWS)) setup.push(`let ca${r} = baseA + min(i0 + ${r}u, p.M - 1u);`);
    setup.push(`var ka = 0u;`);
    for (const r of range(REG_ROWS)) load.push(`let a${r} = ${widen(dt.a, false, `A[ca${r} + ka]`)};`);
    load.push(`ka += p.lda;`);
    aAt = (r) => `a${r}`;
  }

  // ---- B: op(B)[k, j] as vec4 over 4 consecutive columns j0+4h.. ----
  if (s.transB) {
    // Stored (N, K): row j starts at baseB + j*ldb; read along k.
    for (const c of range(REG_COLS)) {
      const row = `(baseB + min(j0 + ${c}u, p.N - 1u) * p.ldb)`;
      setup.push(`let rb${c} = ${vec ? `${row} / 4u` : row};`);
      load.push(`let b${c} = ${widen(dt.b, vec, `B[rb${c} + ${vec ? "k / 4u" : "k"}]`)};`);
    }
    bAt = (kk, h) => {
      const cols = range(4).map((c) => (kc === 4 ? `b${4 * h + c}.${LANE[kk]}` : `b${4 * h + c}`));
      return `${v4}(${cols.join(", ")})`;
    };
  } else if (vec) {
    // Stored (K, N): row k holds op(B)[k, j0..j0+7] as two vec4 (N % 4 == 0, clamped per vec4).
    setup.push(`let ldb4 = p.ldb / 4u;`);
    for (const h of range(VEC_COLS)) {
      setup.push(`let cb${h} = baseB / 4u + min(j0 / 4u + ${h}u, p.N / 4u - 1u);`);
    }
    for (const kk of range(kc)) {
      for (const h of range(VEC_COLS)) {
        load.push(`let b${kk}_${h} = ${widen(dt.b, true, `B[cb${h} + (k + ${kk}u) * ldb4]`)};`);
      }
    }
    bAt = (kk, h) => `b${kk}_${h}`;
  } else {
    for (const c of range(REG_COLS)) setup.push(`let cb${c} = baseB + min(j0 + ${c}u, p.N - 1u);`);
    setup.push(`var kb = 0u;`);
    for (const c of range(REG_COLS)) load.push(`let b${c} = ${widen(dt.b, false, `B[cb${c} + kb]`)};`);
    load.push(`kb += p.ldb;`);
    bAt = (_kk, h) => `${v4}(${range(4).map((c) => `b${4 * h + c}`).join(", ")})`;
  }

  const fma: string[] = [];
  for (const kk of range(kc)) {
    for (const h of range(VEC_COLS)) fma.push(`let bk${kk}_${h} = ${bAt(kk, h)};`);
    for (const r of range(REG_ROWS)) {
      for (const h of range(VEC_COLS)) fma.push(`acc${r}_${h} += ${aAt(r, kk)} * bk${kk}_${h};`);
    }
  }

  // The bias of this thread's columns, loaded once (clamped; values past N are never stored).
  const store: string[] = !s.bias
    ? []
    : vec
    ? range(VEC_COLS).map((h) => `let bias${h} = bias[min(j0 / 4u + ${h}u, p.N / 4u - 1u)];`)
    : range(VEC_COLS).map((h) =>
      `let bias${h} = ${v4}(${range(4).map((c) => `bias[min(j0 + ${4 * h + c}u, p.N - 1u)]`).join(", ")});`
    );
  for (const r of range(REG_ROWS)) {
    store.push(`if (i0 + ${r}u < p.M) {`, `  let rc = baseC + (i0 + ${r}u) * p.ldc;`);
    for (const h of range(VEC_COLS)) {
      if (vec) {
        // N % 4 == 0: a vec4 is either wholly inside the row or wholly past it.
        store.push(
          `  if (j0 + ${4 * h}u < p.N) { ${
            epilogue(s, `rc / 4u + j0 / 4u + ${h}u`, `acc${r}_${h}`, `bias${h}`, dt.out, true)
          } }`,
        );
      } else {
        for (const c of range(4)) {
          const j = `j0 + ${4 * h + c}u`;
          store.push(
            `  if (${j} < p.N) { ${
              epilogue(s, `rc + ${j}`, `acc${r}_${h}.${LANE[c]}`, `bias${h}.${LANE[c]}`, dt.out)
            } }`,
          );
        }
      }
    }
    store.push(`}`);
  }

  if (s.rowSum) {
    for (const kk of range(kc)) for (const r of range(REG_ROWS)) fma.push(`rs${r} += ${aAt(r, kk)};`);
    // The threads of the first column block own the row sums (clamped rows past M are never stored).
    store.push(`if (j0 == 0u) {`);
    for (const r of range(REG_ROWS)) {
      store.push(`  if (i0 + ${r}u < p.M) { RS[i0 + ${r}u] = ${s.beta ? `RS[i0 + ${r}u] + ` : ""}rs${r}; }`);
    }
    store.push(`}`);
  }
  const accs = range(REG_ROWS).flatMap((r) => range(VEC_COLS).map((h) => `var acc${r}_${h} = ${v4}();`));
  if (s.rowSum) accs.push(...range(REG_ROWS).map((r) => `var rs${r} = ${dtype}(0);`));
  return /* wgsl */ `${wgslEnable(dt.a, dt.b, dt.out)}
// matmul ${s.kernel}: out(M, N) = alpha * op(A)·op(B)${s.bias ? " + bias" : ""}${
    s.beta ? " + beta * out" : ""
  }
// A: ${s.transA ? "(K, M)" : "(M, K)"}, B: ${
    s.transB ? "(N, K)" : "(K, N)"
  }, row strides lda/ldb/ldc, batch z = gid.z
// bindings: params, A, B, ${
    s.bias ? "bias (N), " : ""
  }out; each thread owns ${REG_ROWS}x${REG_COLS} outputs, no shared memory
${bindings(s, dt)}
@compute @workgroup_size(${REG_WG[0]}, ${REG_WG[1]})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i0 = gid.y * ${REG_ROWS}u;
  let j0 = gid.x * ${REG_COLS}u;
  let z = gid.z;
  if (i0 >= p.M || j0 >= p.N || z >= p.batch) { return; }${BATCH_BASES}
  ${setup.join("\n  ")}
  ${accs.join("\n  ")}
  for (var k = 0u; k < p.K; k += ${kc}u) {
    ${load.join("\n    ")}
    ${fma.join("\n    ")}
  }
  ${store.join("\n  ")}
}`;
}

/** Tiled kernel geometry: a 64x64 output tile, K slices of 16, 16x16 threads with 4x4 outputs each. */
const TILE = 64;
const TILE_K = 16;
const TILE_THREADS = 16;

/**
 * Shared-memory tiled kernel: each workgroup stages a 64x16 slice of op(A) and a 16x64 slice of op(B)
 * in shared memory as k-major vec4 rows (zero-filled past the edges), and every thread accumulates a
 * 4x4 block from one vec4 of each. Each thread loads one vec4 of each slice; which index runs fastest
 * across threads follows the stored layout, so global reads stay coalesced for every transpose.
 */
function tiledWgsl(s: MatmulShader, dt: Dtypes): string {
  const v4 = "vec4<f32>"; // arithmetic and shared-memory tiles; loads widen, stores narrow
  const q = TILE / 4; // vec4 per tile row
  // Thread t stages op(A)[bi + 4*r4 + c, k0 + kk] and op(B)[k0 + kk, bj + 4*c4 + c] for c = 0..3.
  const aIndex = s.transA ? `(k0 + kk) * p.lda + i` : `i * p.lda + k0 + kk`;
  const bIndex = s.transB ? `j * p.ldb + k0 + kk` : `(k0 + kk) * p.ldb + j`;
  const loadA = range(4).map((c) =>
    `{ let i = bi + 4u * r4 + ${c}u; if (i < p.M && k0 + kk < p.K) { v.${LANE[c]} = ${
      widen(dt.a, false, `A[baseA + ${aIndex}]`)
    }; } }`
  );
  const loadB = range(4).map((c) =>
    `{ let j = bj + 4u * c4 + ${c}u; if (j < p.N && k0 + kk < p.K) { v.${LANE[c]} = ${
      widen(dt.b, false, `B[baseB + ${bIndex}]`)
    }; } }`
  );
  const store: string[] = !s.bias
    ? []
    : [`let bias4 = ${v4}(${range(4).map((c) => `bias[min(j0 + ${c}u, p.N - 1u)]`).join(", ")});`];
  for (const r of range(4)) {
    store.push(`if (i0 + ${r}u < p.M) {`, `  let rc = baseC + (i0 + ${r}u) * p.ldc;`);
    for (const c of range(4)) {
      const j = `j0 + ${c}u`;
      store.push(
        `  if (${j} < p.N) { ${epilogue(s, `rc + ${j}`, `acc${r}.${LANE[c]}`, `bias4.${LANE[c]}`, dt.out)} }`,
      );
    }
    store.push(`}`);
  }
  return /* wgsl */ `${wgslEnable(dt.a, dt.b, dt.out)}
// matmul tiled: out(M, N) = alpha * op(A)·op(B)${s.bias ? " + bias" : ""}${s.beta ? " + beta * out" : ""}
// A: ${s.transA ? "(K, M)" : "(M, K)"}, B: ${
    s.transB ? "(N, K)" : "(K, N)"
  }, row strides lda/ldb/ldc, batch z = wid.z
// bindings: params, A, B, ${s.bias ? "bias (N), " : ""}out; 64x64 tile per workgroup, 4x4 per thread
${bindings(s, dt)}
var<workgroup> As: array<${v4}, ${TILE_K * q}>; // [kk][row / 4]
var<workgroup> Bs: array<${v4}, ${TILE_K * q}>; // [kk][col / 4]
@compute @workgroup_size(${TILE_THREADS}, ${TILE_THREADS})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u,
        @builtin(local_invocation_index) t: u32) {
  let bi = wid.y * ${TILE}u;
  let bj = wid.x * ${TILE}u;
  let z = wid.z;${BATCH_BASES}
  let i0 = bi + lid.y * 4u;
  let j0 = bj + lid.x * 4u;
  var acc0 = ${v4}();
  var acc1 = ${v4}();
  var acc2 = ${v4}();
  var acc3 = ${v4}();${s.rowSum ? `\n  var rs = ${v4}();` : ""}
  for (var k0 = 0u; k0 < p.K; k0 += ${TILE_K}u) {
    {
      let kk = t ${s.transA ? "/" : "%"} ${TILE_K}u;
      let r4 = t ${s.transA ? "%" : "/"} ${TILE_K}u;
      var v = ${v4}();
      ${loadA.join("\n      ")}
      As[kk * ${q}u + r4] = v;
    }
    {
      let kk = t ${s.transB ? "%" : "/"} ${TILE_K}u;
      let c4 = t ${s.transB ? "/" : "%"} ${TILE_K}u;
      var v = ${v4}();
      ${loadB.join("\n      ")}
      Bs[kk * ${q}u + c4] = v;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${TILE_K}u; kk++) {
      let a = As[kk * ${q}u + lid.y];
      let b = Bs[kk * ${q}u + lid.x];
      acc0 += a.x * b;
      acc1 += a.y * b;
      acc2 += a.z * b;
      acc3 += a.w * b;${s.rowSum ? "\n      rs += a;" : ""}
    }
    workgroupBarrier();
  }
  if (z >= p.batch) { return; }
  ${store.join("\n  ")}${
    s.rowSum
      ? `
  if (bj == 0u && lid.x == 0u) {
${
        range(4).map((r) =>
          `    if (i0 + ${r}u < p.M) { RS[i0 + ${r}u] = ${s.beta ? `RS[i0 + ${r}u] + ` : ""}rs.${LANE[r]}; }`
        ).join("\n")
      }
  }`
      : ""
  }
}`;
}

/**
 * WGSL of one matmul kernel for the given compile-time choices and operand storage types (all f32 by
 * default; "enable f16;" comes first when any is f16).
 *
 * @example
 * ```ts
 * import { matmulWgsl } from "./matmul.ts";
 * const code = matmulWgsl({ kernel: "tiled", transA: false, transB: true, bias: true, beta: false });
 * if (!code.includes("var<workgroup>")) throw new Error("the tiled kernel stages tiles in shared memory");
 * ```
 */
export function matmulWgsl(shader: MatmulShader, dtypes: MatmulDtypes = {}): string {
  const dt = resolveDtypes(dtypes);
  return shader.kernel === "tiled" ? tiledWgsl(shader, dt) : registerBlockedWgsl(shader, dt);
}

function checkBuffer(name: string, buffer: GPUBuffer, elements: number, shapes: string, dtype: Dtype): void {
  const bytes = dtypeBytes(dtype);
  if (elements * bytes > buffer.size) {
    throw new RangeError(
      `matmul: ${name} spans ${elements} ${
        dtype === "f16" ? "float16" : "float32"
      } elements but buffer "${buffer.label}" holds ${
        Math.floor(buffer.size / bytes)
      } (${shapes}); check the shapes, leading dimensions, batch strides and dtypes`,
    );
  }
}

/**
 * Prepares out = alpha * op(A)·op(B) + bias + beta * out for `batch` matrices (see
 * {@linkcode MatmulArgs} for layouts). "auto" picks the shared-memory tiled kernel on real GPUs and the
 * register-blocked fallback on software adapters. With beta 0, out is never read.
 *
 * @example Linear forward y(BT, N) = x(BT, K)·Wᵀ + b, W stored (N, K) as in nn.Linear
 * ```ts
 * import { matmul } from "./matmul.ts";
 * import { Gpu } from "./runtime.ts";
 * const gpu = await Gpu.create();
 * const x = gpu.upload("x", new Float32Array([1, 2, 3, 4, 5, 6])); // (BT = 2, K = 3)
 * const w = gpu.upload("w", new Float32Array([1, 0, 0, 0, 1, 1])); // (N = 2, K = 3)
 * const b = gpu.upload("b", new Float32Array([10, 20]));
 * const y = gpu.buffer("y", 2 * 2 * 4);
 * gpu.run([matmul(gpu, { a: x, b: w, bias: b, out: y, M: 2, N: 2, K: 3, transB: true })]);
 * const got = await gpu.readF32(y, 4); // [1 + 10, 2 + 3 + 20, 4 + 10, 5 + 6 + 20]
 * if (got.join() !== "11,25,14,31") throw new Error(`got ${got}`);
 * ```
 * @throws {RangeError} for invalid shapes, strides or buffers too small for them.
 */
export function matmul(
  gpu: Gpu,
  args: MatmulArgs,
  variant: "auto" | "fallback" | "tiled" = "auto",
): Dispatch {
  const layout = resolveLayout(args);
  const shapes = describe(args);
  const dt = resolveDtypes(args.dtypes);
  if (Object.values(dt).includes("f16")) requireDtype(gpu, "f16", "matmul");
  checkBuffer("A", args.a, layout.extentA, shapes, dt.a);
  checkBuffer("B", args.b, layout.extentB, shapes, dt.b);
  checkBuffer("out", args.out, layout.extentC, shapes, dt.out);
  if (args.bias) checkBuffer("bias", args.bias, layout.N, shapes, "f32");
  if (args.out === args.a || args.out === args.b || args.out === args.bias) {
    throw new RangeError(`matmul: out must not alias A, B or bias (${shapes}); write to a separate buffer`);
  }
  if (args.activation !== undefined) {
    if (args.activation !== "gelu" && args.activation !== "geluGrad") {
      throw new RangeError(`matmul: activation must be "gelu" or "geluGrad", got "${args.activation}"`);
    }
    if (!args.aux) {
      throw new RangeError(
        `matmul: activation "${args.activation}" needs an "aux" buffer (the GELU pre-activation, out's layout)`,
      );
    }
    checkBuffer("aux", args.aux, layout.extentC, shapes, dt.out);
    if ([args.a, args.b, args.bias, args.out].includes(args.aux)) {
      throw new RangeError(`matmul: aux must not alias A, B, bias or out (${shapes}); pass its own buffer`);
    }
  } else if (args.aux) {
    throw new RangeError(`matmul: "aux" is only used with an activation (${shapes}); drop it or set one`);
  }
  if (args.rowSum) {
    if (layout.batch !== 1) throw new RangeError(`matmul: rowSum needs batch 1 (${shapes})`);
    checkBuffer("rowSum", args.rowSum, layout.M, shapes, "f32");
    if ([args.a, args.b, args.bias, args.aux, args.out].includes(args.rowSum)) {
      throw new RangeError(`matmul: rowSum must not alias A, B, bias, aux or out (${shapes})`);
    }
  }
  const kernel = chooseMatmulKernel(args, variant, gpu.isFallback);
  const shader: MatmulShader = {
    kernel,
    transA: layout.transA,
    transB: layout.transB,
    bias: args.bias !== undefined,
    beta: layout.beta !== 0,
    ...(args.activation ? { activation: args.activation } : {}),
    ...(args.rowSum ? { rowSum: true } : {}),
  };
  const workgroups: [number, number, number] = kernel === "tiled"
    ? [Math.ceil(layout.N / TILE), Math.ceil(layout.M / TILE), layout.batch]
    : [
      Math.ceil(layout.N / (REG_BLOCK[kernel][1] * REG_WG[0])),
      Math.ceil(layout.M / (REG_BLOCK[kernel][0] * REG_WG[1])),
      layout.batch,
    ];
  const buffers = [args.a, args.b];
  if (args.bias) buffers.push(args.bias);
  if (args.aux) buffers.push(args.aux);
  if (args.rowSum) buffers.push(args.rowSum);
  buffers.push(args.out);
  return gpu.dispatch(
    args.label ?? `matmul.${kernel}`,
    matmulWgsl(shader, dt),
    params(layout),
    buffers,
    workgroups,
    { family: "matmul", flops: 2 * layout.M * layout.N * layout.K * layout.batch },
  );
}

/**
 * float64 CPU reference with the semantics of {@linkcode matmul}: updates `out` in place
 * (out = alpha * op(A)·op(B) + bias + beta * out; beta 0 never reads out) and returns it. With an
 * `activation`, "gelu" also writes the pre-activation into `aux` and out = gelu(pre); "geluGrad"
 * multiplies by gelu'(aux) (the float64 {@linkcode geluRef} / {@linkcode geluBackwardRef}). With
 * `rowSum`, also rowSum[i] = Σ_k op(A)[i, k] (+ rowSum[i] when beta != 0).
 *
 * @example
 * ```ts
 * import { matmulRef } from "./matmul.ts";
 * const out = matmulRef([1, 2, 3, 4], [1, 0, 0, 1], new Float64Array(4), { M: 2, N: 2, K: 2 });
 * if (out[3] !== 4) throw new Error("identity product");
 * ```
 */
export function matmulRef(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  out: Float64Array,
  args: MatmulLayout & { bias?: ArrayLike<number>; aux?: Float64Array; rowSum?: Float64Array },
): Float64Array {
  const l = resolveLayout(args);
  const shapes = describe(args);
  const check = (name: string, length: number, need: number) => {
    if (length < need) {
      throw new RangeError(
        `matmulRef: ${name} has ${length} elements but the layout needs ${need} (${shapes})`,
      );
    }
  };
  check("a", a.length, l.extentA);
  check("b", b.length, l.extentB);
  check("out", out.length, l.extentC);
  if (args.bias) check("bias", args.bias.length, l.N);
  if (args.activation) {
    if (!args.aux) throw new RangeError(`matmulRef: activation "${args.activation}" needs "aux" (${shapes})`);
    check("aux", args.aux.length, l.extentC);
  }
  if (args.rowSum) {
    if (l.batch !== 1) throw new RangeError(`matmulRef: rowSum needs batch 1 (${shapes})`);
    check("rowSum", args.rowSum.length, l.M);
    for (let i = 0; i < l.M; i++) {
      let sum = 0;
      for (let k = 0; k < l.K; k++) sum += a[i * (l.transA ? 1 : l.lda) + k * (l.transA ? l.lda : 1)];
      args.rowSum[i] = (l.beta !== 0 ? args.rowSum[i] : 0) + sum;
    }
  }
  // Element (i, k) of op(A) sits at i*sai + k*sak from the matrix base; likewise for op(B).
  const [sai, sak] = l.transA ? [1, l.lda] : [l.lda, 1];
  const [sbk, sbj] = l.transB ? [1, l.ldb] : [l.ldb, 1];
  for (let z = 0; z < l.batch; z++) {
    const outer = Math.floor(z / l.heads);
    const inner = z % l.heads;
    const baseA = l.offsetA + outer * l.strideA[0] + inner * l.strideA[1];
    const baseB = l.offsetB + outer * l.strideB[0] + inner * l.strideB[1];
    const baseC = l.offsetC + outer * l.strideC[0] + inner * l.strideC[1];
    for (let i = 0; i < l.M; i++) {
      for (let j = 0; j < l.N; j++) {
        let sum = 0;
        for (let k = 0; k < l.K; k++) sum += a[baseA + i * sai + k * sak] * b[baseB + k * sbk + j * sbj];
        const c = baseC + i * l.ldc + j;
        let v = l.alpha * sum;
        if (args.bias) v += args.bias[j];
        if (l.beta !== 0) v += l.beta * out[c];
        if (args.activation === "gelu") {
          args.aux![c] = v;
          v = geluRef([v])[0];
        } else if (args.activation === "geluGrad") {
          v = geluBackwardRef([args.aux![c]], [v])[0];
        }
        out[c] = v;
      }
    }
  }
  return out;
}
