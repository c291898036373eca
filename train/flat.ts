/**
 * A flat arena on the GPU: every parameter-shaped tensor (parameters, gradients, AdamW moments) in
 * one buffer at the aligned offsets of {@linkcode flatLayout}. Kernels that work per tensor bind
 * views (buffer + offset + size); jobs over every tensor (clearing gradients, the gradient norm,
 * AdamW) run once per window: the whole arena when the device can bind it, else a few views of at
 * most maxStorageBufferBindingSize bytes.
 * @module
 */

import { BufferView, type Dispatch, type Gpu } from "../kernels/runtime.ts";
import { fill } from "../kernels/fill.ts";
import { FLAT_ALIGN_BYTES, type FlatLayout } from "./params.ts";
import type { Weights } from "./weights.ts";

/** One window of the arena: a view and the arena element it starts at. */
export interface FlatWindow {
  view: BufferView;
  /** Arena element of the window's first element. */
  first: number;
  /** Elements in the window. */
  length: number;
}

/** Tensors of one layout in one buffer. */
export class FlatTensors {
  readonly gpu: Gpu;
  readonly layout: FlatLayout;
  /** The arena. */
  readonly buffer: GPUBuffer;
  /** One view per tensor, by name. */
  readonly views: Map<string, GPUBuffer> = new Map();
  /** Views covering the arena in order, each at most the device's largest binding. */
  readonly windows: FlatWindow[] = [];

  /**
   * Allocates the arena (zeroed) for `layout`. `windowBytes` (tests) caps the windows below the
   * device's largest binding.
   */
  constructor(gpu: Gpu, layout: FlatLayout, label: string, readonly windowBytes = Infinity) {
    this.gpu = gpu;
    this.layout = layout;
    const bytes = layout.total * 4;
    if (bytes > gpu.device.limits.maxBufferSize) {
      throw new RangeError(
        `The model's ${label} arena needs ${bytes} bytes but the device's maxBufferSize is ${gpu.device.limits.maxBufferSize}: use a smaller model or another adapter`,
      );
    }
    this.buffer = gpu.buffer(label, bytes, undefined, false);
    for (const e of layout.entries) {
      this.views.set(e.name, new BufferView(this.buffer, e.offset * 4, e.length * 4, `${label}:${e.name}`));
    }
    const limits = gpu.device.limits;
    const maxBytes = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize, windowBytes);
    if (maxBytes < FLAT_ALIGN_BYTES) {
      throw new RangeError(`Arena windows need at least ${FLAT_ALIGN_BYTES} bytes`);
    }
    const step = Math.floor(maxBytes / FLAT_ALIGN_BYTES) * (FLAT_ALIGN_BYTES / 4);
    for (let first = 0; first < layout.total; first += step) {
      const length = Math.min(step, layout.total - first);
      const view = new BufferView(
        this.buffer,
        first * 4,
        length * 4,
        `${label}[${first}..${first + length})`,
      );
      this.windows.push({ view, first, length });
    }
  }

  /**
   * One view over tensors that sit back to back in the arena (a pack, or part of one), in the given
   * order: what fused kernels bind (e.g. Q|K|V weights as one [3·hidden, hidden] weight).
   * @throws {RangeError} for an unknown name or tensors that do not follow each other.
   */
  span(names: readonly string[]): GPUBuffer {
    const key = names.join("|");
    const cached = this.#spans.get(key);
    if (cached) return cached;
    const byName = new Map(this.layout.entries.map((e) => [e.name, e]));
    const parts = names.map((n) => {
      const e = byName.get(n);
      if (!e) throw new RangeError(`Unknown tensor "${n}" in the ${this.buffer.label} arena`);
      return e;
    });
    parts.forEach((e, i) => {
      if (i > 0 && parts[i - 1].offset + parts[i - 1].length !== e.offset) {
        throw new RangeError(
          `Tensors "${
            parts[i - 1].name
          }" and "${e.name}" are not adjacent in the ${this.buffer.label} arena: give them one pack in train/params.ts`,
        );
      }
    });
    const last = parts[parts.length - 1];
    const first = parts[0].offset;
    const view = new BufferView(this.buffer, first * 4, (last.offset + last.length - first) * 4, key);
    this.#spans.set(key, view);
    return view;
  }
  #spans = new Map<string, GPUBuffer>();

  /**
   * One view covering the named tensors (not necessarily adjacent) and each one's element offset in
   * it: what a kernel writing several small tensors in one dispatch binds.
   * @throws {RangeError} for an unknown name, or a span past the device's largest binding.
   */
  cover(names: readonly string[]): { view: GPUBuffer; at: (name: string) => number } {
    const byName = new Map(this.layout.entries.map((e) => [e.name, e]));
    const parts = names.map((n) => {
      const e = byName.get(n);
      if (!e) throw new RangeError(`Unknown tensor "${n}" in the ${this.buffer.label} arena`);
      return e;
    });
    const align = FLAT_ALIGN_BYTES / 4;
    const first = Math.floor(Math.min(...parts.map((e) => e.offset)) / align) * align;
    const end = Math.max(...parts.map((e) => e.offset + e.length));
    const limit = this.gpu.device.limits.maxStorageBufferBindingSize;
    if ((end - first) * 4 > limit) {
      throw new RangeError(
        `Tensors ${names.join(", ")} span ${
          (end - first) * 4
        } bytes of the ${this.buffer.label} arena, past the device's maxStorageBufferBindingSize ${limit}: use a smaller model or another adapter`,
      );
    }
    const key = `cover:${first}..${end}`;
    let view = this.#spans.get(key);
    if (!view) {
      view = new BufferView(
        this.buffer,
        first * 4,
        (end - first) * 4,
        `${this.buffer.label}[${first}..${end})`,
      );
      this.#spans.set(key, view);
    }
    return { view, at: (name) => byName.get(name)!.offset - first };
  }

  /** Dispatches that zero the whole arena (one per window). */
  clear(): Dispatch[] {
    return this.windows.map((w) => fill(this.gpu, w.view, w.length, 0));
  }

  /** Uploads tensors by name (queued before the next submit); every name must be in the layout. */
  write(weights: Weights, what = "parameter"): void {
    for (const [name, data] of weights) {
      const view = this.views.get(name);
      if (!view) throw new RangeError(`Unknown ${what} "${name}"`);
      if (data.length * 4 !== view.size) {
        throw new RangeError(`${what} "${name}" has ${data.length} values, expected ${view.size / 4}`);
      }
      this.gpu.write(view, data);
    }
  }

  /** Reads every tensor back, by name in layout order. */
  async read(): Promise<Weights> {
    const { entries } = this.layout;
    const values = await this.gpu.readManyF32(
      entries.map((e) => ({ buffer: this.views.get(e.name)!, count: e.length })),
    );
    return new Map(entries.map((e, i) => [e.name, values[i]]));
  }
}
