import { gradNorm, gradNormRef, gradNormScratchBytes } from "./grad_norm.ts";
import type { Gpu } from "./runtime.ts";
import { Rng } from "./random.ts";
import { floatTensor, readSafetensors } from "../formats/safetensors.ts";
import { assertClose, assertThrows, f32, GPU_TEST, randn, testGpu } from "../tests/util.ts";
import { KERNEL_F32, REDUCTION_F32 } from "../tests/tolerance.ts";

const FIXTURE = new URL("../tests/fixtures/kernels/grad_norm.safetensors", import.meta.url).pathname;

/** Runs gradNorm on the GPU over float32 copies of `grads`; returns [total, clip]. */
function gpuNorm(gpu: Gpu, grads: ArrayLike<number>[], maxNorm: number): Promise<Float32Array> {
  const buffers = grads.map((g, i) => ({ buffer: gpu.upload(`grad.${i}`, f32(g)), n: g.length }));
  const scratch = gpu.buffer("scratch", gradNormScratchBytes(grads.map((g) => g.length)));
  const result = gpu.buffer("result", 8);
  gpu.poison(scratch);
  gpu.poison(result);
  gpu.run(gradNorm(gpu, { grads: buffers, result, maxNorm, scratch }));
  return gpu.readF32(result, 2);
}

Deno.test({
  name: "gradNorm() matches its CPU reference over odd sizes, several partials and large magnitudes",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(21);
    for (const scale of [1, 1e-3, 1e3]) {
      const grads = [1, 45, 4097, 9000, 5].map((n) => randn(rng, n, scale));
      const [total] = gradNormRef(grads, Infinity);
      // below, near and above the total, and the no-clipping settings
      for (const maxNorm of [total / 7, total * 0.999, total * 3, 0, -1, Infinity]) {
        const got = await gpuNorm(gpu, grads, maxNorm);
        const want = gradNormRef(grads, maxNorm);
        assertClose(got, want, REDUCTION_F32, `gradNorm scale ${scale} maxNorm ${maxNorm}`);
        if (!(maxNorm > 0 && maxNorm < Infinity) && got[1] !== 1) {
          throw new Error(`gradNorm maxNorm ${maxNorm}: clip is ${got[1]}, expected exactly 1`);
        }
      }
    }
  },
});

Deno.test({
  name: "gradNorm() gives bit-identical results on every run",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const grads = [45, 12289, 7].map((n, i) => randn(new Rng(22 + i), n));
    const first = await gpuNorm(gpu, grads, 1);
    for (let run = 0; run < 3; run++) {
      const again = await gpuNorm(gpu, grads, 1);
      if (again[0] !== first[0] || again[1] !== first[1]) {
        throw new Error(`gradNorm run ${run + 2} gave [${again}], the first gave [${first}]`);
      }
    }
  },
});

Deno.test({
  name: "gradNorm() rejects a short scratch buffer, a NaN maxNorm and a short gradient buffer",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const grads = [{ buffer: gpu.buffer("g", 20000 * 4), n: 20000 }];
    const result = gpu.buffer("result", 8);
    const scratch = gpu.buffer("scratch", gradNormScratchBytes([20000]));
    const small = gpu.buffer("small", 4);
    assertThrows(
      () => gradNorm(gpu, { grads, result, maxNorm: 1, scratch: small }),
      RangeError,
      /scratch has 16 bytes but needs 20/,
    );
    assertThrows(() => gradNorm(gpu, { grads, result, maxNorm: NaN, scratch }), RangeError, /maxNorm is NaN/);
    assertThrows(
      () => gradNorm(gpu, { grads: [{ buffer: small, n: 5 }], result, maxNorm: 1, scratch }),
      RangeError,
      /gradient 0 \("small"\) has 16 bytes but n = 5 needs 20/,
    );
  },
});

Deno.test({
  name: "gradNorm() matches torch.nn.utils.clip_grad_norm_ (total norm, coefficient and clipped grads)",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const file = await readSafetensors(FIXTURE);
    const grads: Float32Array[] = [];
    for (let i = 0; file.tensors.has(`grad.${i}`); i++) grads.push(floatTensor(file, `grad.${i}`, FIXTURE));
    if (grads.length < 2) throw new Error("grad_norm fixture holds fewer than 2 gradients");
    for (const c of ["clipped", "unclipped"]) {
      const maxNorm = floatTensor(file, `${c}.max_norm`, FIXTURE)[0];
      const want = [floatTensor(file, `${c}.total`, FIXTURE)[0], floatTensor(file, `${c}.clip`, FIXTURE)[0]];
      const got = await gpuNorm(gpu, grads, maxNorm);
      assertClose(got, want, REDUCTION_F32, `gradNorm ${c} vs torch`);
      assertClose(gradNormRef(grads, maxNorm), want, REDUCTION_F32, `gradNormRef ${c} vs torch`);
      if (c === "clipped") {
        if (!(want[1] < 1)) throw new Error(`fixture case "clipped" has clip ${want[1]}, expected < 1`);
        // AdamW reads g * clip; torch rescales the grads in place by the same float32 product
        grads.forEach((g, i) => {
          const scaled = g.map((v) => Math.fround(v * got[1]));
          assertClose(scaled, floatTensor(file, `${c}.grad.${i}`, FIXTURE), KERNEL_F32, `clipped grad ${i}`);
        });
      }
    }
  },
});
