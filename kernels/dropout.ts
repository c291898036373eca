/**
 * Inverted dropout (nn.Dropout in training mode) with a counter-based RNG, so the mask is never
 * stored: the backward is the same call on the gradients and regenerates the same mask.
 *
 * keep(i) = dropoutHash(seed, stream, i) >= ceil(p·2³²);  out[i] = keep(i) ? x[i]·scale : 0,
 * scale = fround(1 / fround(1 - p)), the float32 factor torch's CPU dropout multiplies by.
 *
 * The hash is three rounds of PCG's output permutation (`pcg_hash` of Jarzynski and Olano, "Hash
 * Functions for GPU Rendering", JCGT 2020), all arithmetic mod 2³²:
 *   pcg(v) = (w >> 22) ^ w,  w = ((s >> ((s >> 28) + 4)) ^ s)·277803737,  s = v·747796405 + 2891336453
 *   dropoutHash(seed, stream, i) = pcg(pcg(pcg(i) + seed) ^ stream)
 * `seed` is word 0 of a small u32 storage buffer the trainer writes once a step; `stream` is a
 * constant per dropout site (layer·8 + site), so sites and steps get unrelated masks.
 * p = 0 keeps everything with scale 1: the kernel is then an exact copy (callers may skip it).
 *
 * Mixed precision: `dtype` "f16" stores x and out as f16 (x·scale computed in f32, rounded once on
 * store). The PyTorch fixture test stays on the f32 path (f16 storage is a rounding of the same math).
 * @module
 */

import {
  type Dispatch,
  type Dtype,
  dtypeBytes,
  type Gpu,
  grid,
  requireDtype,
  wgslEnable,
} from "./runtime.ts";

const WG = 256;

/** WGSL of `pcg(v)` and `dropoutHash(seed, stream, i)`, bit-for-bit the same as {@linkcode dropoutHash}. */
export function dropoutHashWgsl(): string {
  return /* wgsl */ `
fn pcg(v: u32) -> u32 {
  let s = v * 747796405u + 2891336453u;
  let w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
  return (w >> 22u) ^ w;
}
fn dropoutHash(seed: u32, stream: u32, i: u32) -> u32 { return pcg((pcg(pcg(i) + seed)) ^ stream); }`;
}

/**
 * WGSL for out = keep ? x·scale : 0. `inPlace` binds x read-write and overwrites it (one buffer may
 * not be bound both read-only and writable in a dispatch).
 */
export function dropoutWgsl(dtype: Dtype = "f32", inPlace = false): string {
  const dst = inPlace ? "x" : "out";
  return `${wgslEnable(dtype)}` + /* wgsl */ `
// bindings: params {n, threshold = ceil(p*2^32), scale, stream}, seed: u32 (seed[0] read),
// x: (n)${inPlace ? " (overwritten)" : ", out: (n)"}
struct Params { n: u32, threshold: u32, scale: f32, stream: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> seed: array<u32>;
@group(0) @binding(2) var<storage, ${inPlace ? "read_write" : "read"}> x: array<${dtype}>;
${inPlace ? "" : `@group(0) @binding(3) var<storage, read_write> out: array<${dtype}>;`}
${dropoutHashWgsl()}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * ${WG}u;
  if (i >= p.n) { return; }
  let keep = dropoutHash(seed[0], p.stream, i) >= p.threshold;
  ${dst}[i] = select(${dtype}(0.0), ${dtype}(f32(x[i]) * p.scale), keep);
}`;
}

function checkP(op: string, p: number): void {
  if (!(p >= 0 && p < 1)) throw new RangeError(`${op}: dropout probability p must be in [0, 1), got ${p}`);
}

/** The keep threshold ceil(p·2³²) (a u32): element i is kept when its hash is >= it. */
export function dropoutThreshold(p: number): number {
  return threshold(p);
}

function threshold(p: number): number {
  checkP("dropout()", p);
  const t = Math.ceil(p * 4294967296);
  if (t > 0xffffffff) throw new RangeError(`dropout(): p = ${p} is too close to 1 for a 32-bit threshold`);
  return t;
}

/** The float32 factor kept values are multiplied by: fround(1 / fround(1 - p)), as torch's CPU dropout. */
export function dropoutScale(p: number): number {
  checkP("dropoutScale()", p);
  return Math.fround(1 / Math.fround(1 - p));
}

/** Arguments of {@linkcode dropout}. */
export interface DropoutArgs {
  /** (n) input (activations forward, gradients backward). */
  x: GPUBuffer;
  /** (n) output; may be the same buffer as x (in place). */
  out: GPUBuffer;
  /** Elements. */
  n: number;
  /** Drop probability in [0, 1). */
  p: number;
  /** u32 storage buffer; word 0 is the step's seed. */
  seed: GPUBuffer;
  /** Per-site constant (layer·8 + site), a u32. */
  stream: number;
  /** Storage type of x and out (default f32). */
  dtype?: Dtype;
}

/**
 * Prepares out = keep ? x·scale : 0 over `n` elements; the same call on gradients is the backward.
 * @throws {RangeError} for p outside [0, 1), a non-u32 stream, or buffers too small.
 */
export function dropout(gpu: Gpu, a: DropoutArgs): Dispatch {
  const op = "dropout()";
  const dtype = a.dtype ?? "f32";
  requireDtype(gpu, dtype, op);
  const bytes = a.n * dtypeBytes(dtype);
  if (!Number.isInteger(a.n) || a.n < 1) {
    throw new RangeError(`${op}: n must be a positive integer, got ${a.n}`);
  }
  if (!Number.isInteger(a.stream) || a.stream < 0 || a.stream > 0xffffffff) {
    throw new RangeError(`${op}: stream must be a u32 (layer * 8 + site), got ${a.stream}`);
  }
  const t = threshold(a.p);
  for (const [name, buf] of [["x", a.x], ["out", a.out]] as const) {
    if (buf.size < bytes) {
      throw new RangeError(
        `${op}: buffer "${name}" has ${buf.size} bytes but n = ${a.n} needs ${bytes}; allocate a larger buffer`,
      );
    }
  }
  if (a.seed === a.x || a.seed === a.out) {
    throw new RangeError(`${op}: "seed" must be its own buffer, not "x" or "out"`);
  }
  const inPlace = a.x === a.out;
  return gpu.dispatch(
    inPlace ? "dropout.inPlace" : "dropout",
    dropoutWgsl(dtype, inPlace),
    [["u32", a.n], ["u32", t], ["f32", dropoutScale(a.p)], ["u32", a.stream]],
    inPlace ? [a.seed, a.x] : [a.seed, a.x, a.out],
    grid(a.n, WG),
  );
}

function pcg(v: number): number {
  const s = (Math.imul(v, 747796405) + 2891336453) >>> 0;
  const w = Math.imul((s >>> ((s >>> 28) + 4)) ^ s, 277803737) >>> 0;
  return ((w >>> 22) ^ w) >>> 0;
}

/**
 * The dropout hash of element `i` for a step `seed` and a site `stream`, a u32 (see the module doc).
 * @example
 * ```ts
 * import { dropoutHash } from "./dropout.ts";
 * const h = dropoutHash(42, 3, 0); // an integer in [0, 2^32)
 * ```
 */
export function dropoutHash(seed: number, stream: number, i: number): number {
  return pcg((pcg((pcg(i >>> 0) + (seed >>> 0)) >>> 0) ^ stream) >>> 0);
}

/** CPU reference of the mask: 1 where element i (of n) is kept at probability p of dropping. */
export function dropoutMaskRef(seed: number, stream: number, n: number, p: number): Uint8Array {
  const t = threshold(p);
  const mask = new Uint8Array(n);
  for (let i = 0; i < n; i++) mask[i] = dropoutHash(seed, stream, i) >= t ? 1 : 0;
  return mask;
}

/** CPU reference (float64 of the float32 scale): out = mask ? x·scale : 0. x: (n). */
export function dropoutRef(x: ArrayLike<number>, seed: number, stream: number, p: number): Float64Array {
  const mask = dropoutMaskRef(seed, stream, x.length, p);
  const scale = dropoutScale(p);
  return Float64Array.from(x, (v, i) => (mask[i] ? v * scale : 0));
}
