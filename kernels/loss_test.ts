import { throws } from "node:assert/strict";
import { crossEntropyRef, lossForwardBackward, mseRef } from "./loss.ts";
import { Rng } from "./random.ts";
import type { Gpu } from "./runtime.ts";
import {
  assertClose,
  f32,
  finiteDifference,
  fixtureTensors,
  GPU_TEST,
  randn,
  testGpu,
} from "../tests/util.ts";
import { EXACT, FINITE_DIFF, KERNEL_F32, REF_F64 } from "../tests/tolerance.ts";

const FIXTURE = new URL("../tests/fixtures/kernels/loss.safetensors", import.meta.url).pathname;

interface LossRun {
  loss: number;
  dlogits: Float32Array;
}

/** Runs the loss kernel once; `loss0` is the loss buffer's prior value when accumulating. */
async function gpuLoss(
  gpu: Gpu,
  logits: ArrayLike<number>,
  labels: ArrayLike<number>,
  batch: number,
  numLabels: number,
  opts: { gradScale?: number; lossScale?: number; loss0?: number; scale?: number } = {},
): Promise<LossRun> {
  const loss = opts.loss0 === undefined
    ? gpu.buffer("loss", 4)
    : gpu.upload("loss", new Float32Array([opts.loss0]));
  if (opts.loss0 === undefined) gpu.poison(loss);
  const dlogits = gpu.buffer("dlogits", batch * numLabels * 4);
  gpu.poison(dlogits);
  gpu.run(lossForwardBackward(gpu, {
    logits: gpu.upload("logits", f32(logits)),
    labels: gpu.upload("labels", f32(labels)),
    loss,
    dlogits,
    batch,
    numLabels,
    gradScale: opts.gradScale,
    lossScale: opts.lossScale,
    accumulateLoss: opts.loss0 !== undefined,
    scale: opts.scale === undefined ? undefined : gpu.upload("scale", new Float32Array([opts.scale])),
  }));
  return { loss: (await gpu.readF32(loss, 1))[0], dlogits: await gpu.readF32(dlogits, batch * numLabels) };
}

function randomLabels(rng: Rng, batch: number, numLabels: number): Float32Array {
  return Float32Array.from({ length: batch }, () => rng.int(numLabels));
}

Deno.test({
  name: "lossForwardBackward() matches crossEntropyRef() on odd shapes",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(61);
    // B = 70 gives threads of the 64-wide workgroup more than one row.
    for (const [B, L] of [[3, 5], [1, 2], [70, 2], [5, 3]]) {
      const logits = f32(randn(rng, B * L, 2));
      const labels = randomLabels(rng, B, L);
      const want = crossEntropyRef(logits, labels, B, L);
      const got = await gpuLoss(gpu, logits, labels, B, L);
      assertClose([got.loss], [want.loss], KERNEL_F32, `loss B=${B} L=${L}`);
      assertClose(got.dlogits, want.dlogits, KERNEL_F32, `dlogits B=${B} L=${L}`);
    }
  },
});

Deno.test({
  name: "lossForwardBackward() stays finite on extreme logits",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(62);
    const [B, L] = [6, 3];
    const extremes = [1e4, -1e4, 80, -80, 1e-30, 0];
    const logits = Float32Array.from({ length: B * L }, () => extremes[rng.int(extremes.length)]);
    const labels = randomLabels(rng, B, L);
    const want = crossEntropyRef(logits, labels, B, L);
    const got = await gpuLoss(gpu, logits, labels, B, L);
    if (!Number.isFinite(got.loss)) throw new Error(`loss is ${got.loss}`);
    assertClose([got.loss], [want.loss], KERNEL_F32, "loss");
    assertClose(got.dlogits, want.dlogits, KERNEL_F32, "dlogits");
  },
});

Deno.test({
  name: "lossForwardBackward() matches mseRef() for one label (regression)",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(63);
    for (const B of [1, 5, 70]) {
      const logits = f32(randn(rng, B));
      const labels = f32(randn(rng, B, 2));
      const want = mseRef(logits, labels, B);
      const got = await gpuLoss(gpu, logits, labels, B, 1);
      assertClose([got.loss], [want.loss], KERNEL_F32, `mse loss B=${B}`);
      assertClose(got.dlogits, want.dlogits, KERNEL_F32, `mse dlogits B=${B}`);
    }
  },
});

Deno.test({
  name: "lossForwardBackward() scales for gradient accumulation and accumulates the loss",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(64);
    // Three micro-batches of 4 rows: the mean over all 12 rows, built up micro-batch by micro-batch.
    const [B, L, steps] = [4, 3, 3];
    const logits = f32(randn(rng, steps * B * L, 2));
    const labels = randomLabels(rng, steps * B, L);
    const whole = crossEntropyRef(logits, labels, steps * B, L);
    const scale = 1 / (B * steps);
    let loss = 0;
    for (let s = 0; s < steps; s++) {
      const got = await gpuLoss(
        gpu,
        logits.subarray(s * B * L, (s + 1) * B * L),
        labels.subarray(s * B, (s + 1) * B),
        B,
        L,
        {
          gradScale: scale,
          lossScale: scale,
          loss0: loss,
        },
      );
      loss = got.loss;
      assertClose(
        got.dlogits,
        whole.dlogits.subarray(s * B * L, (s + 1) * B * L),
        KERNEL_F32,
        `dlogits of micro-batch ${s}`,
      );
    }
    assertClose([loss], [whole.loss], KERNEL_F32, "accumulated loss");
  },
});

Deno.test({
  name: "lossForwardBackward() makes the loss NaN for a label that is not a class index",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(65);
    const [B, L] = [3, 3];
    const logits = f32(randn(rng, B * L));
    for (const bad of [3, -1, 1.5, NaN]) {
      const got = await gpuLoss(gpu, logits, [0, bad, 2], B, L);
      if (!Number.isNaN(got.loss)) throw new Error(`label ${bad}: loss is ${got.loss}, expected NaN`);
      if (!got.dlogits.subarray(L, 2 * L).every(Number.isNaN)) {
        throw new Error(`label ${bad}: row 1 dlogits ${got.dlogits}`);
      }
      // The valid rows keep their gradient.
      const ok = crossEntropyRef([...logits.subarray(0, L), ...logits.subarray(2 * L)], [0, 2], 2, L);
      assertClose(
        [...got.dlogits.subarray(0, L), ...got.dlogits.subarray(2 * L)],
        ok.dlogits.map((v) => (v * 2) / B),
        KERNEL_F32,
        `label ${bad}: valid rows`,
      );
    }
  },
});

Deno.test("crossEntropyRef() and mseRef() match finite differences", () => {
  const rng = new Rng(66);
  const [B, L] = [4, 3];
  const logits = randn(rng, B * L, 2);
  const labels = [2, 0, 1, 1];
  const ce = crossEntropyRef(logits, labels, B, L);
  assertClose(
    ce.dlogits,
    finiteDifference((v) => crossEntropyRef(v, labels, B, L).loss, logits),
    FINITE_DIFF,
    "ce",
  );
  const reg = randn(rng, B);
  const targets = randn(rng, B);
  const mse = mseRef(reg, targets, B);
  assertClose(mse.dlogits, finiteDifference((v) => mseRef(v, targets, B).loss, reg), FINITE_DIFF, "mse");
});

Deno.test({
  name: "lossForwardBackward() matches PyTorch CrossEntropyLoss and MSELoss",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const t = await fixtureTensors(FIXTURE, "tests/torch/fixtures_elementwise.py");
    const [B, L] = [5, 3];
    const ce = crossEntropyRef(t("ce.logits"), t("ce.labels"), B, L);
    assertClose([ce.loss], t("ce.loss"), REF_F64, "ce ref loss");
    assertClose(ce.dlogits, t("ce.dlogits"), REF_F64, "ce ref dlogits");
    const gotCe = await gpuLoss(gpu, t("ce.logits"), t("ce.labels"), B, L);
    assertClose([gotCe.loss], t("ce.loss"), KERNEL_F32, "ce gpu loss");
    assertClose([gotCe.loss], t("ce.loss_f32"), KERNEL_F32, "ce gpu loss vs torch float32");
    assertClose(gotCe.dlogits, t("ce.dlogits"), KERNEL_F32, "ce gpu dlogits");
    const mse = mseRef(t("mse.logits"), t("mse.labels"), B);
    assertClose([mse.loss], t("mse.loss"), REF_F64, "mse ref loss");
    assertClose(mse.dlogits, t("mse.dlogits"), REF_F64, "mse ref dlogits");
    const gotMse = await gpuLoss(gpu, t("mse.logits"), t("mse.labels"), B, 1);
    assertClose([gotMse.loss], t("mse.loss"), KERNEL_F32, "mse gpu loss");
    assertClose([gotMse.loss], t("mse.loss_f32"), KERNEL_F32, "mse gpu loss vs torch float32");
    assertClose(gotMse.dlogits, t("mse.dlogits"), KERNEL_F32, "mse gpu dlogits");
  },
});

Deno.test({
  name: "lossForwardBackward() rejects bad shapes, scales and buffers",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const b = (n: number) => gpu.buffer("b", n * 4);
    const args = { logits: b(6), labels: b(2), loss: b(1), dlogits: b(6), batch: 2, numLabels: 3 };
    const fails = (fn: () => unknown, fragment: string) =>
      throws(fn, (e) => e instanceof RangeError && e.message.includes(fragment));
    fails(
      () => lossForwardBackward(gpu, { ...args, numLabels: 0 }),
      "numLabels must be a positive integer, got 0",
    );
    fails(() => lossForwardBackward(gpu, { ...args, gradScale: Infinity }), "gradScale must be finite");
    fails(
      () => lossForwardBackward(gpu, { ...args, dlogits: args.logits }),
      "must be four different buffers",
    );
    fails(
      () => lossForwardBackward(gpu, { ...args, batch: 3 }),
      'buffer "logits" has 32 bytes but (B 3, L 3) needs 36',
    );
  },
});

Deno.test({
  name: "lossForwardBackward() with a loss scale buffer multiplies dlogits by S and leaves the loss unscaled",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(67);
    for (const [B, L] of [[5, 3], [7, 1], [1, 2]]) {
      const logits = f32(randn(rng, B * L, 3));
      const labels = L === 1 ? f32(randn(rng, B)) : randomLabels(rng, B, L);
      const ref = L === 1 ? mseRef(logits, labels, B) : crossEntropyRef(logits, labels, B, L);
      for (const loss0 of [undefined, 0.75]) {
        const opts = { gradScale: 1 / (2 * B), loss0 };
        const plain = await gpuLoss(gpu, logits, labels, B, L, opts);
        for (const S of [65536, 0.125, 3]) {
          const label = `B ${B} L ${L} S ${S} accumulate ${loss0 !== undefined}`;
          const got = await gpuLoss(gpu, logits, labels, B, L, { ...opts, scale: S });
          assertClose([got.loss], [plain.loss], EXACT, `${label}: loss`);
          // (g·gradScale)·S: a power-of-two S scales the float32 product exactly
          const tol = Number.isInteger(Math.log2(S)) ? EXACT : KERNEL_F32;
          assertClose(got.dlogits, plain.dlogits.map((g) => g * S), tol, `${label}: dlogits vs unscaled x S`);
          assertClose(
            got.dlogits.map((g) => g / S),
            ref.dlogits.map((g) => g / 2),
            KERNEL_F32,
            `${label}: dlogits / S vs reference`,
          );
        }
      }
    }
  },
});

Deno.test({
  name:
    "lossForwardBackward() with a loss scale keeps NaN for a bad label and rejects a written scale buffer",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const got = await gpuLoss(gpu, [0.5, -1, 2, 0, 1, 3], [1, 2.5], 2, 3, { scale: 1024 });
    if (!Number.isNaN(got.loss) || !got.dlogits.slice(3).every(Number.isNaN)) {
      throw new Error(`a bad label with a scale gave loss ${got.loss} and dlogits [${got.dlogits}]`);
    }
    if (!got.dlogits.slice(0, 3).every(Number.isFinite)) throw new Error(`valid row: [${got.dlogits}]`);
    const b = (n: number) => gpu.buffer("b", n * 4);
    const args = { logits: b(6), labels: b(2), loss: b(1), dlogits: b(6), batch: 2, numLabels: 3 };
    throws(
      () => lossForwardBackward(gpu, { ...args, scale: args.loss }),
      (e) =>
        e instanceof RangeError && e.message.includes('"scale" must not be the "loss" or "dlogits" buffer'),
    );
  },
});
