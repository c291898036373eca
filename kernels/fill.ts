/**
 * Fill: out[i] = value for i < n (zeroing gradients and scatter targets inside a command encoder).
 * `dtype` "f16" fills an f16 buffer (mixed-precision activations).
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

/** WGSL for out[i] = value. */
export function fillWgsl(dtype: Dtype = "f32"): string {
  return `${wgslEnable(dtype)}` + /* wgsl */ `
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

/** Prepares out[0..n) = value; `dtype` is out's storage type (default f32). */
export function fill(gpu: Gpu, out: GPUBuffer, n: number, value = 0, dtype: Dtype = "f32"): Dispatch {
  requireDtype(gpu, dtype, "fill");
  if (n * dtypeBytes(dtype) > out.size) {
    throw new RangeError(`fill: ${n} ${dtype} elements do not fit buffer "${out.label}" (${out.size} bytes)`);
  }
  if (dtype === "f16" && !(Math.abs(value) <= 65504)) {
    throw new RangeError(
      `fill: value ${value} is not a finite float16 (|value| <= 65504); fill an f32 buffer`,
    );
  }
  return gpu.dispatch("fill", fillWgsl(dtype), [["u32", n], ["f32", value]], [out], grid(n, WG));
}
