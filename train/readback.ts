/**
 * Deferred readback of a few scalars per step (loss, gradient norm): the step's encoder copies them
 * into a staging buffer from a small ring; the host maps it later, so the GPU never waits for the CPU.
 * @module
 */

import type { Gpu } from "../kernels/runtime.ts";

/** A slot's copy, resolved once the GPU finished the step. */
export type Pending = Promise<Float32Array>;

/** A ring of MAP_READ staging buffers of `floats` values each. */
export class ReadbackRing {
  #gpu: Gpu;
  #bytes: number;
  #free: GPUBuffer[] = [];

  constructor(gpu: Gpu, floats: number) {
    this.#gpu = gpu;
    this.#bytes = Math.ceil((floats * 4) / 16) * 16;
  }

  /**
   * Records copies of `sources` ([buffer, float offset, count]) into one staging buffer and returns
   * a function to call after `queue.submit` that maps it.
   */
  copy(encoder: GPUCommandEncoder, sources: readonly [GPUBuffer, number, number][]): () => Pending {
    const staging = this.#free.pop() ?? this.#gpu.device.createBuffer({
      label: "readback",
      size: this.#bytes,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    let at = 0;
    for (const [buffer, offset, count] of sources) {
      encoder.copyBufferToBuffer(buffer, offset * 4, staging, at * 4, count * 4);
      at += count;
    }
    const total = at;
    return async () => {
      await staging.mapAsync(GPUMapMode.READ);
      const values = new Float32Array(staging.getMappedRange().slice(0, total * 4));
      staging.unmap();
      this.#free.push(staging);
      return values;
    };
  }
}
