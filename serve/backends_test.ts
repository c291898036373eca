import assert from "node:assert/strict";
import { loadServeModel, predictionOf, type ServeModel, wasmThreadsRefused } from "./model.ts";
import { exportTestModel } from "./_test_model.ts";
import { createApp } from "./app.ts";
import { assertClose } from "../tests/util.ts";
import { BACKEND_F32, FP16_LOGITS, INT8_LOGITS } from "../tests/tolerance.ts";

// ORT's runtimes live for the whole file (process-wide), so sessions are not leaks.
const ORT = { sanitizeResources: false, sanitizeOps: false } as const;
const SENTENCES = [
  "the cat sat .",
  "the dogs runs",
  "a big red house near the tree",
  "",
  "sad man sees book",
];

async function logitsOf(model: ServeModel): Promise<Float32Array[]> {
  return await model.run(SENTENCES.map((s) => model.encode(s)));
}

const flat = (rows: Float32Array[]) => Float32Array.from(rows.flatMap((r) => Array.from(r)));
const labels = (model: ServeModel, rows: Float32Array[]) =>
  rows.map((r) => (predictionOf(r, model.manifest) as { label: string }).label);

Deno.test({
  name: "threads: the first wasm session sets them, /model's figure is what is in force",
  ...ORT,
  fn: async () => {
    const dir = await exportTestModel();
    try {
      const two = await loadServeModel(dir, { threads: 2 });
      assert.deepEqual([two.backend, two.threads, two.threadsNote], ["wasm", 2, null]);
      const one = await loadServeModel(dir, { threads: 1 });
      assert.equal(one.threads, 2, "onnxruntime-web starts once per isolate");
      assert.match(one.threadsNote!, /1 threads asked, 2 used: onnxruntime-web was already started/);
      assert.deepEqual(flat(await logitsOf(one)), flat(await logitsOf(two)));
      const app = await createApp({ model: one, batchWindowMs: 0 });
      const info = await (await app.fetch(new Request("http://x/model"))).json();
      assert.deepEqual([info.backend, info.variant, info.threads], ["wasm", "int8", 2]);
      assert.match(info.threadsNote, /already started/);
      await app.close();
      await one.release();
      await two.release();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("wasmThreadsRefused() names what an isolate lacks for threads", () => {
  assert.equal(wasmThreadsRefused(), null, "Deno has SharedArrayBuffer and Worker");
  assert.equal(wasmThreadsRefused({ Worker: class {} }), "this isolate has no SharedArrayBuffer");
  assert.equal(wasmThreadsRefused({ SharedArrayBuffer, Worker: undefined }), "this isolate has no Worker");
});

Deno.test({
  name: "wasm, native and webgpu give the same labels, logits within each variant's tolerance",
  ...ORT,
  fn: async () => {
    const dir = await exportTestModel();
    const models: ServeModel[] = [];
    try {
      const load = async (
        backend: "wasm" | "native" | "webgpu",
        variant: "float32" | "int8" | "float16",
      ) => {
        const m = await loadServeModel(dir, { backend, variant, threads: 2 });
        models.push(m);
        assert.deepEqual([m.backend, m.variant], [backend, variant]);
        return m;
      };
      const wasm32 = await load("wasm", "float32");
      const reference = await logitsOf(wasm32);
      const scale = flat(reference).reduce((m, x) => Math.max(m, Math.abs(x)), 0);
      // onnxruntime's WebGPU provider lacks MultiHeadAttention's key_padding_mask, which the default
      // (contrib-op) graph uses: float32 on webgpu needs the portable export (float16 always is).
      const portable = await exportTestModel({ portable: true });
      try {
        const m = await loadServeModel(portable, { backend: "webgpu", variant: "float32" });
        models.push(m);
        const got = await logitsOf(m);
        assertClose(flat(got), flat(reference), BACKEND_F32, "webgpu float32 (portable) vs wasm float32");
        assert.deepEqual(labels(m, got), labels(wasm32, reference), "webgpu");
      } finally {
        await Deno.remove(portable, { recursive: true });
      }
      await assert.rejects(load("webgpu", "float32"), {
        message: /MODEL_BACKEND webgpu cannot run .*model\.onnx.*re-export with --portable/s,
      });
      for (const [backend, variant] of [["native", "float32"]] as const) {
        const m = await load(backend, variant);
        const got = await logitsOf(m);
        assertClose(flat(got), flat(reference), BACKEND_F32, `${backend} ${variant} vs wasm float32`);
        assert.deepEqual(labels(m, got), labels(wasm32, reference), backend);
      }
      const wasm8 = await logitsOf(await load("wasm", "int8"));
      const native8 = await logitsOf(await load("native", "int8"));
      const int8 = { abs: INT8_LOGITS.abs * scale, rel: INT8_LOGITS.rel };
      assertClose(flat(native8), flat(wasm8), int8, "native int8 vs wasm int8");
      assertClose(flat(wasm8), flat(reference), int8, "wasm int8 vs float32");
      // float16 is WebGPU's variant; its numerics are the model's, so any backend with float16
      // kernels checks them. WebGPU runs it only where the adapter has shader-f16 (lavapipe has not).
      const fp16 = { abs: FP16_LOGITS.abs * scale, rel: FP16_LOGITS.rel };
      const gpu = await navigator.gpu?.requestAdapter();
      const fp16Backends = [
        "native",
        ...(gpu?.features.has("shader-f16") ? ["webgpu"] as const : []),
      ] as const;
      for (const backend of fp16Backends) {
        const m = await load(backend, "float16");
        const got = await logitsOf(m);
        assertClose(flat(got), flat(reference), fp16, `${backend} float16 vs wasm float32`);
        assert.deepEqual(labels(m, got), labels(wasm32, reference), `${backend} float16`);
      }
    } finally {
      for (const m of models) await m.release();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "startup errors name the backend setting and the fix",
  ...ORT,
  fn: async () => {
    const dir = await exportTestModel();
    try {
      await assert.rejects(loadServeModel(dir, { backend: "webgpu", variant: "int8" }), {
        name: "RangeError",
        message: /MODEL_BACKEND webgpu cannot run the int8 model .*set MODEL_VARIANT to float16 or float32/,
      });
      const gpu = await navigator.gpu?.requestAdapter();
      if (gpu && !gpu.features.has("shader-f16")) {
        await assert.rejects(loadServeModel(dir, { backend: "webgpu" }), {
          message:
            /MODEL_BACKEND webgpu with MODEL_VARIANT float16 needs the adapter feature shader-f16, .*set MODEL_VARIANT=float32/,
        });
      }
      await Deno.remove(`${dir}/model.fp16.onnx`);
      const manifest = JSON.parse(await Deno.readTextFile(`${dir}/serve.json`));
      delete manifest.models.float16;
      await Deno.writeTextFile(`${dir}/serve.json`, JSON.stringify(manifest));
      await assert.rejects(loadServeModel(dir, { backend: "native", variant: "float16" }), {
        name: "RangeError",
        message:
          /has no float16 model \(it lists float32, int8\) for MODEL_BACKEND native; set MODEL_VARIANT to one of those or re-export/,
      });
      // Native addons refused: the same load in a process without --allow-ffi.
      const script = `${dir}/load_native.ts`;
      await Deno.writeTextFile(
        script,
        `import { loadServeModel } from "${new URL("./model.ts", import.meta.url).href}";
        await loadServeModel(${JSON.stringify(dir)}, { backend: "native" });`,
      );
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--no-prompt", "--allow-read", "--allow-env", "--allow-sys", script],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 1, text);
      assert.match(
        text,
        /MODEL_BACKEND native needs native addons.*add --allow-ffi.*or use MODEL_BACKEND wasm/s,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
