/**
 * Float16 test helpers: data padded to whole words (writeBuffer needs byte counts that are multiples
 * of 4) and an f16 NaN poison.
 * @module
 */

import { Gpu } from "../kernels/runtime.ts";

/** `values` rounded to float16; an odd count gets one f16 NaN after it to fill the last word. */
export function f16Words(values: ArrayLike<number>): Float16Array {
  const data = new Float16Array(values.length + (values.length % 2)).fill(NaN);
  data.set(Array.from(values));
  return data;
}

/** A storage buffer holding `values` rounded to float16 (see {@linkcode f16Words}). */
export function uploadF16(gpu: Gpu, label: string, values: ArrayLike<number>): GPUBuffer {
  return gpu.upload(label, f16Words(values));
}

/** Fills every half-word of `buffer` with an f16 NaN (0x7e00), so unwritten f16 elements show up. */
export function poisonF16(gpu: Gpu, buffer: GPUBuffer): void {
  gpu.write(buffer, new Uint16Array(buffer.size / 2).fill(0x7e00));
}

let withoutF16: Promise<Gpu> | null = null;

/** A device created without shader-f16 (f16 kernels must refuse it by name), one a test file. */
export function gpuWithoutF16(): Promise<Gpu> {
  withoutF16 ??= Gpu.create({ f16: false });
  return withoutF16;
}
