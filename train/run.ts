/**
 * A whole training run into a run folder: training_args.json, a checkpoint after every epoch
 * (atomic, with a `latest.json` pointer written last), metrics.json, the loss curve SVG, test-set
 * evaluation, and the final Hugging Face model folder. `resume` continues from the last checkpoint.
 * @module
 */

import type { GradScalerState } from "./grad_scaler.ts";
import { basename, join } from "node:path";
import type { Gpu } from "../kernels/runtime.ts";
import type { BertConfig } from "./config.ts";
import type { Weights } from "./weights.ts";
import type { Dataset } from "./data/dataset.ts";
import type { BatchTokenizer } from "./data/batches.ts";
import {
  type EpochLog,
  type EvalResult,
  type StepLog,
  type TrainCallbacks,
  Trainer,
  type TrainOptions,
  type TrainPosition,
} from "./trainer.ts";
import { loadModel, loadTrainingState, saveModel, saveTrainingState } from "./checkpoint.ts";
import { ensureWritableDir, removeStaleTempFiles, writeFileAtomic } from "./atomic.ts";
import { lossCurveSvg } from "./plot.ts";

/** A tokenizer that can also hand over its files, to save next to the model. */
export interface RunTokenizer extends BatchTokenizer {
  /** The tokenizer's files by name (tokenizer.json, vocab.txt, ...), saved next to the model. */
  files?(): Record<string, Uint8Array | string | Record<string, unknown>>;
}

/** The data of a run. */
export interface RunData {
  train: Dataset;
  validation: Dataset | null;
  /** More validation sets by name, evaluated whenever `validation` is (it alone picks the best model). */
  moreValidation?: Record<string, Dataset>;
  /** Evaluated once at the end, by name (e.g. in_domain_dev, out_of_domain_dev). */
  tests?: Record<string, Dataset>;
}

/** Validation metrics `metricForBestModel` can name; loss is better lower, the others higher. */
export const BEST_MODEL_METRICS = ["loss", "accuracy", "mcc", "f1"] as const;

/** One validation evaluation, as metrics.json's `evaluations` lists it. */
export type EvaluationLog =
  & {
    step: number;
    epoch: number;
    /** The name of an additional validation set (`moreValidation`); absent for the main one. */
    set?: string;
  }
  & Omit<EvalResult, "predictions">;

/** The best evaluation so far (`loadBestModelAtEnd`). */
export interface BestModel {
  step: number;
  metric: typeof BEST_MODEL_METRICS[number];
  value: number;
}

/** Hooks a CLI or a library user passes. */
export interface RunHooks extends Omit<TrainCallbacks, "onCheckpoint" | "onEpoch" | "onEvaluate"> {
  onEpoch?(log: EpochLog): void;
  /** After each validation evaluation (every `evalSteps` and at each epoch end). */
  onEvaluate?(evaluation: EvaluationLog): void;
  /** Messages worth showing a person ("resuming from step 120", "checkpoint written"). */
  onMessage?(message: string): void;
  /**
   * Called with the test sets' figures and predictions at the end (e.g. to compute a task's GLUE
   * metrics); what it returns is added to metrics.json's `final`.
   */
  onTestResults?(results: Record<string, EvalResult>): Record<string, unknown> | void;
}

/** What a run produced. */
export interface RunResult {
  output: string;
  steps: StepLog[];
  epochs: EpochLog[];
  tests: Record<string, Omit<EvalResult, "predictions">>;
  /** Set when the run was interrupted: where `resume` will continue. */
  stopped: TrainPosition | null;
  /** The best evaluation, when `loadBestModelAtEnd` was set and there was validation data. */
  best?: BestModel;
}

/** Options of a run beyond the recipe. */
export interface RunOptions {
  output: string;
  resume?: boolean;
  extraArgs?: Record<string, unknown>;
  /**
   * Keep the weights of the best validation evaluation (checkpoints/best/) and end with them: the
   * run folder's model and the test figures are the best model's. @default false
   */
  loadBestModelAtEnd?: boolean;
  /** The validation metric that picks the best model. @default "loss" */
  metricForBestModel?: BestModel["metric"];
}

const CHECKPOINTS = "checkpoints";
const LATEST = "latest.json";
const BEST = "best";

/** Runs training end to end; see the module doc. */
export async function runTraining(
  gpu: Gpu,
  model: { config: BertConfig; weights: Weights },
  tokenizer: RunTokenizer,
  data: RunData,
  options: TrainOptions & RunOptions,
  hooks: RunHooks = {},
): Promise<RunResult> {
  const out = options.output;
  await ensureWritableDir(out);
  const say = (m: string) => hooks.onMessage?.(m);
  await removeCrashLeftovers(out);
  let config = model.config;
  let weights = model.weights;
  let start: TrainPosition = { step: 0, epoch: 0, batchInEpoch: 0 };
  let steps: StepLog[] = [];
  let epochs: EpochLog[] = [];
  let resumeState: Awaited<ReturnType<typeof loadTrainingState>> | null = null;
  const { extraArgs, output: _o, resume: _r, loadBestModelAtEnd, metricForBestModel, ...recipe } = options;
  const metric = metricForBestModel ?? "loss";
  if (!BEST_MODEL_METRICS.includes(metric)) {
    throw new RangeError(`metricForBestModel must be one of ${BEST_MODEL_METRICS.join(", ")}, got ${metric}`);
  }
  let evaluations: EvaluationLog[] = [];
  let best: BestModel | undefined;
  if (options.resume) {
    const dir = await latestCheckpoint(out);
    if (!dir) {
      throw new Error(
        `Cannot resume: "${join(out, CHECKPOINTS, LATEST)}" does not exist; start without --resume`,
      );
    }
    const loaded = await loadModel(dir);
    config = loaded.config;
    weights = loaded.weights;
    resumeState = await loadTrainingState(dir);
    const saved = resumeState.info.recipe as Record<string, unknown> | undefined;
    for (
      const key of [
        "batchSize",
        "maxLength",
        "seed",
        "shuffle",
        "dynamicPadding",
        "gradAccum",
        "epochs",
        "lr",
        "lrScheduler",
        "precision",
      ]
    ) {
      const fallback = key === "lrScheduler" ? "linear" : key === "precision" ? "f32" : undefined;
      const now = (recipe as Record<string, unknown>)[key] ?? fallback;
      const then = saved?.[key] ?? fallback;
      if (saved && then !== now) {
        throw new Error(
          `Cannot resume "${out}": ${key} was ${JSON.stringify(then)}, now ${
            JSON.stringify(now)
          }; resume with the same options`,
        );
      }
    }
    start = { step: resumeState.step, epoch: resumeState.epoch, batchInEpoch: resumeState.batchInEpoch };
    steps = (resumeState.info.steps as StepLog[]) ?? [];
    epochs = (resumeState.info.epochs as EpochLog[]) ?? [];
    evaluations = (resumeState.info.evaluations as EvaluationLog[]) ?? [];
    best = resumeState.info.best as BestModel | undefined;
    say(`resuming from ${dir} (step ${start.step}, epoch ${start.epoch + 1}, batch ${start.batchInEpoch})`);
  }
  const trainer = new Trainer(gpu, config, weights, tokenizer, recipe);
  if (resumeState) {
    // Mixed precision: skipped steps did not advance AdamW's step count.
    const scaler = resumeState.info.scaler as GradScalerState | undefined;
    if (trainer.scaler && scaler) trainer.scaler.load(scaler);
    trainer.optimizer.writeState(resumeState.moments, resumeState.step - (trainer.scaler?.skipped ?? 0));
  }
  await writeFileAtomic(
    join(out, "training_args.json"),
    JSON.stringify(
      {
        ...recipe,
        ...(loadBestModelAtEnd ? { loadBestModelAtEnd, metricForBestModel: metric } : {}),
        ...extraArgs,
        train_examples: data.train.examples.length,
      },
      null,
      2,
    ) + "\n",
  );
  const tokenizerFiles = tokenizer.files?.();
  const writeMetrics = async (final?: Record<string, unknown>) => {
    await writeFileAtomic(
      join(out, "metrics.json"),
      JSON.stringify({ steps, epochs, evaluations, ...final }, null, 2) + "\n",
    );
    const perEpoch = trainer.stepsPerEpoch(data.train.examples.length);
    await writeFileAtomic(
      join(out, "loss.svg"),
      lossCurveSvg({
        steps: steps.map((s) => [s.step, s.loss]),
        epochs: epochs.map((e) => [e.epoch * perEpoch, e.train_loss]),
        title: `Training loss (${data.train.name})`,
      }),
    );
  };
  const result = await trainer.fit(data.train, data.validation, {
    ...hooks,
    onStep: (log, p) => {
      steps.push(log);
      hooks.onStep?.(log, p);
    },
    onEpoch: (log) => {
      epochs.push(log);
      hooks.onEpoch?.(log);
    },
    onEvaluate: async ({ step, epoch, validation }) => {
      const entry = { step, epoch, ...validation };
      evaluations.push(entry);
      hooks.onEvaluate?.(entry);
      for (const [set, ds] of Object.entries(data.moreValidation ?? {})) {
        const { predictions: _, ...r } = await trainer.evaluate(ds);
        const more = { step, epoch, set, ...r };
        evaluations.push(more);
        hooks.onEvaluate?.(more);
      }
      if (!loadBestModelAtEnd) return;
      const value = validation[metric];
      const better = best === undefined ||
        (metric === "loss" ? value < best.value : value > best.value);
      if (!better || Number.isNaN(value)) return;
      best = { step, metric, value };
      await saveModel(join(out, CHECKPOINTS, BEST), config, await trainer.weights());
      await writeFileAtomic(join(out, CHECKPOINTS, BEST, "best.json"), JSON.stringify(best) + "\n");
      say(`best model so far: step ${step}, ${metric} ${value.toFixed(4)} (${join(out, CHECKPOINTS, BEST)})`);
    },
    onCheckpoint: async (position) => {
      const dir = join(out, CHECKPOINTS, `step-${String(position.step).padStart(6, "0")}`);
      const current = await trainer.weights();
      await saveModel(dir, config, current);
      await saveTrainingState(dir, {
        ...position,
        info: {
          recipe,
          steps,
          epochs,
          evaluations,
          best,
          ...(trainer.scaler ? { scaler: trainer.scaler.state() } : {}),
        },
        moments: await trainer.optimizer.readState(),
      });
      // The pointer is written last: a crash before this keeps the previous checkpoint current.
      await writeFileAtomic(
        join(out, CHECKPOINTS, LATEST),
        JSON.stringify({ dir: dir.split("/").pop(), ...position }) + "\n",
      );
      // Every other step folder goes: the previous checkpoint, and any that a crash after an
      // earlier pointer update (or during a checkpoint write) left behind.
      await removeStepFolders(join(out, CHECKPOINTS), basename(dir));
      await saveModel(out, config, current, tokenizerFiles);
      await writeMetrics();
      say(`checkpoint written: ${dir}`);
    },
  }, start);
  const tests: RunResult["tests"] = {};
  if (!result.stopped && loadBestModelAtEnd && best) {
    const loaded = await loadModel(join(out, CHECKPOINTS, BEST));
    trainer.engine.writeParams(loaded.weights);
    await saveModel(out, config, loaded.weights, tokenizerFiles);
    say(`loaded the best model: step ${best.step}, validation ${best.metric} ${best.value.toFixed(4)}`);
  }
  if (!result.stopped) {
    const full: Record<string, EvalResult> = {};
    for (const [name, ds] of Object.entries(data.tests ?? {})) {
      full[name] = await trainer.evaluate(ds);
      const { predictions: _, ...r } = full[name];
      tests[name] = r;
    }
    const extra = hooks.onTestResults?.(full) ?? {};
    await writeMetrics({
      final: {
        ...(epochs.at(-1)?.validation ? { validation: epochs.at(-1)!.validation } : {}),
        tests,
        ...(loadBestModelAtEnd && best ? { best_model: best } : {}),
        ...extra,
      },
    });
  }
  return {
    output: out,
    steps,
    epochs,
    tests,
    stopped: result.stopped,
    ...(loadBestModelAtEnd && best ? { best } : {}),
  };
}

/** Deletes the step folders in `checkpoints` other than `keep`. */
async function removeStepFolders(checkpoints: string, keep: string): Promise<void> {
  for await (const entry of Deno.readDir(checkpoints)) {
    if (entry.isDirectory && entry.name.startsWith("step-") && entry.name !== keep) {
      await Deno.remove(join(checkpoints, entry.name), { recursive: true }).catch(() => {});
    }
  }
}

/** Deletes the temporary files a killed run left in the run folder, checkpoints/ and its step folders. */
async function removeCrashLeftovers(out: string): Promise<void> {
  const checkpoints = join(out, CHECKPOINTS);
  const folders = [out, checkpoints];
  try {
    for await (const entry of Deno.readDir(checkpoints)) {
      if (entry.isDirectory) folders.push(join(checkpoints, entry.name));
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  for (const folder of folders) await removeStaleTempFiles(folder);
}

/** The folder named by checkpoints/latest.json, or null when there is none. */
export async function latestCheckpoint(out: string): Promise<string | null> {
  try {
    const ptr = JSON.parse(await Deno.readTextFile(join(out, CHECKPOINTS, LATEST)));
    return typeof ptr.dir === "string" ? join(out, CHECKPOINTS, ptr.dir) : null;
  } catch {
    return null;
  }
}
