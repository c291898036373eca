/**
 * BERT WordPiece tokenizer with Hugging Face `tokenizers` semantics: kitoken (Rust, wasm) runs the
 * WordPiece search; the HF-exact normalizer, pre-tokenizer, added-token split, truncation and
 * template live here in TypeScript, because kitoken's normalizer differs from HF's on final sigma
 * and on characters whose Unicode category changed after HF's tables were frozen.
 * @module
 */

import { Kitoken } from "npm:kitoken@0.10.1";
import { type BertNormalizerOptions, forEachBertWord, normalizeBert } from "./_normalizer.ts";
import { type AddedToken, parseTokenizerJson, type TokenizerSpec } from "./_spec.ts";
import { addedCount, applyTemplate, tokenizedLength, truncatedLengths } from "./_template.ts";
import { bertTokenizerJson, vocabTxt } from "./vocab.ts";

/** One encoded text (or pair): [CLS] A [SEP] (B [SEP]), truncated to `maxLength`. */
export interface Encoding {
  /** Token ids. */
  ids: Int32Array;
  /** 1 for every token (a single encoding has no padding). */
  attentionMask: Int32Array;
  /** 0 for the first segment with [CLS] and its [SEP], 1 for the pair and its final [SEP]. */
  tokenTypeIds: Int32Array;
  /** Whether tokens were dropped to fit `maxLength`. */
  truncated: boolean;
}

/** Options of {@linkcode Tokenizer.encode}. */
export interface EncodeOptions {
  /** Second segment (sentence pair tasks). */
  pair?: string;
  /** Longest result, special tokens included; longer inputs are truncated (longest_first). @default 512 */
  maxLength?: number;
  /** Add [CLS]/[SEP]. @default true */
  addSpecialTokens?: boolean;
}

/** Options of {@linkcode Tokenizer.encodeBatch}. */
export interface BatchOptions {
  /** Second segments, one per text. */
  pairs?: readonly string[];
  /** Longest row, special tokens included; longer rows are truncated. @default 512 */
  maxLength?: number;
  /** Pad every row to `maxLength`, or to the longest row of the batch. @default "longest" */
  padding?: "max_length" | "longest";
}

/** A padded batch, every array [batchSize, seqLen] row-major. */
export interface BatchEncoding {
  /** Token ids, [batchSize, seqLen] row-major; padding holds `padId`. */
  inputIds: Int32Array;
  /** 1 for real tokens, 0 for padding, [batchSize, seqLen]. */
  attentionMask: Int32Array;
  /** Segment ids, [batchSize, seqLen]: 0 for the first text, 1 for its pair. */
  tokenTypeIds: Int32Array;
  /** Rows: one per text. */
  batchSize: number;
  /** Columns: `maxLength`, or the longest row with padding "longest". */
  seqLen: number;
  /** Real (unpadded) tokens of each row. */
  lengths: Int32Array;
  /** How many rows were truncated. */
  truncated: number;
}

/** A BERT WordPiece tokenizer that gives the ids Hugging Face `tokenizers` gives. */
export interface Tokenizer {
  /** Distinct tokens, added tokens included (HF `get_vocab_size(true)`). */
  readonly vocabSize: number;
  /** Id of the classifier token that starts every encoding ([CLS]). */
  readonly clsId: number;
  /** Id of the separator token that ends each segment ([SEP]). */
  readonly sepId: number;
  /** Id of the padding token ([PAD]). */
  readonly padId: number;
  /** Id of the unknown-word token ([UNK]). */
  readonly unkId: number;
  /** Whether text is lowercased before WordPiece (uncased models). */
  readonly doLowerCase: boolean;
  /** Encodes one text, or a pair, with special tokens and truncation. */
  encode(text: string, options?: EncodeOptions): Encoding;
  /** Encodes texts into a padded [B, T] batch (pad id, mask 0 and type 0 in the padding). */
  encodeBatch(texts: readonly string[], options?: BatchOptions): BatchEncoding;
  /** Text of `ids` as HF decodes it (WordPiece decoder, "##" joined, punctuation cleanup). */
  decode(ids: ArrayLike<number>, options?: { skipSpecialTokens?: boolean }): string;
  /** The id of `token`, or undefined. */
  tokenToId(token: string): number | undefined;
  /** The token of `id`, or undefined. */
  idToToken(id: number): string | undefined;
  /** The files that reproduce this tokenizer (tokenizer.json bytes, vocab.txt text, tokenizer_config.json object), for saving next to a model. */
  files(): {
    "tokenizer.json": Uint8Array;
    "vocab.txt": string;
    "tokenizer_config.json": Record<string, unknown>;
  };
}

const NO_NORMALIZATION: BertNormalizerOptions = {
  cleanText: false,
  handleChineseChars: false,
  stripAccents: false,
  lowercase: false,
};
// deno-lint-ignore no-control-regex -- every ASCII code unit, controls included
const ASCII = /^[\x00-\x7f]*$/;
// clean_text drops ASCII controls except \t \n \r (\v and \f are controls before they are spaces).
// deno-lint-ignore no-control-regex
const ASCII_CONTROL = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/;
// deno-lint-ignore no-control-regex
const ASCII_CONTROL_ALL = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/g;
const TAB_OR_NEWLINE = /[\t\n\r]/;
const TAB_OR_NEWLINE_ALL = /[\t\n\r]/g;
const ASCII_PUNCTUATION_ALL = /[!-/:-@[-`{-~]/g;
// kitoken gets words separated by spaces (punctuation already isolated), so its split is one memchr.
const KITOKEN_SPLIT = [{ Pattern: { pattern: { Character: " " }, behavior: "Remove" } }];

/** WordPiece ids of one text and the positions of added tokens among them (null: none). */
interface Pieces {
  ids: ArrayLike<number>;
  added: number[] | null;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function decoderCleanup(token: string): string {
  // HF tokenizers decoders::wordpiece::cleanup, applied to each token (with its leading space).
  return token.replaceAll(" .", ".").replaceAll(" ?", "?").replaceAll(" !", "!").replaceAll(" ,", ",")
    .replaceAll(" ' ", "'").replaceAll(" n't", "n't").replaceAll(" 'm", "'m").replaceAll(" do not", " don't")
    .replaceAll(" 's", "'s").replaceAll(" 've", "'ve").replaceAll(" 're", "'re");
}

class WordPieceTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly clsId: number;
  readonly sepId: number;
  readonly padId: number;
  readonly unkId: number;
  readonly doLowerCase: boolean;
  readonly #spec: TokenizerSpec;
  readonly #json: Uint8Array;
  readonly #kit: Kitoken;
  readonly #normalizer: BertNormalizerOptions;
  /** ASCII text without added tokens can go to kitoken after lowercasing and dropping controls. */
  readonly #asciiFastPath: boolean;
  readonly #addedTest: RegExp | null;
  readonly #addedSplit: RegExp | null;
  readonly #addedByContent: Map<string, AddedToken>;
  readonly #addedById: Map<number, AddedToken>;
  readonly #singleAdded: number;
  readonly #pairAdded: number;
  /** 1 for "##" continuation pieces: every other token starts a word. */
  readonly #continues: Uint8Array;

  constructor(spec: TokenizerSpec, json: Uint8Array, name: string) {
    this.#spec = spec;
    this.#json = json.slice(); // files() must not change if the caller reuses its buffer
    this.#normalizer = spec.normalizer ?? NO_NORMALIZATION;
    this.#asciiFastPath = spec.normalizer !== null && spec.normalizer.cleanText;
    this.doLowerCase = this.#normalizer.lowercase;
    this.#addedByContent = new Map(spec.added.map((t) => [t.content, t]));
    this.#addedById = new Map(spec.added.map((t) => [t.id, t]));
    if (spec.added.length > 0) {
      // Longest first, so the alternation picks HF's leftmost-longest match.
      const contents = spec.added.map((t) => t.content).sort((a, b) => b.length - a.length);
      const alternation = contents.map(escapeRegExp).join("|");
      this.#addedTest = new RegExp(alternation);
      this.#addedSplit = new RegExp(`(${alternation})`);
    } else {
      this.#addedTest = this.#addedSplit = null;
    }
    this.#continues = new Uint8Array(spec.vocab.length);
    spec.vocab.forEach((token, id) => {
      if (token?.startsWith(spec.continuingSubwordPrefix) && !this.#addedById.has(id)) {
        this.#continues[id] = 1;
      }
    });
    this.#singleAdded = addedCount(spec.template.single);
    this.#pairAdded = addedCount(spec.template.pair);
    const distinct = new Set(spec.tokenIds.keys());
    for (const t of spec.added) distinct.add(t.content);
    this.vocabSize = distinct.size;
    const required = (token: string, why: string): number => {
      const id = this.tokenToId(token);
      if (id === undefined) {
        throw new TypeError(
          `Cannot load tokenizer "${name}": the vocabulary has no "${token}" token (${why})`,
        );
      }
      return id;
    };
    const singleSpecials = spec.template.single.filter((p) => p.kind === "special");
    const firstSpecial = singleSpecials[0];
    const lastSpecial = singleSpecials[singleSpecials.length - 1];
    this.clsId = firstSpecial?.kind === "special"
      ? firstSpecial.ids[0]
      : required("[CLS]", "the classifier token");
    this.sepId = lastSpecial?.kind === "special" && singleSpecials.length > 1
      ? lastSpecial.ids[lastSpecial.ids.length - 1]
      : required("[SEP]", "the separator token");
    this.padId = required("[PAD]", "padding");
    this.unkId = required(spec.unkToken, "unknown words");
    try {
      this.#kit = Kitoken.from_tokenizers(json);
    } catch (e) {
      throw new TypeError(`Cannot load tokenizer "${name}": kitoken rejected it (${e})`);
    }
    const config = this.#kit.config();
    config.normalization = [];
    config.split = KITOKEN_SPLIT;
    config.processing = [];
    this.#kit.set_config(config);
  }

  /** WordPiece ids of one text, without special tokens. */
  #wordPieces(text: string): Pieces {
    if (this.#asciiFastPath && ASCII.test(text) && !this.#addedTest?.test(text)) {
      // HF's normalizer and pre-tokenizer restricted to ASCII: drop controls, \t \n \r are spaces,
      // lowercase, punctuation becomes its own word. Words over 100 chars: kitoken gives [UNK] too.
      let t = ASCII_CONTROL.test(text) ? text.replace(ASCII_CONTROL_ALL, "") : text;
      if (TAB_OR_NEWLINE.test(t)) t = t.replace(TAB_OR_NEWLINE_ALL, " ");
      if (this.#normalizer.lowercase) t = t.toLowerCase();
      return { ids: this.#kit.encode(t.replace(ASCII_PUNCTUATION_ALL, " $& "), false), added: null };
    }
    return this.#wordPiecesSlow(text);
  }

  /** The general path: split out added tokens, normalize and pre-tokenize here, WordPiece in kitoken. */
  #wordPiecesSlow(text: string): Pieces {
    const out: number[] = [];
    let added: number[] | null = null;
    const parts = this.#addedSplit ? text.split(this.#addedSplit) : [text];
    const maxChars = this.#spec.maxInputCharsPerWord;
    for (let p = 0; p < parts.length; p++) {
      if (p % 2 === 1) {
        (added ??= []).push(out.length);
        out.push(this.#addedByContent.get(parts[p])!.id);
        continue;
      }
      const normalized = normalizeBert(parts[p], this.#normalizer);
      let run = "";
      const flush = () => {
        if (run === "") return;
        for (const id of this.#kit.encode(run, false)) out.push(id);
        run = "";
      };
      forEachBertWord(normalized, (start, end, chars) => {
        if (chars > maxChars) {
          flush();
          out.push(this.unkId); // HF: a word longer than max_input_chars_per_word is one [UNK]
        } else {
          run = run === "" ? normalized.slice(start, end) : `${run} ${normalized.slice(start, end)}`;
        }
      });
      flush();
    }
    return { ids: out, added };
  }

  /** Lengths to keep of `a` and `b` (null: single text) for at most `maxLength` tokens in all. */
  #keep(a: Pieces, b: Pieces | null, maxLength: number, added: number): [number, number] {
    if (b === null) return truncatedLengths(a.ids.length, -1, maxLength - added);
    // HF decides which sequence is longer from what it tokenized before stopping early.
    const n1 = tokenizedLength(a.ids, a.added, maxLength, this.#continues);
    const n2 = tokenizedLength(b.ids, b.added, maxLength, this.#continues);
    return truncatedLengths(n1, n2, maxLength - added);
  }

  #checkMaxLength(maxLength: number, minimum: number, pairs: boolean): void {
    if (!Number.isInteger(maxLength) || maxLength < minimum) {
      throw new RangeError(
        `maxLength ${maxLength} is too small: it must be an integer of at least ${minimum}` +
          (pairs ? " for sentence pairs" : "") + " (room for the special tokens)",
      );
    }
  }

  encode(text: string, options: EncodeOptions = {}): Encoding {
    const maxLength = options.maxLength ?? 512;
    const addSpecial = options.addSpecialTokens ?? true;
    const isPair = options.pair !== undefined;
    const added = addSpecial ? (isPair ? this.#pairAdded : this.#singleAdded) : 0;
    this.#checkMaxLength(maxLength, Math.max(added, 1), isPair);
    const a = this.#wordPieces(text);
    const b = isPair ? this.#wordPieces(options.pair!) : null;
    const [la, lb] = this.#keep(a, b, maxLength, added);
    const n = la + Math.max(lb, 0) + added;
    const ids = new Int32Array(n);
    const tokenTypeIds = new Int32Array(n);
    const template = isPair ? this.#spec.template.pair : this.#spec.template.single;
    applyTemplate(template, addSpecial, a.ids, la, b?.ids ?? null, lb, ids, tokenTypeIds, 0);
    return {
      ids,
      attentionMask: new Int32Array(n).fill(1),
      tokenTypeIds,
      truncated: la < a.ids.length || (b !== null && lb < b.ids.length),
    };
  }

  encodeBatch(texts: readonly string[], options: BatchOptions = {}): BatchEncoding {
    const maxLength = options.maxLength ?? 512;
    const padding = options.padding ?? "longest";
    const pairs = options.pairs;
    if (padding !== "longest" && padding !== "max_length") {
      throw new RangeError(
        `padding ${JSON.stringify(padding)} is not supported; use "longest" or "max_length"`,
      );
    }
    if (pairs !== undefined && pairs.length !== texts.length) {
      throw new RangeError(
        `pairs has ${pairs.length} entries but texts has ${texts.length}; give one pair per text`,
      );
    }
    const added = pairs ? this.#pairAdded : this.#singleAdded;
    this.#checkMaxLength(maxLength, Math.max(added, 1), pairs !== undefined);
    const batchSize = texts.length;
    const first: ArrayLike<number>[] = new Array(batchSize);
    const second: (ArrayLike<number> | null)[] = new Array(batchSize);
    const lengths = new Int32Array(batchSize);
    const keepA = new Int32Array(batchSize);
    const keepB = new Int32Array(batchSize);
    let longest = 0;
    let truncated = 0;
    for (let r = 0; r < batchSize; r++) {
      const a = this.#wordPieces(texts[r]);
      const b = pairs ? this.#wordPieces(pairs[r]) : null;
      const [la, lb] = this.#keep(a, b, maxLength, added);
      first[r] = a.ids;
      second[r] = b?.ids ?? null;
      keepA[r] = la;
      keepB[r] = lb;
      lengths[r] = la + Math.max(lb, 0) + added;
      if (la < a.ids.length || (b !== null && lb < b.ids.length)) truncated++;
      if (lengths[r] > longest) longest = lengths[r];
    }
    const seqLen = padding === "max_length" ? maxLength : longest;
    const inputIds = new Int32Array(batchSize * seqLen);
    if (this.padId !== 0) inputIds.fill(this.padId);
    const tokenTypeIds = new Int32Array(batchSize * seqLen);
    const attentionMask = new Int32Array(batchSize * seqLen);
    const template = pairs ? this.#spec.template.pair : this.#spec.template.single;
    for (let r = 0; r < batchSize; r++) {
      const at = r * seqLen;
      applyTemplate(template, true, first[r], keepA[r], second[r], keepB[r], inputIds, tokenTypeIds, at);
      attentionMask.fill(1, at, at + lengths[r]);
    }
    return { inputIds, attentionMask, tokenTypeIds, batchSize, seqLen, lengths, truncated };
  }

  decode(ids: ArrayLike<number>, options: { skipSpecialTokens?: boolean } = {}): string {
    const skip = options.skipSpecialTokens ?? true;
    const tokens: string[] = [];
    for (let i = 0; i < ids.length; i++) {
      const added = this.#addedById.get(ids[i]);
      if (added !== undefined && skip && added.special) continue;
      const token = added?.content ?? this.#spec.vocab[ids[i]];
      if (token !== undefined) tokens.push(token);
    }
    const decoder = this.#spec.decoder;
    if (decoder === null) return tokens.join(" ");
    let out = "";
    for (let i = 0; i < tokens.length; i++) {
      // HF decoders::WordPiece: "##x" glues to the previous token, others get a leading space.
      let t = tokens[i];
      if (i !== 0) t = t.startsWith(decoder.prefix) ? t.replace(decoder.prefix, "") : ` ${t}`;
      out += decoder.cleanup ? decoderCleanup(t) : t;
    }
    return out;
  }

  tokenToId(token: string): number | undefined {
    return this.#addedByContent.get(token)?.id ?? this.#spec.tokenIds.get(token);
  }

  idToToken(id: number): string | undefined {
    return this.#addedById.get(id)?.content ?? this.#spec.vocab[id];
  }

  files(): {
    "tokenizer.json": Uint8Array;
    "vocab.txt": string;
    "tokenizer_config.json": Record<string, unknown>;
  } {
    const n = this.#normalizer;
    const config: Record<string, unknown> = {
      tokenizer_class: "BertTokenizer",
      do_lower_case: n.lowercase,
      strip_accents: n.stripAccents === n.lowercase ? null : n.stripAccents,
      tokenize_chinese_chars: n.handleChineseChars,
      model_max_length: 512,
      clean_up_tokenization_spaces: true,
      unk_token: this.#spec.unkToken,
    };
    config.cls_token = this.idToToken(this.clsId);
    config.sep_token = this.idToToken(this.sepId);
    config.pad_token = this.idToToken(this.padId);
    if (this.tokenToId("[MASK]") !== undefined) config.mask_token = "[MASK]";
    const vocab: string[] = [];
    for (let id = 0; id < this.#spec.vocab.length; id++) vocab.push(this.idToToken(id) ?? "");
    return {
      "tokenizer.json": this.#json.slice(),
      "vocab.txt": vocabTxt(vocab),
      "tokenizer_config.json": config,
    };
  }
}

/**
 * A tokenizer from tokenizer.json bytes (`name` labels errors). Supports what BERT checkpoints ship:
 * BertNormalizer, BertPreTokenizer, WordPiece, TemplateProcessing/BertProcessing, WordPiece decoder;
 * anything else is a TypeError rather than a silently different tokenization.
 *
 * @param bytes The tokenizer.json file's bytes.
 * @param name Names the source in error messages.
 * @returns The tokenizer.
 * @throws {TypeError} for a component other than BERT's, or a vocabulary without [CLS], [SEP], [PAD] or the unknown token.
 * @example
 * ```ts
 * import { tokenizerFromJson, tokenizerFromVocab } from "./tokenizer.ts";
 * // Any BERT tokenizer.json; here one written by another tokenizer's files().
 * const bytes = tokenizerFromVocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello", "!"]).files()["tokenizer.json"];
 * const tok = tokenizerFromJson(bytes);
 * console.log(Array.from(tok.encode("Hello!").ids)); // [2, 4, 5, 3]
 * ```
 */
export function tokenizerFromJson(bytes: Uint8Array, name = "tokenizer.json"): Tokenizer {
  const text = new TextDecoder().decode(bytes);
  return new WordPieceTokenizer(parseTokenizerJson(text, name), bytes, name);
}

/** Options of {@linkcode tokenizerFromVocab}. */
export interface VocabOptions {
  /** Lowercase and strip accents (uncased BERT). @default true */
  doLowerCase?: boolean;
}

/**
 * A BERT tokenizer over an in-memory vocabulary (token of each id), built exactly as
 * `BertTokenizerFast` builds one from vocab.txt. The vocabulary needs [UNK], [CLS], [SEP] and [PAD].
 *
 * @param vocab The token of each id (vocab.txt's lines).
 * @param options `doLowerCase`: lowercase and strip accents (uncased BERT).
 * @returns The tokenizer.
 * @throws {RangeError} for a repeated token or a missing [UNK], [CLS], [SEP] or [PAD].
 * @example
 * ```ts
 * import { tokenizerFromVocab } from "./tokenizer.ts";
 * const tok = tokenizerFromVocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "cat", "##s"]);
 * console.log(Array.from(tok.encode("The cats").ids)); // [2, 4, 5, 6, 3]
 * ```
 */
export function tokenizerFromVocab(vocab: readonly string[], options: VocabOptions = {}): Tokenizer {
  const json = bertTokenizerJson(vocab, { doLowerCase: options.doLowerCase ?? true });
  return tokenizerFromJson(new TextEncoder().encode(json), "vocabulary");
}
