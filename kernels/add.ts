/**
 * Element-wise add: out = a + b (residual connections, gradient sums). Out may alias neither input.
 * @module
 */

import { type Dispatch, type Gpu, grid } from "./runtime.ts";

const WG = 256;

/** WGSL for out[i] = a[i] + b[i]; dtype is a parameter so f16 storage can follow. */
export function addWgsl(dtype: "f32" = "f32"): string {
  return /* wgsl */ `
// bindings: params {n}, a: (n), b: (n), out: (n)
struct Params { n: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<${dtype}>;
@group(0) @binding(2) var<storage, read> b: array<${dtype}>;
@group(0) @binding(3) var<storage, read_write> out: array<${dtype}>;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * ${WG}u;
  if (i >= p.n) { return; }
  out[i] = a[i] + b[i];
}`;
}

/** Prepares out = a + b over `n` elements. */
export function add(gpu: Gpu, a: GPUBuffer, b: GPUBuffer, out: GPUBuffer, n: number): Dispatch {
  return gpu.dispatch("add", addWgsl(), [["u32", n]], [a, b, out], grid(n, WG));
}

/** CPU reference (float64). */
export function addRef(a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] + b[i];
  return out;
}
