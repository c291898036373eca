import { describeAdapter, requestDevice, REQUIRED_LIMITS } from "./device.ts";
import { assertThrows } from "../tests/util.ts";

Deno.test({
  name: "requestDevice() reports the adapter and grants the limits training needs",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { device, report } = await requestDevice();
    // Here the adapter is Mesa's software rasteriser; nothing may require a real GPU.
    if (!report.description || typeof report.isFallback !== "boolean") {
      throw new Error(JSON.stringify(report));
    }
    for (const [name, need] of Object.entries(REQUIRED_LIMITS)) {
      const got = device.limits[name as keyof GPUSupportedLimits] as number;
      if (!(got >= need)) throw new Error(`${name}: granted ${got}, need ${need}`);
    }
    device.destroy();
  },
});

Deno.test({
  name: "requestDevice() names the limit, the value needed and the value offered when one is too low",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const adapter = (await navigator.gpu.requestAdapter())!;
    const offered = adapter.limits.maxStorageBufferBindingSize;
    const err = await requestDevice({ limits: { maxStorageBufferBindingSize: offered + 1 } }).then(
      () => null,
      (e) => e,
    );
    assertThrows(
      () => {
        if (err) throw err;
      },
      RangeError,
      new RegExp(
        `"maxStorageBufferBindingSize" is ${offered}, but ${offered + 1} is needed: use a smaller batch`,
      ),
    );
    if (describeAdapter(adapter).limits.maxStorageBufferBindingSize !== offered) {
      throw new Error("report limits");
    }
  },
});

Deno.test("requestDevice() explains a missing adapter", async () => {
  const gpu = navigator.gpu;
  const original = gpu.requestAdapter;
  gpu.requestAdapter = () => Promise.resolve(null);
  try {
    const err = await requestDevice().then(() => null, (e) => e as Error);
    if (
      !err || !/No WebGPU adapter found: install a GPU driver, or Mesa's Vulkan drivers/.test(err.message)
    ) {
      throw new Error(`got ${err}`);
    }
  } finally {
    gpu.requestAdapter = original;
  }
});
