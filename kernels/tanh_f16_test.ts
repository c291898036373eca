import { tanhBackward, tanhBackwardRef, tanhForward, tanhRef } from "./tanh.ts";
import { roundF16 } from "./runtime.ts";
import { Rng } from "./random.ts";
import { assertClose, assertThrows, GPU_TEST, on2dGrid, randn, testGpu } from "../tests/util.ts";
import { f16Words, gpuWithoutF16, poisonF16, uploadF16 } from "../tests/f16.ts";
import { F16_STORE } from "../tests/tolerance.ts";

/** N(0, 2²) f16 inputs with extremes mixed in (60000 is near f16's largest finite value, 65504). */
function inputs(rng: Rng, n: number): Float64Array {
  const extremes = [0, 1e-6, -1e-6, 15, -15, 50, -50, 60000, -60000];
  return roundF16(randn(rng, n, 2).map((v, i) => (i % 5 === 2 ? extremes[rng.int(extremes.length)] : v)));
}

/** Reads n + 1 f16 values of `buf` and checks the last (past the output) is still poisoned. */
async function readChecked(buf: GPUBuffer, n: number, label: string): Promise<Float32Array> {
  const got = await (await testGpu()).readF16(buf, n + 1);
  if (!Number.isNaN(got[n])) throw new Error(`${label}: element ${n} past the output was overwritten`);
  return got.subarray(0, n);
}

Deno.test({
  name: "tanhForward() with dtype f16 matches its CPU reference on f16 inputs",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(141);
    for (const [n, gridX] of [[3 * 7 * 45, 0], [1, 0], [5, 0], [3001, 3]]) {
      const x = inputs(rng, n);
      const out = gpu.buffer("out", (n + 1) * 2);
      poisonF16(gpu, out);
      const d = tanhForward(gpu, { x: uploadF16(gpu, "x", x), out, n, dtype: "f16" });
      gpu.run([gridX ? on2dGrid(d, gridX) : d]);
      const label = `tanhForward f16 n=${n} grid ${gridX}`;
      assertClose(await readChecked(out, n, label), tanhRef(x), F16_STORE, label);
    }
  },
});

Deno.test({
  name: "tanhBackward() with dtype f16 matches its CPU reference, separate and in place",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(142);
    for (const n of [3 * 7 * 45, 1, 5]) {
      const out = roundF16(tanhRef(inputs(rng, n)));
      const dout = roundF16(randn(rng, n));
      const want = tanhBackwardRef(out, dout);
      for (const inPlace of [false, true]) {
        const d = gpu.buffer("dout", (n + 1) * 2);
        poisonF16(gpu, d);
        gpu.write(d, f16Words(dout));
        const dx = inPlace ? d : gpu.buffer("dx", (n + 1) * 2);
        if (!inPlace) poisonF16(gpu, dx);
        gpu.run([tanhBackward(gpu, { out: uploadF16(gpu, "out", out), dout: d, dx, n, dtype: "f16" })]);
        const label = `tanhBackward f16 n=${n} inPlace=${inPlace}`;
        assertClose(await readChecked(dx, n, label), want, F16_STORE, label);
      }
    }
  },
});

Deno.test({
  name: "tanhForward() and tanhBackward() size f16 buffers at 2 bytes an element",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const b = gpu.buffer("b", 16);
    tanhForward(gpu, { x: b, out: gpu.buffer("o", 16), n: 8, dtype: "f16" });
    assertThrows(
      () =>
        tanhBackward(gpu, { out: b, dout: gpu.buffer("d", 16), dx: gpu.buffer("x", 16), n: 9, dtype: "f16" }),
      RangeError,
      /buffer "out" has 16 bytes but n = 9 needs 18/,
    );
  },
});

Deno.test({
  name: "tanhForward() and tanhBackward() with dtype f16 refuse a device without shader-f16",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await gpuWithoutF16();
    const [x, y, z] = [gpu.buffer("x", 64), gpu.buffer("y", 64), gpu.buffer("z", 64)];
    assertThrows(
      () => tanhForward(gpu, { x, out: y, n: 8, dtype: "f16" }),
      Error,
      /^tanhForward\(\): float16 needs the WebGPU feature "shader-f16"/,
    );
    assertThrows(
      () => tanhBackward(gpu, { out: x, dout: y, dx: z, n: 8, dtype: "f16" }),
      Error,
      /^tanhBackward\(\): float16 needs the WebGPU feature "shader-f16"/,
    );
  },
});
