/**
 * Reads a Hugging Face tokenizer.json into the few facts a BERT WordPiece tokenizer needs, and
 * refuses (TypeError naming the field) anything this module would not reproduce exactly.
 * @module
 */

import type { BertNormalizerOptions } from "./_normalizer.ts";
import type { Template, TemplatePiece } from "./_template.ts";

/** An entry of tokenizer.json `added_tokens`: matched verbatim in the raw text before normalizing. */
export interface AddedToken {
  readonly id: number;
  readonly content: string;
  readonly special: boolean;
}

/** Everything the tokenizer uses from tokenizer.json. */
export interface TokenizerSpec {
  /** Token of each model id (holes are undefined). */
  readonly vocab: readonly (string | undefined)[];
  /** Model vocabulary: token -> id. */
  readonly tokenIds: ReadonlyMap<string, number>;
  readonly added: readonly AddedToken[];
  /** null: no normalizer (text goes to the pre-tokenizer as is). */
  readonly normalizer: BertNormalizerOptions | null;
  readonly unkToken: string;
  readonly continuingSubwordPrefix: string;
  readonly maxInputCharsPerWord: number;
  readonly template: Template;
  /** null: tokens are joined with spaces (HF's behaviour without a decoder). */
  readonly decoder: { readonly prefix: string; readonly cleanup: boolean } | null;
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function fail(name: string, what: string): never {
  throw new TypeError(`Cannot load tokenizer "${name}": ${what}`);
}

function parseNormalizer(n: unknown, name: string): BertNormalizerOptions | null {
  if (n === null || n === undefined) return null;
  if (!isObject(n) || n.type !== "BertNormalizer") {
    fail(
      name,
      `normalizer ${JSON.stringify(isObject(n) ? n.type : n)} is not supported; expected BertNormalizer`,
    );
  }
  const flag = (key: string, fallback: boolean): boolean => {
    const v = n[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== "boolean") {
      fail(name, `normalizer.${key} is ${JSON.stringify(v)}; expected true or false`);
    }
    return v;
  };
  const lowercase = flag("lowercase", true);
  return {
    cleanText: flag("clean_text", true),
    handleChineseChars: flag("handle_chinese_chars", true),
    stripAccents: flag("strip_accents", lowercase), // null follows lowercase, as in HF
    lowercase,
  };
}

function idOf(token: string, spec: { tokenIds: ReadonlyMap<string, number>; added: readonly AddedToken[] }) {
  return spec.added.find((t) => t.content === token)?.id ?? spec.tokenIds.get(token);
}

function parseTemplate(
  p: unknown,
  name: string,
  lookup: (token: string) => number | undefined,
): Template {
  const seq = (s: 0 | 1, typeId: number): TemplatePiece => ({ kind: "sequence", sequence: s, typeId });
  const special = (token: string, typeId: number): TemplatePiece => {
    const id = lookup(token);
    if (id === undefined) fail(name, `post_processor token "${token}" is not in the vocabulary`);
    return { kind: "special", ids: [id], typeId };
  };
  if (p === null || p === undefined) return { single: [seq(0, 0)], pair: [seq(0, 0), seq(1, 1)] };
  if (!isObject(p)) fail(name, "post_processor is not an object");
  if (p.type === "BertProcessing") {
    const cls = p.cls as [string, number];
    const sep = p.sep as [string, number];
    const piece = (t: [string, number], typeId: number): TemplatePiece => ({
      kind: "special",
      ids: [t[1]],
      typeId,
    });
    return {
      single: [piece(cls, 0), seq(0, 0), piece(sep, 0)],
      pair: [piece(cls, 0), seq(0, 0), piece(sep, 0), seq(1, 1), piece(sep, 1)],
    };
  }
  if (p.type !== "TemplateProcessing") {
    fail(name, `post_processor ${JSON.stringify(p.type)} is not supported; expected TemplateProcessing`);
  }
  const specials = isObject(p.special_tokens) ? p.special_tokens : {};
  const pieces = (list: unknown, which: string): TemplatePiece[] => {
    if (!Array.isArray(list)) fail(name, `post_processor.${which} is not a list`);
    return list.map((item): TemplatePiece => {
      if (isObject(item) && isObject(item.Sequence)) {
        const { id, type_id } = item.Sequence as { id: string; type_id: number };
        if (id !== "A" && id !== "B") {
          fail(name, `post_processor sequence ${JSON.stringify(id)} is not A or B`);
        }
        return seq(id === "A" ? 0 : 1, type_id);
      }
      if (isObject(item) && isObject(item.SpecialToken)) {
        const { id, type_id } = item.SpecialToken as { id: string; type_id: number };
        const entry = specials[id];
        if (isObject(entry) && Array.isArray(entry.ids)) {
          return { kind: "special", ids: (entry.ids as number[]).slice(), typeId: type_id };
        }
        return special(id, type_id);
      }
      return fail(name, `post_processor.${which} has an unknown piece ${JSON.stringify(item)}`);
    });
  };
  return { single: pieces(p.single, "single"), pair: pieces(p.pair, "pair") };
}

/** Parses tokenizer.json text; `name` (a path or label) appears in every error. */
export function parseTokenizerJson(text: string, name: string): TokenizerSpec {
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch (e) {
    throw new SyntaxError(
      `Cannot load tokenizer "${name}": invalid JSON (${
        (e as Error).message
      }); expected a Hugging Face tokenizer.json`,
    );
  }
  if (!isObject(root) || !isObject(root.model)) {
    fail(name, "no model object; expected a Hugging Face tokenizer.json");
  }
  const model = root.model;
  if (model.type !== undefined && model.type !== "WordPiece") {
    fail(name, `model type ${JSON.stringify(model.type)} is not supported; expected WordPiece`);
  }
  if (!isObject(model.vocab)) fail(name, "model.vocab is not an object of token -> id");
  const tokenIds = new Map<string, number>();
  const entries = Object.entries(model.vocab);
  const vocab: (string | undefined)[] = new Array(entries.length); // ids are usually 0..n-1
  for (const [token, id] of entries) {
    if (!Number.isInteger(id) || (id as number) < 0) {
      fail(name, `vocab id of ${JSON.stringify(token)} is ${id}`);
    }
    tokenIds.set(token, id as number);
    vocab[id as number] = token;
  }
  const pre = root.pre_tokenizer;
  if (!isObject(pre) || pre.type !== "BertPreTokenizer") {
    fail(
      name,
      `pre_tokenizer ${
        JSON.stringify(isObject(pre) ? pre.type : pre)
      } is not supported; expected BertPreTokenizer`,
    );
  }
  const added: AddedToken[] = [];
  for (const t of Array.isArray(root.added_tokens) ? root.added_tokens : []) {
    if (!isObject(t) || typeof t.content !== "string" || !Number.isInteger(t.id)) {
      fail(name, `added token ${JSON.stringify(t)} needs a string content and an integer id`);
    }
    for (const key of ["single_word", "lstrip", "rstrip", "normalized"]) {
      if (t[key] === true) fail(name, `added token "${t.content}" sets ${key}, which is not supported`);
    }
    if (t.content === "") fail(name, "an added token is empty");
    added.push({ id: t.id as number, content: t.content, special: t.special === true });
  }
  const unkToken = typeof model.unk_token === "string" ? model.unk_token : "[UNK]";
  const prefix = typeof model.continuing_subword_prefix === "string" ? model.continuing_subword_prefix : "##";
  const maxChars = typeof model.max_input_chars_per_word === "number" ? model.max_input_chars_per_word : 100;
  const lookupSpec = { tokenIds, added };
  if (idOf(unkToken, lookupSpec) === undefined) {
    fail(name, `unk_token "${unkToken}" is not in the vocabulary`);
  }
  const dec = root.decoder;
  let decoder: TokenizerSpec["decoder"] = null;
  if (dec !== null && dec !== undefined) {
    if (!isObject(dec) || dec.type !== "WordPiece") {
      fail(
        name,
        `decoder ${JSON.stringify(isObject(dec) ? dec.type : dec)} is not supported; expected WordPiece`,
      );
    }
    decoder = { prefix: typeof dec.prefix === "string" ? dec.prefix : "##", cleanup: dec.cleanup !== false };
  }
  return {
    vocab,
    tokenIds,
    added,
    normalizer: parseNormalizer(root.normalizer, name),
    unkToken,
    continuingSubwordPrefix: prefix,
    maxInputCharsPerWord: maxChars,
    template: parseTemplate(root.post_processor, name, (t) => idOf(t, lookupSpec)),
    decoder,
  };
}
