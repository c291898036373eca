import assert from "node:assert/strict";
import { BufferView } from "./runtime.ts";
import { fill } from "./fill.ts";
import { assertThrows, GPU_TEST, testGpu } from "../tests/util.ts";

Deno.test({
  name: "BufferView: kernels bind only its range; write and read resolve its offset; it cannot be freed",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const buffer = gpu.buffer("arena", 1024 * 4);
    gpu.write(buffer, new Float32Array(1024).fill(-1));
    const view = new BufferView(buffer, 256 * 4, 100 * 4, "middle");
    const d = fill(gpu, view, 100, 3);
    assert.equal(d.cost.bytes, 400);
    assert.equal(d.cost.family, "fill");
    const before = gpu.dispatchesEncoded;
    gpu.run([d]);
    assert.equal(gpu.dispatchesEncoded - before, 1);
    const all = await gpu.readF32(buffer);
    all.forEach((x, i) => assert.equal(x, i >= 256 && i < 356 ? 3 : -1, `element ${i}`));
    gpu.write(view, Float32Array.of(5, 6), 4);
    assert.deepEqual([...await gpu.readF32(view, 3)], [3, 5, 6]);
    assert.deepEqual([...(await gpu.readManyF32([{ buffer: view, count: 2 }]))[0]], [3, 5]);
    assertThrows(() => gpu.free(view), Error, /free that buffer instead/);
    assertThrows(() => new BufferView(buffer, 1020 * 4, 8 * 4, "past the end"), RangeError, /does not fit/);
    // offsets must honour minStorageBufferOffsetAlignment when bound
    const odd = new BufferView(buffer, gpu.device.limits.minStorageBufferOffsetAlignment / 2, 16, "odd");
    assertThrows(() => fill(gpu, odd, 4), RangeError, /minStorageBufferOffsetAlignment/);
  },
});
