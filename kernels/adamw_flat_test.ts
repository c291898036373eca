import {
  ADAM_HYPER_BYTES,
  type AdamHyper,
  adamHyperValues,
  adamwFlatRef,
  adamwFlatStep,
  adamwSegmentTable,
  writeAdamHyper,
} from "./adamw.ts";
import { gradNorm, gradNormRef, gradNormScratchBytes } from "./grad_norm.ts";
import { BufferView, type Gpu } from "./runtime.ts";
import { Rng } from "./random.ts";
import { floatTensor, readSafetensors } from "../formats/safetensors.ts";
import { assertClose, assertThrows, f32, GPU_TEST, randn, testGpu } from "../tests/util.ts";
import { OPTIMIZER_F32, REDUCTION_F32 } from "../tests/tolerance.ts";

const FIXTURE = new URL("../tests/fixtures/kernels/adamw.safetensors", import.meta.url).pathname;

type Segment = { offset: number; length: number; decay: boolean };

/** Segments of these lengths at 64-element offsets, decay alternating from `decay0`. */
function layout(lengths: number[], decay: (i: number) => boolean): { segments: Segment[]; total: number } {
  let at = 0;
  const segments = lengths.map((length, i) => {
    const s = { offset: at, length, decay: decay(i) };
    at += Math.ceil(length / 64) * 64;
    return s;
  });
  return { segments, total: at };
}

/** An arena buffer holding `data`, split into windows starting at the given element offsets. */
function arena(gpu: Gpu, label: string, data: Float32Array, cuts: number[]) {
  const buffer = gpu.upload(label, data);
  const starts = [0, ...cuts];
  return starts.map((first, i) => {
    const end = starts[i + 1] ?? data.length;
    return {
      view: new BufferView(buffer, first * 4, (end - first) * 4, `${label}.${i}`),
      first,
      n: end - first,
    };
  });
}

Deno.test({
  name: "adamwFlatStep() over windows matches adamwFlatRef(): per-segment decay, padding untouched",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(57);
    const { segments, total } = layout([1, 45, 64, 130, 7, 3 * 7 * 45], (i) => i % 2 === 0);
    const table = gpu.upload("table", adamwSegmentTable(segments, total));
    const hyper = gpu.buffer("hyper", ADAM_HYPER_BYTES);
    for (const [weightDecay, clip, eps] of [[0.01, 0.37, 1e-8], [0.1, 1, 0]]) {
      // padding holds a sentinel that must survive (with eps 0 an update would write NaN there)
      const param = new Float64Array(total).fill(7);
      for (const s of segments) param.set(randn(rng, s.length), s.offset);
      const expAvg = new Float64Array(total);
      const expAvgSq = new Float64Array(total);
      const cuts = [segments[3].offset, segments[5].offset + 64]; // a window boundary inside a tensor
      const w = {
        param: arena(gpu, "param", f32(param), cuts),
        grad: arena(gpu, "grad", new Float32Array(total), cuts),
        expAvg: arena(gpu, "expAvg", new Float32Array(total), cuts),
        expAvgSq: arena(gpu, "expAvgSq", new Float32Array(total), cuts),
      };
      const clipBuf = gpu.upload("clip", Float32Array.of(NaN, clip));
      const plan = w.param.map((p, i) =>
        adamwFlatStep(gpu, {
          param: p.view,
          grad: w.grad[i].view,
          expAvg: w.expAvg[i].view,
          expAvgSq: w.expAvgSq[i].view,
          table,
          first: p.first,
          n: p.n,
          weightDecay,
          hyper,
          clip: clipBuf,
        })
      );
      for (let t = 1; t <= 4; t++) {
        const h: AdamHyper = { lr: 1e-2 / t, beta1: 0.9, beta2: 0.999, eps, step: t };
        const grad = new Float32Array(total);
        for (const s of segments) grad.set(f32(randn(rng, s.length)), s.offset);
        gpu.write(w.grad[0].view.buffer, grad);
        writeAdamHyper(gpu, hyper, h);
        gpu.run(plan);
        adamwFlatRef({ param, grad, expAvg, expAvgSq, segments, weightDecay, clip: Math.fround(clip) }, h);
        const label = `adamwFlatStep wd ${weightDecay} eps ${eps} step ${t}`;
        const read = (x: typeof w.param) => gpu.readF32(x[0].view.buffer, total);
        assertClose(await read(w.param), param, OPTIMIZER_F32, `${label} param`);
        assertClose(await read(w.expAvg), expAvg, OPTIMIZER_F32, `${label} expAvg`);
        assertClose(await read(w.expAvgSq), expAvgSq, OPTIMIZER_F32, `${label} expAvgSq`);
      }
    }
  },
});

Deno.test("adamwSegmentTable() marks valid elements and decay, and rejects misaligned segments", () => {
  const t = adamwSegmentTable([{ offset: 0, length: 70, decay: true }, {
    offset: 128,
    length: 3,
    decay: false,
  }], 192);
  if (t.join() !== [64 | 256, 6 | 256, 3].join()) throw new Error(`table ${t.join()}`);
  assertThrows(
    () => adamwSegmentTable([{ offset: 32, length: 3, decay: true }], 64),
    RangeError,
    /multiple of 64/,
  );
  assertThrows(
    () =>
      adamwSegmentTable(
        [{ offset: 0, length: 70, decay: true }, { offset: 64, length: 3, decay: true }],
        192,
      ),
    RangeError,
    /after 70/,
  );
  assertThrows(
    () => adamwSegmentTable([{ offset: 0, length: 65, decay: true }], 64),
    RangeError,
    /end by 64/,
  );
  assertThrows(() => adamwSegmentTable([], 100), RangeError, /multiple of 64/);
});

Deno.test({
  name: "gradNorm() over arena windows + adamwFlatStep() match torch clip_grad_norm_ + AdamW over 4 steps",
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
    for (const config of ["decay", "nodecay"]) {
      const lrs = file.tensors.get(`${config}.lr`)!.data as Float64Array;
      const [beta1, beta2, eps, weightDecay, maxNorm] = file.tensors.get(`${config}.hyper`)!
        .data as Float64Array;
      // torch's groups here: every tensor decays (weightDecay is 0 in "nodecay")
      const { segments, total } = layout(sizes, () => true);
      const flat = new Float32Array(total);
      segments.forEach((s, i) => flat.set(init[i], s.offset));
      const cuts = total > 128 ? [64] : [];
      const w = {
        param: arena(gpu, "param", flat, cuts),
        grad: arena(gpu, "grad", new Float32Array(total), cuts),
        expAvg: arena(gpu, "expAvg", new Float32Array(total), cuts),
        expAvgSq: arena(gpu, "expAvgSq", new Float32Array(total), cuts),
      };
      const result = gpu.buffer("result", 8);
      const clipping = maxNorm > 0;
      if (!clipping) gpu.write(result, Float32Array.of(0, 1));
      const hyper = gpu.buffer("hyper", ADAM_HYPER_BYTES);
      const table = gpu.upload("table", adamwSegmentTable(segments, total));
      const plan = clipping
        ? gradNorm(gpu, {
          grads: w.grad.map((g) => ({ buffer: g.view, n: g.n })),
          result,
          maxNorm,
          scratch: gpu.buffer("scratch", gradNormScratchBytes(w.grad.map((g) => g.n))),
        })
        : [];
      w.param.forEach((p, i) =>
        plan.push(adamwFlatStep(gpu, {
          param: p.view,
          grad: w.grad[i].view,
          expAvg: w.expAvg[i].view,
          expAvgSq: w.expAvgSq[i].view,
          table,
          first: p.first,
          n: p.n,
          weightDecay,
          hyper,
          clip: result,
        }))
      );
      for (let s = 0; s < steps; s++) {
        const g = new Float32Array(total);
        const stepGrads = sizes.map((n, i) => grads[i].subarray(s * n, (s + 1) * n));
        segments.forEach((seg, i) => g.set(stepGrads[i], seg.offset));
        gpu.write(w.grad[0].view.buffer, g);
        writeAdamHyper(gpu, hyper, { lr: lrs[s], beta1, beta2, eps, step: s + 1 });
        gpu.run(plan);
        if (clipping) {
          const want = [t(`${config}.total`)[s], t(`${config}.clip`)[s]];
          assertClose(
            await gpu.readF32(result, 2),
            want,
            REDUCTION_F32,
            `${config} step ${s + 1} [total, clip]`,
          );
          assertClose(gradNormRef(stepGrads, maxNorm), want, REDUCTION_F32, `${config} gradNormRef`);
        }
      }
      for (
        const [name, x] of [["param", w.param], ["exp_avg", w.expAvg], ["exp_avg_sq", w.expAvgSq]] as const
      ) {
        const got = await gpu.readF32(x[0].view.buffer, total);
        segments.forEach((seg, i) =>
          assertClose(
            got.subarray(seg.offset, seg.offset + seg.length),
            t(`${config}.${name}.${i}`),
            OPTIMIZER_F32,
            `adamwFlatStep ${config} tensor ${i} ${name} vs torch`,
          )
        );
      }
    }
  },
});

Deno.test({
  name: "adamwFlatStep() and writeAdamHyper() reject bad sizes and hyper-parameters",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const big = gpu.buffer("big", 64 * 4);
    const small = gpu.buffer("small", 16);
    const table = gpu.upload("table", adamwSegmentTable([{ offset: 0, length: 64, decay: true }], 64));
    const a = {
      param: big,
      grad: big,
      expAvg: big,
      expAvgSq: small,
      table,
      first: 0,
      n: 64,
      weightDecay: 0,
      hyper: big,
      clip: big,
    };
    assertThrows(
      () => adamwFlatStep(gpu, a),
      RangeError,
      /expAvgSq \("small"\) has 16 bytes but n = 64 needs 256/,
    );
    assertThrows(
      () => adamwFlatStep(gpu, { ...a, expAvgSq: big, weightDecay: -1 }),
      RangeError,
      /weightDecay/,
    );
    assertThrows(
      () => adamwFlatStep(gpu, { ...a, expAvgSq: big, hyper: small }),
      RangeError,
      /hyper has 16 bytes/,
    );
    assertThrows(() => adamwFlatStep(gpu, { ...a, expAvgSq: big, first: 3 }), RangeError, /multiple of 64/);
    assertThrows(
      () => adamwFlatStep(gpu, { ...a, expAvgSq: big, n: 64, first: 256 }),
      RangeError,
      /table \("table"\) has 16 bytes but elements up to 320 need 20/,
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
