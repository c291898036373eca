/**
 * Fuzzing of every reader that takes outside input: the zip reader, the CoLA loader, TSV/CSV/JSONL,
 * an exported model folder (serve.json and the ONNX file given to `serve/model.ts`), and the
 * tokenizer (random Unicode with lone surrogates and astral characters, pairs, megabyte strings).
 * Targets and their contracts are in `bench/_fuzz_targets.ts`. Each target runs in a worker with a
 * watchdog: a case that passes its time limit by more than `graceMs` is reported as a hang and the
 * worker is stopped, so a hang fails the run instead of stalling it.
 *
 * Run: `deno run -A bench/fuzz.ts [--cases N] [--seed S] [--target zip,tokenizer,...]` (the long mode;
 * `tests/fuzz_inputs_test.ts` runs a few cases of each in CI). Prints the cases run per target.
 * @module
 */

import { type Flag, helpText, parseFlags, UsageError } from "../train/cli.ts";
import {
  FUZZ_TARGETS,
  type FuzzMessage,
  type FuzzTargetName,
  type FuzzTargetReport,
} from "./_fuzz_targets.ts";

export { FUZZ_TARGETS, type FuzzTargetName, type FuzzTargetReport };

/** Options of {@linkcode fuzzTarget}. */
export interface FuzzTargetOptions {
  /** Cases to run. */
  cases: number;
  /** Seed of the cases; the same seed gives the same cases. @default 1 */
  seed?: number;
  /**
   * How far past a case's time limit the watchdog waits before it calls the case a hang; a negative
   * grace shortens the limit (a test of the watchdog itself). @default 5000
   */
  graceMs?: number;
}

const WORKER = new URL("./_fuzz_worker.ts", import.meta.url);

/**
 * Runs one target in a worker and returns what it saw.
 * @throws {Error} naming the case (and seed) that broke the target's contract, or that hung.
 * @example
 * ```ts ignore
 * import { fuzzTarget } from "./fuzz.ts";
 * const report = await fuzzTarget("tsv", { cases: 200 });
 * console.log(report.cases, report.rejected); // 200 { RangeError: ..., TypeError: ... }
 * ```
 */
export function fuzzTarget(target: FuzzTargetName, options: FuzzTargetOptions): Promise<FuzzTargetReport> {
  if (!FUZZ_TARGETS.includes(target)) {
    return Promise.reject(
      new RangeError(`Unknown fuzz target "${target}"; use one of ${FUZZ_TARGETS.join(", ")}`),
    );
  }
  const seed = options.seed ?? 1;
  const graceMs = options.graceMs ?? 5000;
  const worker = new Worker(WORKER, { type: "module" });
  let current: { name: string; limitMs: number; since: number } | null = null;
  return new Promise<FuzzTargetReport>((resolve, reject) => {
    const watchdog = setInterval(() => {
      const waitMs = current ? Math.max(0, current.limitMs + graceMs) : Infinity;
      if (current && performance.now() - current.since > waitMs) {
        const name = current.name;
        finish(() =>
          reject(new Error(`Fuzz case ${name} (seed ${seed}) hung: no answer after ${waitMs} ms`))
        );
      }
    }, 100);
    const finish = (settle: () => void) => {
      clearInterval(watchdog);
      worker.terminate();
      settle();
    };
    worker.onmessage = (event: MessageEvent<FuzzMessage>) => {
      const m = event.data;
      if (m.type === "case") current = { name: m.name, limitMs: m.limitMs, since: performance.now() };
      else if (m.type === "report") finish(() => resolve(m.report));
      else finish(() => reject(new Error(m.message)));
    };
    worker.onerror = (event) => {
      event.preventDefault();
      finish(() => reject(new Error(`Fuzz worker for "${target}" crashed: ${event.message}`)));
    };
    worker.postMessage({ target, cases: options.cases, seed });
  });
}

/**
 * One line per target: cases, accepted, rejected by class, slowest case.
 * @example
 * ```ts
 * import { formatFuzzReport } from "./fuzz.ts";
 * formatFuzzReport({ target: "tsv", cases: 3, accepted: 1, rejected: { RangeError: 2 }, slowestMs: 0.4 });
 * // "tsv: 3 cases, 1 accepted, rejected RangeError 2, slowest 0.4 ms"
 * ```
 */
export function formatFuzzReport(r: FuzzTargetReport): string {
  const rejected = Object.entries(r.rejected).map(([k, v]) => `${k} ${v}`).join(", ") || "none";
  return `${r.target}: ${r.cases} cases, ${r.accepted} accepted, rejected ${rejected}, slowest ${
    r.slowestMs.toFixed(1)
  } ms`;
}

const FLAGS: Record<string, Flag> = {
  cases: { type: "int", default: 1000, value: "n", help: "Cases per target" },
  seed: { type: "int", default: 1, value: "n", help: "Seed of the cases" },
  target: {
    type: "string",
    default: "all",
    value: "names",
    help: `Targets: ${FUZZ_TARGETS.join("|")}|all, or a comma-separated list`,
  },
};

async function main(args: string[]): Promise<number> {
  const { values, help } = parseFlags(args, FLAGS);
  if (help) {
    console.log(helpText("Usage: deno run -A bench/fuzz.ts [options]", FLAGS));
    return 0;
  }
  const cases = values.cases as number;
  if (cases < 1) throw new UsageError(`--cases must be at least 1, got ${cases}`);
  const asked = (values.target as string) === "all"
    ? [...FUZZ_TARGETS]
    : (values.target as string).split(",");
  for (const t of asked) {
    if (!(FUZZ_TARGETS as readonly string[]).includes(t)) {
      throw new UsageError(`--target "${t}" is unknown; use ${FUZZ_TARGETS.join(", ")} or all`);
    }
  }
  let failed = 0;
  for (const target of asked as FuzzTargetName[]) {
    const start = performance.now();
    try {
      const report = await fuzzTarget(target, { cases, seed: values.seed as number });
      console.log(`${formatFuzzReport(report)} (${((performance.now() - start) / 1000).toFixed(1)} s)`);
    } catch (e) {
      failed++;
      console.log(`${target}: FAILED ${(e as Error).message}`);
    }
  }
  return failed ? 1 : 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    Deno.exit(e instanceof UsageError ? 2 : 1);
  }
}
