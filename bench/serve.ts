/**
 * Serving benchmark: the real server (`deno serve serve/main.ts`, one worker, int8, one ORT thread)
 * driven over loopback by a second process (bench/_load.ts) with single-text `POST /classify`
 * requests at concurrency 1 and 8, with micro-batching on (BATCH_WINDOW_MS > 0) and off (0). Reports
 * p50/p99 latency, throughput, session runs per request, and the batching speed-up (throughput with
 * batching / without, per concurrency).
 *
 * Run: `deno run -A bench/serve.ts [--quick] [--seconds N] [--window MS] [model folder]`. Prints a
 * table and one JSON line. The model folder may be an export (serve.json) or a Hugging Face model
 * folder (config.json + model.safetensors + tokenizer), exported to a temporary folder first.
 * @module
 */

import { join } from "node:path";
import { spawnServer } from "../tests/spawn.ts";
import { bertBaseUncasedDir } from "../tests/data.ts";
import { DEFAULT_CONFIG } from "../serve/config.ts";
import { configToJson, parseBertConfig } from "../train/config.ts";
import { initWeights } from "../train/weights.ts";
import { parameterSpecs } from "../train/params.ts";
import { exportModel } from "../train/export/export.ts";
import { generateDemoData } from "../train/demo/grammar.ts";
import { serializeSafetensors, type TensorToWrite } from "../formats/safetensors.ts";
import { type LoadSummary, spawnLoad } from "./_load.ts";

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
}

/** One (batching, concurrency) measurement. */
export interface ServeMeasurement extends LoadSummary {
  batching: "on" | "off";
  windowMs: number;
  concurrency: number;
  /** Session runs the server made during the measurement (warm-up included). */
  sessionRuns: number;
  /** Texts per session run: how much the batcher coalesced. */
  meanBatch: number;
}

/** What {@linkcode benchServe} measured. */
export interface ServeBenchResult {
  model: { source: string; variant: string; bytes: number; maxLength: number };
  seconds: number;
  measurements: ServeMeasurement[];
  /** Throughput with batching / without, per concurrency ("c8"): > 1 means batching helps. */
  batchingSpeedup: Record<string, number>;
}

/** Writes a random HF model folder with bert-base-uncased's tokenizer files; returns its path. */
async function randomModelFolder(quick: boolean): Promise<string> {
  const config = parseBertConfig(
    quick
      ? {
        hidden_size: 32,
        num_hidden_layers: 2,
        num_attention_heads: 2,
        intermediate_size: 64,
        max_position_embeddings: 64,
      }
      : {
        hidden_size: 256,
        num_hidden_layers: 4,
        num_attention_heads: 4,
        intermediate_size: 1024,
        max_position_embeddings: 128,
      },
  );
  const weights = initWeights(config, 1);
  const dir = await Deno.makeTempDir({ prefix: "bench_serve_model_" });
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(configToJson(config)));
  const tensors = parameterSpecs(config).map((s): [string, TensorToWrite] => [
    s.name,
    { shape: s.shape, data: weights.get(s.name)! },
  ]);
  await Deno.writeFile(`${dir}/model.safetensors`, serializeSafetensors(tensors));
  const bert = await bertBaseUncasedDir();
  for (const f of ["tokenizer.json", "vocab.txt", "tokenizer_config.json"]) {
    await Deno.copyFile(join(bert, f), `${dir}/${f}`);
  }
  return dir;
}

const exists = (path: string) => Deno.stat(path).then(() => true, () => false);

async function stats(origin: string): Promise<{ sessionRuns: number; textsRun: number }> {
  return (await (await fetch(`${origin}/model`)).json()).stats;
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
      const source = exportDir ?? await randomModelFolder(quick);
      if (exportDir === undefined) temps.push(source);
      exportDir = await Deno.makeTempDir({ prefix: "bench_serve_export_" });
      temps.push(exportDir);
      await exportModel(source, { output: exportDir, variants: ["int8"], maxLength: quick ? 64 : 128 });
    }
    const texts = generateDemoData({ seed: 7, train: 0, validation: 0, test: 256 }).test.map((e) => e.text);
    const bodies = texts.map((text) => JSON.stringify({ text }));

    const measurements: ServeMeasurement[] = [];
    let model: ServeBenchResult["model"] | undefined;
    for (const batching of ["off", "on"] as const) {
      const window = batching === "on" ? windowMs : 0;
      const server = await spawnServer({ env: { MODEL_DIR: exportDir, BATCH_WINDOW_MS: String(window) } });
      try {
        if (model === undefined) {
          const info = await (await fetch(`${server.origin}/model`)).json();
          model = {
            source: options.modelDir ?? (quick ? "random tiny" : "random hidden 256 x 4 layers"),
            variant: info.variant,
            bytes: info.bytes,
            maxLength: info.maxLength,
          };
        }
        for (const concurrency of concurrencies) {
          const before = await stats(server.origin);
          const summary = await spawnLoad({
            url: `${server.origin}/classify`,
            concurrency,
            seconds,
            warmupSeconds: quick ? 0.3 : 1,
            bodies,
          });
          const after = await stats(server.origin);
          const sessionRuns = after.sessionRuns - before.sessionRuns;
          measurements.push({
            batching,
            windowMs: window,
            concurrency,
            ...summary,
            sessionRuns,
            meanBatch: (after.textsRun - before.textsRun) / Math.max(1, sessionRuns),
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
    return { model: model!, seconds, measurements, batchingSpeedup };
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
    `model ${m.source}: ${m.variant}, ${m.bytes} B, max length ${m.maxLength}; ${result.seconds} s a cell`,
    `batching  window  conc  requests  errors   p50 ms   p99 ms   req/s  texts/run`,
  ];
  for (const r of result.measurements) {
    lines.push(
      `${r.batching.padEnd(8)} ${String(r.windowMs).padStart(7)} ${String(r.concurrency).padStart(5)} ${
        String(r.requests).padStart(9)
      } ${String(r.errors).padStart(7)} ${r.p50Ms.toFixed(2).padStart(8)} ${r.p99Ms.toFixed(2).padStart(8)} ${
        r.throughput.toFixed(1).padStart(7)
      } ${r.meanBatch.toFixed(2).padStart(10)}`,
    );
  }
  const speedups = Object.entries(result.batchingSpeedup).map(([k, v]) => `${k} ${v.toFixed(2)}x`).join(", ");
  lines.push(`batching speed-up (req/s on / off): ${speedups}`);
  return lines.join("\n");
}

if (import.meta.main) {
  const args = [...Deno.args];
  const options: BenchServeOptions = {};
  const usage = "usage: serve.ts [--quick] [--seconds N] [--window MS] [model folder]";
  while (args.length > 0) {
    const arg = args.shift()!;
    if (arg === "--quick") options.quick = true;
    else if (arg === "--seconds" || arg === "--window") {
      const value = Number(args.shift());
      if (!(value >= 0)) {
        console.error(`${arg} needs a number >= 0; ${usage}`);
        Deno.exit(2);
      }
      if (arg === "--seconds") options.seconds = value;
      else options.windowMs = value;
    } else if (!arg.startsWith("-") && options.modelDir === undefined) options.modelDir = arg;
    else {
      console.error(`Unknown argument ${JSON.stringify(arg)}; ${usage}`);
      Deno.exit(2);
    }
  }
  const result = await benchServe(options);
  console.log(formatServeTable(result));
  console.log(JSON.stringify({ bench: "serve", ...result }));
}
