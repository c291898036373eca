/**
 * What a training run prints: a progress bar per epoch (steps, loss, samples/s, epoch and overall
 * ETA) on a terminal, a line per logging step otherwise; epoch summaries like the tutorial's;
 * download progress (bytes, rate, ETA); Ctrl-C handling.
 * @module
 */

import cliProgress from "npm:cli-progress@3.12.0";
import type { EpochLog, EvalResult, StepLog, StepProgress } from "./trainer.ts";

/** "accuracy 0.812, MCC 0.523, loss 0.456 (516 examples)". */
export function formatEval(r: Omit<EvalResult, "predictions">): string {
  if (Number.isNaN(r.accuracy)) {
    const corr = r.pearson === undefined
      ? ""
      : `Pearson ${r.pearson.toFixed(3)}, Spearman ${r.spearman!.toFixed(3)}, `;
    return `${corr}MSE ${r.loss.toFixed(4)} (${r.examples} examples)`;
  }
  return `accuracy ${r.accuracy.toFixed(3)}, MCC ${r.mcc.toFixed(3)}, F1 ${r.f1.toFixed(3)}, loss ${
    r.loss.toFixed(4)
  } (${r.examples} examples)`;
}

/** "1h02m", "3m05s", "42s". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${s}s`;
}

/** "12.3 MB", in powers of 1000 like the hub's own file sizes. */
export function formatBytes(n: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) [n, i] = [n / 1000, i + 1];
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

/**
 * Overall training speed and time left: samples/s and ETA over all remaining steps, measured since
 * the first step of this process (a resumed run starts its clock at the resume).
 */
export class TrainingClock {
  #t0: number | null = null;
  #firstStep = 0;
  #samples = 0;

  /** Records a finished step; returns samples/s and the seconds left for all remaining steps. */
  step(step: number, totalSteps: number, samples: number, now = performance.now()) {
    if (this.#t0 === null) {
      // The first step's time includes recording the GPU plans: start the clock after it.
      [this.#t0, this.#firstStep] = [now, step];
      return { samplesPerSecond: NaN, etaSeconds: NaN };
    }
    this.#samples += samples;
    const seconds = (now - this.#t0) / 1000;
    const done = step - this.#firstStep;
    return {
      samplesPerSecond: this.#samples / seconds,
      etaSeconds: done > 0 ? (seconds / done) * (totalSteps - step) : NaN,
    };
  }
}

/**
 * Step and epoch hooks that print progress to the console. On a terminal: a bar per epoch with
 * loss, samples/s and the overall ETA. Without one (logs, CI): one line per `loggingSteps` steps
 * (and the first and last step of each epoch) with the mean loss since the previous line.
 */
export function consoleProgress(
  epochs: number,
  options: { loggingSteps?: number; tty?: boolean; log?: (line: string) => void } = {},
) {
  const tty = options.tty ?? Deno.stdout.isTerminal();
  const print = options.log ?? ((line: string) => console.log(line));
  const loggingSteps = options.loggingSteps ?? 50;
  const clock = new TrainingClock();
  let bar: cliProgress.SingleBar | null = null;
  let barEpoch = -1;
  let lossSum = 0;
  let lossCount = 0;
  return {
    onStep(log: StepLog, p: StepProgress) {
      const epoch = Math.ceil(log.epoch - 1e-9);
      const { samplesPerSecond, etaSeconds } = clock.step(log.step, p.totalSteps, p.samples);
      const speed = Number.isNaN(samplesPerSecond) ? "-" : samplesPerSecond.toFixed(1);
      const eta = formatDuration(etaSeconds);
      if (tty) {
        if (barEpoch !== epoch) {
          bar?.stop();
          print(`\n======== Epoch ${epoch} / ${epochs} ========`);
          bar = new cliProgress.SingleBar({
            format:
              "  {bar} {value}/{total} steps | loss {loss} | {speed} samples/s | epoch ETA {eta_formatted} | total ETA {total_eta}",
            hideCursor: true,
          }, cliProgress.Presets.shades_classic);
          bar.start(p.epochSteps, 0, { loss: "-", speed, total_eta: eta });
          barEpoch = epoch;
        }
        bar!.update(p.epochStep, { loss: log.loss.toFixed(4), speed, total_eta: eta });
        return;
      }
      if (barEpoch !== epoch) {
        print(`======== Epoch ${epoch} / ${epochs} ========`);
        barEpoch = epoch;
      }
      lossSum += log.loss;
      lossCount++;
      if (p.epochStep === 1 || log.step % loggingSteps === 0 || p.epochStep === p.epochSteps) {
        print(
          `  step ${p.epochStep}/${p.epochSteps} (${log.step}/${p.totalSteps} overall)  loss ${
            (lossSum / lossCount).toFixed(4)
          }  lr ${log.learning_rate.toExponential(2)}  grad_norm ${log.grad_norm.toFixed(3)}${
            log.loss_scale === undefined
              ? ""
              : `  loss_scale ${log.loss_scale}${log.skipped ? " (step skipped)" : ""}`
          }  ${speed} samples/s  ETA ${eta}`,
        );
        lossSum = 0;
        lossCount = 0;
      }
    },
    onEpoch(log: EpochLog) {
      bar?.stop();
      bar = null;
      print(`  Average training loss: ${log.train_loss.toFixed(4)}`);
      print(`  Training epoch took: ${log.seconds.toFixed(1)} s`);
      if (log.validation) print(`  Validation: ${formatEval(log.validation)}`);
    },
    onEvaluate(e: { step: number; epoch: number; set?: string } & Omit<EvalResult, "predictions">) {
      // The main set's epoch-end evaluation prints with the epoch summary.
      const midEpoch = Math.abs(e.epoch - Math.round(e.epoch)) > 1e-9;
      if (midEpoch || e.set !== undefined) {
        bar?.stop();
        bar = null;
        barEpoch = -1;
        print(`  Validation${e.set === undefined ? "" : ` (${e.set})`} at step ${e.step}: ${formatEval(e)}`);
      }
    },
  };
}

/**
 * A download progress display for `download()`'s `onProgress`: bytes, total, rate and ETA, rewritten
 * in place on a terminal; otherwise a line at most every 10 s and at the end.
 */
export function downloadProgress(
  label: string,
  options: { tty?: boolean; write?: (text: string) => void; now?: () => number } = {},
): (done: number, total: number | null) => void {
  const tty = options.tty ?? Deno.stderr.isTerminal();
  const write = options.write ?? ((text: string) => Deno.stderr.writeSync(new TextEncoder().encode(text)));
  const now = options.now ?? (() => performance.now());
  let t0: number | null = null;
  let start = 0;
  let lastPrint = -Infinity;
  let finished = false;
  return (done, total) => {
    const t = now();
    if (t0 === null) [t0, start] = [t, done]; // a resumed download's prefix is not counted in the rate
    const seconds = (t - t0) / 1000;
    const rate = seconds > 0 ? (done - start) / seconds : NaN;
    const end = total !== null && done >= total;
    if (finished || (!end && t - lastPrint < (tty ? 200 : 10_000))) return;
    lastPrint = t;
    finished = end;
    const size = total === null ? formatBytes(done) : `${formatBytes(done)} / ${formatBytes(total)}`;
    const pct = total ? ` ${((100 * done) / total).toFixed(0)}%` : "";
    const speed = Number.isNaN(rate) ? "" : `  ${formatBytes(rate)}/s`;
    const eta = total !== null && rate > 0 && !end ? `  ETA ${formatDuration((total - done) / rate)}` : "";
    const line = `${label}${pct}  ${size}${speed}${eta}`;
    write(tty ? `\r\x1b[2K${line}${end ? "\n" : ""}` : `${line}\n`);
  };
}

/** Turns the first Ctrl-C into a clean stop request (a second one exits at once). */
export function installInterrupt(): { requested: () => boolean; dispose: () => void } {
  let requested = false;
  const handler = () => {
    if (requested) Deno.exit(130);
    requested = true;
    console.log("\nStopping after this step and writing a checkpoint (Ctrl-C again to quit now)...");
  };
  try {
    Deno.addSignalListener("SIGINT", handler);
  } catch { /* no signals on this platform */ }
  return {
    requested: () => requested,
    dispose: () => {
      try {
        Deno.removeSignalListener("SIGINT", handler);
      } catch { /* ignore */ }
    },
  };
}
