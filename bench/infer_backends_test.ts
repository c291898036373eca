import assert from "node:assert/strict";
import { benchBackends, formatBackends } from "./infer_backends.ts";
import { exportTestModel } from "../serve/_test_model.ts";

Deno.test("benchBackends() times wasm and native at 1 and 2 threads, each in its own process", async () => {
  const dir = await exportTestModel({ maxLength: 16 });
  try {
    const result = await benchBackends(dir, { quick: true, threads: 2 });
    assert.deepEqual(result.runs.map((r) => `${r.backend}/${r.threads}`), [
      "wasm/1",
      "native/1",
      "wasm/2",
      "native/2",
    ]);
    for (const r of result.runs) {
      assert.deepEqual(r.timings.map((t) => `${t.batch}x${t.sequence}`), ["1x16", "8x16"]);
      for (const t of r.timings) assert.ok(0 < t.minMs && t.minMs <= t.medianMs && t.medianMs <= t.maxMs);
    }
    assert.deepEqual(Object.keys(result.threadsSpeedup), ["int8 b1 s16", "int8 b8 s16"]);
    assert.equal(Object.keys(result.wasmOverNative).length, 4);
    assert.match(formatBackends(result), /native\s+int8\s+2\s+8\s+16/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
