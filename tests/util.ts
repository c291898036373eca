/**
 * Shared test helpers: one WebGPU device a test file, seeded random data, closeness checks that
 * report the worst element, and central finite differences in float64.
 * @module
 */

import { type Dispatch, Gpu } from "../kernels/runtime.ts";
import { readSafetensors } from "../formats/safetensors.ts";
import type { Rng } from "../kernels/random.ts";
import type { Tolerance } from "./tolerance.ts";

let shared: Promise<Gpu> | null = null;

/** The test file's device (Mesa llvmpipe here; never needs a real GPU). */
export function testGpu(): Promise<Gpu> {
  shared ??= Gpu.create();
  return shared;
}

/** Deno.test options for tests that hold WebGPU resources across tests. */
export const GPU_TEST = { sanitizeResources: false, sanitizeOps: false } as const;

/** `n` values from N(0, scale^2), seeded. */
export function randn(rng: Rng, n: number, scale = 1): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.normal() * scale;
  return out;
}

/** `n` values uniform in [lo, hi), seeded. */
export function uniform(rng: Rng, n: number, lo = -1, hi = 1): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * rng.uniform();
  return out;
}

/** Checks element-wise closeness; the error names the worst index, both values and the max error. */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: Tolerance,
  label = "values",
): void {
  if (actual.length !== expected.length) {
    throw new Error(`${label}: length ${actual.length} differs from expected ${expected.length}`);
  }
  let worst = -1;
  let worstExcess = -Infinity;
  let maxErr = 0;
  let failures = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i];
    const e = expected[i];
    const err = Math.abs(a - e);
    const bound = tol.abs + tol.rel * Math.abs(e);
    if (!(err <= bound)) {
      failures++;
      const excess = Number.isNaN(err) ? Infinity : err - bound;
      if (excess > worstExcess) {
        worstExcess = excess;
        worst = i;
      }
    }
    if (err > maxErr || Number.isNaN(err)) maxErr = Number.isNaN(err) ? NaN : Math.max(maxErr, err);
  }
  if (failures > 0) {
    throw new Error(
      `${label}: ${failures} of ${actual.length} elements differ; worst at index ${worst}: actual ${
        actual[worst]
      }, expected ${expected[worst]} (tolerance abs ${tol.abs} rel ${tol.rel}); max abs error ${maxErr}`,
    );
  }
}

/** The largest absolute difference. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/**
 * Central finite differences of a scalar function `f` at `x` (float64), for every element
 * (or the `indices` given). `x` is restored afterwards.
 */
export function finiteDifference(
  f: (x: Float64Array) => number,
  x: Float64Array,
  eps = 1e-6,
  indices?: readonly number[],
): Float64Array {
  const grad = new Float64Array(x.length);
  const idx = indices ?? Array.from({ length: x.length }, (_, i) => i);
  for (const i of idx) {
    const keep = x[i];
    x[i] = keep + eps;
    const up = f(x);
    x[i] = keep - eps;
    const down = f(x);
    x[i] = keep;
    grad[i] = (up - down) / (2 * eps);
  }
  return grad;
}

/** Sum of a[i] * b[i]: turns an output into a scalar loss with random weights. */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** float64 -> float32 copy for upload. */
export function f32(x: ArrayLike<number>): Float32Array {
  return Float32Array.from(x);
}

/** Checks that `fn` throws an error of class `kind` whose message matches `pattern`. */
export function assertThrows(
  fn: () => unknown,
  kind: abstract new (...args: never[]) => Error,
  pattern: RegExp,
): void {
  try {
    fn();
  } catch (e) {
    if (e instanceof kind && pattern.test(e.message)) return;
    throw new Error(`Expected a ${kind.name} matching ${pattern}, got ${e}`);
  }
  throw new Error(`Expected a ${kind.name} matching ${pattern}, nothing was thrown`);
}

/**
 * The same prepared dispatch on a 2-D grid `x` workgroups wide (plus one spare row): proves a kernel's
 * `gid.x + gid.y * nwg.x * WG` indexing without allocating 65,536 workgroups' worth of data.
 */
export function on2dGrid(d: Dispatch, x: number): Dispatch {
  const total = d.workgroups[0] * d.workgroups[1];
  return { ...d, workgroups: [x, Math.ceil(total / x) + 1, 1] };
}

/** A fixture's tensors by name; a missing one names the script that writes it. */
export async function fixtureTensors(
  path: string,
  script: string,
): Promise<(name: string) => Float32Array | Float64Array> {
  const file = await readSafetensors(path);
  return (name: string) => {
    const v = file.tensors.get(name);
    if (!v) throw new Error(`Fixture tensor "${name}" is missing from "${path}": run ${script}`);
    return v.data as Float32Array | Float64Array;
  };
}
