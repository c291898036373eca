import assert from "node:assert/strict";
import { FlatTensors } from "./flat.ts";
import { AdamW, decaySegments } from "./optimizer.ts";
import { flatLayout, type ParamSpec } from "./params.ts";
import { usesWeightDecay } from "./schedule.ts";
import { adamwRef } from "../kernels/adamw.ts";
import { gradNormRef } from "../kernels/grad_norm.ts";
import { Rng } from "../kernels/random.ts";
import { assertClose, f32, GPU_TEST, randn, testGpu } from "../tests/util.ts";
import { OPTIMIZER_F32 } from "../tests/tolerance.ts";
import type { Weights } from "./weights.ts";

// Decay and no-decay tensors (HF's groups), odd sizes, one larger than a small window.
const SPECS: ParamSpec[] = [
  { name: "enc.dense.weight", shape: [70, 90], init: "normal" },
  { name: "enc.dense.bias", shape: [70], init: "zeros" },
  { name: "enc.LayerNorm.weight", shape: [3], init: "ones" },
  { name: "enc.LayerNorm.bias", shape: [3], init: "zeros" },
  { name: "head.weight", shape: [2, 5], init: "normal" },
];

// The same with packs (as the fused Q/K/V weights and a layer's biases): odd sizes, so members sit at
// unaligned offsets, in state_dict order interleaved with their other group.
const PACKED: ParamSpec[] = [
  { name: "q.weight", shape: [7, 9], init: "normal", pack: "qk.weight" },
  { name: "q.bias", shape: [7], init: "zeros", pack: "biases" },
  { name: "k.weight", shape: [5, 9], init: "normal", pack: "qk.weight" },
  { name: "k.bias", shape: [5], init: "zeros", pack: "biases" },
  ...SPECS,
  { name: "out.bias", shape: [3], init: "zeros", pack: "biases" },
];

function random(rng: Rng, scale = 1, specs = SPECS): Weights {
  return new Map(specs.map((s) => [s.name, f32(randn(rng, s.shape.reduce((a, b) => a * b), scale))]));
}

Deno.test("flatLayout() packs tensors back to back from an aligned offset; spans and segments follow", async () => {
  const l = flatLayout(PACKED);
  assert.deepEqual(l.entries.map((e) => [e.name, e.offset]).slice(0, 4), [
    ["q.weight", 0],
    ["q.bias", 128],
    ["k.weight", 63],
    ["k.bias", 135],
  ]);
  assert.deepEqual(l.entries.at(-1)!.offset, 140);
  assert.deepEqual(l.entries[4].offset, 192); // the next unpacked tensor: aligned after the pack
  assert.deepEqual(decaySegments(l).slice(0, 3), [
    { offset: 0, length: 108, decay: true },
    { offset: 128, length: 15, decay: false },
    { offset: 192, length: 6300, decay: true },
  ]);
  const mixed: ParamSpec[] = [
    { name: "a.weight", shape: [3], init: "normal", pack: "p" },
    { name: "a.bias", shape: [3], init: "zeros", pack: "p" },
  ];
  assert.throws(() => decaySegments(flatLayout(mixed)), /share a pack but not a weight-decay group/);
  const gpu = await testGpu();
  const flat = new FlatTensors(gpu, l, "t");
  const data = random(new Rng(3), 1, PACKED);
  flat.write(data);
  const qk = await gpu.readF32(flat.span(["q.weight", "k.weight"]));
  assert.deepEqual(qk, Float32Array.from([...data.get("q.weight")!, ...data.get("k.weight")!]));
  assert.throws(() => flat.span(["q.weight", "q.bias"]), /not adjacent/);
  assert.throws(() => flat.span(["nope"]), /Unknown tensor "nope"/);
});

Deno.test("flatLayout() puts every tensor at a 256-byte offset in state_dict order", () => {
  const l = flatLayout(SPECS);
  assert.deepEqual(l.entries.map((e) => [e.name, e.offset, e.length]), [
    ["enc.dense.weight", 0, 6300],
    ["enc.dense.bias", 6336, 70],
    ["enc.LayerNorm.weight", 6464, 3],
    ["enc.LayerNorm.bias", 6528, 3],
    ["head.weight", 6592, 10],
  ]);
  assert.deepEqual(l.total, 6656);
});

Deno.test({
  name: "FlatTensors: views round-trip, windows tile the arena, clear() zeroes every window",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const flat = new FlatTensors(gpu, flatLayout(SPECS), "t", 2048);
    let at = 0;
    for (const w of flat.windows) {
      assert.deepEqual(w.first, at);
      assert(w.length * 4 <= 2048);
      at += w.length;
    }
    assert.deepEqual(at, flat.layout.total);
    const data = random(new Rng(5));
    flat.write(data);
    const back = await flat.read();
    for (const [name, x] of data) assert.deepEqual(back.get(name), x, name);
    gpu.run(flat.clear());
    assert((await gpu.readF32(flat.buffer)).every((x) => x === 0));
  },
});

Deno.test({
  name:
    "AdamW over arena windows matches per-tensor torch semantics (no-decay group, clipping), any window size",
  ...GPU_TEST,
  fn: async () => {
    for (const specs of [SPECS, PACKED]) await adamwCase(specs);
  },
});

async function adamwCase(specs: ParamSpec[]) {
  const gpu = await testGpu();
  const layout = flatLayout(specs);
  const rng = new Rng(8);
  const init = random(rng, 1, specs);
  const grads = [random(rng, 3, specs), random(rng, 0.1, specs)];
  const results: Weights[] = [];
  // 2 windows of whole 4096-element grad-norm chunks: the same partial sums, so bit-identical results
  for (const windowBytes of [Infinity, 4096 * 4]) {
    const params = new FlatTensors(gpu, layout, "p", windowBytes);
    const g = new FlatTensors(gpu, layout, "g", windowBytes);
    params.write(init);
    const opt = new AdamW(gpu, params, g, { weightDecay: 0.1, maxGradNorm: 1, eps: 1e-8 });
    const steps = grads.length;
    assert.deepEqual(opt.next(1e-2).length, 2 * params.windows.length + 1);
    opt.step = 0;
    for (const grad of grads) {
      g.write(grad);
      gpu.run(opt.next(1e-2));
    }
    assert.deepEqual(opt.step, steps);
    results.push(await params.read());
  }
  // CPU reference: torch's per-tensor AdamW with HF's groups after clip_grad_norm_.
  const ref = new Map([...init].map(([name, x]) => [name, {
    param: Float64Array.from(x),
    expAvg: new Float64Array(x.length),
    expAvgSq: new Float64Array(x.length),
  }]));
  grads.forEach((grad, s) => {
    const [, clip] = gradNormRef([...grad.values()], 1);
    const h = { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: s + 1 };
    for (const [name, r] of ref) {
      adamwRef({ ...r, grad: grad.get(name)!, weightDecay: usesWeightDecay(name) ? 0.1 : 0, clip }, h);
    }
  });
  for (const [name, r] of ref) {
    assert.deepEqual(results[1].get(name), results[0].get(name), `${name}: windows change nothing`);
    assertClose(results[0].get(name)!, r.param, OPTIMIZER_F32, `${name} vs reference`);
  }
}
