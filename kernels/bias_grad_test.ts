import { throws } from "node:assert/strict";
import { biasGrad, biasGradRef } from "./bias_grad.ts";
import { matmulRef } from "./matmul.ts";
import { Rng } from "./random.ts";
import type { Dispatch, Gpu } from "./runtime.ts";
import { readSafetensors } from "../formats/safetensors.ts";
import { assertClose, dot, f32, finiteDifference, GPU_TEST, randn, testGpu } from "../tests/util.ts";
import { FINITE_DIFF, REDUCTION_F32, REF_F64 } from "../tests/tolerance.ts";

const FIXTURE = new URL("../tests/fixtures/kernels/bias_grad.safetensors", import.meta.url).pathname;

/** Runs biasGrad on dy (rows, cols); dbias starts poisoned, or from `init` when accumulating. */
async function gpuBiasGrad(
  gpu: Gpu,
  dy: ArrayLike<number>,
  rows: number,
  cols: number,
  init?: Float32Array,
  reshape?: (d: Dispatch) => Dispatch,
): Promise<Float32Array> {
  const dbias = init ? gpu.upload("dbias", init) : gpu.buffer("dbias", cols * 4);
  if (!init) gpu.poison(dbias);
  const dispatches = biasGrad(gpu, { dy: gpu.upload("dy", f32(dy)), dbias, rows, cols, accumulate: !!init });
  gpu.run(reshape ? dispatches.map(reshape) : dispatches);
  return await gpu.readF32(dbias, cols);
}

// (rows, cols): B·T = 21 with odd widths, single rows and columns, more rows than row lanes and
// more columns than one workgroup.
const SHAPES: [number, number][] = [[21, 33], [1, 1], [1, 45], [5, 7], [70, 5], [300, 100]];

Deno.test({
  name: "biasGrad() matches biasGradRef, overwriting a poisoned dbias or accumulating into it",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(21);
    for (const [rows, cols] of SHAPES) {
      const dy = f32(randn(rng, rows * cols));
      const want = biasGradRef(dy, rows, cols);
      assertClose(await gpuBiasGrad(gpu, dy, rows, cols), want, REDUCTION_F32, `biasGrad ${rows}x${cols}`);
      const init = f32(randn(rng, cols));
      const sum = want.map((v, c) => v + init[c]);
      assertClose(
        await gpuBiasGrad(gpu, dy, rows, cols, init),
        sum,
        REDUCTION_F32,
        `accumulate ${rows}x${cols}`,
      );
    }
  },
});

Deno.test({
  name: "biasGrad() finds its columns on a 2-D workgroup grid",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(22);
    const [rows, cols] = [9, 100]; // 4 workgroups of 32 columns, laid out 3 wide with spare groups
    const dy = f32(randn(rng, rows * cols));
    const on2d = (d: Dispatch): Dispatch => ({ ...d, workgroups: [3, 2, 1] });
    assertClose(
      await gpuBiasGrad(gpu, dy, rows, cols, undefined, on2d),
      biasGradRef(dy, rows, cols),
      REDUCTION_F32,
    );
  },
});

Deno.test("biasGradRef() is the gradient of a bias added to every row (finite differences)", () => {
  const rng = new Rng(23);
  const [rows, cols, K] = [7, 5, 3];
  const x = randn(rng, rows * K);
  const w = randn(rng, K * cols);
  const dy = randn(rng, rows * cols); // loss = sum(dy * (x·w + bias))
  const loss = (bias: Float64Array) =>
    dot(dy, matmulRef(x, w, new Float64Array(rows * cols), { M: rows, N: cols, K, bias }));
  const bias = randn(rng, cols);
  assertClose(biasGradRef(dy, rows, cols), finiteDifference(loss, bias), FINITE_DIFF, "dbias");
});

Deno.test({
  name: "biasGrad() matches the PyTorch autograd bias gradient",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const fx = await readSafetensors(FIXTURE);
    const dy = fx.tensors.get("dy")!;
    const torch = fx.tensors.get("dbias")!.data as Float64Array;
    const [rows, cols] = dy.shape;
    assertClose(biasGradRef(dy.data as Float32Array, rows, cols), torch, REF_F64, "biasGradRef vs torch");
    assertClose(
      await gpuBiasGrad(gpu, dy.data as Float32Array, rows, cols),
      torch,
      REDUCTION_F32,
      "biasGrad vs torch",
    );
  },
});

Deno.test({
  name: "biasGrad() rejects bad sizes and small buffers with a RangeError",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const dy = gpu.buffer("dy", 6 * 4);
    const dbias = gpu.buffer("dbias", 4 * 4);
    biasGrad(gpu, { dy, dbias, rows: 2, cols: 3 }); // the valid baseline prepares fine
    const bad: [string, Parameters<typeof biasGrad>[1]][] = [
      ["rows must be a positive integer", { dy, dbias, rows: 0, cols: 3 }],
      ["cols must be a positive integer", { dy, dbias, rows: 2, cols: 2.5 }],
      ["dy (3, 3) needs 36 bytes", { dy, dbias, rows: 3, cols: 3 }],
      ["dbias (5) needs 20 bytes", { dy, dbias, rows: 1, cols: 5 }],
    ];
    for (const [message, args] of bad) {
      throws(
        () => biasGrad(gpu, args),
        (e: unknown) => e instanceof RangeError && e.message.includes(message),
        message,
      );
    }
    throws(() => biasGradRef([1, 2], 1, 3), RangeError);
  },
});
