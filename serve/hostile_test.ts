// Hostile clients against the real server (`deno serve serve/main.ts` in a child process): malformed
// requests get a 4xx JSON error, slow and stalled uploads get 408 on time, and after every case
// GET /health still answers. Requests fetch() cannot send (broken framing, stalls) go over raw TCP.
import assert from "node:assert/strict";
import { type ServerProcess, spawnServer } from "../tests/spawn.ts";
import { exportTestModel } from "./_test_model.ts";

const BODY_TIMEOUT_MS = 1000;
const encoder = new TextEncoder();

/** One malformed request made with fetch(): what to send and the error it must get. */
interface Case {
  name: string;
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array<ArrayBuffer> | (() => ReadableStream<Uint8Array>);
  status: number;
  /** The JSON error code; HEAD answers carry no body, so none is checked. */
  code: string;
}

const json = (value: unknown) => JSON.stringify(value);
const nested = (depth: number, open: string, close: string) => open.repeat(depth) + close.repeat(depth);

/** Over 1 MiB (MAX_BODY_BYTES) in 64 KiB chunks, with no Content-Length. */
function endlessBody(): ReadableStream<Uint8Array> {
  let sent = 0;
  const chunk = encoder.encode(" ".repeat(1 << 16));
  return new ReadableStream({
    pull(controller) {
      if (sent >= 4 << 20) return controller.close();
      sent += chunk.length;
      controller.enqueue(chunk);
    },
  });
}

const CASES: Case[] = [
  { name: "invalid JSON", body: "{ text: 'x' }", status: 400, code: "invalid_json" },
  { name: "empty body", body: "", status: 400, code: "invalid_json" },
  { name: "whitespace body", body: " \n\t ", status: 400, code: "invalid_json" },
  { name: "truncated JSON", body: '{"text": "abc', status: 400, code: "invalid_json" },
  { name: "trailing garbage", body: '{"text": "a"} {"text": "b"}', status: 400, code: "invalid_json" },
  {
    name: "invalid UTF-8",
    body: new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]),
    status: 400,
    code: "invalid_json",
  },
  {
    name: "UTF-16 with a BOM",
    body: new Uint8Array([0xff, 0xfe, ...[...'{"text":"a"}'].flatMap((c) => [c.charCodeAt(0), 0])]),
    status: 400,
    code: "invalid_json",
  },
  { name: "top-level array", body: json(["a"]), status: 400, code: "invalid_request" },
  { name: "top-level string", body: json("the cat"), status: 400, code: "invalid_request" },
  { name: "top-level null", body: "null", status: 400, code: "invalid_request" },
  { name: "top-level number", body: "42", status: 400, code: "invalid_request" },
  { name: "no text field", body: "{}", status: 400, code: "invalid_request" },
  { name: "text and texts", body: json({ text: "a", texts: ["b"] }), status: 400, code: "invalid_request" },
  { name: "text a number", body: json({ text: 5 }), status: 400, code: "invalid_request" },
  { name: "text an object", body: json({ text: { s: "a" } }), status: 400, code: "invalid_request" },
  { name: "text null", body: json({ text: null }), status: 400, code: "invalid_request" },
  { name: "text overflowing to Infinity", body: '{"text": 1e999}', status: 400, code: "invalid_request" },
  { name: "texts a string", body: json({ texts: "a" }), status: 400, code: "invalid_request" },
  { name: "texts with a number", body: json({ texts: ["a", 1] }), status: 400, code: "invalid_request" },
  { name: "texts of arrays", body: json({ texts: [["a"], ["b"]] }), status: 400, code: "invalid_request" },
  {
    name: "arrays nested 100,000 deep",
    body: `{"texts": ${nested(100_000, "[", "]")}}`,
    status: 400,
    code: "invalid_request",
  },
  {
    name: "objects nested 100,000 deep",
    body: `{"text": ${nested(100_000, '{"a":', "}").replace(/}+$/, (m) => "1" + m)}}`,
    status: 400,
    code: "invalid_request",
  },
  { name: "empty texts", body: json({ texts: [] }), status: 400, code: "invalid_request" },
  {
    name: "10,000 texts",
    body: json({ texts: Array(10_000).fill("the cat") }),
    status: 413,
    code: "too_many_texts",
  },
  {
    name: "10,000 long texts (Content-Length over 1 MiB)",
    body: json({ texts: Array(10_000).fill("the cat sat on the mat. ".repeat(5)) }),
    status: 413,
    code: "body_too_large",
  },
  { name: "4 MiB streamed without a length", body: endlessBody, status: 413, code: "body_too_large" },
  { name: "unknown field", body: json({ text: "a", lang: "en" }), status: 400, code: "invalid_request" },
  {
    name: "__proto__ field",
    body: '{"text": "a", "__proto__": {"texts": []}}',
    status: 400,
    code: "invalid_request",
  },
  {
    name: "text_pairs with text",
    body: json({ text: "a", text_pairs: ["b"] }),
    status: 400,
    code: "invalid_request",
  },
  {
    name: "text_pair with texts",
    body: json({ texts: ["a"], text_pair: "b" }),
    status: 400,
    code: "invalid_request",
  },
  {
    name: "pairs of another length",
    body: json({ texts: ["a", "b"], text_pairs: ["c"] }),
    status: 400,
    code: "invalid_request",
  },
  {
    name: "text_pair a list",
    body: json({ text: "a", text_pair: ["b"] }),
    status: 400,
    code: "invalid_request",
  },
  {
    name: "multipart form",
    headers: { "content-type": "multipart/form-data; boundary=x" },
    body: '--x\r\nContent-Disposition: form-data; name="text"\r\n\r\nthe cat\r\n--x--\r\n',
    status: 415,
    code: "unsupported_media_type",
  },
  {
    name: "XML",
    headers: { "content-type": "application/xml" },
    body: "<text>the cat</text>",
    status: 415,
    code: "unsupported_media_type",
  },
  {
    name: "JSON declared as UTF-16",
    headers: { "content-type": "application/json; charset=utf-16" },
    body: json({ text: "a" }),
    status: 415,
    code: "unsupported_media_type",
  },
  { name: "GET /classify", method: "GET", status: 405, code: "method_not_allowed" },
  {
    name: "PUT /classify",
    method: "PUT",
    body: json({ text: "a" }),
    status: 405,
    code: "method_not_allowed",
  },
  { name: "DELETE /classify", method: "DELETE", status: 405, code: "method_not_allowed" },
  { name: "PATCH /classify", method: "PATCH", body: "{}", status: 405, code: "method_not_allowed" },
  { name: "HEAD /classify", method: "HEAD", status: 405, code: "method_not_allowed" },
  { name: "POST /health", path: "/health", body: "{}", status: 405, code: "method_not_allowed" },
  { name: "POST /model", path: "/model", body: "{}", status: 405, code: "method_not_allowed" },
  { name: "unknown route", path: "/predictions", body: "{}", status: 404, code: "not_found" },
  { name: "OPTIONS of an unknown route", path: "/nope", method: "OPTIONS", status: 404, code: "not_found" },
  { name: "POST /metrics", path: "/metrics", body: "{}", status: 405, code: "method_not_allowed" },
  { name: "PUT /", path: "/", method: "PUT", body: "{}", status: 405, code: "method_not_allowed" },
  { name: "GET /predict", path: "/predict", method: "GET", status: 405, code: "method_not_allowed" },
  // Hugging Face's {"inputs"} (POST / and POST /classify) and TEI's POST /predict: same limits, same errors.
  { name: "HF: invalid JSON", path: "/", body: '{"inputs": ', status: 400, code: "invalid_json" },
  {
    name: "HF: /classify's shape at POST /",
    path: "/",
    body: json({ text: "a" }),
    status: 400,
    code: "invalid_request",
  },
  { name: "HF: inputs a number", body: json({ inputs: 5 }), status: 400, code: "invalid_request" },
  { name: "HF: inputs null", path: "/", body: json({ inputs: null }), status: 400, code: "invalid_request" },
  { name: "HF: empty inputs", body: json({ inputs: [] }), status: 400, code: "invalid_request" },
  { name: "HF: a number in inputs", body: json({ inputs: ["a", 1] }), status: 400, code: "invalid_request" },
  {
    name: "HF: 65 inputs",
    path: "/",
    body: json({ inputs: Array(65).fill("a") }),
    status: 413,
    code: "too_many_texts",
  },
  {
    name: "HF: 400,000 inputs (1.2 MB)",
    body: json({ inputs: Array(400_000).fill("") }),
    status: 413,
    code: "body_too_large",
  },
  { name: "HF: top_k 0", body: json({ inputs: "a", top_k: 0 }), status: 400, code: "invalid_request" },
  {
    name: "HF: top_k a string",
    path: "/",
    body: json({ inputs: "a", parameters: { top_k: "2" } }),
    status: 400,
    code: "invalid_request",
  },
  {
    name: "HF: unknown parameter",
    body: json({ inputs: "a", parameters: { temperature: 1 } }),
    status: 400,
    code: "invalid_request",
  },
  {
    name: "HF: function_to_apply unknown",
    body: json({ inputs: "a", parameters: { function_to_apply: "relu" } }),
    status: 400,
    code: "invalid_request",
  },
  {
    name: "HF: text_pair a list",
    body: json({ inputs: { text: "a", text_pair: ["b"] } }),
    status: 400,
    code: "invalid_request",
  },
  {
    name: "HF: parameters a list",
    body: json({ inputs: "a", parameters: [1] }),
    status: 400,
    code: "invalid_request",
  },
  {
    name: "TEI: no inputs",
    path: "/predict",
    body: json({ text: "a" }),
    status: 400,
    code: "invalid_request",
  },
  { name: "TEI: not JSON", path: "/predict", body: "inputs=a", status: 400, code: "invalid_json" },
  {
    name: "TEI: XML",
    path: "/predict",
    headers: { "content-type": "text/xml" },
    body: "<a/>",
    status: 415,
    code: "unsupported_media_type",
  },
  { name: "TEI: over 1 MiB", path: "/predict", body: endlessBody, status: 413, code: "body_too_large" },
  {
    name: "TEI: 65 batch inputs",
    path: "/predict",
    body: json({ inputs: Array(65).fill(["a"]) }),
    status: 413,
    code: "too_many_texts",
  },
  {
    name: "TEI: three texts in a batch item",
    path: "/predict",
    body: json({ inputs: [["a"], ["a", "b", "c"]] }),
    status: 400,
    code: "invalid_request",
  },
  {
    name: "TEI: empty batch item",
    path: "/predict",
    body: json({ inputs: [[]] }),
    status: 400,
    code: "invalid_request",
  },
  {
    name: "TEI: empty batch",
    path: "/predict",
    body: json({ inputs: [] }),
    status: 400,
    code: "invalid_request",
  },
  {
    name: "TEI: truncate a string",
    path: "/predict",
    body: json({ inputs: "a", truncate: "yes" }),
    status: 400,
    code: "invalid_request",
  },
  {
    name: "TEI: left truncation",
    path: "/predict",
    body: json({ inputs: "a", truncation_direction: "left" }),
    status: 400,
    code: "invalid_request",
  },
  {
    name: "TEI: too long without truncate",
    path: "/predict",
    body: json({ inputs: [["the cat"], ["the big red dog sees the cat . ".repeat(10)]] }),
    status: 413,
    code: "input_too_long",
  },
  {
    name: "path traversal",
    path: "/static/%2e%2e/%2e%2e/etc/passwd",
    method: "GET",
    status: 404,
    code: "not_found",
  },
  { name: "10 KB URL", path: `/${"a".repeat(10_000)}`, method: "GET", status: 404, code: "not_found" },
];

/** Valid but extreme requests: they must be answered normally. */
const ACCEPTED: [string, unknown][] = [
  ["an empty text", { text: "" }],
  ["64 texts (MAX_TEXTS)", { texts: Array(64).fill("the cat") }],
  ["all-empty texts and pairs", { texts: ["", ""], text_pairs: ["", ""] }],
  ["a 900 KB text", { text: "the big red dog sees the cat . ".repeat(30_000) }],
  ["lone surrogates, NUL and controls", { text: "\ud800 a \udfff\u0000\u0007\u001b[31m b" }],
  ["astral characters", { text: "😀🧪 𠀀𠀁 \u{e0041}", text_pair: "👍🏽" }],
];

/** Valid but extreme requests in Hugging Face's and TEI's shapes: [what, path, body]. */
const ACCEPTED_SHAPES: [string, string, unknown][] = [
  ["HF: 64 inputs (MAX_TEXTS)", "/", { inputs: Array(64).fill("the cat") }],
  ["HF: an empty text, top_k larger than the labels", "/classify", { inputs: "", top_k: 99 }],
  ["HF: a pair with controls", "/", { inputs: { text: "\u0000\u001b[31m", text_pair: "😀" } }],
  ["TEI: a 900 KB text with truncate", "/predict", { inputs: "the cat . ".repeat(90_000), truncate: true }],
  ["TEI: 64 mixed batch items", "/predict", { inputs: Array(32).fill([["a"], ["", ""]]).flat() }],
];

async function send(server: ServerProcess, c: Case): Promise<Response> {
  const body = typeof c.body === "function" ? c.body() : c.body;
  return await fetch(`${server.origin}${c.path ?? "/classify"}`, {
    method: c.method ?? "POST",
    headers: { "content-type": "application/json", ...c.headers },
    body,
  });
}

async function assertHealthy(server: ServerProcess, after: string): Promise<void> {
  const started = performance.now();
  const response = await fetch(`${server.origin}/health`);
  assert.deepEqual(
    [response.status, await response.json()],
    [200, { status: "ok" }],
    `/health after "${after}"`,
  );
  const ms = performance.now() - started;
  // A stuck server would not answer at all; 5 s leaves room for a loaded CI machine.
  assert.ok(ms < 5000, `/health took ${ms.toFixed(0)} ms after "${after}"`);
}

/** What came back on a raw connection: the status line's code, headers, body and when it began. */
interface RawResponse {
  status: number;
  headers: Map<string, string>;
  body: string;
  /** Milliseconds from connecting to the first byte of the response. */
  firstByteMs: number;
}

/**
 * Sends `request` over a new TCP connection, optionally half-closes or keeps trickling `trickle`
 * bytes every 100 ms, and reads one response (headers and Content-Length body). The server may keep
 * the connection open after answering, so the connection is closed once the response is complete.
 */
async function rawRequest(
  server: ServerProcess,
  request: string,
  options: { closeWrite?: boolean; trickle?: string; timeoutMs?: number } = {},
): Promise<RawResponse> {
  const port = Number(new URL(server.origin).port);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const start = performance.now();
  let open = true;
  const timer = setTimeout(() => conn.close(), options.timeoutMs ?? 10_000);
  try {
    await conn.write(encoder.encode(request));
    if (options.closeWrite) await conn.closeWrite();
    const trickling = options.trickle === undefined ? null : (async () => {
      while (open) {
        await new Promise((r) => setTimeout(r, 100));
        if (open) await conn.write(encoder.encode(options.trickle)).catch(() => (open = false));
      }
    })();
    let bytes = new Uint8Array(0);
    let firstByteMs = -1;
    const buffer = new Uint8Array(1 << 16);
    while (true) {
      const n = await conn.read(buffer).catch(() => null);
      if (n === null) break;
      if (firstByteMs < 0) firstByteMs = performance.now() - start;
      bytes = new Uint8Array([...bytes, ...buffer.subarray(0, n)]);
      const text = new TextDecoder().decode(bytes);
      const end = text.indexOf("\r\n\r\n");
      const length = Number(text.match(/^content-length: *(\d+)/im)?.[1] ?? 0);
      if (end >= 0 && encoder.encode(text.slice(end + 4)).length >= length) break;
    }
    open = false;
    await trickling;
    const text = new TextDecoder().decode(bytes);
    const [head, body = ""] = text.split("\r\n\r\n");
    const [statusLine, ...lines] = head.split("\r\n");
    const headers = new Map(
      lines.map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]),
    );
    return { status: Number(statusLine.split(" ")[1] ?? 0), headers, body, firstByteMs };
  } finally {
    open = false;
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* closed by the timer */ }
  }
}

const POST = (headers: string) => `POST /classify HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers}\r\n`;

function assertJsonError(r: RawResponse, status: number, code: string, what: string): void {
  assert.equal(r.status, status, `${what}: ${r.body}`);
  assert.match(r.headers.get("content-type") ?? "", /application\/json/, what);
  assert.equal(JSON.parse(r.body).error.code, code, what);
}

Deno.test({
  name: "serve/main.ts answers hostile requests with 4xx JSON errors and keeps answering /health",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    const dir = await exportTestModel({ maxLength: 12 });
    const server = await spawnServer({ env: { MODEL_DIR: dir, BODY_TIMEOUT_MS: String(BODY_TIMEOUT_MS) } });
    try {
      await t.step(`${CASES.length} malformed requests over fetch()`, async () => {
        assert.ok(CASES.length >= 30);
        for (const c of CASES) {
          const response = await send(server, c);
          assert.equal(response.status, c.status, `${c.name}: status`);
          assert.match(
            response.headers.get("content-type") ?? "",
            /^application\/json/,
            `${c.name}: content type`,
          );
          if (c.method !== "HEAD") {
            const { error } = await response.json();
            assert.equal(error.code, c.code, `${c.name}: ${error.message}`);
            assert.ok(error.message.length > 0 && error.message.length < 500, `${c.name}: ${error.message}`);
          }
          if (c.status === 405) assert.ok(response.headers.get("allow"), `${c.name}: Allow header`);
          await assertHealthy(server, c.name);
        }
      });

      await t.step("valid but extreme requests are answered", async () => {
        for (const [what, body] of ACCEPTED) {
          const response = await send(server, { name: what, body: json(body), status: 200, code: "" });
          const reply = await response.json();
          assert.equal(response.status, 200, `${what}: ${JSON.stringify(reply)}`);
          const n = (body as { texts?: unknown[] }).texts?.length ?? 1;
          assert.equal(reply.results.length, n, what);
          for (const r of reply.results) assert.ok(r.score > 0 && r.score <= 1, what);
        }
        // curl -d sends a form content type; the body is read as JSON all the same.
        const curl = await send(server, {
          name: "curl -d",
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: json({ text: "the cat" }),
          status: 200,
          code: "",
        });
        assert.equal(curl.status, 200);
        await curl.body?.cancel();
        for (const [what, path, body] of ACCEPTED_SHAPES) {
          const response = await send(server, { name: what, path, body: json(body), status: 200, code: "" });
          const reply = await response.json();
          assert.equal(response.status, 200, `${what}: ${JSON.stringify(reply)}`);
          const lists = Array.isArray(reply[0]) ? reply : [reply];
          for (const list of lists) {
            assert.ok(
              list.length >= 1 && list.every((r: { label: string }) => typeof r.label === "string"),
              what,
            );
          }
        }
        await assertHealthy(server, "extreme requests");
      });

      await t.step("uploads that stall or trickle get 408 within BODY_TIMEOUT_MS", async () => {
        const [stalled, trickled, chunked] = await Promise.all([
          rawRequest(server, POST("Content-Type: application/json\r\nContent-Length: 100\r\n") + '{"te'),
          rawRequest(server, POST("Content-Length: 100000\r\n") + '{"text": "', { trickle: "a" }),
          rawRequest(server, POST("Transfer-Encoding: chunked\r\n") + "1\r\n{\r\n", {
            trickle: "1\r\na\r\n",
          }),
        ]);
        for (
          const [what, r] of [["stalled", stalled], ["trickled", trickled], [
            "chunked trickle",
            chunked,
          ]] as const
        ) {
          assertJsonError(r, 408, "request_timeout", what);
          assert.ok(
            r.firstByteMs >= BODY_TIMEOUT_MS - 50 && r.firstByteMs < BODY_TIMEOUT_MS + 3000,
            `${what}: 408 after ${r.firstByteMs.toFixed(0)} ms`,
          );
        }
        await assertHealthy(server, "slow uploads");
      });

      await t.step("broken framing: a body cut short, a bad chunk", async () => {
        const cut = await rawRequest(server, POST("Content-Length: 100\r\n") + '{"text": "a', {
          closeWrite: true,
        });
        assertJsonError(cut, 400, "invalid_body", "body shorter than Content-Length");
        const badChunk = await rawRequest(
          server,
          POST("Transfer-Encoding: chunked\r\n") + "zz\r\n{}\r\n0\r\n\r\n",
        );
        // A chunk size that is not hex breaks the connection inside hyper: it closes without an answer
        // (status 0 here), or answers 4xx should a later Deno report it.
        assert.ok(
          badChunk.status === 0 || (badChunk.status >= 400 && badChunk.status < 500),
          `bad chunk size: ${badChunk.status}`,
        );
        await assertHealthy(server, "broken framing");
      });

      await t.step("requests Deno's HTTP parser refuses before the app: 4xx without a body", async () => {
        // hyper answers these itself (400, empty body) and closes the connection; the app never runs.
        const refused: [string, string][] = [
          ["negative Content-Length", POST("Content-Length: -5\r\n") + "{}"],
          ["non-numeric Content-Length", POST("Content-Length: abc\r\n") + "{}"],
          [
            "Content-Length and chunked together",
            POST("Content-Length: 2\r\nTransfer-Encoding: chunked\r\n") + "{}",
          ],
          ["200 headers", POST(Array.from({ length: 200 }, (_, i) => `X-Header-${i}: v\r\n`).join(""))],
          ["100 KB URL", `GET /${"a".repeat(100_000)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`],
          ["binary garbage", "\u0000\u0001\u0002 hello\r\n\r\n"],
        ];
        for (const [what, request] of refused) {
          const r = await rawRequest(server, request);
          assert.ok(r.status >= 400 && r.status < 500, `${what}: status ${r.status}`);
          await assertHealthy(server, what);
        }
      });

      await t.step("clients that never finish their headers do not hold up the others", async () => {
        const port = Number(new URL(server.origin).port);
        const idle: Deno.TcpConn[] = [];
        try {
          for (let i = 0; i < 50; i++) {
            const conn = await Deno.connect({ hostname: "127.0.0.1", port });
            await conn.write(encoder.encode("POST /classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le"));
            idle.push(conn);
          }
          const stalledBodies = Array.from(
            { length: 10 },
            () => rawRequest(server, POST("Content-Length: 50\r\n") + "{"),
          );
          for (let i = 0; i < 3; i++) {
            await assertHealthy(server, `${idle.length} stalled header connections`);
            const r = await fetch(`${server.origin}/classify`, {
              method: "POST",
              body: json({ text: "the cat" }),
            });
            assert.equal(r.status, 200);
            await r.body?.cancel();
          }
          for (const r of await Promise.all(stalledBodies)) {
            assertJsonError(r, 408, "request_timeout", "stalled body");
          }
        } finally {
          for (const conn of idle) conn.close();
        }
        await assertHealthy(server, "closing the stalled connections");
      });
    } finally {
      await server.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
