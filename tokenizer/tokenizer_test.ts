/**
 * Unit and error tests for the tokenizer on bert-base-uncased. Expected ids come from the shared
 * data README and vocab.txt; ids against Hugging Face itself are in parity_test.ts.
 */

import assert from "node:assert/strict";
import { applyTemplate, tokenizedLength, truncatedLengths } from "./_template.ts";
import { BERT_DIR, colaSentences } from "./_testdata.ts";
import { loadTokenizer } from "./load.ts";
import { type Tokenizer, tokenizerFromJson, tokenizerFromVocab } from "./tokenizer.ts";
import { bertTokenizerJson, parseVocabTxt } from "./vocab.ts";

// deno-lint-ignore no-explicit-any
type ErrorClass = new (...args: any[]) => Error;

function assertError(error: unknown, errorClass: ErrorClass, fragments: string[]): void {
  assert.ok(error instanceof errorClass, `expected ${errorClass.name}, got ${String(error)}`);
  for (const f of fragments) {
    assert.ok(
      error.message.includes(f),
      `message ${JSON.stringify(error.message)} lacks ${JSON.stringify(f)}`,
    );
  }
}

function assertThrowsWith(fn: () => unknown, errorClass: ErrorClass, ...fragments: string[]): void {
  try {
    fn();
  } catch (e) {
    return assertError(e, errorClass, fragments);
  }
  assert.fail(`expected ${errorClass.name}`);
}

async function assertRejectsWith(
  fn: () => Promise<unknown>,
  errorClass: ErrorClass,
  ...fragments: string[]
): Promise<void> {
  try {
    await fn();
  } catch (e) {
    return assertError(e, errorClass, fragments);
  }
  assert.fail(`expected ${errorClass.name}`);
}

const VOCAB_TXT = Deno.readTextFileSync(new URL("vocab.txt", BERT_DIR));
const VOCAB = parseVocabTxt(VOCAB_TXT);
const TRAIN = colaSentences("in_domain_train");
const FIRST = "Our friends won't buy this analysis, let alone the next one we propose.";
// As the test-data folder's README lists them.
const FIRST_IDS = [
  101,
  2256,
  2814,
  2180,
  1005,
  1056,
  4965,
  2023,
  4106,
  1010,
  2292,
  2894,
  1996,
  2279,
  2028,
  2057,
  16599,
  1012,
  102,
];

let bert: Promise<Tokenizer> | null = null;
function bertBase(): Promise<Tokenizer> {
  bert ??= loadTokenizer(BERT_DIR);
  return bert;
}

Deno.test("encode() gives the README ids for the first CoLA training sentence", async () => {
  const tok = await bertBase();
  assert.equal(TRAIN[0], FIRST);
  const e = tok.encode(FIRST);
  assert.deepEqual(Array.from(e.ids), FIRST_IDS);
  assert.deepEqual(Array.from(e.attentionMask), FIRST_IDS.map(() => 1));
  assert.deepEqual(Array.from(e.tokenTypeIds), FIRST_IDS.map(() => 0));
  assert.equal(e.truncated, false);
});

Deno.test("encode() needs 47 tokens for the longest in_domain_train sentence", async () => {
  const tok = await bertBase();
  assert.equal(TRAIN.length, 8551);
  assert.equal(Math.max(...TRAIN.map((s) => tok.encode(s).ids.length)), 47);
});

Deno.test("Tokenizer ids and tokens follow vocab.txt line numbers", async () => {
  const tok = await bertBase();
  assert.equal(tok.vocabSize, VOCAB.length);
  assert.equal(tok.doLowerCase, true);
  for (
    const [name, token] of [["clsId", "[CLS]"], ["sepId", "[SEP]"], ["padId", "[PAD]"], ["unkId", "[UNK]"]]
  ) {
    assert.equal(tok[name as "clsId"], VOCAB.indexOf(token), name);
  }
  VOCAB.forEach((token, id) => {
    assert.equal(tok.idToToken(id), token);
    assert.equal(tok.tokenToId(token), id);
  });
  assert.equal(tok.idToToken(VOCAB.length), undefined);
  assert.equal(tok.tokenToId("no-such-token"), undefined);
});

Deno.test("encode() matches [MASK] only verbatim and sends the rest through WordPiece", async () => {
  const tok = await bertBase();
  const mask = VOCAB.indexOf("[MASK]");
  assert.deepEqual(Array.from(tok.encode("[MASK]").ids), [tok.clsId, mask, tok.sepId]);
  const lower = Array.from(tok.encode("[mask]").ids);
  assert.deepEqual(lower, [
    tok.clsId,
    VOCAB.indexOf("["),
    VOCAB.indexOf("mask"),
    VOCAB.indexOf("]"),
    tok.sepId,
  ]);
  // A word over 100 characters is one [UNK]; 100 characters still go through WordPiece.
  assert.deepEqual(Array.from(tok.encode("a".repeat(101)).ids), [tok.clsId, tok.unkId, tok.sepId]);
  assert.ok(!tok.encode("a".repeat(100)).ids.includes(tok.unkId));
});

Deno.test("encode() truncates a single text to its first maxLength - 2 wordpieces", async () => {
  const tok = await bertBase();
  const full = Array.from(tok.encode(FIRST).ids);
  const cut = tok.encode(FIRST, { maxLength: 6 });
  assert.deepEqual(Array.from(cut.ids), [...full.slice(0, 5), tok.sepId]);
  assert.equal(cut.truncated, true);
  assert.equal(tok.encode(FIRST, { maxLength: full.length }).truncated, false);
  assert.deepEqual(Array.from(tok.encode(FIRST, { maxLength: 2 }).ids), [tok.clsId, tok.sepId]);
  const bare = tok.encode(FIRST, { addSpecialTokens: false, maxLength: 3 });
  assert.deepEqual(Array.from(bare.ids), full.slice(1, 4));
});

Deno.test("encode() gives a pair [CLS] A [SEP] B [SEP] with type ids 0 then 1", async () => {
  const tok = await bertBase();
  const a = Array.from(tok.encode("The cat sat.", { addSpecialTokens: false }).ids);
  const b = Array.from(tok.encode("It purred!", { addSpecialTokens: false }).ids);
  const e = tok.encode("The cat sat.", { pair: "It purred!" });
  assert.deepEqual(Array.from(e.ids), [tok.clsId, ...a, tok.sepId, ...b, tok.sepId]);
  assert.deepEqual(Array.from(e.tokenTypeIds), [0, ...a.map(() => 0), 0, ...b.map(() => 1), 1]);
  assert.equal(e.truncated, false);
  const cut = tok.encode(TRAIN[1], { pair: TRAIN[2], maxLength: 9 });
  assert.equal(cut.ids.length, 9);
  assert.equal(cut.truncated, true);
});

Deno.test("truncatedLengths() reproduces the longest_first table of HF's truncation.rs tests", () => {
  // tokenizers/src/utils/truncation.rs, truncate_encodings_longest_first: max_length 7, lengths of
  // the empty, short, medium and long encodings are 0, 2, 4 and 8.
  const table: [number, number, number, number][] = [
    [0, 0, 0, 0],
    [0, 2, 0, 2],
    [0, 4, 0, 4],
    [0, 8, 0, 7],
    [2, 0, 2, 0],
    [2, 2, 2, 2],
    [2, 4, 2, 4],
    [2, 8, 2, 5],
    [4, 0, 4, 0],
    [4, 2, 4, 2],
    [4, 4, 3, 4],
    [4, 8, 3, 4],
    [8, 0, 7, 0],
    [8, 2, 5, 2],
    [8, 4, 4, 3],
    [8, 8, 3, 4],
  ];
  for (const [n1, n2, k1, k2] of table) {
    assert.deepEqual(truncatedLengths(n1, n2, 7), [k1, k2], `${n1}, ${n2}`);
  }
  assert.deepEqual(truncatedLengths(9, -1, 7), [7, -1]);
});

Deno.test("tokenizedLength() stops only at word boundaries and keeps short sequences whole", () => {
  const continues = new Uint8Array([0, 1, 0]); // id 1 is a "##" piece
  const ids = [0, 1, 1, 2, 0, 1, 2, 2];
  for (let maxLength = 1; maxLength <= 10; maxLength++) {
    const n = tokenizedLength(ids, null, maxLength, continues);
    assert.ok(n >= Math.min(maxLength, ids.length), `covers maxLength ${maxLength}`);
    assert.ok(n === ids.length || continues[ids[n]] === 0, `ends at a word start for maxLength ${maxLength}`);
  }
});

Deno.test("applyTemplate() leaves out special tokens when asked", () => {
  const pieces = [
    { kind: "special", ids: [7], typeId: 0 },
    { kind: "sequence", sequence: 0, typeId: 0 },
    { kind: "special", ids: [8], typeId: 0 },
    { kind: "sequence", sequence: 1, typeId: 1 },
  ] as const;
  const ids = new Int32Array(6);
  const types = new Int32Array(6);
  assert.equal(applyTemplate(pieces, true, [1, 2], 2, [3], 1, ids, types, 0), 5);
  assert.deepEqual(Array.from(ids.subarray(0, 5)), [7, 1, 2, 8, 3]);
  assert.deepEqual(Array.from(types.subarray(0, 5)), [0, 0, 0, 0, 1]);
  assert.equal(applyTemplate(pieces, false, [1, 2], 1, [3], 1, ids, types, 0), 2);
  assert.deepEqual(Array.from(ids.subarray(0, 2)), [1, 3]);
});

Deno.test("encodeBatch() pads rows to the longest row or to maxLength", async () => {
  const tok = await bertBase();
  const texts = [TRAIN[0], "Hi!", "", TRAIN[3]];
  for (const padding of ["longest", "max_length"] as const) {
    const batch = tok.encodeBatch(texts, { padding, maxLength: 24 });
    const rows = texts.map((t) => tok.encode(t, { maxLength: 24 }));
    assert.equal(batch.batchSize, 4);
    assert.equal(batch.seqLen, padding === "longest" ? Math.max(...rows.map((r) => r.ids.length)) : 24);
    assert.equal(batch.inputIds.length, 4 * batch.seqLen);
    rows.forEach((row, r) => {
      const at = r * batch.seqLen;
      const n = row.ids.length;
      assert.equal(batch.lengths[r], n);
      assert.deepEqual(Array.from(batch.inputIds.subarray(at, at + n)), Array.from(row.ids));
      assert.deepEqual(Array.from(batch.tokenTypeIds.subarray(at, at + n)), Array.from(row.tokenTypeIds));
      const pad = batch.seqLen - n;
      assert.deepEqual(
        Array.from(batch.inputIds.subarray(at + n, at + batch.seqLen)),
        Array(pad).fill(tok.padId),
      );
      assert.deepEqual(Array.from(batch.attentionMask.subarray(at, at + batch.seqLen)), [
        ...Array(n).fill(1),
        ...Array(pad).fill(0),
      ]);
      assert.deepEqual(
        Array.from(batch.tokenTypeIds.subarray(at + n, at + batch.seqLen)),
        Array(pad).fill(0),
      );
    });
    assert.equal(batch.truncated, rows.filter((r) => r.truncated).length);
  }
  const empty = tok.encodeBatch([]);
  assert.deepEqual([empty.batchSize, empty.seqLen, empty.inputIds.length], [0, 0, 0]);
});

Deno.test("encodeBatch() with pairs equals encode() with pair, truncation counted", async () => {
  const tok = await bertBase();
  const texts = TRAIN.slice(10, 16);
  const pairs = TRAIN.slice(20, 26);
  const batch = tok.encodeBatch(texts, { pairs, maxLength: 12 });
  let truncated = 0;
  texts.forEach((t, r) => {
    const e = tok.encode(t, { pair: pairs[r], maxLength: 12 });
    if (e.truncated) truncated++;
    const at = r * batch.seqLen;
    assert.deepEqual(Array.from(batch.inputIds.subarray(at, at + e.ids.length)), Array.from(e.ids));
    assert.deepEqual(
      Array.from(batch.tokenTypeIds.subarray(at, at + e.ids.length)),
      Array.from(e.tokenTypeIds),
    );
  });
  assert.ok(truncated > 0);
  assert.equal(batch.truncated, truncated);
});

Deno.test("decode() joins wordpieces and drops special tokens unless asked to keep them", async () => {
  const tok = await bertBase();
  const ids = tok.encode(FIRST).ids;
  // Both strings are what npm tokenizers 0.23.2 decodes these ids to (its cleanup leaves "won ' t").
  assert.equal(tok.decode(ids), "our friends won ' t buy this analysis, let alone the next one we propose.");
  assert.equal(
    tok.decode(ids, { skipSpecialTokens: false }),
    "[CLS] our friends won ' t buy this analysis, let alone the next one we propose. [SEP]",
  );
  assert.equal(tok.decode([tok.clsId, VOCAB.length + 5, tok.sepId]), ""); // unknown ids are skipped
});

Deno.test("files() reproduces the shipped files and loads back to the same tokenizer", async () => {
  const tok = await bertBase();
  const files = tok.files();
  assert.deepEqual(files["tokenizer.json"], Deno.readFileSync(new URL("tokenizer.json", BERT_DIR)));
  assert.equal(files["vocab.txt"], VOCAB_TXT);
  assert.equal(files["tokenizer_config.json"].do_lower_case, true);
  assert.equal(files["tokenizer_config.json"].cls_token, "[CLS]");
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/vocab.txt`, files["vocab.txt"]);
    await Deno.writeTextFile(
      `${dir}/tokenizer_config.json`,
      JSON.stringify({ ...files["tokenizer_config.json"], do_lower_case: false }),
    );
    const cased = await loadTokenizer(dir); // vocab.txt + tokenizer_config.json
    assert.equal(cased.doLowerCase, false);
    assert.deepEqual(
      cased.files()["tokenizer.json"],
      new TextEncoder().encode(bertTokenizerJson(VOCAB, { doLowerCase: false })),
    );
    await Deno.writeFile(`${dir}/tokenizer.json`, files["tokenizer.json"]);
    await Deno.writeTextFile(`${dir}/tokenizer_config.json`, JSON.stringify(files["tokenizer_config.json"]));
    const again = await loadTokenizer(dir);
    for (const s of TRAIN.slice(0, 50)) assert.deepEqual(again.encode(s).ids, tok.encode(s).ids);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadTokenizer() reads folders, files, file URLs and http URLs alike", async () => {
  const reference = Array.from((await bertBase()).encode(TRAIN[5]).ids);
  const sources: (string | URL)[] = [
    BERT_DIR.pathname,
    new URL("tokenizer.json", BERT_DIR).pathname,
    new URL("vocab.txt", BERT_DIR).pathname,
    BERT_DIR,
    new URL("vocab.txt", BERT_DIR).href,
  ];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    const name = new URL(request.url).pathname.slice(1);
    if (name !== "tokenizer.json" && name !== "vocab.txt") return new Response("missing", { status: 404 });
    return new Response(await Deno.readFile(new URL(name, BERT_DIR)));
  });
  try {
    const base = `http://127.0.0.1:${server.addr.port}/`;
    sources.push(`${base}tokenizer.json`, new URL("vocab.txt", base));
    for (const source of sources) {
      const tok = await loadTokenizer(source);
      assert.deepEqual(Array.from(tok.encode(TRAIN[5]).ids), reference, String(source));
    }
    await assertRejectsWith(
      () => loadTokenizer(`${base}nothing.json`),
      Deno.errors.NotFound,
      "HTTP 404",
      base,
    );
  } finally {
    await server.shutdown();
  }
});

Deno.test("loadTokenizer() doLowerCase overrides the file for vocab.txt and tokenizer.json", async () => {
  const fromVocab = await loadTokenizer(new URL("vocab.txt", BERT_DIR), { doLowerCase: false });
  const fromJson = await loadTokenizer(new URL("tokenizer.json", BERT_DIR), { doLowerCase: false });
  const reference = tokenizerFromVocab(VOCAB, { doLowerCase: false });
  for (const tok of [fromVocab, fromJson]) {
    assert.equal(tok.doLowerCase, false);
    for (const s of ["Hello World", "Ünïcödé", TRAIN[7]]) {
      assert.deepEqual(tok.encode(s).ids, reference.encode(s).ids);
    }
  }
  assert.notDeepEqual(reference.encode("Hello").ids, (await bertBase()).encode("Hello").ids);
});

Deno.test("tokenizerFromVocab() builds a working tokenizer from a tiny vocabulary", () => {
  const tok = tokenizerFromVocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "cat", "##s", "."]);
  assert.deepEqual(Array.from(tok.encode("The cats.").ids), [2, 4, 5, 6, 7, 3]);
  assert.deepEqual(Array.from(tok.encode("The dog").ids), [2, 4, 1, 3]);
  assert.equal(tok.decode(tok.encode("The cats.").ids), "the cats.");
  assert.equal(tok.vocabSize, 8);
});

Deno.test("tokenizerFromVocab() rejects duplicate and missing special tokens", () => {
  assertThrowsWith(
    () => tokenizerFromVocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "a"]),
    RangeError,
    '"a"',
    "4",
    "5",
  );
  assertThrowsWith(() => tokenizerFromVocab(["[PAD]", "[CLS]", "[SEP]", "a"]), RangeError, "[UNK]");
});

Deno.test("encode() and encodeBatch() reject a maxLength without room for special tokens", async () => {
  const tok = await bertBase();
  assertThrowsWith(() => tok.encode("hi", { maxLength: 1 }), RangeError, "maxLength 1", "at least 2");
  assertThrowsWith(
    () => tok.encode("hi", { pair: "yo", maxLength: 2 }),
    RangeError,
    "maxLength 2",
    "at least 3",
  );
  assertThrowsWith(() => tok.encode("hi", { maxLength: 3.5 }), RangeError, "maxLength 3.5");
  assertThrowsWith(() => tok.encodeBatch(["a"], { maxLength: 0 }), RangeError, "maxLength 0");
  assertThrowsWith(
    () => tok.encodeBatch(["a", "b"], { pairs: ["c"] }),
    RangeError,
    "pairs has 1",
    "texts has 2",
  );
  assertThrowsWith(
    () => tok.encodeBatch(["a"], { padding: "bogus" as "longest" }),
    RangeError,
    '"bogus"',
    "max_length",
  );
});

Deno.test("loadTokenizer() names the path and what it expected when files are missing or broken", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assertRejectsWith(
      () => loadTokenizer(`${dir}/nope`),
      Deno.errors.NotFound,
      `${dir}/nope`,
      "vocab.txt",
    );
    await assertRejectsWith(
      () => loadTokenizer(dir),
      Deno.errors.NotFound,
      dir,
      "neither tokenizer.json nor vocab.txt",
    );
    await Deno.writeTextFile(`${dir}/tokenizer.json`, "{ not json");
    await assertRejectsWith(() => loadTokenizer(dir), SyntaxError, `${dir}/tokenizer.json`, "invalid JSON");
    await Deno.writeTextFile(`${dir}/tokenizer.json`, JSON.stringify({ model: { type: "BPE", vocab: {} } }));
    await assertRejectsWith(() => loadTokenizer(`${dir}/tokenizer.json`), TypeError, '"BPE"', "WordPiece");
    await Deno.writeTextFile(`${dir}/vocab.txt`, "");
    await assertRejectsWith(
      () => loadTokenizer(`${dir}/vocab.txt`),
      SyntaxError,
      `${dir}/vocab.txt`,
      "empty",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const json = JSON.parse(await Deno.readTextFile(new URL("tokenizer.json", BERT_DIR)));
  json.normalizer = { type: "NFKC" };
  assertThrowsWith(
    () => tokenizerFromJson(new TextEncoder().encode(JSON.stringify(json)), "x.json"),
    TypeError,
    '"NFKC"',
  );
});
