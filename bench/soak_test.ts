import assert from "node:assert/strict";
import { formatSoak, readRssKb, runSoak } from "./soak.ts";

Deno.test({
  name: "runSoak() quick mode serves every request at concurrency 1, 8 and 32 without growing memory",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const result = await runSoak({ quick: true });
    console.log(formatSoak(result));
    assert.deepEqual(result.segments.map((s) => `${s.round}/c${s.concurrency}`), [
      "0/c1",
      "0/c8",
      "0/c32",
      "1/c1",
      "1/c8",
      "1/c32",
    ]);
    assert.equal(result.errors, 0, result.segments.find((s) => s.firstError)?.firstError ?? "");
    for (const s of result.segments) {
      assert.ok(s.requests > 0, JSON.stringify(s));
      assert.ok(0 < s.p50Ms && s.p50Ms <= s.p99Ms && s.p99Ms <= s.maxMs, JSON.stringify(s));
    }
    assert.deepEqual(
      result.levels.map((l) => [l.concurrency, l.requests]),
      [1, 8, 32].map((c) => [
        c,
        result.segments.filter((s) => s.concurrency === c).reduce((n, s) => n + s.requests, 0),
      ]),
    );
    assert.equal(result.worstP99Ms, Math.max(...result.segments.map((s) => s.p99Ms)));
    if (readRssKb(Deno.pid) !== null) {
      const m = result.memory!;
      assert.ok(m.firstKb > 10_000 && m.lastKb > 10_000, JSON.stringify({ ...m, samples: m.samples.length }));
      // A few seconds cannot prove the absence of a slow leak (the 60 s run reports that); this catches
      // a fast one, such as buffers kept per request.
      assert.ok(m.ratio < 1.5, `server RSS grew from ${m.firstKb} to ${m.lastKb} KiB`);
    }
  },
});

Deno.test("readRssKb() reads this process's resident memory, and null for no such process", () => {
  const kb = readRssKb(Deno.pid);
  if (kb === null) return; // no /proc on this system
  // The oracle: Deno's own account of the same figure, in bytes.
  const rss = Deno.memoryUsage().rss / 1024;
  assert.ok(Math.abs(kb - rss) / rss < 0.25, `VmRSS ${kb} KiB, Deno.memoryUsage() ${rss} KiB`);
  assert.equal(readRssKb(2 ** 22 + 12345), null);
});
