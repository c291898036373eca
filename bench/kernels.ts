/**
 * Kernel suite: matmul GFLOP/s at BERT-base shapes (through {@linkcode benchMatmul}: 2,048 tokens
 * through 768 -> 768, 768 -> 3072, 3072 -> 768, and the 32·12 attention heads' Q·Kᵀ), and the
 * memory-bound row kernels in GB/s: LayerNorm forward with the fused residual add (2,048 rows of 768,
 * as every encoder layer runs it) and the attention softmax forward (32·12 heads of 64x64); and each
 * fused kernel against the unfused pair it replaces in the engine (reference: the unfused pair, same
 * run, same shapes): FFN matmul + GELU, its dgrad + GELU backward, the weight gradient + bias
 * gradient, softmax + attention dropout and their backward.
 *
 * Timing: the row kernels use {@linkcode GpuTimer} (timestamp queries around the compute pass when the
 * device has `timestamp-query`, else wall clock to `onSubmittedWorkDone`); benchMatmul uses the wall
 * clock over batches of dispatches lasting about 0.2 s, where submit latency is amortised.
 *
 * The reference: a TypeScript CPU loop is no fair reference for a GPU kernel, so the suite reports
 * GFLOP/s on its own and, given the GPU script's torch.matmul figures (bench/gpu/torch_bench.py,
 * measured in the same run on the same GPU), the ratio ours / torch.matmul.
 * @module
 */

import type { Dispatch, Gpu } from "../kernels/runtime.ts";
import { layerNormForward } from "../kernels/layernorm.ts";
import { attentionSoftmaxBackward, attentionSoftmaxForward } from "../kernels/softmax.ts";
import { matmul as matmulDispatch } from "../kernels/matmul.ts";
import { geluBackward, geluForward } from "../kernels/gelu.ts";
import { dropout } from "../kernels/dropout.ts";
import { biasGrad } from "../kernels/bias_grad.ts";
import { benchMatmul, type MatmulTiming } from "./matmul.ts";
import { GpuTimer, type TimerMethod } from "./_timer.ts";
import { mapSummary, summarize, type Summary } from "./_stats.ts";

/** torch.matmul GFLOP/s by benchMatmul's shape name, from the GPU script (bench/gpu/torch_bench.py). */
export type TorchMatmulReference = Record<string, Summary>;

/** Options of {@linkcode benchKernels}. */
export interface BenchKernelsOptions {
  /** Tiny shapes and 2 repeats (seconds): for smoke tests. @default false */
  quick?: boolean;
  /** Timed samples per kernel. @default 5, or 2 when quick */
  repeats?: number;
  /** torch.matmul figures from the same GPU run, to report ours / torch. */
  torchMatmul?: TorchMatmulReference;
}

/** One row kernel's throughput. */
export interface RowKernelTiming {
  kernel: "layerNormForward (residual)" | "attentionSoftmaxForward";
  shape: string;
  /** The row-kernel variant the adapter gets ("fallback": a thread per row; "workgroup"). */
  variant: string;
  /** Bytes one call reads plus writes, each element once. */
  bytes: number;
  /** Milliseconds per call. */
  ms: Summary;
  gbps: Summary;
  /** How the samples were timed (a timestamp sample that looked implausible counts as wall clock). */
  timer: TimerMethod;
}

/** One matmul shape, with the torch.matmul reference when the GPU script supplied it. */
export interface MatmulRow extends MatmulTiming {
  /** torch.matmul float32 GFLOP/s at the same shape (GPU script only). */
  torchGflops?: Summary;
  /** ours median / torch median: > 1 means ours is faster. Reference: torch.matmul. */
  vsTorch?: number;
}

/** A fused kernel against the unfused dispatches it replaces, timed in the same run. */
export interface FusedTiming {
  fused: string;
  shape: string;
  /** Milliseconds per call of the unfused dispatches (the reference). */
  unfusedMs: Summary;
  /** Milliseconds per call of the fused dispatch. */
  fusedMs: Summary;
  /** unfused median / fused median: > 1 means the fused kernel is faster. */
  speedup: number;
  timer: TimerMethod;
}

/** What {@linkcode benchKernels} measured. */
export interface KernelsBenchResult {
  matmul: MatmulRow[];
  rows: RowKernelTiming[];
  fused: FusedTiming[];
  notes: string[];
}

/** Deterministic non-zero fill so timings never depend on data (no denormals). */
function pattern(n: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = scale * (((Math.imul(i, 2654435761) >>> 0) % 2001) / 1000 - 1.0005);
  return out;
}

/**
 * Times the kernels; the matmul rows carry `vsTorch` when `torchMatmul` is given.
 * @example
 * ```ts ignore
 * import { Gpu } from "../kernels/runtime.ts";
 * import { benchKernels } from "./kernels.ts";
 * const result = await benchKernels(await Gpu.create(), { quick: true });
 * console.log(result.rows.map((r) => `${r.kernel}: ${r.gbps.median.toFixed(2)} GB/s`));
 * ```
 */
export async function benchKernels(gpu: Gpu, options: BenchKernelsOptions = {}): Promise<KernelsBenchResult> {
  const quick = options.quick ?? false;
  const repeats = options.repeats ?? (quick ? 2 : 5);
  const notes: string[] = [];
  const matmul: MatmulRow[] = (await benchMatmul(gpu, { quick, repeats })).map((m) => {
    const torch = options.torchMatmul?.[m.shape];
    return torch ? { ...m, torchGflops: torch, vsTorch: m.gflops.median / torch.median } : m;
  });
  notes.push("matmul: wall clock over batches of dispatches lasting about 0.2 s (benchMatmul)");
  if (!options.torchMatmul) {
    notes.push("matmul reference: none on this run (torch.matmul figures come from the GPU script)");
  }

  const timer = new GpuTimer(gpu);
  const timerMethod = timer.method;
  const variant = gpu.isFallback ? "fallback" : "workgroup";
  const rows: RowKernelTiming[] = [];
  const fused: FusedTiming[] = [];
  const target = quick ? 20 : 150; // ms a sample
  /** Median-comparable ms per call of `dispatches` (count calls per sample, `repeats` samples). */
  const msPerCall = async (dispatches: Dispatch[]): Promise<{ ms: number[]; method: TimerMethod }> => {
    await timer.time(dispatches); // compiles the pipelines
    const once = (await timer.time(dispatches)).ms;
    const count = Math.max(1, Math.min(2000, Math.round(target / Math.max(once, 1e-3))));
    const ms: number[] = [];
    let method: TimerMethod = timer.method;
    for (let r = 0; r < repeats; r++) {
      const t = await timer.time(dispatches, count);
      if (t.method === "wall clock") method = "wall clock";
      ms.push(t.ms / count);
    }
    return { ms, method };
  };
  const compare = async (name: string, shape: string, unfused: Dispatch[], one: Dispatch) => {
    // Interleaved, so drift on a shared machine hits both sides alike.
    const u: number[] = [];
    const f: number[] = [];
    let method: TimerMethod = timer.method;
    for (let r = 0; r < 2; r++) {
      const a = await msPerCall(unfused);
      const b = await msPerCall([one]);
      u.push(...a.ms);
      f.push(...b.ms);
      if (a.method === "wall clock" || b.method === "wall clock") method = "wall clock";
    }
    const unfusedMs = summarize(u);
    const fusedMs = summarize(f);
    fused.push({
      fused: name,
      shape,
      unfusedMs,
      fusedMs,
      speedup: unfusedMs.median / fusedMs.median,
      timer: method,
    });
  };
  const sample = async (
    kernel: RowKernelTiming["kernel"],
    shape: string,
    bytes: number,
    dispatch: Dispatch,
  ) => {
    await timer.time([dispatch]); // compiles the pipeline
    const once = (await timer.time([dispatch])).ms;
    const count = Math.max(1, Math.min(2000, Math.round(target / Math.max(once, 1e-3))));
    const ms: number[] = [];
    let method: TimerMethod = timer.method;
    for (let r = 0; r < repeats; r++) {
      const t = await timer.time([dispatch], count);
      if (t.method === "wall clock") method = "wall clock";
      ms.push(t.ms / count);
    }
    const msSummary = summarize(ms);
    rows.push({
      kernel,
      shape,
      variant,
      bytes,
      ms: msSummary,
      gbps: mapSummary(msSummary, (t) => bytes / t / 1e6),
      timer: method,
    });
  };

  try {
    // LayerNorm(x + residual) as each encoder layer runs it: rows = B·T tokens, cols = hidden.
    const [rowsN, cols] = quick ? [64, 32] : [2048, 768];
    const f = (label: string, data: Float32Array) => gpu.upload(label, data);
    const ln = {
      x: f("bench.ln.x", pattern(rowsN * cols)),
      residual: f("bench.ln.residual", pattern(rowsN * cols, 0.5)),
      sum: gpu.buffer("bench.ln.sum", rowsN * cols * 4),
      gamma: f("bench.ln.gamma", pattern(cols, 0.1).map((v) => 1 + v)),
      beta: f("bench.ln.beta", pattern(cols, 0.1)),
      out: gpu.buffer("bench.ln.out", rowsN * cols * 4),
      mean: gpu.buffer("bench.ln.mean", rowsN * 4),
      rstd: gpu.buffer("bench.ln.rstd", rowsN * 4),
    };
    // Reads x, residual, gamma, beta; writes sum, out, mean, rstd.
    const lnBytes = (4 * rowsN * cols + 2 * cols + 2 * rowsN) * 4;
    await sample(
      "layerNormForward (residual)",
      `${rowsN}x${cols}`,
      lnBytes,
      layerNormForward(gpu, { ...ln, rows: rowsN, cols, eps: 1e-12 }),
    );
    for (const b of Object.values(ln)) gpu.free(b);

    // softmax(scores / sqrt(D) + mask) over keys: (B·H, T, T) scores, (B, T) mask.
    const [B, H, T] = quick ? [2, 2, 16] : [32, 12, 64];
    const sm = {
      scores: f("bench.sm.scores", pattern(B * H * T * T, 4)),
      mask: f("bench.sm.mask", new Float32Array(B * T).fill(1)),
      probs: gpu.buffer("bench.sm.probs", B * H * T * T * 4),
    };
    const smBytes = (2 * B * H * T * T + B * T) * 4;
    await sample(
      "attentionSoftmaxForward",
      `${B}·${H} x ${T}x${T}`,
      smBytes,
      attentionSoftmaxForward(gpu, { ...sm, batch: B, heads: H, T, scale: 1 / 8 }),
    );
    for (const b of Object.values(sm)) gpu.free(b);

    // Fused vs unfused at BERT-base widths. The FFN matmuls run 2,048 tokens on a GPU; on a software
    // adapter 256 (4 x 64), since one 2,048-token call takes seconds there and the GELU's share is the same.
    const tokens = quick ? 64 : gpu.isFallback ? 256 : 2048;
    const [C, I] = quick ? [32, 128] : [768, 3072];
    const ffn = {
      x: f("bench.ffn.x", pattern(tokens * C)),
      w1: f("bench.ffn.w1", pattern(I * C, 0.05)),
      b1: f("bench.ffn.b1", pattern(I, 0.1)),
      w2: f("bench.ffn.w2", pattern(C * I, 0.05)),
      dy: f("bench.ffn.dy", pattern(tokens * C)),
      pre: gpu.buffer("bench.ffn.pre", tokens * I * 4),
      out: gpu.buffer("bench.ffn.out", tokens * I * 4),
      d: gpu.buffer("bench.ffn.d", tokens * I * 4),
    };
    const fwd = { a: ffn.x, b: ffn.w1, bias: ffn.b1, M: tokens, N: I, K: C, transB: true };
    const ffnShape = `${tokens}x${C} -> ${I}`;
    await compare(
      "matmul + bias + GELU (FFN forward)",
      ffnShape,
      [
        matmulDispatch(gpu, { ...fwd, out: ffn.pre }),
        geluForward(gpu, { x: ffn.pre, out: ffn.out, n: tokens * I }),
      ],
      matmulDispatch(gpu, { ...fwd, out: ffn.out, activation: "gelu", aux: ffn.pre }),
    );
    const dgrad = { a: ffn.dy, b: ffn.w2, M: tokens, N: I, K: C };
    await compare(
      "dgrad matmul + GELU backward",
      `${tokens}x${C} -> ${I}`,
      [
        matmulDispatch(gpu, { ...dgrad, out: ffn.d }),
        geluBackward(gpu, { x: ffn.pre, dout: ffn.d, dx: ffn.d, n: tokens * I }),
      ],
      matmulDispatch(gpu, { ...dgrad, out: ffn.d, activation: "geluGrad", aux: ffn.pre }),
    );
    // Weight and bias gradients of the FFN's first linear: dW += dYᵀ·X and db += colsum(dY).
    const dw = { a: ffn.d, b: ffn.x, M: I, N: C, K: tokens, transA: true, beta: 1 };
    const dwOut = gpu.buffer("bench.ffn.dw", I * C * 4);
    const db = gpu.buffer("bench.ffn.db", I * 4);
    await compare(
      "dW matmul + bias gradient",
      `${tokens} tokens, ${I} x ${C}`,
      [
        matmulDispatch(gpu, { ...dw, out: dwOut }),
        ...biasGrad(gpu, { dy: ffn.d, dbias: db, rows: tokens, cols: I, accumulate: true }),
      ],
      matmulDispatch(gpu, { ...dw, out: dwOut, rowSum: db }),
    );
    gpu.free(dwOut);
    gpu.free(db);
    for (const b of Object.values(ffn)) gpu.free(b);

    const n = B * H * T * T;
    const sd = {
      scores: f("bench.sd.scores", pattern(n, 4)),
      mask: f("bench.sd.mask", new Float32Array(B * T).fill(1)),
      probs: gpu.buffer("bench.sd.probs", n * 4),
      dropped: gpu.buffer("bench.sd.dropped", n * 4),
      grad: f("bench.sd.grad", pattern(n)),
      dscores: gpu.buffer("bench.sd.dscores", n * 4),
      seed: gpu.upload("bench.sd.seed", new Uint32Array([7, 0, 0, 0])),
    };
    const drop = { p: 0.1, seed: sd.seed, stream: 0 };
    const smArgs = { scores: sd.scores, mask: sd.mask, probs: sd.probs, batch: B, heads: H, T, scale: 1 / 8 };
    await compare(
      "scale + mask + softmax + dropout",
      `${B}·${H} x ${T}x${T}`,
      [attentionSoftmaxForward(gpu, smArgs), dropout(gpu, { x: sd.probs, out: sd.dropped, n, ...drop })],
      attentionSoftmaxForward(gpu, { ...smArgs, dropout: { ...drop, dropped: sd.dropped } }),
    );
    // Into a separate output (the engine runs in place, at the same cost), so repeated calls keep
    // reading the same gradient instead of shrinking it towards denormals.
    const bw = { probs: sd.probs, dprobs: sd.grad, dscores: sd.dscores, rows: B * H * T, T, scale: 1 / 8 };
    await compare(
      "dropout backward + softmax backward",
      `${B}·${H} x ${T}x${T}`,
      [
        dropout(gpu, { x: sd.grad, out: sd.dropped, n, ...drop }),
        attentionSoftmaxBackward(gpu, { ...bw, dprobs: sd.dropped }),
      ],
      attentionSoftmaxBackward(gpu, { ...bw, dropout: drop }),
    );
    for (const b of Object.values(sd)) gpu.free(b);
  } finally {
    timer.destroy();
  }
  notes.push(
    `LayerNorm/softmax: ${
      timerMethod === "timestamp-query" ? "timestamp queries around the pass" : "wall clock"
    }` +
      `; GB/s counts each element read or written once`,
  );
  notes.push(
    "fused: speedup = unfused median / fused median over interleaved samples (> 1: fused is faster)",
  );
  return { matmul, rows, fused, notes };
}
