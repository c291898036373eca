import assert from "node:assert/strict";
import { Batcher } from "./batcher.ts";

/** A runBatch that records each call's items and can be held open until released. */
function recorder(options: { hold?: boolean; fail?: (items: number[]) => boolean } = {}) {
  const calls: number[][] = [];
  let running = 0;
  let maxRunning = 0;
  const gates: (() => void)[] = [];
  const run = async (items: number[]) => {
    calls.push(items);
    running++;
    maxRunning = Math.max(maxRunning, running);
    if (options.hold) await new Promise<void>((resolve) => gates.push(resolve));
    else await new Promise((r) => setTimeout(r, 1));
    running--;
    if (options.fail?.(items)) throw new Error(`run of [${items}] failed`);
    return items.map((x) => x * 10);
  };
  return { run, calls, maxRunning: () => maxRunning, release: () => gates.splice(0).forEach((g) => g()) };
}

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

Deno.test("Batcher.submit() coalesces concurrent submissions within the window into one run", async () => {
  const r = recorder();
  const batcher = new Batcher(r.run, { windowMs: 30, maxBatch: 32 });
  const results = await Promise.all([batcher.submit([1, 2]), batcher.submit([3]), batcher.submit([4, 5, 6])]);
  assert.deepEqual(results.map((s) => s.outputs), [[10, 20], [30], [40, 50, 60]]);
  assert.deepEqual(results.map((s) => s.batchSizes), [[6], [6], [6]]);
  assert.deepEqual(r.calls, [[1, 2, 3, 4, 5, 6]]);
  assert.equal(batcher.runs, 1);
  assert.equal(batcher.items, 6);
  await batcher.close();
});

Deno.test("Batcher.submit() with window 0 runs each submission alone, one run at a time", async () => {
  const r = recorder();
  const batcher = new Batcher(r.run, { windowMs: 0, maxBatch: 32 });
  const results = await Promise.all([batcher.submit([1, 2]), batcher.submit([3]), batcher.submit([4])]);
  assert.deepEqual(results.map((s) => s.outputs), [[10, 20], [30], [40]]);
  assert.deepEqual(r.calls, [[1, 2], [3], [4]]);
  assert.deepEqual(results.map((s) => s.batchSizes), [[2], [1], [1]]);
  assert.equal(r.maxRunning(), 1);
  await batcher.close();
});

Deno.test("Batcher.submit() splits at maxBatch and runs a full queue without waiting for the window", async () => {
  const r = recorder();
  // A window far longer than the test: only the maxBatch rule can start the runs in time.
  const batcher = new Batcher(r.run, { windowMs: 60_000, maxBatch: 4 });
  const t0 = performance.now();
  const big = await batcher.submit([1, 2, 3, 4, 5, 6, 7, 8]);
  assert.ok(performance.now() - t0 < 5_000);
  assert.deepEqual(big.outputs, [10, 20, 30, 40, 50, 60, 70, 80]);
  assert.deepEqual(r.calls, [[1, 2, 3, 4], [5, 6, 7, 8]]);
  assert.deepEqual(big.batchSizes, [4, 4]);
  const zero = new Batcher(r.run, { windowMs: 0, maxBatch: 2 });
  assert.deepEqual((await zero.submit([1, 2, 3])).batchSizes, [2, 1]);
  await batcher.close();
  await zero.close();
});

Deno.test("Batcher.submit() queues items that arrive during a run and runs them together next", async () => {
  const r = recorder({ hold: true });
  const batcher = new Batcher(r.run, { windowMs: 1, maxBatch: 32 });
  const first = batcher.submit([1]);
  await tick(20); // the window passes: [1] runs and is held open
  assert.deepEqual(r.calls, [[1]]);
  const later = [batcher.submit([2]), batcher.submit([3, 4])];
  await tick(20);
  assert.equal(r.calls.length, 1, "no second run may start while the first is in flight");
  assert.equal(batcher.pending, 3);
  r.release();
  await first;
  await tick(5);
  assert.deepEqual(r.calls, [[1], [2, 3, 4]]);
  r.release();
  assert.deepEqual((await Promise.all(later)).map((s) => s.outputs), [[20], [30, 40]]);
  assert.equal(r.maxRunning(), 1);
  await batcher.close();
});

Deno.test("Batcher.submit() rejects only the submissions a failed run served", async () => {
  const r = recorder({ fail: (items) => items.includes(13) });
  const batcher = new Batcher(r.run, { windowMs: 0, maxBatch: 8 });
  const [bad, good] = await Promise.allSettled([batcher.submit([13]), batcher.submit([2])]);
  assert.equal(bad.status, "rejected");
  assert.match(String((bad as PromiseRejectedResult).reason), /run of \[13\] failed/);
  assert.deepEqual((good as PromiseFulfilledResult<{ outputs: number[] }>).value.outputs, [20]);
  const short = new Batcher((xs: number[]) => Promise.resolve(xs.slice(1)), { windowMs: 0, maxBatch: 8 });
  await assert.rejects(short.submit([1, 2]), /returned 1 outputs for 2 items/);
  await batcher.close();
  await short.close();
});

Deno.test("Batcher.close() finishes queued work, then refuses new submissions", async () => {
  const r = recorder();
  const batcher = new Batcher(r.run, { windowMs: 60_000, maxBatch: 32 });
  const queued = batcher.submit([7]);
  await batcher.close(); // does not wait the 60 s window
  assert.deepEqual((await queued).outputs, [70]);
  await assert.rejects(batcher.submit([1]), /batcher is closed/);
});

Deno.test("Batcher() rejects a negative window or a batch limit below 1", () => {
  const run = (xs: number[]) => Promise.resolve(xs);
  assert.throws(() => new Batcher(run, { windowMs: -1, maxBatch: 4 }), {
    name: "RangeError",
    message: /windowMs -1/,
  });
  assert.throws(() => new Batcher(run, { windowMs: 2, maxBatch: 0 }), {
    name: "RangeError",
    message: /maxBatch 0/,
  });
  assert.throws(() => new Batcher(run, { windowMs: NaN, maxBatch: 4 }), { name: "RangeError" });
});

Deno.test("Batcher with lengthOf runs short items apart from a long one, the oldest's group first", async () => {
  const r = recorder();
  const runs: { items: number; tokens: number; paddedTokens: number }[] = [];
  const batcher = new Batcher(r.run, {
    windowMs: 30,
    maxBatch: 32,
    lengthOf: (x: number) => x,
    runCost: 16,
    onRun: ({ items, tokens, paddedTokens }) => runs.push({ items, tokens, paddedTokens }),
  });
  // One run would compute 4 x 60 = 240 slots (+16); apart: 16 + 3 x 5 and 16 + 60 = 107.
  const results = await Promise.all([batcher.submit([4, 60]), batcher.submit([5]), batcher.submit([3])]);
  assert.deepEqual(r.calls, [[4, 5, 3], [60]]);
  assert.deepEqual(results.map((s) => s.outputs), [[40, 600], [50], [30]]);
  assert.deepEqual(results.map((s) => s.batchSizes), [[3, 1], [3], [3]]);
  assert.deepEqual(runs, [{ items: 3, tokens: 12, paddedTokens: 15 }, {
    items: 1,
    tokens: 60,
    paddedTokens: 60,
  }]);
  await batcher.close();
});

Deno.test("Batcher with lengthOf keeps close lengths together and the oldest item goes first", async () => {
  const r = recorder();
  const batcher = new Batcher(r.run, { windowMs: 30, maxBatch: 32, lengthOf: (x: number) => x, runCost: 16 });
  await Promise.all([batcher.submit([10]), batcher.submit([12]), batcher.submit([11])]);
  assert.deepEqual(r.calls, [[10, 12, 11]]); // 16 + 36 < 16 + 10 + 16 + 12 + ...
  r.calls.length = 0;
  // The oldest is the long one: its group runs first, the short ones next.
  await Promise.all([batcher.submit([60]), batcher.submit([2, 3]), batcher.submit([2])]);
  assert.deepEqual(r.calls, [[60], [2, 3, 2]]);
  await batcher.close();
});

Deno.test("Batcher with lengthOf respects maxBatch and window 0 plans within one submission", async () => {
  const r = recorder();
  const batcher = new Batcher(r.run, { windowMs: 30, maxBatch: 2, lengthOf: (x: number) => x, runCost: 0 });
  await Promise.all([batcher.submit([5, 5, 5]), batcher.submit([5])]);
  assert.ok(r.calls.every((c) => c.length <= 2));
  assert.deepEqual(r.calls.flat().length, 4);
  r.calls.length = 0;
  const zero = new Batcher(r.run, { windowMs: 0, maxBatch: 8, lengthOf: (x: number) => x });
  await Promise.all([zero.submit([2, 90, 3]), zero.submit([4])]);
  assert.deepEqual(r.calls, [[2, 3], [90], [4]]);
  await Promise.all([batcher.close(), zero.close()]);
});

Deno.test("Batcher maxTokens bounds rows x longest of a length-aware run; a lone long item still runs", async () => {
  const runs: number[][] = [];
  const batcher = new Batcher(async (xs: number[]) => {
    runs.push(xs);
    return await Promise.resolve(xs);
  }, { windowMs: 5, maxBatch: 32, maxTokens: 64, lengthOf: (x: number) => x });
  await Promise.all([batcher.submit([16, 16, 16, 16, 16, 16]), batcher.submit([200])]);
  await batcher.close();
  assert.deepEqual(runs.map((r) => r.length * Math.max(...r)).filter((t) => t > 64), [200]);
  assert.deepEqual(runs.flat().sort((a, b) => a - b), [16, 16, 16, 16, 16, 16, 200]);
  assert.throws(
    () => new Batcher((xs: number[]) => Promise.resolve(xs), { windowMs: 0, maxBatch: 1, maxTokens: 0 }),
    RangeError,
  );
});
