import { add, addRef } from "./add.ts";
import { Rng } from "./random.ts";
import { assertClose, f32, GPU_TEST, randn, testGpu } from "../tests/util.ts";
import { KERNEL_F32 } from "../tests/tolerance.ts";

Deno.test({
  name: "add() matches its CPU reference on an odd length",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rng = new Rng(1);
    const n = 3 * 7 * 45;
    const a = randn(rng, n);
    const b = randn(rng, n);
    const out = gpu.buffer("out", n * 4);
    gpu.poison(out);
    gpu.run([add(gpu, gpu.upload("a", f32(a)), gpu.upload("b", f32(b)), out, n)]);
    assertClose(await gpu.readF32(out, n), addRef(a, b), KERNEL_F32, "add");
  },
});
