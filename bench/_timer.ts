/**
 * GPU time of a list of dispatches: a timestamp query set around one compute pass (begin and end of
 * pass), resolved and read back, when the device has `timestamp-query`; otherwise the wall clock from
 * submit to `queue.onSubmittedWorkDone()`. Both are measured on every sample, so a timestamp that is
 * implausible (zero, negative, or longer than the wall clock: wgpu resolves raw ticks, which are
 * nanoseconds on NVIDIA and lavapipe but not on every GPU) falls back to the wall clock for that sample
 * and says so.
 * @module
 */

import type { Dispatch, Gpu } from "../kernels/runtime.ts";

/** How a sample was timed. */
export type TimerMethod = "timestamp-query" | "wall clock";

/** One timed submit. */
export interface GpuSample {
  /** The figure to use: the timestamp span when plausible, else `wallMs`. */
  ms: number;
  /** Submit to completion on the host clock (includes submit and readback latency). */
  wallMs: number;
  method: TimerMethod;
}

/** Times compute passes on one device. */
export class GpuTimer {
  readonly gpu: Gpu;
  #query: { set: GPUQuerySet; resolve: GPUBuffer; read: GPUBuffer } | null = null;

  constructor(gpu: Gpu) {
    this.gpu = gpu;
    if (gpu.device.features.has("timestamp-query")) {
      const device = gpu.device;
      this.#query = {
        set: device.createQuerySet({ label: "bench.timer", type: "timestamp", count: 2 }),
        resolve: device.createBuffer({
          label: "bench.timer.resolve",
          size: 16,
          usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
        }),
        read: device.createBuffer({
          label: "bench.timer.read",
          size: 16,
          usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
        }),
      };
    }
  }

  /** "timestamp-query" when the device has the feature (a sample may still fall back). */
  get method(): TimerMethod {
    return this.#query ? "timestamp-query" : "wall clock";
  }

  /**
   * Submits `dispatches` `repeat` times in one compute pass and returns how long the pass took.
   * @example
   * ```ts ignore
   * const timer = new GpuTimer(gpu);
   * const { ms, method } = await timer.time([dispatch], 10); // ten dispatches, one pass
   * ```
   */
  async time(dispatches: readonly Dispatch[], repeat = 1): Promise<GpuSample> {
    const { gpu } = this;
    gpu.checkAlive();
    const encoder = gpu.device.createCommandEncoder({ label: "bench.timer" });
    const q = this.#query;
    const pass = encoder.beginComputePass(
      q ? { timestampWrites: { querySet: q.set, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } } : {},
    );
    for (let r = 0; r < repeat; r++) {
      for (const d of dispatches) {
        if (d.workgroups.some((n) => n === 0)) continue;
        pass.setPipeline(d.pipeline);
        pass.setBindGroup(0, d.bindGroup);
        pass.dispatchWorkgroups(...d.workgroups);
      }
    }
    pass.end();
    if (q) {
      encoder.resolveQuerySet(q.set, 0, 2, q.resolve, 0);
      encoder.copyBufferToBuffer(q.resolve, 0, q.read, 0, 16);
    }
    const t0 = performance.now();
    gpu.device.queue.submit([encoder.finish()]);
    await gpu.device.queue.onSubmittedWorkDone();
    if (!q) return { ms: performance.now() - t0, wallMs: performance.now() - t0, method: "wall clock" };
    await q.read.mapAsync(GPUMapMode.READ);
    const wallMs = performance.now() - t0;
    const [begin, end] = new BigUint64Array(q.read.getMappedRange().slice(0));
    q.read.unmap();
    gpu.checkErrors();
    const spanMs = Number(end - begin) / 1e6;
    const plausible = end > begin && spanMs <= wallMs * 1.05;
    return plausible
      ? { ms: spanMs, wallMs, method: "timestamp-query" }
      : { ms: wallMs, wallMs, method: "wall clock" };
  }

  /** Frees the query set and its buffers. */
  destroy(): void {
    this.#query?.set.destroy();
    this.#query?.resolve.destroy();
    this.#query?.read.destroy();
    this.#query = null;
  }
}
