// In-process tests of createApp(); serve/main_test.ts covers the same routes over real HTTP.
import assert from "node:assert/strict";
import { createApp } from "./app.ts";
import { loadServeModel, type ServeModel } from "./model.ts";
import { exportTestModel } from "./_test_model.ts";
import { assertClose } from "../tests/util.ts";
import { EXACT } from "../tests/tolerance.ts";

const ORT = { sanitizeResources: false, sanitizeOps: false } as const;

function classify(body: unknown): Request {
  return new Request("http://serve.test/classify", { method: "POST", body: JSON.stringify(body) });
}

Deno.test({
  name: "createApp() with window 0 gives every concurrent request its own session run",
  ...ORT,
  fn: async () => {
    const dir = await exportTestModel();
    const model = await loadServeModel(dir);
    const app = await createApp({ model, batchWindowMs: 0 });
    try {
      const texts = ["the cat", "a dog runs.", "", "the big red house", "men see men", "is it good ?"];
      const responses = await Promise.all(texts.map((text) => app.fetch(classify({ text }))));
      assert.deepEqual(responses.map((r) => r.headers.get("x-batch-size")), texts.map(() => "1"));
      const stats = (await (await app.fetch(new Request("http://serve.test/model"))).json()).stats;
      assert.deepEqual(stats, { requests: 6, sessionRuns: 6, textsRun: 6 });
      // A request's own texts still run together (up to MAX_BATCH).
      const many = await app.fetch(classify({ texts }));
      assert.equal(many.headers.get("x-batch-size"), "6");
    } finally {
      await app.close();
      await model.release(); // close() leaves a model passed in to its owner
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "createApp() answers a regression model with its raw output as value",
  ...ORT,
  fn: async () => {
    const dir = await exportTestModel({ fixture: "regression", maxLength: 8 });
    const app = await createApp({ modelDir: dir, variant: "float32" });
    try {
      const texts = ["the cat", "a dog runs near the red house."];
      const response = await app.fetch(classify({ texts }));
      assert.equal(response.status, 200);
      const { results, model } = await response.json();
      assert.deepEqual(model, { variant: "float32", file: "model.onnx" });
      const expected = await app.model.run(texts.map((t) => app.model.encode(t)));
      assertClose(
        results.map((r: { value: number }) => r.value),
        expected.map((row) => row[0]),
        EXACT,
        "value",
      );
      const keys = ["label", "score", "truncated", "value"];
      assert.deepEqual(results.map((r: object) => Object.keys(r).sort()), [keys, keys]);
      assert.deepEqual(
        results.map((r: { score: number; value: number }) => r.score),
        results.map((r: { value: number }) => r.value),
      );
      // 2 + 2 tokens fit in 8; the second text is 8 words and "." (any of them [UNK] in this 30-token
      // vocabulary, still one token each), 10 tokens with [CLS] and [SEP].
      assert.deepEqual(results.map((r: { truncated: boolean }) => r.truncated), [false, true]);
      const info = await (await app.fetch(new Request("http://serve.test/model"))).json();
      assert.deepEqual([info.problemType, info.labels, info.quantization], [
        "regression",
        ["score"],
        "none (float32)",
      ]);
    } finally {
      await app.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "createApp() turns a failed session run into a 500 and keeps serving",
  ...ORT,
  fn: async () => {
    const dir = await exportTestModel();
    const real = await loadServeModel(dir);
    let failNext = true;
    const flaky: ServeModel = Object.assign(Object.create(real), {
      run(rows: Parameters<ServeModel["run"]>[0]) {
        if (failNext) {
          failNext = false;
          return Promise.reject(new Error("wasm memory exhausted"));
        }
        return real.run(rows);
      },
    });
    const app = await createApp({ model: flaky, maxTexts: 2, maxBodyBytes: 64 });
    const log = console.error;
    console.error = () => {}; // the server logs the failure; keep the test output clean
    try {
      const failed = await app.fetch(classify({ text: "the cat" }));
      assert.equal(failed.status, 500);
      assert.deepEqual((await failed.json()).error, {
        code: "inference_failed",
        message: "Inference failed: wasm memory exhausted",
      });
      assert.equal((await app.fetch(classify({ text: "the cat" }))).status, 200);
      // The limits come from the options.
      const tooMany = await app.fetch(classify({ texts: ["a", "b", "c"] }));
      assert.deepEqual([tooMany.status, (await tooMany.json()).error.code], [413, "too_many_texts"]);
      const tooBig = await app.fetch(classify({ text: "x".repeat(100) }));
      assert.deepEqual([tooBig.status, (await tooBig.json()).error.code], [413, "body_too_large"]);
      const head = await app.fetch(new Request("http://serve.test/health", { method: "HEAD" }));
      assert.deepEqual([head.status, await head.text()], [200, ""]);
    } finally {
      console.error = log;
      await app.close();
      await real.release();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("createApp() rejects bad settings before loading anything", async () => {
  await assert.rejects(createApp({ modelDir: "/no/such/model", maxBatch: 0 }), {
    name: "RangeError",
    message: /^maxBatch 0 must be a whole number >= 1/,
  });
  await assert.rejects(createApp({ modelDir: "/no/such/model" }), {
    name: "NotFound",
    message: /^Cannot load model "\/no\/such\/model": the folder does not exist/,
  });
});
