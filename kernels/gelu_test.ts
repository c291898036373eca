import { throws } from "node:assert/strict";
import { erf, erfc, erfWgsl, geluBackward, geluBackwardRef, geluForward, geluRef } from "./gelu.ts";
import { Rng } from "./random.ts";
import type { Gpu } from "./runtime.ts";
import { readSafetensors } from "../formats/safetensors.ts";
import {
  assertClose,
  dot,
  f32,
  finiteDifference,
  fixtureTensors,
  GPU_TEST,
  on2dGrid,
  randn,
  testGpu,
} from "../tests/util.ts";
import { ERF_F32, ERF_F64, FINITE_DIFF, GELU_TAIL_F32, KERNEL_F32, REF_F64 } from "../tests/tolerance.ts";

const FIXTURE = new URL("../tests/fixtures/kernels/gelu.safetensors", import.meta.url).pathname;

/** N(0, 3²) inputs with extremes mixed in: zero, ±1e-30, ±30, ±1e4 and the |x/√2| = 1 switch. */
function inputs(rng: Rng, n: number): Float32Array {
  const extremes = [0, 1e-30, -1e-30, 30, -30, 1e4, -1e4, Math.SQRT2, -Math.SQRT2];
  return f32(randn(rng, n, 3).map((v, i) => (i % 7 === 3 ? extremes[rng.int(extremes.length)] : v)));
}

async function gpuGelu(gpu: Gpu, x: Float32Array, gridX = 0): Promise<Float32Array> {
  const out = gpu.buffer("out", x.length * 4);
  gpu.poison(out);
  const d = geluForward(gpu, { x: gpu.upload("x", x), out, n: x.length });
  gpu.run([gridX ? on2dGrid(d, gridX) : d]);
  return await gpu.readF32(out, x.length);
}

async function gpuGeluBackward(
  gpu: Gpu,
  x: Float32Array,
  dout: Float32Array,
  inPlace: boolean,
): Promise<Float32Array> {
  const d = gpu.upload("dout", dout);
  const dx = inPlace ? d : gpu.buffer("dx", x.length * 4);
  if (!inPlace) gpu.poison(dx);
  gpu.run([geluBackward(gpu, { x: gpu.upload("x", x), dout: d, dx, n: x.length })]);
  return await gpu.readF32(dx, x.length);
}

Deno.test({
  name: "erfWgsl() erf32 is within about 1 ulp of the float64 erf()",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const code = `
struct Params { n: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> z: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
${erfWgsl()}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  if (gid.x >= p.n) { return; }
  out[gid.x] = erf32(z[gid.x]);
}`;
    const rng = new Rng(31);
    const grid = Array.from({ length: 4001 }, (_, i) => -12 + (24 * i) / 4000);
    const near1 = [0.99999994, 1, 1.0000001, -0.99999994, -1, -1.0000001];
    const tiny = [1e-30, -1e-30, 1e-10, -1e-5, 3e-3, 0];
    const z = f32([...grid, ...near1, ...tiny, ...randn(rng, 2000, 2)]);
    const out = gpu.buffer("out", z.length * 4);
    gpu.poison(out);
    gpu.run([
      gpu.dispatch("erf32 test", code, [["u32", z.length]], [gpu.upload("z", z), out], [
        Math.ceil(z.length / 64),
      ]),
    ]);
    assertClose(await gpu.readF32(out, z.length), Float64Array.from(z, erf), ERF_F32, "erf32");
  },
});

Deno.test({
  name: "geluForward() matches its CPU reference on odd lengths and extreme inputs",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(32);
    for (const n of [3 * 7 * 45, 1, 5]) {
      const x = inputs(rng, n);
      assertClose(await gpuGelu(gpu, x), geluRef(x), KERNEL_F32, `geluForward n=${n}`);
    }
    const x = inputs(rng, 3001);
    assertClose(await gpuGelu(gpu, x, 3), geluRef(x), KERNEL_F32, "geluForward on a 2-D grid");
  },
});

Deno.test({
  name: "geluForward() keeps its relative accuracy in the negative tail",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    // gelu(-12) ≈ -2e-32: 1 + erf(x/√2) would cancel to 0 in float32; erfc keeps every digit.
    const x = f32(Array.from({ length: 901 }, (_, i) => -12 + (9 * i) / 900));
    assertClose(await gpuGelu(gpu, x), geluRef(x), GELU_TAIL_F32, "geluForward tail");
  },
});

Deno.test({
  name: "geluBackward() matches its CPU reference, separate and in place",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(33);
    for (const n of [3 * 7 * 45, 1, 5]) {
      const x = inputs(rng, n);
      const dout = f32(randn(rng, n));
      const want = geluBackwardRef(x, dout);
      for (const inPlace of [false, true]) {
        assertClose(
          await gpuGeluBackward(gpu, x, dout, inPlace),
          want,
          KERNEL_F32,
          `geluBackward n=${n} inPlace=${inPlace}`,
        );
      }
    }
  },
});

Deno.test("geluBackwardRef() matches finite differences", () => {
  const rng = new Rng(34);
  const x = Float64Array.from([...randn(rng, 40, 3), -9, -4, -1.5, -1e-3, 0, 1e-3, 1.4142, 4, 9]);
  const w = randn(rng, x.length);
  assertClose(geluBackwardRef(x, w), finiteDifference((v) => dot(geluRef(v), w), x), FINITE_DIFF, "dx");
});

Deno.test("erf() and erfc() match PyTorch float64 to about 1e-15", async () => {
  const file = await readSafetensors(FIXTURE);
  const t = (name: string) => file.tensors.get(name)!.data as Float64Array;
  const z = t("z");
  assertClose(Float64Array.from(z, erf), t("erf"), ERF_F64, "erf");
  assertClose(Float64Array.from(z, erfc), t("erfc"), ERF_F64, "erfc");
});

Deno.test({
  name: "geluForward() and geluBackward() match PyTorch F.gelu (exact erf)",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const t = await fixtureTensors(FIXTURE, "tests/torch/fixtures_elementwise.py");
    const x = f32(t("x"));
    const dout = f32(t("dout"));
    assertClose(geluRef(x), t("out"), REF_F64, "ref out");
    assertClose(geluBackwardRef(x, dout), t("dx"), REF_F64, "ref dx");
    const got = await gpuGelu(gpu, x);
    assertClose(got, t("out"), KERNEL_F32, "gpu out");
    assertClose(got, t("out_f32"), KERNEL_F32, "gpu out vs torch float32");
    assertClose(await gpuGeluBackward(gpu, x, dout, true), t("dx"), KERNEL_F32, "gpu dx");
  },
});

Deno.test({
  name: "geluForward() and geluBackward() reject bad lengths and aliasing",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const b = gpu.buffer("b", 16);
    const fails = (fn: () => unknown, fragment: string) =>
      throws(fn, (e) => e instanceof RangeError && e.message.includes(fragment));
    fails(
      () => geluForward(gpu, { x: b, out: gpu.buffer("o", 16), n: 0 }),
      "n must be a positive integer, got 0",
    );
    fails(
      () => geluForward(gpu, { x: b, out: gpu.buffer("o", 16), n: 5 }),
      'buffer "x" has 16 bytes but n = 5 needs 20',
    );
    fails(() => geluForward(gpu, { x: b, out: b, n: 4 }), '"out" must be a different buffer from "x"');
    fails(
      () => geluBackward(gpu, { x: b, dout: b, dx: gpu.buffer("o", 16), n: 4 }),
      '"x" must be a different buffer',
    );
  },
});
