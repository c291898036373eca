/**
 * The Deno permissions of each user-facing task, in one place: `deno.json`'s tasks mirror
 * {@linkcode TASKS} string for string, and `tests/permissions_test.ts` runs these exact strings (through
 * `deno task --eval`, so `$HOME` and `$(...)` expand as they do in deno.json) on the demo path:
 * demo, train, eval, export and serve, plus the requests each must be refused.
 *
 * What each task may do, and why:
 * - WebGPU needs no permission in Deno 2.9 (`navigator.gpu` works with none; no --allow-ffi).
 * - demo: reads and writes its run folder under `runs/` (it generates its data and vocabulary).
 * - train: reads anything (`--model` and `--data` are the user's paths), writes run folders under
 *   `runs/` and the download cache, reaches only the Hugging Face hub and its CDNs, the CoLA site and GLUE's file host,
 *   reads the cache and hub variables, and asks the OS for the home folder (node:os homedir(), for
 *   the default cache). With `--output` outside `runs/`, `--cache-dir` or `$BERT_WEBGPU_CACHE`
 *   elsewhere, an `HF_ENDPOINT` mirror or a `--data` URL, run `deno run` with the matching flags.
 * - eval: reads anything, writes only the cache (CoLA and GLUE downloads), reaches only those two hosts.
 * - export: reads anything, writes under `runs/`.
 * - serve: reads run folders under `runs/` (MODEL_DIR must be inside) and the npm cache, where
 *   onnxruntime-web's .wasm file lives (it is read as a file, so it needs read access); reads only its own settings; `deno serve` grants itself the
 *   listening address, so no --allow-net unless MODEL_DIR is a URL (add that host). It listens on
 *   $PORT (default 8000), read by a `deno eval` in the task line. DENO_JOBS is read to share the
 *   cores among `--parallel` workers. MODEL_BACKEND=native (onnxruntime-node, a native addon) needs
 *   --allow-ffi added, only then; the default wasm backend never loads it.
 * - bench and test keep `-A`: they spawn subprocesses, run Python and write where they are told.
 *
 * Portability: `$HOME` is not set on Windows (use the flags with your profile folder there).
 * @module
 */

/** The download cache's default location (`train/hub.ts` defaultCacheDir without $BERT_WEBGPU_CACHE). */
export const CACHE_DIR = "$HOME/.cache/bert-webgpu";

/**
 * The npm cache folder, as a command substitution for deno.json's task shell: `deno info --json`
 * knows it whatever DENO_DIR, XDG_CACHE_HOME or the platform say. No plainer form exists: Deno has no
 * variable or flag naming its npm cache, and the task shell has no portable filter (jq, grep, sed) to
 * pick it out of `deno info`, so a nested `deno eval` is the one way to grant exactly that folder.
 */
export const NPM_CACHE =
  `$(deno eval "console.log(JSON.parse(new TextDecoder().decode(new Deno.Command(Deno.execPath(), { args: ['info', '--json'] }).outputSync().stdout)).npmCache)")`;

/** Where downloads come from: the hub, the CDNs it redirects to (*.huggingface.co, *.hf.co), CoLA and the GLUE zips. */
export const DOWNLOAD_HOSTS =
  "huggingface.co,*.huggingface.co,*.hf.co,nyu-mll.github.io,dl.fbaipublicfiles.com";

/** The environment variables serve reads (`serve/config.ts` ENV_NAMES). */
export const SERVE_ENV = [
  "MODEL_DIR",
  "MODEL_BACKEND",
  "MODEL_VARIANT",
  "ORT_THREADS",
  "BATCH_WINDOW_MS",
  "MAX_BATCH",
  "MAX_BATCH_TOKENS",
  "MAX_BODY_BYTES",
  "MAX_TEXTS",
  "BODY_TIMEOUT_MS",
  "CORS_ORIGINS",
  "ACCESS_LOG",
  "DENO_JOBS",
].join(",");

/**
 * The serve task's port: $PORT, else 8000. The task shell has no `${PORT:-8000}`, and arguments after
 * `deno task serve` go to the script, not to `deno serve`, so a `deno eval` reads it.
 */
export const SERVE_PORT = `$(deno eval "console.log(Deno.env.get('PORT') || 8000)")`;

/** The permission flags of each task. */
export const FLAGS = {
  demo: "--allow-read=runs --allow-write=runs",
  train:
    `--allow-read --allow-write=runs,${CACHE_DIR},$HOME/.cache/huggingface --allow-net=${DOWNLOAD_HOSTS} ` +
    "--allow-env=BERT_WEBGPU_CACHE,HF_ENDPOINT,HF_TOKEN,HUGGING_FACE_HUB_TOKEN,HF_TOKEN_PATH,HF_HOME,HF_HUB_CACHE," +
    "HUGGINGFACE_HUB_CACHE,HF_HUB_OFFLINE,XDG_CACHE_HOME,BERT_WEBGPU_COLA_URL --allow-sys=homedir",
  eval: `--allow-read --allow-write=${CACHE_DIR} --allow-net=nyu-mll.github.io,dl.fbaipublicfiles.com ` +
    "--allow-env=BERT_WEBGPU_CACHE,BERT_WEBGPU_COLA_URL --allow-sys=homedir",
  export: "--allow-read --allow-write=runs",
  serve: `--allow-read=runs,${NPM_CACHE} --allow-env=${SERVE_ENV}`,
} as const;

/**
 * Each user-facing task checks its own lockfile, which lists only the npm packages its entry points
 * import. `deno task` installs every package of the configured lockfile before it runs a task, so
 * deno.json sets `"lock": false` and names the lockfile per task: with the shared deno.lock (tests and
 * benches: onnxruntime-node, tokenizers) the demo's first run downloaded 514 MB instead of 14 MB.
 * `--frozen` fails on an out-of-date lockfile; `deno task locks` rewrites these two. `test`, `bench`
 * and `ok` check deno.lock the same way.
 */
export const LOCKS = {
  train: "--frozen --lock=locks/train.lock",
  serve: "--frozen --lock=locks/serve.lock",
} as const;

/**
 * How the serve task runs the process, besides permissions (`tests/spawn.ts` starts test and bench
 * servers the same way). glibc malloc: one arena (V8's background threads compile onnxruntime-web's
 * wasm with TurboFan during the first runs, and per-thread arenas kept 40-90 MB of that transient as
 * RSS), and blocks of 32 KiB and more mapped on their own, so a freed compile zone or load buffer goes
 * back to the OS instead of staying in the heap (bert-base int8 after 200 requests: 248 MiB resident
 * instead of 321-334). V8: --optimize-for-size (a smaller JS heap: 12-24 MiB less at start and at the
 * first runs' peak), --no-wasm-inlining and one background compile task (the first runs' TurboFan
 * transient: 355 -> 349-350 MiB peak on a quiet machine, session runs as fast). Measured with
 * bench/serve_mem.ts; BENCHMARKS.md has the figures.
 */
export const SERVE_PROCESS = {
  env: { MALLOC_ARENA_MAX: "1", MALLOC_MMAP_THRESHOLD_: "32768" },
  v8Flags: "--v8-flags=--optimize-for-size,--no-wasm-inlining,--wasm-num-compilation-tasks=1",
} as const;

/** The deno.json tasks these flags belong to (`bench`, `test` and `ok` stay as they are). */
export const TASKS = {
  demo: `deno run ${LOCKS.train} ${FLAGS.demo} train/demo/main.ts`,
  train: `deno run ${LOCKS.train} ${FLAGS.train} train/main.ts`,
  eval: `deno run ${LOCKS.train} ${FLAGS.eval} train/eval.ts`,
  export: `deno run ${LOCKS.train} ${FLAGS.export} train/export/main.ts`,
  // Memory settings: SERVE_PROCESS.
  serve: `${
    Object.entries(SERVE_PROCESS.env).map(([k, v]) => `${k}=${v}`).join(" ")
  } deno serve ${SERVE_PROCESS.v8Flags} ${LOCKS.serve} ${FLAGS.serve} --host 0.0.0.0 --port ${SERVE_PORT} serve/main.ts`,
} as const;
