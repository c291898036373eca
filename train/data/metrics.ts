/**
 * Classification metrics with scikit-learn's semantics: accuracy, Matthews correlation coefficient
 * (binary and multiclass) and F1 (binary or macro), returning 0 where sklearn's value is undefined.
 * Classes are the union of the values in `pred` and `gold`.
 * @module
 */

function checkLengths(pred: ArrayLike<number>, gold: ArrayLike<number>, metric: string): void {
  if (pred.length !== gold.length) {
    throw new RangeError(
      `${metric}: ${pred.length} predictions for ${gold.length} gold labels; pass one of each per example`,
    );
  }
  if (gold.length === 0) throw new RangeError(`${metric}: no examples; pass at least one prediction`);
}

/** Sorted distinct values of both arrays (sklearn's unique_labels) and per-class counts. */
function classCounts(pred: ArrayLike<number>, gold: ArrayLike<number>) {
  const classes = [...new Set([...Array.from(gold), ...Array.from(pred)])].sort((a, b) => a - b);
  const index = new Map(classes.map((c, i) => [c, i]));
  const k = classes.length;
  const truePositives = new Float64Array(k);
  const goldCount = new Float64Array(k); // t_k: examples whose true class is k
  const predCount = new Float64Array(k); // p_k: examples predicted as k
  for (let i = 0; i < gold.length; i++) {
    const g = index.get(gold[i])!;
    const p = index.get(pred[i])!;
    goldCount[g]++;
    predCount[p]++;
    if (g === p) truePositives[g]++;
  }
  return { classes, truePositives, goldCount, predCount };
}

/**
 * Fraction of predictions equal to the gold label.
 * @param pred Predicted class ids.
 * @param gold True class ids, one per prediction.
 * @returns The fraction in [0, 1].
 * @throws {RangeError} for arrays of different or zero length.
 * @example
 * ```ts
 * import { accuracy } from "./metrics.ts";
 * accuracy([1, 0, 1, 1], [1, 1, 1, 0]); // 0.5
 * ```
 */
export function accuracy(pred: ArrayLike<number>, gold: ArrayLike<number>): number {
  checkLengths(pred, gold, "accuracy()");
  let correct = 0;
  for (let i = 0; i < gold.length; i++) if (pred[i] === gold[i]) correct++;
  return correct / gold.length;
}

/**
 * Matthews correlation coefficient, multiclass form (Gorodkin 2004) as scikit-learn computes it:
 * with confusion counts, c = correct, s = total, t_k/p_k = true/predicted counts of class k,
 * MCC = (c s - sum t_k p_k) / sqrt((s^2 - sum p_k^2)(s^2 - sum t_k^2)), and 0 when the
 * denominator is 0 (all predictions or all labels one class).
 * @param pred Predicted class ids.
 * @param gold True class ids, one per prediction.
 * @returns The coefficient in [-1, 1].
 * @throws {RangeError} for arrays of different or zero length.
 * @example
 * ```ts
 * import { matthewsCorrcoef } from "./metrics.ts";
 * matthewsCorrcoef([1, 0, 1, 0], [1, 0, 1, 0]); // 1
 * matthewsCorrcoef([1, 1, 1, 1], [1, 0, 1, 0]); // 0
 * ```
 */
export function matthewsCorrcoef(pred: ArrayLike<number>, gold: ArrayLike<number>): number {
  checkLengths(pred, gold, "matthewsCorrcoef()");
  const { truePositives, goldCount, predCount } = classCounts(pred, gold);
  const s = gold.length;
  let c = 0;
  let tp = 0;
  let pp = 0;
  let tt = 0;
  for (let k = 0; k < goldCount.length; k++) {
    c += truePositives[k];
    tp += goldCount[k] * predCount[k];
    pp += predCount[k] * predCount[k];
    tt += goldCount[k] * goldCount[k];
  }
  const covPredPred = s * s - pp;
  const covGoldGold = s * s - tt;
  if (covPredPred * covGoldGold === 0) return 0;
  return (c * s - tp) / Math.sqrt(covGoldGold * covPredPred);
}

/** Options of {@linkcode f1Score}. */
export interface F1Options {
  /** "binary": F1 of `positiveLabel`; "macro": unweighted mean over classes. @default "binary" */
  average?: "binary" | "macro";
  /** The positive class for "binary". @default 1 */
  positiveLabel?: number;
}

/**
 * F1 score with scikit-learn's semantics: per class F1 = 2 tp / (2 tp + fp + fn), 0 when that
 * denominator is 0 (sklearn's zero_division default). "binary" scores `positiveLabel`; "macro"
 * averages over the classes present in `pred` or `gold`.
 * @param pred Predicted class ids.
 * @param gold True class ids, one per prediction.
 * @param options The average ("binary" or "macro") and the positive class.
 * @returns The score in [0, 1].
 * @throws {RangeError} for arrays of different or zero length, for "binary" with more than two
 *   classes, or a `positiveLabel` that is absent while two classes are present (as sklearn does).
 * @example
 * ```ts
 * import { f1Score } from "./metrics.ts";
 * f1Score([1, 0, 1, 1], [1, 1, 1, 0]); // 2/3
 * f1Score([0, 0, 0], [0, 0, 0]); // 0 (no positives at all)
 * ```
 */
export function f1Score(pred: ArrayLike<number>, gold: ArrayLike<number>, options: F1Options = {}): number {
  checkLengths(pred, gold, "f1Score()");
  const { classes, truePositives, goldCount, predCount } = classCounts(pred, gold);
  // 2 tp / (2 tp + fp + fn) = 2 tp / (t_k + p_k): sklearn's form, so the rounding matches too.
  const f1Of = (k: number) => {
    const denominator = goldCount[k] + predCount[k];
    return denominator === 0 ? 0 : (2 * truePositives[k]) / denominator;
  };
  const average = options.average ?? "binary";
  if (average === "macro") {
    let sum = 0;
    for (let k = 0; k < classes.length; k++) sum += f1Of(k);
    return sum / classes.length;
  }
  if (average !== "binary") {
    throw new RangeError(`f1Score(): average "${average}" must be "binary" or "macro"`);
  }
  const positive = options.positiveLabel ?? 1;
  if (classes.length > 2) {
    throw new RangeError(
      `f1Score(): ${classes.length} classes (${
        classes.join(", ")
      }) with average "binary"; pass average: "macro"`,
    );
  }
  const k = classes.indexOf(positive);
  if (k < 0) {
    if (classes.length === 2) {
      throw new RangeError(
        `f1Score(): positiveLabel ${positive} is not one of the classes ${
          classes.join(", ")
        }; pass positiveLabel`,
      );
    }
    return 0; // one class present and it is negative: no true positives, F1 undefined -> 0.
  }
  return f1Of(k);
}

function checkFinite(values: ArrayLike<number>, metric: string): void {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) {
      throw new RangeError(`${metric}: value ${values[i]} at index ${i} is not finite; pass finite numbers`);
    }
  }
}

/**
 * Pearson correlation coefficient, as scipy.stats.pearsonr computes it (float64, means subtracted
 * first). NaN when either input is constant (the coefficient is undefined; scipy also returns nan).
 * @param x Predictions.
 * @param y Gold values, one per prediction.
 * @returns The coefficient in [-1, 1], or NaN.
 * @throws {RangeError} for arrays of different or zero length, or a non-finite value.
 * @example
 * ```ts
 * import { pearson } from "./metrics.ts";
 * pearson([1, 2, 3], [2, 4, 6.5]); // 0.9986...
 * ```
 */
export function pearson(x: ArrayLike<number>, y: ArrayLike<number>): number {
  checkLengths(x, y, "pearson()");
  checkFinite(x, "pearson()");
  checkFinite(y, "pearson()");
  const n = x.length;
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += x[i];
    my += y[i];
  }
  mx /= n;
  my /= n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = x[i] - mx;
    const dy = y[i] - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  if (sxx === 0 || syy === 0) return NaN;
  const r = sxy / Math.sqrt(sxx * syy);
  return Math.max(-1, Math.min(1, r));
}

/**
 * Ranks from 1, ties given the average of the ranks they span (scipy.stats.rankdata "average").
 * @example
 * ```ts
 * import { averageRanks } from "./metrics.ts";
 * averageRanks([10, 20, 10, 30]); // [1.5, 3, 1.5, 4]
 * ```
 */
export function averageRanks(values: ArrayLike<number>): Float64Array {
  const order = Array.from({ length: values.length }, (_, i) => i).sort((a, b) => values[a] - values[b]);
  const ranks = new Float64Array(values.length);
  for (let start = 0; start < order.length;) {
    let end = start + 1;
    while (end < order.length && values[order[end]] === values[order[start]]) end++;
    // Positions start..end-1 hold equal values: ranks start+1..end, averaged.
    const rank = (start + 1 + end) / 2;
    for (let k = start; k < end; k++) ranks[order[k]] = rank;
    start = end;
  }
  return ranks;
}

/**
 * Spearman rank correlation, as scipy.stats.spearmanr computes it: the Pearson correlation of the
 * average ranks (ties share the mean of their ranks). NaN when either input is constant.
 * @param x Predictions.
 * @param y Gold values, one per prediction.
 * @returns The coefficient in [-1, 1], or NaN.
 * @throws {RangeError} for arrays of different or zero length, or a non-finite value.
 * @example
 * ```ts
 * import { spearman } from "./metrics.ts";
 * spearman([1, 2, 3, 4], [1, 3, 9, 27]); // 1
 * ```
 */
export function spearman(x: ArrayLike<number>, y: ArrayLike<number>): number {
  checkLengths(x, y, "spearman()");
  checkFinite(x, "spearman()");
  checkFinite(y, "spearman()");
  return pearson(averageRanks(x), averageRanks(y));
}
