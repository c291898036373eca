import { dropout, dropoutMaskRef, dropoutRef } from "./dropout.ts";
import { roundF16 } from "./runtime.ts";
import { Rng } from "./random.ts";
import { assertClose, assertThrows, GPU_TEST, on2dGrid, randn, testGpu } from "../tests/util.ts";
import { f16Words, gpuWithoutF16, poisonF16, uploadF16 } from "../tests/f16.ts";
import { EXACT, F16_STORE } from "../tests/tolerance.ts";

/** Runs f16 dropout on `x` (f16 values) and reads n + 1 values (the last one must stay poisoned). */
async function gpuDropoutF16(
  x: Float64Array,
  p: number,
  seed: number,
  stream: number,
  opts: { inPlace?: boolean; gridX?: number } = {},
): Promise<Float32Array> {
  const gpu = await testGpu();
  const n = x.length;
  const xb = gpu.buffer("x", (n + 1) * 2);
  poisonF16(gpu, xb);
  gpu.write(xb, f16Words(x));
  const out = opts.inPlace ? xb : gpu.buffer("out", (n + 1) * 2);
  if (!opts.inPlace) poisonF16(gpu, out);
  const seedBuf = gpu.upload("seed", new Uint32Array([seed, 0, 0, 0]));
  const d = dropout(gpu, { x: xb, out, n, p, seed: seedBuf, stream, dtype: "f16" });
  gpu.run([opts.gridX ? on2dGrid(d, opts.gridX) : d]);
  return await gpu.readF16(out, n + 1);
}

/** Nonzero f16 inputs, so a zero output means "dropped". */
function nonzeroF16(rng: Rng, n: number): Float64Array {
  return roundF16(randn(rng, n, 3).map((v) => (v >= 0 ? v + 0.1 : v - 0.1)));
}

function check(got: Float32Array, x: Float64Array, p: number, seed: number, stream: number, label: string) {
  const n = x.length;
  assertClose(got.subarray(0, n), dropoutRef(x, seed, stream, p), F16_STORE, label);
  // the mask is exact: dropped elements are exactly 0, kept ones never round to 0
  const mask = dropoutMaskRef(seed, stream, n, p);
  for (let i = 0; i < n; i++) {
    if ((got[i] !== 0) !== (mask[i] === 1)) {
      throw new Error(`${label}: element ${i} is ${got[i]}, mask ${mask[i]}`);
    }
  }
  if (!Number.isNaN(got[n])) throw new Error(`${label}: element ${n} past the output was overwritten`);
}

Deno.test({
  name: "dropout() with dtype f16 matches dropoutRef() on f16 inputs, separate and in place",
  ...GPU_TEST,
  fn: async () => {
    const rng = new Rng(151);
    for (const p of [0.1, 0.5, 1 / 3]) {
      for (const n of [3 * 7 * 45, 1, 5, 64]) {
        const x = nonzeroF16(rng, n);
        check(await gpuDropoutF16(x, p, 7, 12), x, p, 7, 12, `dropout f16 p=${p} n=${n}`);
        check(await gpuDropoutF16(x, p, 7, 12, { inPlace: true }), x, p, 7, 12, `in place p=${p} n=${n}`);
      }
    }
    const x = nonzeroF16(rng, 3001);
    check(await gpuDropoutF16(x, 0.1, 9, 4, { gridX: 3 }), x, 0.1, 9, 4, "dropout f16 on a 2-D grid");
  },
});

Deno.test({
  name: "dropout() with dtype f16 and p = 0 copies its input exactly",
  ...GPU_TEST,
  fn: async () => {
    const x = nonzeroF16(new Rng(152), 945);
    assertClose((await gpuDropoutF16(x, 0, 123, 5)).subarray(0, 945), x, EXACT, "dropout f16 p=0");
  },
});

Deno.test({
  name: "dropout() sizes f16 buffers at 2 bytes an element",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const seed = gpu.upload("seed", new Uint32Array(4));
    const b = uploadF16(gpu, "b", new Float64Array(8)); // 16 bytes: 8 f16 values
    dropout(gpu, { x: b, out: b, n: 8, p: 0.1, seed, stream: 0, dtype: "f16" });
    assertThrows(
      () => dropout(gpu, { x: b, out: b, n: 9, p: 0.1, seed, stream: 0, dtype: "f16" }),
      RangeError,
      /buffer "x" has 16 bytes but n = 9 needs 18/,
    );
  },
});

Deno.test({
  name: "dropout() with dtype f16 refuses a device without shader-f16",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await gpuWithoutF16();
    const b = gpu.buffer("b", 64);
    assertThrows(
      () =>
        dropout(gpu, { x: b, out: b, n: 8, p: 0.1, seed: gpu.buffer("seed", 16), stream: 0, dtype: "f16" }),
      Error,
      /^dropout\(\): float16 needs the WebGPU feature "shader-f16"/,
    );
  },
});
