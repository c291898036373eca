/**
 * The learning-rate schedule of Hugging Face's `get_linear_schedule_with_warmup` (a LambdaLR
 * multiplier: linear warmup from 0, then linear decay to 0 at `totalSteps`), and the weight-decay
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
 * The learning rate optimizer step `step` (0-based) runs at: `lr * linearWarmupDecay(step, ...)`,
 * what `scheduler.get_last_lr()` returns before that step's `scheduler.step()`. With warmup the
 * first step runs at 0.
 * @example
 * ```ts
 * import { learningRateAt } from "./schedule.ts";
 * learningRateAt(0, { lr: 2e-5, warmupSteps: 0, totalSteps: 100 }); // 2e-5
 * ```
 */
export function learningRateAt(
  step: number,
  o: { lr: number; warmupSteps: number; totalSteps: number },
): number {
  if (!(o.lr >= 0) || !Number.isFinite(o.lr)) {
    throw new RangeError(`Schedule lr must be a finite number >= 0, got ${o.lr}`);
  }
  return o.lr * linearWarmupDecay(step, o.warmupSteps, o.totalSteps);
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
