/**
 * Tokenizer benchmark: this module (TypeScript) against Hugging Face's native
 * `tokenizers` (Rust through N-API) on all 8,551 CoLA in_domain_train sentences, bert-base-uncased,
 * truncation at 512. Like is compared with like: one sentence at a time (our synchronous `encode`
 * vs HF's `await encode`), and the whole set as one batch (our `encodeBatch` vs HF's `encodeBatch`,
 * which runs on all cores, both padded to the longest row). Runs are interleaved after warm-up so
 * load drift hits both sides alike.
 *
 * Run: `deno run -A bench/tokenizer.ts [--quick]`. Prints a table and one JSON line.
 * @module
 */

import { Tokenizer as HfTokenizer } from "npm:tokenizers@0.23.2";
import { loadTokenizer } from "../tokenizer/mod.ts";
import { BERT_DIR, colaSentences } from "../tokenizer/_testdata.ts";

/** Milliseconds to encode the whole sentence set, over the timed repeats. */
export interface Stats {
  median: number;
  min: number;
  max: number;
}

/** What {@linkcode benchTokenizer} measured. */
export interface TokenizerBenchResult {
  /** Ours, one `encode` per sentence. */
  ours: Stats;
  /** HF, one `await encode` per sentence. */
  hf: Stats;
  /** hf.median / ours.median: > 1 means ours is faster. */
  ratio: number;
  /** Ours, one `encodeBatch` over all sentences. */
  oursBatch: Stats;
  /** HF, one `encodeBatch` over all sentences (multi-threaded in Rust). */
  hfBatch: Stats;
  /** hfBatch.median / oursBatch.median. */
  batchRatio: number;
  sentences: number;
  repeats: number;
  /** Whether both produced the same ids for every sentence (checked once, outside the timing). */
  identical: boolean;
}

function stats(times: number[]): Stats {
  const sorted = times.slice().sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { median, min: sorted[0], max: sorted[sorted.length - 1] };
}

async function time(fn: () => unknown): Promise<number> {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

/**
 * Times both tokenizers on the CoLA training sentences. `quick`: 1,000 sentences, 3 repeats
 * (seconds, for smoke tests); otherwise all 8,551 sentences, 9 repeats, 2 warm-up rounds.
 *
 * @example
 * ```ts ignore
 * import { benchTokenizer } from "./tokenizer.ts";
 * const { ratio } = await benchTokenizer({ quick: true });
 * console.log(ratio > 1 ? "ours is faster" : "HF is faster");
 * ```
 */
export async function benchTokenizer(options: { quick?: boolean } = {}): Promise<TokenizerBenchResult> {
  const quick = options.quick ?? false;
  const all = colaSentences("in_domain_train");
  const sentences = quick ? all.slice(0, 1000) : all;
  const repeats = quick ? 3 : 9;
  const warmup = quick ? 1 : 2;
  const ours = await loadTokenizer(BERT_DIR);
  const hf = HfTokenizer.fromFile(new URL("tokenizer.json", BERT_DIR).pathname);
  hf.setTruncation(512);

  const oursOne = () => {
    for (const s of sentences) ours.encode(s);
  };
  const hfOne = async () => {
    for (const s of sentences) await hf.encode(s);
  };
  const oursBatch = () => ours.encodeBatch(sentences);
  const hfBatch = async () => {
    hf.setPadding({}); // pad to the longest row, as encodeBatch's default
    try {
      await hf.encodeBatch(sentences);
    } finally {
      hf.disablePadding();
    }
  };

  let identical = true;
  const hfIds = await hf.encodeBatch(sentences);
  sentences.forEach((s, i) => {
    const a = ours.encode(s).ids;
    const b = hfIds[i].getIds();
    if (a.length !== b.length || b.some((v, j) => a[j] !== v)) identical = false;
  });

  const runs = [oursOne, hfOne, oursBatch, hfBatch];
  const times: number[][] = runs.map(() => []);
  for (let round = 0; round < warmup + repeats; round++) {
    for (let k = 0; k < runs.length; k++) {
      const t = await time(runs[k]);
      if (round >= warmup) times[k].push(t);
    }
  }
  const [o, h, ob, hb] = times.map(stats);
  return {
    ours: o,
    hf: h,
    ratio: h.median / o.median,
    oursBatch: ob,
    hfBatch: hb,
    batchRatio: hb.median / ob.median,
    sentences: sentences.length,
    repeats,
    identical,
  };
}

if (import.meta.main) {
  const result = await benchTokenizer({ quick: Deno.args.includes("--quick") });
  const row = (name: string, s: Stats) =>
    `${name.padEnd(34)}${s.median.toFixed(1).padStart(10)}${s.min.toFixed(1).padStart(10)}${
      s.max.toFixed(1).padStart(10)
    }`;
  console.log(
    `Tokenizing ${result.sentences} CoLA sentences (bert-base-uncased, truncation 512), ${result.repeats} repeats, ms`,
  );
  console.log(`${"".padEnd(34)}${"median".padStart(10)}${"min".padStart(10)}${"max".padStart(10)}`);
  console.log(row("ours encode() x N", result.ours));
  console.log(row("HF await encode() x N", result.hf));
  console.log(row("ours encodeBatch()", result.oursBatch));
  console.log(row("HF encodeBatch() (all cores)", result.hfBatch));
  console.log(
    `one at a time: ours ${result.ratio.toFixed(2)}x HF; batch: ours ${result.batchRatio.toFixed(2)}x HF; ` +
      `identical ids: ${result.identical}`,
  );
  console.log(JSON.stringify({ bench: "tokenizer", ...result }));
}
