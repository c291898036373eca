/**
 * The optimizer step on the GPU: global gradient norm (pre-clip, kept for logging), torch's clip
 * coefficient, and AdamW with the tutorial's two parameter groups. Recorded once; each step only
 * rewrites the small hyper-parameter buffer.
 * @module
 */

import type { Dispatch, Gpu } from "../kernels/runtime.ts";
import { gradNorm, gradNormScratchBytes } from "../kernels/grad_norm.ts";
import { ADAM_HYPER_BYTES, adamwStep, writeAdamHyper } from "../kernels/adamw.ts";
import { fill } from "../kernels/fill.ts";
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
}

/** The optimizer state of one parameter, for checkpoints. */
export interface MomentState {
  expAvg: Float32Array;
  expAvgSq: Float32Array;
}

/** AdamW over named parameter/gradient buffers of equal sizes. */
export class AdamW {
  readonly gpu: Gpu;
  readonly options: Required<AdamWOptions>;
  /** [pre-clip total norm, clip coefficient] of the last step (f32[2]). */
  readonly normResult: GPUBuffer;
  /** Optimizer steps taken (torch's state["step"]). */
  step = 0;
  #names: string[];
  #sizes: Map<string, number>;
  #m = new Map<string, GPUBuffer>();
  #v = new Map<string, GPUBuffer>();
  #hyper: GPUBuffer;
  #dispatches: Dispatch[];

  constructor(
    gpu: Gpu,
    params: Map<string, GPUBuffer>,
    grads: Map<string, GPUBuffer>,
    sizes: Map<string, number>,
    options: AdamWOptions = {},
  ) {
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
    this.#names = [...params.keys()];
    this.#sizes = sizes;
    this.#hyper = gpu.buffer("adam.hyper", ADAM_HYPER_BYTES);
    this.normResult = gpu.buffer("grad.norm", 16);
    const list = this.#names.map((name) => ({ buffer: grads.get(name)!, n: sizes.get(name)! }));
    const scratch = gpu.buffer("grad.norm.scratch", gradNormScratchBytes(list.map((g) => g.n)));
    this.#dispatches = gradNorm(gpu, {
      grads: list,
      result: this.normResult,
      maxNorm: o.maxGradNorm,
      scratch,
    });
    for (const name of this.#names) {
      const n = sizes.get(name)!;
      const m = gpu.buffer(`adam.m:${name}`, n * 4);
      const v = gpu.buffer(`adam.v:${name}`, n * 4);
      gpu.run([fill(gpu, m, n), fill(gpu, v, n)]);
      this.#m.set(name, m);
      this.#v.set(name, v);
      this.#dispatches.push(adamwStep(gpu, {
        param: params.get(name)!,
        grad: grads.get(name)!,
        expAvg: m,
        expAvgSq: v,
        n,
        weightDecay: usesWeightDecay(name) ? o.weightDecay : 0,
        hyper: this.#hyper,
        clip: this.normResult,
      }));
    }
  }

  /**
   * Prepares the next step at learning rate `lr` and returns its dispatches (norm, clip, update),
   * to encode after the backward of the step's last micro-batch.
   */
  next(lr: number): Dispatch[] {
    this.step += 1;
    const o = this.options;
    writeAdamHyper(this.gpu, this.#hyper, {
      lr,
      beta1: o.beta1,
      beta2: o.beta2,
      eps: o.eps,
      step: this.step,
    });
    return this.#dispatches;
  }

  /** Reads the moments back (checkpoints). */
  async readState(): Promise<Map<string, MomentState>> {
    const items = this.#names.flatMap((name) => {
      const count = this.#sizes.get(name)!;
      return [{ buffer: this.#m.get(name)!, count }, { buffer: this.#v.get(name)!, count }];
    });
    const values = await this.gpu.readManyF32(items);
    return new Map(
      this.#names.map((name, i) => [name, { expAvg: values[2 * i], expAvgSq: values[2 * i + 1] }]),
    );
  }

  /** Restores moments and the step count (resume). */
  writeState(state: Map<string, MomentState>, step: number): void {
    for (const name of this.#names) {
      const s = state.get(name);
      if (!s) throw new RangeError(`Optimizer state is missing parameter "${name}"`);
      const n = this.#sizes.get(name)!;
      if (s.expAvg.length !== n || s.expAvgSq.length !== n) {
        throw new RangeError(`Optimizer state for "${name}" has ${s.expAvg.length} values, expected ${n}`);
      }
      this.gpu.write(this.#m.get(name)!, s.expAvg);
      this.gpu.write(this.#v.get(name)!, s.expAvgSq);
    }
    this.step = step;
  }
}
