/**
 * Exact (erf) GELU, as F.gelu's default and Hugging Face's `hidden_act: "gelu"`:
 *   gelu(x) = x·Φ(x),  Φ(x) = ½·erfc(-x/√2) = ½·(1 + erf(x/√2)),
 *   gelu'(x) = Φ(x) + x·φ(x),  φ(x) = exp(-x²/2)/√(2π).
 *
 * WGSL has no erf, so {@linkcode erfWgsl} supplies one accurate to 1-2 float32 ulp (relative error
 * 7e-8 in exact float32 arithmetic, 1.4e-7 measured on lavapipe's exp; derivation below). The
 * float64 CPU reference has its own {@linkcode erf}, accurate to about 1e-15 relative, built from
 * a series and a continued fraction (no library erf).
 * @module
 */

import { type Dispatch, type Gpu, grid } from "./runtime.ts";
import { checkBuffer, checkCount } from "./_checks.ts";

const WG = 256;

/**
 * WGSL functions `erf32(z)`, `erfcLarge(a)` (a >= 1) and `phi(x)` = Φ(x), the standard normal CDF.
 *
 * - |z| < 1: erf(z) = z + z·P(z²), P of degree 6 (P(0) = 2/√π - 1, so the last step adds a small
 *   correction to z and rounds once). Least-squares fit on Chebyshev nodes of the relative error
 *   against 40-digit mpmath values: float64 error of the fit 1.3e-9.
 * - |z| >= 1: erfc(a) = t·exp(-a² + Q(t)), t = 1/(1 + a/2) (the Numerical Recipes `erfcc` form,
 *   refitted to degree 10 on t in (0, 2/3]: fit error 7e-10 relative to erfc). -a² is split as
 *   -hi² - lo·(a + hi) with hi = a with its low 12 mantissa bits cleared, so hi² is exact in float32
 *   and no rounding of a² reaches the exponent. erfc's relative error out to the float32 underflow
 *   (a ≈ 9.2) is then 3.5e-7 with a correctly rounded exp; WGSL allows exp 3 + 2|x| ulp, and
 *   lavapipe reaches 1.6e-5 at a = 8 (erf itself is unaffected: erfc < 0.16 there).
 *   a is clamped to 10, where erfc is below the smallest float32.
 * - Φ(x) uses erfc directly on the side where 1 + erf(z) would cancel, so gelu(x) keeps its
 *   relative accuracy for negative x too.
 */
export function erfWgsl(): string {
  return /* wgsl */ `
fn erfSmall(z: f32) -> f32 { // |z| < 1
  let s = z * z;
  var r = 7.847259149e-05;
  r = r * s - 8.008189329e-04;
  r = r * s + 5.188098890e-03;
  r = r * s - 2.685369110e-02;
  r = r * s + 1.128358225e-01;
  r = r * s - 3.761262557e-01;
  r = r * s + 1.283791657e-01;
  return z + z * r;
}
fn erfcLarge(a0: f32) -> f32 { // a0 >= 1
  let a = min(a0, 10.0);
  let t = 1.0 / (1.0 + 0.5 * a);
  var q = 3.046568998e-01;
  q = q * t - 1.078815515e+00;
  q = q * t + 1.371873418e+00;
  q = q * t - 6.581010269e-01;
  q = q * t + 1.416022037e-01;
  q = q * t - 1.936844472e-01;
  q = q * t - 7.931907766e-02;
  q = q * t + 8.282197975e-02;
  q = q * t + 3.750202983e-01;
  q = q * t + 9.999996848e-01;
  q = q * t - 1.265512123e+00;
  let hi = bitcast<f32>(bitcast<u32>(a) & 0xfffff000u);
  let lo = a - hi;
  return t * exp(-hi * hi) * exp(q - lo * (a + hi));
}
fn erf32(z: f32) -> f32 {
  let a = abs(z);
  if (a < 1.0) { return erfSmall(z); }
  return select(-1.0, 1.0, z > 0.0) * (1.0 - erfcLarge(a));
}
fn phi(x: f32) -> f32 { // Φ(x) = erfc(-x/√2)/2
  let z = x * 0.70710678118654752;
  let a = abs(z);
  if (a < 1.0) { return 0.5 + 0.5 * erfSmall(z); }
  let e = 0.5 * erfcLarge(a);
  return select(e, 1.0 - e, z > 0.0);
}`;
}

/** WGSL for out = gelu(x). */
export function geluForwardWgsl(dtype: "f32" = "f32"): string {
  return /* wgsl */ `
// bindings: params {n}, x: (n), out: (n)
struct Params { n: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<${dtype}>;
@group(0) @binding(2) var<storage, read_write> out: array<${dtype}>;
${erfWgsl()}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * ${WG}u;
  if (i >= p.n) { return; }
  let v = f32(x[i]);
  out[i] = ${dtype}(v * phi(v));
}`;
}

/**
 * WGSL for dx = dout·gelu'(x). `inPlace` binds dout read-write and overwrites it (WebGPU forbids
 * binding one buffer both read-only and writable in a dispatch); each element is read, then written,
 * by the same thread.
 */
export function geluBackwardWgsl(dtype: "f32" = "f32", inPlace = false): string {
  const out = inPlace ? "dout" : "dx";
  return /* wgsl */ `
// bindings: params {n}, x: (n), dout: (n)${inPlace ? " (overwritten with dx)" : ", dx: (n)"}
struct Params { n: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<${dtype}>;
@group(0) @binding(2) var<storage, ${inPlace ? "read_write" : "read"}> dout: array<${dtype}>;
${inPlace ? "" : `@group(0) @binding(3) var<storage, read_write> dx: array<${dtype}>;`}
${erfWgsl()}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * ${WG}u;
  if (i >= p.n) { return; }
  let v = f32(x[i]);
  // φ(v) = exp(-v²/2)/√(2π); |v| is clamped so v² stays finite (φ is 0 in f32 long before 1e4).
  let c = clamp(v, -1e4, 1e4);
  let d = phi(v) + v * 0.39894228040143268 * exp(-0.5 * c * c);
  ${out}[i] = ${dtype}(f32(dout[i]) * d);
}`;
}

/** Prepares out = gelu(x) over `n` elements; out must not alias x. */
export function geluForward(gpu: Gpu, a: { x: GPUBuffer; out: GPUBuffer; n: number }): Dispatch {
  const op = "geluForward()";
  checkCount(op, "n", a.n);
  checkBuffer(op, "x", a.x, a.n * 4, `n = ${a.n}`);
  checkBuffer(op, "out", a.out, a.n * 4, `n = ${a.n}`);
  if (a.x === a.out) throw new RangeError(`${op}: "out" must be a different buffer from "x"`);
  return gpu.dispatch("geluForward", geluForwardWgsl(), [["u32", a.n]], [a.x, a.out], grid(a.n, WG));
}

/** Prepares dx = dout·gelu'(x) over `n` elements; dx may be the same buffer as dout (in place). */
export function geluBackward(
  gpu: Gpu,
  a: { x: GPUBuffer; dout: GPUBuffer; dx: GPUBuffer; n: number },
): Dispatch {
  const op = "geluBackward()";
  checkCount(op, "n", a.n);
  checkBuffer(op, "x", a.x, a.n * 4, `n = ${a.n}`);
  checkBuffer(op, "dout", a.dout, a.n * 4, `n = ${a.n}`);
  checkBuffer(op, "dx", a.dx, a.n * 4, `n = ${a.n}`);
  if (a.x === a.dout || a.x === a.dx) {
    throw new RangeError(`${op}: "x" must be a different buffer from "dout" and "dx"`);
  }
  const inPlace = a.dx === a.dout;
  return gpu.dispatch(
    inPlace ? "geluBackward.inPlace" : "geluBackward",
    geluBackwardWgsl("f32", inPlace),
    [["u32", a.n]],
    inPlace ? [a.x, a.dout] : [a.x, a.dout, a.dx],
    grid(a.n, WG),
  );
}

/** erf(x): the series below this |x|, 1 - erfc(|x|) from the continued fraction above it. */
const ERF_SWITCH = 1.5;
/** erfc(x): 1 - erf(x) below this x (erfc >= 0.48 there, no cancellation), the continued fraction above. */
const ERFC_SWITCH = 0.5;
const TWO_OVER_SQRT_PI = 1.1283791670955126;
const INV_SQRT_PI = 0.5641895835477563;

/**
 * exp(-x²) without the rounding of x² (which costs x²·1e-16 relative): x = hi + lo with hi = x
 * rounded to float32, so hi² is exact in float64 and x² = hi² + lo·(x + hi).
 */
function expMinusSquare(x: number): number {
  const hi = Math.fround(x);
  return Math.exp(-hi * hi) * Math.exp(-(x - hi) * (x + hi));
}

/** erf(x) = 2/√π·exp(-x²)·Σ 2ⁿx^(2n+1)/(1·3·…·(2n+1)): all terms positive, no cancellation. */
function erfSeries(x: number): number {
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let n = 1; Math.abs(term) > 1e-17 * Math.abs(sum); n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
  }
  return TWO_OVER_SQRT_PI * expMinusSquare(x) * sum;
}

/**
 * erfc(x) for x >= ERFC_SWITCH: exp(-x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))), evaluated
 * bottom-up. It converges slowly near 0: the depths reach double precision from x = 0.5, 1 and 1.5 on.
 */
function erfcContinuedFraction(x: number): number {
  let f = x;
  for (let k = x < 1 ? 1000 : x < 1.5 ? 300 : 100; k >= 1; k--) f = x + k / 2 / f;
  return (expMinusSquare(x) * INV_SQRT_PI) / f;
}

/**
 * The error function in float64, accurate to about 1e-15 relative (checked against PyTorch's
 * float64 erf in gelu_test.ts).
 * @example
 * ```ts
 * import { erf } from "./gelu.ts";
 * erf(1); // 0.8427007929497149
 * ```
 */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const a = Math.abs(x);
  const v = a < ERF_SWITCH ? erfSeries(a) : 1 - erfcContinuedFraction(a);
  return x < 0 ? -v : v;
}

/** erfc(x) = 1 - erf(x) in float64, accurate to about 1e-15 relative, the right tail included. */
export function erfc(x: number): number {
  if (x >= ERFC_SWITCH) return x === Infinity ? 0 : erfcContinuedFraction(x);
  return 1 - erf(x);
}

/** Φ(x), the standard normal CDF, in float64. */
function phi64(x: number): number {
  return 0.5 * erfc(-x * Math.SQRT1_2);
}

/** CPU reference (float64): gelu(x) = x·Φ(x) element-wise. x: (n). */
export function geluRef(x: ArrayLike<number>): Float64Array {
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] * phi64(x[i]);
  return out;
}

/** CPU reference of the backward (float64): dx = dout·(Φ(x) + x·φ(x)). x, dout: (n). */
export function geluBackwardRef(x: ArrayLike<number>, dout: ArrayLike<number>): Float64Array {
  const dx = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    dx[i] = dout[i] * (phi64(v) + v * Math.exp(-0.5 * v * v) / Math.sqrt(2 * Math.PI));
  }
  return dx;
}
