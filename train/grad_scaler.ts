/**
 * Dynamic loss scaling for mixed precision, as torch.cuda.amp.GradScaler (torch 1.13) does it: the
 * loss gradient is multiplied by the scale S so small f16 activation gradients do not flush to zero;
 * the gradient norm pass divides by S (kernels/grad_norm.ts) and flags any non-finite gradient; a step
 * with one is skipped (no AdamW update, the step counter does not advance) and S halves; after
 * `growthInterval` good steps in a row S doubles.
 * @module
 */

import type { Gpu } from "../kernels/runtime.ts";

/** GradScaler's settings (torch's defaults). */
export interface GradScalerOptions {
  /** @default 65536 (2^16) */
  initScale?: number;
  /** @default 2 */
  growthFactor?: number;
  /** @default 0.5 */
  backoffFactor?: number;
  /** Good steps in a row before the scale grows. @default 2000 */
  growthInterval?: number;
}

/** What a checkpoint keeps of the scaler (torch's `GradScaler.state_dict()` plus the skip count). */
export interface GradScalerState {
  scale: number;
  growthTracker: number;
  /** Optimizer steps skipped so far for a non-finite gradient. */
  skipped: number;
}

/**
 * Whether a step's gradient-norm result (`AdamW.normResult`: [total, clip / S, foundInf]) says a gradient
 * was not finite: the step is skipped.
 */
export function overflowed(normResult: ArrayLike<number>): boolean {
  return normResult[2] !== 0 || !Number.isFinite(normResult[0]);
}

/** The loss scale and its update rule; the scale lives in a one-float GPU buffer kernels read. */
export class GradScaler {
  readonly options: Required<GradScalerOptions>;
  /** f32[1]: the current scale S (bound by the loss kernel and the gradient-norm pass). */
  readonly buffer: GPUBuffer;
  #gpu: Gpu;
  #state: GradScalerState;

  constructor(gpu: Gpu, buffer: GPUBuffer, options: GradScalerOptions = {}) {
    this.options = {
      initScale: options.initScale ?? 65536,
      growthFactor: options.growthFactor ?? 2,
      backoffFactor: options.backoffFactor ?? 0.5,
      growthInterval: options.growthInterval ?? 2000,
    };
    const o = this.options;
    if (!(o.initScale > 0) || !Number.isFinite(o.initScale)) {
      throw new RangeError(`GradScaler initScale must be a positive number, got ${o.initScale}`);
    }
    if (!(o.growthFactor > 1)) {
      throw new RangeError(`GradScaler growthFactor must be > 1, got ${o.growthFactor}`);
    }
    if (!(o.backoffFactor > 0 && o.backoffFactor < 1)) {
      throw new RangeError(`GradScaler backoffFactor must be in (0, 1), got ${o.backoffFactor}`);
    }
    if (!Number.isInteger(o.growthInterval) || o.growthInterval < 1) {
      throw new RangeError(`GradScaler growthInterval must be an integer >= 1, got ${o.growthInterval}`);
    }
    this.#gpu = gpu;
    this.buffer = buffer;
    this.#state = { scale: o.initScale, growthTracker: 0, skipped: 0 };
    this.#write();
  }

  /** The scale the next step's backward uses. */
  get scale(): number {
    return this.#state.scale;
  }

  /** Steps skipped so far. */
  get skipped(): number {
    return this.#state.skipped;
  }

  /**
   * After a step's gradient norm is known: backs off on a non-finite gradient (the caller skips the
   * optimizer update), else counts a good step and grows the scale every `growthInterval` of them.
   * @returns true when the step must be skipped
   */
  update(foundInf: boolean): boolean {
    const s = this.#state;
    const o = this.options;
    if (foundInf) {
      // torch keeps the scale a float32: Math.fround matches its rounding of scale * factor.
      s.scale = Math.fround(s.scale * o.backoffFactor);
      s.growthTracker = 0;
      s.skipped += 1;
    } else if (++s.growthTracker === o.growthInterval) {
      s.scale = Math.fround(s.scale * o.growthFactor);
      s.growthTracker = 0;
    }
    this.#write();
    return foundInf;
  }

  /** The state a checkpoint keeps. */
  state(): GradScalerState {
    return { ...this.#state };
  }

  /** Restores a checkpoint's state (resume). */
  load(state: GradScalerState): void {
    if (!(state.scale > 0) || !Number.isInteger(state.growthTracker) || !Number.isInteger(state.skipped)) {
      throw new RangeError(
        `Loss scaler state ${JSON.stringify(state)} is not valid: resume from another checkpoint`,
      );
    }
    this.#state = { ...state };
    this.#write();
  }

  #write(): void {
    this.#gpu.write(this.buffer, new Float32Array([this.#state.scale, 0, 0, 0]));
  }
}
