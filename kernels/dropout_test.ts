import { throws } from "node:assert/strict";
import {
  dropout,
  dropoutHash,
  dropoutHashWgsl,
  dropoutMaskRef,
  dropoutRef,
  dropoutScale,
} from "./dropout.ts";
import { Rng } from "./random.ts";
import type { Gpu } from "./runtime.ts";
import { readSafetensors } from "../formats/safetensors.ts";
import { assertClose, f32, GPU_TEST, on2dGrid, randn, testGpu } from "../tests/util.ts";
import { EXACT } from "../tests/tolerance.ts";

const FIXTURE = new URL("../tests/fixtures/kernels/dropout.safetensors", import.meta.url).pathname;

function seedBuffer(gpu: Gpu, seed: number): GPUBuffer {
  return gpu.upload("seed", new Uint32Array([seed, 0, 0, 0]));
}

/** Runs dropout on `x` (poisoned output, or in place) and reads the result. */
async function gpuDropout(
  gpu: Gpu,
  x: Float32Array,
  p: number,
  seed: number,
  stream: number,
  opts: { inPlace?: boolean; gridX?: number } = {},
): Promise<Float32Array> {
  const xb = gpu.upload("x", x);
  const out = opts.inPlace ? xb : gpu.buffer("out", x.length * 4);
  if (!opts.inPlace) gpu.poison(out);
  const d = dropout(gpu, { x: xb, out, n: x.length, p, seed: seedBuffer(gpu, seed), stream });
  gpu.run([opts.gridX ? on2dGrid(d, opts.gridX) : d]);
  return await gpu.readF32(out, x.length);
}

/** Nonzero inputs, so a zero output means "dropped". */
function nonzero(rng: Rng, n: number): Float32Array {
  return f32(randn(rng, n).map((v) => (v >= 0 ? v + 0.1 : v - 0.1)));
}

function keptMask(out: ArrayLike<number>): Uint8Array {
  return Uint8Array.from(out, (v) => (v !== 0 ? 1 : 0));
}

function countDiffer(a: Uint8Array, b: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}

/** Asserts |count - n·q| <= 5·sqrt(n·q·(1 - q)): a binomial count within 5 standard deviations. */
function assertBinomial(count: number, n: number, q: number, label: string): void {
  const sigma = Math.sqrt(n * q * (1 - q));
  if (Math.abs(count - n * q) > 5 * sigma) {
    throw new Error(`${label}: ${count} of ${n}, expected ${n * q} ± ${5 * sigma} (5 sigma)`);
  }
}

Deno.test({
  name: "dropoutHash() equals the WGSL hash bit for bit",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const code = `
struct Params { n: u32, seed: u32, stream: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
${dropoutHashWgsl()}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  if (gid.x >= p.n) { return; }
  out[gid.x] = dropoutHash(p.seed, p.stream, gid.x);
}`;
    const n = 4099;
    for (const [seed, stream] of [[0, 0], [42, 3], [0xffffffff, 0xffffffff], [123456789, 97]]) {
      const out = gpu.buffer("hashes", n * 4);
      gpu.poison(out);
      gpu.run([
        gpu.dispatch("dropoutHash test", code, [["u32", n], ["u32", seed], ["u32", stream]], [out], [
          Math.ceil(n / 64),
        ]),
      ]);
      const got = new Uint32Array(await gpu.read(out, n * 4));
      const want = Uint32Array.from({ length: n }, (_, i) => dropoutHash(seed, stream, i));
      assertClose(got, want, EXACT, `dropoutHash seed ${seed} stream ${stream}`);
    }
  },
});

Deno.test({
  name: "dropout() matches dropoutRef() exactly on odd lengths, separate and in place",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(51);
    for (const p of [0.1, 0.5, 1 / 3]) {
      for (const n of [3 * 7 * 45, 1, 5]) {
        const x = nonzero(rng, n);
        // x·scale is exact in float64 (two float32 factors), so rounding it gives the GPU's float32 product.
        const want = f32(dropoutRef(x, 7, 12, p));
        assertClose(await gpuDropout(gpu, x, p, 7, 12), want, EXACT, `dropout p=${p} n=${n}`);
        assertClose(
          await gpuDropout(gpu, x, p, 7, 12, { inPlace: true }),
          want,
          EXACT,
          `dropout in place p=${p} n=${n}`,
        );
      }
    }
    const x = nonzero(rng, 3001);
    assertClose(
      await gpuDropout(gpu, x, 0.1, 9, 4, { gridX: 3 }),
      f32(dropoutRef(x, 9, 4, 0.1)),
      EXACT,
      "dropout on a 2-D grid",
    );
  },
});

Deno.test({
  name: "dropout() with p = 0 copies its input exactly",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const x = nonzero(new Rng(52), 945);
    assertClose(await gpuDropout(gpu, x, 0, 123, 5), x, EXACT, "dropout p=0");
  },
});

Deno.test({
  name: "dropout() keeps a binomial fraction of 100k elements at p = 0.1 (5 sigma)",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const n = 100_003;
    const x = new Float32Array(n).fill(1);
    for (const [seed, stream] of [[1, 0], [2, 17]]) {
      const out = await gpuDropout(gpu, x, 0.1, seed, stream);
      let kept = 0;
      for (const v of out) {
        if (v !== 0 && v !== dropoutScale(0.1)) {
          throw new Error(`dropout output ${v} is neither 0 nor the scale`);
        }
        kept += v !== 0 ? 1 : 0;
      }
      assertBinomial(kept, n, 0.9, `kept at seed ${seed} stream ${stream}`);
    }
  },
});

Deno.test({
  name: "dropout() repeats its mask for one seed and stream, and changes it with either",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const n = 20_000;
    const p = 0.1;
    const x = nonzero(new Rng(53), n);
    const xb = gpu.upload("x", x);
    const out = gpu.buffer("out", n * 4);
    const seed = seedBuffer(gpu, 1000);
    // One prepared dispatch, replayed with the seed rewritten as a trainer does each step.
    const d = dropout(gpu, { x: xb, out, n, p, seed, stream: 3 });
    const runWithSeed = async (s: number) => {
      gpu.write(seed, new Uint32Array([s]));
      gpu.poison(out);
      gpu.run([d]);
      return keptMask(await gpu.readF32(out, n));
    };
    const first = await runWithSeed(1000);
    const again = await runWithSeed(1000);
    const nextStep = await runWithSeed(1001);
    const otherSite = keptMask(await gpuDropout(gpu, x, p, 1000, 4));
    assertClose(again, first, EXACT, "same seed and stream");
    assertClose(nextStep, dropoutMaskRef(1001, 3, n, p), EXACT, "rewritten seed");
    // Independent masks: both drop an element with probability p², within 5 sigma.
    for (const [label, other] of [["seed", nextStep], ["stream", otherSite]] as const) {
      if (countDiffer(first, other) === 0) throw new Error(`a different ${label} gave the same mask`);
      let bothDropped = 0;
      for (let i = 0; i < n; i++) bothDropped += first[i] === 0 && other[i] === 0 ? 1 : 0;
      assertBinomial(bothDropped, n, p * p, `both dropped across a different ${label}`);
    }
  },
});

Deno.test({
  name: "dropout() on gradients regenerates the forward's mask (the backward)",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(54);
    const n = 3 * 7 * 45;
    const p = 0.1;
    const y = await gpuDropout(gpu, nonzero(rng, n), p, 77, 9);
    const dy = nonzero(rng, n);
    for (const inPlace of [false, true]) {
      const dx = await gpuDropout(gpu, dy, p, 77, 9, { inPlace });
      const scale = dropoutScale(p);
      for (let i = 0; i < n; i++) {
        const want = y[i] === 0 ? 0 : Math.fround(dy[i] * scale);
        if (dx[i] !== want) throw new Error(`dx[${i}] = ${dx[i]}, expected ${want} (forward output ${y[i]})`);
      }
    }
  },
});

Deno.test({
  name: "dropout() scales kept values exactly as torch's F.dropout",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const file = await readSafetensors(FIXTURE);
    for (const name of ["p10", "p50", "p33"]) {
      const t = (k: string) => file.tensors.get(`${name}.${k}`)!.data as Float32Array | Float64Array;
      const x = f32(t("x"));
      const torchY = t("y");
      const p = t("p")[0];
      const ours = await gpuDropout(gpu, x, p, 2024, 1);
      // Torch's mask comes from its own generator; where both keep, the values must be the same float32.
      let both = 0;
      for (let i = 0; i < x.length; i++) {
        if (ours[i] === 0 || torchY[i] === 0) continue;
        both++;
        if (ours[i] !== torchY[i]) {
          throw new Error(`${name}: x[${i}] = ${x[i]} kept as ${ours[i]}, torch ${torchY[i]}`);
        }
      }
      assertBinomial(both, x.length, (1 - p) * (1 - p), `${name} kept by both`);
    }
  },
});

Deno.test({
  name: "dropout() rejects p outside [0, 1), bad streams and small buffers",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const b = gpu.buffer("b", 16);
    const args = { x: b, out: gpu.buffer("o", 16), n: 4, p: 0.1, seed: seedBuffer(gpu, 0), stream: 0 };
    const fails = (fn: () => unknown, fragment: string) =>
      throws(fn, (e) => e instanceof RangeError && e.message.includes(fragment));
    fails(() => dropout(gpu, { ...args, p: 1 }), "p must be in [0, 1), got 1");
    fails(() => dropout(gpu, { ...args, p: -0.1 }), "p must be in [0, 1), got -0.1");
    fails(() => dropout(gpu, { ...args, stream: 1.5 }), "stream must be a u32");
    fails(() => dropout(gpu, { ...args, n: 5 }), 'buffer "x" has 16 bytes but n = 5 needs 20');
    fails(() => dropout(gpu, { ...args, seed: b }), '"seed" must be its own buffer');
  },
});
