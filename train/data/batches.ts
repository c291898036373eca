/**
 * Batching: a seeded order of example indices per epoch, and tokenized batches with fixed
 * ("max_length", as the tutorial pads) or dynamic ("longest" in the batch) padding.
 * Tensors are row-major (batchSize, seqLen), as the model consumes them.
 * @module
 */

import { Rng } from "../../kernels/random.ts";
import type { Dataset } from "./dataset.ts";
import type { BatchEncoding } from "../../tokenizer/tokenizer.ts";

// A batch encoder returns the tokenizer's padded batch (row-major `(batchSize, seqLen)` arrays).
export type { BatchEncoding };

/** Any tokenizer with a batch encoder of this shape (tokenizer/ provides one). */
export interface BatchTokenizer {
  /** Encodes `texts` (with `pairs` as second segments) into padded id, mask and type arrays. */
  encodeBatch(
    texts: readonly string[],
    options?: { pairs?: readonly string[]; maxLength?: number; padding?: "max_length" | "longest" },
  ): BatchEncoding;
}

/** One model input batch. */
export interface Batch {
  /** (batchSize, seqLen) token ids. */
  inputIds: Int32Array;
  /** (batchSize, seqLen) 1 for real tokens, 0 for padding. */
  attentionMask: Int32Array;
  /** (batchSize, seqLen) segment ids (0 first text, 1 pair). */
  tokenTypeIds: Int32Array;
  /** (batchSize) class ids, or regression targets. */
  labels: Float32Array;
  /** Rows in the batch. */
  batchSize: number;
  /** Tokens per row, padding included. */
  seqLen: number;
  /** Sum of the attention mask: tokens that are not padding. */
  realTokens: number;
}

/** Options of {@linkcode batchOrder}. */
export interface BatchOrderOptions {
  /** Shuffle the examples (seeded by `seed` and `epoch`). @default false */
  shuffle?: boolean;
  /** Seed of the shuffle. @default 42 */
  seed?: number;
  /** 0-based epoch; each epoch has its own order. @default 0 */
  epoch?: number;
  /** Drop a final batch smaller than `batchSize`. @default false */
  dropLast?: boolean;
}

/** Options of {@linkcode makeBatches}. */
export interface BatchOptions extends BatchOrderOptions {
  /** Examples per batch (the last batch may be smaller). */
  batchSize: number;
  /** Longest sequence including [CLS]/[SEP]; longer rows are truncated. */
  maxLength: number;
  /** "max_length": every batch is `maxLength` wide; "longest": as wide as its longest row. @default "max_length" */
  padding?: "max_length" | "longest";
}

/** A seed per (seed, epoch), mixed so that neighbouring epochs give unrelated streams. */
function epochSeed(seed: number, epoch: number): number {
  return (Math.imul(seed >>> 0, 0x85ebca6b) ^ Math.imul((epoch >>> 0) + 1, 0x9e3779b9)) >>> 0;
}

function checkPositiveInteger(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`${name} ${value} must be a positive integer`);
  }
}

/**
 * Example indices grouped into batches for one epoch; the same (seed, epoch) always gives the same
 * order, so a trainer can resume mid-epoch by skipping the batches it has done.
 * @param n Examples in the data set.
 * @param batchSize Examples per batch.
 * @param options Shuffling (seed, epoch) and whether to drop a short last batch.
 * @returns The example indices of each batch.
 * @throws {RangeError} when `batchSize` is not a positive integer.
 * @example
 * ```ts
 * import { batchOrder } from "./batches.ts";
 * batchOrder(5, 2); // [[0, 1], [2, 3], [4]]
 * batchOrder(5, 2, { dropLast: true }); // [[0, 1], [2, 3]]
 * ```
 */
export function batchOrder(n: number, batchSize: number, options: BatchOrderOptions = {}): number[][] {
  checkPositiveInteger("batchSize", batchSize);
  if (!Number.isInteger(n) || n < 0) {
    throw new RangeError(`Example count ${n} must be a non-negative integer`);
  }
  const order = Array.from({ length: n }, (_, i) => i);
  if (options.shuffle) new Rng(epochSeed(options.seed ?? 42, options.epoch ?? 0)).shuffle(order);
  const batches: number[][] = [];
  for (let start = 0; start < n; start += batchSize) {
    if (options.dropLast && start + batchSize > n) break;
    batches.push(order.slice(start, start + batchSize));
  }
  return batches;
}

/**
 * Tokenizes the examples at `indices` into one batch.
 * @param ds The data set.
 * @param indices The examples to batch, in order.
 * @param tokenizer Encodes the texts (a `Tokenizer` from loadTokenizer(), or any {@linkcode BatchTokenizer}).
 * @param options The truncation length and padding.
 * @returns The batch: ids, attention mask, segment ids and labels.
 * @throws {TypeError} when only some examples have a text pair; {@linkcode RangeError} for an index
 *   outside the data set or a tokenizer result of the wrong shape.
 * @example
 * ```ts
 * import { makeBatch } from "./batches.ts";
 * import { tokenizerFromVocab } from "../../tokenizer/mod.ts";
 * const tokenizer = tokenizerFromVocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "good", "bad", "film"]);
 * const ds = { name: "d", labels: ["bad", "good"], examples: [{ text: "good film", label: 1 }, { text: "bad", label: 0 }] };
 * const batch = makeBatch(ds, [1, 0], tokenizer, { maxLength: 8, padding: "longest" });
 * console.log(batch.seqLen, Array.from(batch.inputIds), Array.from(batch.labels)); // 4 [2, 5, 3, 0, 2, 4, 6, 3] [0, 1]
 * ```
 */
export function makeBatch(
  ds: Dataset,
  indices: readonly number[],
  tokenizer: BatchTokenizer,
  options: { maxLength: number; padding?: "max_length" | "longest" },
): Batch {
  checkPositiveInteger("maxLength", options.maxLength);
  const padding = options.padding ?? "max_length";
  const examples = indices.map((i) => {
    const example = ds.examples[i];
    if (!Number.isInteger(i) || example === undefined) {
      throw new RangeError(`Index ${i} is outside "${ds.name}" (${ds.examples.length} examples)`);
    }
    return example;
  });
  const pairCount = examples.filter((e) => e.textPair !== undefined).length;
  if (pairCount !== 0 && pairCount !== examples.length) {
    const single = examples.find((e) => e.textPair === undefined)!;
    throw new TypeError(
      `"${ds.name}" mixes single texts and text pairs (${
        single.source ?? "an example"
      } has no pair); give every example a pair or none`,
    );
  }
  const enc = tokenizer.encodeBatch(examples.map((e) => e.text), {
    pairs: pairCount ? examples.map((e) => e.textPair!) : undefined,
    maxLength: options.maxLength,
    padding,
  });
  const size = enc.batchSize * enc.seqLen;
  if (
    enc.batchSize !== examples.length || enc.inputIds.length !== size || enc.attentionMask.length !== size ||
    enc.tokenTypeIds.length !== size || enc.seqLen > options.maxLength ||
    (padding === "max_length" && enc.seqLen !== options.maxLength)
  ) {
    throw new RangeError(
      `Tokenizer returned batchSize ${enc.batchSize}, seqLen ${enc.seqLen} and ${enc.inputIds.length} ids for ${examples.length} texts with maxLength ${options.maxLength} and padding "${padding}"; expected ${examples.length} rows of ${
        padding === "max_length" ? options.maxLength : `at most ${options.maxLength}`
      } tokens`,
    );
  }
  let realTokens = 0;
  for (let i = 0; i < size; i++) realTokens += enc.attentionMask[i];
  return {
    inputIds: enc.inputIds,
    attentionMask: enc.attentionMask,
    tokenTypeIds: enc.tokenTypeIds,
    labels: Float32Array.from(examples, (e) => e.label),
    batchSize: enc.batchSize,
    seqLen: enc.seqLen,
    realTokens,
  };
}

/**
 * Every batch of one epoch, in {@linkcode batchOrder}'s order.
 * @param ds The data set.
 * @param tokenizer Encodes the texts (a `Tokenizer` from loadTokenizer(), or any {@linkcode BatchTokenizer}).
 * @param options Batch size, truncation length, padding and shuffling.
 * @returns The batches of the epoch, in order.
 * @example
 * ```ts
 * import { makeBatches } from "./batches.ts";
 * // A stand-in tokenizer: one token per word, padded with 0.
 * const tokenizer = {
 *   encodeBatch(texts: readonly string[], o?: { maxLength?: number }) {
 *     const seqLen = o?.maxLength ?? 8;
 *     const inputIds = new Int32Array(texts.length * seqLen);
 *     const attentionMask = new Int32Array(texts.length * seqLen);
 *     const lengths = Int32Array.from(texts, (t) => Math.min(t.split(" ").length, seqLen));
 *     lengths.forEach((n, b) => attentionMask.fill(1, b * seqLen, b * seqLen + n).length);
 *     inputIds.set(attentionMask);
 *     return { inputIds, attentionMask, tokenTypeIds: new Int32Array(texts.length * seqLen), batchSize: texts.length, seqLen, lengths, truncated: 0 };
 *   },
 * };
 * const ds = { name: "d", labels: ["no", "yes"], examples: [{ text: "a b", label: 0 }, { text: "c", label: 1 }, { text: "d e f", label: 1 }] };
 * const batches = makeBatches(ds, tokenizer, { batchSize: 2, maxLength: 4 });
 * batches.map((b) => b.realTokens); // [3, 3]
 * ```
 */
export function makeBatches(ds: Dataset, tokenizer: BatchTokenizer, options: BatchOptions): Batch[] {
  return batchOrder(ds.examples.length, options.batchSize, options).map((indices) =>
    makeBatch(ds, indices, tokenizer, options)
  );
}
