/**
 * Every numeric tolerance the tests use, in one place, with the reason for each.
 * A comparison passes when |actual - expected| <= abs + rel * |expected|.
 * @module
 */

/** An absolute plus relative tolerance. */
export interface Tolerance {
  abs: number;
  rel: number;
}

/** float32 GPU kernel vs float64 CPU reference: one rounding per op plus summation order over K <= ~3000. */
export const KERNEL_F32: Tolerance = { abs: 1e-5, rel: 1e-4 };

/** Reductions over many terms in float32 (matmul with K in the hundreds, norms). */
export const REDUCTION_F32: Tolerance = { abs: 1e-4, rel: 1e-4 };

/** float64 analytic gradient vs central finite difference (eps 1e-6): truncation error O(eps^2). */
export const FINITE_DIFF: Tolerance = { abs: 1e-6, rel: 1e-5 };

/** Whole tiny model in float32 vs PyTorch float32: errors from 2 layers of float32 rounding. */
export const MODEL_F32: Tolerance = { abs: 2e-5, rel: 1e-3 };
