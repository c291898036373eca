/**
 * BERT embeddings sum (before LayerNorm) and its backward:
 * out[b,t,:] = word[ids[b,t],:] + tokenType[tt[b,t],:] + position[t,:], positions 0..T-1 as Hugging
 * Face's default `position_ids`.
 *
 * The backward never needs float atomics: the host groups token positions by row id into a CSR
 * index ({@linkcode buildEmbeddingIndex}), and one workgroup per unique row sums that row's
 * gradients in a fixed order, so the result is deterministic.
 *
 * Mixed precision: `dtype` "f16" stores the forward's `out` and reads the backward's `dout` as f16;
 * tables and their gradients stay f32, and all sums are f32. Finite-difference and PyTorch tests stay
 * on the f32 path (f16 storage is a rounding of the same math).
 * @module
 */

import {
  type Dispatch,
  type Dtype,
  dtypeBytes,
  type Gpu,
  grid,
  requireDtype,
  wgslEnable,
} from "./runtime.ts";
import { checkBuffer, checkCount } from "./_checks.ts";

/** Threads per workgroup of the element-wise forward and position backward. */
const WG = 256;
/** Threads per workgroup of the row-gather backward (one workgroup per table row). */
const ROW_WG = 64;
/** u32 words in the index meta buffer: [unique row count, token count]. */
const META_WORDS = 2;

/** `e` (an f32 expression) stored into a `dtype` buffer: converted for f16, as is for f32. */
function store(dtype: Dtype, e: string): string {
  return dtype === "f32" ? e : `${dtype}(${e})`;
}

/** `e` (an element of a `dtype` buffer) as f32. */
function load(dtype: Dtype, e: string): string {
  return dtype === "f32" ? e : `f32(${e})`;
}

/**
 * Checks that every id is an integer in [0, vocabSize) before it is uploaded.
 * @example
 * ```ts
 * import { validateTokenIds } from "./embedding.ts";
 * validateTokenIds(new Int32Array([101, 0, 102]), 30522); // passes
 * ```
 * @throws {RangeError} naming the first bad id, its index and the vocabulary size.
 */
export function validateTokenIds(ids: Int32Array, vocabSize: number, what = "Token id"): void {
  if (!Number.isInteger(vocabSize) || vocabSize < 1) {
    throw new RangeError(`${what} vocabulary size must be a positive integer, got ${vocabSize}`);
  }
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (id < 0 || id >= vocabSize) {
      throw new RangeError(
        `${what} ${id} at index ${i} is outside the vocabulary of ${vocabSize} ids (valid: 0..${
          vocabSize - 1
        }): check the tokenizer matches the model's vocab_size`,
      );
    }
  }
}

/**
 * WGSL for the embeddings sum. Ids are clamped into range so a bad id never reads out of bounds
 * (the host rejects them first with {@linkcode validateTokenIds}). `dtype`: storage of `out` (the
 * tables are f32; the sum is f32, rounded once on store).
 */
export function embeddingForwardWgsl(dtype: Dtype = "f32"): string {
  return `${wgslEnable(dtype)}` + /* wgsl */ `
// bindings: params, inputIds: (B*T) i32, tokenTypeIds: (B*T) i32, word: (V, C), position: (>=T, C),
// tokenType: (TV, C), out: (B, T, C)
struct Params { n: u32, T: u32, dim: u32, vocab: u32, typeVocab: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> inputIds: array<i32>;
@group(0) @binding(2) var<storage, read> tokenTypeIds: array<i32>;
@group(0) @binding(3) var<storage, read> word: array<f32>;
@group(0) @binding(4) var<storage, read> position: array<f32>;
@group(0) @binding(5) var<storage, read> tokenType: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<${dtype}>;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * ${WG}u;
  if (i >= p.n) { return; }
  let token = i / p.dim;
  let c = i % p.dim;
  let t = token % p.T;
  let id = u32(clamp(inputIds[token], 0, i32(p.vocab) - 1));
  let tt = u32(clamp(tokenTypeIds[token], 0, i32(p.typeVocab) - 1));
  // HF order: (inputs_embeds + token_type_embeddings) + position_embeddings
  out[i] = ${store(dtype, "(word[id * p.dim + c] + tokenType[tt * p.dim + c]) + position[t * p.dim + c]")};
}`;
}

/**
 * Prepares out = word[ids] + tokenType[tokenTypeIds] + position[0..T-1].
 * Shapes: inputIds, tokenTypeIds (B*T) i32; word (vocabSize, dim); position (>= T, dim);
 * tokenType (typeVocabSize, dim); out (B, T, dim) of `dtype` (default f32; tables always f32).
 * @example
 * ```ts ignore
 * const d = embeddingForward(gpu, { inputIds, tokenTypeIds, word, position, tokenType, out,
 *   batch: 2, T: 8, dim: 16, vocabSize: 100, typeVocabSize: 2 });
 * gpu.run([d]);
 * ```
 */
export function embeddingForward(
  gpu: Gpu,
  a: {
    inputIds: GPUBuffer;
    tokenTypeIds: GPUBuffer;
    word: GPUBuffer;
    position: GPUBuffer;
    tokenType: GPUBuffer;
    out: GPUBuffer;
    batch: number;
    T: number;
    dim: number;
    vocabSize: number;
    typeVocabSize: number;
    /** Storage type of `out` (default f32). */
    dtype?: Dtype;
  },
): Dispatch {
  const op = "embeddingForward";
  const dtype = a.dtype ?? "f32";
  requireDtype(gpu, dtype, op);
  for (const k of ["batch", "T", "dim", "vocabSize", "typeVocabSize"] as const) checkCount(op, k, a[k]);
  const tokens = a.batch * a.T;
  const n = tokens * a.dim;
  checkBuffer(op, "inputIds", a.inputIds, tokens * 4, `${tokens} values`);
  checkBuffer(op, "tokenTypeIds", a.tokenTypeIds, tokens * 4, `${tokens} values`);
  checkBuffer(
    op,
    `word (${a.vocabSize}, ${a.dim})`,
    a.word,
    a.vocabSize * a.dim * 4,
    `${a.vocabSize * a.dim} values`,
  );
  checkBuffer(op, `position (>= ${a.T}, ${a.dim})`, a.position, a.T * a.dim * 4, `${a.T * a.dim} values`);
  checkBuffer(
    op,
    `tokenType (${a.typeVocabSize}, ${a.dim})`,
    a.tokenType,
    a.typeVocabSize * a.dim * 4,
    `${a.typeVocabSize * a.dim} values`,
  );
  checkBuffer(op, `out (${a.batch}, ${a.T}, ${a.dim})`, a.out, n * dtypeBytes(dtype), `${n} ${dtype} values`);
  return gpu.dispatch(
    op,
    embeddingForwardWgsl(dtype),
    [["u32", n], ["u32", a.T], ["u32", a.dim], ["u32", a.vocabSize], ["u32", a.typeVocabSize]],
    [a.inputIds, a.tokenTypeIds, a.word, a.position, a.tokenType, a.out],
    grid(n, WG),
  );
}

/**
 * CPU reference (float64), same argument order as {@linkcode embeddingForward}; returns out (B, T, dim).
 * Ids must be in range (validate first).
 */
export function embeddingForwardRef(a: {
  inputIds: ArrayLike<number>;
  tokenTypeIds: ArrayLike<number>;
  word: ArrayLike<number>;
  position: ArrayLike<number>;
  tokenType: ArrayLike<number>;
  batch: number;
  T: number;
  dim: number;
}): Float64Array {
  const { batch, T, dim } = a;
  const out = new Float64Array(batch * T * dim);
  for (let token = 0; token < batch * T; token++) {
    const id = a.inputIds[token];
    const tt = a.tokenTypeIds[token];
    const t = token % T;
    for (let c = 0; c < dim; c++) {
      out[token * dim + c] = a.word[id * dim + c] + a.tokenType[tt * dim + c] + a.position[t * dim + c];
    }
  }
  return out;
}

/** Token positions grouped by embedding row (CSR), built on the host per batch. */
export interface EmbeddingIndex {
  /** Unique row ids, ascending. */
  rows: Uint32Array;
  /** rows.length + 1 offsets into `positions`; row rows[r] owns positions[starts[r]..starts[r+1]). */
  starts: Uint32Array;
  /** Token indices (b * T + t) grouped by row, ascending within a row. */
  positions: Uint32Array;
}

/**
 * Groups token positions by id: a stable counting of `ids` into a CSR index.
 * @example
 * ```ts
 * import { buildEmbeddingIndex } from "./embedding.ts";
 * const ix = buildEmbeddingIndex([5, 0, 5, 0, 0]);
 * // ix.rows = [0, 5], ix.starts = [0, 3, 5], ix.positions = [1, 3, 4, 0, 2]
 * ```
 * @throws {RangeError} when an id is not a non-negative integer below 2^32.
 */
export function buildEmbeddingIndex(ids: ArrayLike<number>): EmbeddingIndex {
  const n = ids.length;
  for (let i = 0; i < n; i++) {
    const id = ids[i];
    if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) {
      throw new RangeError(`Embedding id ${id} at index ${i} must be a non-negative integer`);
    }
  }
  // Sort token indices by (id, index): the order each row's gradients are summed in.
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => ids[x] - ids[y] || x - y);
  const rows: number[] = [];
  const starts: number[] = [];
  for (let k = 0; k < n; k++) {
    if (k === 0 || ids[order[k]] !== ids[order[k - 1]]) {
      rows.push(ids[order[k]]);
      starts.push(k);
    }
  }
  starts.push(n);
  return {
    rows: Uint32Array.from(rows),
    starts: Uint32Array.from(starts),
    positions: Uint32Array.from(order),
  };
}

/** Device copies of an {@linkcode EmbeddingIndex}, sized once for `capacity` tokens. */
export interface EmbeddingIndexBuffers {
  /** u32 [unique row count, token count], rewritten per batch. */
  meta: GPUBuffer;
  /** u32 (capacity). */
  rows: GPUBuffer;
  /** u32 (capacity + 1). */
  starts: GPUBuffer;
  /** u32 (capacity). */
  positions: GPUBuffer;
  /** Most tokens an index may hold (B * T of the recorded batch shape). */
  capacity: number;
}

/**
 * Allocates index buffers for up to `capacity` tokens (once per batch shape).
 * @example
 * ```ts ignore
 * const wordIndex = createEmbeddingIndexBuffers(gpu, batch * T, "word.index");
 * ```
 */
export function createEmbeddingIndexBuffers(
  gpu: Gpu,
  capacity: number,
  label: string,
): EmbeddingIndexBuffers {
  checkCount("createEmbeddingIndexBuffers", "capacity", capacity);
  const meta = gpu.buffer(`${label}.meta`, META_WORDS * 4);
  gpu.write(meta, new Uint32Array(META_WORDS)); // an empty index until the first write
  return {
    meta,
    rows: gpu.buffer(`${label}.rows`, capacity * 4),
    starts: gpu.buffer(`${label}.starts`, (capacity + 1) * 4),
    positions: gpu.buffer(`${label}.positions`, capacity * 4),
    capacity,
  };
}

/**
 * Uploads a batch's index into buffers made by {@linkcode createEmbeddingIndexBuffers}
 * (queued before the next submit).
 * @example
 * ```ts ignore
 * writeEmbeddingIndex(gpu, wordIndex, buildEmbeddingIndex(inputIds));
 * ```
 * @throws {RangeError} when the index holds more tokens than the buffers' capacity.
 */
export function writeEmbeddingIndex(gpu: Gpu, buffers: EmbeddingIndexBuffers, index: EmbeddingIndex): void {
  const tokens = index.positions.length;
  if (tokens > buffers.capacity) {
    throw new RangeError(
      `writeEmbeddingIndex: the index has ${tokens} tokens but its buffers hold ${buffers.capacity}: create them for the largest batch`,
    );
  }
  if (index.starts.length !== index.rows.length + 1 || index.starts[index.rows.length] !== tokens) {
    throw new RangeError(
      `writeEmbeddingIndex: starts has ${index.starts.length} entries ending at ${
        index.starts[index.starts.length - 1]
      }, expected ${index.rows.length + 1} ending at ${tokens}: build it with buildEmbeddingIndex()`,
    );
  }
  gpu.write(buffers.meta, Uint32Array.of(index.rows.length, tokens));
  if (tokens > 0) {
    gpu.write(buffers.rows, index.rows);
    gpu.write(buffers.positions, index.positions);
  }
  gpu.write(buffers.starts, index.starts);
}

/**
 * WGSL for the table gradient. `accumulate`: one workgroup per unique row of the index (capacity
 * groups, those past the row count exit), dTable[row] += sum. Otherwise one workgroup per table row:
 * a binary search finds its group, and rows no token uses are written as zeros.
 */
export function embeddingBackwardWgsl(accumulate: boolean, dtype: Dtype = "f32"): string {
  return `${wgslEnable(dtype)}` + /* wgsl */ `
// bindings: params, counts (index meta): [rowCount, tokenCount] u32, rows: (capacity) u32, starts: (capacity+1) u32,
// positions: (capacity) u32, dout: (capacity, C), dTable: (tableRows, C)
struct Params { dim: u32, capacity: u32, tableRows: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> counts: array<u32>;
@group(0) @binding(2) var<storage, read> rows: array<u32>;
@group(0) @binding(3) var<storage, read> starts: array<u32>;
@group(0) @binding(4) var<storage, read> positions: array<u32>;
@group(0) @binding(5) var<storage, read> dout: array<${dtype}>;
@group(0) @binding(6) var<storage, read_write> dTable: array<f32>;

// Sum of dout over the tokens of index group r, for column c, in index order.
fn groupSum(r: u32, c: u32, tokenCount: u32) -> f32 {
  var s: f32 = 0.0;
  let end = min(starts[r + 1u], tokenCount);
  for (var k = starts[r]; k < end; k++) {
    let pos = positions[k];
    if (pos < p.capacity) { s += ${load(dtype, "dout[pos * p.dim + c]")}; }
  }
  return s;
}

@compute @workgroup_size(${ROW_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_id) lid: vec3u) {
  let g = wid.x + wid.y * nwg.x;
  let rowCount = min(counts[0], p.capacity);
  let tokenCount = min(counts[1], p.capacity);
${
    accumulate
      ? /* wgsl */ `
  if (g >= rowCount) { return; }
  let row = rows[g];
  if (row >= p.tableRows) { return; }
  for (var c = lid.x; c < p.dim; c += ${ROW_WG}u) {
    dTable[row * p.dim + c] += groupSum(g, c, tokenCount);
  }`
      : /* wgsl */ `
  if (g >= p.tableRows) { return; }
  // lower bound of g in the sorted unique rows
  var lo = 0u;
  var hi = rowCount;
  while (lo < hi) {
    let mid = (lo + hi) / 2u;
    if (rows[mid] < g) { lo = mid + 1u; } else { hi = mid; }
  }
  let found = lo < rowCount && rows[lo] == g;
  for (var c = lid.x; c < p.dim; c += ${ROW_WG}u) {
    var s: f32 = 0.0;
    if (found) { s = groupSum(lo, c, tokenCount); }
    dTable[g * p.dim + c] = s;
  }`
  }
}`;
}

/**
 * Prepares dTable[row,:] (+)= sum over the tokens p of that row of dout[p,:], from an index written
 * with {@linkcode writeEmbeddingIndex}. Shapes: dout (capacity, dim); dTable (tableRows, dim).
 * `accumulate` (default true) adds into dTable and touches only rows in the index; false overwrites
 * every row (zeros where no token uses it) and never reads dTable.
 * `tableRows` defaults to the rows dTable's size holds. `dtype`: storage of dout (default f32);
 * dTable is always f32.
 * @example
 * ```ts ignore
 * const d = embeddingBackward(gpu, { dout, index: wordIndex, dTable: dWord, dim: 768 });
 * ```
 */
export function embeddingBackward(
  gpu: Gpu,
  a: {
    dout: GPUBuffer;
    index: EmbeddingIndexBuffers;
    dTable: GPUBuffer;
    dim: number;
    accumulate?: boolean;
    tableRows?: number;
    /** Storage type of `dout` (default f32). */
    dtype?: Dtype;
  },
): Dispatch {
  const op = "embeddingBackward";
  const dtype = a.dtype ?? "f32";
  requireDtype(gpu, dtype, op);
  checkCount(op, "dim", a.dim);
  const capacity = a.index.capacity;
  const tableRows = a.tableRows ?? Math.floor(a.dTable.size / (4 * a.dim));
  checkCount(op, "tableRows", tableRows);
  checkBuffer(
    op,
    `dout (${capacity}, ${a.dim})`,
    a.dout,
    capacity * a.dim * dtypeBytes(dtype),
    `${capacity * a.dim} ${dtype} values`,
  );
  checkBuffer(
    op,
    `dTable (${tableRows}, ${a.dim})`,
    a.dTable,
    tableRows * a.dim * 4,
    `${tableRows * a.dim} values`,
  );
  const accumulate = a.accumulate ?? true;
  return gpu.dispatch(
    accumulate ? "embeddingBackward.accumulate" : "embeddingBackward",
    embeddingBackwardWgsl(accumulate, dtype),
    [["u32", a.dim], ["u32", capacity], ["u32", tableRows]],
    [a.index.meta, a.index.rows, a.index.starts, a.index.positions, a.dout, a.dTable],
    grid(accumulate ? capacity : tableRows, 1),
  );
}

/** WGSL for dPosition[t,:] (+)= sum over b of dout[b,t,:], b ascending; rows t >= T get 0 (or stay). */
export function positionEmbeddingBackwardWgsl(accumulate: boolean, dtype: Dtype = "f32"): string {
  return `${wgslEnable(dtype)}` + /* wgsl */ `
// bindings: params, dout: (B, T, C), dPosition: (tableRows, C)
struct Params { n: u32, batch: u32, T: u32, dim: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dout: array<${dtype}>;
@group(0) @binding(2) var<storage, read_write> dPosition: array<f32>;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * ${WG}u;
  if (i >= p.n) { return; }
  let t = i / p.dim;
  var s: f32 = 0.0;
  if (t < p.T) {
    for (var b = 0u; b < p.batch; b++) { s += ${load(dtype, "dout[b * p.T * p.dim + i]")}; }
  }
  ${accumulate ? "if (t < p.T) { dPosition[i] += s; }" : "dPosition[i] = s;"}
}`;
}

/**
 * Prepares dPosition[t,:] (+)= sum over b of dout[b,t,:] for t < T. Shapes: dout (B, T, dim);
 * dPosition (tableRows, dim), tableRows >= T (default T). Without `accumulate` (default true) rows
 * T..tableRows-1 are written as zeros, so the whole table gradient is defined. `dtype`: storage of
 * dout (default f32); dPosition is always f32.
 * @example
 * ```ts ignore
 * const d = positionEmbeddingBackward(gpu, { dout, dPosition, batch: 2, T: 8, dim: 16 });
 * ```
 */
export function positionEmbeddingBackward(
  gpu: Gpu,
  a: {
    dout: GPUBuffer;
    dPosition: GPUBuffer;
    batch: number;
    T: number;
    dim: number;
    accumulate?: boolean;
    tableRows?: number;
    /** Storage type of `dout` (default f32). */
    dtype?: Dtype;
  },
): Dispatch {
  const op = "positionEmbeddingBackward";
  const dtype = a.dtype ?? "f32";
  requireDtype(gpu, dtype, op);
  for (const k of ["batch", "T", "dim"] as const) checkCount(op, k, a[k]);
  const tableRows = a.tableRows ?? a.T;
  if (!Number.isInteger(tableRows) || tableRows < a.T) {
    throw new RangeError(`${op}: tableRows ${tableRows} must be an integer >= T = ${a.T}`);
  }
  checkBuffer(
    op,
    `dout (${a.batch}, ${a.T}, ${a.dim})`,
    a.dout,
    a.batch * a.T * a.dim * dtypeBytes(dtype),
    `${a.batch * a.T * a.dim} ${dtype} values`,
  );
  checkBuffer(
    op,
    `dPosition (${tableRows}, ${a.dim})`,
    a.dPosition,
    tableRows * a.dim * 4,
    `${tableRows * a.dim} values`,
  );
  const accumulate = a.accumulate ?? true;
  const n = (accumulate ? a.T : tableRows) * a.dim;
  return gpu.dispatch(
    accumulate ? "positionEmbeddingBackward.accumulate" : "positionEmbeddingBackward",
    positionEmbeddingBackwardWgsl(accumulate, dtype),
    [["u32", n], ["u32", a.batch], ["u32", a.T], ["u32", a.dim]],
    [a.dout, a.dPosition],
    grid(n, WG),
  );
}

/**
 * CPU reference (float64) of the three table gradients of {@linkcode embeddingForwardRef}:
 * dWord (vocabSize, dim), dPosition (T, dim), dTokenType (typeVocabSize, dim), fresh (not accumulated).
 */
export function embeddingBackwardRef(a: {
  dout: ArrayLike<number>;
  inputIds: ArrayLike<number>;
  tokenTypeIds: ArrayLike<number>;
  batch: number;
  T: number;
  dim: number;
  vocabSize: number;
  typeVocabSize: number;
}): { dWord: Float64Array; dPosition: Float64Array; dTokenType: Float64Array } {
  const { batch, T, dim } = a;
  const dWord = new Float64Array(a.vocabSize * dim);
  const dPosition = new Float64Array(T * dim);
  const dTokenType = new Float64Array(a.typeVocabSize * dim);
  for (let token = 0; token < batch * T; token++) {
    const id = a.inputIds[token];
    const tt = a.tokenTypeIds[token];
    const t = token % T;
    for (let c = 0; c < dim; c++) {
      const g = a.dout[token * dim + c];
      dWord[id * dim + c] += g;
      dTokenType[tt * dim + c] += g;
      dPosition[t * dim + c] += g;
    }
  }
  return { dWord, dPosition, dTokenType };
}
