import {
  buildEmbeddingIndex,
  createEmbeddingIndexBuffers,
  embeddingBackward,
  embeddingBackwardRef,
  embeddingForward,
  embeddingForwardRef,
  positionEmbeddingBackward,
  validateTokenIds,
  writeEmbeddingIndex,
} from "./embedding.ts";
import type { Gpu } from "./runtime.ts";
import { Rng } from "./random.ts";
import { readSafetensors, type SafetensorsFile } from "../formats/safetensors.ts";
import {
  assertClose,
  assertThrows,
  dot,
  f32,
  finiteDifference,
  GPU_TEST,
  randn,
  testGpu,
} from "../tests/util.ts";
import { FINITE_DIFF, KERNEL_F32 } from "../tests/tolerance.ts";

const FIXTURE = new URL("../tests/fixtures/kernels/embedding.safetensors", import.meta.url).pathname;

/** Random ids in [0, vocab) with many [PAD] = 0 tokens and the last ids of the vocabulary. */
function tokenIds(rng: Rng, n: number, vocab: number): Int32Array {
  const ids = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const r = rng.uniform();
    ids[i] = r < 0.4 ? 0 : r < 0.55 ? vocab - 1 - rng.int(2) : rng.int(vocab);
  }
  return ids;
}

interface Case {
  batch: number;
  T: number;
  dim: number;
  vocabSize: number;
  typeVocabSize: number;
  positions: number;
}

function randomCase(rng: Rng, c: Case, scale = 1) {
  const tokens = c.batch * c.T;
  return {
    ...c,
    inputIds: tokenIds(rng, tokens, c.vocabSize),
    tokenTypeIds: tokenIds(rng, tokens, c.typeVocabSize),
    word: randn(rng, c.vocabSize * c.dim, scale),
    position: randn(rng, c.positions * c.dim, scale),
    tokenType: randn(rng, c.typeVocabSize * c.dim, scale),
  };
}

function runForward(gpu: Gpu, x: ReturnType<typeof randomCase>): GPUBuffer {
  const out = gpu.buffer("out", x.batch * x.T * x.dim * 4);
  gpu.poison(out);
  gpu.run([embeddingForward(gpu, {
    ...x,
    inputIds: gpu.upload("ids", x.inputIds),
    tokenTypeIds: gpu.upload("tt", x.tokenTypeIds),
    word: gpu.upload("word", f32(x.word)),
    position: gpu.upload("position", f32(x.position)),
    tokenType: gpu.upload("tokenType", f32(x.tokenType)),
    out,
  })]);
  return out;
}

const SHAPES: Case[] = [
  { batch: 3, T: 7, dim: 45, vocabSize: 37, typeVocabSize: 2, positions: 9 },
  { batch: 1, T: 5, dim: 1, vocabSize: 3, typeVocabSize: 1, positions: 5 },
  { batch: 5, T: 1, dim: 5, vocabSize: 11, typeVocabSize: 2, positions: 1 },
];

Deno.test({
  name: "embeddingForward() matches its CPU reference on odd shapes and large magnitudes",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(11);
    for (const shape of SHAPES) {
      for (const scale of [1, 1e4]) {
        const x = randomCase(rng, shape, scale);
        const got = await gpu.readF32(runForward(gpu, x), x.batch * x.T * x.dim);
        assertClose(got, embeddingForwardRef(x), KERNEL_F32, `embeddingForward ${JSON.stringify(shape)}`);
      }
    }
  },
});

Deno.test({
  name: "embeddingForward() clamps out-of-range ids instead of reading out of bounds",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const x = randomCase(new Rng(12), SHAPES[0]);
    x.inputIds.set([-5, 37, 1 << 30], 0); // as if validation had been skipped
    x.tokenTypeIds.set([2, -1], 3);
    const got = await gpu.readF32(runForward(gpu, x), x.batch * x.T * x.dim);
    const clamp = (ids: Int32Array, vocab: number) => ids.map((id) => Math.min(Math.max(id, 0), vocab - 1));
    const want = embeddingForwardRef({
      ...x,
      inputIds: clamp(x.inputIds, x.vocabSize),
      tokenTypeIds: clamp(x.tokenTypeIds, x.typeVocabSize),
    });
    assertClose(got, want, KERNEL_F32, "embeddingForward clamped");
  },
});

Deno.test("validateTokenIds() names the first bad id, its index and the vocabulary size", () => {
  validateTokenIds(new Int32Array([0, 5, 30521]), 30522);
  assertThrows(
    () => validateTokenIds(new Int32Array([1, 30522, -1]), 30522),
    RangeError,
    /id 30522 at index 1 .*30522 ids/,
  );
  assertThrows(
    () => validateTokenIds(new Int32Array([0, 1, -1]), 2, "Token type id"),
    RangeError,
    /^Token type id -1 at index 2/,
  );
  assertThrows(
    () => validateTokenIds(new Int32Array([0]), 0),
    RangeError,
    /vocabulary size must be a positive integer/,
  );
});

Deno.test({
  name: "embeddingForward() rejects buffers too small for the shapes",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const small = gpu.buffer("small", 16);
    const ids = gpu.buffer("ids", 21 * 4);
    const args = {
      inputIds: ids,
      tokenTypeIds: ids,
      word: gpu.buffer("word", 37 * 45 * 4),
      position: small,
      tokenType: gpu.buffer("tokenType", 2 * 45 * 4),
      out: gpu.buffer("out", 21 * 45 * 4),
      batch: 3,
      T: 7,
      dim: 45,
      vocabSize: 37,
      typeVocabSize: 2,
    };
    assertThrows(
      () => embeddingForward(gpu, args),
      RangeError,
      /embeddingForward: buffer "position \(>= 7, 45\)"/,
    );
    assertThrows(
      () => embeddingForward(gpu, { ...args, position: args.word, dim: 0 }),
      RangeError,
      /dim must be/,
    );
  },
});

Deno.test("buildEmbeddingIndex() groups token positions by sorted unique id, in token order", () => {
  const ids = tokenIds(new Rng(13), 57, 9);
  const ix = buildEmbeddingIndex(ids);
  // brute-force oracle: every id present, ascending, with the tokens that hold it in ascending order
  const unique = [...new Set(ids)].sort((a, b) => a - b);
  if (JSON.stringify([...ix.rows]) !== JSON.stringify(unique)) {
    throw new Error(`rows ${ix.rows} != ${unique}`);
  }
  if (ix.starts.length !== unique.length + 1 || ix.starts[unique.length] !== ids.length) {
    throw new Error(`starts ${ix.starts} do not cover ${ids.length} tokens`);
  }
  unique.forEach((id, r) => {
    const want = [...ids.keys()].filter((i) => ids[i] === id);
    const got = [...ix.positions.subarray(ix.starts[r], ix.starts[r + 1])];
    if (JSON.stringify(got) !== JSON.stringify(want)) {
      throw new Error(`id ${id}: positions ${got} != ${want}`);
    }
  });
  assertThrows(() => buildEmbeddingIndex([0, 1, -2]), RangeError, /id -2 at index 2/);
  const empty = buildEmbeddingIndex([]);
  if (empty.rows.length !== 0 || empty.starts.length !== 1) throw new Error("empty index is not empty");
});

/** GPU table gradient for `ids` through the CSR index; `init` (when accumulating) is the prior content. */
function tableGradient(
  gpu: Gpu,
  o: {
    ids: Int32Array;
    dout: Float64Array;
    rows: number;
    dim: number;
    capacity: number;
    init?: Float64Array;
  },
): Promise<Float32Array> {
  const index = createEmbeddingIndexBuffers(gpu, o.capacity, "index");
  writeEmbeddingIndex(gpu, index, buildEmbeddingIndex(o.ids));
  const dTable = o.init ? gpu.upload("dTable", f32(o.init)) : gpu.buffer("dTable", o.rows * o.dim * 4);
  if (!o.init) gpu.poison(dTable);
  const doutBuf = gpu.buffer("dout", o.capacity * o.dim * 4);
  gpu.poison(doutBuf); // tokens past ids.length must never be read
  gpu.write(doutBuf, f32(o.dout));
  gpu.run([
    embeddingBackward(gpu, {
      dout: doutBuf,
      index,
      dTable,
      dim: o.dim,
      accumulate: !!o.init,
      tableRows: o.rows,
    }),
  ]);
  return gpu.readF32(dTable, o.rows * o.dim);
}

Deno.test({
  name: "embeddingBackward() matches its CPU reference, overwriting and accumulating",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(14);
    for (const shape of SHAPES) {
      const x = randomCase(rng, shape);
      const tokens = x.batch * x.T;
      const dout = randn(rng, tokens * x.dim);
      const ref = embeddingBackwardRef({ ...x, dout });
      for (
        const [name, ids, rows, want] of [
          ["word", x.inputIds, x.vocabSize, ref.dWord],
          ["tokenType", x.tokenTypeIds, x.typeVocabSize, ref.dTokenType],
        ] as const
      ) {
        const label = `embeddingBackward ${name} ${JSON.stringify(shape)}`;
        const fresh = await tableGradient(gpu, { ids, dout, rows, dim: x.dim, capacity: tokens });
        assertClose(fresh, want, KERNEL_F32, `${label} overwrite`);
        const init = randn(rng, rows * x.dim);
        const acc = await tableGradient(gpu, { ids, dout, rows, dim: x.dim, capacity: tokens, init });
        assertClose(acc, want.map((g, i) => g + init[i]), KERNEL_F32, `${label} accumulate`);
      }
    }
  },
});

Deno.test({
  name: "embeddingBackward() replays one dispatch over rewritten indexes of fewer tokens",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(15);
    const dim = 45, rows = 37, capacity = 21;
    const index = createEmbeddingIndexBuffers(gpu, capacity, "index");
    const doutBuf = gpu.buffer("dout", capacity * dim * 4);
    const dTable = gpu.buffer("dTable", rows * dim * 4);
    const overwrite = embeddingBackward(gpu, {
      dout: doutBuf,
      index,
      dTable,
      dim,
      accumulate: false,
      tableRows: rows,
    });
    const accumulate = embeddingBackward(gpu, { dout: doutBuf, index, dTable, dim, tableRows: rows });
    let want: Float64Array = new Float64Array(rows * dim);
    for (const tokens of [21, 6, 13]) {
      const ids = tokenIds(rng, tokens, rows);
      const dout = randn(rng, capacity * dim);
      gpu.write(doutBuf, f32(dout)); // rows past `tokens` hold stale values the kernel must skip
      writeEmbeddingIndex(gpu, index, buildEmbeddingIndex(ids));
      const step = embeddingBackwardRef({
        dout: dout.subarray(0, tokens * dim),
        inputIds: ids,
        tokenTypeIds: new Int32Array(tokens),
        batch: 1,
        T: tokens,
        dim,
        vocabSize: rows,
        typeVocabSize: 1,
      }).dWord;
      if (tokens === 21) {
        gpu.poison(dTable);
        gpu.run([overwrite]);
        want = step;
      } else {
        gpu.run([accumulate]);
        want = want.map((g, i) => g + step[i]);
      }
      assertClose(
        await gpu.readF32(dTable, rows * dim),
        want,
        KERNEL_F32,
        `embeddingBackward replay ${tokens}`,
      );
    }
  },
});

Deno.test({
  name: "writeEmbeddingIndex() rejects an index larger than its buffers",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const index = createEmbeddingIndexBuffers(gpu, 4, "index");
    assertThrows(
      () => writeEmbeddingIndex(gpu, index, buildEmbeddingIndex([1, 2, 3, 4, 5])),
      RangeError,
      /index has 5 tokens but its buffers hold 4/,
    );
  },
});

Deno.test({
  name: "positionEmbeddingBackward() matches its CPU reference, overwriting and accumulating",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(16);
    for (const shape of SHAPES) {
      const x = randomCase(rng, shape);
      const { batch, T, dim, positions } = x;
      const dout = randn(rng, batch * T * dim);
      const dPos = embeddingBackwardRef({ ...x, dout }).dPosition; // (T, dim)
      const doutBuf = gpu.upload("dout", f32(dout));
      // overwrite: rows T..positions-1 of the table become zeros
      const fresh = gpu.buffer("dPosition", positions * dim * 4);
      gpu.poison(fresh);
      gpu.run([positionEmbeddingBackward(gpu, {
        dout: doutBuf,
        dPosition: fresh,
        batch,
        T,
        dim,
        accumulate: false,
        tableRows: positions,
      })]);
      const full = new Float64Array(positions * dim);
      full.set(dPos);
      const label = `positionEmbeddingBackward ${JSON.stringify(shape)}`;
      assertClose(await gpu.readF32(fresh, positions * dim), full, KERNEL_F32, `${label} overwrite`);
      // accumulate: rows past T keep their values
      const init = randn(rng, positions * dim);
      const acc = gpu.upload("dPosition", f32(init));
      gpu.run([positionEmbeddingBackward(gpu, { dout: doutBuf, dPosition: acc, batch, T, dim })]);
      const want = init.map((v, i) => v + full[i]);
      assertClose(await gpu.readF32(acc, positions * dim), want, KERNEL_F32, `${label} accumulate`);
    }
  },
});

Deno.test("embeddingBackwardRef() matches finite differences of embeddingForwardRef()", () => {
  const rng = new Rng(17);
  const x = randomCase(rng, SHAPES[0]);
  const w = randn(rng, x.batch * x.T * x.dim);
  const ref = embeddingBackwardRef({ ...x, dout: w });
  const loss = () => dot(embeddingForwardRef(x), w);
  for (
    const [name, table, grad] of [
      ["word", x.word, ref.dWord],
      ["position", x.position, ref.dPosition],
      ["tokenType", x.tokenType, ref.dTokenType],
    ] as const
  ) {
    const fd = finiteDifference(loss, table);
    // the reference's position gradient covers rows 0..T-1; unused rows have zero gradient
    const full = new Float64Array(table.length);
    full.set(grad);
    assertClose(full, fd, FINITE_DIFF, `embeddingBackwardRef d${name}`);
  }
});

function tensor(file: SafetensorsFile, name: string) {
  const t = file.tensors.get(name);
  if (!t) throw new Error(`Fixture tensor "${name}" is missing: run tests/torch/fixtures_optim.py`);
  return t.data as Float64Array | Int32Array;
}

Deno.test({
  name: "embeddingForward() and embeddingBackward() match PyTorch nn.Embedding sums and autograd",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const file = await readSafetensors(FIXTURE);
    const [batch, T, dim] = file.tensors.get("out")!.shape;
    const [vocabSize] = file.tensors.get("word")!.shape;
    const [positions] = file.tensors.get("position")!.shape;
    const [typeVocabSize] = file.tensors.get("token_type")!.shape;
    const inputIds = tensor(file, "input_ids") as Int32Array;
    const tokenTypeIds = tensor(file, "token_type_ids") as Int32Array;
    validateTokenIds(inputIds, vocabSize);
    validateTokenIds(tokenTypeIds, typeVocabSize);
    const x = {
      inputIds,
      tokenTypeIds,
      word: tensor(file, "word") as Float64Array,
      position: tensor(file, "position") as Float64Array,
      tokenType: tensor(file, "token_type") as Float64Array,
      batch,
      T,
      dim,
      vocabSize,
      typeVocabSize,
      positions,
    };
    const dout = tensor(file, "dout") as Float64Array;
    const out = tensor(file, "out") as Float64Array;
    // CPU reference vs torch (both float64)
    const ref = embeddingBackwardRef({ ...x, dout });
    assertClose(embeddingForwardRef(x), out, FINITE_DIFF, "embeddingForwardRef vs torch");
    assertClose(ref.dWord, tensor(file, "d_word"), FINITE_DIFF, "embeddingBackwardRef dWord vs torch");
    assertClose(ref.dTokenType, tensor(file, "d_token_type"), FINITE_DIFF, "dTokenType vs torch");
    const dPosTorch = tensor(file, "d_position"); // (positions, dim): rows past T are zero
    const dPosFull = new Float64Array(positions * dim);
    dPosFull.set(ref.dPosition);
    assertClose(dPosFull, dPosTorch, FINITE_DIFF, "embeddingBackwardRef dPosition vs torch");
    // GPU vs torch
    assertClose(
      await gpu.readF32(runForward(gpu, x), batch * T * dim),
      out,
      KERNEL_F32,
      "embeddingForward vs torch",
    );
    const tokens = batch * T;
    for (
      const [name, ids, rows, want] of [
        ["d_word", inputIds, vocabSize, "d_word"],
        ["d_token_type", tokenTypeIds, typeVocabSize, "d_token_type"],
      ] as const
    ) {
      const got = await tableGradient(gpu, { ids, dout, rows, dim, capacity: tokens });
      assertClose(got, tensor(file, want), KERNEL_F32, `embeddingBackward ${name} vs torch`);
    }
    const dPosition = gpu.buffer("dPosition", positions * dim * 4);
    gpu.poison(dPosition);
    gpu.run([positionEmbeddingBackward(gpu, {
      dout: gpu.upload("dout", f32(dout)),
      dPosition,
      batch,
      T,
      dim,
      accumulate: false,
      tableRows: positions,
    })]);
    assertClose(
      await gpu.readF32(dPosition, positions * dim),
      dPosTorch,
      KERNEL_F32,
      "positionEmbeddingBackward vs torch",
    );
  },
});
