import assert from "node:assert/strict";
import { loadServeModel, parseManifest, predictionOf, type ServeModel } from "./model.ts";
import { exportTestModel } from "./_test_model.ts";
import { startTestServer } from "../train/_test_server.ts";
import { floatTensor, readSafetensors } from "../formats/safetensors.ts";
import { assertClose } from "../tests/util.ts";
import { EXACT, INT8_LOGITS, ONNX_F32 } from "../tests/tolerance.ts";
import type { Encoding } from "../tokenizer/mod.ts";

// ORT's wasm runtime lives for the whole file (it is process-wide), so sessions are not leaks.
const ORT = { sanitizeResources: false, sanitizeOps: false } as const;
const FIXTURE = new URL("../tests/fixtures/model/tiny/", import.meta.url).pathname;

/** The PyTorch fixture batch as unpadded encodings (padding is wherever attention_mask is 0). */
async function fixtureRows(): Promise<{ rows: Encoding[]; logits: Float32Array }> {
  const stored = await readSafetensors(`${FIXTURE}batch.safetensors`);
  const [batch, seq] = stored.tensors.get("input_ids")!.shape;
  const get = (name: string) => stored.tensors.get(name)!.data as Int32Array;
  const rows: Encoding[] = [];
  for (let b = 0; b < batch; b++) {
    const mask = get("attention_mask").subarray(b * seq, (b + 1) * seq);
    const n = mask.reduce((a, v) => a + v, 0);
    assert.ok(mask.subarray(0, n).every((v) => v === 1), "fixture rows are right-padded");
    rows.push({
      ids: get("input_ids").slice(b * seq, b * seq + n),
      attentionMask: mask.slice(0, n),
      tokenTypeIds: get("token_type_ids").slice(b * seq, b * seq + n),
      truncated: false,
    });
  }
  const expected = await readSafetensors(`${FIXTURE}expected.safetensors`);
  return { rows, logits: floatTensor(expected, "logits") };
}

const flat = (rows: Float32Array[]) => Float32Array.from(rows.flatMap((r) => Array.from(r)));
const maxAbs = (v: Float32Array) => v.reduce((m, x) => Math.max(m, Math.abs(x)), 0);

Deno.test({
  name: "loadServeModel() reproduces PyTorch's logits on the fixture batch (float32 and int8)",
  ...ORT,
  fn: async () => {
    const dir = await exportTestModel();
    const models: ServeModel[] = [];
    try {
      const { rows, logits } = await fixtureRows();
      const f32 = await loadServeModel(dir, { variant: "float32" });
      models.push(f32);
      assert.deepEqual(
        [f32.file, f32.variant, f32.bytes],
        ["model.onnx", "float32", (await Deno.stat(`${dir}/model.onnx`)).size],
      );
      assert.deepEqual(f32.inputNames, ["input_ids", "attention_mask", "token_type_ids"]);
      assert.deepEqual(f32.outputNames, ["logits"]);
      assertClose(flat(await f32.run(rows)), logits, ONNX_F32, "served float32 vs PyTorch");

      const int8 = await loadServeModel(`${dir}/`); // int8 is the default variant
      models.push(int8);
      assert.equal(int8.file, "model.int8.onnx");
      const scale = maxAbs(logits);
      assertClose(
        flat(await int8.run(rows)),
        logits,
        { abs: INT8_LOGITS.abs * scale, rel: 0 },
        "served int8",
      );
    } finally {
      for (const m of models) await m.release();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "loadServeModel() loads the same model from an http URL as from the folder",
  ...ORT,
  fn: async () => {
    const dir = await exportTestModel();
    const files: Record<string, { body: Uint8Array<ArrayBuffer> }> = {};
    for await (const e of Deno.readDir(dir)) {
      if (!e.isFile) continue; // onnx/ (the transformers.js layout) is not what serve reads
      files[`/export/${e.name}`] = { body: await Deno.readFile(`${dir}/${e.name}`) };
    }
    const server = startTestServer(files);
    const models: ServeModel[] = [];
    try {
      const local = await loadServeModel(dir);
      models.push(local);
      const remote = await loadServeModel(`${server.origin}/export`); // no trailing slash: still the folder
      models.push(remote);
      assert.equal(remote.bytes, local.bytes);
      assert.deepEqual(remote.manifest, local.manifest);
      const texts = ["the cat sat on the mat.", "Dogs RUN!", ""];
      const rows = texts.map((t) => remote.encode(t));
      assert.deepEqual(rows, texts.map((t) => local.encode(t)));
      assertClose(flat(await remote.run(rows)), flat(await local.run(rows)), EXACT, "remote vs local");
      const fetched = server.requests.map((r) => r.path).sort();
      assert.ok(
        fetched.includes("/export/serve.json") && fetched.includes("/export/model.int8.onnx"),
        `${fetched}`,
      );
      assert.ok(!fetched.includes("/export/model.onnx"), "only the chosen variant is downloaded");

      server.files.delete("/export/serve.json");
      await assert.rejects(
        loadServeModel(`${server.origin}/export/`),
        (e: Error) =>
          e instanceof Deno.errors.NotFound &&
          e.message.includes(`${server.origin}/export/serve.json`) && e.message.includes("HTTP 404"),
      );
    } finally {
      for (const m of models) await m.release();
      await server.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "loadServeModel() names the missing folder or the file at fault",
  ...ORT,
  fn: async () => {
    const dir = await exportTestModel();
    const manifestPath = `${dir}/serve.json`;
    const manifest = JSON.parse(await Deno.readTextFile(manifestPath));
    const rejects = (name: string, message: RegExp, variant?: "float32") =>
      assert.rejects(loadServeModel(dir, { variant }), (e: Error) => {
        assert.equal(e.name, name, e.message);
        assert.match(e.message, message);
        return true;
      });
    try {
      await assert.rejects(loadServeModel(`${dir}/nope`), {
        name: "NotFound",
        message:
          `Cannot load model "${dir}/nope": the folder does not exist; export a model there or set MODEL_DIR`,
      });
      await Deno.writeTextFile(manifestPath, "{ labels");
      await rejects(
        "SyntaxError",
        new RegExp(`^Cannot load model "${dir}": "${manifestPath}" is not valid JSON`),
      );
      await Deno.writeTextFile(manifestPath, JSON.stringify({ ...manifest, labels: [] }));
      await rejects("TypeError", /serve\.json" has labels \[\], not a non-empty list of strings/);
      await Deno.writeTextFile(
        manifestPath,
        JSON.stringify({ ...manifest, models: { int8: "model.int8.onnx" } }),
      );
      await rejects(
        "RangeError",
        /has no float32 model \(it lists int8\) for MODEL_BACKEND wasm; set MODEL_VARIANT/,
        "float32",
      );
      await Deno.writeTextFile(manifestPath, JSON.stringify({ ...manifest, labels: ["a", "b", "c"] }));
      await rejects("RangeError", /model\.int8\.onnx" gives 2 logits .* but serve\.json has 3 labels/);
      await Deno.writeTextFile(manifestPath, JSON.stringify(manifest));

      await Deno.writeFile(`${dir}/model.int8.onnx`, new TextEncoder().encode("not a protobuf at all"));
      await rejects("Error", new RegExp(`"${dir}/model\\.int8\\.onnx" is not a loadable ONNX model`));
      await Deno.remove(`${dir}/model.onnx`);
      await rejects("NotFound", new RegExp(`"${dir}/model\\.onnx" does not exist`), "float32");
      await Deno.remove(`${dir}/vocab.txt`);
      await Deno.remove(manifestPath);
      await rejects("NotFound", new RegExp(`"${manifestPath}" does not exist`));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "ServeModel.encode() truncates to serve.json's maxLength and says so",
  ...ORT,
  fn: async () => {
    const dir = await exportTestModel({ maxLength: 8 });
    const model = await loadServeModel(dir);
    try {
      const short = model.encode("the cat");
      assert.deepEqual(Array.from(short.ids), [
        2,
        model.tokenizer.tokenToId("the")!,
        model.tokenizer.tokenToId("cat")!,
        3,
      ]);
      assert.equal(short.truncated, false);
      const long = model.encode("the big red cat sat near the house with the man");
      assert.equal(long.ids.length, 8);
      assert.equal(long.truncated, true);
      const pair = model.encode("the cat sat", "the dog runs near the tree");
      assert.equal(pair.ids.length, 8);
      assert.equal(pair.truncated, true);
      assert.deepEqual(Array.from(model.encode("").ids), [2, 3]);
    } finally {
      await model.release();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("parseManifest() accepts what the exporter writes and rejects what it never writes", () => {
  const ok = {
    labels: ["unacceptable", "acceptable"],
    maxLength: 12,
    models: { float32: "model.onnx", int8: "model.int8.onnx" },
    problemType: "single_label_classification",
  };
  assert.deepEqual(parseManifest(JSON.stringify(ok)), ok);
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ ...ok, labels: ["a", "a"] }, /labels \["a","a"\] with a repeat/],
    [{ ...ok, maxLength: 1 }, /maxLength 1, not a whole number >= 2/],
    [{ ...ok, models: { int8: "../../etc/passwd" } }, /models .*, not a map of variant to file name/],
    [{ ...ok, problemType: "multi_label_classification" }, /problemType "multi_label_classification"/],
    [{ ...ok, problemType: "regression" }, /2 labels for regression/],
  ];
  for (const [manifest, message] of bad) {
    assert.throws(() => parseManifest(JSON.stringify(manifest), "x/serve.json"), {
      name: "TypeError",
      message: new RegExp(`^"x/serve\\.json" has ${message.source}`),
    });
  }
  assert.throws(() => parseManifest("[1]"), { name: "TypeError", message: /has no JSON object/ });
});

Deno.test("predictionOf() gives softmax probabilities and the top label, or the regression value", () => {
  const manifest = { labels: ["neg", "neu", "pos"], problemType: "single_label_classification" } as const;
  const logits = [0.5, -1.25, 2];
  const p = predictionOf(logits, manifest);
  assert.ok("probabilities" in p);
  assert.equal(p.label, "pos");
  const probs = manifest.labels.map((l) => p.probabilities[l]);
  assert.ok(Math.abs(probs.reduce((a, b) => a + b) - 1) < 1e-15);
  // Softmax's defining property: probability ratios are exp(logit differences).
  assertClose([probs[2] / probs[0], probs[1] / probs[0]], [Math.exp(1.5), Math.exp(-1.75)], {
    abs: 0,
    rel: 1e-14,
  });
  assert.equal(p.score, probs[2]);
  // Large logits must not overflow exp().
  const big = predictionOf([1000, 1000 - Math.log(3)], {
    labels: ["a", "b"],
    problemType: manifest.problemType,
  });
  assert.ok("probabilities" in big);
  assertClose([big.probabilities.a, big.probabilities.b], [0.75, 0.25], { abs: 1e-12, rel: 0 });
  assert.deepEqual(predictionOf([-0.375], { labels: ["score"], problemType: "regression" }), {
    label: "score",
    score: -0.375,
    value: -0.375,
  });
});
