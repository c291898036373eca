/**
 * WordPiece's greedy longest-match-first search (Hugging Face `tokenizers` models::wordpiece), over
 * the vocabulary Map the spec already holds: no second copy of the vocabulary, no wasm heap.
 * @module
 */

/** What {@linkcode wordPieceInto} needs of the model. */
export interface WordPieceModel {
  /** Model vocabulary: token -> id. */
  readonly tokenIds: ReadonlyMap<string, number>;
  /** Prefix of pieces that continue a word ("##"). */
  readonly prefix: string;
  /** Id given to a word with no split into known pieces, or one longer than `maxChars`. */
  readonly unkId: number;
  /** Longest word in code points; longer words are one unknown token. */
  readonly maxChars: number;
}

/** Code points of `word` (UTF-16 surrogate pairs count once), stopping early past `limit`. */
function codePoints(word: string, limit: number): number {
  let n = 0;
  for (let i = 0; i < word.length && n <= limit; i++, n++) {
    const c = word.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < word.length) {
      const d = word.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
  }
  return n;
}

/**
 * Appends the WordPiece ids of one word (no spaces) to `out`, as HF does: from the left, the longest
 * vocabulary entry (with the prefix after the first piece); a word with an unmatched rest is one
 * unknown token.
 *
 * @example
 * ```ts
 * import { wordPieceInto } from "./_wordpiece.ts";
 * const model = { tokenIds: new Map([["[UNK]", 0], ["un", 1], ["##aff", 2], ["##able", 3]]), prefix: "##", unkId: 0, maxChars: 100 };
 * const out: number[] = [];
 * wordPieceInto("unaffable", model, out);
 * wordPieceInto("unx", model, out);
 * console.log(out); // [1, 2, 3, 0]
 * ```
 */
export function wordPieceInto(word: string, model: WordPieceModel, out: number[]): void {
  if (word.length === 0) return;
  if (word.length > model.maxChars && codePoints(word, model.maxChars) > model.maxChars) {
    out.push(model.unkId);
    return;
  }
  const mark = out.length;
  let start = 0;
  while (start < word.length) {
    let end = word.length;
    let id: number | undefined;
    while (start < end) {
      const piece = start > 0 ? model.prefix + word.slice(start, end) : word.slice(start, end);
      id = model.tokenIds.get(piece);
      if (id !== undefined) break;
      // Step back one code point: never split a surrogate pair.
      const low = word.charCodeAt(end - 1);
      end -= low >= 0xdc00 && low <= 0xdfff && end - 2 >= start &&
          (word.charCodeAt(end - 2) & 0xfc00) === 0xd800
        ? 2
        : 1;
    }
    if (id === undefined) {
      out.length = mark;
      out.push(model.unkId);
      return;
    }
    out.push(id);
    start = end;
  }
}

/** Appends the WordPiece ids of space-separated words (empty words skipped) to `out`. */
export function wordPiecesInto(words: string, model: WordPieceModel, out: number[]): void {
  let from = 0;
  while (from <= words.length) {
    let to = words.indexOf(" ", from);
    if (to < 0) to = words.length;
    if (to > from) wordPieceInto(words.slice(from, to), model, out);
    from = to + 1;
  }
}
