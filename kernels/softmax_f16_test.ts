/**
 * Attention softmax with float16 activations (dtype "f16"): GPU vs the float64 reference on the
 * f16-rounded inputs, forward with and without dropout, backward out of place and in place (as
 * train/model.ts runs it) with and without dropout, both row kernels.
 */
import { throws } from "node:assert/strict";
import {
  attentionSoftmaxBackward,
  attentionSoftmaxBackwardRef,
  attentionSoftmaxDropoutBackwardRef,
  attentionSoftmaxDropoutRef,
  attentionSoftmaxForward,
  attentionSoftmaxRef,
  type SoftmaxVariant,
} from "./softmax.ts";
import { Rng } from "./random.ts";
import { Gpu, roundF16 } from "./runtime.ts";
import { assertClose, GPU_TEST, randn, testGpu } from "../tests/util.ts";
import { F16_STORE } from "../tests/tolerance.ts";
import { uploadF16 } from "../tests/f16.ts";

const VARIANTS: SoftmaxVariant[] = ["fallback", "workgroup"];
// (B, H, T): B·H·T rows not a multiple of the 64-thread workgroup; T up to BERT's 512 would be slow on
// lavapipe, 128 is past the workgroup width.
const SHAPES: [number, number, number][] = [[2, 3, 45], [1, 2, 128], [3, 1, 7]];

/** A poisoned float16 buffer of `n` values. */
function out16(gpu: Gpu, label: string, n: number): GPUBuffer {
  const b = gpu.buffer(label, n * 2);
  gpu.poison(b);
  return b;
}

/** (B, T) mask of 1/0: each sequence keeps a random-length prefix of at least one token. */
function prefixMask(rng: Rng, batch: number, T: number): Float32Array {
  const mask = new Float32Array(batch * T);
  for (let b = 0; b < batch; b++) {
    const len = 1 + Math.floor(rng.uniform() * T);
    mask.fill(1, b * T, b * T + len);
  }
  return mask;
}

Deno.test({
  name: "attentionSoftmaxForward() f16: probs and dropped match the float64 reference",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(73);
    const drop = { p: 0.1, seed: 2024, stream: 5 };
    for (const [batch, heads, T] of SHAPES) {
      const n = batch * heads * T * T;
      const scores = roundF16(randn(rng, n, 3));
      const mask = prefixMask(rng, batch, T);
      const scale = 1 / Math.sqrt(64);
      const want = attentionSoftmaxDropoutRef(scores, mask, batch, heads, T, scale, drop);
      for (const variant of VARIANTS) {
        for (const withDrop of [false, true]) {
          const label = `${batch}x${heads}x${T} ${variant}${withDrop ? " dropout" : ""}`;
          const [probs, dropped] = [out16(gpu, "probs", n), out16(gpu, "dropped", n)];
          const seed = gpu.upload("seed", new Uint32Array(4).fill(drop.seed));
          gpu.run([attentionSoftmaxForward(gpu, {
            scores: uploadF16(gpu, "scores", scores),
            mask: gpu.upload("mask", mask),
            probs,
            batch,
            heads,
            T,
            scale,
            dropout: withDrop ? { ...drop, seed, dropped } : undefined,
            dtype: "f16",
          }, variant)]);
          const got = await gpu.readF16(probs, n);
          assertClose(got, want.probs, F16_STORE, `probs ${label}`);
          const leak = got.findIndex((v, i) =>
            v !== 0 && mask[Math.floor(i / (heads * T * T)) * T + (i % T)] === 0
          );
          if (leak >= 0) {
            throw new Error(`probs ${label}: masked key at ${leak} has ${got[leak]}, expected 0`);
          }
          if (withDrop) {
            assertClose(await gpu.readF16(dropped, n), want.dropped, F16_STORE, `dropped ${label}`);
          }
        }
      }
    }
  },
});

Deno.test({
  name: "attentionSoftmaxBackward() f16: out of place and in place, with and without dropout",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(79);
    const drop = { p: 0.1, seed: 99, stream: 13 };
    for (const [batch, heads, T] of SHAPES) {
      const rows = batch * heads * T;
      const n = rows * T;
      const scale = 1 / Math.sqrt(64);
      const mask = prefixMask(rng, batch, T);
      const probs = roundF16(attentionSoftmaxRef(randn(rng, n, 3), mask, batch, heads, T, scale));
      const dprobs = roundF16(randn(rng, n));
      for (const variant of VARIANTS) {
        for (const withDrop of [false, true]) {
          const want = withDrop
            ? attentionSoftmaxDropoutBackwardRef(probs, dprobs, rows, T, scale, drop)
            : attentionSoftmaxBackwardRef(probs, dprobs, rows, T, scale);
          for (const inPlace of [false, true]) {
            const label = `${batch}x${heads}x${T} ${variant}${withDrop ? " dropout" : ""}${
              inPlace ? " in place" : ""
            }`;
            const dp = uploadF16(gpu, "dprobs", dprobs);
            const dscores = inPlace ? dp : out16(gpu, "dscores", n);
            gpu.run([attentionSoftmaxBackward(gpu, {
              probs: uploadF16(gpu, "probs", probs),
              dprobs: dp,
              dscores,
              rows,
              T,
              scale,
              dropout: withDrop
                ? { ...drop, seed: gpu.upload("seed", new Uint32Array(4).fill(drop.seed)) }
                : undefined,
              dtype: "f16",
            }, variant)]);
            assertClose(await gpu.readF16(dscores, n), want, F16_STORE, `dscores ${label}`);
          }
        }
      }
    }
  },
});

Deno.test({
  name: "attentionSoftmax f16 size checks count 2 bytes per activation, 4 per mask value",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const b = (bytes: number) => gpu.buffer("b", bytes);
    const fails = (fn: () => unknown, fragment: string) =>
      throws(fn, (e) => e instanceof RangeError && e.message.includes(fragment));
    // B 1, H 1, T 8: 64 scores (128 bytes in f16, 256 in f32); the mask is 8 f32 values (32 bytes).
    const fwd = { scores: b(128), mask: b(32), probs: b(128), batch: 1, heads: 1, T: 8, scale: 0.5 };
    attentionSoftmaxForward(gpu, { ...fwd, dtype: "f16" });
    fails(() => attentionSoftmaxForward(gpu, fwd), 'buffer "scores" has 128 bytes but');
    fails(
      () => attentionSoftmaxForward(gpu, { ...fwd, mask: b(16), dtype: "f16" }),
      'buffer "mask" has 16 bytes',
    );
    const bwd = { probs: b(128), dprobs: b(112), dscores: b(128), rows: 8, T: 8, scale: 0.5 };
    fails(
      () => attentionSoftmaxBackward(gpu, { ...bwd, dtype: "f16" }),
      'buffer "dprobs" has 112 bytes but (rows 8, T 8) needs 128',
    );
    attentionSoftmaxBackward(gpu, { ...bwd, dprobs: bwd.dscores, dtype: "f16" });
  },
});

Deno.test({
  name: "attentionSoftmax f16 refuses a device without shader-f16, naming the kernel",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await Gpu.create({ f16: false });
    try {
      const b = () => gpu.buffer("b", 128);
      const fails = (fn: () => unknown, what: string) =>
        throws(fn, (e) => e instanceof Error && e.message.includes(`${what}: float16 needs`));
      const fwd = {
        scores: b(),
        mask: b(),
        probs: b(),
        batch: 1,
        heads: 1,
        T: 8,
        scale: 1,
        dtype: "f16",
      } as const;
      fails(() => attentionSoftmaxForward(gpu, fwd), "attentionSoftmaxForward()");
      const dp = b();
      const bwd = { probs: b(), dprobs: dp, dscores: dp, rows: 8, T: 8, scale: 1, dtype: "f16" } as const;
      fails(() => attentionSoftmaxBackward(gpu, bwd), "attentionSoftmaxBackward()");
    } finally {
      gpu.device.destroy();
    }
  },
});
