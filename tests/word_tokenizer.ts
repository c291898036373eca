/**
 * A whole-word tokenizer for test fixtures whose texts use only vocabulary words, so token ids are
 * known without a WordPiece implementation (the PyTorch fixture scripts compute the same ids).
 * @module
 */
import type { BatchEncoding, BatchTokenizer } from "../train/data/batches.ts";

/** Whole-word tokenizer for the fixture's vocabulary (every word is in it; no sub-words). */
export async function wordTokenizer(vocabPath: string): Promise<BatchTokenizer> {
  const vocab = (await Deno.readTextFile(vocabPath)).trim().split("\n");
  const id = new Map(vocab.map((w, i) => [w, i]));
  return {
    encodeBatch(texts, options = {}): BatchEncoding {
      const rows = texts.map((
        t,
      ) => [id.get("[CLS]")!, ...t.split(" ").map((w) => id.get(w)!), id.get("[SEP]")!]);
      const longest = Math.max(...rows.map((r) => r.length));
      const T = options.padding === "longest" ? longest : options.maxLength!;
      if (longest > T) throw new RangeError("wordTokenizer does not truncate: raise maxLength");
      const B = rows.length;
      const enc = {
        inputIds: new Int32Array(B * T),
        attentionMask: new Int32Array(B * T),
        tokenTypeIds: new Int32Array(B * T),
        batchSize: B,
        seqLen: T,
        lengths: Int32Array.from(rows, (r) => r.length),
        truncated: 0,
      };
      rows.forEach((r, b) => {
        enc.inputIds.set(r, b * T);
        enc.attentionMask.fill(1, b * T, b * T + r.length);
      });
      return enc;
    },
  };
}
