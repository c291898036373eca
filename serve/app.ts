/**
 * The HTTP application behind `deno serve serve/main.ts`: routes, request validation, JSON errors and
 * micro-batched inference. Usable in-process by tests and benchmarks through {@linkcode createApp}.
 *
 * Routes:
 * - `POST /classify` with `{"text": "..."}`, `{"texts": [...]}`, or pairs `{"text", "text_pair"}` /
 *   `{"texts", "text_pairs"}` -> `{"results": [...], "model": {variant, file}}`; each result is
 *   `{label, score, probabilities, truncated}` (classification) or `{label, score, value, truncated}`
 *   (regression: the model's output as score and value).
 *   An empty string is a valid text (it is classified from [CLS] [SEP] alone). Texts longer than
 *   serve.json's maxLength are truncated and say `"truncated": true`. The response header
 *   `X-Batch-Size` gives the size of the largest session run that served the request.
 *   The same route (and `POST /`, where Hugging Face Inference Endpoints send) takes Hugging Face's
 *   `{"inputs", "parameters": {"top_k"}}`; `POST /predict` takes text-embeddings-inference's
 *   `{"inputs", "truncate", "raw_scores"}` (shapes and answers: `serve/shapes.ts`).
 * - `GET /health` -> `{"status": "ok"}`.
 * - `GET /model` -> labels, max length, variant and quantization, file size, input/output names,
 *   batching and limits, and counters (requests, session runs, texts) of this worker.
 * - `GET /metrics` -> Prometheus text (`serve/metrics.ts`).
 * - `GET /` -> a page to try the model in a browser (`serve/page.ts`, script at `GET /page.js`).
 * - `OPTIONS` on any route -> 204 with `Allow`, and CORS preflight headers for an allowed origin.
 *
 * Every response carries `X-Request-Id` (the request's own if it is 1-128 characters of
 * `[A-Za-z0-9._:-]`, else a new UUID) and, for an origin in CORS_ORIGINS (or any with `*`),
 * `Access-Control-Allow-Origin`. Each request writes one access log line to stdout:
 * `<method> <path> <status> <ms> <request id>` (ACCESS_LOG=0 turns it off).
 *
 * Errors are `{"error": {"code", "message"}}`: 400 invalid_json / invalid_request / invalid_body (the
 * upload broke off), 404 not_found,
 * 405 method_not_allowed (with Allow), 408 request_timeout (the body did not arrive within
 * BODY_TIMEOUT_MS of the headers; sent with Connection: close), 413 body_too_large (checked while the
 * body streams in) / too_many_texts, 415 unsupported_media_type, 500 inference_failed. None of them
 * stops the server.
 *
 * `/classify` reads its body as UTF-8 JSON whatever the Content-Type says among `application/json`
 * (and `application/*+json`), `text/plain` and `application/x-www-form-urlencoded` (what `curl -d`
 * sends), or none; any other type, or a charset other than UTF-8, is 415.
 *
 * Slow clients: the body deadline bounds a client that sends its headers and then trickles or stalls
 * the body: it gets its 408 on time and its handler and buffers are freed, though Deno keeps the TCP
 * connection open until the client closes it. A client that never finishes its headers never
 * reaches this code: `deno serve` has no header-timeout option and Deno 2.9 enforces none (such a
 * connection was still open after 40 s), so only the OS's file descriptor limit bounds how many can
 * wait. They cost a socket each and do not hold up other clients (`serve/hostile_test.ts` keeps
 * dozens open while serving). On an exposed host put a reverse proxy with header and body timeouts
 * (nginx's `client_header_timeout`, `client_body_timeout`) in front.
 * @module
 */

import { Batcher } from "./batcher.ts";
import { resolveConfig, type ServeConfig } from "./config.ts";
import { loadServeModel, predictionOf, type ServeModel } from "./model.ts";
import type { Encoding } from "../tokenizer/mod.ts";
import { describe, HttpError } from "./http_error.ts";
import {
  isHuggingFaceBody,
  labelScores,
  type ParsedInputs,
  parseHuggingFace,
  parsePredict,
  tooLong,
} from "./shapes.ts";
import { Metrics } from "./metrics.ts";
import { PAGE_HTML, PAGE_JS } from "./page.ts";

/** Options of {@linkcode createApp}: settings (defaults from `DEFAULT_CONFIG`), or a loaded model. */
export interface AppOptions extends Partial<ServeConfig> {
  /** Serve this model instead of loading `modelDir`; the caller keeps ownership (close() keeps it). */
  model?: ServeModel;
  /** Workers sharing the cores when ORT_THREADS is unset (main.ts passes DENO_JOBS). @default 1 */
  workers?: number;
}

/** A running application. */
export interface App {
  /** Handles one request; never rejects (failures become JSON error responses). */
  fetch(request: Request): Promise<Response>;
  /** Finishes queued work and releases the session (unless the model was passed in). */
  close(): Promise<void>;
  readonly config: Readonly<ServeConfig>;
  readonly model: ServeModel;
}

const ROUTES: Record<string, string[]> = {
  "/": ["GET", "HEAD", "POST"],
  "/page.js": ["GET", "HEAD"],
  "/classify": ["POST"],
  "/predict": ["POST"],
  "/health": ["GET", "HEAD"],
  "/model": ["GET", "HEAD"],
  "/metrics": ["GET", "HEAD"],
};
const ROUTE_LIST = "POST /classify, POST /predict, GET /health, GET /model, GET /metrics or GET /";
const METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
/** Headers a browser page may read from a cross-origin answer. */
const EXPOSED = "x-request-id, x-batch-size";
const FIELDS = ["text", "texts", "text_pair", "text_pairs"];
const EXAMPLE = `{"text": "..."} or {"texts": ["...", "..."]}`;

function errorResponse(e: HttpError): Response {
  return Response.json({ error: { code: e.code, message: e.message } }, {
    status: e.status,
    headers: e.headers,
  });
}

/**
 * Reads the body, stopping as soon as it passes `limit` bytes (a huge upload is never buffered) or
 * `timeoutMs` passes before it has all arrived (a slow or stalled upload does not hold a request
 * open forever).
 */
async function readBody(request: Request, limit: number, timeoutMs: number): Promise<Uint8Array> {
  const tooLarge = (declared = "") =>
    new HttpError(
      413,
      "body_too_large",
      `Request body ${declared}is over the ${limit}-byte limit (MAX_BODY_BYTES); send fewer or shorter texts`,
    );
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > limit) throw tooLarge(`of ${declared} bytes `);
  if (request.body === null) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = request.body.getReader();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() =>
      reject(
        new HttpError(
          408,
          "request_timeout",
          `Request body did not arrive within ${timeoutMs} ms (BODY_TIMEOUT_MS); got ${size} bytes, ` +
            "send the whole body at once",
          { connection: "close" },
        ),
      ), timeoutMs);
  });
  try {
    while (true) {
      const { done, value } = await Promise.race([
        reader.read().catch((e) => {
          throw new HttpError(
            400,
            "invalid_body",
            `Cannot read the request body (${(e as Error).message ?? e})`,
          );
        }),
        deadline,
      ]);
      if (done) break;
      size += value.length;
      if (size > limit) throw tooLarge();
      chunks.push(value);
    }
  } catch (e) {
    await reader.cancel().catch(() => {});
    throw e;
  } finally {
    clearTimeout(timer);
  }
  const body = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    body.set(c, at);
    at += c.length;
  }
  return body;
}

/** Media types whose body /classify reads as JSON (see the module doc). */
const JSON_TYPES =
  /^(application\/json|application\/[\w.+-]+\+json|text\/plain|application\/x-www-form-urlencoded)$/;

/** Refuses a Content-Type other than the ones read as JSON, or a charset other than UTF-8. */
function checkContentType(value: string | null): void {
  if (value === null || value.trim() === "") return;
  const [type, ...params] = value.split(";").map((p) => p.trim().toLowerCase());
  const shown = JSON.stringify(value.slice(0, 100));
  if (!JSON_TYPES.test(type)) {
    throw new HttpError(
      415,
      "unsupported_media_type",
      `Content-Type ${shown} is not JSON; send application/json`,
    );
  }
  const charset = params.find((p) => p.startsWith("charset="))?.slice("charset=".length).replace(/"/g, "");
  if (charset !== undefined && charset !== "utf-8" && charset !== "utf8") {
    throw new HttpError(
      415,
      "unsupported_media_type",
      `Content-Type ${shown} declares another charset than UTF-8; send UTF-8 JSON`,
    );
  }
}

function parseJson(body: Uint8Array): unknown {
  if (body.length === 0) throw new HttpError(400, "invalid_json", `Request body is empty; send ${EXAMPLE}`);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(body);
  } catch {
    throw new HttpError(400, "invalid_json", "Request body is not valid UTF-8; send JSON text");
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new HttpError(
      400,
      "invalid_json",
      `Request body is not valid JSON (${(e as Error).message}); send ${EXAMPLE}`,
    );
  }
}

/** A request's own text (path, method) cut to a length fit for an error message. */
function shorten(text: string, max = 200): string {
  return text.length > max ? `${text.slice(0, max)}... (${text.length} characters)` : text;
}

/** The texts (and pairs) of a /classify body. */
interface ClassifyRequest {
  texts: string[];
  pairs?: string[];
}

function parseClassify(json: unknown, maxTexts: number): ClassifyRequest {
  const invalid = (message: string) => new HttpError(400, "invalid_request", message);
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw invalid(`Request body must be a JSON object like ${EXAMPLE}, got ${describe(json)}`);
  }
  const body = json as Record<string, unknown>;
  const unknown = Object.keys(body).filter((k) => !FIELDS.includes(k));
  if (unknown.length > 0) {
    throw invalid(`Unknown field ${JSON.stringify(unknown[0])}; use text, texts, text_pair or text_pairs`);
  }
  const has = (k: string) => body[k] !== undefined;
  if (has("text") === has("texts")) {
    throw invalid(`Give exactly one of "text" (a string) or "texts" (a list of strings), like ${EXAMPLE}`);
  }
  if (has("text")) {
    if (has("text_pairs")) throw invalid(`"text_pairs" goes with "texts"; use "text_pair" with "text"`);
    if (typeof body.text !== "string") throw invalid(`"text" must be a string, got ${describe(body.text)}`);
    if (has("text_pair") && typeof body.text_pair !== "string") {
      throw invalid(`"text_pair" must be a string, got ${describe(body.text_pair)}`);
    }
    return { texts: [body.text], pairs: has("text_pair") ? [body.text_pair as string] : undefined };
  }
  if (has("text_pair")) throw invalid(`"text_pair" goes with "text"; use "text_pairs" with "texts"`);
  const strings = (name: string, value: unknown): string[] => {
    if (!Array.isArray(value)) throw invalid(`"${name}" must be a list of strings, got ${describe(value)}`);
    if (value.length > maxTexts) {
      throw new HttpError(
        413,
        "too_many_texts",
        `"${name}" has ${value.length} entries, over the limit of ${maxTexts} (MAX_TEXTS); split the request`,
      );
    }
    const bad = value.findIndex((v) => typeof v !== "string");
    if (bad >= 0) throw invalid(`"${name}[${bad}]" must be a string, got ${describe(value[bad])}`);
    return value;
  };
  const texts = strings("texts", body.texts);
  if (texts.length === 0) throw invalid(`"texts" is empty; send at least one text`);
  if (!has("text_pairs")) return { texts };
  const pairs = strings("text_pairs", body.text_pairs);
  if (pairs.length !== texts.length) {
    throw invalid(
      `"text_pairs" has ${pairs.length} entries but "texts" has ${texts.length}; give one pair per text`,
    );
  }
  return { texts, pairs };
}

/**
 * Loads the model (unless `options.model` is given) and returns the request handler.
 * @throws {Error} from {@linkcode loadServeModel} (naming the folder or file) or for bad settings.
 * @example
 * ```ts ignore
 * import { createApp } from "./app.ts";
 * const app = await createApp({ modelDir: "runs/demo/export", batchWindowMs: 0 });
 * const response = await app.fetch(new Request("http://x/classify", { method: "POST", body: '{"text": "the dog runs."}' }));
 * console.log(await response.json());
 * await app.close();
 * ```
 */
export async function createApp(options: AppOptions = {}): Promise<App> {
  const { model: given, workers, ...settings } = options;
  const config = resolveConfig(settings);
  const model = given ??
    await loadServeModel(config.modelDir, {
      backend: config.backend,
      variant: config.variant,
      threads: config.ortThreads,
      workers,
    });
  const metrics = new Metrics({ backend: model.backend, variant: model.variant });
  const batcher = new Batcher((rows: Encoding[]) => model.run(rows), {
    windowMs: config.batchWindowMs,
    maxBatch: config.maxBatch,
    maxTokens: config.maxBatchTokens,
    lengthOf: (row: Encoding) => row.ids.length,
    onRun: (info) => metrics.run(info),
  });
  const origins = config.corsOrigins.split(",").map((o) => o.trim()).filter((o) => o !== "");
  let requests = 0; // POST /classify requests, valid or not
  const short = { variant: model.variant, file: model.file };

  /** Tokenizes and runs texts through the batcher; returns each one's logits and the largest run. */
  async function infer(texts: string[], pairs?: (string | undefined)[], refuseLong = false) {
    let encodings: Encoding[];
    try {
      encodings = texts.map((t, i) => model.encode(t, pairs?.[i]));
    } catch (e) {
      // Only a maxLength too short for the special tokens of a pair gets here.
      throw new HttpError(400, "invalid_request", `Cannot tokenize the input: ${(e as Error).message}`);
    }
    const long = encodings.findIndex((e) => e.truncated);
    if (refuseLong && long >= 0) throw tooLong(long, model.manifest.maxLength);
    let served;
    try {
      served = await batcher.submit(encodings);
    } catch (e) {
      console.error("Inference failed:", e);
      throw new HttpError(500, "inference_failed", `Inference failed: ${(e as Error).message ?? e}`);
    }
    return { encodings, outputs: served.outputs, batchHeader: String(Math.max(...served.batchSizes)) };
  }

  async function readJson(request: Request): Promise<unknown> {
    checkContentType(request.headers.get("content-type"));
    const raw = await readBody(request, config.maxBodyBytes, config.bodyTimeoutMs);
    return parseJson(raw);
  }

  /** Answers parsed Hugging Face or TEI inputs: label/score lists, one per text for a batch. */
  async function answerScores(parsed: ParsedInputs): Promise<Response> {
    const { outputs, batchHeader } = await infer(parsed.texts, parsed.pairs, parsed.refuseLong);
    const answers = outputs.map((logits) =>
      labelScores(logits, model.manifest, parsed.transform, parsed.topK)
    );
    return Response.json(parsed.batch ? answers : answers[0], { headers: { "x-batch-size": batchHeader } });
  }

  async function classify(request: Request): Promise<Response> {
    requests++;
    const json = await readJson(request);
    if (isHuggingFaceBody(json)) return await answerScores(parseHuggingFace(json, config.maxTexts));
    const body = parseClassify(json, config.maxTexts);
    const { encodings, outputs, batchHeader } = await infer(body.texts, body.pairs);
    const results = outputs.map((logits, i) => ({
      ...predictionOf(logits, model.manifest),
      truncated: encodings[i].truncated,
    }));
    return Response.json({ results, model: short }, { headers: { "x-batch-size": batchHeader } });
  }

  function describeModel(): Response {
    const m = model.manifest;
    return Response.json({
      labels: m.labels,
      maxLength: m.maxLength,
      problemType: m.problemType,
      backend: model.backend,
      variant: model.variant,
      quantization: model.variant === "int8"
        ? "int8 weights, dynamic uint8 activations"
        : model.variant === "float16"
        ? "float16 weights and activations"
        : "none (float32)",
      threads: model.threads,
      ...(model.threadsNote ? { threadsNote: model.threadsNote } : {}),
      file: model.file,
      bytes: model.bytes,
      variants: Object.keys(m.models),
      inputs: model.inputNames,
      outputs: model.outputNames,
      vocabSize: model.tokenizer.vocabSize,
      batching: {
        windowMs: config.batchWindowMs,
        maxBatch: config.maxBatch,
        maxBatchTokens: config.maxBatchTokens,
        lengthAware: true,
      },
      limits: {
        maxBodyBytes: config.maxBodyBytes,
        maxTexts: config.maxTexts,
        bodyTimeoutMs: config.bodyTimeoutMs,
      },
      stats: { requests, sessionRuns: batcher.runs, textsRun: batcher.items },
    });
  }

  /** The answer of a GET (or HEAD) route. */
  function getRoute(path: string): Response {
    if (path === "/health") return Response.json({ status: "ok" });
    if (path === "/model") return describeModel();
    if (path === "/metrics") {
      return new Response(metrics.render(batcher.pending), {
        headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
      });
    }
    const [body, type] = path === "/" ? [PAGE_HTML, "text/html"] : [PAGE_JS, "text/javascript"];
    return new Response(body, {
      headers: {
        "content-type": `${type}; charset=utf-8`,
        "content-security-policy":
          "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
        "x-content-type-options": "nosniff",
      },
    });
  }

  /** The CORS headers for this request's Origin, if it is allowed. */
  function corsHeaders(request: Request): Record<string, string> {
    const origin = request.headers.get("origin");
    if (origin === null || origins.length === 0) return {};
    if (origins.includes("*")) {
      return { "access-control-allow-origin": "*", "access-control-expose-headers": EXPOSED };
    }
    if (!origins.includes(origin)) return { vary: "origin" };
    return {
      "access-control-allow-origin": origin,
      "access-control-expose-headers": EXPOSED,
      vary: "origin",
    };
  }

  function preflight(request: Request, methods: string[]): Response {
    const allow = [...methods, "OPTIONS"].join(", ");
    const headers: Record<string, string> = { allow };
    const cors = corsHeaders(request);
    if (cors["access-control-allow-origin"] !== undefined) {
      headers["access-control-allow-methods"] = allow;
      headers["access-control-allow-headers"] = "content-type, x-request-id";
      headers["access-control-max-age"] = "600";
    }
    return new Response(null, { status: 204, headers });
  }

  async function route(request: Request, path: string): Promise<Response> {
    const methods = ROUTES[path];
    if (methods === undefined) {
      throw new HttpError(
        404,
        "not_found",
        `No route ${shorten(request.method)} ${shorten(path)}; use ${ROUTE_LIST}`,
      );
    }
    if (request.method === "OPTIONS") return preflight(request, methods);
    if (!methods.includes(request.method)) {
      throw new HttpError(
        405,
        "method_not_allowed",
        `${path} accepts ${methods.join(", ")}, not ${shorten(request.method)}`,
        { allow: [...methods, "OPTIONS"].join(", ") },
      );
    }
    if (path === "/classify") return await classify(request);
    if (path === "/predict") {
      return await answerScores(parsePredict(await readJson(request), config.maxTexts));
    }
    if (request.method === "POST") { // POST /: Hugging Face Inference Endpoints' address
      const json = await readJson(request);
      if (!isHuggingFaceBody(json)) {
        throw new HttpError(
          400,
          "invalid_request",
          `POST / takes Hugging Face's {"inputs": ...}; use POST /classify for {"text"}`,
        );
      }
      return await answerScores(parseHuggingFace(json, config.maxTexts));
    }
    const response = getRoute(path);
    return request.method === "HEAD" ? new Response(null, { headers: response.headers }) : response;
  }

  async function handle(request: Request, path: string): Promise<Response> {
    try {
      return await route(request, path);
    } catch (e) {
      if (e instanceof HttpError) return errorResponse(e);
      console.error("Unexpected error:", e);
      return errorResponse(
        new HttpError(500, "internal_error", `Unexpected error: ${(e as Error).message ?? e}`),
      );
    }
  }

  return {
    config,
    model,
    async fetch(request: Request): Promise<Response> {
      const t0 = performance.now();
      const asked = request.headers.get("x-request-id");
      const id = asked !== null && REQUEST_ID.test(asked) ? asked : crypto.randomUUID();
      const path = new URL(request.url).pathname;
      const response = await handle(request, path);
      try {
        response.headers.set("x-request-id", id);
        for (const [k, v] of Object.entries(corsHeaders(request))) response.headers.set(k, v);
      } catch { /* immutable headers: cannot happen for the responses built above */ }
      const ms = performance.now() - t0;
      // Labels from a fixed set: a client cannot grow the series with made-up paths or methods.
      const known = ROUTES[path] !== undefined;
      const method = known && METHODS.includes(request.method) ? request.method : "other";
      metrics.request(known ? path : "other", method, response.status, ms / 1000);
      if (config.accessLog) {
        console.log(
          `${shorten(request.method, 16)} ${shorten(path)} ${response.status} ${ms.toFixed(1)} ${id}`,
        );
      }
      return response;
    },
    async close() {
      await batcher.close();
      if (given === undefined) await model.release();
    },
  };
}
