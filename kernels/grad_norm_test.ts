import { gradNorm, gradNormRef, gradNormScaledRef, gradNormScratchBytes } from "./grad_norm.ts";
import {
  ADAM_HYPER_BYTES,
  type AdamHyper,
  adamwFlatStep,
  adamwRef,
  adamwSegmentTable,
  writeAdamHyper,
} from "./adamw.ts";
import { BufferView, type Gpu } from "./runtime.ts";
import { Rng } from "./random.ts";
import { floatTensor, readSafetensors } from "../formats/safetensors.ts";
import { assertClose, assertThrows, f32, GPU_TEST, randn, testGpu } from "../tests/util.ts";
import { EXACT, KERNEL_F32, OPTIMIZER_F32, REDUCTION_F32 } from "../tests/tolerance.ts";

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

/** gradNorm with a loss scale buffer holding `scale`; returns [total, clip / S, foundInf]. */
function gpuNormScaled(
  gpu: Gpu,
  grads: ArrayLike<number>[],
  maxNorm: number,
  scale: number,
): Promise<Float32Array> {
  const buffers = grads.map((g, i) => ({ buffer: gpu.upload(`grad.${i}`, f32(g)), n: g.length }));
  const scratch = gpu.buffer("scratch", gradNormScratchBytes(grads.map((g) => g.length)));
  const result = gpu.buffer("result", 12);
  gpu.poison(scratch);
  gpu.poison(result);
  const S = gpu.upload("scale", new Float32Array([scale]));
  gpu.run(gradNorm(gpu, { grads: buffers, result, maxNorm, scratch, scale: S }));
  return gpu.readF32(result, 3);
}

Deno.test({
  name: "gradNorm() with a loss scale gives the unscaled norm, clip / S and foundInf 0",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(23);
    // 1e20 scaled gradients square to 1e40 (past float32's 3.4e38): only the unscaled sum stays finite
    for (const [S, magnitude] of [[65536, 1], [65536, 1e20 / 65536], [1024, 1e-3], [3, 1], [1, 1]]) {
      const unscaled = [1, 45, 4097, 9000, 5].map((n) => randn(rng, n, magnitude));
      const grads = unscaled.map((g) => f32(g.map((v) => v * S)));
      const [total] = gradNormRef(grads.map((g) => g.map((v) => v / S)), Infinity);
      for (const maxNorm of [total / 7, total * 3, 0, Infinity]) {
        const label = `gradNorm S ${S} magnitude ${magnitude} maxNorm ${maxNorm}`;
        const got = await gpuNormScaled(gpu, grads, maxNorm, S);
        const want = gradNormScaledRef(grads, maxNorm, S);
        assertClose(got, want, REDUCTION_F32, label);
        assertClose([got[0]], [gradNormRef(unscaled, Infinity)[0]], REDUCTION_F32, `${label}: vs unscaled`);
        if (got[2] !== 0) throw new Error(`${label}: foundInf is ${got[2]}, expected exactly 0`);
        if (!(maxNorm > 0 && maxNorm < Infinity) && got[1] !== Math.fround(1 / S)) {
          throw new Error(`${label}: result[1] is ${got[1]}, expected exactly 1/S = ${Math.fround(1 / S)}`);
        }
        const again = await gpuNormScaled(gpu, grads, maxNorm, S);
        assertClose(again, got, EXACT, `${label}: a second run`);
      }
    }
  },
});

Deno.test({
  name: "gradNorm() with a loss scale flags an inf or NaN gradient element: total +inf, foundInf 1",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(24);
    const sizes = [45, 9000, 4097, 5];
    // [gradient, element]: the middle of a later partial, a chunk's first element, the last buffer's end
    for (const [bad, at] of [[1, 5000], [2, 4096], [3, 4], [0, 0]]) {
      for (const value of [Infinity, NaN, -Infinity]) {
        const grads = sizes.map((n) => f32(randn(rng, n, 1024)));
        grads[bad][at] = value;
        for (const maxNorm of [1, 0]) {
          const label = `gradNorm ${value} in gradient ${bad} element ${at} maxNorm ${maxNorm}`;
          const got = await gpuNormScaled(gpu, grads, maxNorm, 1024);
          if (got[0] !== Infinity || got[2] !== 1) {
            throw new Error(`${label}: result [${got}], expected total +inf and foundInf 1`);
          }
          // clipping: maxNorm / inf = 0; no clipping: 1/S (the caller skips the step either way)
          assertClose([got[1]], [gradNormScaledRef(grads, maxNorm, 1024)[1]], EXACT, `${label}: result[1]`);
        }
      }
    }
  },
});

Deno.test({
  name: "gradNorm() with a loss scale flags a float32 sum of finite partials that overflows",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    // each partial is 2.25e38 (finite); their float32 sum is not
    const grads = [new Float32Array([1.5e19]), new Float32Array([1.5e19])];
    const got = await gpuNormScaled(gpu, grads, 1, 1);
    if (got[0] !== Infinity || got[2] !== 1) throw new Error(`result [${got}], expected [inf, 0, 1]`);
  },
});

Deno.test({
  name: "gradNorm() with a loss scale feeds AdamW the unscaled, clipped gradient (result[1] = clip / S > 1)",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(25);
    const n = 777;
    const S = 1 / 64; // a scale below 1 makes result[1] = clip / S > 1: AdamW must not assume it is <= 1
    const unscaled = f32(randn(rng, n));
    const scaled = f32(unscaled.map((v) => v * S));
    const [total] = gradNormRef([unscaled], Infinity);
    const maxNorm = total / 4;
    const grad = gpu.upload("grad", scaled);
    const result = gpu.buffer("result", 16);
    const scratch = gpu.buffer("scratch", gradNormScratchBytes([n]));
    const scaleBuf = gpu.upload("scale", new Float32Array([S]));
    const param = randn(rng, n);
    const [paramBuf, m, v] = [
      gpu.upload("param", f32(param)),
      gpu.buffer("m", n * 4),
      gpu.buffer("v", n * 4),
    ];
    const h: AdamHyper = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: 1 };
    const hyper = gpu.buffer("hyper", ADAM_HYPER_BYTES);
    writeAdamHyper(gpu, hyper, h);
    gpu.run([
      ...gradNorm(gpu, { grads: [{ buffer: grad, n }], result, maxNorm, scratch, scale: scaleBuf }),
      adamwFlatStep(gpu, {
        param: paramBuf,
        grad,
        expAvg: m,
        expAvgSq: v,
        table: gpu.upload(
          "table",
          adamwSegmentTable([{ offset: 0, length: n, decay: true }], Math.ceil(n / 64) * 64),
        ),
        first: 0,
        n,
        weightDecay: 0.01,
        hyper,
        clip: result,
      }),
    ]);
    const got = await gpu.readF32(result, 3);
    const clip = gradNormRef([unscaled], maxNorm)[1];
    assertClose(got, [total, clip / S, 0], REDUCTION_F32, "result");
    if (!(got[1] > 1)) throw new Error(`result[1] = ${got[1]}, expected > 1 for this case`);
    const want = {
      param: Float64Array.from(param),
      expAvg: new Float64Array(n),
      expAvgSq: new Float64Array(n),
    };
    adamwRef({ ...want, grad: unscaled, weightDecay: 0.01, clip }, h);
    assertClose(
      await gpu.readF32(m, n),
      want.expAvg,
      OPTIMIZER_F32,
      "exp_avg of the unscaled, clipped gradient",
    );
    assertClose(await gpu.readF32(paramBuf, n), want.param, OPTIMIZER_F32, "param");
  },
});

Deno.test({
  name: "gradNorm() with a loss scale needs a 12-byte result and its own scale buffer",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const grads = [{ buffer: gpu.buffer("g", 64), n: 16 }];
    const scratch = gpu.buffer("scratch", gradNormScratchBytes([16]));
    const scale = gpu.buffer("scale", 4);
    const small = new BufferView(gpu.buffer("r", 16), 0, 8, "result");
    assertThrows(
      () => gradNorm(gpu, { grads, result: small, maxNorm: 1, scratch, scale }),
      RangeError,
      /result has 8 bytes, needs 12 \(\[total, clip \/ S, foundInf\]\)/,
    );
    const result = gpu.buffer("result", 16);
    assertThrows(
      () => gradNorm(gpu, { grads, result, maxNorm: 1, scratch, scale: result }),
      RangeError,
      /"scale" must be its own buffer/,
    );
  },
});
