/**
 * The `--task` glue shared by `deno task train` and `deno task eval`: the task name as a usage
 * error, which CoLA source means the tutorial's public zip, and a run's GLUE scores.
 * @module
 */

import { basename } from "node:path";
import { UsageError } from "./cli.ts";
import { type GlueScores, glueScores, type GlueTask, glueTask, type ScoredSet } from "./data/glue.ts";
import type { Dataset } from "./data/dataset.ts";
import { COLA_ZIP } from "./data/cola.ts";

/** The GLUE task of `--task`, or a {@linkcode UsageError} listing the tasks. */
export function taskOrUsage(name: string): GlueTask {
  try {
    return glueTask(name);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/**
 * Whether `--task cola --data <data>` means the tutorial's CoLA public zip (cola_public_1.1.zip, a
 * folder holding it, its URL, or no --data) rather than GLUE's CoLA.zip or folder.
 */
export function isColaPublic(data: string | undefined): boolean {
  if (data === undefined) return true;
  if (/^cola_public.*\.zip$/i.test(basename(data))) return true;
  try {
    return Deno.statSync(`${data}/${COLA_ZIP}`).isFile;
  } catch {
    return false;
  }
}

/**
 * GLUE scores of evaluated sets (`results` hold each set's predictions, `sets` its gold labels).
 * The CoLA public zip's in_domain_dev and out_of_domain_dev together are GLUE's CoLA dev set.
 */
export function glueScoresOf(
  task: string,
  results: Record<string, { predictions: number[] }>,
  sets: Record<string, Dataset>,
): GlueScores {
  const scored: Record<string, ScoredSet> = {};
  for (const [name, r] of Object.entries(results)) {
    scored[name] = { predictions: r.predictions, gold: sets[name].examples.map((e) => e.label) };
  }
  if (task === "cola" && scored.in_domain_dev && scored.out_of_domain_dev && !scored.dev) {
    const parts = [scored.in_domain_dev, scored.out_of_domain_dev];
    return glueScores(task, {
      dev: {
        predictions: parts.flatMap((p) => Array.from(p.predictions)),
        gold: parts.flatMap((p) => Array.from(p.gold)),
      },
    });
  }
  return glueScores(task, scored);
}
