/**
 * The training loop: the tutorial's recipe (AdamW, linear schedule, clipping, epochs, evaluation)
 * over the WebGPU engine, with gradient accumulation, exact resume and atomic checkpoints.
 *
 * One command encoder per micro-batch (forward + backward, plus the optimizer on the last one);
 * the loss and gradient norm come back through a deferred readback, one step behind.
 * @module
 */

import type { Dispatch, Gpu } from "../kernels/runtime.ts";
import { type BertConfig, numLabels } from "./config.ts";
import { BertEngine, type Precision, PRECISIONS } from "./model.ts";
import { GradScaler, overflowed } from "./grad_scaler.ts";
import { AdamW } from "./optimizer.ts";
import { learningRateAt, LR_SCHEDULERS, type LrScheduler } from "./schedule.ts";
import type { Weights } from "./weights.ts";
import { ReadbackRing } from "./readback.ts";
import type { Dataset } from "./data/dataset.ts";
import { type Batch, type BatchTokenizer, makeBatches } from "./data/batches.ts";
import { accuracy, f1Score, matthewsCorrcoef, pearson, spearman } from "./data/metrics.ts";

/** The recipe. Defaults are the tutorial's (see {@linkcode DEFAULT_TRAIN_OPTIONS}). */
export interface TrainOptions {
  /** Passes over the training data. @default 4 */
  epochs: number;
  /** Examples per micro-batch. @default 32 */
  batchSize: number;
  /** Tokens per sequence, [CLS]/[SEP] included; longer texts are truncated. @default 64 */
  maxLength: number;
  /** Peak AdamW learning rate (linear decay to 0 after warmup). @default 2e-5 */
  lr: number;
  /** AdamW epsilon. @default 1e-8 */
  eps: number;
  /** AdamW decoupled weight decay (not on biases and LayerNorm weights). @default 0 */
  weightDecay: number;
  /** Warmup steps; `warmupRatio` is used when this is undefined. */
  warmupSteps?: number;
  /** Warmup as a fraction of all steps, in [0, 1]. */
  warmupRatio?: number;
  /** 0 turns clipping off. */
  maxGradNorm: number;
  /** Seeds shuffling, dropout and a new classifier head. @default 42 */
  seed: number;
  /** Shuffle the training data every epoch (seeded). @default true */
  shuffle: boolean;
  /** Pad each batch to its longest sequence instead of `maxLength`. */
  dynamicPadding: boolean;
  /** Micro-batches per optimizer step. */
  gradAccum: number;
  /** Learning-rate schedule after warmup, as transformers defines it. @default "linear" */
  lrScheduler?: LrScheduler;
  /** Examples per evaluation batch. @default batchSize */
  evalBatchSize?: number;
  /** Also evaluate the validation data every this many optimizer steps (it is evaluated every epoch). */
  evalSteps?: number;
  /** Also write a checkpoint every this many optimizer steps (one is written every epoch). */
  saveSteps?: number;
  /**
   * "f16": mixed precision (f16 activations, f32 master weights and optimizer, dynamic loss scaling as
   * torch.cuda.amp.GradScaler; needs the adapter's shader-f16). @default "f32"
   */
  precision?: Precision;
  /**
   * Keep only each encoder layer's input and recompute the layer in the backward (transformers'
   * gradient_checkpointing): far less activation memory for about one more forward per step. @default false
   */
  gradientCheckpointing?: boolean;
}

/**
 * The BERT fine-tuning tutorial's recipe: 4 epochs, batch 32, 64 tokens, AdamW at 2e-5 with eps 1e-8
 * and no weight decay, no warmup, clipping at 1.0, seed 42, shuffled, fixed padding.
 * @example
 * ```ts
 * import { DEFAULT_TRAIN_OPTIONS } from "./trainer.ts";
 * console.log(DEFAULT_TRAIN_OPTIONS.lr, DEFAULT_TRAIN_OPTIONS.batchSize); // 0.00002 32
 * ```
 */
export const DEFAULT_TRAIN_OPTIONS: TrainOptions = {
  epochs: 4,
  batchSize: 32,
  maxLength: 64,
  lr: 2e-5,
  eps: 1e-8,
  weightDecay: 0,
  warmupSteps: 0,
  maxGradNorm: 1.0,
  seed: 42,
  shuffle: true,
  dynamicPadding: false,
  gradAccum: 1,
};

/** One optimizer step as Hugging Face's Trainer logs it. */
export interface StepLog {
  /** Optimizer steps taken, this one included (1-based). */
  step: number;
  /** Fractional epoch reached after this step (1.5 is halfway through the second). */
  epoch: number;
  /** Mean training loss of this step's batches. */
  loss: number;
  /** The rate this step used. */
  learning_rate: number;
  /** Global gradient norm before clipping (not finite on a skipped f16 step). */
  grad_norm: number;
  /** Mixed precision only: the loss scale this step's backward used. */
  loss_scale?: number;
  /** Mixed precision only: true when a non-finite gradient skipped the update (the scale halves). */
  skipped?: boolean;
}

/** Evaluation figures. */
export interface EvalResult {
  /** Mean loss (cross-entropy, or mean squared error for regression). */
  loss: number;
  /** Fraction of correct predictions (NaN for regression). */
  accuracy: number;
  /** Matthews correlation coefficient (NaN for regression). */
  mcc: number;
  /** F1: binary for two labels (label 1 positive), else macro (NaN for regression). */
  f1: number;
  /** Regression only: Pearson and Spearman correlation of predictions and targets. */
  pearson?: number;
  spearman?: number;
  /** Examples evaluated. */
  examples: number;
  /** Predicted class ids (or regression values). */
  predictions: number[];
}

/** One epoch's figures. */
export interface EpochLog {
  /** The epoch just finished (1-based). */
  epoch: number;
  /** Mean training loss over its steps. */
  train_loss: number;
  /** Wall time of its training (validation excluded). */
  seconds: number;
  /** Figures on the validation data, when there is some. */
  validation?: Omit<EvalResult, "predictions">;
}

/** Where the loop stands: enough to resume exactly. */
export interface TrainPosition {
  /** Optimizer steps taken. */
  step: number;
  /** Epoch to continue in (0-based). */
  epoch: number;
  /** Micro-batches of `epoch` already consumed. */
  batchInEpoch: number;
}

/** Where a step stands, for progress displays. */
export interface StepProgress {
  /** Optimizer steps done in this epoch (1-based). */
  epochStep: number;
  epochSteps: number;
  totalSteps: number;
  /** Training examples this step consumed. */
  samples: number;
}

/** Hooks for progress, checkpoints and interruption. */
export interface TrainCallbacks {
  onStep?(log: StepLog, progress: StepProgress): void;
  /** After every evaluation of the validation data (every `evalSteps` and at each epoch end). */
  onEvaluate?(evaluation: { step: number; epoch: number; validation: Omit<EvalResult, "predictions"> }):
    | void
    | Promise<void>;
  onEpoch?(log: EpochLog): void | Promise<void>;
  /** Called at every epoch end (and on a stop request) with the position to resume from. */
  onCheckpoint?(position: TrainPosition): void | Promise<void>;
  /** Polled between steps: return true to stop cleanly (Ctrl-C). */
  shouldStop?(): boolean;
}

/**
 * Thrown when the loss becomes NaN or infinite (the learning rate is too high, or the data is bad).
 * @example
 * ```ts
 * import { NonFiniteLossError } from "./trainer.ts";
 * const error = new NonFiniteLossError(12, NaN);
 * console.log(error.name, error.step); // NonFiniteLossError 12
 * ```
 */
export class NonFiniteLossError extends Error {
  /**
   * An error naming the step and the loss.
   * @param step The optimizer step whose loss was not finite.
   * @param loss The loss it had (NaN or an infinity).
   */
  constructor(readonly step: number, readonly loss: number) {
    super(
      `The training loss became ${loss} at step ${step}: lower --lr or check the data; the last good checkpoint is kept`,
    );
    this.name = "NonFiniteLossError";
  }
}

/** Validates a recipe and names the flag at fault. */
export function validateTrainOptions(o: TrainOptions, config?: BertConfig): void {
  const int = (v: number, flag: string, min: number) => {
    if (!Number.isInteger(v) || v < min) {
      throw new RangeError(`--${flag} must be an integer >= ${min}, got ${v}`);
    }
  };
  int(o.epochs, "epochs", 1);
  int(o.batchSize, "batch-size", 1);
  int(o.maxLength, "max-length", 2);
  int(o.gradAccum, "grad-accum", 1);
  int(o.seed, "seed", 0);
  if (config && o.maxLength > config.max_position_embeddings) {
    throw new RangeError(
      `--max-length ${o.maxLength} exceeds the model's max_position_embeddings ${config.max_position_embeddings}`,
    );
  }
  if (!(o.lr > 0) || !Number.isFinite(o.lr)) {
    throw new RangeError(`--lr must be a positive number, got ${o.lr}`);
  }
  if (!(o.eps >= 0)) throw new RangeError(`--eps must be >= 0, got ${o.eps}`);
  if (!(o.weightDecay >= 0)) throw new RangeError(`--weight-decay must be >= 0, got ${o.weightDecay}`);
  if (!(o.maxGradNorm >= 0)) throw new RangeError(`--max-grad-norm must be >= 0, got ${o.maxGradNorm}`);
  if (o.warmupSteps !== undefined) int(o.warmupSteps, "warmup-steps", 0);
  if (o.warmupRatio !== undefined && !(o.warmupRatio >= 0 && o.warmupRatio <= 1)) {
    throw new RangeError(`--warmup-ratio must be in [0, 1], got ${o.warmupRatio}`);
  }
  if (o.evalBatchSize !== undefined) int(o.evalBatchSize, "eval-batch-size", 1);
  if (o.evalSteps !== undefined) int(o.evalSteps, "eval-steps", 1);
  if (o.saveSteps !== undefined) int(o.saveSteps, "save-steps", 1);
  if (o.precision !== undefined && !PRECISIONS.includes(o.precision)) {
    throw new RangeError(`--precision must be one of ${PRECISIONS.join(", ")}, got ${o.precision}`);
  }
  if (o.lrScheduler !== undefined && !LR_SCHEDULERS.includes(o.lrScheduler)) {
    throw new RangeError(`--lr-scheduler must be one of ${LR_SCHEDULERS.join(", ")}, got ${o.lrScheduler}`);
  }
}

/** A 32-bit mix of (seed, counter): per-micro-batch dropout seeds that survive a resume. */
export function stepSeed(seed: number, counter: number): number {
  let h = (seed ^ Math.imul(counter + 1, 0x9e3779b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** Fine-tunes a model on the GPU. */
export class Trainer {
  readonly gpu: Gpu;
  readonly config: BertConfig;
  readonly options: TrainOptions;
  readonly engine: BertEngine;
  readonly optimizer: AdamW;
  readonly tokenizer: BatchTokenizer;
  /** The loss scaler (precision f16), else null. */
  readonly scaler: GradScaler | null;
  #ring: ReadbackRing;
  #evalBatches = new WeakMap<Dataset, Batch[]>();

  constructor(
    gpu: Gpu,
    config: BertConfig,
    weights: Weights,
    tokenizer: BatchTokenizer,
    options: TrainOptions,
  ) {
    validateTrainOptions(options, config);
    this.gpu = gpu;
    this.config = config;
    this.options = options;
    this.tokenizer = tokenizer;
    const maxBatch = Math.max(options.batchSize, options.evalBatchSize ?? 0);
    this.engine = BertEngine.create(gpu, config, weights, {
      maxBatch,
      maxSeqLen: options.maxLength,
      precision: options.precision ?? "f32",
      recompute: options.gradientCheckpointing ?? false,
    });
    const lossScale = this.engine.lossScale;
    this.scaler = lossScale ? new GradScaler(gpu, lossScale) : null;
    this.optimizer = new AdamW(gpu, this.engine.parameters, this.engine.gradients, {
      eps: options.eps,
      weightDecay: options.weightDecay,
      maxGradNorm: options.maxGradNorm,
      ...(lossScale ? { lossScale } : {}),
    });
    this.#ring = new ReadbackRing(gpu, 4 + maxBatch * numLabels(config));
  }

  /** The batches of one epoch (deterministic for the seed and epoch). */
  epochBatches(data: Dataset, epoch: number): Batch[] {
    const o = this.options;
    return makeBatches(data, this.tokenizer, {
      batchSize: o.batchSize,
      maxLength: o.maxLength,
      padding: o.dynamicPadding ? "longest" : "max_length",
      shuffle: o.shuffle,
      seed: o.seed,
      epoch,
    });
  }

  /** Optimizer steps in one epoch of `n` examples. */
  stepsPerEpoch(n: number): number {
    return Math.ceil(Math.ceil(n / this.options.batchSize) / this.options.gradAccum);
  }

  /**
   * Trains from `start` (default: the beginning) to the last epoch. Returns the step logs and the
   * epoch logs produced by this call.
   */
  async fit(
    train: Dataset,
    validation: Dataset | null,
    callbacks: TrainCallbacks = {},
    start: TrainPosition = { step: 0, epoch: 0, batchInEpoch: 0 },
  ): Promise<{ steps: StepLog[]; epochs: EpochLog[]; stopped: TrainPosition | null }> {
    const o = this.options;
    if (train.examples.length === 0) throw new RangeError(`Training data "${train.name}" is empty`);
    const epochSteps = this.stepsPerEpoch(train.examples.length);
    const totalSteps = epochSteps * o.epochs;
    const warmup = o.warmupSteps ?? Math.ceil((o.warmupRatio ?? 0) * totalSteps);
    const steps: StepLog[] = [];
    const epochs: EpochLog[] = [];
    let step = start.step;
    for (let epoch = start.epoch; epoch < o.epochs; epoch++) {
      const t0 = performance.now();
      const batches = this.epochBatches(train, epoch);
      let lossSum = 0;
      let lossCount = 0;
      let pending:
        | {
          log: StepLog;
          read: () => Promise<Float32Array>;
          micro: number;
          epochStep: number;
          samples: number;
        }
        | null = null;
      const settle = async () => {
        if (!pending) return;
        const values = await pending.read();
        const log = pending.log;
        log.loss = values[0] / pending.micro;
        log.grad_norm = values[1];
        if (this.scaler) {
          log.skipped = values[2] === 1;
          log.loss_scale = values[3];
        }
        if (!Number.isFinite(log.loss)) throw new NonFiniteLossError(log.step, log.loss);
        steps.push(log);
        lossSum += log.loss;
        lossCount++;
        callbacks.onStep?.(log, {
          epochStep: pending.epochStep,
          epochSteps,
          totalSteps,
          samples: pending.samples,
        });
        pending = null;
      };
      let b = epoch === start.epoch ? start.batchInEpoch : 0;
      while (b < batches.length) {
        if (callbacks.shouldStop?.()) {
          await settle();
          const position = { step, epoch, batchInEpoch: b };
          await callbacks.onCheckpoint?.(position);
          return { steps, epochs, stopped: position };
        }
        const group = batches.slice(b, b + o.gradAccum);
        // A skipped f16 step does not advance the schedule (as accelerate's scheduler after GradScaler).
        const lr = learningRateAt(step - (this.scaler?.skipped ?? 0), {
          lr: o.lr,
          warmupSteps: warmup,
          totalSteps,
          scheduler: o.lrScheduler,
        });
        const read = this.scaler ? await this.#stepMixed(group, lr, this.scaler) : this.#step(group, lr);
        b += group.length;
        await settle();
        pending = {
          log: {
            step: step + 1,
            epoch: epoch + b / batches.length,
            loss: NaN,
            learning_rate: lr,
            grad_norm: NaN,
          },
          read,
          micro: group.length,
          epochStep: Math.ceil(b / o.gradAccum),
          samples: group.reduce((n, g) => n + g.batchSize, 0),
        };
        step++;
        // Mid-epoch evaluation and checkpoints (the epoch end does both anyway).
        const evalNow = o.evalSteps && step % o.evalSteps === 0 && validation?.examples.length;
        const saveNow = o.saveSteps && step % o.saveSteps === 0;
        if (b < batches.length && (evalNow || saveNow)) {
          await settle();
          if (evalNow) {
            const { predictions: _, ...v } = await this.evaluate(validation!);
            await callbacks.onEvaluate?.({ step, epoch: epoch + b / batches.length, validation: v });
          }
          if (saveNow) await callbacks.onCheckpoint?.({ step, epoch, batchInEpoch: b });
        }
      }
      await settle();
      const log: EpochLog = {
        epoch: epoch + 1,
        train_loss: lossCount ? lossSum / lossCount : NaN,
        seconds: (performance.now() - t0) / 1000,
      };
      if (validation && validation.examples.length) {
        const { predictions: _, ...v } = await this.evaluate(validation);
        log.validation = v;
        await callbacks.onEvaluate?.({ step, epoch: epoch + 1, validation: v });
      }
      epochs.push(log);
      await callbacks.onEpoch?.(log);
      await callbacks.onCheckpoint?.({ step, epoch: epoch + 1, batchInEpoch: 0 });
    }
    return { steps, epochs, stopped: null };
  }

  /** One optimizer step over micro-batches; returns the deferred [loss sum, grad norm] readback. */
  #step(group: Batch[], lr: number): () => Promise<Float32Array> {
    return this.#submit(group, () => this.optimizer.next(lr), 1);
  }

  /**
   * Submits a step's micro-batches (one encoder each: forward and backward, gradients cleared before the
   * first) with `last()`'s dispatches after the last one, then copies the loss and `normValues` values of
   * the norm result for a deferred read.
   */
  #submit(group: Batch[], last: () => Dispatch[], normValues: number): () => Promise<Float32Array> {
    const { gpu, engine } = this;
    const accum = this.options.gradAccum;
    // Micro-batches seen so far (skipped f16 steps included): per-micro-batch dropout seeds survive a resume.
    const counter = (this.optimizer.step + (this.scaler?.skipped ?? 0)) * accum;
    let read: (() => Promise<Float32Array>) | null = null;
    group.forEach((batch, i) => {
      engine.setBatch(batch);
      engine.setDropoutSeed(stepSeed(this.options.seed, counter + i));
      // The loss buffer sums the micro-batch means; the host divides by their count.
      const plan = engine.plan(batch.batchSize, batch.seqLen, {
        gradScale: 1 / (batch.batchSize * accum),
        accumulateLoss: i > 0,
      });
      const encoder = gpu.device.createCommandEncoder();
      const dispatches = [...(i === 0 ? engine.clearGradients() : []), ...plan.forward, ...plan.backward];
      const isLast = i === group.length - 1;
      if (isLast) dispatches.push(...last());
      gpu.encode(encoder, dispatches);
      if (isLast) {
        read = this.#ring.copy(encoder, [[engine.loss, 0, 1], [this.optimizer.normResult, 0, normValues]]);
      }
      gpu.device.queue.submit([encoder.finish()]);
    });
    return read!;
  }

  /**
   * One mixed-precision step: forward, backward and the gradient norm, then a readback (one host sync
   * per step, as GradScaler's found_inf check): a non-finite gradient skips the AdamW update and backs
   * the scale off. Returns [loss sum, grad norm, skipped, scale used].
   */
  async #stepMixed(group: Batch[], lr: number, scaler: GradScaler): Promise<() => Promise<Float32Array>> {
    const scale = scaler.scale;
    const read = await this.#submit(group, () => this.optimizer.norm(), 3)(); // [loss, total, clip / S, foundInf]
    const skip = scaler.update(overflowed(read.subarray(1)));
    if (!skip) this.gpu.run(this.optimizer.update(lr));
    const values = Float32Array.of(read[0], read[1], skip ? 1 : 0, scale);
    return () => Promise.resolve(values);
  }

  /**
   * Loss, accuracy, MCC and F1 (binary for two labels, else macro) on a data set; dropout is off.
   * Each Dataset object is tokenized once per Trainer: pass a new object after changing its examples.
   */
  async evaluate(data: Dataset): Promise<EvalResult> {
    const o = this.options;
    const L = numLabels(this.config);
    // The same validation set is evaluated every epoch: tokenize it once.
    let batches = this.#evalBatches.get(data);
    if (!batches) {
      batches = makeBatches(data, this.tokenizer, {
        batchSize: o.evalBatchSize ?? o.batchSize,
        maxLength: o.maxLength,
        padding: o.dynamicPadding ? "longest" : "max_length",
        shuffle: false,
      });
      this.#evalBatches.set(data, batches);
    }
    const predictions: number[] = [];
    const gold: number[] = [];
    let lossSum = 0;
    for (const batch of batches) {
      const values = await this.#forward(batch);
      lossSum += values[0] * batch.batchSize;
      for (let r = 0; r < batch.batchSize; r++) {
        const row = values.subarray(1 + r * L, 1 + (r + 1) * L);
        predictions.push(L === 1 ? row[0] : argmax(row));
        gold.push(batch.labels[r]);
      }
    }
    const n = predictions.length;
    const classification = L > 1;
    return {
      loss: n ? lossSum / n : NaN,
      accuracy: classification ? accuracy(predictions, gold) : NaN,
      mcc: classification ? matthewsCorrcoef(predictions, gold) : NaN,
      f1: classification ? f1Score(predictions, gold, { average: L === 2 ? "binary" : "macro" }) : NaN,
      ...(classification || n === 0
        ? {}
        : { pearson: pearson(predictions, gold), spearman: spearman(predictions, gold) }),
      examples: n,
      predictions,
    };
  }

  /** Forward only (no dropout): [loss, logits...] for one batch. */
  async #forward(batch: Batch): Promise<Float32Array> {
    const { gpu, engine } = this;
    engine.setBatch(batch);
    const plan = engine.inferencePlan(batch.batchSize, batch.seqLen);
    const encoder = gpu.device.createCommandEncoder();
    gpu.encode(encoder, plan.forward);
    const L = numLabels(this.config);
    const read = this.#ring.copy(encoder, [[engine.loss, 0, 1], [engine.logits, 0, batch.batchSize * L]]);
    gpu.device.queue.submit([encoder.finish()]);
    return await read();
  }

  /** Current weights (checkpoints). */
  async weights(): Promise<Weights> {
    return await this.engine.readParams();
  }
}

function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}
