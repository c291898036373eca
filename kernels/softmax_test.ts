import { throws } from "node:assert/strict";
import {
  attentionSoftmaxBackward,
  attentionSoftmaxBackwardRef,
  attentionSoftmaxForward,
  attentionSoftmaxRef,
  type SoftmaxVariant,
} from "./softmax.ts";
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

const FIXTURE = new URL("../tests/fixtures/kernels/softmax.safetensors", import.meta.url).pathname;

/** Both row kernels are tested here: lavapipe picks "fallback" on its own, real GPUs "workgroup". */
const VARIANTS: SoftmaxVariant[] = ["fallback", "workgroup"];

// (batch, heads, T): B=3 with odd T, single elements, and T longer than the 64-thread workgroup.
const SHAPES: [number, number, number][] = [[3, 2, 7], [1, 1, 1], [1, 1, 5], [2, 3, 70]];

/** A (B, T) mask of 1s with a random amount of padding at the end of each row (at least one 1). */
function randomMask(rng: Rng, B: number, T: number): Float32Array {
  const mask = new Float32Array(B * T);
  for (let b = 0; b < B; b++) {
    const len = b === 0 ? T : 1 + rng.int(T);
    for (let j = 0; j < len; j++) mask[b * T + j] = 1;
  }
  return mask;
}

interface SoftmaxCase {
  scores: ArrayLike<number>;
  mask: ArrayLike<number>;
  batch: number;
  heads: number;
  T: number;
  scale: number;
}

async function gpuForward(
  gpu: Gpu,
  c: SoftmaxCase,
  variant: SoftmaxVariant,
  gridX = 0,
): Promise<Float32Array> {
  const n = c.batch * c.heads * c.T * c.T;
  const probs = gpu.buffer("probs", n * 4);
  gpu.poison(probs);
  const d = attentionSoftmaxForward(gpu, {
    scores: gpu.upload("scores", f32(c.scores)),
    mask: gpu.upload("mask", f32(c.mask)),
    probs,
    batch: c.batch,
    heads: c.heads,
    T: c.T,
    scale: c.scale,
  }, variant);
  gpu.run([gridX ? on2dGrid(d, gridX) : d]);
  return await gpu.readF32(probs, n);
}

async function gpuBackward(
  gpu: Gpu,
  probs: ArrayLike<number>,
  dprobs: ArrayLike<number>,
  rows: number,
  T: number,
  scale: number,
  variant: SoftmaxVariant,
  inPlace: boolean,
  gridX = 0,
): Promise<Float32Array> {
  const dp = gpu.upload("dprobs", f32(dprobs));
  const ds = inPlace ? dp : gpu.buffer("dscores", rows * T * 4);
  if (!inPlace) gpu.poison(ds);
  const d = attentionSoftmaxBackward(gpu, {
    probs: gpu.upload("probs", f32(probs)),
    dprobs: dp,
    dscores: ds,
    rows,
    T,
    scale,
  }, variant);
  gpu.run([gridX ? on2dGrid(d, gridX) : d]);
  return await gpu.readF32(ds, rows * T);
}

function randomCase(rng: Rng, batch: number, heads: number, T: number, scoreScale = 3): SoftmaxCase {
  const scores = f32(randn(rng, batch * heads * T * T, scoreScale));
  return { scores, mask: randomMask(rng, batch, T), batch, heads, T, scale: 1 / Math.sqrt(15) };
}

function forwardRef(c: SoftmaxCase): Float64Array {
  return attentionSoftmaxRef(c.scores, c.mask, c.batch, c.heads, c.T, c.scale);
}

/** Checks that masked keys have probability exactly 0 in every query row. */
function assertMaskedZero(probs: ArrayLike<number>, c: SoftmaxCase, label: string): void {
  for (let r = 0; r < c.batch * c.heads * c.T; r++) {
    const b = Math.floor(r / (c.heads * c.T));
    for (let j = 0; j < c.T; j++) {
      if (c.mask[b * c.T + j] === 0 && probs[r * c.T + j] !== 0) {
        throw new Error(
          `${label}: masked key ${j} of row ${r} has probability ${probs[r * c.T + j]}, expected 0`,
        );
      }
    }
  }
}

Deno.test({
  name: "attentionSoftmaxForward() matches its CPU reference on odd shapes",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(21);
    for (const variant of VARIANTS) {
      for (const [B, H, T] of SHAPES) {
        const c = randomCase(rng, B, H, T);
        const got = await gpuForward(gpu, c, variant);
        const label = `attentionSoftmaxForward ${variant} ${B}x${H}x${T}`;
        assertClose(got, forwardRef(c), KERNEL_F32, label);
        assertMaskedZero(got, c, label);
      }
    }
  },
});

Deno.test({
  name: "attentionSoftmaxForward() stays finite on huge and tiny scores; masked keys get exactly 0",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(22);
    const extremes = [3e38, -3e38, 1e30, -1e30, 3e4, -3e4, 1e-30, -1e-30, 0];
    for (const variant of VARIANTS) {
      const c = randomCase(rng, 3, 2, 9);
      c.scores = Float32Array.from(c.scores, () => extremes[rng.int(extremes.length)]);
      const got = await gpuForward(gpu, c, variant);
      const label = `attentionSoftmaxForward extremes ${variant}`;
      for (let i = 0; i < got.length; i++) {
        if (!Number.isFinite(got[i])) {
          throw new Error(`${label}: probs[${i}] = ${got[i]} for score ${c.scores[i]}`);
        }
      }
      assertClose(got, forwardRef(c), KERNEL_F32, label);
      assertMaskedZero(got, c, label);
    }
  },
});

Deno.test({
  name: "attentionSoftmaxBackward() matches its CPU reference, separate and in place",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(23);
    for (const variant of VARIANTS) {
      for (const [B, H, T] of SHAPES) {
        const c = randomCase(rng, B, H, T);
        const rows = B * H * T;
        const probs = f32(forwardRef(c));
        const dprobs = f32(randn(rng, rows * T));
        const want = attentionSoftmaxBackwardRef(probs, dprobs, rows, T, c.scale);
        for (const inPlace of [false, true]) {
          const got = await gpuBackward(gpu, probs, dprobs, rows, T, c.scale, variant, inPlace);
          assertClose(
            got,
            want,
            KERNEL_F32,
            `attentionSoftmaxBackward ${variant} ${B}x${H}x${T} inPlace=${inPlace}`,
          );
        }
      }
    }
  },
});

Deno.test({
  name: "attentionSoftmaxForward() and attentionSoftmaxBackward() index rows on a 2-D grid of workgroups",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(24);
    // "workgroup": one workgroup per row on a 5-wide grid; "fallback": 64 rows per workgroup, 1 wide.
    for (const [variant, gridX] of [["workgroup", 5], ["fallback", 1]] as const) {
      const c = randomCase(rng, 3, 4, 11);
      const rows = 3 * 4 * 11;
      const got = await gpuForward(gpu, c, variant, gridX);
      assertClose(got, forwardRef(c), KERNEL_F32, `attentionSoftmaxForward ${variant} 2-D grid`);
      const dprobs = f32(randn(rng, rows * 11));
      const want = attentionSoftmaxBackwardRef(got, dprobs, rows, 11, c.scale);
      const back = await gpuBackward(gpu, got, dprobs, rows, 11, c.scale, variant, true, gridX);
      assertClose(back, want, KERNEL_F32, `attentionSoftmaxBackward ${variant} 2-D grid`);
    }
  },
});

Deno.test("attentionSoftmaxBackwardRef() matches finite differences w.r.t. the unscaled scores", () => {
  const rng = new Rng(25);
  const [B, H, T] = [2, 2, 5];
  const scale = 1 / Math.sqrt(7);
  const scores = randn(rng, B * H * T * T, 2);
  const mask = Float64Array.from([1, 1, 1, 1, 1, 1, 1, 0, 0, 0]);
  const w = randn(rng, B * H * T * T);
  const probs = attentionSoftmaxRef(scores, mask, B, H, T, scale);
  const got = attentionSoftmaxBackwardRef(probs, w, B * H * T, T, scale);
  const loss = (s: Float64Array) => dot(attentionSoftmaxRef(s, mask, B, H, T, scale), w);
  assertClose(got, finiteDifference(loss, scores), FINITE_DIFF, "dscores");
});

Deno.test({
  name:
    "attentionSoftmaxForward() and attentionSoftmaxBackward() match PyTorch (Hugging Face BERT attention)",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const t = await fixtureTensors(FIXTURE, "tests/torch/fixtures_elementwise.py");
    const [B, H, T, D] = t("shape");
    const c: SoftmaxCase = {
      scores: t("scores"),
      mask: t("mask"),
      batch: B,
      heads: H,
      T,
      scale: 1 / Math.sqrt(D),
    };
    const rows = B * H * T;
    // The float64 reference against torch float64 (batch 2 has every key masked: uniform rows).
    const ref = forwardRef(c);
    assertClose(ref, t("probs"), REF_F64, "ref probs");
    assertClose(
      attentionSoftmaxBackwardRef(t("probs"), t("dprobs"), rows, T, c.scale),
      t("dscores"),
      REF_F64,
      "ref dscores",
    );
    for (const variant of VARIANTS) {
      const got = await gpuForward(gpu, c, variant);
      assertClose(got, t("probs_f32"), KERNEL_F32, `${variant} probs vs torch float32`);
      assertClose(got, t("probs"), KERNEL_F32, `${variant} probs vs torch float64`);
      assertMaskedZero(got.subarray(0, 2 * H * T * T), { ...c, batch: 2 }, `${variant} probs`);
      const back = await gpuBackward(gpu, t("probs"), t("dprobs"), rows, T, c.scale, variant, false);
      assertClose(back, t("dscores"), KERNEL_F32, `${variant} dscores`);
    }
  },
});

Deno.test({
  name: "attentionSoftmaxForward() and attentionSoftmaxBackward() reject bad shapes and buffers",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const b = (n: number) => gpu.buffer("b", n * 4);
    const fwd = { scores: b(8), mask: b(2), probs: b(8), batch: 1, heads: 2, T: 2, scale: 0.5 };
    const fails = (fn: () => unknown, fragment: string) =>
      throws(fn, (e) => e instanceof RangeError && e.message.includes(fragment));
    fails(
      () => attentionSoftmaxForward(gpu, { ...fwd, heads: 0 }),
      "heads must be a positive integer, got 0",
    );
    fails(
      () => attentionSoftmaxForward(gpu, { ...fwd, T: 3 }),
      'buffer "scores" has 32 bytes but (B·H 2, T 3, T 3)',
    );
    fails(() => attentionSoftmaxForward(gpu, { ...fwd, scale: NaN }), "scale must be finite, got NaN");
    fails(
      () => attentionSoftmaxForward(gpu, { ...fwd, probs: fwd.scores }),
      '"probs" must be a different buffer',
    );
    const probs = b(8);
    fails(
      () => attentionSoftmaxBackward(gpu, { probs, dprobs: probs, dscores: b(8), rows: 4, T: 2, scale: 1 }),
      '"probs" must be a different buffer',
    );
  },
});
