import assert from "node:assert/strict";
import { consoleProgress, downloadProgress, formatBytes, formatDuration, TrainingClock } from "./console.ts";

Deno.test("formatDuration() and formatBytes()", () => {
  assert.deepEqual([42, 185, 3720, NaN].map(formatDuration), ["42s", "3m05s", "1h02m", "?"]);
  assert.deepEqual([999, 1500, 440_473_133].map(formatBytes), ["999 B", "1.5 kB", "440.5 MB"]);
});

Deno.test("TrainingClock: samples/s and the ETA of all remaining steps, from the second step on", () => {
  const clock = new TrainingClock();
  assert.ok(Number.isNaN(clock.step(1, 100, 32, 0).etaSeconds)); // the first step records plans
  const r = clock.step(11, 100, 320, 10_000); // 10 steps and 320 samples in 10 s
  assert.equal(r.samplesPerSecond, 32);
  assert.equal(r.etaSeconds, 89); // 1 s per step, 89 steps left
});

Deno.test("downloadProgress(): bytes, percent, rate and ETA; a line per 10 s without a terminal", () => {
  const out: string[] = [];
  let t = 0;
  const p = downloadProgress("bert config.json", { tty: false, write: (s) => out.push(s), now: () => t });
  p(0, 4_000_000);
  t = 5000;
  p(1_000_000, 4_000_000); // within 10 s of the last line: quiet
  t = 10_000;
  p(2_000_000, 4_000_000);
  t = 20_000;
  p(4_000_000, 4_000_000);
  p(4_000_000, 4_000_000); // finished: once
  assert.deepEqual(out, [
    "bert config.json 0%  0 B / 4.0 MB\n",
    "bert config.json 50%  2.0 MB / 4.0 MB  200.0 kB/s  ETA 10s\n",
    "bert config.json 100%  4.0 MB / 4.0 MB  200.0 kB/s\n",
  ]);
  const tty: string[] = [];
  const q = downloadProgress("x", { tty: true, write: (s) => tty.push(s), now: () => 0 });
  q(10, null);
  assert.equal(tty[0], "\r\x1b[2Kx  10 B");
});

Deno.test("consoleProgress() without a terminal prints one line per logging step with the mean loss", () => {
  const lines: string[] = [];
  const p = consoleProgress(1, { tty: false, loggingSteps: 2, log: (l) => lines.push(l) });
  for (let step = 1; step <= 5; step++) {
    p.onStep(
      { step, epoch: step / 5, loss: step, learning_rate: 1e-5, grad_norm: 1 },
      { epochStep: step, epochSteps: 5, totalSteps: 5, samples: 4 },
    );
  }
  assert.equal(lines[0], "======== Epoch 1 / 1 ========");
  const steps = lines.slice(1).map((l) =>
    l.match(/step (\d+)\/5 \(\d+\/5 overall\) +loss (\S+)/)!.slice(1).map(Number)
  );
  assert.deepEqual(steps, [[1, 1], [2, 2], [4, 3.5], [5, 5]]); // the epoch's first, every 2 steps, its last
  assert.match(lines[2], /samples\/s {2}ETA \S+$/);
});
