/**
 * Post-processing as Hugging Face `tokenizers` does it: truncation (longest_first, keeping the start
 * of each sequence) and the [CLS] A [SEP] (B [SEP]) template with its token type ids.
 * @module
 */

/** One template piece: special token ids, or sequence A (0) / B (1), with the type id it gets. */
export type TemplatePiece =
  | { readonly kind: "special"; readonly ids: readonly number[]; readonly typeId: number }
  | { readonly kind: "sequence"; readonly sequence: 0 | 1; readonly typeId: number };

/** HF's TemplateProcessing: the pieces for one text and for a pair. */
export interface Template {
  readonly single: readonly TemplatePiece[];
  readonly pair: readonly TemplatePiece[];
}

/** How many special tokens the template adds (HF `num_special_tokens_to_add`). */
export function addedCount(pieces: readonly TemplatePiece[]): number {
  let n = 0;
  for (const p of pieces) if (p.kind === "special") n += p.ids.length;
  return n;
}

/**
 * How many tokens of one sequence of a pair HF 0.23 produces before it stops early when truncating
 * to `maxLength` (only the pair rule below sees this length). HF walks the pre-tokenizer's words in
 * order: an added token ([CLS] typed in the text) just counts; after each WordPiece word it stops
 * if it has `maxLength` tokens or more. A token starts a word unless `continues[id]` ("##" piece);
 * `added` lists the positions of added tokens (ascending), null for none. Found by probing the
 * oracle: see parity_test.ts.
 */
export function tokenizedLength(
  ids: ArrayLike<number>,
  added: readonly number[] | null,
  maxLength: number,
  continues: Uint8Array,
): number {
  let next = 0; // index into `added`
  let i = 0;
  while (i < ids.length) {
    if (added !== null && added[next] === i) {
      next++;
      i++;
      continue;
    }
    i++;
    while (i < ids.length && continues[ids[i]] === 1 && !(added !== null && added[next] === i)) i++;
    if (i >= maxLength) return i;
  }
  return ids.length;
}

/**
 * HF `truncate_encodings` (tokenizers/src/utils/truncation.rs), longest_first, stride 0, direction
 * right: the lengths to keep of sequence A (`n1`) and B (`n2`, -1 for no pair) so that together
 * they fit `budget` (max_length minus the special tokens).
 */
export function truncatedLengths(n1: number, n2: number, budget: number): [number, number] {
  if (n2 < 0) return [Math.min(n1, budget), -1];
  if (n1 + n2 <= budget) return [n1, n2];
  // Order by length; the shorter keeps what it has if the longer can take the rest, else both
  // get half the budget (the longer one the odd token). Equal lengths: B counts as the longer.
  const swap = n1 > n2;
  let short = swap ? n2 : n1;
  let long = short > budget ? short : Math.max(short, budget - short);
  if (short + long > budget) {
    short = Math.floor(budget / 2);
    long = short + (budget % 2);
  }
  return swap ? [Math.min(n1, long), Math.min(n2, short)] : [Math.min(n1, short), Math.min(n2, long)];
}

/**
 * Writes the template (or, without special tokens, A then B) into `ids`/`types` from `offset`;
 * `a`/`b` are already truncated. Returns the number of tokens written.
 */
export function applyTemplate(
  pieces: readonly TemplatePiece[],
  addSpecialTokens: boolean,
  a: ArrayLike<number>,
  aLength: number,
  b: ArrayLike<number> | null,
  bLength: number,
  ids: Int32Array,
  types: Int32Array,
  offset: number,
): number {
  let at = offset;
  for (const piece of pieces) {
    if (piece.kind === "special") {
      if (!addSpecialTokens) continue;
      for (const id of piece.ids) {
        ids[at] = id;
        types[at++] = piece.typeId;
      }
    } else {
      const src = piece.sequence === 0 ? a : b;
      const n = piece.sequence === 0 ? aLength : bLength;
      if (src === null) continue;
      for (let i = 0; i < n; i++) {
        ids[at] = src[i];
        types[at++] = piece.typeId;
      }
    }
  }
  return at - offset;
}
