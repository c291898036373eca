/**
 * Matrix multiply benchmark at BERT-base shapes: the linear layers (B·T = 2048 rows; 768 -> 768,
 * 768 -> 3072, 3072 -> 768, as y = x·Wᵀ + b) and the attention scores Q·Kᵀ of 32·12 heads of
 * 64x64x64 read straight from the (B, T, H·D) layout. Each shape is warmed up (pipeline compile plus
 * one run), then timed `repeats` times; a sample submits enough dispatches to last about 0.2 s and
 * waits for `queue.onSubmittedWorkDone()`.
 *
 * Run: `deno run -A bench/matmul.ts [--quick] [--variants=fallback,tiled]`. Prints a table and one
 * JSON line.
 * @module
 */

import {
  chooseMatmulKernel,
  matmul,
  type MatmulArgs,
  matmulExtents,
  type MatmulLayout,
} from "../kernels/matmul.ts";
import { Gpu } from "../kernels/runtime.ts";

/** Options of {@linkcode benchMatmul}. */
export interface BenchMatmulOptions {
  /** Tiny shapes and 3 repeats (seconds): for CI and smoke tests. @default false */
  quick?: boolean;
  /** Variants to time. @default ["fallback"] on software adapters, ["tiled", "fallback"] otherwise */
  variants?: ("fallback" | "tiled")[];
  /** Timed samples per shape and variant. @default 5 (3 when quick) */
  repeats?: number;
}

/** One shape x variant measurement. */
export interface MatmulTiming {
  /** "MxNxK" (linear: rows x out x in), or "batch x MxNxK" for attention. */
  shape: string;
  variant: string;
  /** The kernel the variant picked for this shape. */
  kernel: string;
  gflops: { median: number; min: number; max: number };
  /** Median milliseconds per matmul. */
  medianMs: number;
}

interface BenchShape {
  name: string;
  layout: MatmulLayout;
  bias: boolean;
  flops: number;
}

function linear(rows: number, out: number, inp: number): BenchShape {
  return {
    name: `${rows}x${out}x${inp}`,
    layout: { M: rows, N: out, K: inp, transB: true },
    bias: true,
    flops: 2 * rows * out * inp,
  };
}

/** scores(B·H, T, T) = Q·Kᵀ / sqrt(D), Q and K in the (B, T, H·D) layout. */
function attention(B: number, H: number, T: number, D: number): BenchShape {
  const C = H * D;
  const btc = { stride: [T * C, D] as [number, number] };
  return {
    name: `${B}·${H} x ${T}x${T}x${D}`,
    layout: {
      M: T,
      N: T,
      K: D,
      transB: true,
      batch: B * H,
      heads: H,
      alpha: 1 / Math.sqrt(D),
      lda: C,
      ldb: C,
      strideA: btc.stride,
      strideB: btc.stride,
      strideC: [H * T * T, T * T],
    },
    bias: false,
    flops: 2 * B * H * T * T * D,
  };
}

/** The benchmark's shapes: BERT-base, or tiny ones when `quick`. */
export function matmulBenchShapes(quick = false): BenchShape[] {
  return quick
    ? [linear(64, 96, 32), linear(64, 128, 32), linear(64, 32, 128), attention(2, 2, 16, 16)]
    : [linear(2048, 768, 768), linear(2048, 3072, 768), linear(2048, 768, 3072), attention(32, 12, 64, 64)];
}

/** A deterministic, non-trivial fill (no denormals, no zeros) so timings do not depend on data. */
function pattern(n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = ((Math.imul(i, 2654435761) >>> 0) % 2001) / 1000 - 1.0005;
  return out;
}

async function elapsed(gpu: Gpu, dispatch: ReturnType<typeof matmul>, count: number): Promise<number> {
  const start = performance.now();
  gpu.run(new Array(count).fill(dispatch));
  await gpu.device.queue.onSubmittedWorkDone();
  return performance.now() - start;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * Times {@linkcode matmul} at BERT-base shapes for each variant and returns GFLOP/s (median, min,
 * max over the repeats).
 *
 * @example
 * ```ts ignore
 * const gpu = await Gpu.create();
 * console.table(await benchMatmul(gpu, { quick: true }));
 * ```
 */
export async function benchMatmul(gpu: Gpu, options: BenchMatmulOptions = {}): Promise<MatmulTiming[]> {
  const quick = options.quick ?? false;
  const variants = options.variants ?? (gpu.isFallback ? ["fallback"] : ["tiled", "fallback"]);
  const repeats = options.repeats ?? (quick ? 3 : 5);
  const results: MatmulTiming[] = [];
  for (const shape of matmulBenchShapes(quick)) {
    const ext = matmulExtents(shape.layout);
    const buffers = {
      a: gpu.upload("bench.a", pattern(ext.a)),
      b: gpu.upload("bench.b", pattern(ext.b)),
      out: gpu.buffer("bench.out", ext.out * 4),
      bias: shape.bias ? gpu.upload("bench.bias", pattern(shape.layout.N)) : undefined,
    };
    for (const variant of variants) {
      const args: MatmulArgs = { ...shape.layout, ...buffers, label: `bench ${shape.name}` };
      const dispatch = matmul(gpu, args, variant);
      await elapsed(gpu, dispatch, 1); // compiles the pipeline
      const once = await elapsed(gpu, dispatch, 1);
      const count = Math.max(1, Math.min(1000, Math.round(200 / Math.max(once, 1e-3))));
      const gflops: number[] = [];
      const ms: number[] = [];
      for (let r = 0; r < repeats; r++) {
        const t = (await elapsed(gpu, dispatch, count)) / count;
        ms.push(t);
        gflops.push(shape.flops / t / 1e6);
      }
      results.push({
        shape: shape.name,
        variant,
        kernel: chooseMatmulKernel(shape.layout, variant, gpu.isFallback),
        gflops: { median: median(gflops), min: Math.min(...gflops), max: Math.max(...gflops) },
        medianMs: median(ms),
      });
    }
    for (const buffer of Object.values(buffers)) if (buffer) gpu.free(buffer);
  }
  return results;
}

if (import.meta.main) {
  const args = Deno.args;
  const unknown = args.filter((a) => a !== "--quick" && !a.startsWith("--variants="));
  if (unknown.length) {
    throw new TypeError(`Unknown argument "${unknown[0]}": use --quick and --variants=fallback,tiled`);
  }
  const variantArg = args.find((a) => a.startsWith("--variants="));
  const variants = variantArg?.slice("--variants=".length).split(",");
  for (const v of variants ?? []) {
    if (v !== "fallback" && v !== "tiled") {
      throw new TypeError(`Unknown matmul variant "${v}": use fallback or tiled`);
    }
  }
  const gpu = await Gpu.create();
  const results = await benchMatmul(gpu, {
    quick: args.includes("--quick"),
    variants: variants as ("fallback" | "tiled")[] | undefined,
  });
  console.log(`adapter: ${gpu.report.description || gpu.report.vendor} (fallback: ${gpu.isFallback})`);
  for (const r of results) {
    const g = r.gflops;
    console.log(
      `${r.shape.padEnd(20)} ${r.variant.padEnd(9)} ${r.kernel.padEnd(10)} ${g.median.toFixed(2)} GFLOP/s ` +
        `(min ${g.min.toFixed(2)}, max ${g.max.toFixed(2)}), ${r.medianMs.toFixed(2)} ms`,
    );
  }
  console.log(JSON.stringify({ adapter: gpu.report.description, results }));
}
