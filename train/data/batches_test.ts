import assert from "node:assert/strict";
import { batchOrder, makeBatch, makeBatches } from "./batches.ts";
import type { BatchEncoding, BatchTokenizer } from "./batches.ts";
import type { Dataset } from "./dataset.ts";
import { assertThrowsWith } from "./_assertions.ts";

const CLS = 101;
const SEP = 102;

/**
 * A stand-in for tokenizer/: one id per space-separated word (its length + 1000), [CLS] a [SEP]
 * (b [SEP]), truncating the longer text first, padding with 0. Records the calls it gets.
 */
class FakeTokenizer implements BatchTokenizer {
  calls: { texts: readonly string[]; pairs?: readonly string[] }[] = [];
  encodeBatch(
    texts: readonly string[],
    options: { pairs?: readonly string[]; maxLength?: number; padding?: "max_length" | "longest" } = {},
  ): BatchEncoding {
    this.calls.push({ texts, pairs: options.pairs });
    const maxLength = options.maxLength ?? 512;
    let truncated = 0;
    const rows = texts.map((text, b) => {
      const a = text.split(" ").map((w) => 1000 + w.length);
      const p = options.pairs ? options.pairs[b].split(" ").map((w) => 1000 + w.length) : null;
      const budget = maxLength - (p ? 3 : 2);
      if (a.length + (p?.length ?? 0) > budget) truncated++;
      while (a.length + (p?.length ?? 0) > budget) (p && p.length > a.length ? p : a).pop();
      const ids = [CLS, ...a, SEP, ...(p ? [...p, SEP] : [])];
      const types = ids.map((_, i) => (i >= a.length + 2 ? 1 : 0));
      return { ids, types };
    });
    const seqLen = options.padding === "longest" ? Math.max(...rows.map((r) => r.ids.length)) : maxLength;
    const n = texts.length * seqLen;
    const enc: BatchEncoding = {
      inputIds: new Int32Array(n),
      attentionMask: new Int32Array(n),
      tokenTypeIds: new Int32Array(n),
      batchSize: texts.length,
      seqLen,
      lengths: Int32Array.from(rows, (r) => r.ids.length),
      truncated,
    };
    rows.forEach((r, b) => {
      enc.inputIds.set(r.ids, b * seqLen);
      enc.tokenTypeIds.set(r.types, b * seqLen);
      enc.attentionMask.fill(1, b * seqLen, b * seqLen + r.ids.length);
    });
    return enc;
  }
}

/** `n` examples whose i-th text has (i % 7) + 1 words and label i % 2. */
function dataset(n: number): Dataset {
  const examples = Array.from({ length: n }, (_, i) => ({
    text: Array.from({ length: (i % 7) + 1 }, (_, w) => "w".repeat(((i + w) % 5) + 1)).join(" "),
    label: i % 2,
    source: `d.tsv:${i + 1}`,
  }));
  return { examples, labels: ["no", "yes"], name: "d.tsv" };
}

Deno.test("makeBatches() with max_length padding gives fixed-shape batches with the right masks", () => {
  const ds = dataset(10);
  const batches = makeBatches(ds, new FakeTokenizer(), { batchSize: 4, maxLength: 6 });
  assert.deepEqual(batches.map((b) => [b.batchSize, b.seqLen]), [[4, 6], [4, 6], [2, 6]]);
  for (const [k, batch] of batches.entries()) {
    for (let r = 0; r < batch.batchSize; r++) {
      const i = k * 4 + r;
      const length = Math.min((i % 7) + 3, 6); // words + [CLS] + [SEP], truncated to 6
      const row = (a: Int32Array) => Array.from(a.subarray(r * 6, r * 6 + 6));
      assert.deepEqual(row(batch.attentionMask), [...Array(length).fill(1), ...Array(6 - length).fill(0)]);
      assert.equal(row(batch.inputIds)[0], CLS);
      assert.equal(row(batch.inputIds)[length - 1], SEP);
      assert.equal(batch.labels[r], i % 2);
    }
    assert.equal(batch.realTokens, batch.attentionMask.reduce((s, m) => s + m, 0));
    assert.ok(batch.labels instanceof Float32Array);
  }
});

Deno.test("makeBatches() with longest padding sizes each batch to its longest row", () => {
  const ds = dataset(9);
  const batches = makeBatches(ds, new FakeTokenizer(), { batchSize: 3, maxLength: 8, padding: "longest" });
  // Rows have (i % 7) + 3 tokens, capped at 8: batch {0,1,2} -> 5, {3,4,5} -> 8, {6,7,8} -> 8 (row 6 truncated).
  assert.deepEqual(batches.map((b) => b.seqLen), [5, 8, 8]);
  assert.deepEqual(batches.map((b) => b.inputIds.length), [15, 24, 24]);
  assert.deepEqual(batches.map((b) => b.realTokens), [3 + 4 + 5, 6 + 7 + 8, 8 + 3 + 4]);
});

Deno.test("batchOrder() is deterministic per (seed, epoch) and differs across epochs and seeds", () => {
  const a = batchOrder(50, 8, { shuffle: true, seed: 7, epoch: 3 });
  assert.deepEqual(batchOrder(50, 8, { shuffle: true, seed: 7, epoch: 3 }), a);
  assert.notDeepEqual(batchOrder(50, 8, { shuffle: true, seed: 7, epoch: 4 }), a);
  assert.notDeepEqual(batchOrder(50, 8, { shuffle: true, seed: 8, epoch: 3 }), a);
  assert.notDeepEqual(a.flat(), Array.from({ length: 50 }, (_, i) => i));
  assert.deepEqual(batchOrder(5, 2), [[0, 1], [2, 3], [4]]);
});

Deno.test("batchOrder() covers every example exactly once, and dropLast drops only the short batch", () => {
  for (const epoch of [0, 1, 2]) {
    const order = batchOrder(23, 5, { shuffle: true, seed: 1, epoch });
    assert.deepEqual(order.map((b) => b.length), [5, 5, 5, 5, 3]);
    assert.deepEqual([...order.flat()].sort((x, y) => x - y), Array.from({ length: 23 }, (_, i) => i));
    const dropped = batchOrder(23, 5, { shuffle: true, seed: 1, epoch, dropLast: true });
    assert.deepEqual(dropped, order.slice(0, 4));
  }
  assert.deepEqual(batchOrder(20, 5, { dropLast: true }).length, 4);
  assertThrowsWith(() => batchOrder(10, 0), RangeError, "batchSize 0 must be a positive integer");
});

Deno.test("makeBatches() follows batchOrder(), so makeBatch() can resume mid-epoch", () => {
  const ds = dataset(17);
  const options = {
    batchSize: 4,
    maxLength: 9,
    shuffle: true,
    seed: 3,
    epoch: 2,
    padding: "longest" as const,
  };
  const tokenizer = new FakeTokenizer();
  const all = makeBatches(ds, tokenizer, options);
  const order = batchOrder(17, 4, options);
  assert.deepEqual(tokenizer.calls.map((c) => c.texts), order.map((b) => b.map((i) => ds.examples[i].text)));
  const resumed = makeBatch(ds, order[3], new FakeTokenizer(), options);
  assert.deepEqual(resumed, all[3]);
});

Deno.test("makeBatch() passes text pairs and rejects a mix of pairs and single texts", () => {
  const ds: Dataset = {
    name: "p.jsonl",
    labels: ["a", "b", "c"],
    examples: [
      { text: "x y", textPair: "z", label: 2 },
      { text: "x", textPair: "y z w", label: 0 },
    ],
  };
  const tokenizer = new FakeTokenizer();
  const batch = makeBatch(ds, [0, 1], tokenizer, { maxLength: 8 });
  assert.deepEqual(tokenizer.calls[0].pairs, ["z", "y z w"]);
  assert.deepEqual(Array.from(batch.tokenTypeIds.subarray(0, 8)), [0, 0, 0, 0, 1, 1, 0, 0]);
  assert.deepEqual(Array.from(batch.labels), [2, 0]);
  ds.examples.push({ text: "alone", label: 1, source: "p.jsonl:3" });
  assertThrowsWith(
    () => makeBatch(ds, [0, 2], tokenizer, { maxLength: 8 }),
    TypeError,
    `"p.jsonl" mixes single texts and text pairs (p.jsonl:3 has no pair)`,
  );
  assertThrowsWith(
    () => makeBatch(ds, [5], tokenizer, { maxLength: 8 }),
    RangeError,
    `Index 5 is outside "p.jsonl"`,
  );
});

Deno.test("makeBatch() rejects a tokenizer result of the wrong shape", () => {
  const inner = new FakeTokenizer();
  const sloppy: BatchTokenizer = {
    // Ignores the padding option: always pads to the longest row.
    encodeBatch: (texts, options) => inner.encodeBatch(texts, { ...options, padding: "longest" }),
  };
  assertThrowsWith(
    () => makeBatch(dataset(3), [0, 1], sloppy, { maxLength: 16 }),
    RangeError,
    `Tokenizer returned batchSize 2, seqLen 4`,
    `expected 2 rows of 16 tokens`,
  );
});
