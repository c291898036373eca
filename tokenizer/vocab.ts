/**
 * vocab.txt in and out, and the Hugging Face tokenizer.json that `BertTokenizerFast` builds from a
 * vocab.txt (transformers' BertConverter), so a bare vocabulary loads like a full tokenizer.
 * @module
 */

/** The special tokens BERT vocabularies carry, in the order HF lists them in `added_tokens`. */
export const BERT_SPECIAL_TOKENS: readonly string[] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

/**
 * Parses vocab.txt: one token a line, the line number is the id (HF strips trailing whitespace).
 *
 * @example
 * ```ts
 * import { parseVocabTxt } from "./vocab.ts";
 * console.log(parseVocabTxt("[PAD]\n[UNK]\nhello\n")); // ["[PAD]", "[UNK]", "hello"]
 * ```
 */
export function parseVocabTxt(text: string, name = "vocab.txt"): string[] {
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  if (lines.length === 0) throw new SyntaxError(`Cannot read vocabulary "${name}": the file is empty`);
  return lines.map((line) => line.trimEnd());
}

/**
 * vocab.txt text for tokens listed by id: one token a line, each ending in "\n" (as HF saves it).
 *
 * @example
 * ```ts
 * import { vocabTxt } from "./vocab.ts";
 * console.log(JSON.stringify(vocabTxt(["[PAD]", "hello"]))); // "[PAD]\nhello\n"
 * ```
 */
export function vocabTxt(tokens: readonly string[]): string {
  return tokens.length === 0 ? "" : tokens.join("\n") + "\n";
}

/** Options for {@linkcode bertTokenizerJson}. */
export interface BertJsonOptions {
  /** Lowercase (and strip accents) before WordPiece: uncased BERT. @default true */
  doLowerCase?: boolean;
}

/**
 * The tokenizer.json (compact JSON text and a final newline, as bert-base-uncased ships it) of a BERT WordPiece tokenizer over `vocab`
 * (token of each id): BertNormalizer (clean_text, handle_chinese_chars, strip_accents following
 * lowercase), BertPreTokenizer, WordPiece "##" with 100 chars a word and "[UNK]", the
 * [CLS] A [SEP] (B [SEP]) template and the WordPiece decoder. Every BERT special token present in the
 * vocabulary becomes an added token; [UNK], [CLS], [SEP] and [PAD] are required.
 *
 * @example
 * ```ts
 * import { bertTokenizerJson } from "./vocab.ts";
 * const json = bertTokenizerJson(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello"]);
 * console.log(JSON.parse(json).normalizer.type); // "BertNormalizer"
 * ```
 */
export function bertTokenizerJson(vocab: readonly string[], options: BertJsonOptions = {}): string {
  const lowercase = options.doLowerCase ?? true;
  const ids = new Map<string, number>();
  vocab.forEach((token, id) => {
    const first = ids.get(token);
    if (first !== undefined) {
      throw new RangeError(
        `Cannot build a tokenizer: token ${JSON.stringify(token)} appears twice in the vocabulary ` +
          `(ids ${first} and ${id}); remove the duplicate line`,
      );
    }
    ids.set(token, id);
  });
  for (const required of ["[UNK]", "[CLS]", "[SEP]", "[PAD]"]) {
    if (!ids.has(required)) {
      throw new RangeError(`Cannot build a tokenizer: the vocabulary has no "${required}" token; add it`);
    }
  }
  const added = BERT_SPECIAL_TOKENS.filter((t) => ids.has(t))
    .map((content) => ({ id: ids.get(content)!, content }))
    .sort((a, b) => a.id - b.id)
    .map(({ id, content }) => ({
      id,
      special: true,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
    }));
  const special = (id: string, typeId: number) => ({ SpecialToken: { id, type_id: typeId } });
  const sequence = (id: string, typeId: number) => ({ Sequence: { id, type_id: typeId } });
  const head = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: {
      type: "BertNormalizer",
      clean_text: true,
      handle_chinese_chars: true,
      strip_accents: null,
      lowercase,
    },
    pre_tokenizer: { type: "BertPreTokenizer" },
    post_processor: {
      type: "TemplateProcessing",
      single: [special("[CLS]", 0), sequence("A", 0), special("[SEP]", 0)],
      pair: [
        special("[CLS]", 0),
        sequence("A", 0),
        special("[SEP]", 0),
        sequence("B", 1),
        special("[SEP]", 1),
      ],
      special_tokens: {
        "[CLS]": { id: "[CLS]", ids: [ids.get("[CLS]")], tokens: ["[CLS]"] },
        "[SEP]": { id: "[SEP]", ids: [ids.get("[SEP]")], tokens: ["[SEP]"] },
      },
    },
    decoder: { type: "WordPiece", prefix: "##", cleanup: true },
    model: { unk_token: "[UNK]", continuing_subword_prefix: "##", max_input_chars_per_word: 100 },
  };
  return tokenizerJsonText(head, vocab);
}

const VOCAB_PLACEHOLDER = "\u0000vocab\u0000";

/**
 * Serializes a tokenizer.json object as compact JSON with a final newline, writing `model.vocab` from
 * `vocab` (token of each id) in id order. A plain object cannot hold that order: JavaScript moves
 * integer-like keys ("1", "42") to the front.
 *
 * @example
 * ```ts
 * import { tokenizerJsonText } from "./vocab.ts";
 * console.log(tokenizerJsonText({ model: { unk_token: "x" } }, ["x", "1"]));
 * // {"model":{"unk_token":"x","vocab":{"x":0,"1":1}}}
 * ```
 */
export function tokenizerJsonText(
  root: Record<string, unknown>,
  vocab: readonly (string | undefined)[],
): string {
  const model = { ...(root.model as Record<string, unknown>), vocab: VOCAB_PLACEHOLDER };
  const text = JSON.stringify({ ...root, model });
  const entries = vocab.flatMap((token, id) => token === undefined ? [] : [`${JSON.stringify(token)}:${id}`]);
  return text.replace(JSON.stringify(VOCAB_PLACEHOLDER), () => `{${entries.join(",")}}`) + "\n";
}
