/**
 * Test and benchmark inputs for the tokenizer: the CoLA sentences and the bert-base-uncased files
 * (through tests/data.ts: `$BERT_WEBGPU_TEST_DATA`, the cache, or a download) and a seeded set of
 * strings chosen to break tokenizers.
 * @module
 */

import { pathToFileURL } from "node:url";
import { Rng } from "../kernels/random.ts";
import { readZipMember } from "../formats/_zip.ts";
import { bertBaseUncasedDir, colaZipPath } from "../tests/data.ts";
import { BERT_SPECIAL_TOKENS } from "./vocab.ts";

/** bert-base-uncased: vocab.txt, tokenizer.json, tokenizer_config.json, config.json (resolved on import). */
export const BERT_DIR: URL = pathToFileURL(`${await bertBaseUncasedDir()}/`);
/** The CoLA v1.1 zip (resolved on import). */
export const COLA_ZIP_PATH: string = await colaZipPath();

/** The three raw CoLA files. */
export type ColaFile = "in_domain_train" | "in_domain_dev" | "out_of_domain_dev";

/** The sentences (4th TSV column) of a raw CoLA file, in file order. */
export function colaSentences(file: ColaFile): string[] {
  const zip = Deno.readFileSync(COLA_ZIP_PATH);
  const tsv = new TextDecoder().decode(readZipMember(zip, `cola_public/raw/${file}.tsv`, COLA_ZIP_PATH));
  return tsv.split("\n").filter((line) => line !== "").map((line) => {
    const columns = line.split("\t");
    if (columns.length !== 4) {
      throw new SyntaxError(`CoLA ${file}: expected 4 columns in ${JSON.stringify(line)}`);
    }
    return columns[3];
  });
}

const WHITESPACE = [
  " ",
  "\t",
  "\n",
  "\r",
  "\v",
  "\f",
  "\x1c",
  "\x1f",
  "\x85",
  "\xa0",
  "\u1680",
  "\u180e",
  "\u2000",
  "\u2005",
  "\u200a",
  "\u200b",
  "\u2028",
  "\u2029",
  "\u202f",
  "\u205f",
  "\u3000",
  "\ufeff",
];
const INVISIBLE = [
  "\0",
  "\x01",
  "\x07",
  "\x1b",
  "\x7f",
  "\x9f",
  "\xad",
  "\u034f",
  "\u061c",
  "\u200c",
  "\u200d",
  "\u200e",
  "\u2060",
  "\u2066",
  "\ufe0f",
  "\ufffd",
  "\ud800",
  "\udfff",
  "\u{e0001}",
  "\u{e0067}",
  "\ue000",
  "\u{f0000}",
  "\u{110bd}",
];
const WORDS = [
  "the",
  "unaffable",
  "running",
  "John",
  "Mary's",
  "won't",
  "e-mail",
  "café",
  "naïve",
  "Ångström",
  "İstanbul",
  "ΟΔΥΣΣΕΥΣ",
  "straße",
  "ﬁnance",
  "Ǆemal",
  "Москва",
  "東京都",
  "한국어",
  "カタカナ",
  "مرحبا",
  "שָׁלוֹם",
  "हिन्दी",
  "ไทย",
  "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
  "①②",
  "ｆｕｌｌｗｉｄｔｈ",
  "x²",
  "½",
  "™",
  "👍🏽",
  "👨‍👩‍👧",
  "🇩🇪",
  "❤️",
  "𓀀",
  "𠀋",
  "\u{105c9}",
  "\u{16121}",
  "\ua7ce",
  "\u{16ea0}",
  "\u2e43",
  "\u166d",
];
const BRACKETED = [
  ...BERT_SPECIAL_TOKENS,
  "[cls]",
  "[ CLS]",
  "[CLS",
  "CLS]",
  "[[MASK]]",
  "[MASK][SEP]",
  "x[PAD]y",
  "[MA\0SK]",
  "[CLS\u200b]",
  "［CLS］",
  "[MÁSK]",
  "[unused1]",
  "##",
  "##ing",
  "(parenthetical)",
  "{braces}",
  "<b>tag</b>",
];

function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[rng.int(items.length)];
}

/** A code point from a mix of ranges; `raw` may be a lone surrogate. */
function randomChar(rng: Rng): string {
  const r = rng.uniform();
  let cp: number;
  if (r < 0.3) cp = rng.int(0x110000); // anything, mostly unassigned astral
  else if (r < 0.6) cp = rng.int(0x10000); // BMP, surrogates included
  else if (r < 0.7) cp = 0x300 + rng.int(0x70); // combining diacritics
  else if (r < 0.8) cp = 0x1f300 + rng.int(0x700); // emoji
  else if (r < 0.9) cp = 0x4e00 + rng.int(0x100); // CJK
  else cp = 0xac00 + rng.int(0x2ba4); // Hangul syllables (NFD expands them)
  return cp >= 0xd800 && cp <= 0xdfff ? String.fromCharCode(cp) : String.fromCodePoint(cp);
}

function combining(rng: Rng): string {
  const marks = [
    "\u0301",
    "\u0316",
    "\u0308",
    "\u0327",
    "\u0345",
    "\u05b4",
    "\u0e49",
    "\u1ab0",
    "\u20d7",
    "\u0f39",
  ];
  let s = "";
  const n = 1 + rng.int(4);
  for (let i = 0; i < n; i++) s += pick(rng, marks);
  return s;
}

function longWord(rng: Rng): string {
  // [unit, base count]: counts straddle 100 characters after normalization (NFD splits Hangul into
  // two or three jamo; strip_accents removes the U+0301 after x; lowercase keeps İ one character).
  const [unit, base] = pick(
    rng,
    [["a", 95], ["é", 95], ["가", 45], ["x\u0301", 95], ["İ", 95], ["ǅ", 95]] as const,
  );
  return unit.repeat(base + rng.int(12));
}

/** One hard string, built from a randomly chosen recipe. */
function hardString(rng: Rng): string {
  const recipe = rng.int(10);
  const parts: string[] = [];
  const n = 1 + rng.int(8);
  for (let i = 0; i < n; i++) {
    switch (recipe) {
      case 0: // random code points
        parts.push(Array.from({ length: 1 + rng.int(6) }, () => randomChar(rng)).join(""));
        break;
      case 1: // words with accents and stacked combining marks
        parts.push(pick(rng, WORDS) + combining(rng));
        break;
      case 2: // invisible and control characters inside words
        parts.push(`${pick(rng, WORDS)}${pick(rng, INVISIBLE)}${pick(rng, WORDS)}`);
        break;
      case 3: // whitespace of every kind
        parts.push(pick(rng, WHITESPACE) + pick(rng, WORDS) + pick(rng, WHITESPACE));
        break;
      case 4: // special-token look-alikes and brackets
        parts.push(pick(rng, BRACKETED) + (rng.uniform() < 0.5 ? "" : pick(rng, WORDS)));
        break;
      case 5: // words around the 100-character limit
        parts.push(longWord(rng));
        break;
      default: // everything mixed, glued without spaces
        parts.push(
          pick(rng, [
            pick(rng, WORDS),
            pick(rng, BRACKETED),
            pick(rng, INVISIBLE),
            randomChar(rng),
            combining(rng),
          ]),
        );
    }
  }
  return parts.join(recipe >= 6 ? "" : " ");
}

/**
 * `count` seeded hard strings: random code points (astral and lone surrogates included), accents and
 * combining marks, CJK and Hangul, control and zero-width characters, emoji, words around the
 * 100-character limit, Unicode whitespace, "[CLS]"-like text; plus fixed edge cases (empty string,
 * whitespace only, a text far beyond 512 tokens).
 */
export function hardStrings(seed: number, count: number): string[] {
  const rng = new Rng(seed);
  const fixed = [
    "",
    " ",
    "\t\n",
    "\u3000",
    "\0",
    "[CLS]",
    "[SEP] [SEP]",
    "...",
    "ΣΑΣ ΟΣ σς",
    "a".repeat(100),
    "a".repeat(101),
    "é".repeat(101),
    "가".repeat(40),
    Array.from({ length: 700 }, (_, i) => WORDS[i % WORDS.length]).join(" "),
    Array.from({ length: 300 }, () => hardString(rng)).join(" "),
  ];
  const out = fixed.slice();
  while (out.length < count) out.push(hardString(rng));
  return out;
}
