import { fill } from "./fill.ts";
import { assertClose, GPU_TEST, testGpu } from "../tests/util.ts";
import { KERNEL_F32 } from "../tests/tolerance.ts";

Deno.test({
  name: "fill() writes the value to the first n elements only",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const out = gpu.upload("out", new Float32Array(300).fill(7));
    gpu.run([fill(gpu, out, 257, -1.5)]);
    const got = await gpu.readF32(out, 300);
    const want = new Float32Array(300).fill(7);
    want.fill(-1.5, 0, 257);
    assertClose(got, want, KERNEL_F32, "fill");
  },
});
