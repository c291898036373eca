/**
 * The optimizer step on the GPU: global gradient norm (pre-clip, kept for logging), torch's clip
 * coefficient, and AdamW with the tutorial's two parameter groups, over the flat arenas of
 * train/flat.ts: a constant number of dispatches per step (per arena window: one gradient-norm
 * partial pass and one AdamW pass, plus one norm total), not one per tensor. Recorded once; each
 * step only rewrites the small hyper-parameter buffer.
 * @module
 */

import type { Dispatch, Gpu } from "../kernels/runtime.ts";
import { gradNorm, gradNormScratchBytes } from "../kernels/grad_norm.ts";
import { ADAM_HYPER_BYTES, adamwFlatStep, adamwSegmentTable, writeAdamHyper } from "../kernels/adamw.ts";
import { FlatTensors } from "./flat.ts";
import { FLAT_ALIGN_BYTES, type FlatLayout } from "./params.ts";
import { usesWeightDecay } from "./schedule.ts";

/** AdamW hyper-parameters (the tutorial's defaults: lr 2e-5, eps 1e-8, weight decay 0). */
export interface AdamWOptions {
  /** @default 0.9 */
  beta1?: number;
  /** @default 0.999 */
  beta2?: number;
  /** @default 1e-8 */
  eps?: number;
  /** Applied to every parameter except biases and LayerNorm weights. @default 0 */
  weightDecay?: number;
  /** Global L2 norm to clip gradients to; 0 or Infinity turns clipping off. @default 1.0 */
  maxGradNorm?: number;
  /**
   * Mixed precision: the f32[1] loss-scale buffer (train/grad_scaler.ts). The gradients hold S·g; the
   * norm pass divides by S, flags non-finite gradients in `normResult[2]`, and AdamW unscales as it reads.
   */
  lossScale?: GPUBuffer;
}

/** The optimizer state of one parameter, for checkpoints. */
export interface MomentState {
  expAvg: Float32Array;
  expAvgSq: Float32Array;
}

/** AdamW over a parameter arena and its gradient arena (same layout). */
export class AdamW {
  readonly gpu: Gpu;
  readonly options: Required<Omit<AdamWOptions, "lossScale">>;
  /**
   * [pre-clip total norm, clip coefficient, found_inf] of the last step (f32[4]); with a loss scale the
   * coefficient includes 1/S and found_inf is 1 when a gradient was not finite (0 without a scale).
   */
  readonly normResult: GPUBuffer;
  /** Optimizer steps taken (torch's state["step"]). */
  step = 0;
  /** First moments (exp_avg), one arena. */
  readonly expAvg: FlatTensors;
  /** Second moments (exp_avg_sq), one arena. */
  readonly expAvgSq: FlatTensors;
  #hyper: GPUBuffer;
  #norm: Dispatch[];
  #update: Dispatch[] = [];

  constructor(gpu: Gpu, params: FlatTensors, grads: FlatTensors, options: AdamWOptions = {}) {
    this.gpu = gpu;
    this.options = {
      beta1: options.beta1 ?? 0.9,
      beta2: options.beta2 ?? 0.999,
      eps: options.eps ?? 1e-8,
      weightDecay: options.weightDecay ?? 0,
      maxGradNorm: options.maxGradNorm ?? 1.0,
    };
    const o = this.options;
    if (!(o.weightDecay >= 0)) throw new RangeError(`Weight decay must be >= 0, got ${o.weightDecay}`);
    if (!(o.eps >= 0)) throw new RangeError(`AdamW eps must be >= 0, got ${o.eps}`);
    if (!(o.maxGradNorm >= 0)) throw new RangeError(`Max gradient norm must be >= 0, got ${o.maxGradNorm}`);
    if (params.layout !== grads.layout || params.windows.length !== grads.windows.length) {
      throw new RangeError("AdamW: parameters and gradients must share one flat layout and its windows");
    }
    const layout = params.layout;
    this.#hyper = gpu.buffer("adam.hyper", ADAM_HYPER_BYTES);
    this.normResult = gpu.buffer("grad.norm", 16);
    // zeroed at creation, as torch's state; the same windows as the gradients
    this.expAvg = new FlatTensors(gpu, layout, "adam.m", grads.windowBytes);
    this.expAvgSq = new FlatTensors(gpu, layout, "adam.v", grads.windowBytes);
    const windows = grads.windows;
    const sizes = windows.map((w) => w.length);
    const scratch = gpu.buffer("grad.norm.scratch", gradNormScratchBytes(sizes));
    this.#norm = gradNorm(gpu, {
      grads: windows.map((w) => ({ buffer: w.view, n: w.length })),
      result: this.normResult,
      maxNorm: o.maxGradNorm,
      scratch,
      ...(options.lossScale ? { scale: options.lossScale } : {}),
    });
    const segments = decaySegments(layout);
    const table = gpu.upload("adam.segments", adamwSegmentTable(segments, layout.total));
    windows.forEach((w, i) => {
      this.#update.push(adamwFlatStep(gpu, {
        param: params.windows[i].view,
        grad: w.view,
        expAvg: this.expAvg.windows[i].view,
        expAvgSq: this.expAvgSq.windows[i].view,
        table,
        first: w.first,
        n: w.length,
        weightDecay: o.weightDecay,
        hyper: this.#hyper,
        clip: this.normResult,
      }));
    });
  }

  /**
   * Prepares the next step at learning rate `lr` and returns its dispatches (norm, clip, update),
   * to encode after the backward of the step's last micro-batch.
   */
  next(lr: number): Dispatch[] {
    return [...this.#norm, ...this.update(lr)];
  }

  /**
   * The gradient-norm dispatches alone (mixed precision: read `normResult` back to decide whether the
   * step is skipped before {@linkcode AdamW.update}).
   */
  norm(): Dispatch[] {
    return this.#norm;
  }

  /** Counts a step at `lr` and returns the update dispatches (after {@linkcode AdamW.norm} ran). */
  update(lr: number): Dispatch[] {
    this.step += 1;
    const o = this.options;
    writeAdamHyper(this.gpu, this.#hyper, {
      lr,
      beta1: o.beta1,
      beta2: o.beta2,
      eps: o.eps,
      step: this.step,
    });
    return this.#update;
  }

  /** Reads the moments back (checkpoints). */
  async readState(): Promise<Map<string, MomentState>> {
    const m = await this.expAvg.read();
    const v = await this.expAvgSq.read();
    return new Map([...m].map(([name, expAvg]) => [name, { expAvg, expAvgSq: v.get(name)! }]));
  }

  /** Restores moments and the step count (resume). */
  writeState(state: Map<string, MomentState>, step: number): void {
    for (const { name, length } of this.expAvg.layout.entries) {
      const s = state.get(name);
      if (!s) throw new RangeError(`Optimizer state is missing parameter "${name}"`);
      if (s.expAvg.length !== length || s.expAvgSq.length !== length) {
        throw new RangeError(
          `Optimizer state for "${name}" has ${s.expAvg.length} values, expected ${length}`,
        );
      }
    }
    for (const { name } of this.expAvg.layout.entries) {
      const s = state.get(name)!;
      this.gpu.write(this.expAvg.views.get(name)!, s.expAvg);
      this.gpu.write(this.expAvgSq.views.get(name)!, s.expAvgSq);
    }
    this.step = step;
  }
}

/**
 * The arena as AdamW's segment table takes it: runs of tensors in one weight-decay group, by offset; a
 * pack member at an unaligned offset merges into the run before it.
 * @throws {RangeError} when a pack mixes decay and no-decay tensors (its later members would start unaligned).
 */
export function decaySegments(layout: FlatLayout): { offset: number; length: number; decay: boolean }[] {
  const sorted = layout.entries.map((e) => ({ ...e, decay: usesWeightDecay(e.name) }))
    .sort((a, b) => a.offset - b.offset);
  const out: { offset: number; length: number; decay: boolean; name: string }[] = [];
  for (const e of sorted) {
    const last = out.at(-1);
    if (last && e.offset % (FLAT_ALIGN_BYTES / 4) !== 0 && last.offset + last.length === e.offset) {
      if (last.decay !== e.decay) {
        throw new RangeError(
          `Parameters "${last.name}" and "${e.name}" share a pack but not a weight-decay group: pack only tensors of one group`,
        );
      }
      last.length += e.length;
    } else out.push({ ...e });
  }
  return out.map(({ offset, length, decay }) => ({ offset, length, decay }));
}
