/**
 * Serving benchmark: the real server (`deno serve serve/main.ts`, int8; one worker and one ORT thread
 * unless told) driven over loopback by a second process (bench/_load.ts) with single-text
 * `POST /classify` requests at concurrency 1 and 8 (or `--concurrency`), with micro-batching on
 * (BATCH_WINDOW_MS > 0; length-aware) and off (0). Reports p50/p99 latency, throughput, texts per
 * session run, padding (share of computed token slots that were padding, from /metrics), the server
 * process's RSS (start of the cell, end, and peak so far; Linux), and the batching speed-up
 * (throughput with batching / without, per concurrency).
 *
 * Run: `deno run -A bench/serve.ts [--quick] [--bert-base] [--cola] [--seconds N] [--window MS]
 * [--concurrency 1,8,32] [--threads N] [--workers N] [model folder]`. Prints a table and one JSON
 * line. `--bert-base`: a random bert-base-size model (max length 128); `--cola`: CoLA dev sentences
 * (mixed lengths, from the CoLA zip through tests/data.ts) instead of the demo grammar's.
 * The model folder may be an export (serve.json) or a Hugging Face model folder (config.json +
 * model.safetensors + tokenizer), exported to a temporary folder first.
 * @module
 */

import { spawnServer } from "../tests/spawn.ts";
import { colaZipPath } from "../tests/data.ts";
import { DEFAULT_CONFIG } from "../serve/config.ts";
import { exportModel } from "../train/export/export.ts";
import { generateDemoData } from "../train/demo/grammar.ts";
import { type LoadSummary, spawnLoad } from "./_load.ts";
import { randomModelFolder } from "./_model.ts";
import { loadCola } from "../train/data/cola.ts";

/** Options of {@linkcode benchServe}. */
export interface BenchServeOptions {
  /** A tiny random model and 1 s a measurement: for smoke tests. @default false */
  quick?: boolean;
  /**
   * An export folder (serve.json), or a model folder with config.json, model.safetensors and
   * tokenizer files, exported first. Default: a random model (hidden 256, 4 layers; tiny when
   * `quick`) with bert-base-uncased's vocabulary, exported to a temporary folder.
   */
  modelDir?: string;
  /** Measured seconds per (batching, concurrency) cell. @default 5, or 1 when `quick` */
  seconds?: number;
  /** BATCH_WINDOW_MS with batching on. @default the server's default (2) */
  windowMs?: number;
  /** Client concurrencies. @default [1, 8] */
  concurrency?: number[];
  /** A random bert-base-size model instead of hidden 256 x 4 (ignored with `modelDir`). @default false */
  bertBase?: boolean;
  /** Request CoLA's dev sentences (in and out of domain) instead of the demo grammar's. @default false */
  cola?: boolean;
  /** ORT_THREADS of the server. @default the server's default */
  threads?: number;
  /** `deno serve --parallel` workers. @default one worker, no --parallel */
  workers?: number;
}

/** One (batching, concurrency) measurement. */
export interface ServeMeasurement extends LoadSummary {
  batching: "on" | "off";
  windowMs: number;
  concurrency: number;
  /** Session runs the server made during the measurement (warm-up included). */
  sessionRuns: number;
  /** Texts per session run: how much the batcher coalesced (one worker's /model stats). */
  meanBatch: number;
  /** Share of the token slots computed in the cell that were padding (one worker's /metrics). */
  paddingRatio: number;
  /**
   * Server CPU time (all threads and workers) per text run in the cell, warm-up included (ms; NaN off
   * Linux). Unlike throughput it hardly moves when other processes share the cores: on N quiet cores
   * the server can serve at most about N x 1000 / cpuMsPerText texts a second.
   */
  cpuMsPerText: number;
  /** Server process RSS at the start and end of the cell, and its peak so far (MB; NaN off Linux). */
  rssStartMb: number;
  rssEndMb: number;
  peakRssMb: number;
}

/** What {@linkcode benchServe} measured. */
export interface ServeBenchResult {
  model: { source: string; variant: string; bytes: number; maxLength: number };
  /** What the clients sent, ORT threads and workers ("default" when not set). */
  texts: string;
  threads: number | "default";
  workers: number;
  seconds: number;
  measurements: ServeMeasurement[];
  /** Throughput with batching / without, per concurrency ("c8"): > 1 means batching helps. */
  batchingSpeedup: Record<string, number>;
}

const exists = (path: string) => Deno.stat(path).then(() => true, () => false);

async function stats(origin: string): Promise<{ sessionRuns: number; textsRun: number }> {
  return (await (await fetch(`${origin}/model`)).json()).stats;
}

/** Token counters of the worker that answers this scrape. */
async function tokens(origin: string): Promise<{ tokens: number; padded: number }> {
  const text = await (await fetch(`${origin}/metrics`)).text();
  const read = (name: string) =>
    Number(text.match(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, "m"))?.[1] ?? NaN);
  return { tokens: read("bert_tokens_total"), padded: read("bert_padded_tokens_total") };
}

/** VmRSS and VmHWM (peak) of a process, in MB; NaN where /proc is missing. */
async function rss(pid: number): Promise<{ now: number; peak: number }> {
  try {
    const status = await Deno.readTextFile(`/proc/${pid}/status`);
    const kb = (key: string) => Number(status.match(new RegExp(`^${key}:\\s+(\\d+) kB`, "m"))?.[1] ?? NaN);
    return { now: kb("VmRSS") / 1024, peak: kb("VmHWM") / 1024 };
  } catch {
    return { now: NaN, peak: NaN };
  }
}

/** CPU seconds (user + system, all threads and workers) the process has used; NaN where /proc is missing. */
async function cpuSeconds(pid: number): Promise<number> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in USER_HZ (100 on Linux)
  } catch {
    return NaN;
  }
}

/** CoLA's dev sentences, in and out of domain (1,043 texts of mixed length). */
async function colaDevTexts(): Promise<string[]> {
  const cola = await loadCola(await colaZipPath());
  return [...cola.inDomainDev.examples, ...cola.outOfDomainDev.examples].map((e) => e.text);
}

/**
 * Measures the server's latency and throughput with batching on and off.
 * @throws {Error} when the server cannot start (with its output) or the load generator fails.
 * @example
 * ```ts ignore
 * import { benchServe } from "./serve.ts";
 * const result = await benchServe({ quick: true });
 * console.log(result.batchingSpeedup);
 * ```
 */
export async function benchServe(options: BenchServeOptions = {}): Promise<ServeBenchResult> {
  const quick = options.quick ?? false;
  const seconds = options.seconds ?? (quick ? 1 : 5);
  const windowMs = options.windowMs ?? DEFAULT_CONFIG.batchWindowMs;
  const concurrencies = options.concurrency ?? [1, 8];
  const temps: string[] = [];
  try {
    let exportDir = options.modelDir;
    if (exportDir === undefined || !(await exists(`${exportDir}/serve.json`))) {
      const source = exportDir ?? await randomModelFolder(
        quick ? "tiny" : options.bertBase ? "bert-base" : "small",
        { tokenizer: true },
      );
      if (exportDir === undefined) temps.push(source);
      exportDir = await Deno.makeTempDir({ prefix: "bench_serve_export_" });
      temps.push(exportDir);
      await exportModel(source, { output: exportDir, variants: ["int8"], maxLength: quick ? 64 : 128 });
    }
    const texts = options.cola
      ? await colaDevTexts()
      : generateDemoData({ seed: 7, train: 0, validation: 0, test: 256 }).test.map((e) => e.text);
    const bodies = texts.map((text) => JSON.stringify({ text }));
    const env: Record<string, string> = options.threads ? { ORT_THREADS: String(options.threads) } : {};

    const measurements: ServeMeasurement[] = [];
    let model: ServeBenchResult["model"] | undefined;
    for (const batching of ["off", "on"] as const) {
      const window = batching === "on" ? windowMs : 0;
      const server = await spawnServer({
        env: { ...env, MODEL_DIR: exportDir, BATCH_WINDOW_MS: String(window), ACCESS_LOG: "0" },
        workers: options.workers,
      });
      try {
        if (model === undefined) {
          const info = await (await fetch(`${server.origin}/model`)).json();
          model = {
            source: options.modelDir ??
              (quick
                ? "random tiny"
                : options.bertBase
                ? "random bert-base"
                : "random hidden 256 x 4 layers"),
            variant: info.variant,
            bytes: info.bytes,
            maxLength: info.maxLength,
          };
        }
        for (const concurrency of concurrencies) {
          const before = await stats(server.origin);
          const tokensBefore = await tokens(server.origin);
          const rssBefore = await rss(server.pid);
          const cpuBefore = await cpuSeconds(server.pid);
          const summary = await spawnLoad({
            url: `${server.origin}/classify`,
            concurrency,
            seconds,
            warmupSeconds: quick ? 0.3 : 1,
            bodies,
          });
          const after = await stats(server.origin);
          const tokensAfter = await tokens(server.origin);
          const rssAfter = await rss(server.pid);
          const cpuAfter = await cpuSeconds(server.pid);
          const sessionRuns = after.sessionRuns - before.sessionRuns;
          measurements.push({
            batching,
            windowMs: window,
            concurrency,
            ...summary,
            sessionRuns,
            meanBatch: (after.textsRun - before.textsRun) / Math.max(1, sessionRuns),
            paddingRatio: 1 -
              (tokensAfter.tokens - tokensBefore.tokens) / (tokensAfter.padded - tokensBefore.padded),
            // Each request is one text; the load generator counts every answer (all workers').
            cpuMsPerText: (cpuAfter - cpuBefore) * 1000 / Math.max(1, summary.answered),
            rssStartMb: rssBefore.now,
            rssEndMb: rssAfter.now,
            peakRssMb: rssAfter.peak,
          });
        }
      } finally {
        await server.close();
      }
    }
    const batchingSpeedup: Record<string, number> = {};
    for (const c of concurrencies) {
      const find = (b: string) => measurements.find((m) => m.batching === b && m.concurrency === c)!;
      batchingSpeedup[`c${c}`] = find("on").throughput / find("off").throughput;
    }
    return {
      model: model!,
      texts: options.cola ? `CoLA dev (${texts.length} sentences)` : `demo grammar (${texts.length})`,
      threads: options.threads ?? "default",
      workers: options.workers ?? 1,
      seconds,
      measurements,
      batchingSpeedup,
    };
  } finally {
    for (const t of temps) await Deno.remove(t, { recursive: true });
  }
}

/**
 * The result as a fixed-width table.
 * @example
 * ```ts ignore
 * import { benchServe, formatServeTable } from "./serve.ts";
 * console.log(formatServeTable(await benchServe({ quick: true })));
 * ```
 */
export function formatServeTable(result: ServeBenchResult): string {
  const m = result.model;
  const lines = [
    `model ${m.source}: ${m.variant}, ${m.bytes} B, max length ${m.maxLength}; ${result.texts}; ` +
    `threads ${result.threads}, workers ${result.workers}; ${result.seconds} s a cell`,
    `batching  window  conc  requests  errors   p50 ms   p99 ms   req/s  texts/run  padding  CPU ms/text  RSS MB start/end/peak`,
  ];
  // A cell without one successful request has no latencies (NaN, null once through JSON).
  const fixed = (v: number | null, digits: number) => (v ?? NaN).toFixed(digits);
  for (const r of result.measurements) {
    lines.push(
      `${r.batching.padEnd(8)} ${String(r.windowMs).padStart(7)} ${String(r.concurrency).padStart(5)} ${
        String(r.requests).padStart(9)
      } ${String(r.errors).padStart(7)} ${fixed(r.p50Ms, 2).padStart(8)} ${fixed(r.p99Ms, 2).padStart(8)} ${
        r.throughput.toFixed(1).padStart(7)
      } ${r.meanBatch.toFixed(2).padStart(10)} ${fixed(r.paddingRatio, 2).padStart(8)} ${
        fixed(r.cpuMsPerText, 1).padStart(12)
      }  ${[r.rssStartMb, r.rssEndMb, r.peakRssMb].map((v) => fixed(v, 0)).join("/")}`,
    );
  }
  for (const r of result.measurements.filter((m) => m.firstError !== undefined)) {
    lines.push(`batching ${r.batching}, ${r.concurrency} clients, first error: ${r.firstError}`);
  }
  const speedups = Object.entries(result.batchingSpeedup).map(([k, v]) => `${k} ${v.toFixed(2)}x`).join(", ");
  lines.push(`batching speed-up (req/s on / off): ${speedups}`);
  return lines.join("\n");
}

if (import.meta.main) {
  const args = [...Deno.args];
  const options: BenchServeOptions = {};
  const usage = "usage: serve.ts [--quick] [--bert-base] [--cola] [--seconds N] [--window MS] " +
    "[--concurrency 1,8,32] [--threads N] [--workers N] [model folder]";
  while (args.length > 0) {
    const arg = args.shift()!;
    if (arg === "--quick") options.quick = true;
    else if (arg === "--bert-base") options.bertBase = true;
    else if (arg === "--cola") options.cola = true;
    else if (arg === "--concurrency") {
      const list = (args.shift() ?? "").split(",").map(Number);
      if (list.length === 0 || !list.every((c) => Number.isInteger(c) && c >= 1)) {
        console.error(`--concurrency needs whole numbers >= 1, like 1,8,32; ${usage}`);
        Deno.exit(2);
      }
      options.concurrency = list;
    } else if (["--seconds", "--window", "--threads", "--workers"].includes(arg)) {
      const value = Number(args.shift());
      if (!(value >= 0)) {
        console.error(`${arg} needs a number >= 0; ${usage}`);
        Deno.exit(2);
      }
      if (arg === "--seconds") options.seconds = value;
      else if (arg === "--window") options.windowMs = value;
      else if (arg === "--threads") options.threads = value;
      else options.workers = value;
    } else if (!arg.startsWith("-") && options.modelDir === undefined) options.modelDir = arg;
    else {
      console.error(`Unknown argument ${JSON.stringify(arg)}; ${usage}`);
      Deno.exit(2);
    }
  }
  const result = await benchServe(options);
  console.log(JSON.stringify({ bench: "serve", ...result }));
  console.log(formatServeTable(result));
}
