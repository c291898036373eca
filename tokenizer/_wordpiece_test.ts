import assert from "node:assert/strict";
import { wordPieceInto, wordPiecesInto } from "./_wordpiece.ts";

const vocab = ["[UNK]", "un", "##aff", "##able", "##a", "a", "😀", "##😀", "##b"];
const model = { tokenIds: new Map(vocab.map((t, i) => [t, i])), prefix: "##", unkId: 0, maxChars: 5 };
const ids = (word: string) => {
  const out: number[] = [];
  wordPieceInto(word, model, out);
  return out;
};

Deno.test("wordPieceInto() takes the longest piece first and gives one [UNK] for an unmatched rest", () => {
  assert.deepStrictEqual(ids("unaff"), [1, 2]);
  assert.deepStrictEqual(ids("aaa"), [5, 4, 4]);
  assert.deepStrictEqual(ids("unx"), [0]); // the pieces found before the miss are dropped too
  assert.deepStrictEqual(ids("x"), [0]);
});

Deno.test("wordPieceInto() counts code points, never splitting a surrogate pair", () => {
  assert.deepStrictEqual(ids("😀😀😀😀😀"), [6, 7, 7, 7, 7]); // 5 code points, 10 UTF-16 units: not too long
  assert.deepStrictEqual(ids("😀😀😀😀😀😀"), [0]); // 6 code points > maxChars
  assert.deepStrictEqual(ids("a\ud83d"), [0]); // a lone high surrogate matches nothing
  assert.deepStrictEqual(ids("aaaaab"), [0]);
});

Deno.test("wordPiecesInto() splits on spaces and skips empty words", () => {
  const out: number[] = [];
  wordPiecesInto("  un  a x ", model, out);
  assert.deepStrictEqual(out, [1, 5, 0]);
});
