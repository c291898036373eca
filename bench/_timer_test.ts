import assert from "node:assert/strict";
import { GpuTimer } from "./_timer.ts";
import { matmul } from "../kernels/matmul.ts";
import { GPU_TEST, testGpu } from "../tests/util.ts";

Deno.test({
  name: "GpuTimer.time() measures a pass that grows with its dispatch count and fits in the wall clock",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const [M, N, K] = [64, 64, 64];
    const a = gpu.upload("a", new Float32Array(M * K).fill(0.5));
    const b = gpu.upload("b", new Float32Array(N * K).fill(0.25));
    const out = gpu.buffer("out", M * N * 4);
    const d = matmul(gpu, { M, N, K, transB: true, a, b, out, label: "timer test" });
    const timer = new GpuTimer(gpu);
    assert.equal(timer.method, gpu.device.features.has("timestamp-query") ? "timestamp-query" : "wall clock");
    await timer.time([d]); // compiles
    const one = await timer.time([d], 1);
    const many = await timer.time([d], 32);
    for (const t of [one, many]) {
      assert.ok(t.ms > 0 && t.ms <= t.wallMs * 1.05, JSON.stringify(t));
    }
    assert.ok(many.ms > one.ms, `32 dispatches took ${many.ms} ms, one took ${one.ms} ms`);
    // The pass really ran the matmul: every output is K * 0.5 * 0.25.
    const c = await gpu.readF32(out);
    assert.ok(c.every((v) => v === K * 0.125), `first value ${c[0]}`);
    timer.destroy();
    assert.equal(timer.method, "wall clock");
    const wall = await timer.time([d], 2);
    assert.equal(wall.method, "wall clock");
  },
});
