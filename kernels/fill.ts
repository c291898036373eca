/**
 * Fill: out[i] = value for i < n (zeroing gradients and scatter targets inside a command encoder).
 * @module
 */

import { type Dispatch, type Gpu, grid } from "./runtime.ts";

const WG = 256;

/** WGSL for out[i] = value. */
export function fillWgsl(dtype: "f32" = "f32"): string {
  return /* wgsl */ `
// bindings: params {n, value}, out: (n)
struct Params { n: u32, value: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<${dtype}>;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * ${WG}u;
  if (i >= p.n) { return; }
  out[i] = ${dtype}(p.value);
}`;
}

/** Prepares out[0..n) = value. */
export function fill(gpu: Gpu, out: GPUBuffer, n: number, value = 0): Dispatch {
  if (n * 4 > out.size) {
    throw new RangeError(`fill: ${n} elements do not fit buffer "${out.label}" (${out.size} bytes)`);
  }
  return gpu.dispatch("fill", fillWgsl(), [["u32", n], ["f32", value]], [out], grid(n, WG));
}
