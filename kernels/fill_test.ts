import { fill } from "./fill.ts";
import { assertClose, assertThrows, GPU_TEST, testGpu } from "../tests/util.ts";
import { F16_STORE, KERNEL_F32 } from "../tests/tolerance.ts";
import { gpuWithoutF16 } from "../tests/f16.ts";

Deno.test({
  name: "fill() writes the value to the first n elements only",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const out = gpu.upload("out", new Float32Array(300).fill(7));
    gpu.run([fill(gpu, out, 257, -1.5)]);
    const got = await gpu.readF32(out, 300);
    const want = new Float32Array(300).fill(7);
    want.fill(-1.5, 0, 257);
    assertClose(got, want, KERNEL_F32, "fill");
  },
});

Deno.test({
  name: "fill() with dtype f16 writes n f16 elements and leaves the next half-word alone",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    for (const [n, value] of [[257, -1.5], [256, 0], [1, 0.1]] as const) {
      const out = gpu.upload("out", new Float16Array(300).fill(7));
      gpu.run([fill(gpu, out, n, value, "f16")]);
      const want = new Float64Array(300).fill(7);
      want.fill(value, 0, n);
      // 0.1 is not an f16: one rounding on store
      assertClose(await gpu.readF16(out, 300), want, F16_STORE, `fill f16 n=${n} value=${value}`);
    }
    const out = gpu.buffer("out", 16); // 8 f16 values
    fill(gpu, out, 8, 0, "f16");
    assertThrows(() => fill(gpu, out, 9, 0, "f16"), RangeError, /9 f16 elements do not fit buffer "out"/);
    assertThrows(() => fill(gpu, out, 8, 1e5, "f16"), RangeError, /value 100000 is not a finite float16/);
  },
});

Deno.test({
  name: "fill() with dtype f16 refuses a device without shader-f16",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await gpuWithoutF16();
    assertThrows(
      () => fill(gpu, gpu.buffer("b", 64), 8, 0, "f16"),
      Error,
      /^fill: float16 needs the WebGPU feature "shader-f16"/,
    );
    fill(gpu, gpu.buffer("b", 64), 8, 0); // f32 needs no feature
  },
});
