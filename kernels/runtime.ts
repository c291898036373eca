/**
 * The small runtime every kernel uses: buffers (with a byte count), a pipeline cache keyed by
 * WGSL source, prepared dispatches, uploads and readbacks.
 *
 * A kernel function returns a {@linkcode Dispatch}: pipeline, bind group and workgroup count, built
 * once. A model records its dispatches for a batch shape once and replays them every step, so the hot
 * path allocates nothing.
 * @module
 */

import { type AdapterReport, requestDevice, type RequestDeviceOptions } from "./device.ts";

/** What one dispatch costs, for the bench's per-step account (kernels declare FLOPs where they know them). */
export interface Cost {
  /** Kernel family, e.g. "matmul", "layerNormForward" (default: the label up to its first "."). */
  family: string;
  /** Floating-point operations, when the kernel declares them (0 = not counted: bandwidth-bound). */
  flops: number;
  /** Bytes of every storage binding (each bound byte read or written once: a lower bound of traffic). */
  bytes: number;
}

/** One prepared compute dispatch. */
export interface Dispatch {
  /** The kernel's name, in error messages. */
  label: string;
  /** Its cost record. */
  cost: Cost;
  /** The compiled compute pipeline (cached by WGSL source). */
  pipeline: GPUComputePipeline;
  /** The kernel's uniform parameters and storage buffers. */
  bindGroup: GPUBindGroup;
  /** Workgroup counts in x, y and z. */
  workgroups: [number, number, number];
}

/**
 * Storage type of a kernel's activation buffers: "f32", or "f16" (mixed precision; needs the device's
 * shader-f16 feature). Arithmetic stays f32 either way: kernels convert on load and on store.
 */
export type Dtype = "f32" | "f16";

/** Bytes of one element of `dtype`. */
export function dtypeBytes(dtype: Dtype): number {
  return dtype === "f16" ? 2 : 4;
}

/** The WGSL directive a shader storing any of `dtypes` needs first ("enable f16;" or nothing). */
export function wgslEnable(...dtypes: (Dtype | undefined)[]): string {
  return dtypes.includes("f16") ? "enable f16;\n" : "";
}

/**
 * Throws, naming the kernel, when `dtype` is f16 and the device was created without shader-f16.
 * @param what the kernel or feature that asked for f16 (named in the message)
 */
export function requireDtype(gpu: Gpu, dtype: Dtype | undefined, what: string): void {
  if (dtype === "f16" && !gpu.device.features.has("shader-f16")) {
    throw new Error(
      `${what}: float16 needs the WebGPU feature "shader-f16", which this adapter (${
        gpu.report.description || "unknown"
      }) does not offer: use f32 (--precision f32), or an adapter with shader-f16`,
    );
  }
}

/** Rounds every value to the nearest float16 (CPU references of f16 kernels). */
export function roundF16(x: ArrayLike<number>): Float64Array {
  return Float64Array.from(x, (v) => Math.f16round(v));
}

/** A scalar field of a kernel's uniform parameter struct, in WGSL declaration order. */
export type Param = ["u32" | "i32" | "f32", number];

/** Packs scalar fields into a uniform buffer image (16-byte padded), in the given order. */
export function packParams(fields: readonly Param[]): ArrayBuffer {
  const bytes = Math.max(16, Math.ceil((fields.length * 4) / 16) * 16);
  const buf = new ArrayBuffer(bytes);
  const view = new DataView(buf);
  fields.forEach(([type, value], i) => {
    if (type === "f32") view.setFloat32(i * 4, value, true);
    else if (type === "i32") view.setInt32(i * 4, value, true);
    else {
      if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
        throw new RangeError(`Kernel parameter ${i} must be a u32, got ${value}`);
      }
      view.setUint32(i * 4, value, true);
    }
  });
  return buf;
}

/**
 * A tensor inside a larger buffer (a flat parameter arena): kernels take it where they take a
 * buffer and {@linkcode Gpu.dispatch} binds it as (buffer, offset, size). It cannot be mapped or
 * destroyed; {@linkcode Gpu.write} and the reads resolve its offset.
 */
export class BufferView implements GPUBuffer {
  /** The buffer that holds the tensor. */
  readonly buffer: GPUBuffer;
  /** Byte offset in `buffer` (a multiple of minStorageBufferOffsetAlignment). */
  readonly offset: number;
  /** Bytes of the tensor. */
  readonly size: number;
  label: string;

  constructor(buffer: GPUBuffer, offset: number, size: number, label: string) {
    if (offset % 4 !== 0 || size % 4 !== 0 || size < 4 || offset + size > buffer.size) {
      throw new RangeError(
        `View "${label}" [${offset}, ${
          offset + size
        }) does not fit buffer "${buffer.label}" (${buffer.size} bytes) in whole words`,
      );
    }
    this.buffer = buffer;
    this.offset = offset;
    this.size = size;
    this.label = label;
  }
  get usage(): GPUFlagsConstant {
    return this.buffer.usage;
  }
  get mapState(): GPUBufferMapState {
    return this.buffer.mapState;
  }
  mapAsync(): Promise<undefined> {
    return Promise.reject(new Error(`View "${this.label}" cannot be mapped; read it with Gpu.read()`));
  }
  getMappedRange(): never {
    throw new Error(`View "${this.label}" cannot be mapped; read it with Gpu.read()`);
  }
  unmap(): never {
    throw new Error(`View "${this.label}" cannot be mapped`);
  }
  destroy(): never {
    throw new Error(`View "${this.label}" is part of "${this.buffer.label}": free that buffer instead`);
  }
}

/** The buffer and byte offset a buffer or view stands for. */
export function resolveBuffer(b: GPUBuffer): { buffer: GPUBuffer; offset: number } {
  return b instanceof BufferView ? { buffer: b.buffer, offset: b.offset } : { buffer: b, offset: 0 };
}

/** Storage usage for buffers kernels read and write. */
export const STORAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/**
 * A WebGPU device plus the bookkeeping kernels share. Create one with {@linkcode Gpu.create} and pass
 * it to training and evaluation calls to share one device between them.
 * @example
 * ```ts
 * import { Gpu } from "./runtime.ts";
 * const gpu = await Gpu.create();
 * console.log(typeof gpu.report.description, typeof gpu.isFallback); // string boolean
 * gpu.device.destroy();
 * ```
 */
export class Gpu {
  /** The WebGPU device every buffer and pipeline belongs to. */
  readonly device: GPUDevice;
  /** What the adapter is: vendor, description, software or not, limits. */
  readonly report: AdapterReport;
  #pipelines = new Map<string, GPUComputePipeline>();
  #lost: string | null = null;
  #errors: string[] = [];
  /** Bytes currently allocated through {@linkcode Gpu.buffer} and {@linkcode Gpu.uniform}. */
  bytesAllocated = 0;
  /** Dispatches recorded by {@linkcode Gpu.encode} so far (the bench counts a step with it). */
  dispatchesEncoded = 0;

  /**
   * Wraps a device; {@linkcode Gpu.create} requests one with the limits training needs.
   * @param device The WebGPU device.
   * @param report What its adapter is (`describeAdapter()` of kernels/device.ts).
   */
  constructor(device: GPUDevice, report: AdapterReport) {
    this.device = device;
    this.report = report;
    device.lost.then((info) => {
      this.#lost = `${info.reason ?? "unknown"}: ${info.message}`;
    });
    // Shader compile and validation errors surface at the next readback with the object's label.
    device.addEventListener("uncapturederror", (event) => {
      this.#errors.push((event as GPUUncapturedErrorEvent).error.message);
    });
  }

  /** Throws the first WebGPU validation error reported since the last check (names the label). */
  checkErrors(): void {
    if (this.#errors.length) {
      const [first] = this.#errors;
      const more = this.#errors.length > 1 ? ` (and ${this.#errors.length - 1} more)` : "";
      this.#errors = [];
      throw new Error(`WebGPU error: ${first}${more}`);
    }
  }

  /**
   * Requests a device (see {@linkcode requestDevice}) and wraps it.
   * @param options Extra limits, the power preference and whether to ask for shader-f16.
   * @returns The device, ready for training, evaluation and kernels.
   * @throws {Error} without WebGPU or an adapter; {RangeError} naming a limit the adapter lacks.
   */
  static async create(options: RequestDeviceOptions = {}): Promise<Gpu> {
    const { device, report } = await requestDevice(options);
    return new Gpu(device, report);
  }

  /** True on software adapters (llvmpipe): kernels pick variants without shared-memory tiles. */
  get isFallback(): boolean {
    return this.report.isFallback;
  }

  /** Throws a clear error if the device was lost. */
  checkAlive(): void {
    if (this.#lost !== null) {
      throw new Error(`The WebGPU device was lost (${this.#lost}); create a new Gpu and reload the model`);
    }
  }

  /** A compute pipeline for WGSL `code` (entry point `main`), cached by its source. */
  pipeline(label: string, code: string): GPUComputePipeline {
    let p = this.#pipelines.get(code);
    if (!p) {
      this.checkAlive();
      const module = this.device.createShaderModule({ label, code });
      p = this.device.createComputePipeline({
        label,
        layout: "auto",
        compute: { module, entryPoint: "main" },
      });
      this.#pipelines.set(code, p);
    }
    return p;
  }

  /**
   * Allocates a storage buffer of `byteSize` bytes (rounded up to 16); checks the device limits.
   * `bindWhole: false` (arenas bound through views) lifts the check against maxStorageBufferBindingSize.
   */
  buffer(label: string, byteSize: number, usage = STORAGE, bindWhole = true): GPUBuffer {
    this.checkAlive();
    const size = Math.max(16, Math.ceil(byteSize / 16) * 16);
    const limits = this.device.limits;
    if ((bindWhole && size > limits.maxStorageBufferBindingSize) || size > limits.maxBufferSize) {
      const limit = size > limits.maxBufferSize ? "maxBufferSize" : "maxStorageBufferBindingSize";
      throw new RangeError(
        `Buffer "${label}" needs ${size} bytes but the device's ${limit} is ${
          limits[limit as keyof GPUSupportedLimits]
        }: use a smaller batch size or sequence length`,
      );
    }
    this.bytesAllocated += size;
    return this.device.createBuffer({ label, size, usage });
  }

  /** A storage buffer holding `data`. */
  upload(label: string, data: Float32Array | Float16Array | Int32Array | Uint32Array): GPUBuffer {
    const buf = this.buffer(label, data.byteLength);
    this.write(buf, data);
    return buf;
  }

  /** Writes `data` into `buffer` (or a view) at byte `offset` (queued before the next submit). */
  write(target: GPUBuffer, data: ArrayBufferView | ArrayBuffer, offset = 0): void {
    const r = resolveBuffer(target);
    const buffer = r.buffer;
    offset += r.offset;
    // Always as bytes: a test that passed Float16Array views here aborted at exit (glibc heap corruption)
    // in 5 of 42 runs and never with byte views; the cause is not established, the bytes are the same.
    const bytes = data instanceof ArrayBuffer
      ? new Uint8Array(data)
      : new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
    this.device.queue.writeBuffer(buffer, offset, bytes);
  }

  /** A uniform buffer holding packed parameters. */
  uniform(label: string, fields: readonly Param[]): GPUBuffer {
    const data = packParams(fields);
    const buf = this.device.createBuffer({
      label,
      size: data.byteLength,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    this.bytesAllocated += data.byteLength;
    this.device.queue.writeBuffer(buf, 0, data);
    return buf;
  }

  /**
   * Prepares a dispatch of `code`. Binding 0 is the uniform `params` (when given), then the
   * storage `buffers` in order from binding 1 (or 0 without params); a {@linkcode BufferView} binds
   * its range. `cost` declares the kernel family and FLOPs for the bench's account.
   */
  dispatch(
    label: string,
    code: string,
    params: readonly Param[] | null,
    buffers: readonly GPUBuffer[],
    workgroups: [number, number?, number?],
    cost: { family?: string; flops?: number } = {},
  ): Dispatch {
    const pipeline = this.pipeline(label, code);
    const entries: GPUBindGroupEntry[] = [];
    if (params) entries.push({ binding: 0, resource: { buffer: this.uniform(`${label}.params`, params) } });
    const first = params ? 1 : 0;
    const align = this.device.limits.minStorageBufferOffsetAlignment;
    let bytes = 0;
    buffers.forEach((b, i) => {
      bytes += b.size;
      if (b instanceof BufferView) {
        if (b.offset % align !== 0) {
          throw new RangeError(
            `Kernel "${label}": view "${b.label}" starts at byte ${b.offset}, not a multiple of minStorageBufferOffsetAlignment ${align}`,
          );
        }
        entries.push({ binding: first + i, resource: { buffer: b.buffer, offset: b.offset, size: b.size } });
      } else entries.push({ binding: first + i, resource: { buffer: b } });
    });
    const bindGroup = this.device.createBindGroup({ label, layout: pipeline.getBindGroupLayout(0), entries });
    const max = this.device.limits.maxComputeWorkgroupsPerDimension;
    const wg: [number, number, number] = [workgroups[0], workgroups[1] ?? 1, workgroups[2] ?? 1];
    for (const n of wg) {
      if (n > max) {
        throw new RangeError(
          `Kernel "${label}" needs ${n} workgroups in one dimension; the device allows ${max}`,
        );
      }
    }
    const family = cost.family ?? label.split(".")[0];
    return { label, pipeline, bindGroup, workgroups: wg, cost: { family, flops: cost.flops ?? 0, bytes } };
  }

  /**
   * Records dispatches into one compute pass of `encoder`. Zero-size dispatches are skipped, and so
   * is a setPipeline that repeats the previous one. Counts into {@linkcode Gpu.dispatchesEncoded}.
   */
  encode(encoder: GPUCommandEncoder, dispatches: readonly Dispatch[]): void {
    const pass = encoder.beginComputePass();
    let pipeline: GPUComputePipeline | null = null;
    for (const d of dispatches) {
      const [x, y, z] = d.workgroups;
      if (x === 0 || y === 0 || z === 0) continue;
      if (d.pipeline !== pipeline) {
        pass.setPipeline(d.pipeline);
        pipeline = d.pipeline;
      }
      pass.setBindGroup(0, d.bindGroup);
      pass.dispatchWorkgroups(x, y, z);
      this.dispatchesEncoded++;
    }
    pass.end();
  }

  /** Encodes and submits dispatches now (tests and one-off work). */
  run(dispatches: readonly Dispatch[]): void {
    this.checkAlive();
    const encoder = this.device.createCommandEncoder();
    this.encode(encoder, dispatches);
    this.device.queue.submit([encoder.finish()]);
  }

  /** Copies `byteLength` bytes of `buffer` (from `offset`) back to the CPU. */
  async read(target: GPUBuffer, byteLength = target.size, offset = 0): Promise<ArrayBuffer> {
    this.checkAlive();
    const { buffer, offset: base } = resolveBuffer(target);
    offset += base;
    const size = Math.ceil(byteLength / 4) * 4;
    const staging = this.device.createBuffer({
      size,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const encoder = this.device.createCommandEncoder();
    encoder.copyBufferToBuffer(buffer, offset, staging, 0, size);
    this.device.queue.submit([encoder.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const out = staging.getMappedRange().slice(0, byteLength);
    staging.unmap();
    staging.destroy();
    this.checkErrors();
    return out;
  }

  /** Reads `count` float32 values. */
  async readF32(buffer: GPUBuffer, count = buffer.size / 4, offset = 0): Promise<Float32Array> {
    return new Float32Array(await this.read(buffer, count * 4, offset * 4));
  }

  /** Reads `count` float16 values, widened to float32. */
  async readF16(buffer: GPUBuffer, count = buffer.size / 2, offset = 0): Promise<Float32Array> {
    return Float32Array.from(new Float16Array(await this.read(buffer, count * 2, offset * 2)));
  }

  /**
   * Reads many buffers back with one submit per staging chunk (up to 256 MiB each) instead of one
   * round trip per buffer: checkpoints read hundreds of tensors.
   * @param items buffers and how many float32 values to read from each
   * @returns one Float32Array per item, in order
   */
  async readManyF32(items: readonly { buffer: GPUBuffer; count: number }[]): Promise<Float32Array[]> {
    this.checkAlive();
    const out: Float32Array[] = new Array(items.length);
    const chunkLimit = Math.min(256 * 1024 * 1024, this.device.limits.maxBufferSize);
    let i = 0;
    while (i < items.length) {
      const start = i;
      let bytes = 0;
      while (i < items.length && (i === start || bytes + items[i].count * 4 <= chunkLimit)) {
        bytes += items[i].count * 4;
        i++;
      }
      const staging = this.device.createBuffer({
        size: Math.max(4, bytes),
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      });
      const encoder = this.device.createCommandEncoder();
      let at = 0;
      for (let k = start; k < i; k++) {
        const { buffer, offset } = resolveBuffer(items[k].buffer);
        encoder.copyBufferToBuffer(buffer, offset, staging, at, items[k].count * 4);
        at += items[k].count * 4;
      }
      this.device.queue.submit([encoder.finish()]);
      await staging.mapAsync(GPUMapMode.READ);
      const all = staging.getMappedRange();
      at = 0;
      for (let k = start; k < i; k++) {
        out[k] = new Float32Array(all.slice(at, at + items[k].count * 4));
        at += items[k].count * 4;
      }
      staging.unmap();
      staging.destroy();
    }
    this.checkErrors();
    return out;
  }

  /** Fills a buffer with NaN bit patterns (tests: unwritten elements then show). */
  poison(buffer: GPUBuffer): void {
    const data = new Uint32Array(buffer.size / 4).fill(0x7fc00000);
    this.write(buffer, data);
  }

  /** Frees a buffer and its byte count (not a view: free the buffer that holds it). */
  free(buffer: GPUBuffer): void {
    if (buffer instanceof BufferView) {
      throw new Error(`View "${buffer.label}" is part of "${buffer.buffer.label}": free that buffer instead`);
    }
    this.bytesAllocated -= buffer.size;
    buffer.destroy();
  }
}

/** Number of workgroups of size `size` covering `n` items. */
export function groups(n: number, size: number): number {
  return Math.ceil(n / size);
}

/**
 * A 2-D workgroup grid covering `n` items with `size` threads a group, for counts past the
 * 65,535-per-dimension limit. In WGSL the flat index is
 * `gid.x + gid.y * nwg.x * SIZE` (with `@builtin(num_workgroups) nwg`), and it must be guarded.
 */
export function grid(n: number, size: number): [number, number] {
  const total = Math.ceil(n / size);
  if (total <= 65535) return [total, 1];
  const y = Math.ceil(total / 65535);
  return [Math.ceil(total / y), y];
}
