import assert from "node:assert/strict";
import { benchInfer, formatInferTable } from "./infer.ts";

Deno.test("benchInfer() quick mode times every runtime, variant and batch on one exported model", async () => {
  const result = await benchInfer({ quick: true });
  const keys = result.timings.map((t) => `${t.runtime}/${t.variant}/${t.batch}x${t.sequence}`).sort();
  assert.deepEqual(keys, [
    "onnxruntime-node/float32/1x64",
    "onnxruntime-node/float32/32x64",
    "onnxruntime-node/int8/1x64",
    "onnxruntime-node/int8/32x64",
    "onnxruntime-web/float32/1x64",
    "onnxruntime-web/float32/32x64",
    "onnxruntime-web/int8/1x64",
    "onnxruntime-web/int8/32x64",
  ]);
  for (const t of result.timings) {
    assert.ok(0 < t.minMs && t.minMs <= t.medianMs && t.medianMs <= t.maxMs, JSON.stringify(t));
  }
  assert.ok(result.bytes.int8 < result.bytes.float32 / 2, JSON.stringify(result.bytes));
  assert.equal(Object.keys(result.int8Speedup).length, 4);
  // The tiny random model's logits are small (initializer_range 0.02); int8 must stay close on both runtimes.
  for (const [runtime, diff] of Object.entries(result.int8MaxAbsDiff)) {
    assert.ok(diff < 0.01, `${runtime}: ${diff}`);
  }
  assert.match(formatInferTable(result), /onnxruntime-node\s+int8\s+32\s+64/);
  // Graph forms: timed at 1 thread in quick mode, each computing the fused graph's logits.
  assert.equal(result.graphs?.length, 1);
  const graphs = result.graphs![0];
  assert.deepEqual(Object.keys(graphs.graphSpeedup).sort(), ["float32 b1 t1", "int8 b1 t1"]);
  assert.deepEqual(
    graphs.timings.map((t) => `${t.form}/${t.variant}`).sort(),
    ["fused/float32", "fused/int8", "portable/float32", "portable/int8", "unfused/float32", "unfused/int8"],
  );
  for (const [key, diff] of Object.entries(graphs.maxAbsDiff)) assert.ok(diff < 1e-4, `${key}: ${diff}`);
  assert.match(formatInferTable(result), /graph speed-up \(unfused \/ fused median\): int8 b1 t1/);
});
