import {
  ADAM_HYPER_BYTES,
  type AdamHyper,
  adamHyperValues,
  adamwRef,
  adamwStep,
  writeAdamHyper,
} from "./adamw.ts";
import { gradNorm, gradNormRef, gradNormScratchBytes } from "./grad_norm.ts";
import type { Dispatch } from "./runtime.ts";
import { Rng } from "./random.ts";
import { floatTensor, readSafetensors } from "../formats/safetensors.ts";
import { assertClose, assertThrows, f32, GPU_TEST, randn, testGpu } from "../tests/util.ts";
import { OPTIMIZER_F32, REDUCTION_F32 } from "../tests/tolerance.ts";

const FIXTURE = new URL("../tests/fixtures/kernels/adamw.safetensors", import.meta.url).pathname;

Deno.test({
  name: "adamwStep() matches adamwRef() over several steps, with and without decay and clipping",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(31);
    const hyper = gpu.buffer("hyper", ADAM_HYPER_BYTES);
    for (const n of [1, 45, 3 * 7 * 45]) {
      for (const [weightDecay, clip, gradScale] of [[0.01, 0.37, 1], [0, 1, 1e-4], [0.1, 1, 1e3]]) {
        const param = randn(rng, n);
        const expAvg = new Float64Array(n);
        const expAvgSq = new Float64Array(n);
        const buffers = {
          param: gpu.upload("param", f32(param)),
          grad: gpu.buffer("grad", n * 4),
          expAvg: gpu.upload("expAvg", f32(expAvg)),
          expAvgSq: gpu.upload("expAvgSq", f32(expAvgSq)),
          clip: gpu.upload("clip", Float32Array.of(NaN, clip)), // only [1] is read
        };
        const step = adamwStep(gpu, { ...buffers, n, weightDecay, hyper });
        for (let t = 1; t <= 5; t++) {
          const h: AdamHyper = { lr: 1e-2 / t, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: t };
          // f32-representable inputs so both sides start from the same values
          const grad = f32(randn(rng, n, gradScale));
          gpu.write(buffers.grad, grad);
          writeAdamHyper(gpu, hyper, h);
          gpu.run([step]);
          adamwRef({ param, grad, expAvg, expAvgSq, weightDecay, clip: Math.fround(clip) }, h);
          const label = `adamwStep n ${n} wd ${weightDecay} clip ${clip} step ${t}`;
          assertClose(await gpu.readF32(buffers.param, n), param, OPTIMIZER_F32, `${label} param`);
          // the moments are sums that can cancel: their float32 error scales with |g| (and g^2)
          const mTol = { ...OPTIMIZER_F32, abs: OPTIMIZER_F32.abs * gradScale };
          const vTol = { ...OPTIMIZER_F32, abs: OPTIMIZER_F32.abs * gradScale ** 2 };
          assertClose(await gpu.readF32(buffers.expAvg, n), expAvg, mTol, `${label} expAvg`);
          assertClose(await gpu.readF32(buffers.expAvgSq, n), expAvgSq, vTol, `${label} expAvgSq`);
        }
      }
    }
  },
});

Deno.test({
  name: "adamwStep() and writeAdamHyper() reject bad sizes and hyper-parameters",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const big = gpu.buffer("big", 64 * 4);
    const small = gpu.buffer("small", 16);
    const a = {
      param: big,
      grad: big,
      expAvg: big,
      expAvgSq: small,
      n: 64,
      weightDecay: 0,
      hyper: big,
      clip: big,
    };
    assertThrows(
      () => adamwStep(gpu, a),
      RangeError,
      /expAvgSq \("small"\) has 16 bytes but n = 64 needs 256/,
    );
    assertThrows(() => adamwStep(gpu, { ...a, expAvgSq: big, weightDecay: -1 }), RangeError, /weightDecay/);
    assertThrows(
      () => adamwStep(gpu, { ...a, expAvgSq: big, hyper: small }),
      RangeError,
      /hyper has 16 bytes/,
    );
    const h = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: 0 };
    assertThrows(() => writeAdamHyper(gpu, big, h), RangeError, /step must be a positive integer .* got 0/);
    assertThrows(
      () => adamHyperValues({ ...h, step: 1, beta2: 1 }),
      RangeError,
      /beta2 must be in \[0, 1\), got 1/,
    );
  },
});

Deno.test({
  name: "adamwStep() after gradNorm() matches torch.optim.AdamW after clip_grad_norm_ over 4 steps",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const file = await readSafetensors(FIXTURE);
    const t = (name: string) => floatTensor(file, name, FIXTURE);
    const init: Float32Array[] = [];
    const grads: Float32Array[] = [];
    for (let i = 0; file.tensors.has(`param.${i}`); i++) {
      init.push(t(`param.${i}`));
      grads.push(t(`grads.${i}`));
    }
    const steps = file.tensors.get("grads.0")!.shape[0];
    const sizes = init.map((p) => p.length);
    let sawClipBelowOne = false;
    for (const config of ["decay", "nodecay"]) {
      const lrs = file.tensors.get(`${config}.lr`)!.data as Float64Array;
      const [beta1, beta2, eps, weightDecay, maxNorm] = file.tensors.get(`${config}.hyper`)!
        .data as Float64Array;
      const clipping = maxNorm > 0;
      // GPU state
      const params = init.map((p, i) => gpu.upload(`param.${i}`, p));
      const gradBufs = sizes.map((n, i) => gpu.buffer(`grad.${i}`, n * 4));
      const expAvgs = sizes.map((n, i) => gpu.upload(`expAvg.${i}`, new Float32Array(n)));
      const expAvgSqs = sizes.map((n, i) => gpu.upload(`expAvgSq.${i}`, new Float32Array(n)));
      const result = gpu.buffer("result", 8);
      if (!clipping) gpu.write(result, Float32Array.of(0, 1));
      const hyper = gpu.buffer("hyper", ADAM_HYPER_BYTES);
      const plan: Dispatch[] = clipping
        ? gradNorm(gpu, {
          grads: gradBufs.map((buffer, i) => ({ buffer, n: sizes[i] })),
          result,
          maxNorm,
          scratch: gpu.buffer("scratch", gradNormScratchBytes(sizes)),
        })
        : [];
      sizes.forEach((n, i) =>
        plan.push(adamwStep(gpu, {
          param: params[i],
          grad: gradBufs[i],
          expAvg: expAvgs[i],
          expAvgSq: expAvgSqs[i],
          n,
          weightDecay,
          hyper,
          clip: result,
        }))
      );
      // CPU reference state (float64)
      const ref = init.map((p) => ({
        param: Float64Array.from(p),
        expAvg: new Float64Array(p.length),
        expAvgSq: new Float64Array(p.length),
      }));
      for (let s = 0; s < steps; s++) {
        const stepGrads = sizes.map((n, i) => grads[i].subarray(s * n, (s + 1) * n));
        stepGrads.forEach((g, i) => gpu.write(gradBufs[i], g));
        const h = { lr: lrs[s], beta1, beta2, eps, step: s + 1 };
        writeAdamHyper(gpu, hyper, h);
        gpu.run(plan);
        const [, clip] = clipping ? gradNormRef(stepGrads, maxNorm) : [0, 1];
        ref.forEach((r, i) => adamwRef({ ...r, grad: stepGrads[i], weightDecay, clip }, h));
        if (clipping) {
          const got = await gpu.readF32(result, 2);
          const want = [t(`${config}.total`)[s], t(`${config}.clip`)[s]];
          assertClose(got, want, REDUCTION_F32, `${config} step ${s + 1} [total, clip] vs torch`);
          if (want[1] < 1) sawClipBelowOne = true;
        }
      }
      for (let i = 0; i < sizes.length; i++) {
        const label = `${config} tensor ${i} after ${steps} steps`;
        for (
          const [name, buf, cpu] of [
            ["param", params[i], ref[i].param],
            ["exp_avg", expAvgs[i], ref[i].expAvg],
            ["exp_avg_sq", expAvgSqs[i], ref[i].expAvgSq],
          ] as const
        ) {
          const want = t(`${config}.${name}.${i}`);
          assertClose(
            await gpu.readF32(buf, sizes[i]),
            want,
            OPTIMIZER_F32,
            `adamwStep ${label} ${name} vs torch`,
          );
          assertClose(cpu, want, OPTIMIZER_F32, `adamwRef ${label} ${name} vs torch`);
        }
      }
    }
    if (!sawClipBelowOne) throw new Error("The AdamW fixture never clips (clip < 1): regenerate it");
  },
});
