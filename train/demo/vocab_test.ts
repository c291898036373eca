import assert from "node:assert/strict";
import { tokenizerFromVocab } from "../../tokenizer/mod.ts";
import { generateDemoData } from "./grammar.ts";
import { DEMO_SPECIAL_TOKENS, demoVocabulary, demoWordPieces } from "./vocab.ts";

const DATA = generateDemoData();
const TEXTS = [...DATA.train, ...DATA.validation, ...DATA.test].map((e) => e.text);

Deno.test("demoVocabulary() puts [PAD] first, then the other special tokens, with no duplicates", () => {
  const vocab = demoVocabulary();
  assert.deepStrictEqual(vocab.slice(0, DEMO_SPECIAL_TOKENS.length), [...DEMO_SPECIAL_TOKENS]);
  assert.strictEqual(vocab[0], "[PAD]");
  assert.strictEqual(new Set(vocab).size, vocab.length);
  for (const token of vocab.slice(DEMO_SPECIAL_TOKENS.length)) {
    assert.match(token, /^(##)?[a-z]+$|^\.$/, token);
  }
});

Deno.test("demoVocabulary() covers every word of the data as a word or a stem plus ##s", () => {
  // An independent check of coverage: split on spaces and the period, then look each word up.
  const vocab = new Set(demoVocabulary());
  for (const text of TEXTS) {
    for (const word of text.replace(/\.$/, " .").split(" ")) {
      const covered = vocab.has(word) ||
        (word.endsWith("s") && vocab.has(word.slice(0, -1)) && vocab.has("##s"));
      assert.ok(covered, `"${word}" in "${text}" is not in the vocabulary`);
    }
  }
});

Deno.test("demoVocabulary() has no token the grammar never emits", () => {
  const used = new Set(TEXTS.flatMap(demoWordPieces));
  const unused = demoVocabulary().slice(DEMO_SPECIAL_TOKENS.length).filter((t) => !used.has(t));
  assert.deepStrictEqual(unused, []);
});

Deno.test("demoWordPieces() matches the project tokenizer, which never needs [UNK] on demo data", () => {
  const vocab = demoVocabulary();
  const tokenizer = tokenizerFromVocab(vocab);
  const unk = vocab.indexOf("[UNK]");
  let longest = 0;
  for (const text of TEXTS) {
    const ids = Array.from(tokenizer.encode(text).ids);
    assert.ok(!ids.includes(unk), `"${text}" needs [UNK]`);
    assert.deepStrictEqual(ids.map((id) => vocab[id]), ["[CLS]", ...demoWordPieces(text), "[SEP]"], text);
    longest = Math.max(longest, ids.length);
  }
  assert.ok(longest <= 16, `the longest demo sentence has ${longest} tokens with [CLS] and [SEP]`);
});

Deno.test("demoWordPieces() splits -s forms and marks unknown words", () => {
  assert.deepStrictEqual(demoWordPieces("The dogs like a cat."), [
    "the",
    "dog",
    "##s",
    "like",
    "a",
    "cat",
    ".",
  ]);
  assert.deepStrictEqual(demoWordPieces("does zebra"), ["does", "[UNK]"]);
});
