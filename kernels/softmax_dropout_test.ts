/**
 * Attention dropout fused into the softmax kernels: forward writes probs and dropout(probs) in one
 * dispatch; backward takes the gradient of the dropped probs and applies the mask before the softmax
 * backward. Both row variants, both in place and separate.
 */
import { throws } from "node:assert/strict";
import {
  attentionSoftmaxBackward,
  attentionSoftmaxDropoutBackwardRef,
  attentionSoftmaxDropoutRef,
  attentionSoftmaxForward,
  type SoftmaxVariant,
} from "./softmax.ts";
import { dropout, dropoutMaskRef } from "./dropout.ts";
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
import { EXACT, FINITE_DIFF, KERNEL_F32, REF_F64 } from "../tests/tolerance.ts";

const FIXTURE = new URL("../tests/fixtures/kernels/fused.safetensors", import.meta.url).pathname;
const SCRIPT = "/usr/bin/python3 tests/torch/fixtures_fused.py";
const VARIANTS: SoftmaxVariant[] = ["fallback", "workgroup"];
// (batch, heads, T): odd T, a single element, and T longer than the 64-thread workgroup.
const SHAPES: [number, number, number][] = [[3, 2, 7], [1, 1, 1], [2, 3, 70]];

interface Case {
  scores: Float32Array;
  mask: Float32Array;
  batch: number;
  heads: number;
  T: number;
  scale: number;
  drop: { p: number; seed: number; stream: number };
}

function randomCase(rng: Rng, batch: number, heads: number, T: number, p = 0.1): Case {
  const mask = new Float32Array(batch * T);
  for (let b = 0; b < batch; b++) {
    const len = b === 0 ? T : 1 + rng.int(T);
    for (let j = 0; j < len; j++) mask[b * T + j] = 1;
  }
  const scores = f32(randn(rng, batch * heads * T * T, 3));
  return {
    scores,
    mask,
    batch,
    heads,
    T,
    scale: 1 / Math.sqrt(15),
    drop: { p, seed: 1 + rng.int(1e9), stream: 17 },
  };
}

const seedBuffer = (gpu: Gpu, seed: number) => gpu.upload("seed", new Uint32Array([seed, 0, 0, 0]));

async function gpuForward(
  gpu: Gpu,
  c: Case,
  variant: SoftmaxVariant,
  gridX = 0,
): Promise<{ probs: Float32Array; dropped: Float32Array }> {
  const n = c.batch * c.heads * c.T * c.T;
  const [probs, dropped] = ["probs", "dropped"].map((l) => gpu.buffer(l, n * 4));
  gpu.poison(probs);
  gpu.poison(dropped);
  const d = attentionSoftmaxForward(gpu, {
    scores: gpu.upload("scores", c.scores),
    mask: gpu.upload("mask", c.mask),
    probs,
    batch: c.batch,
    heads: c.heads,
    T: c.T,
    scale: c.scale,
    dropout: { p: c.drop.p, seed: seedBuffer(gpu, c.drop.seed), stream: c.drop.stream, dropped },
  }, variant);
  gpu.run([gridX ? on2dGrid(d, gridX) : d]);
  return { probs: await gpu.readF32(probs, n), dropped: await gpu.readF32(dropped, n) };
}

async function gpuBackward(
  gpu: Gpu,
  c: Case,
  probs: ArrayLike<number>,
  dDropped: ArrayLike<number>,
  variant: SoftmaxVariant,
  inPlace: boolean,
): Promise<Float32Array> {
  const rows = c.batch * c.heads * c.T;
  const dp = gpu.upload("dprobs", f32(dDropped));
  const ds = inPlace ? dp : gpu.buffer("dscores", rows * c.T * 4);
  if (!inPlace) gpu.poison(ds);
  gpu.run([attentionSoftmaxBackward(gpu, {
    probs: gpu.upload("probs", f32(probs)),
    dprobs: dp,
    dscores: ds,
    rows,
    T: c.T,
    scale: c.scale,
    dropout: { p: c.drop.p, seed: seedBuffer(gpu, c.drop.seed), stream: c.drop.stream },
  }, variant)]);
  return await gpu.readF32(ds, rows * c.T);
}

Deno.test({
  name: "attentionSoftmaxForward() with dropout matches its CPU reference; the mask is dropout()'s",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(51);
    for (const variant of VARIANTS) {
      for (const [B, H, T] of SHAPES) {
        for (const p of [0.1, 0.5]) {
          const c = randomCase(rng, B, H, T, p);
          const got = await gpuForward(gpu, c, variant, B * H * T > 64 ? 3 : 0);
          const want = attentionSoftmaxDropoutRef(c.scores, c.mask, B, H, T, c.scale, c.drop);
          const label = `softmax+dropout ${variant} ${B}x${H}x${T} p=${p}`;
          assertClose(got.probs, want.probs, KERNEL_F32, `${label} probs`);
          assertClose(got.dropped, want.dropped, KERNEL_F32, `${label} dropped`);
          const keep = dropoutMaskRef(c.drop.seed, c.drop.stream, got.dropped.length, p);
          got.dropped.forEach((v, i) => {
            if (!keep[i] && v !== 0) throw new Error(`${label}: dropped element ${i} is ${v}, expected 0`);
          });
        }
      }
    }
  },
});

Deno.test({
  name: "attentionSoftmaxBackward() with dropout matches its CPU reference, separate and in place",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(52);
    for (const variant of VARIANTS) {
      for (const [B, H, T] of SHAPES) {
        const c = randomCase(rng, B, H, T);
        const rows = B * H * T;
        const probs = f32(attentionSoftmaxDropoutRef(c.scores, c.mask, B, H, T, c.scale, c.drop).probs);
        const dDropped = f32(randn(rng, rows * T));
        const want = attentionSoftmaxDropoutBackwardRef(probs, dDropped, rows, T, c.scale, c.drop);
        for (const inPlace of [false, true]) {
          const got = await gpuBackward(gpu, c, probs, dDropped, variant, inPlace);
          assertClose(
            got,
            want,
            KERNEL_F32,
            `softmax+dropout backward ${variant} ${B}x${H}x${T} inPlace=${inPlace}`,
          );
        }
      }
    }
  },
});

Deno.test({
  name: "fused softmax + dropout equals attentionSoftmaxForward then dropout() (and the backward in reverse)",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(53);
    for (const variant of VARIANTS) {
      const c = randomCase(rng, 2, 3, 70);
      const n = c.batch * c.heads * c.T * c.T;
      const rows = n / c.T;
      const seed = seedBuffer(gpu, c.drop.seed);
      const scores = gpu.upload("scores", c.scores);
      const mask = gpu.upload("mask", c.mask);
      const [probs, dropped, probs2, dropped2] = ["p", "d", "p2", "d2"].map((l) => gpu.buffer(l, n * 4));
      const sm = { scores, mask, batch: c.batch, heads: c.heads, T: c.T, scale: c.scale };
      const drop = { p: c.drop.p, seed, stream: c.drop.stream };
      gpu.run([
        attentionSoftmaxForward(gpu, { ...sm, probs }, variant),
        dropout(gpu, { x: probs, out: dropped, n, ...drop }),
        attentionSoftmaxForward(
          gpu,
          { ...sm, probs: probs2, dropout: { ...drop, dropped: dropped2 } },
          variant,
        ),
      ]);
      assertClose(await gpu.readF32(probs2, n), await gpu.readF32(probs, n), EXACT, `probs [${variant}]`);
      assertClose(
        await gpu.readF32(dropped2, n),
        await gpu.readF32(dropped, n),
        EXACT,
        `dropped [${variant}]`,
      );
      const dD = f32(randn(rng, n));
      const [g1, g2] = [gpu.upload("g1", dD), gpu.upload("g2", dD)];
      const bw = { probs, rows, T: c.T, scale: c.scale };
      gpu.run([
        dropout(gpu, { x: g1, out: g1, n, ...drop }),
        attentionSoftmaxBackward(gpu, { ...bw, dprobs: g1, dscores: g1 }, variant),
        attentionSoftmaxBackward(gpu, { ...bw, dprobs: g2, dscores: g2, dropout: drop }, variant),
      ]);
      assertClose(await gpu.readF32(g2, n), await gpu.readF32(g1, n), KERNEL_F32, `dscores [${variant}]`);
    }
  },
});

Deno.test("attentionSoftmaxDropoutBackwardRef() matches finite differences of the fused forward", () => {
  const rng = new Rng(54);
  const [B, H, T] = [2, 2, 5];
  const c = randomCase(rng, B, H, T, 0.3);
  const scores = Float64Array.from(c.scores);
  const w = randn(rng, B * H * T * T);
  const loss = (s: Float64Array) =>
    dot(w, attentionSoftmaxDropoutRef(s, c.mask, B, H, T, c.scale, c.drop).dropped);
  const probs = attentionSoftmaxDropoutRef(scores, c.mask, B, H, T, c.scale, c.drop).probs;
  const grad = attentionSoftmaxDropoutBackwardRef(probs, w, B * H * T, T, c.scale, c.drop);
  assertClose(grad, finiteDifference(loss, scores), FINITE_DIFF, "dscores");
});

Deno.test({
  name: "softmax + dropout match PyTorch F.softmax then a fixed dropout mask, with autograd's gradient",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const t = await fixtureTensors(FIXTURE, SCRIPT);
    const [B, H, T, D] = Array.from(t("sd.shape"));
    const [seed, stream] = Array.from(t("sd.dropout"));
    const c: Case = {
      scores: f32(t("sd.scores")),
      mask: f32(t("sd.mask")),
      batch: B,
      heads: H,
      T,
      scale: 1 / Math.sqrt(D),
      drop: { p: t("sd.p")[0], seed, stream },
    };
    const ref = attentionSoftmaxDropoutRef(c.scores, c.mask, B, H, T, c.scale, c.drop);
    assertClose(ref.probs, t("sd.probs"), REF_F64, "ref probs");
    assertClose(ref.dropped, t("sd.dropped"), REF_F64, "ref dropped");
    const rows = B * H * T;
    const dD = t("sd.ddropped");
    assertClose(
      attentionSoftmaxDropoutBackwardRef(t("sd.probs"), dD, rows, T, c.scale, c.drop),
      t("sd.dscores"),
      REF_F64,
      "ref dscores",
    );
    for (const variant of VARIANTS) {
      const got = await gpuForward(gpu, c, variant);
      assertClose(got.probs, t("sd.probs"), KERNEL_F32, `probs [${variant}]`);
      assertClose(got.dropped, t("sd.dropped"), KERNEL_F32, `dropped [${variant}]`);
      const ds = await gpuBackward(gpu, c, got.probs, dD, variant, true);
      assertClose(ds, t("sd.dscores"), KERNEL_F32, `dscores [${variant}]`);
    }
  },
});

Deno.test({
  name: "attention softmax rejects a bad dropout p, stream or an aliased dropped buffer",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const [scores, mask, probs, dropped, seed] = ["s", "m", "p", "d", "seed"].map((l) => gpu.buffer(l, 64));
    const f = { scores, mask, probs, batch: 1, heads: 1, T: 4, scale: 1 };
    throws(
      () => attentionSoftmaxForward(gpu, { ...f, dropout: { p: 0, seed, stream: 0, dropped } }),
      /dropout.p must be in \(0, 1\), got 0; omit "dropout"/,
    );
    throws(
      () => attentionSoftmaxForward(gpu, { ...f, dropout: { p: 0.1, seed, stream: -1, dropped } }),
      /dropout.stream must be a u32/,
    );
    throws(
      () => attentionSoftmaxForward(gpu, { ...f, dropout: { p: 0.1, seed, stream: 0, dropped: probs } }),
      /"dropout.dropped" must be its own buffer/,
    );
    throws(
      () =>
        attentionSoftmaxBackward(gpu, {
          probs,
          dprobs: dropped,
          dscores: dropped,
          rows: 4,
          T: 4,
          scale: 1,
          dropout: { p: 0.1, seed: dropped, stream: 0 },
        }),
      /"dropout.seed" must be its own buffer/,
    );
  },
});
