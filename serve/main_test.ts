// These tests start the real server (`deno serve serve/main.ts`) as a child process and talk HTTP to it.
import assert from "node:assert/strict";
import * as ort from "npm:onnxruntime-web@1.30.0";
import { serveExpectingFailure, type ServerProcess, spawnServer } from "../tests/spawn.ts";
import { exportTestModel } from "./_test_model.ts";
import { loadTokenizer } from "../tokenizer/mod.ts";
import { assertClose } from "../tests/util.ts";
import { ONNX_F32 } from "../tests/tolerance.ts";

ort.env.wasm.numThreads = 1;
const LABELS = ["unacceptable", "acceptable"];
const MAX_LENGTH = 12;
const TEXTS = [
  "the cat sat on the mat.",
  "the big red dog sees the man near the house with the tree",
  "",
  "Cats RUN!",
  "is it a book ?",
];
const PAIRS = [
  "a dog runs.",
  "",
  "the men are happy",
  "very good",
  "the woman reads a book near the big house",
];

/** A /classify reply: results, or an error. */
interface Reply {
  results: ClassifyResult[];
  model: { variant: string; file: string };
  error: { code: string; message: string };
}

/** The parts of GET /model the tests read. */
interface ModelInfo {
  labels: string[];
  maxLength: number;
  variant: string;
  file: string;
  bytes: number;
  inputs: string[];
  stats: { requests: number; sessionRuns: number; textsRun: number };
}

interface ClassifyResult {
  label: string;
  score: number;
  probabilities: Record<string, number>;
  truncated: boolean;
}

async function post(
  server: ServerProcess,
  body: unknown,
): Promise<{ status: number; batch: number; json: Reply }> {
  const response = await fetch(`${server.origin}/classify`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return {
    status: response.status,
    batch: Number(response.headers.get("x-batch-size")),
    json: await response.json(),
  };
}

async function getJson<T>(server: ServerProcess, path: string): Promise<T> {
  const response = await fetch(`${server.origin}${path}`);
  assert.equal(response.status, 200, path);
  return await response.json();
}

/** softmax in float64 over one row of float32 logits (the oracle for the served probabilities). */
function softmax(row: ArrayLike<number>): number[] {
  const m = Math.max(...Array.from(row));
  const e = Array.from(row, (v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

const sessions = new Map<string, Promise<ort.InferenceSession>>();
const tokenizers = new Map<string, ReturnType<typeof loadTokenizer>>();
const tokenizerOf = (dir: string) => tokenizers.get(dir) ?? tokenizers.set(dir, loadTokenizer(dir)).get(dir)!;

/** What onnxruntime-web, run directly on `file`, says for `texts` tokenized as one padded batch. */
async function directProbabilities(
  dir: string,
  file: string,
  texts: string[],
  pairs?: string[],
): Promise<number[][]> {
  const tokenizer = await tokenizerOf(dir);
  const batch = tokenizer.encodeBatch(texts, { pairs, maxLength: MAX_LENGTH });
  const path = `${dir}/${file}`;
  if (!sessions.has(path)) sessions.set(path, ort.InferenceSession.create(path));
  const session = await sessions.get(path)!;
  const t = (v: Int32Array) =>
    new ort.Tensor("int64", BigInt64Array.from(v, BigInt), [batch.batchSize, batch.seqLen]);
  const out = await session.run({
    input_ids: t(batch.inputIds),
    attention_mask: t(batch.attentionMask),
    token_type_ids: t(batch.tokenTypeIds),
  });
  const logits = out.logits.data as Float32Array;
  return texts.map((_, i) => softmax(logits.subarray(2 * i, 2 * i + 2)));
}

/** Whether the tokenizer drops tokens of each text (or pair) at MAX_LENGTH: the oracle for `truncated`. */
async function expectTruncated(dir: string, texts: string[], pairs?: string[]): Promise<boolean[]> {
  const tokenizer = await tokenizerOf(dir);
  const flags = texts.map((text, i) =>
    tokenizer.encode(text, { pair: pairs?.[i], maxLength: MAX_LENGTH }).truncated
  );
  assert.ok(flags.includes(true) && flags.includes(false), "the inputs cover both cases");
  return flags;
}

const served = (results: ClassifyResult[]) => results.map((r) => LABELS.map((l) => r.probabilities[l]));
const TIGHT = { abs: 1e-12, rel: 0 }; // same float32 logits; only the float64 softmax may round differently

Deno.test({
  name: "serve/main.ts (two --parallel workers) classifies texts, batches and pairs as onnxruntime-web does",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    const dir = await exportTestModel({ maxLength: MAX_LENGTH });
    // Two workers, each with its own session; every check below holds whichever worker answers.
    const server = await spawnServer({ env: { MODEL_DIR: dir }, workers: 2 });
    try {
      await t.step("GET /health and GET /model describe the int8 model", async () => {
        assert.match(server.output(), /with 2 threads/);
        assert.deepEqual(await getJson<unknown>(server, "/health"), { status: "ok" });
        const info = await getJson<ModelInfo>(server, "/model");
        assert.deepEqual(info.labels, LABELS);
        assert.equal(info.maxLength, MAX_LENGTH);
        assert.equal(info.variant, "int8");
        assert.equal(info.file, "model.int8.onnx");
        assert.equal(info.bytes, (await Deno.stat(`${dir}/model.int8.onnx`)).size);
        assert.deepEqual(info.inputs, ["input_ids", "attention_mask", "token_type_ids"]);
        assert.deepEqual(info.stats, { requests: 0, sessionRuns: 0, textsRun: 0 });
      });

      await t.step("one text a request matches a batch-1 run", async () => {
        const results: ClassifyResult[] = [];
        for (const text of TEXTS) {
          const { status, batch, json } = await post(server, { text });
          assert.equal(status, 200, JSON.stringify(json));
          assert.equal(batch, 1);
          assert.deepEqual(json.model, { variant: "int8", file: "model.int8.onnx" });
          assert.equal(json.results.length, 1);
          results.push(json.results[0]);
        }
        const expected = [];
        for (const text of TEXTS) expected.push(...await directProbabilities(dir, "model.int8.onnx", [text]));
        assertClose(served(results).flat(), expected.flat(), TIGHT, "single texts");
        for (const r of results) {
          assert.equal(
            r.label,
            r.probabilities.acceptable > r.probabilities.unacceptable ? "acceptable" : "unacceptable",
          );
          assert.equal(r.score, r.probabilities[r.label]);
        }
        assert.deepEqual(results.map((r) => r.truncated), await expectTruncated(dir, TEXTS));
      });

      await t.step("a batch request runs as one padded batch", async () => {
        const { status, batch, json } = await post(server, { texts: TEXTS });
        assert.equal(status, 200);
        assert.equal(batch, TEXTS.length);
        const expected = await directProbabilities(dir, "model.int8.onnx", TEXTS);
        assertClose(served(json.results).flat(), expected.flat(), TIGHT, "batch");
        assert.deepEqual(json.results.map((r: ClassifyResult) => r.truncated), [
          false,
          true,
          false,
          false,
          false,
        ]);
      });

      await t.step("pairs are encoded as [CLS] a [SEP] b [SEP] with segment ids", async () => {
        const many = await post(server, { texts: TEXTS, text_pairs: PAIRS });
        assert.equal(many.status, 200);
        assertClose(
          served(many.json.results).flat(),
          (await directProbabilities(dir, "model.int8.onnx", TEXTS, PAIRS)).flat(),
          TIGHT,
          "pairs",
        );
        assert.deepEqual(
          many.json.results.map((r: ClassifyResult) => r.truncated),
          await expectTruncated(dir, TEXTS, PAIRS),
        );
        const one = await post(server, { text: TEXTS[0], text_pair: PAIRS[0] });
        assertClose(
          served(one.json.results).flat(),
          (await directProbabilities(dir, "model.int8.onnx", [TEXTS[0]], [PAIRS[0]])).flat(),
          TIGHT,
          "one pair",
        );
      });

      await t.step("bad input gets a JSON error with the right status, and the server stays up", async () => {
        const cases: [string, unknown, number, string, RegExp][] = [
          ["invalid JSON", "{ text: 'x' }", 400, "invalid_json", /not valid JSON/],
          ["empty body", "", 400, "invalid_json", /body is empty/],
          ["not an object", [1, 2], 400, "invalid_request", /must be a JSON object .*got an array/],
          ["neither field", {}, 400, "invalid_request", /exactly one of "text" .* or "texts"/],
          ["both fields", { text: "a", texts: ["b"] }, 400, "invalid_request", /exactly one of/],
          ["text not a string", { text: 5 }, 400, "invalid_request", /"text" must be a string, got number 5/],
          ["texts not a list", { texts: "a" }, 400, "invalid_request", /"texts" must be a list of strings/],
          [
            "a text not a string",
            { texts: ["a", null] },
            400,
            "invalid_request",
            /"texts\[1\]" must be a string, got null/,
          ],
          ["empty texts", { texts: [] }, 400, "invalid_request", /"texts" is empty/],
          ["unknown field", { text: "a", lang: "en" }, 400, "invalid_request", /Unknown field "lang"/],
          [
            "pair of the wrong kind",
            { text: "a", text_pairs: ["b"] },
            400,
            "invalid_request",
            /"text_pairs" goes with "texts"/,
          ],
          [
            "pairs of another length",
            { texts: ["a", "b"], text_pairs: ["c"] },
            400,
            "invalid_request",
            /1 entries but "texts" has 2/,
          ],
          [
            "pair not a string",
            { text: "a", text_pair: ["b"] },
            400,
            "invalid_request",
            /"text_pair" must be a string/,
          ],
          [
            "too many texts",
            { texts: Array(65).fill("a") },
            413,
            "too_many_texts",
            /65 entries, over the limit of 64/,
          ],
        ];
        for (const [what, body, status, code, message] of cases) {
          const r = await post(server, body);
          assert.equal(r.status, status, what);
          assert.equal(r.json.error.code, code, what);
          assert.match(r.json.error.message, message, what);
        }
        const bytes = new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]);
        const utf8 = await fetch(`${server.origin}/classify`, { method: "POST", body: bytes });
        assert.deepEqual([utf8.status, (await utf8.json()).error.code], [400, "invalid_json"]);

        const wrongMethod = await fetch(`${server.origin}/classify`);
        assert.equal(wrongMethod.status, 405);
        assert.equal(wrongMethod.headers.get("allow"), "POST, OPTIONS");
        assert.equal((await wrongMethod.json()).error.code, "method_not_allowed");
        const postHealth = await fetch(`${server.origin}/health`, { method: "POST", body: "{}" });
        assert.deepEqual([postHealth.status, postHealth.headers.get("allow")], [405, "GET, HEAD, OPTIONS"]);
        await postHealth.body?.cancel();
        const missing = await fetch(`${server.origin}/predictions`, { method: "POST", body: "{}" });
        assert.deepEqual([missing.status, (await missing.json()).error.code], [404, "not_found"]);

        assert.deepEqual(await getJson<unknown>(server, "/health"), { status: "ok" });
        assert.equal((await post(server, { text: "the cat" })).status, 200);
      });

      await t.step("a body over MAX_BODY_BYTES is refused while it streams in", async () => {
        // Declared too large: refused from Content-Length alone.
        const declared = await fetch(`${server.origin}/classify`, {
          method: "POST",
          body: JSON.stringify({ text: "a".repeat(2 << 20) }),
        });
        assert.equal(declared.status, 413);
        assert.equal((await declared.json()).error.code, "body_too_large");
        // Chunked with no length: the server answers after about 1 MiB, long before the 64 MiB stream ends.
        const total = 64 << 20;
        let sent = 0;
        const chunk = new TextEncoder().encode(" ".repeat(1 << 16));
        const endless = new ReadableStream<Uint8Array>({
          pull(controller) {
            if (sent >= total) return controller.close();
            sent += chunk.length;
            controller.enqueue(chunk);
          },
        });
        const streamed = await fetch(`${server.origin}/classify`, { method: "POST", body: endless });
        assert.equal(streamed.status, 413);
        assert.match((await streamed.json()).error.message, /over the 1048576-byte limit/);
        assert.ok(sent < total / 2, `the client sent ${sent} of ${total} bytes before the answer`);
        assert.deepEqual(await getJson<unknown>(server, "/health"), { status: "ok" });
      });
    } finally {
      await server.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "serve/main.ts coalesces concurrent requests into fewer session runs with the same answers",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = await exportTestModel({ maxLength: MAX_LENGTH });
    // float32: int8's activation scale is per batch, so batch-mates could shift its answers slightly.
    const server = await spawnServer({
      env: { MODEL_DIR: dir, MODEL_VARIANT: "float32", BATCH_WINDOW_MS: "25" },
    });
    try {
      const texts = Array.from({ length: 16 }, (_, i) => TEXTS[i % TEXTS.length] + " the cat".repeat(i % 3));
      const sequential = [];
      for (const text of texts) sequential.push(await post(server, { text }));
      const before = (await getJson<ModelInfo>(server, "/model")).stats;
      const concurrent = await Promise.all(texts.map((text) => post(server, { text })));
      const after = (await getJson<ModelInfo>(server, "/model")).stats;

      assert.ok(sequential.every((r) => r.batch === 1));
      assert.deepEqual(after.requests - before.requests, 16);
      assert.equal(after.textsRun - before.textsRun, 16);
      const runs = after.sessionRuns - before.sessionRuns;
      assert.ok(runs < 16, `16 concurrent requests took ${runs} session runs`);
      assert.ok(Math.max(...concurrent.map((r) => r.batch)) > 1, "some request shared a run");
      assertClose(
        served(concurrent.map((r) => r.json.results[0])).flat(),
        served(sequential.map((r) => r.json.results[0])).flat(),
        ONNX_F32,
        "concurrent vs sequential",
      );
      assert.deepEqual(
        concurrent.map((r) => r.json.results[0].label),
        sequential.map((r) => r.json.results[0].label),
      );
    } finally {
      await server.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("serve/main.ts stops start-up naming a missing or corrupt model folder", async () => {
  const dir = await exportTestModel({ maxLength: MAX_LENGTH });
  try {
    const missing = `${dir}/no-such-export`;
    let run = await serveExpectingFailure({ MODEL_DIR: missing });
    assert.equal(run.code, 1, run.output);
    assert.match(
      run.output,
      new RegExp(`Cannot start the server: Cannot load model "${missing}": the folder does not exist`),
    );

    await Deno.writeTextFile(`${dir}/serve.json`, "{ not json");
    run = await serveExpectingFailure({ MODEL_DIR: dir });
    assert.equal(run.code, 1, run.output);
    assert.match(run.output, new RegExp(`"${dir}/serve\\.json" is not valid JSON`));

    await Deno.writeTextFile(
      `${dir}/serve.json`,
      JSON.stringify({
        labels: LABELS,
        maxLength: 12,
        models: { int8: "model.int8.onnx" },
        problemType: "single_label_classification",
      }),
    );
    await Deno.writeFile(`${dir}/model.int8.onnx`, new Uint8Array(1000).fill(7));
    run = await serveExpectingFailure({ MODEL_DIR: dir });
    assert.equal(run.code, 1, run.output);
    assert.match(run.output, new RegExp(`"${dir}/model\\.int8\\.onnx" is not a loadable ONNX model`));

    run = await serveExpectingFailure({ MODEL_DIR: dir, MAX_BATCH: "zero" });
    assert.equal(run.code, 1, run.output);
    assert.match(run.output, /Cannot start the server: MAX_BATCH "zero" must be a whole number >= 1/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
