/**
 * The `deno serve` entry point: loads the model named by the environment (see `serve/config.ts`:
 * MODEL_DIR, MODEL_BACKEND, MODEL_VARIANT, ORT_THREADS, BATCH_WINDOW_MS, MAX_BATCH, MAX_BATCH_TOKENS, MAX_BODY_BYTES,
 * MAX_TEXTS, BODY_TIMEOUT_MS) and serves `serve/app.ts`. Each `--parallel` worker evaluates this module and so
 * loads its own session. A missing or corrupt model folder stops start-up with exit code 1 and a
 * message naming the path.
 *
 * Run: `deno serve --allow-read=<model folder>,<npm cache> --allow-env --port 8000 serve/main.ts` (the
 * npm cache holds onnxruntime-web's .wasm, read as a file; `tests/permissions.ts` has the exact flags;
 * add `--allow-net=<host>` when MODEL_DIR is an http(s) URL, and `--parallel` for one worker per core;
 * DENO_JOBS sets how many), then
 * `curl -d '{"text": "the dog runs."}' localhost:8000/classify`.
 * @module
 */

import { type App, createApp } from "./app.ts";
import { configFromEnv } from "./config.ts";

/**
 * Workers of `deno serve --parallel` share the cores only if they know how many they are: Deno 2.9
 * tells a worker nothing (no variable, no global; /proc/self/cmdline needs --allow-all), so serve
 * reads DENO_JOBS, Deno's own worker-count knob. Set it with --parallel.
 */
function workers(): number {
  let jobs = NaN;
  try {
    jobs = Number(Deno.env.get("DENO_JOBS"));
  } catch { /* no --allow-env=DENO_JOBS: one worker assumed */ }
  return Number.isSafeInteger(jobs) && jobs > 0 ? jobs : 1;
}

let app: App;
try {
  app = await createApp({ ...configFromEnv((name) => Deno.env.get(name)), workers: workers() });
  const m = app.model;
  console.log(
    `Model ${m.file} (${m.variant}) on ${m.backend}, ${m.threads} thread(s)` +
      (m.threadsNote ? ` (${m.threadsNote})` : ""),
  );
} catch (e) {
  console.error(`Cannot start the server: ${(e as Error).message ?? e}`);
  Deno.exit(1);
}

/** The handler `deno serve` calls for every request. */
export default {
  fetch: (request: Request): Promise<Response> => app.fetch(request),
} satisfies Deno.ServeDefaultExport;
