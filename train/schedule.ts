/**
 * The learning-rate schedules of Hugging Face's `get_linear_schedule_with_warmup`,
 * `get_constant_schedule_with_warmup` and `get_cosine_schedule_with_warmup` (LambdaLR multipliers
 * after a linear warmup from 0), and the weight-decay
 * parameter groups of the BERT fine-tuning tutorial and `run_glue.py`.
 * @module
 */

function checkSteps(what: string, value: number): void {
  if (!Number.isInteger(value) || value < 0) {
    throw new RangeError(`Schedule ${what} must be a non-negative integer, got ${value}`);
  }
}

/**
 * The LambdaLR multiplier for optimizer step `step` (0-based):
 * step < warmup: step / max(1, warmup); else max(0, (total - step) / max(1, total - warmup)).
 * @example
 * ```ts
 * import { linearWarmupDecay } from "./schedule.ts";
 * linearWarmupDecay(1, 2, 10); // 0.5 (warming up)
 * linearWarmupDecay(6, 2, 10); // 0.5 (4 of 8 decay steps left)
 * ```
 * @throws {RangeError} when a step count is not a non-negative integer.
 */
export function linearWarmupDecay(step: number, warmupSteps: number, totalSteps: number): number {
  checkSteps("step", step);
  checkSteps("warmupSteps", warmupSteps);
  checkSteps("totalSteps", totalSteps);
  if (step < warmupSteps) return step / Math.max(1, warmupSteps);
  return Math.max(0, (totalSteps - step) / Math.max(1, totalSteps - warmupSteps));
}

/**
 * `get_constant_schedule_with_warmup`'s multiplier: step / max(1, warmup) during warmup, then 1.
 * (transformers' plain "constant" type ignores warmup; with no warmup the two are the same.)
 * @example
 * ```ts
 * import { constantWithWarmup } from "./schedule.ts";
 * constantWithWarmup(1, 4); // 0.25
 * constantWithWarmup(9, 4); // 1
 * ```
 */
export function constantWithWarmup(step: number, warmupSteps: number): number {
  checkSteps("step", step);
  checkSteps("warmupSteps", warmupSteps);
  return step < warmupSteps ? step / Math.max(1, warmupSteps) : 1;
}

/**
 * `get_cosine_schedule_with_warmup`'s multiplier with num_cycles 0.5: linear warmup, then
 * max(0, 0.5 * (1 + cos(pi * 2 * 0.5 * progress))), progress = (step - warmup) / max(1, total - warmup).
 * @example
 * ```ts
 * import { cosineWithWarmup } from "./schedule.ts";
 * cosineWithWarmup(6, 2, 10); // 0.5 (halfway down the half cosine)
 * ```
 */
export function cosineWithWarmup(
  step: number,
  warmupSteps: number,
  totalSteps: number,
  numCycles = 0.5,
): number {
  checkSteps("step", step);
  checkSteps("warmupSteps", warmupSteps);
  checkSteps("totalSteps", totalSteps);
  if (step < warmupSteps) return step / Math.max(1, warmupSteps);
  const progress = (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
  return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * numCycles * 2 * progress)));
}

/** The schedules `--lr-scheduler` offers, as transformers names them. */
export const LR_SCHEDULERS = ["linear", "constant", "cosine"] as const;

/** One of {@linkcode LR_SCHEDULERS}. */
export type LrScheduler = typeof LR_SCHEDULERS[number];

/**
 * The learning rate optimizer step `step` (0-based) runs at: `lr` times the schedule's multiplier
 * (linear by default), what `scheduler.get_last_lr()` returns before that step's `scheduler.step()`.
 * With warmup the first step runs at 0.
 * @example
 * ```ts
 * import { learningRateAt } from "./schedule.ts";
 * learningRateAt(0, { lr: 2e-5, warmupSteps: 0, totalSteps: 100 }); // 2e-5
 * ```
 */
export function learningRateAt(
  step: number,
  o: { lr: number; warmupSteps: number; totalSteps: number; scheduler?: LrScheduler },
): number {
  if (!(o.lr >= 0) || !Number.isFinite(o.lr)) {
    throw new RangeError(`Schedule lr must be a finite number >= 0, got ${o.lr}`);
  }
  switch (o.scheduler ?? "linear") {
    case "linear":
      return o.lr * linearWarmupDecay(step, o.warmupSteps, o.totalSteps);
    case "constant":
      return o.lr * constantWithWarmup(step, o.warmupSteps);
    case "cosine":
      return o.lr * cosineWithWarmup(step, o.warmupSteps, o.totalSteps);
    default:
      throw new RangeError(`Unknown lr scheduler "${o.scheduler}"; use ${LR_SCHEDULERS.join(", ")}`);
  }
}

/** Substrings of parameter names that get no weight decay (run_glue.py's `no_decay`). */
export const NO_DECAY = ["bias", "LayerNorm.weight"] as const;

/**
 * Whether a parameter gets weight decay: not when its (Hugging Face) name contains "bias" or
 * "LayerNorm.weight".
 * @example
 * ```ts
 * import { usesWeightDecay } from "./schedule.ts";
 * usesWeightDecay("bert.encoder.layer.0.attention.self.query.weight"); // true
 * usesWeightDecay("bert.embeddings.LayerNorm.weight"); // false
 * ```
 */
export function usesWeightDecay(paramName: string): boolean {
  return !NO_DECAY.some((nd) => paramName.includes(nd));
}
