/**
 * What a training run prints: a progress bar per epoch (steps, loss, ETA) on a terminal, a line
 * every few steps otherwise; epoch summaries like the tutorial's; Ctrl-C handling.
 * @module
 */

import cliProgress from "npm:cli-progress@3.12.0";
import type { EpochLog, EvalResult, StepLog } from "./trainer.ts";

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

/** Step and epoch hooks that print progress to the console. */
export function consoleProgress(epochs: number) {
  const tty = Deno.stdout.isTerminal();
  let bar: cliProgress.SingleBar | null = null;
  let barEpoch = -1;
  let lastLine = 0;
  return {
    onStep(log: StepLog, p: { epochStep: number; epochSteps: number; totalSteps: number }) {
      const epoch = Math.ceil(log.epoch - 1e-9);
      if (tty) {
        if (barEpoch !== epoch) {
          bar?.stop();
          console.log(`\n======== Epoch ${epoch} / ${epochs} ========`);
          bar = new cliProgress.SingleBar({
            format: "  {bar} {value}/{total} steps | loss {loss} | ETA {eta_formatted}",
            hideCursor: true,
          }, cliProgress.Presets.shades_classic);
          bar.start(p.epochSteps, 0, { loss: "-" });
          barEpoch = epoch;
        }
        bar!.update(p.epochStep, { loss: log.loss.toFixed(4) });
      } else {
        if (barEpoch !== epoch) {
          console.log(`======== Epoch ${epoch} / ${epochs} ========`);
          barEpoch = epoch;
        }
        const now = performance.now();
        if (p.epochStep === p.epochSteps || now - lastLine > 5000 || p.epochStep === 1) {
          console.log(
            `  step ${p.epochStep}/${p.epochSteps}  loss ${log.loss.toFixed(4)}  lr ${
              log.learning_rate.toExponential(2)
            }  grad_norm ${log.grad_norm.toFixed(3)}`,
          );
          lastLine = now;
        }
      }
    },
    onEpoch(log: EpochLog) {
      bar?.stop();
      bar = null;
      console.log(`  Average training loss: ${log.train_loss.toFixed(4)}`);
      console.log(`  Training epoch took: ${log.seconds.toFixed(1)} s`);
      if (log.validation) console.log(`  Validation: ${formatEval(log.validation)}`);
    },
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
