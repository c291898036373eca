import assert from "node:assert/strict";
import { costOf, type GpuPeak } from "./_cost.ts";
import type { Dispatch } from "../kernels/runtime.ts";

const peak: GpuPeak = { name: "test", flopsPerSecond: 1e12, bytesPerSecond: 1e11 };
const d = (family: string, flops: number, bytes: number) => ({ cost: { family, flops, bytes } }) as Dispatch;

Deno.test("costOf() sums families and takes each dispatch's roofline (compute or memory bound)", () => {
  // matmul: 2e9 FLOP = 2 ms compute vs 1e7 B = 0.1 ms memory -> 2 ms; fill: 1e8 B = 1 ms memory
  const r = costOf([d("matmul", 2e9, 1e7), d("fill", 0, 1e8), d("matmul", 1e9, 2e8)], peak);
  assert.deepEqual(r.totals, { flops: 3e9, bytes: 3.1e8 });
  assert.deepEqual(r.families.map((f) => [f.family, f.dispatches]), [["matmul", 2], ["fill", 1]]);
  // the second matmul is memory bound: max(1 ms, 2 ms) = 2 ms
  assert.ok(Math.abs(r.families[0].estimateMs - 4) < 1e-9);
  assert.ok(Math.abs(r.estimate.ms - 5) < 1e-9);
  assert.ok(Math.abs(r.estimate.computeMs - 3) < 1e-9);
  assert.ok(Math.abs(r.estimate.memoryMs - 3.1) < 1e-9);
});
