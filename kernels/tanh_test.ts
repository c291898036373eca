import { throws } from "node:assert/strict";
import { tanhBackward, tanhBackwardRef, tanhForward, tanhRef } from "./tanh.ts";
import { Rng } from "./random.ts";
import type { Gpu } from "./runtime.ts";
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
import { FINITE_DIFF, KERNEL_F32, REF_F64 } from "../tests/tolerance.ts";

const FIXTURE = new URL("../tests/fixtures/kernels/tanh.safetensors", import.meta.url).pathname;

/** N(0, 2²) inputs with extremes mixed in (tanh through exp(2x) would give inf/inf = NaN for |x| > 44). */
function inputs(rng: Rng, n: number): Float32Array {
  const extremes = [0, 1e-6, -1e-6, 15, -15, 50, -50, 1e30, -1e30];
  return f32(randn(rng, n, 2).map((v, i) => (i % 5 === 2 ? extremes[rng.int(extremes.length)] : v)));
}

async function gpuTanh(gpu: Gpu, x: Float32Array, gridX = 0): Promise<Float32Array> {
  const out = gpu.buffer("out", x.length * 4);
  gpu.poison(out);
  const d = tanhForward(gpu, { x: gpu.upload("x", x), out, n: x.length });
  gpu.run([gridX ? on2dGrid(d, gridX) : d]);
  return await gpu.readF32(out, x.length);
}

async function gpuTanhBackward(
  gpu: Gpu,
  out: Float32Array,
  dout: Float32Array,
  inPlace: boolean,
): Promise<Float32Array> {
  const d = gpu.upload("dout", dout);
  const dx = inPlace ? d : gpu.buffer("dx", out.length * 4);
  if (!inPlace) gpu.poison(dx);
  gpu.run([tanhBackward(gpu, { out: gpu.upload("out", out), dout: d, dx, n: out.length })]);
  return await gpu.readF32(dx, out.length);
}

Deno.test({
  name: "tanhForward() matches its CPU reference on odd lengths and extreme inputs",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(41);
    for (const n of [3 * 7 * 45, 1, 5]) {
      const x = inputs(rng, n);
      assertClose(await gpuTanh(gpu, x), tanhRef(x), KERNEL_F32, `tanhForward n=${n}`);
    }
    const x = inputs(rng, 3001);
    assertClose(await gpuTanh(gpu, x, 3), tanhRef(x), KERNEL_F32, "tanhForward on a 2-D grid");
  },
});

Deno.test({
  name: "tanhBackward() matches its CPU reference, separate and in place",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(42);
    for (const n of [3 * 7 * 45, 1, 5]) {
      const out = f32(tanhRef(inputs(rng, n)));
      const dout = f32(randn(rng, n));
      const want = tanhBackwardRef(out, dout);
      for (const inPlace of [false, true]) {
        assertClose(
          await gpuTanhBackward(gpu, out, dout, inPlace),
          want,
          KERNEL_F32,
          `tanhBackward n=${n} inPlace=${inPlace}`,
        );
      }
    }
  },
});

Deno.test("tanhBackwardRef() matches finite differences", () => {
  const rng = new Rng(43);
  const x = Float64Array.from([...randn(rng, 40, 2), -6, -1e-3, 0, 1e-3, 6]);
  const w = randn(rng, x.length);
  assertClose(
    tanhBackwardRef(tanhRef(x), w),
    finiteDifference((v) => dot(tanhRef(v), w), x),
    FINITE_DIFF,
    "dx",
  );
});

Deno.test({
  name: "tanhForward() and tanhBackward() match PyTorch torch.tanh",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const t = await fixtureTensors(FIXTURE, "tests/torch/fixtures_elementwise.py");
    const x = f32(t("x"));
    const dout = f32(t("dout"));
    assertClose(tanhRef(x), t("out"), REF_F64, "ref out");
    assertClose(tanhBackwardRef(t("out"), dout), t("dx"), REF_F64, "ref dx");
    const got = await gpuTanh(gpu, x);
    assertClose(got, t("out"), KERNEL_F32, "gpu out");
    assertClose(got, t("out_f32"), KERNEL_F32, "gpu out vs torch float32");
    assertClose(await gpuTanhBackward(gpu, f32(t("out")), dout, false), t("dx"), KERNEL_F32, "gpu dx");
  },
});

Deno.test({
  name: "tanhForward() and tanhBackward() reject bad lengths and aliasing",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const b = gpu.buffer("b", 16);
    const fails = (fn: () => unknown, fragment: string) =>
      throws(fn, (e) => e instanceof RangeError && e.message.includes(fragment));
    fails(
      () => tanhForward(gpu, { x: b, out: gpu.buffer("o", 16), n: -1 }),
      "n must be a positive integer, got -1",
    );
    fails(
      () => tanhForward(gpu, { x: b, out: gpu.buffer("o", 16), n: 5 }),
      'buffer "x" has 16 bytes but n = 5 needs 20',
    );
    fails(
      () => tanhBackward(gpu, { out: b, dout: gpu.buffer("d", 16), dx: b, n: 4 }),
      '"out" must be a different buffer',
    );
  },
});
