/**
 * tanh, the BERT pooler's activation: out = tanh(x); backward dx = dout·(1 - out²) from the saved
 * output.
 *
 * Mixed precision: `dtype` "f16" stores every buffer (x, out, dout, dx) as f16; the math is f32 and
 * each result is rounded once on store. Finite-difference and PyTorch tests stay on the f32 path
 * (f16 storage is a rounding of the same math).
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

/**
 * WGSL for out = tanh(x). The input is clamped to ±15 first (tanh(15) rounds to 1 in float32):
 * drivers may evaluate tanh through exp(2x), which overflows to inf/inf = NaN for large |x|.
 */
export function tanhForwardWgsl(dtype: Dtype = "f32"): string {
  return `${wgslEnable(dtype)}` + /* wgsl */ `
// bindings: params {n}, x: (n), out: (n)
struct Params { n: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<${dtype}>;
@group(0) @binding(2) var<storage, read_write> out: array<${dtype}>;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * ${WG}u;
  if (i >= p.n) { return; }
  out[i] = ${dtype}(tanh(clamp(f32(x[i]), -15.0, 15.0)));
}`;
}

/**
 * WGSL for dx = dout·(1 - out²). `inPlace` binds dout read-write and overwrites it (one buffer may
 * not be bound both read-only and writable in a dispatch).
 */
export function tanhBackwardWgsl(dtype: Dtype = "f32", inPlace = false): string {
  const dst = inPlace ? "dout" : "dx";
  return `${wgslEnable(dtype)}` + /* wgsl */ `
// bindings: params {n}, out: (n) saved forward output, dout: (n)${
    inPlace ? " (overwritten with dx)" : ", dx: (n)"
  }
struct Params { n: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> out: array<${dtype}>;
@group(0) @binding(2) var<storage, ${inPlace ? "read_write" : "read"}> dout: array<${dtype}>;
${inPlace ? "" : `@group(0) @binding(3) var<storage, read_write> dx: array<${dtype}>;`}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * ${WG}u;
  if (i >= p.n) { return; }
  let y = f32(out[i]);
  ${dst}[i] = ${dtype}(f32(dout[i]) * (1.0 - y * y));
}`;
}

function checkArgs(op: string, n: number, dtype: Dtype, buffers: Record<string, GPUBuffer>): void {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`${op}: n must be a positive integer, got ${n}`);
  const bytes = n * dtypeBytes(dtype);
  for (const [name, buf] of Object.entries(buffers)) {
    if (buf.size < bytes) {
      throw new RangeError(
        `${op}: buffer "${name}" has ${buf.size} bytes but n = ${n} needs ${bytes}; allocate a larger buffer`,
      );
    }
  }
}

/** Prepares out = tanh(x) over `n` elements; out must not alias x. `dtype`: storage of both (default f32). */
export function tanhForward(
  gpu: Gpu,
  a: { x: GPUBuffer; out: GPUBuffer; n: number; dtype?: Dtype },
): Dispatch {
  const op = "tanhForward()";
  const dtype = a.dtype ?? "f32";
  requireDtype(gpu, dtype, op);
  checkArgs(op, a.n, dtype, { x: a.x, out: a.out });
  if (a.x === a.out) throw new RangeError(`${op}: "out" must be a different buffer from "x"`);
  return gpu.dispatch("tanhForward", tanhForwardWgsl(dtype), [["u32", a.n]], [a.x, a.out], grid(a.n, WG));
}

/**
 * Prepares dx = dout·(1 - out²) over `n` elements from the saved forward output; dx may be the same
 * buffer as dout (in place). `dtype`: storage of out, dout and dx (default f32).
 */
export function tanhBackward(
  gpu: Gpu,
  a: { out: GPUBuffer; dout: GPUBuffer; dx: GPUBuffer; n: number; dtype?: Dtype },
): Dispatch {
  const op = "tanhBackward()";
  const dtype = a.dtype ?? "f32";
  requireDtype(gpu, dtype, op);
  checkArgs(op, a.n, dtype, { out: a.out, dout: a.dout, dx: a.dx });
  if (a.out === a.dout || a.out === a.dx) {
    throw new RangeError(`${op}: "out" must be a different buffer from "dout" and "dx"`);
  }
  const inPlace = a.dx === a.dout;
  return gpu.dispatch(
    inPlace ? "tanhBackward.inPlace" : "tanhBackward",
    tanhBackwardWgsl(dtype, inPlace),
    [["u32", a.n]],
    inPlace ? [a.out, a.dout] : [a.out, a.dout, a.dx],
    grid(a.n, WG),
  );
}

/** CPU reference (float64): out = tanh(x) element-wise. x: (n). */
export function tanhRef(x: ArrayLike<number>): Float64Array {
  return Float64Array.from(x, Math.tanh);
}

/** CPU reference of the backward (float64): dx = dout·(1 - out²). out, dout: (n). */
export function tanhBackwardRef(out: ArrayLike<number>, dout: ArrayLike<number>): Float64Array {
  const dx = new Float64Array(out.length);
  for (let i = 0; i < out.length; i++) dx[i] = dout[i] * (1 - out[i] * out[i]);
  return dx;
}
