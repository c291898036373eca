/**
 * Soak test of the real server: `deno serve serve/main.ts` (spawnServer) driven from a second process
 * (bench/_load.ts) through a schedule of concurrencies that goes up and back down (1, 8, 32, 32, 8, 1
 * by default) for `seconds` in all, after a warm-up at the highest. It reports errors and latency per
 * segment, and the server's resident memory (VmRSS from /proc/<pid>/status, sampled all along) in
 * the first and the last segment (10 s each in the default 60 s run) and their ratio: a leak shows as
 * a ratio above 1 at the same concurrency. The requests mix single texts, batches of 8 and pairs.
 *
 * Run: `deno run -A bench/soak.ts [--quick] [--seconds 60] [--model <export folder>]`; prints a
 * table and one JSON line, and exits with 1 on any failed request. `--quick` (a few seconds, used by
 * `bench/soak_test.ts`) is a smoke test, not a soak.
 * @module
 */

import { spawnServer } from "../serve/spawn.ts";
import { exportTestModel, testVocabulary } from "../serve/_test_model.ts";
import { Rng } from "../kernels/random.ts";
import { type Flag, helpText, parseFlags } from "../train/cli.ts";
import type { LoadJob, LoadSummary } from "./_load.ts";

/** Options of {@linkcode runSoak}. */
export interface SoakOptions {
  /** A few seconds in all, for CI. @default false */
  quick?: boolean;
  /** Measured seconds, split evenly over the segments. @default 60, or 3 when `quick` */
  seconds?: number;
  /** Concurrencies, run up then down. @default [1, 8, 32] */
  concurrency?: number[];
  /** An export folder (serve.json); default: the tiny test model, exported to a temporary folder. */
  modelDir?: string;
}

/** One segment of the schedule. */
export interface SoakSegment extends LoadSummary {
  concurrency: number;
}

/** Resident memory of the server process, in KiB. */
export interface SoakMemory {
  /** [milliseconds since the measured period began, VmRSS KiB]. */
  samples: [number, number][];
  /** Mean VmRSS over the first segment. */
  firstKb: number;
  /** Mean VmRSS over the last segment. */
  lastKb: number;
  /** lastKb / firstKb. */
  ratio: number;
}

/** What {@linkcode runSoak} measured. */
export interface SoakResult {
  seconds: number;
  segments: SoakSegment[];
  requests: number;
  errors: number;
  /** The highest p99 latency of any segment, ms. */
  worstP99Ms: number;
  /** Null where /proc is not available (not Linux). */
  memory: SoakMemory | null;
}

const LOAD = new URL("./_load.ts", import.meta.url).pathname;

/**
 * VmRSS of process `pid` in KiB, from /proc/<pid>/status; null when it cannot be read.
 * @example
 * ```ts
 * import { readRssKb } from "./soak.ts";
 * console.log(readRssKb(Deno.pid)); // e.g. 61440 on Linux, null elsewhere
 * ```
 */
export function readRssKb(pid: number): number | null {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const kb = status.match(/^VmRSS:\s+(\d+)\s+kB/m)?.[1];
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

async function loadProcess(job: LoadJob): Promise<LoadSummary> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net=127.0.0.1", LOAD],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(JSON.stringify(job)));
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  const text = new TextDecoder();
  if (code !== 0) throw new Error(`Load generator failed (exit ${code}): ${text.decode(stderr)}`);
  return JSON.parse(text.decode(stdout));
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
  const seconds = options.seconds ?? (quick ? 3 : 60);
  const levels = options.concurrency ?? [1, 8, 32];
  const schedule = [...levels, ...[...levels].reverse()];
  const segmentSeconds = seconds / schedule.length;
  const exportDir = options.modelDir ?? await exportTestModel({ maxLength: 16 });
  try {
    const server = await spawnServer({ env: { MODEL_DIR: exportDir } });
    try {
      const url = `${server.origin}/classify`;
      const bodies = requestBodies(200);
      const concurrency = Math.max(...levels);
      await loadProcess({ url, concurrency, seconds: quick ? 1 : 5, bodies });

      const samples: [number, number][] = [];
      const bounds: [number, number][] = []; // each segment's measured span, in sample time
      const start = performance.now();
      const sample = () => {
        const kb = readRssKb(server.pid);
        if (kb !== null) samples.push([performance.now() - start, kb]);
      };
      sample();
      const sampler = setInterval(sample, quick ? 100 : 500);
      const segments: SoakSegment[] = [];
      try {
        for (const c of schedule) {
          const warmupSeconds = quick ? 0.1 : 0.5;
          const from = performance.now() - start;
          const summary = await loadProcess({
            url,
            concurrency: c,
            seconds: segmentSeconds,
            warmupSeconds,
            bodies,
          });
          bounds.push([from, performance.now() - start]);
          segments.push({ concurrency: c, ...summary });
        }
      } finally {
        clearInterval(sampler);
      }
      sample();
      const within = ([a, b]: [number, number]) =>
        samples.filter(([t]) => t >= a && t <= b).map(([, kb]) => kb);
      const first = within(bounds[0]);
      const last = within(bounds[bounds.length - 1]);
      const memory = first.length && last.length
        ? { samples, firstKb: mean(first), lastKb: mean(last), ratio: mean(last) / mean(first) }
        : null;
      return {
        seconds,
        segments,
        requests: segments.reduce((n, s) => n + s.requests, 0),
        errors: segments.reduce((n, s) => n + s.errors, 0),
        worstP99Ms: Math.max(...segments.map((s) => s.p99Ms)),
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
 * The result as a table: one row per segment, then memory.
 * @example
 * ```ts ignore
 * import { formatSoak, runSoak } from "./soak.ts";
 * console.log(formatSoak(await runSoak({ quick: true })));
 * ```
 */
export function formatSoak(result: SoakResult): string {
  const lines = [
    `soak: ${result.seconds} s, ${result.requests} requests, ${result.errors} errors, worst p99 ${
      result.worstP99Ms.toFixed(1)
    } ms`,
    "conc  requests  errors   p50 ms   p99 ms   max ms    req/s",
  ];
  for (const s of result.segments) {
    lines.push(
      `${String(s.concurrency).padStart(4)} ${String(s.requests).padStart(9)} ${
        String(s.errors).padStart(7)
      } ${s.p50Ms.toFixed(2).padStart(8)} ${s.p99Ms.toFixed(2).padStart(8)} ${
        s.maxMs.toFixed(2).padStart(8)
      } ${s.throughput.toFixed(1).padStart(8)}`,
    );
  }
  const m = result.memory;
  lines.push(
    m
      ? `server RSS: first segment ${(m.firstKb / 1024).toFixed(1)} MiB, last ${
        (m.lastKb / 1024).toFixed(1)
      } MiB, ratio ${m.ratio.toFixed(3)} (${m.samples.length} samples)`
      : "server RSS: not available (no /proc)",
  );
  for (const s of result.segments) {
    if (s.firstError) lines.push(`first error at c${s.concurrency}: ${s.firstError}`);
  }
  return lines.join("\n");
}

const FLAGS: Record<string, Flag> = {
  quick: { type: "boolean", help: "A few seconds (smoke test)" },
  seconds: { type: "number", value: "s", help: "Measured seconds in all (default 60, quick 3)" },
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
    modelDir: values.model as string | undefined,
  });
  console.log(formatSoak(result));
  const { samples: _, ...memory } = result.memory ?? { samples: [] };
  console.log(JSON.stringify({ bench: "soak", ...result, memory: result.memory ? memory : null }));
  Deno.exit(result.errors === 0 ? 0 : 1);
}
