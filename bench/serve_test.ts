import assert from "node:assert/strict";
import { benchServe, formatServeTable } from "./serve.ts";
import { quantile } from "./_load.ts";

Deno.test({
  name: "benchServe() quick mode measures batching off and on at concurrency 1 and 8",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const result = await benchServe({ quick: true, seconds: 0.5 });
    assert.deepEqual(
      result.measurements.map((m) => `${m.batching}/${m.windowMs}/c${m.concurrency}`),
      ["off/0/c1", "off/0/c8", "on/2/c1", "on/2/c8"],
    );
    for (const m of result.measurements) {
      assert.equal(m.errors, 0, m.firstError ?? "no error message");
      assert.ok(m.requests > 0 && m.throughput > 0, JSON.stringify(m));
      assert.ok(0 < m.p50Ms && m.p50Ms <= m.p99Ms && m.p99Ms <= m.maxMs, JSON.stringify(m));
      // The server ran every measured request's text, plus the warm-up's.
      assert.ok(m.sessionRuns * m.meanBatch >= m.requests, JSON.stringify(m));
    }
    const [off1, off8, on1, on8] = result.measurements;
    assert.deepEqual([off1.meanBatch, off8.meanBatch, on1.meanBatch], [1, 1, 1]);
    // One text a run pads nothing; coalesced runs pad some share of their slots.
    assert.deepEqual([off1.paddingRatio, off8.paddingRatio, on1.paddingRatio], [0, 0, 0]);
    assert.ok(on8.paddingRatio >= 0 && on8.paddingRatio < 1, `padding ${on8.paddingRatio}`);
    if (Deno.build.os === "linux") {
      for (const m of result.measurements) {
        assert.ok(0 < m.rssStartMb && m.rssEndMb <= m.peakRssMb, JSON.stringify(m));
      }
    }
    assert.ok(on8.meanBatch > 1, `8 clients with a 2 ms window averaged ${on8.meanBatch} texts a run`);
    assert.deepEqual(Object.keys(result.batchingSpeedup), ["c1", "c8"]);
    assert.equal(result.batchingSpeedup.c8, on8.throughput / off8.throughput);
    assert.equal(result.model.variant, "int8");
    assert.match(formatServeTable(result), /^on\s+2\s+8\s+\d+\s+0\s/m);
  },
});

Deno.test("quantile() takes the nearest rank", () => {
  const sorted = Array.from({ length: 100 }, (_, i) => i + 1); // 1..100
  assert.equal(quantile(sorted, 0.5), 50);
  assert.equal(quantile(sorted, 0.99), 99);
  assert.equal(quantile(sorted, 1), 100);
  assert.equal(quantile([7], 0.99), 7);
  assert.ok(Number.isNaN(quantile([], 0.5)));
});
