/**
 * The benchmark's closing table: one row per figure (median, min, max over the timed runs), then one
 * row per ratio with its reference, as fixed-width text.
 * @module
 */

import type { Ratio, Summary } from "./_stats.ts";

/** One figure of the table. `min`/`max` are absent for exact counts and single measurements. */
export interface Row {
  suite: string;
  what: string;
  median: number;
  min?: number;
  max?: number;
  unit: string;
}

/**
 * A row from a {@linkcode Summary} (or any `{median, min, max}`).
 * @example
 * ```ts
 * import { row } from "./_table.ts";
 * row("kernels", "matmul 2048x768x768", { median: 2, min: 1, max: 3 }, "GFLOP/s").median; // 2
 * ```
 */
export function row(
  suite: string,
  what: string,
  s: Pick<Summary, "median" | "min" | "max">,
  unit: string,
): Row {
  return { suite, what, median: s.median, min: s.min, max: s.max, unit };
}

function num(x: number | undefined): string {
  if (x === undefined) return "-";
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a >= 1e6) return x.toExponential(3);
  if (a >= 100) return x.toFixed(0);
  if (a >= 1) return x.toFixed(2);
  return x.toPrecision(3);
}

/**
 * The rows and ratios as aligned text: suite, figure, median, min, max, unit; then the ratios.
 * @example
 * ```ts
 * import { formatTable } from "./_table.ts";
 * const text = formatTable([{ suite: "train", what: "tiny step", median: 5, min: 4, max: 6, unit: "ms" }], []);
 * text.split("\n").length; // 2
 * ```
 */
export function formatTable(rows: readonly Row[], ratios: readonly (Ratio & { suite: string })[]): string {
  const what = Math.max(6, ...rows.map((r) => r.what.length), ...ratios.map((r) => r.name.length));
  const lines = [
    `${"suite".padEnd(9)} ${"figure".padEnd(what)} ${"median".padStart(10)} ${"min".padStart(10)} ${
      "max".padStart(10)
    }  unit`,
  ];
  for (const r of rows) {
    lines.push(
      `${r.suite.padEnd(9)} ${r.what.padEnd(what)} ${num(r.median).padStart(10)} ${num(r.min).padStart(10)} ${
        num(r.max).padStart(10)
      }  ${r.unit}`,
    );
  }
  if (ratios.length) {
    lines.push(
      `${"suite".padEnd(9)} ${"ratio (medians)".padEnd(what)} ${"value".padStart(10)}  reference; reading`,
    );
    for (const r of ratios) {
      lines.push(
        `${r.suite.padEnd(9)} ${r.name.padEnd(what)} ${
          num(r.value).padStart(10)
        }  ${r.reference}; ${r.reading}`,
      );
    }
  }
  return lines.join("\n");
}
