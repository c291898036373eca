import assert from "node:assert/strict";
import { mapSummary, summarize, timeRepeated } from "./_stats.ts";

Deno.test("summarize() takes the median, min and max of unsorted timings", () => {
  assert.deepEqual(summarize([5, 1, 3]), { median: 3, min: 1, max: 5, runs: 3 });
  assert.deepEqual(summarize([4, 1, 10, 2]), { median: 3, min: 1, max: 10, runs: 4 });
  assert.deepEqual(summarize([7]), { median: 7, min: 7, max: 7, runs: 1 });
});

Deno.test("summarize() rejects empty lists and non-finite timings", () => {
  assert.throws(() => summarize([]), RangeError);
  assert.throws(() => summarize([1, NaN]), /NaN/);
  assert.throws(() => summarize([Infinity]), RangeError);
});

Deno.test("mapSummary() keeps min below max for a decreasing map", () => {
  const rate = mapSummary({ median: 4, min: 2, max: 8, runs: 3 }, (ms) => 1000 / ms);
  assert.deepEqual(rate, { median: 250, min: 125, max: 500, runs: 3 });
  assert.deepEqual(mapSummary({ median: 2, min: 1, max: 3, runs: 2 }, (x) => 2 * x), {
    median: 4,
    min: 2,
    max: 6,
    runs: 2,
  });
});

Deno.test("timeRepeated() runs warm-up untimed and times each repeat", async () => {
  let calls = 0;
  const s = await timeRepeated(() => calls++, { warmup: 2, repeats: 3 });
  assert.equal(calls, 5);
  assert.equal(s.runs, 3);
  assert.ok(s.min >= 0 && s.min <= s.median && s.median <= s.max);
});
