import {
  buildEmbeddingIndex,
  createEmbeddingIndexBuffers,
  embeddingBackward,
  embeddingBackwardRef,
  embeddingForward,
  embeddingForwardRef,
  positionEmbeddingBackward,
  writeEmbeddingIndex,
} from "./embedding.ts";
import { roundF16 } from "./runtime.ts";
import { Rng } from "./random.ts";
import { assertClose, assertThrows, f32, GPU_TEST, randn, testGpu } from "../tests/util.ts";
import { gpuWithoutF16, poisonF16, uploadF16 } from "../tests/f16.ts";
import { F16_STORE, KERNEL_F32 } from "../tests/tolerance.ts";

/** Odd shapes (odd element counts leave half a word of the f16 output unwritten). */
const SHAPES = [
  { batch: 3, T: 7, dim: 45, vocabSize: 37, typeVocabSize: 2, positions: 9 },
  { batch: 1, T: 5, dim: 1, vocabSize: 3, typeVocabSize: 1, positions: 5 },
  { batch: 5, T: 1, dim: 5, vocabSize: 11, typeVocabSize: 2, positions: 1 },
];

function ids(rng: Rng, n: number, vocab: number): Int32Array {
  return Int32Array.from({ length: n }, () => (rng.uniform() < 0.4 ? 0 : rng.int(vocab)));
}

Deno.test({
  name: "embeddingForward() with dtype f16 stores the f32 tables' sum rounded to f16",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(111);
    for (const s of SHAPES) {
      for (const scale of [1, 300]) {
        const tokens = s.batch * s.T;
        const n = tokens * s.dim;
        const x = {
          ...s,
          inputIds: ids(rng, tokens, s.vocabSize),
          tokenTypeIds: ids(rng, tokens, s.typeVocabSize),
          word: f32(randn(rng, s.vocabSize * s.dim, scale)),
          position: f32(randn(rng, s.positions * s.dim, scale)),
          tokenType: f32(randn(rng, s.typeVocabSize * s.dim, scale)),
        };
        const out = gpu.buffer("out", (n + 1) * 2);
        poisonF16(gpu, out);
        gpu.run([embeddingForward(gpu, {
          ...x,
          inputIds: gpu.upload("ids", x.inputIds),
          tokenTypeIds: gpu.upload("tt", x.tokenTypeIds),
          word: gpu.upload("word", x.word),
          position: gpu.upload("position", x.position),
          tokenType: gpu.upload("tokenType", x.tokenType),
          out,
          dtype: "f16",
        })]);
        const got = await gpu.readF16(out, n + 1);
        const label = `embeddingForward f16 ${JSON.stringify(s)} scale ${scale}`;
        assertClose(got.subarray(0, n), embeddingForwardRef(x), F16_STORE, label);
        if (!Number.isNaN(got[n])) throw new Error(`${label}: element ${n} past the output was overwritten`);
      }
    }
  },
});

Deno.test({
  name: "embeddingBackward() and positionEmbeddingBackward() with an f16 dout sum into f32 tables",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(112);
    for (const s of SHAPES) {
      const tokens = s.batch * s.T;
      const x = {
        ...s,
        inputIds: ids(rng, tokens, s.vocabSize),
        tokenTypeIds: ids(rng, tokens, s.typeVocabSize),
      };
      // the reference sees the f16 values the kernel reads; the sums are f32, stored in f32
      const dout = roundF16(randn(rng, tokens * s.dim));
      const ref = embeddingBackwardRef({ ...x, dout });
      const doutBuf = uploadF16(gpu, "dout", dout);
      const label = `f16 dout ${JSON.stringify(s)}`;
      for (
        const [name, tokenIds, rows, want] of [
          ["word", x.inputIds, s.vocabSize, ref.dWord],
          ["tokenType", x.tokenTypeIds, s.typeVocabSize, ref.dTokenType],
        ] as const
      ) {
        const index = createEmbeddingIndexBuffers(gpu, tokens, `${name}.index`);
        writeEmbeddingIndex(gpu, index, buildEmbeddingIndex(tokenIds));
        const fresh = gpu.buffer("dTable", rows * s.dim * 4);
        gpu.poison(fresh);
        const args = { dout: doutBuf, index, dim: s.dim, tableRows: rows, dtype: "f16" as const };
        gpu.run([embeddingBackward(gpu, { ...args, dTable: fresh, accumulate: false })]);
        assertClose(await gpu.readF32(fresh, rows * s.dim), want, KERNEL_F32, `${label} ${name} overwrite`);
        const init = randn(rng, rows * s.dim);
        const acc = gpu.upload("dTable", f32(init));
        gpu.run([embeddingBackward(gpu, { ...args, dTable: acc })]);
        assertClose(
          await gpu.readF32(acc, rows * s.dim),
          want.map((g, i) => g + init[i]),
          KERNEL_F32,
          `${label} ${name} accumulate`,
        );
      }
      const { batch, T, dim, positions } = s;
      const full = new Float64Array(positions * dim);
      full.set(ref.dPosition);
      const fresh = gpu.buffer("dPosition", positions * dim * 4);
      gpu.poison(fresh);
      const args = { dout: doutBuf, batch, T, dim, dtype: "f16" as const };
      gpu.run([
        positionEmbeddingBackward(gpu, {
          ...args,
          dPosition: fresh,
          accumulate: false,
          tableRows: positions,
        }),
      ]);
      assertClose(await gpu.readF32(fresh, positions * dim), full, KERNEL_F32, `${label} position overwrite`);
      const init = randn(rng, positions * dim);
      const acc = gpu.upload("dPosition", f32(init));
      gpu.run([positionEmbeddingBackward(gpu, { ...args, dPosition: acc })]);
      assertClose(
        await gpu.readF32(acc, positions * dim),
        init.map((v, i) => v + full[i]),
        KERNEL_F32,
        `${label} position accumulate`,
      );
    }
  },
});

Deno.test({
  name: "embedding kernels size f16 buffers at 2 bytes an element",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const index = createEmbeddingIndexBuffers(gpu, 8, "index");
    // 8 tokens x 5 = 40 f16 values = 80 bytes: 64 is short, 80 fits (f32 would need 160)
    const short = gpu.buffer("short", 64);
    const fits = gpu.buffer("fits", 80);
    const dTable = gpu.buffer("dTable", 3 * 5 * 4);
    assertThrows(
      () => embeddingBackward(gpu, { dout: short, index, dTable, dim: 5, dtype: "f16" }),
      RangeError,
      /dout \(8, 5\)" has 64 bytes but 40 f16 values needs 80/,
    );
    embeddingBackward(gpu, { dout: fits, index, dTable, dim: 5, dtype: "f16" });
    assertThrows(
      () =>
        positionEmbeddingBackward(gpu, {
          dout: short,
          dPosition: dTable,
          batch: 4,
          T: 2,
          dim: 5,
          dtype: "f16",
        }),
      RangeError,
      /has 64 bytes but 40 f16 values needs 80/,
    );
  },
});

Deno.test({
  name: "embedding kernels with dtype f16 refuse a device without shader-f16, naming the kernel",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await gpuWithoutF16();
    const b = gpu.buffer("b", 4096);
    const index = createEmbeddingIndexBuffers(gpu, 4, "index");
    assertThrows(
      () =>
        embeddingForward(gpu, {
          inputIds: b,
          tokenTypeIds: b,
          word: b,
          position: b,
          tokenType: b,
          out: gpu.buffer("o", 64),
          batch: 1,
          T: 4,
          dim: 2,
          vocabSize: 3,
          typeVocabSize: 2,
          dtype: "f16",
        }),
      Error,
      /^embeddingForward: float16 needs the WebGPU feature "shader-f16"/,
    );
    assertThrows(
      () => embeddingBackward(gpu, { dout: b, index, dTable: gpu.buffer("t", 64), dim: 2, dtype: "f16" }),
      Error,
      /^embeddingBackward: float16 needs the WebGPU feature "shader-f16"/,
    );
    assertThrows(
      () =>
        positionEmbeddingBackward(gpu, {
          dout: b,
          dPosition: gpu.buffer("t", 64),
          batch: 1,
          T: 4,
          dim: 2,
          dtype: "f16",
        }),
      Error,
      /^positionEmbeddingBackward: float16 needs the WebGPU feature "shader-f16"/,
    );
  },
});
