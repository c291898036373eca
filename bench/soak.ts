/**
 * Soak test of the real server: `deno serve serve/main.ts` (spawnServer) driven from a second process
 * (bench/_load.ts) for `seconds` (60 by default) in rounds of `roundSeconds` (10), each round running
 * every concurrency (1, 8, 32) in turn, after a warm-up at the highest (20 s). It reports errors and
 * latency per concurrency, and the server's resident memory (VmRSS from /proc/<pid>/status, sampled
 * all along) over the first and the last round and their ratio. Both rounds carry the same mix of
 * load, so a ratio above 1 is growth, not concurrency: a leak. The requests mix single texts, batches
 * of 8 and pairs.
 *
 * Run: `deno run -A bench/soak.ts [--quick] [--seconds 60] [--model <export folder>]`; prints a
 * table and one JSON line, and exits with 1 on any failed request. `--quick` (a few seconds, used by
 * `bench/soak_test.ts`) is a smoke test, not a soak.
 * @module
 */

import { spawnServer } from "../tests/spawn.ts";
import { exportTestModel, testVocabulary } from "../serve/_test_model.ts";
import { Rng } from "../kernels/random.ts";
import { type Flag, helpText, parseFlags } from "../train/cli.ts";
import { type LoadSummary, spawnLoad } from "./_load.ts";

/** Options of {@linkcode runSoak}. */
export interface SoakOptions {
  /** A few seconds in all, for CI. @default false */
  quick?: boolean;
  /** Measured seconds, in whole rounds (at least two). @default 60, or 3 when `quick` */
  seconds?: number;
  /** One round: every concurrency in turn, for an equal share of it. @default 10, or 1.5 when `quick` */
  roundSeconds?: number;
  /** Concurrencies of each round. @default [1, 8, 32] */
  concurrency?: number[];
  /** An export folder (serve.json); default: the tiny test model, exported to a temporary folder. */
  modelDir?: string;
  /**
   * Seconds of load at the highest concurrency before measuring, so the heap and the allocator reach
   * their working size first (from a cold start the server's RSS climbs for tens of seconds).
   * @default 20, or 1 when `quick`
   */
  warmupSeconds?: number;
}

/** One load process's run: a concurrency within a round. */
export interface SoakSegment extends LoadSummary {
  round: number;
  concurrency: number;
}

/** One concurrency over all rounds. */
export interface SoakLevel {
  concurrency: number;
  requests: number;
  errors: number;
  /** Median of its segments' p50s, ms. */
  p50Ms: number;
  /** The highest of its segments' p99s, ms. */
  p99Ms: number;
  maxMs: number;
  /** Successful requests a second, over its segments. */
  throughput: number;
}

/** Resident memory of the server process, in KiB. */
export interface SoakMemory {
  /** [milliseconds since the measured period began, VmRSS KiB]. */
  samples: [number, number][];
  /** Mean VmRSS over the first round. */
  firstKb: number;
  /** Mean VmRSS over the last round. */
  lastKb: number;
  /** lastKb / firstKb. */
  ratio: number;
  /** VmRSS right after start (model loaded, nothing served): "before". */
  startKb: number;
  /** VmRSS after the last round: "after". */
  endKb: number;
  /** The process's peak resident memory over its life (VmHWM), loading included. */
  peakKb: number;
}

/** What {@linkcode runSoak} measured. */
export interface SoakResult {
  seconds: number;
  rounds: number;
  levels: SoakLevel[];
  segments: SoakSegment[];
  requests: number;
  errors: number;
  /** The highest p99 latency of any concurrency, ms. */
  worstP99Ms: number;
  /** Null where /proc is not available (not Linux). */
  memory: SoakMemory | null;
}

/**
 * VmRSS (or the peak, VmHWM) of process `pid` in KiB, from /proc/<pid>/status; null when it cannot
 * be read.
 * @example
 * ```ts
 * import { readRssKb } from "./soak.ts";
 * console.log(readRssKb(Deno.pid)); // e.g. 61440 on Linux, null elsewhere
 * ```
 */
export function readRssKb(pid: number, field: "VmRSS" | "VmHWM" = "VmRSS"): number | null {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const kb = status.match(new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, "m"))?.[1];
    return kb === undefined ? null : Number(kb);
  } catch {
    return null;
  }
}

/** Request bodies: sentences of the test vocabulary, one at a time, in batches of 8, and as pairs. */
function requestBodies(count: number): string[] {
  const words = testVocabulary(50).slice(5);
  const rng = new Rng(11);
  const sentence = () =>
    Array.from({ length: 2 + rng.int(14) }, () => words[rng.int(words.length)]).join(" ");
  return Array.from({ length: count }, (_, i) => {
    if (i % 5 === 3) return JSON.stringify({ texts: Array.from({ length: 8 }, sentence) });
    if (i % 5 === 4) return JSON.stringify({ text: sentence(), text_pair: sentence() });
    return JSON.stringify({ text: sentence() });
  });
}

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;

/**
 * Starts the server, warms it up, runs the schedule and samples its memory; see the module doc.
 * @throws {Error} when the server cannot start or the load generator fails (failed requests are
 *   counted, not thrown).
 * @example
 * ```ts ignore
 * import { runSoak } from "./soak.ts";
 * const result = await runSoak({ quick: true });
 * console.log(result.errors, result.worstP99Ms, result.memory?.ratio);
 * ```
 */
export async function runSoak(options: SoakOptions = {}): Promise<SoakResult> {
  const quick = options.quick ?? false;
  const levels = options.concurrency ?? [1, 8, 32];
  const roundSeconds = options.roundSeconds ?? (quick ? 1.5 : 10);
  const rounds = Math.max(2, Math.round((options.seconds ?? (quick ? 3 : 60)) / roundSeconds));
  const exportDir = options.modelDir ?? await exportTestModel({ maxLength: 16 });
  try {
    const server = await spawnServer({ env: { MODEL_DIR: exportDir } });
    try {
      const url = `${server.origin}/classify`;
      const bodies = requestBodies(200);
      const startKb = readRssKb(server.pid);
      const warmup = options.warmupSeconds ?? (quick ? 1 : 20);
      await spawnLoad({ url, concurrency: Math.max(...levels), seconds: warmup, bodies });

      const samples: [number, number][] = [];
      const start = performance.now();
      const sample = () => {
        const kb = readRssKb(server.pid);
        if (kb !== null) samples.push([performance.now() - start, kb]);
      };
      const sampler = setInterval(sample, quick ? 100 : 250);
      const roundSpans: [number, number][] = []; // in sample time
      const segments: SoakSegment[] = [];
      try {
        for (let round = 0; round < rounds; round++) {
          const from = performance.now() - start;
          for (const concurrency of levels) {
            const summary = await spawnLoad({
              url,
              concurrency,
              seconds: roundSeconds / levels.length,
              warmupSeconds: quick ? 0.1 : 0.3, // new connections, not measured
              bodies,
            });
            segments.push({ round, concurrency, ...summary });
          }
          roundSpans.push([from, performance.now() - start]);
        }
      } finally {
        clearInterval(sampler);
      }
      const within = ([a, b]: [number, number]) =>
        samples.filter(([t]) => t >= a && t <= b).map(([, kb]) => kb);
      const first = within(roundSpans[0]);
      const last = within(roundSpans[rounds - 1]);
      const endKb = readRssKb(server.pid), peakKb = readRssKb(server.pid, "VmHWM");
      const memory = first.length && last.length && startKb !== null && endKb !== null && peakKb !== null
        ? {
          samples,
          firstKb: mean(first),
          lastKb: mean(last),
          ratio: mean(last) / mean(first),
          startKb,
          endKb,
          peakKb,
        }
        : null;
      const byLevel = levels.map((concurrency): SoakLevel => {
        const mine = segments.filter((s) => s.concurrency === concurrency);
        const p50s = mine.map((s) => s.p50Ms).sort((a, b) => a - b);
        const ok = mine.reduce((n, s) => n + s.requests - s.errors, 0);
        return {
          concurrency,
          requests: mine.reduce((n, s) => n + s.requests, 0),
          errors: mine.reduce((n, s) => n + s.errors, 0),
          p50Ms: p50s[Math.floor((p50s.length - 1) / 2)],
          p99Ms: Math.max(...mine.map((s) => s.p99Ms)),
          maxMs: Math.max(...mine.map((s) => s.maxMs)),
          throughput: ok / mine.reduce((n, s) => n + s.seconds, 0),
        };
      });
      return {
        seconds: rounds * roundSeconds,
        rounds,
        levels: byLevel,
        segments,
        requests: segments.reduce((n, s) => n + s.requests, 0),
        errors: segments.reduce((n, s) => n + s.errors, 0),
        worstP99Ms: Math.max(...byLevel.map((l) => l.p99Ms)),
        memory,
      };
    } finally {
      await server.close();
    }
  } finally {
    if (options.modelDir === undefined) await Deno.remove(exportDir, { recursive: true });
  }
}

/**
 * The result as a table: one row per concurrency, then memory.
 * @example
 * ```ts ignore
 * import { formatSoak, runSoak } from "./soak.ts";
 * console.log(formatSoak(await runSoak({ quick: true })));
 * ```
 */
export function formatSoak(result: SoakResult): string {
  const lines = [
    `soak: ${result.seconds} s in ${result.rounds} rounds, ${result.requests} requests, ` +
    `${result.errors} errors, worst p99 ${result.worstP99Ms.toFixed(1)} ms`,
    "conc  requests  errors   p50 ms   p99 ms   max ms    req/s",
  ];
  for (const l of result.levels) {
    lines.push(
      `${String(l.concurrency).padStart(4)} ${String(l.requests).padStart(9)} ${
        String(l.errors).padStart(7)
      } ${l.p50Ms.toFixed(2).padStart(8)} ${l.p99Ms.toFixed(2).padStart(8)} ${
        l.maxMs.toFixed(2).padStart(8)
      } ${l.throughput.toFixed(1).padStart(8)}`,
    );
  }
  const m = result.memory;
  const mib = (kb: number) => `${(kb / 1024).toFixed(1)} MiB`;
  lines.push(
    m
      ? `server RSS: before ${mib(m.startKb)}, first round ${mib(m.firstKb)}, last round ${
        mib(m.lastKb)
      }, ratio ${m.ratio.toFixed(3)}, after ${mib(m.endKb)}, peak ${mib(m.peakKb)} ` +
        `(${m.samples.length} samples)`
      : "server RSS: not available (no /proc)",
  );
  for (const s of result.segments) {
    if (s.firstError) lines.push(`first error in round ${s.round} at c${s.concurrency}: ${s.firstError}`);
  }
  return lines.join("\n");
}

const FLAGS: Record<string, Flag> = {
  quick: { type: "boolean", help: "A few seconds (smoke test)" },
  seconds: { type: "number", value: "s", help: "Measured seconds in all (default 60, quick 3)" },
  warmup: {
    type: "number",
    value: "s",
    help: "Warm-up seconds at the highest concurrency (default 20, quick 1)",
  },
  model: { type: "string", value: "folder", help: "Export folder to serve (default: the tiny test model)" },
};

if (import.meta.main) {
  const { values, help } = parseFlags(Deno.args, FLAGS);
  if (help) {
    console.log(helpText("Usage: deno run -A bench/soak.ts [options]", FLAGS));
    Deno.exit(0);
  }
  const result = await runSoak({
    quick: Boolean(values.quick),
    seconds: values.seconds as number | undefined,
    warmupSeconds: values.warmup as number | undefined,
    modelDir: values.model as string | undefined,
  });
  console.log(formatSoak(result));
  const { samples: _, ...memory } = result.memory ?? { samples: [] };
  console.log(JSON.stringify({ bench: "soak", ...result, memory: result.memory ? memory : null }));
  Deno.exit(result.errors === 0 ? 0 : 1);
}
