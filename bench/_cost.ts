/**
 * The per-step cost account of the train suite: dispatches, distinct pipelines and host encode time of
 * one training step, and per kernel family the FLOPs and bytes its dispatches declare (kernels/runtime.ts
 * `Cost`), with a roofline estimate of the step on a named GPU.
 *
 * Roofline per dispatch: max(FLOPs / peak FLOP/s, bytes / peak bandwidth), summed. Bytes are the sizes of
 * every storage binding (each bound byte moved once: a lower bound); FLOPs are counted where a kernel
 * declares them (matmuls 2·M·N·K, AdamW, gradient norm), the rest are bandwidth-bound and counted by bytes.
 * Launch overhead and caches are left out, so the estimate is a floor, not a prediction.
 * @module
 */

import type { Dispatch, Gpu } from "../kernels/runtime.ts";
import { summarize, type Summary } from "./_stats.ts";

/** A GPU's peak figures for the roofline. */
export interface GpuPeak {
  name: string;
  /** FLOP/s (fp32, non-tensor-core). */
  flopsPerSecond: number;
  /** Bytes/s of memory bandwidth. */
  bytesPerSecond: number;
}

/** NVIDIA H100 SXM: 67 TFLOP/s fp32, 3.35 TB/s HBM3 (datasheet). */
export const H100_SXM: GpuPeak = { name: "H100 SXM", flopsPerSecond: 67e12, bytesPerSecond: 3.35e12 };

/** One kernel family's share of a step. */
export interface FamilyCost {
  family: string;
  dispatches: number;
  flops: number;
  bytes: number;
  /** Roofline estimate on the named GPU, ms. */
  estimateMs: number;
  /** GPU time measured on this adapter (timestamp queries, each dispatch in its own pass), ms. */
  measuredMs?: number;
}

/** The roofline estimate of a step. */
export interface StepEstimate {
  gpu: GpuPeak;
  /** Sum over dispatches of max(compute time, memory time), ms. */
  ms: number;
  /** FLOPs / peak alone, ms. */
  computeMs: number;
  /** Bytes / bandwidth alone, ms. */
  memoryMs: number;
}

/** The account of one training step (clear, forward, backward, optimizer). */
export interface StepAccount {
  model: string;
  batch: number;
  seq: number;
  /** Dispatches encoded for the step (counted by Gpu.encode). */
  dispatches: number;
  phases: { clear: number; forward: number; backward: number; optimizer: number };
  /** The same step with one clear, norm partial and AdamW dispatch per tensor (the per-tensor path). */
  perTensorDispatches: number;
  pipelines: number;
  /** Host time to build the step's list, encode it into one command buffer and finish it (no submit). */
  encodeMs: Summary;
  families: FamilyCost[];
  totals: { flops: number; bytes: number };
  estimate: StepEstimate;
  /** Sum of the measured per-dispatch GPU times on this adapter, ms (when timed: see timeFamilies). */
  measuredMs?: number;
}

function roofline(d: Dispatch, gpu: GpuPeak): number {
  return Math.max(d.cost.flops / gpu.flopsPerSecond, d.cost.bytes / gpu.bytesPerSecond) * 1000;
}

/**
 * Per-family FLOPs, bytes and roofline estimate of `dispatches`, sorted by estimate (largest first).
 * @example
 * ```ts ignore
 * const { families, estimate } = costOf(list, H100_SXM);
 * ```
 */
export function costOf(
  dispatches: readonly Dispatch[],
  gpu: GpuPeak,
): { families: FamilyCost[]; totals: { flops: number; bytes: number }; estimate: StepEstimate } {
  const byFamily = new Map<string, FamilyCost>();
  let flops = 0;
  let bytes = 0;
  let ms = 0;
  for (const d of dispatches) {
    const f = byFamily.get(d.cost.family) ??
      { family: d.cost.family, dispatches: 0, flops: 0, bytes: 0, estimateMs: 0 };
    const t = roofline(d, gpu);
    f.dispatches++;
    f.flops += d.cost.flops;
    f.bytes += d.cost.bytes;
    f.estimateMs += t;
    byFamily.set(d.cost.family, f);
    flops += d.cost.flops;
    bytes += d.cost.bytes;
    ms += t;
  }
  const families = [...byFamily.values()].sort((a, b) => b.estimateMs - a.estimateMs);
  return {
    families,
    totals: { flops, bytes },
    estimate: {
      gpu,
      ms,
      computeMs: flops / gpu.flopsPerSecond * 1000,
      memoryMs: bytes / gpu.bytesPerSecond * 1000,
    },
  };
}

/**
 * Times `build()` + encoding its dispatches into one command buffer + finish (not submitted), and
 * counts the dispatches encoded with Gpu.dispatchesEncoded.
 */
export function timeEncode(
  gpu: Gpu,
  build: () => Dispatch[],
  warmup: number,
  repeats: number,
): { encodeMs: Summary; dispatches: number; pipelines: number } {
  const ms: number[] = [];
  let dispatches = 0;
  let pipelines = 0;
  for (let i = 0; i < warmup + repeats; i++) {
    const before = gpu.dispatchesEncoded;
    const t0 = performance.now();
    const list = build();
    const encoder = gpu.device.createCommandEncoder({ label: "bench.encode" });
    gpu.encode(encoder, list);
    encoder.finish();
    const t1 = performance.now();
    if (i >= warmup) ms.push(t1 - t0);
    dispatches = gpu.dispatchesEncoded - before;
    pipelines = new Set(list.map((d) => d.pipeline)).size;
  }
  return { encodeMs: summarize(ms), dispatches, pipelines };
}

/**
 * Runs `dispatches` once, each in its own compute pass with timestamp writes, and adds each family's
 * measured GPU time to `families` (`measuredMs`); returns the total, or null without `timestamp-query`.
 * Separate passes add a little per-dispatch overhead, so this is an upper bound of the fused step's time.
 */
export async function timeFamilies(
  gpu: Gpu,
  dispatches: readonly Dispatch[],
  families: FamilyCost[],
): Promise<number | null> {
  const device = gpu.device;
  const list = dispatches.filter((d) => d.workgroups.every((n) => n > 0));
  if (!device.features.has("timestamp-query") || list.length === 0 || 2 * list.length > 4096) return null;
  const count = 2 * list.length;
  const querySet = device.createQuerySet({ type: "timestamp", count });
  const resolved = device.createBuffer({
    size: count * 8,
    usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
  });
  const staging = device.createBuffer({
    size: count * 8,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  const encoder = device.createCommandEncoder({ label: "bench.timeFamilies" });
  list.forEach((d, i) => {
    const pass = encoder.beginComputePass({
      timestampWrites: { querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 },
    });
    pass.setPipeline(d.pipeline);
    pass.setBindGroup(0, d.bindGroup);
    pass.dispatchWorkgroups(d.workgroups[0], d.workgroups[1], d.workgroups[2]);
    pass.end();
  });
  encoder.resolveQuerySet(querySet, 0, count, resolved, 0);
  encoder.copyBufferToBuffer(resolved, 0, staging, 0, count * 8);
  device.queue.submit([encoder.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const stamps = new BigUint64Array(staging.getMappedRange().slice(0));
  staging.unmap();
  for (const b of [staging, resolved]) b.destroy();
  querySet.destroy();
  gpu.checkErrors();
  const byFamily = new Map(families.map((f) => [f.family, f]));
  let total = 0;
  list.forEach((d, i) => {
    const ms = Number(stamps[2 * i + 1] - stamps[2 * i]) / 1e6;
    const f = byFamily.get(d.cost.family);
    if (f) f.measuredMs = (f.measuredMs ?? 0) + ms;
    total += ms;
  });
  return total;
}
