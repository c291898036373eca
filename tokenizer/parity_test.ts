/**
 * The oracle: Hugging Face's native `tokenizers` (npm 0.23.2, Rust) against this module on every CoLA
 * sentence, 3,000 seeded hard strings, every Unicode code point, truncation and pairs. Any mismatch
 * fails with the input (JSON-escaped) and both id lists.
 *
 * What these tests found, and the code now reproduces: kitoken's own normalizer lowercases Greek
 * final sigma to "ς" (HF maps "Σ" to "σ" everywhere); HF's Cf/Mn/P tables are older than V8's, and
 * its NFD and lowercase tables differ from V8's on a few dozen new characters (_unicode_tables.ts);
 * for sentence pairs HF stops tokenizing each sequence after the word that reaches max_length and
 * picks the longer sequence from those counts (_template.ts tokenizedLength); its WordPiece decoder
 * cleans up per token, so "won't" decodes as "won ' t".
 */

import assert from "node:assert/strict";
import {
  bertNormalizer,
  bertPreTokenizer,
  type Encoding as HfEncoding,
  Tokenizer as HfTokenizer,
} from "npm:tokenizers@0.23.2";
import { normalizeBert, preTokenizeBert } from "./_normalizer.ts";
import { BERT_DIR, colaSentences, hardStrings } from "./_testdata.ts";
import { loadTokenizer } from "./load.ts";
import { type Encoding, type Tokenizer, tokenizerFromJson, tokenizerFromVocab } from "./tokenizer.ts";
import { bertTokenizerJson, parseVocabTxt, tokenizerJsonText } from "./vocab.ts";

const TOKENIZER_JSON = new URL("tokenizer.json", BERT_DIR).pathname;
const COLA = [
  ...colaSentences("in_domain_train"),
  ...colaSentences("in_domain_dev"),
  ...colaSentences("out_of_domain_dev"),
];
const HARD = hardStrings(7, 3000);
// Pairs: each hard string with the next one, and CoLA sentences with hard strings.
const PAIRS: [string, string][] = [
  ...HARD.slice(0, 1200).map((s, i): [string, string] => [s, HARD[(i + 1) % HARD.length]]),
  ...COLA.slice(0, 300).map((s, i): [string, string] => [s, HARD[2000 + i]]),
];

type Input = string | [string, string];

interface OracleOptions {
  maxLength?: number;
  addSpecialTokens?: boolean;
}

/** HF encodings of `inputs`, truncated to `maxLength` (longest_first) when given. */
async function oracle(hf: HfTokenizer, inputs: Input[], options: OracleOptions = {}): Promise<HfEncoding[]> {
  if (options.maxLength !== undefined) hf.setTruncation(options.maxLength);
  else hf.disableTruncation();
  const encodeOptions = { addSpecialTokens: options.addSpecialTokens ?? true };
  try {
    if (inputs.every((input) => typeof input === "string")) {
      return await hf.encodeBatch(inputs, encodeOptions);
    }
    // This binding's encodeBatch takes no pairs: encode one by one, a few hundred in flight.
    const out: HfEncoding[] = [];
    for (let i = 0; i < inputs.length; i += 256) {
      out.push(
        ...await Promise.all(
          inputs.slice(i, i + 256).map((input) =>
            typeof input === "string"
              ? hf.encode(input, null, encodeOptions)
              : hf.encode(input[0], input[1], encodeOptions)
          ),
        ),
      );
    }
    return out;
  } finally {
    hf.disableTruncation();
  }
}

function ours(tok: Tokenizer, input: Input, options: OracleOptions): Encoding {
  return typeof input === "string"
    ? tok.encode(input, options)
    : tok.encode(input[0], { ...options, pair: input[1] });
}

/** Compares ids, type ids and mask; throws with up to 10 offending inputs. */
async function assertParity(
  tok: Tokenizer,
  hf: HfTokenizer,
  inputs: Input[],
  options: OracleOptions = {},
): Promise<void> {
  const expected = await oracle(hf, inputs, options);
  const failures: string[] = [];
  for (let i = 0; i < inputs.length; i++) {
    const got = ours(tok, inputs[i], { maxLength: options.maxLength ?? 1e9, ...options });
    const want = expected[i];
    const same = (a: ArrayLike<number>, b: number[]) =>
      a.length === b.length && b.every((v, j) => a[j] === v);
    if (
      !same(got.ids, want.getIds()) || !same(got.tokenTypeIds, want.getTypeIds()) ||
      !same(got.attentionMask, want.getAttentionMask())
    ) {
      failures.push(
        `input ${JSON.stringify(inputs[i])}\n  ours ids ${Array.from(got.ids)} types ${
          Array.from(got.tokenTypeIds)
        }` +
          `\n  HF   ids ${want.getIds()} types ${want.getTypeIds()}`,
      );
    }
  }
  if (failures.length > 0) {
    throw new Error(
      `${failures.length} of ${inputs.length} inputs differ from HF (options ${JSON.stringify(options)}):\n` +
        failures.slice(0, 10).join("\n"),
    );
  }
}

let bert: Promise<[Tokenizer, HfTokenizer]> | null = null;
function bertPair(): Promise<[Tokenizer, HfTokenizer]> {
  bert ??= loadTokenizer(TOKENIZER_JSON).then((t) => [t, HfTokenizer.fromFile(TOKENIZER_JSON)]);
  return bert;
}

/** Ours and HF over the same tokenizer.json text (HF reads it from a temporary file). */
async function fromSameJson(json: string): Promise<[Tokenizer, HfTokenizer]> {
  const path = await Deno.makeTempFile({ suffix: ".json" });
  try {
    await Deno.writeTextFile(path, json);
    return [tokenizerFromJson(new TextEncoder().encode(json), path), HfTokenizer.fromFile(path)];
  } finally {
    await Deno.remove(path);
  }
}

Deno.test("normalizeBert() and preTokenizeBert() match HF on every Unicode code point", () => {
  const pre = bertPreTokenizer();
  const variants = [
    { cleanText: true, handleChineseChars: true, stripAccents: true, lowercase: true },
    { cleanText: true, handleChineseChars: true, stripAccents: false, lowercase: false },
    { cleanText: false, handleChineseChars: false, stripAccents: true, lowercase: true },
  ];
  const failures: string[] = [];
  for (const options of variants) {
    const hf = bertNormalizer(options);
    for (let base = 0; base < 0x110000; base += 1024) {
      // Each block twice: code points separated by "a", and adjacent (combining-mark reordering).
      const chars: string[] = [];
      for (let cp = base; cp < base + 1024; cp++) {
        if (cp < 0xd800 || cp > 0xdfff) chars.push(String.fromCodePoint(cp));
      }
      // Interleaved only for the first variant: the adjacent layout already checks every class.
      const layouts = options === variants[0] ? [chars.join("a"), chars.join("")] : [chars.join("")];
      for (const text of layouts) {
        const want = hf.normalizeString(text);
        const got = normalizeBert(text, options);
        if (got !== want) failures.push(`normalize ${JSON.stringify(options)} block U+${base.toString(16)}`);
        const words = preTokenizeBert(want).join("\u0001");
        if (words !== pre.preTokenizeString(want).map((w) => w[0]).join("\u0001")) {
          failures.push(`pre-tokenize block U+${base.toString(16)}`);
        }
      }
    }
  }
  assert.deepStrictEqual(
    failures,
    [],
    "rerun tokenizer/_unicode_tables_gen.ts if the runtime's Unicode changed",
  );
});

Deno.test("encode() matches HF tokenizers on every CoLA sentence", async () => {
  const [tok, hf] = await bertPair();
  assert.deepStrictEqual(COLA.length, 8551 + 527 + 516);
  await assertParity(tok, hf, COLA, { maxLength: 512 });
});

Deno.test("encode() matches HF tokenizers on 3,000 hard strings", async () => {
  const [tok, hf] = await bertPair();
  await assertParity(tok, hf, HARD, { maxLength: 512 });
});

Deno.test("encode() matches HF tokenizers with truncation at maxLength 16", async () => {
  const [tok, hf] = await bertPair();
  await assertParity(tok, hf, [...HARD, ...COLA], { maxLength: 16 });
});

Deno.test("encode() matches HF tokenizers on sentence pairs, truncated longest_first", async () => {
  const [tok, hf] = await bertPair();
  for (const maxLength of [512, 16, 5]) await assertParity(tok, hf, PAIRS, { maxLength });
});

Deno.test("encode() matches HF tokenizers without special tokens", async () => {
  const [tok, hf] = await bertPair();
  await assertParity(tok, hf, [...HARD.slice(0, 1500), ...PAIRS.slice(0, 500)], {
    addSpecialTokens: false,
    maxLength: 1e9,
  });
  await assertParity(tok, hf, PAIRS.slice(0, 500), { addSpecialTokens: false, maxLength: 9 });
});

Deno.test("encodeBatch() equals HF padded batches", async () => {
  const [tok, hf] = await bertPair();
  const texts = [...COLA.slice(0, 40), ...HARD.slice(0, 40)];
  for (const padding of ["longest", "max_length"] as const) {
    const maxLength = 64;
    const got = tok.encodeBatch(texts, { maxLength, padding });
    hf.setTruncation(maxLength);
    hf.setPadding(padding === "max_length" ? { maxLength } : {});
    try {
      const want = await hf.encodeBatch(texts);
      assert.deepStrictEqual(got.seqLen, want[0].getLength(), `seqLen with padding ${padding}`);
      assert.deepStrictEqual(
        Array.from(got.inputIds),
        want.flatMap((e) => e.getIds()),
        `input ids with padding ${padding}`,
      );
      assert.deepStrictEqual(Array.from(got.tokenTypeIds), want.flatMap((e) => e.getTypeIds()));
      assert.deepStrictEqual(Array.from(got.attentionMask), want.flatMap((e) => e.getAttentionMask()));
    } finally {
      hf.disablePadding();
      hf.disableTruncation();
    }
  }
});

Deno.test("decode() matches HF decode on CoLA and hard strings", async () => {
  const [tok, hf] = await bertPair();
  for (const skipSpecialTokens of [true, false]) {
    const idLists = [...COLA, ...HARD].map((s) => Array.from(tok.encode(s).ids));
    const want = await hf.decodeBatch(idLists, skipSpecialTokens);
    const failures = idLists.flatMap((ids, i) => {
      const got = tok.decode(ids, { skipSpecialTokens });
      return got === want[i]
        ? []
        : [`ids ${ids}: ours ${JSON.stringify(got)}, HF ${JSON.stringify(want[i])}`];
    });
    assert.deepStrictEqual(failures.slice(0, 10), [], `skipSpecialTokens ${skipSpecialTokens}`);
  }
});

Deno.test("loadTokenizer() from vocab.txt rebuilds bert-base-uncased's tokenizer.json exactly", async () => {
  const shipped = await Deno.readTextFile(TOKENIZER_JSON);
  const vocab = parseVocabTxt(await Deno.readTextFile(new URL("vocab.txt", BERT_DIR)));
  assert.deepStrictEqual(bertTokenizerJson(vocab, { doLowerCase: true }), shipped);
  const fromVocab = await loadTokenizer(new URL("vocab.txt", BERT_DIR));
  const [, hf] = await bertPair();
  await assertParity(fromVocab, hf, [...COLA, ...HARD.slice(0, 1000)], { maxLength: 512 });
});

Deno.test("tokenizerFromVocab() cased matches HF on the same vocabulary", async () => {
  const vocab = parseVocabTxt(await Deno.readTextFile(new URL("vocab.txt", BERT_DIR)));
  const [tok, hf] = await fromSameJson(bertTokenizerJson(vocab, { doLowerCase: false }));
  assert.deepStrictEqual(tok.doLowerCase, false);
  await assertParity(tok, hf, [...COLA.slice(0, 1000), ...HARD.slice(0, 1500)], { maxLength: 512 });
  assert.deepStrictEqual(Array.from(tokenizerFromVocab(vocab, { doLowerCase: false }).encode("Héllo").ids), [
    ...(await hf.encode("Héllo")).getIds(),
  ]);
});

Deno.test("tokenizerFromVocab() on a tiny vocabulary matches HF, [UNK] included", async () => {
  const vocab = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "the",
    "cat",
    "##s",
    "un",
    "##aff",
    "##able",
    "é",
    "!",
  ];
  const [tok, hf] = await fromSameJson(bertTokenizerJson(vocab));
  await assertParity(tok, hf, [...COLA.slice(0, 500), ...HARD.slice(0, 500), "The cats unaffable!", "É"], {
    maxLength: 512,
  });
});

Deno.test("tokenizerFromJson() matches HF on tokenizer.json variants BERT checkpoints ship", async () => {
  const shipped = await Deno.readTextFile(TOKENIZER_JSON);
  const variants: Record<string, (json: Record<string, Record<string, unknown> | null>) => void> = {
    "BertProcessing": (j) => {
      j.post_processor = { type: "BertProcessing", sep: ["[SEP]", 102], cls: ["[CLS]", 101] };
    },
    "no normalizer": (j) => {
      j.normalizer = null;
    },
    "no post-processor, no decoder": (j) => {
      j.post_processor = null;
      j.decoder = null;
    },
    "no CJK padding, accents kept": (j) => {
      j.normalizer = { ...j.normalizer, handle_chinese_chars: false, strip_accents: false };
    },
  };
  const inputs: Input[] = [...HARD.slice(0, 300), ...PAIRS.slice(0, 200)];
  for (const [name, edit] of Object.entries(variants)) {
    const json = JSON.parse(shipped);
    edit(json);
    const vocab: string[] = [];
    for (const [token, id] of Object.entries(json.model.vocab as Record<string, number>)) vocab[id] = token;
    const [tok, hf] = await fromSameJson(tokenizerJsonText(json, vocab));
    await assertParity(tok, hf, inputs, { maxLength: 24 });
    const idLists = HARD.slice(0, 300).map((s) => Array.from(tok.encode(s).ids));
    assert.deepStrictEqual(idLists.map((ids) => tok.decode(ids)), await hf.decodeBatch(idLists, true), name);
  }
});
