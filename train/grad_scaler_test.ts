import { GradScaler } from "./grad_scaler.ts";
import { GPU_TEST, testGpu } from "../tests/util.ts";

Deno.test({
  name: "GradScaler follows torch's rule: backoff on overflow, growth after the interval, scale on the GPU",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const buffer = gpu.buffer("scale", 16);
    const scaler = new GradScaler(gpu, buffer, { growthInterval: 3 });
    const onGpu = async () => (await gpu.readF32(buffer, 1))[0];
    if (scaler.scale !== 65536 || (await onGpu()) !== 65536) throw new Error("initial scale is not 2^16");
    const trace: string[] = [];
    for (const inf of [false, false, true, false, false, false, false]) {
      const skip = scaler.update(inf);
      const s = scaler.state();
      trace.push(`${skip ? "skip" : "ok"}:${s.scale}:${s.growthTracker}`);
    }
    // torch: growth_tracker resets on overflow and on growth; the scale grows on the 3rd good step in a row.
    const expected = [
      "ok:65536:1",
      "ok:65536:2",
      "skip:32768:0",
      "ok:32768:1",
      "ok:32768:2",
      "ok:65536:0",
      "ok:65536:1",
    ];
    if (trace.join() !== expected.join()) throw new Error(`got ${trace.join()}`);
    const skippedBefore: number = scaler.skipped;
    if (skippedBefore !== 1 || (await onGpu()) !== 65536) throw new Error("skip count or GPU scale wrong");
    scaler.load({ scale: 8, growthTracker: 2, skipped: 4 });
    if ((await onGpu()) !== 8 || scaler.skipped !== 4) throw new Error("load() did not restore the state");
  },
});

Deno.test({
  name: "GradScaler rejects settings and states that cannot work, naming them",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const buffer = gpu.buffer("scale", 16);
    const cases: [() => unknown, RegExp][] = [
      [() => new GradScaler(gpu, buffer, { initScale: 0 }), /initScale/],
      [() => new GradScaler(gpu, buffer, { growthFactor: 1 }), /growthFactor/],
      [() => new GradScaler(gpu, buffer, { backoffFactor: 1 }), /backoffFactor/],
      [() => new GradScaler(gpu, buffer, { growthInterval: 0.5 }), /growthInterval/],
      [() => new GradScaler(gpu, buffer).load({ scale: -1, growthTracker: 0, skipped: 0 }), /not valid/],
    ];
    for (const [f, re] of cases) {
      let message = "";
      try {
        f();
      } catch (e) {
        message = (e as Error).message;
      }
      if (!re.test(message)) throw new Error(`expected ${re}, got "${message}"`);
    }
  },
});
