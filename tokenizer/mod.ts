/**
 * BERT WordPiece tokenization with Hugging Face's exact ids: load a tokenizer from a folder,
 * tokenizer.json, vocab.txt or URL (or build one from an in-memory vocabulary), then encode single
 * texts, sentence pairs and padded batches, and decode ids back to text.
 *
 * WordPiece runs in kitoken (Rust compiled to wasm); normalization, pre-tokenization, truncation and
 * the [CLS]/[SEP] template follow `tokenizers` character for character (see `tokenizer/parity_test.ts`).
 *
 * @example
 * ```ts
 * import { loadTokenizer } from "./mod.ts";
 * const dir = await Deno.makeTempDir();
 * const vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "our", "friends", "won", "'", "t", "buy", "this", "analysis", "."];
 * await Deno.writeTextFile(`${dir}/vocab.txt`, vocab.join("\n") + "\n");
 * const tok = await loadTokenizer(dir);
 * const batch = tok.encodeBatch(["Our friends won't buy this analysis.", "Hi!"]);
 * console.log(batch.batchSize, batch.seqLen); // 2 11
 * console.log(tok.decode(batch.inputIds.subarray(0, batch.lengths[0]))); // our friends won ' t buy this analysis.
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */

export type {
  BatchEncoding,
  BatchOptions,
  EncodeOptions,
  Encoding,
  Tokenizer,
  VocabOptions,
} from "./tokenizer.ts";
export { tokenizerFromJson, tokenizerFromVocab } from "./tokenizer.ts";
export { type LoadOptions, loadTokenizer } from "./load.ts";
export {
  type BertJsonOptions,
  bertTokenizerJson,
  parseVocabTxt,
  tokenizerJsonText,
  vocabTxt,
} from "./vocab.ts";
