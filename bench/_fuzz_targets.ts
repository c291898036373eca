/**
 * The fuzz targets behind `bench/fuzz.ts`: every reader that takes input from outside (zip, CoLA,
 * TSV/CSV/JSONL, an exported model folder's serve.json and ONNX file, the tokenizer), each with its
 * contract. Runs inside the worker of `bench/_fuzz_worker.ts`, so a hang can be stopped from outside.
 *
 * File targets mutate seed files with `tests/fuzz.ts` (case `i` of seed `s` is reproducible: it is
 * the first case of `fuzzParser`'s stream for seed `s * 1_000_003 + i`). The reader must return, or
 * throw one of the target's documented error classes with a message naming the file of that case
 * (each case has its own file name), within the target's time limit. The tokenizer target generates
 * text instead and must never throw; its output must be well formed (see {@linkcode checkEncoding}).
 * @module
 */

import { join } from "node:path";
import { zipSync } from "npm:fflate@0.8.3";
import { fuzzParser } from "../tests/fuzz.ts";
import { Rng } from "../kernels/random.ts";
import { readZipDirectory, readZipMember } from "../formats/_zip.ts";
import { bertBaseUncasedDir, colaZipPath } from "../tests/data.ts";
import { loadCola } from "../train/data/cola.ts";
import { parseTable, type TableOptions } from "../train/data/tabular.ts";
import { decodeUtf8 } from "../train/data/dataset.ts";
import { loadServeModel } from "../serve/model.ts";
import { exportTestModel } from "../serve/_test_model.ts";
import { type Encoding, loadTokenizer, type Tokenizer, tokenizerFromVocab } from "../tokenizer/mod.ts";

/** The targets, in the order `bench/fuzz.ts` runs them. */
export const FUZZ_TARGETS = [
  "zip",
  "cola",
  "tsv",
  "csv",
  "jsonl",
  "serve.json",
  "model.onnx",
  "tokenizer",
] as const;

/** One target's name. */
export type FuzzTargetName = typeof FUZZ_TARGETS[number];

/** What one target saw. */
export interface FuzzTargetReport {
  target: FuzzTargetName;
  cases: number;
  /** Cases the reader accepted (for the tokenizer: every case, or the run fails). */
  accepted: number;
  /** Cases rejected with a documented error, by error class name. */
  rejected: Record<string, number>;
  /** The slowest case, in milliseconds. */
  slowestMs: number;
}

/** Messages from the worker: a case is starting (the heartbeat the watchdog reads), or the end. */
export type FuzzMessage =
  | { type: "case"; name: string; limitMs: number }
  | { type: "report"; report: FuzzTargetReport }
  | { type: "failure"; message: string };

// deno-lint-ignore no-explicit-any
type ErrorClass = new (...args: any[]) => Error;

/** A file reader under test. */
interface FileTarget {
  /** Seed files the mutations start from. */
  seeds: Uint8Array[];
  /**
   * Reads one mutated file, stored or named after `caseName` (`<case>.zip`, `<case>.tsv`, a folder
   * `<case>/`), so an error that names the file contains the case name.
   */
  run(bytes: Uint8Array, caseName: string): Promise<void>;
  /** Error classes the reader documents. `Error` itself is matched exactly, not as a base class. */
  allowed: ErrorClass[];
  /** Most milliseconds one case may take. */
  limitMs: number;
  dispose(): Promise<void>;
}

// Resolved when a target starts, not at import: the fuzz worker must set its onmessage before any await.
const encoder = new TextEncoder();

/** The bytes of case `index` of a mutation stream: fuzzParser's first case for a derived seed. */
function mutated(seeds: readonly Uint8Array[], seed: number, index: number): Uint8Array {
  let out: Uint8Array | null = null;
  fuzzParser("input", seeds, (bytes) => {
    out = bytes;
  }, { cases: 1, seed: (seed * 1_000_003 + index) >>> 0, timeLimitMs: Infinity });
  return out!;
}

/** The error class name when `e` keeps the contract, else a description of the breach. */
function classify(e: unknown, allowed: readonly ErrorClass[], mustName: string): string | { breach: string } {
  const error = e as Error;
  const ok = allowed.some((cls) => cls === Error ? error?.constructor === Error : error instanceof cls);
  if (!ok) return { breach: `threw ${error?.constructor?.name}: ${error?.message ?? String(e)}` };
  if (!error.message.includes(mustName)) {
    return { breach: `threw a ${error.constructor.name} that does not name "${mustName}": ${error.message}` };
  }
  return error.constructor.name;
}

async function tempDir(prefix: string): Promise<string> {
  return await Deno.makeTempDir({ prefix: `fuzz_${prefix}_` });
}

async function zipTarget(): Promise<FileTarget> {
  const text = encoder.encode("sentence\tlabel\nthe cat sat .\t1\ncat the sat\t0\n".repeat(20));
  const small = zipSync({
    "data/train.tsv": [text, { level: 6 }],
    "data/raw.bin": [Uint8Array.from({ length: 300 }, (_, i) => (i * 7919) & 0xff), { level: 0 }],
    "data/": new Uint8Array(0),
    "données/é.txt": [encoder.encode("é"), { level: 9 }],
  });
  return {
    seeds: [small, await Deno.readFile(await colaZipPath())],
    run(bytes, caseName) {
      const name = `${caseName}.zip`;
      const members = readZipDirectory(bytes, name).values();
      for (const m of members) if (!m.name.endsWith("/")) readZipMember(bytes, m.name, name);
      // Loaders ask for a member by its expected name: a mutated name must give a NotFound naming the zip.
      readZipMember(
        bytes,
        bytes.length > 100_000 ? "cola_public/raw/in_domain_dev.tsv" : "data/train.tsv",
        name,
      );
      return Promise.resolve();
    },
    allowed: [SyntaxError, RangeError, Deno.errors.NotFound],
    limitMs: 2000,
    dispose: () => Promise.resolve(),
  };
}

async function colaTarget(): Promise<FileTarget> {
  const dir = await tempDir("cola");
  return {
    seeds: [await Deno.readFile(await colaZipPath())],
    async run(bytes, caseName) {
      const path = join(dir, `${caseName}.zip`);
      await Deno.writeFile(path, bytes);
      try {
        await loadCola(path);
      } finally {
        await Deno.remove(path);
      }
    },
    allowed: [SyntaxError, RangeError, TypeError, Deno.errors.NotFound],
    limitMs: 5000,
    dispose: () => Deno.remove(dir, { recursive: true }),
  };
}

const TABLES: Record<"tsv" | "csv" | "jsonl", { seeds: string[]; options: TableOptions }> = {
  tsv: {
    seeds: [
      'sentence\tlabel\nthe cat sat .\t1\n"quoted" text\t0\nnaïve café\t1\n\nlast one\t0\n',
      "id\tsentence\tlabel\n1\ta b\tpos\n2\tc d\tneg\n3\t\tneg\n",
    ],
    options: { textColumn: "sentence", labelColumn: "label", format: "tsv" },
  },
  csv: {
    seeds: [
      'premise,hypothesis,label\n"a, b","c ""d""",entailment\nx,y,neutral\r\n"multi\nline",z,contradiction\n',
      "premise,hypothesis,label\n1,2,0\n3,4,1\n",
    ],
    options: { textColumn: "premise", textPairColumn: "hypothesis", labelColumn: "label", format: "csv" },
  },
  jsonl: {
    seeds: [
      '{"text": "the cat", "label": 1}\n{"text": "dog \\u00e9\\ud83d\\ude00", "label": 0}\n\n' +
      '{"text": "", "label": 1}\n',
      '{"text": "a", "label": "pos", "extra": [1, {"b": null}]}\n{"text": "b", "label": "neg"}\n',
    ],
    options: { textColumn: "text", labelColumn: "label", format: "jsonl" },
  },
};

function tableTarget(format: "tsv" | "csv" | "jsonl"): FileTarget {
  const { seeds, options } = TABLES[format];
  return {
    seeds: seeds.map((s) => encoder.encode(s)),
    run(bytes, caseName) {
      const name = `${caseName}.${format}`;
      parseTable(decodeUtf8(bytes, name), name, options);
      return Promise.resolve();
    },
    allowed: [SyntaxError, RangeError, TypeError],
    limitMs: 500,
    dispose: () => Promise.resolve(),
  };
}

/** An exported tiny model; each case copies it into its own folder with one file mutated. */
async function modelTarget(file: "serve.json" | "model.int8.onnx"): Promise<FileTarget> {
  const source = await exportTestModel({ maxLength: 12 });
  const root = await tempDir("model");
  const others = ["serve.json", "model.int8.onnx", "model.onnx", "vocab.txt", "tokenizer_config.json"]
    .filter((f) => f !== file);
  return {
    seeds: [await Deno.readFile(join(source, file))],
    async run(bytes, caseName) {
      const dir = join(root, caseName);
      await Deno.mkdir(dir);
      for (const f of others) await Deno.copyFile(join(source, f), join(dir, f));
      await Deno.writeFile(join(dir, file), bytes);
      try {
        await (await loadServeModel(dir)).release();
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
    // loadServeModel documents NotFound, SyntaxError/TypeError, RangeError, and a plain Error for a
    // model file onnxruntime cannot load; every one names the folder.
    allowed: [Deno.errors.NotFound, SyntaxError, TypeError, RangeError, Error],
    limitMs: 15_000, // the first case starts onnxruntime's wasm
    async dispose() {
      await Deno.remove(root, { recursive: true });
      await Deno.remove(source, { recursive: true });
    },
  };
}

async function fileTarget(name: Exclude<FuzzTargetName, "tokenizer">): Promise<FileTarget> {
  switch (name) {
    case "zip":
      return await zipTarget();
    case "cola":
      return await colaTarget();
    case "serve.json":
      return await modelTarget("serve.json");
    case "model.onnx":
      return await modelTarget("model.int8.onnx");
    default:
      return tableTarget(name);
  }
}

/**
 * Runs `cases` cases of one target, calling `onCase` as each starts. Throws an Error describing the
 * first case that breaks the contract (which case, and how).
 */
export async function runTarget(
  target: FuzzTargetName,
  options: { cases: number; seed: number },
  onCase: (name: string, limitMs: number) => void = () => {},
): Promise<FuzzTargetReport> {
  if (target === "tokenizer") return await runTokenizer(options, onCase);
  const t = await fileTarget(target);
  const report: FuzzTargetReport = { target, cases: 0, accepted: 0, rejected: {}, slowestMs: 0 };
  try {
    for (let i = 0; i < options.cases; i++) {
      const caseName = `${target}-fuzz-case-${i}`;
      const bytes = mutated(t.seeds, options.seed, i);
      onCase(caseName, t.limitMs);
      const start = performance.now();
      let outcome: string;
      try {
        await t.run(bytes, caseName);
        outcome = "accepted";
      } catch (e) {
        const c = classify(e, t.allowed, caseName);
        if (typeof c !== "string") {
          throw new Error(`Fuzz case ${caseName} (seed ${options.seed}) ${c.breach}`, { cause: e });
        }
        outcome = c;
      }
      const ms = performance.now() - start;
      report.slowestMs = Math.max(report.slowestMs, ms);
      if (ms > t.limitMs) {
        throw new Error(
          `Fuzz case ${caseName} (seed ${options.seed}) took ${ms.toFixed(0)} ms, over ${t.limitMs}`,
        );
      }
      report.cases++;
      if (outcome === "accepted") report.accepted++;
      else report.rejected[outcome] = (report.rejected[outcome] ?? 0) + 1;
    }
  } finally {
    await t.dispose();
  }
  return report;
}

// ---------------------------------------------------------------------------------------------
// Tokenizer: generated text.

/** Code point ranges the generator draws from, each chosen with equal weight. */
const RANGES: readonly [number, number][] = [
  [0x20, 0x7e], // printable ASCII
  [0x00, 0x1f], // controls, \t \n \r among them
  [0x80, 0x24f], // Latin-1 and Latin Extended (accents, ß, ĳ)
  [0x300, 0x36f], // combining marks
  [0x370, 0x52f], // Greek and Cyrillic (final sigma)
  [0x590, 0x6ff], // Hebrew and Arabic (right to left)
  [0x2000, 0x206f], // spaces, zero-width joiners, bidi controls, general punctuation
  [0x3000, 0x30ff], // CJK punctuation, kana
  [0x4e00, 0x9fff], // CJK ideographs (each its own word)
  [0xac00, 0xd7a3], // Hangul
  [0xd800, 0xdfff], // lone surrogates (high and low)
  [0xe000, 0xf8ff], // private use
  [0xfff0, 0xffff], // specials, U+FFFD, noncharacters
  [0x1f300, 0x1faff], // emoji (astral: surrogate pairs)
  [0x20000, 0x2fa1f], // CJK extensions (astral)
  [0xe0000, 0xe01ef], // tags and variation selectors
];
const WORDS = ["the", "cat", "[SEP]", "[CLS]", "[UNK]", "[MASK]", "##s", "un", "##able", "don't"]
  .concat(["İ", "ﬁ"]); // İ lowercases to two code points; ﬁ is a ligature NFD leaves alone

/** A random string of about `length` UTF-16 code units. */
function randomText(rng: Rng, length: number): string {
  const parts: string[] = [];
  let size = 0;
  // Runs of one range make words; spaces and special-token words break them up.
  while (size < length) {
    const roll = rng.int(10);
    let piece: string;
    if (roll === 0) piece = " ";
    else if (roll === 1) piece = ` ${WORDS[rng.int(WORDS.length)]} `;
    else {
      const [lo, hi] = RANGES[rng.int(RANGES.length)];
      const run = 1 + rng.int(12);
      const codes: string[] = [];
      for (let k = 0; k < run; k++) {
        const cp = lo + rng.int(hi - lo + 1);
        // fromCharCode keeps a lone surrogate lone; fromCodePoint builds astral pairs.
        codes.push(cp >= 0xd800 && cp <= 0xdfff ? String.fromCharCode(cp) : String.fromCodePoint(cp));
      }
      piece = codes.join("");
    }
    parts.push(piece);
    size += piece.length;
  }
  return parts.join("");
}

/** Megabyte-sized inputs that stress one part each (a run-on word, many words, CJK, marks, surrogates). */
function hugeText(rng: Rng): string {
  const n = 1 << 20;
  switch (rng.int(6)) {
    case 0:
      return "a".repeat(n);
    case 1:
      return "the cat, ".repeat(n / 9);
    case 2:
      return Array.from({ length: n / 2 }, (_, i) => String.fromCharCode(0x4e00 + (i % 20000))).join("");
    case 3:
      return "e" + "\u0301".repeat(n);
    case 4:
      return Array.from({ length: n / 4 }, (_, i) => (i % 2 ? "\ud800 " : "\udfff\ud83d")).join("");
    default:
      return randomText(rng, n);
  }
}

/**
 * Checks an encoding against the untruncated one of the same input: ids in the vocabulary, at most
 * `maxLength` tokens, [CLS] first and [SEP] last, mask all 1, segment ids 0 then 1 (1 only for a
 * pair), `truncated` exactly when the full encoding is longer, and the same tokens as the full one
 * where nothing was cut. Throws a description of the first violation.
 */
export function checkEncoding(
  tok: Tokenizer,
  e: Encoding,
  full: Encoding,
  maxLength: number,
  pair: boolean,
): void {
  const fail = (why: string) => {
    throw new Error(`${why} (maxLength ${maxLength}, ${e.ids.length} ids, full ${full.ids.length})`);
  };
  const n = e.ids.length;
  if (n > maxLength) fail("more ids than maxLength");
  if (n < (pair ? 3 : 2)) fail("fewer ids than the special tokens");
  if (e.attentionMask.length !== n || e.tokenTypeIds.length !== n) fail("arrays of different lengths");
  for (let i = 0; i < n; i++) {
    if (tok.idToToken(e.ids[i]) === undefined) fail(`id ${e.ids[i]} at ${i} is not in the vocabulary`);
    if (e.attentionMask[i] !== 1) fail(`attention mask ${e.attentionMask[i]} at ${i}`);
    const type = e.tokenTypeIds[i];
    if (type !== 0 && type !== 1) fail(`token type ${type} at ${i}`);
    if (i > 0 && type < e.tokenTypeIds[i - 1]) fail(`token type falls back to 0 at ${i}`);
  }
  if (e.ids[0] !== tok.clsId || e.ids[n - 1] !== tok.sepId) {
    fail("does not start with [CLS] and end with [SEP]");
  }
  if (pair !== (e.tokenTypeIds[n - 1] === 1)) fail("the last segment id does not match single/pair");
  if (e.truncated !== full.ids.length > maxLength) fail(`truncated is ${e.truncated}`);
  if (e.truncated && n !== maxLength) fail("truncated to fewer than maxLength ids");
  if (!e.truncated && e.ids.join() !== full.ids.join()) fail("differs from the untruncated encoding");
  if (e.truncated && !pair && e.ids.subarray(0, n - 1).join() !== full.ids.subarray(0, n - 1).join()) {
    fail("a truncated single text is not a prefix of the full encoding");
  }
}

function checkBatch(tok: Tokenizer, texts: string[], pairs: string[] | undefined, maxLength: number): void {
  const batch = tok.encodeBatch(texts, { pairs, maxLength });
  const rows = texts.map((t, i) => tok.encode(t, { pair: pairs?.[i], maxLength }));
  const seqLen = Math.max(...rows.map((r) => r.ids.length));
  if (batch.batchSize !== texts.length || batch.seqLen !== seqLen) {
    throw new Error(
      `encodeBatch() gave [${batch.batchSize}, ${batch.seqLen}], expected [${texts.length}, ${seqLen}]`,
    );
  }
  rows.forEach((r, b) => {
    const at = b * seqLen;
    for (let i = 0; i < seqLen; i++) {
      const real = i < r.ids.length;
      const [id, mask, type] = [
        batch.inputIds[at + i],
        batch.attentionMask[at + i],
        batch.tokenTypeIds[at + i],
      ];
      if (
        id !== (real ? r.ids[i] : tok.padId) || mask !== (real ? 1 : 0) ||
        type !== (real ? r.tokenTypeIds[i] : 0)
      ) {
        throw new Error(`encodeBatch() row ${b} column ${i} differs from encode() of that text`);
      }
    }
  });
}

/** Well-formedness of one case; throws what went wrong. */
function tokenizerCase(tok: Tokenizer, rng: Rng, huge: boolean): void {
  const text = huge ? hugeText(rng) : randomText(rng, rng.int(4) === 0 ? rng.int(5000) : rng.int(80));
  const pair = rng.int(3) === 0 ? randomText(rng, rng.int(200)) : undefined;
  const maxLength = [3, 4, 8, 16, 64, 128, 512][rng.int(7)];
  const full = tok.encode(text, { pair, maxLength: 1 << 30 });
  checkEncoding(tok, tok.encode(text, { pair, maxLength }), full, maxLength, pair !== undefined);
  if (typeof tok.decode(full.ids) !== "string") throw new Error("decode() did not return a string");
  if (!huge) {
    const texts = [text, randomText(rng, rng.int(30)), ""];
    checkBatch(tok, texts, pair === undefined ? undefined : [pair, "", randomText(rng, 10)], maxLength);
  }
}

async function runTokenizer(
  options: { cases: number; seed: number },
  onCase: (name: string, limitMs: number) => void,
): Promise<FuzzTargetReport> {
  const bertDir = await bertBaseUncasedDir();
  const uncased = await loadTokenizer(bertDir);
  const vocab = (await Deno.readTextFile(join(bertDir, "vocab.txt"))).split("\n");
  // The cased normalizer (no lowercasing or accent stripping) takes other code paths.
  const cased = tokenizerFromVocab(vocab.slice(0, vocab.at(-1) === "" ? -1 : undefined), {
    doLowerCase: false,
  });
  const report: FuzzTargetReport = { target: "tokenizer", cases: 0, accepted: 0, rejected: {}, slowestMs: 0 };
  for (let i = 0; i < options.cases; i++) {
    const caseName = `tokenizer-fuzz-case-${i}`;
    const rng = new Rng((options.seed * 1_000_003 + i) >>> 0);
    // One case in 50 (and case 1) is a megabyte string.
    const huge = i % 50 === 1;
    // Megabyte strings: about 5 ms per thousand code units on this 2-core machine, with room to spare.
    const limitMs = huge ? 20_000 : 2000;
    onCase(caseName, limitMs);
    const start = performance.now();
    try {
      tokenizerCase(i % 2 ? cased : uncased, rng, huge);
    } catch (e) {
      throw new Error(
        `Fuzz case ${caseName} (seed ${options.seed}, ${i % 2 ? "cased" : "uncased"}): ${
          (e as Error).message
        }`,
        { cause: e },
      );
    }
    const ms = performance.now() - start;
    report.slowestMs = Math.max(report.slowestMs, ms);
    if (ms > limitMs) throw new Error(`Fuzz case ${caseName} took ${ms.toFixed(0)} ms, over ${limitMs}`);
    report.cases++;
    report.accepted++;
  }
  return report;
}
