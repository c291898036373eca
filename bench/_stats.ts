/**
 * The one way every suite turns repeated timings into a figure: median, min and max over the timed
 * runs (warm-up runs are never passed in), with the number of runs.
 * @module
 */

/** A figure: median, min and max over `runs` timed repeats (after warm-up). */
export interface Summary {
  median: number;
  min: number;
  max: number;
  runs: number;
}

/**
 * Median (mean of the middle two for an even count), min and max of `values`.
 * @throws {RangeError} for an empty list or a non-finite value.
 * @example
 * ```ts
 * import { summarize } from "./_stats.ts";
 * summarize([3, 1, 2, 10]); // { median: 2.5, min: 1, max: 10, runs: 4 }
 * ```
 */
export function summarize(values: readonly number[]): Summary {
  if (values.length === 0) throw new RangeError("Cannot summarize an empty list of timings");
  const bad = values.find((v) => !Number.isFinite(v));
  if (bad !== undefined) throw new RangeError(`Timing ${bad} is not a finite number`);
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { median, min: s[0], max: s[s.length - 1], runs: s.length };
}

/**
 * Applies `f` to a summary's figures; for a decreasing `f` (a rate from a time) min and max swap so
 * that min stays the smaller value.
 * @example
 * ```ts
 * import { mapSummary } from "./_stats.ts";
 * mapSummary({ median: 2, min: 1, max: 4, runs: 3 }, (ms) => 1000 / ms); // { median: 500, min: 250, max: 1000, runs: 3 }
 * ```
 */
export function mapSummary(s: Summary, f: (x: number) => number): Summary {
  const a = f(s.min);
  const b = f(s.max);
  return { median: f(s.median), min: Math.min(a, b), max: Math.max(a, b), runs: s.runs };
}

/**
 * Runs `fn` `warmup` times untimed, then `repeats` times timed (wall clock, ms), and summarizes.
 * @example
 * ```ts
 * import { timeRepeated } from "./_stats.ts";
 * const s = await timeRepeated(() => new Array(1000).fill(0), { warmup: 1, repeats: 3 });
 * s.runs; // 3
 * ```
 */
export async function timeRepeated(
  fn: () => unknown,
  options: { warmup: number; repeats: number },
): Promise<Summary> {
  for (let i = 0; i < options.warmup; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < options.repeats; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  return summarize(times);
}

/** A comparison of two figures measured in the same run. */
export interface Ratio {
  /** What is compared, e.g. "tiny step: PyTorch CPU / ours". */
  name: string;
  value: number;
  /** The figure divided by (or into): e.g. "PyTorch eager float32 on CPU". */
  reference: string;
  /** How to read it, e.g. "> 1: ours is faster". */
  reading: string;
}
