// In-process tests of the routes beside /classify: Hugging Face's and TEI's request shapes, /metrics,
// CORS and OPTIONS, X-Request-Id, the access log and the page. serve/hostile_test.ts sends them bad input.
import assert from "node:assert/strict";
import { type App, createApp } from "./app.ts";
import { exportTestModel } from "./_test_model.ts";
import { assertClose } from "../tests/util.ts";
import { EXACT, ONNX_F32 } from "../tests/tolerance.ts";

const ORT = { sanitizeResources: false, sanitizeOps: false } as const;
// Short enough that a pair of them fits the test model's 12 tokens.
const TEXTS = ["the cat sat", "a dog runs ."];
type LabelScore = { label: string; score: number };

function post(path: string, body: unknown, headers: Record<string, string> = {}): Request {
  return new Request(`http://serve.test${path}`, { method: "POST", body: JSON.stringify(body), headers });
}

async function withApp(options: Parameters<typeof createApp>[0], fn: (app: App) => Promise<void>) {
  const dir = await exportTestModel();
  const app = await createApp({ modelDir: dir, accessLog: false, ...options });
  try {
    await fn(app);
  } finally {
    await app.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** /classify's probabilities of `texts` (and pairs), as [{label, score}] sorted like HF's answer. */
async function reference(app: App, texts: string[], pairs?: string[]): Promise<LabelScore[][]> {
  const body = pairs ? { texts, text_pairs: pairs } : { texts };
  const { results } = await (await app.fetch(post("/classify", body))).json();
  return results.map((r: { probabilities: Record<string, number> }) =>
    Object.entries(r.probabilities).map(([label, score]) => ({ label, score })).sort((a, b) =>
      b.score - a.score
    )
  );
}

function assertScores(actual: LabelScore[], expected: LabelScore[], what: string) {
  assert.deepEqual(actual.map((s) => s.label), expected.map((s) => s.label), what);
  assertClose(actual.map((s) => s.score), expected.map((s) => s.score), EXACT, what);
}

Deno.test({
  name: "Hugging Face {inputs} answers like the text-classification pipeline, at POST / and /classify",
  ...ORT,
  fn: () =>
    // Window 0: each request runs alone, so the reference runs the same batches (int8's dynamic
    // quantization makes a row's answer depend on the rows it runs with).
    withApp({ batchWindowMs: 0 }, async (app) => {
      const expected = await reference(app, TEXTS);
      const one = await (await app.fetch(post("/", { inputs: TEXTS[0] }))).json();
      assertScores(one, (await reference(app, [TEXTS[0]]))[0], "one text: every label, best first");
      assert.equal(one.length, 2);
      const many = await (await app.fetch(post("/classify", { inputs: TEXTS, parameters: { top_k: 1 } })))
        .json();
      assert.equal(many.length, 2);
      many.forEach((m: LabelScore[], i: number) =>
        assertScores(m, expected[i].slice(0, 1), `list, top_k 1, ${i}`)
      );
      const topLevel = await (await app.fetch(post("/", { inputs: TEXTS[1], top_k: 1 }))).json();
      assertScores(topLevel, (await reference(app, [TEXTS[1]]))[0].slice(0, 1), "top_k at the top level");
      const [pairRef] = await reference(app, [TEXTS[0]], [TEXTS[1]]);
      const pair = await (await app.fetch(post("/", { inputs: { text: TEXTS[0], text_pair: TEXTS[1] } })))
        .json();
      assertScores(pair, pairRef, "a pair");
      const raw =
        await (await app.fetch(post("/", { inputs: TEXTS[0], parameters: { function_to_apply: "none" } })))
          .json();
      const logits = await app.model.run([app.model.encode(TEXTS[0])]);
      const byLabel = Object.fromEntries(raw.map((s: LabelScore) => [s.label, s.score]));
      assertClose(
        app.model.manifest.labels.map((l) => byLabel[l]),
        Array.from(logits[0]),
        EXACT,
        "raw logits",
      );
    }),
});

Deno.test({
  name: "TEI POST /predict: a text, a pair [a, b], a batch [[a], [a, b]], raw_scores and truncate",
  ...ORT,
  fn: () =>
    withApp({ batchWindowMs: 0, variant: "float32" }, async (app) => {
      const [solo] = await reference(app, [TEXTS[0]]);
      const [paired] = await reference(app, [TEXTS[0]], [TEXTS[1]]);
      assertScores(await (await app.fetch(post("/predict", { inputs: TEXTS[0] }))).json(), solo, "text");
      // Two strings are one pair in TEI, not a batch of two.
      assertScores(await (await app.fetch(post("/predict", { inputs: TEXTS }))).json(), paired, "pair");
      const batch = await (await app.fetch(post("/predict", { inputs: [[TEXTS[0]], TEXTS] }))).json();
      assert.equal(batch.length, 2);
      // float32: a row's answer does not depend on the rows it runs with, beyond rounding.
      const near = (a: LabelScore[], b: LabelScore[], what: string) => {
        const score = (list: LabelScore[]) =>
          app.model.manifest.labels.map((l) => list.find((s) => s.label === l)!.score);
        assertClose(score(a), score(b), ONNX_F32, what);
      };
      near(batch[0], solo, "batch[0]");
      near(batch[1], paired, "batch[1]");
      const raw = await (await app.fetch(post("/predict", { inputs: TEXTS[0], raw_scores: true }))).json();
      const [logits] = await app.model.run([app.model.encode(TEXTS[0])]);
      assertClose(
        raw.map((s: LabelScore) => s.score),
        Array.from(logits).sort((a, b) => b - a),
        EXACT,
        "raw",
      );
      const long = "the big red dog sees the cat . ".repeat(4);
      const refused = await app.fetch(post("/predict", { inputs: long }));
      assert.deepEqual([refused.status, (await refused.json()).error.code], [413, "input_too_long"]);
      const cut = await app.fetch(post("/predict", { inputs: long, truncate: true }));
      assert.equal(cut.status, 200);
      assert.equal((await cut.json()).length, 2);
    }),
});

Deno.test({
  name: "CORS: only CORS_ORIGINS get Access-Control-Allow-Origin; OPTIONS answers 204 with Allow",
  ...ORT,
  fn: async () => {
    await withApp({ corsOrigins: "https://a.example, https://b.example" }, async (app) => {
      const preflight = await app.fetch(
        new Request("http://serve.test/classify", {
          method: "OPTIONS",
          headers: { origin: "https://b.example", "access-control-request-method": "POST" },
        }),
      );
      assert.equal(preflight.status, 204);
      assert.equal(preflight.headers.get("allow"), "POST, OPTIONS");
      assert.equal(preflight.headers.get("access-control-allow-origin"), "https://b.example");
      assert.equal(preflight.headers.get("access-control-allow-methods"), "POST, OPTIONS");
      assert.match(preflight.headers.get("access-control-allow-headers")!, /content-type/);
      const allowed = await app.fetch(post("/classify", { text: "a" }, { origin: "https://a.example" }));
      assert.equal(allowed.headers.get("access-control-allow-origin"), "https://a.example");
      assert.match(allowed.headers.get("access-control-expose-headers")!, /x-request-id/);
      await allowed.body?.cancel();
      const other = await app.fetch(post("/classify", { text: "a" }, { origin: "https://evil.example" }));
      assert.equal(other.headers.get("access-control-allow-origin"), null);
      await other.body?.cancel();
      const otherPreflight = await app.fetch(
        new Request("http://serve.test/classify", {
          method: "OPTIONS",
          headers: { origin: "https://evil.example" },
        }),
      );
      assert.deepEqual([otherPreflight.status, otherPreflight.headers.get("access-control-allow-methods")], [
        204,
        null,
      ]);
    });
    await withApp({}, async (app) => { // the default: no cross-origin access
      const r = await app.fetch(
        new Request("http://serve.test/model", { headers: { origin: "https://a.example" } }),
      );
      assert.equal(r.headers.get("access-control-allow-origin"), null);
      await r.body?.cancel();
    });
    await withApp({ corsOrigins: "*" }, async (app) => {
      const r = await app.fetch(
        new Request("http://serve.test/health", { headers: { origin: "https://x.example" } }),
      );
      assert.equal(r.headers.get("access-control-allow-origin"), "*");
      await r.body?.cancel();
    });
  },
});

Deno.test({
  name: "X-Request-Id is echoed when sane and made otherwise; one access log line per request",
  ...ORT,
  fn: () =>
    withApp({ accessLog: true }, async (app) => {
      const lines: string[] = [];
      const log = console.log;
      console.log = (line: string) => lines.push(line);
      try {
        const echoed = await app.fetch(post("/classify", { text: "a" }, { "x-request-id": "abc-123" }));
        assert.equal(echoed.headers.get("x-request-id"), "abc-123");
        await echoed.body?.cancel();
        const bad = await app.fetch(
          new Request("http://serve.test/nope", { headers: { "x-request-id": "a b\tc".repeat(50) } }),
        );
        assert.match(bad.headers.get("x-request-id")!, /^[0-9a-f-]{36}$/);
        await bad.body?.cancel();
      } finally {
        console.log = log;
      }
      assert.equal(lines.length, 2);
      assert.match(lines[0], /^POST \/classify 200 \d+\.\d abc-123$/);
      assert.match(lines[1], /^GET \/nope 404 \d+\.\d [0-9a-f-]{36}$/);
    }),
});

Deno.test({
  name:
    "GET /metrics counts requests, session runs, texts per run and padding, labelled with backend and variant",
  ...ORT,
  fn: () =>
    withApp({ batchWindowMs: 50 }, async (app) => {
      // Two texts of 4 and 9 tokens come together: one run pads 4 to 9 or, split, two runs pad nothing.
      await Promise.all([
        app.fetch(post("/classify", { text: "the cat sat" })),
        app.fetch(post("/", { inputs: "x" })),
      ]);
      await (await app.fetch(post("/classify", { texts: ["the cat", "the big red dog sees the cat ."] })))
        .body
        ?.cancel();
      await (await app.fetch(new Request("http://serve.test/nope"))).body?.cancel();
      const response = await app.fetch(new Request("http://serve.test/metrics"));
      assert.match(response.headers.get("content-type")!, /^text\/plain; version=0\.0\.4/);
      const text = await response.text();
      const value = (series: string) => {
        const line = text.split("\n").find((l) => l.startsWith(series + " "));
        assert.ok(line, `${series} in\n${text}`);
        return Number(line.slice(series.length + 1));
      };
      const base = 'backend="wasm",variant="int8"';
      assert.equal(
        value(`bert_http_requests_total{${base},route="/classify",method="POST",status="200"}`),
        2,
      );
      assert.equal(value(`bert_http_requests_total{${base},route="/",method="POST",status="200"}`), 1);
      assert.equal(value(`bert_http_requests_total{${base},route="other",method="other",status="404"}`), 1);
      assert.equal(value(`bert_http_request_duration_seconds_count{${base},route="/classify"}`), 2);
      const runs = value(`bert_session_runs_total{${base}}`);
      assert.equal(value(`bert_session_run_texts_sum{${base}}`), 4);
      assert.equal(value(`bert_session_run_texts_count{${base}}`), runs);
      assert.equal(value(`bert_queue_depth{${base}}`), 0);
      const tokens = value(`bert_tokens_total{${base}}`);
      const padded = value(`bert_padded_tokens_total{${base}}`);
      const sent = ["the cat sat", "x", "the cat", "the big red dog sees the cat ."];
      assert.equal(tokens, sent.reduce((n, t) => n + app.model.encode(t).ids.length, 0));
      assert.ok(padded >= tokens);
      assertClose([value(`bert_padding_ratio{${base}}`)], [1 - tokens / padded], EXACT, "padding ratio");
      assert.match(text, /# TYPE bert_http_request_duration_seconds histogram/);
    }),
});

Deno.test({
  name: "GET / serves the page and GET /page.js its script, with a strict content security policy",
  ...ORT,
  fn: () =>
    withApp({}, async (app) => {
      const page = await app.fetch(new Request("http://serve.test/"));
      assert.match(page.headers.get("content-type")!, /^text\/html/);
      assert.match(page.headers.get("content-security-policy")!, /default-src 'self'/);
      const html = await page.text();
      assert.match(html, /<script src="\/page.js"><\/script>/);
      assert.doesNotMatch(html, /https?:\/\//, "nothing fetched from elsewhere");
      const script = await app.fetch(new Request("http://serve.test/page.js"));
      assert.match(script.headers.get("content-type")!, /^text\/javascript/);
      const js = await script.text();
      assert.match(js, /fetch\("\/classify"/);
      assert.doesNotMatch(js, /innerHTML/);
      const head = await app.fetch(new Request("http://serve.test/", { method: "HEAD" }));
      assert.deepEqual([head.status, await head.text()], [200, ""]);
    }),
});
