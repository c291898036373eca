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

/** float64 metrics (accuracy, MCC, F1) vs the Python reference: same counts, a few roundings apart. */
export const METRIC_F64: Tolerance = { abs: 1e-12, rel: 0 };

/**
 * AdamW in float32 (GPU, or torch) vs float32 torch or the float64 reference over a few steps: the
 * same operation order leaves a few ulps (clip-norm summation order, fused multiply-adds); tight
 * enough that a missing weight-decay factor (1 - lr * wd ~ 1e-4) or a wrong bias correction fails.
 */
export const OPTIMIZER_F32: Tolerance = { abs: 1e-6, rel: 1e-5 };

/** float64 CPU reference vs PyTorch float64 on the same inputs: only summation order differs. */
export const REF_F64: Tolerance = { abs: 1e-12, rel: 1e-10 };

/** float64 erf()/erfc() vs torch.erf/erfc (libm) in float64: both within a few ulp of the truth. */
export const ERF_F64: Tolerance = { abs: 0, rel: 2e-15 };

/** float32 erf in WGSL vs the float64 erf: about 1 ulp (float32 ulp is 6e-8 to 1.2e-7 relative). */
export const ERF_F32: Tolerance = { abs: 0, rel: 2.5e-7 };

/** Results that must be bit-for-bit equal (dropout's scaled values, integer hashes, copies). */
export const EXACT: Tolerance = { abs: 0, rel: 0 };

/**
 * Exported float32 ONNX run by onnxruntime vs PyTorch float32 logits (the export task's bound): the
 * same math, but different kernels and summation order (measured about 1e-6 on the fixtures).
 */
export const ONNX_F32: Tolerance = { abs: 1e-4, rel: 0 };

/**
 * int8 dynamic quantization vs float32 logits. `abs` is a fraction of the batch's largest |logit|
 * (scale it before use): each int8 matmul adds about 1/254 relative rounding per weight column and
 * 1/255 of the activation range per input, compounded over 6 quantized matmuls a layer plus pooler
 * and classifier. Measured 2.5-3.8% on the fixture models (random weights of std 0.2, harsher than
 * trained BERT); 10% leaves room without hiding a wrong scale or zero point (those give O(1) errors).
 */
export const INT8_LOGITS: Tolerance = { abs: 0.1, rel: 0 };

/**
 * GELU in float32 for x in [-12, -3], where gelu(x) is 1e-32..1e-2: relative only. The erfc form
 * has no cancellation; what is left is WGSL's exp, allowed 3 + 2|x| ulp, at arguments up to -72
 * (lavapipe: 1.6e-5). 1 + erf(x/√2) in float32 would be off by 100% below x = -5.5.
 */
export const GELU_TAIL_F32: Tolerance = { abs: 0, rel: 3e-5 };

/**
 * Twenty AdamW steps in float32 vs PyTorch float32: per-step rounding differences (1 ulp in AdamW, the
 * summation order in matmuls) compound through the trajectory; Adam's normalised update amplifies
 * them for parameters whose gradient is near 0 (largest seen on llvmpipe: 9.6e-6 on a weight of 3.4e-3),
 * so the bound is looser than one forward/backward.
 */
export const TRAINING_F32: Tolerance = { abs: 3e-5, rel: 1e-3 };

/**
 * The same float32 ONNX model on two onnxruntime backends (wasm, onnxruntime-node, WebGPU): the same
 * math with different kernels (SIMD widths, GPU reduction order, fused multiply-adds); the export
 * task's bound, as for ONNX vs PyTorch.
 */
export const BACKEND_F32: Tolerance = ONNX_F32;

/**
 * The float16 export vs float32 logits. `abs` is a fraction of the batch's largest |logit| (scale it
 * before use): float16 keeps 11 significant bits (relative rounding 2^-11 = 4.9e-4 per value), met
 * after every op of every layer; LayerNorm renormalises, so the error grows about linearly with
 * depth. Measured 0.16% on the 2-layer fixture model; 2% leaves room for 12 layers without hiding a
 * wrong cast or a clamped weight (those give O(1) errors or NaN).
 */
export const FP16_LOGITS: Tolerance = { abs: 0.02, rel: 0 };

/**
 * Step losses of a 50-step f16 (mixed precision) run against the f32 run of the same recipe (tiny
 * fixture, dropout on, lr 1e-3): activations are rounded to f16 (11 significant bits, relative error up to
 * 4.9e-4 per rounding, dozens of roundings per layer), and the difference compounds through 50 AdamW
 * updates, with dropout masks and batches identical. Measured on lavapipe: largest difference 5.4e-5
 * (relative 7.9e-5) over the 50 steps, no step skipped; the bound leaves room for other adapters'
 * rounding (WGSL allows either neighbour) while a wrong unscale, a skipped update or a lost gradient moves
 * the losses by 1e-2 or more.
 */
export const F16_TRAINING_LOSS: Tolerance = { abs: 2e-3, rel: 0 };

/**
 * A float16 activation written by a kernel that computes in float32 (LayerNorm out and dx, softmax probs,
 * dropped and dscores, dropout, tanh, the embeddings sum, fill), vs the float64 reference on the same f16
 * inputs: one rounding to f16 on top of KERNEL_F32's float32 error (statistics, row sums in f32). Rounding
 * to nearest (lavapipe) is off by at most 2^-11 = 4.9e-4 of the value (rel 3e-4 fails there); WGSL lets an
 * implementation pick either neighbour, up to 1 ulp = 2^-10, hence 1.1e-3. `abs` covers results in f16's
 * subnormal range (spacing 2^-24 = 6e-8) and the float32 part near 0. A wrong scale, mask or statistic is
 * off by far more.
 */
export const F16_STORE: Tolerance = { abs: 1e-5, rel: 1.1e-3 };

/**
 * A float16 value rounded from an f32 intermediate (a LayerNorm's stored sum dropout(x)·scale + residual,
 * dxDrop = f16(dx·scale)) vs the float64 value rounded to f16 once: equal unless the double rounding
 * (f32, then f16) lands on the other side of a halfway point, then 1 f16 ulp (2^-10 relative at most;
 * 6e-8 absolute among subnormals; also the bound where WGSL's implementation-chosen rounding differs
 * from round-to-nearest). A wrong mask or scale is off by far more.
 */
export const F16_ONE_ULP: Tolerance = { abs: 6e-8, rel: 9.8e-4 };

/**
 * matmul with f16 storage (an f16 out, or aux) vs the float64 reference on the same f16-rounded inputs:
 * the inputs are exact after rounding and the sum is accumulated in f32 (the abs part, as
 * REDUCTION_F32 for K up to a few hundred), then the output is rounded once to f16 (11 significant
 * bits: 2^-11 = 4.9e-4 relative rounding to nearest, up to 1 ulp = 2^-10 where WGSL lets an
 * implementation pick either neighbour, as F16_STORE). An f32 out keeps REDUCTION_F32.
 */
export const MATMUL_F16: Tolerance = { abs: 1e-4, rel: 1.1e-3 };

/**
 * Whole-model logits, loss and every gradient with f16 activations vs PyTorch in float32 (tiny fixtures),
 * relative to each tensor's largest magnitude (the test sets abs = rel x max |expected|, rel 0): each
 * activation and activation gradient is rounded to f16 (4.9e-4 relative each) through a dozen kernels per
 * layer, and the first layers' gradients collect the roundings of every layer above. Measured worst on
 * lavapipe: 3.4e-3 of the tensor's scale (layer 0 key weight, tiny_dropout), identical for the software and
 * the real-GPU kernel variants; logits 1.4e-3.
 */
export const MODEL_F16: Tolerance = { abs: 0, rel: 1e-2 };
