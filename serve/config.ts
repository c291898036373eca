/**
 * The server's settings: one typed object with defaults, read from environment variables by
 * {@linkcode configFromEnv} (what `deno serve serve/main.ts` uses) or given directly to `createApp`.
 * @module
 */

/** The demo's export folder (`runs/demo/export`, relative to the working directory). */
export const DEFAULT_MODEL_DIR = "runs/demo/export";

/** Model variants serve.json can list. */
export type ModelVariant = "int8" | "float32" | "float16";

/** Where the model runs: onnxruntime-web on wasm or WebGPU, or onnxruntime-node (native code). */
export type Backend = "wasm" | "webgpu" | "native";

/** The variant each backend loads when MODEL_VARIANT is unset (WebGPU has no int8 kernels). */
export const DEFAULT_VARIANT: Readonly<Record<Backend, ModelVariant>> = Object.freeze({
  wasm: "int8",
  webgpu: "float16",
  native: "int8",
});

/**
 * Most threads serve picks by itself: BERT's matmuls at batch 1 (768 x 768 per token row) stop
 * gaining well before 8 intra-op threads, and every wasm thread is a Worker with its own stack in a
 * heap that never shrinks. ORT_THREADS sets more.
 */
export const MAX_DEFAULT_THREADS = 8;

/**
 * The default thread count: the cores this process may use (`navigator.hardwareConcurrency`),
 * capped at {@linkcode MAX_DEFAULT_THREADS}, shared among `workers` (`deno serve --parallel` runs
 * DENO_JOBS workers in one process; a worker cannot otherwise tell how many siblings it has).
 * @example
 * ```ts
 * import { defaultThreads } from "./config.ts";
 * console.log(defaultThreads(16, 1), defaultThreads(16, 4), defaultThreads(2, 4)); // 8 4 1
 * ```
 */
export function defaultThreads(cores: number, workers = 1): number {
  const usable = Math.min(Number.isInteger(cores) && cores > 0 ? cores : 1, MAX_DEFAULT_THREADS);
  return Math.max(1, Math.floor(usable / Math.max(1, workers)));
}

/** Server settings. */
export interface ServeConfig {
  /** Exported model folder (path or http(s)/file URL) holding serve.json. @default "runs/demo/export" */
  modelDir: string;
  /** Where the model runs. @default "wasm" */
  backend: Backend;
  /** Which model of serve.json to load; undefined: the backend's {@linkcode DEFAULT_VARIANT}. */
  variant?: ModelVariant;
  /**
   * Intra-op threads (wasm: set before the first session of the process); undefined: the cores
   * the process may use, see {@linkcode defaultThreads}.
   */
  ortThreads?: number;
  /** How long the first queued text waits for company before its batch runs; 0 runs each request alone. @default 2 */
  batchWindowMs: number;
  /** Most texts in one session run. @default 32 */
  maxBatch: number;
  /** Largest request body, enforced while it streams in. @default 1048576 (1 MiB) */
  maxBodyBytes: number;
  /** Most texts in one request. @default 64 */
  maxTexts: number;
  /**
   * Most milliseconds a request body may take to arrive, counted from its headers; a slower (or
   * stalled) upload gets 408 and its handler is freed. @default 10000
   */
  bodyTimeoutMs: number;
  /**
   * Origins whose pages may call the server from a browser (CORS): comma-separated, `*` for any, empty
   * for none (the page at `GET /` is same-origin and needs none). @default ""
   */
  corsOrigins: string;
  /** One stdout line per request: method path status ms request-id. @default true */
  accessLog: boolean;
}

/** Every setting's default. */
export const DEFAULT_CONFIG: Readonly<ServeConfig> = Object.freeze({
  modelDir: DEFAULT_MODEL_DIR,
  backend: "wasm",
  variant: undefined,
  ortThreads: undefined,
  batchWindowMs: 2,
  maxBatch: 32,
  maxBodyBytes: 1 << 20,
  maxTexts: 64,
  bodyTimeoutMs: 10_000,
  corsOrigins: "",
  accessLog: true,
});

/** The environment variable of each setting. */
export const ENV_NAMES: Readonly<Record<keyof ServeConfig, string>> = Object.freeze({
  modelDir: "MODEL_DIR",
  backend: "MODEL_BACKEND",
  variant: "MODEL_VARIANT",
  ortThreads: "ORT_THREADS",
  batchWindowMs: "BATCH_WINDOW_MS",
  maxBatch: "MAX_BATCH",
  maxBodyBytes: "MAX_BODY_BYTES",
  maxTexts: "MAX_TEXTS",
  bodyTimeoutMs: "BODY_TIMEOUT_MS",
  corsOrigins: "CORS_ORIGINS",
  accessLog: "ACCESS_LOG",
});

const VARIANTS: readonly ModelVariant[] = ["int8", "float32", "float16"];
const BACKENDS: readonly Backend[] = ["wasm", "webgpu", "native"];
const WHOLE_SETTINGS = ["ortThreads", "maxBatch", "maxBodyBytes", "maxTexts", "bodyTimeoutMs"] as const;
/** A window this long would only ever hurt latency; it is surely a unit mistake (seconds?). */
const MAX_WINDOW_MS = 10_000;

/** Validates settings; `label(key)` names a setting with its value as the user wrote it. */
function checkConfig(config: ServeConfig, label: (key: keyof ServeConfig) => string): ServeConfig {
  if (typeof config.modelDir !== "string" || config.modelDir === "") {
    throw new TypeError(`${label("modelDir")} must be a non-empty folder path or URL`);
  }
  if (!BACKENDS.includes(config.backend)) {
    throw new RangeError(`${label("backend")} is not a backend; use wasm (default), webgpu or native`);
  }
  if (config.variant !== undefined && !VARIANTS.includes(config.variant)) {
    throw new RangeError(`${label("variant")} is not a model variant; use int8, float32 or float16`);
  }
  if (config.backend === "webgpu" && config.variant === "int8") {
    throw new RangeError(
      `${label("variant")} cannot run on MODEL_BACKEND webgpu (its provider has no int8 kernels); ` +
        `use float16 (the default there) or float32, or MODEL_BACKEND wasm or native for int8`,
    );
  }
  for (const key of WHOLE_SETTINGS) {
    const value = config[key];
    if (key === "ortThreads" && value === undefined) continue;
    if (!Number.isSafeInteger(value) || (value as number) < 1) {
      throw new RangeError(
        `${label(key)} must be a whole number >= 1; the default is ${
          DEFAULT_CONFIG[key] ?? "the cores the process may use"
        }`,
      );
    }
  }
  const w = config.batchWindowMs;
  if (typeof w !== "number" || !(w >= 0 && w <= MAX_WINDOW_MS)) {
    throw new RangeError(
      `${label("batchWindowMs")} must be milliseconds in [0, ${MAX_WINDOW_MS}]; ` +
        `0 turns batching off, the default is ${DEFAULT_CONFIG.batchWindowMs}`,
    );
  }
  if (
    typeof config.corsOrigins !== "string" || !/^(\*|[^*\s]*)$/.test(config.corsOrigins.replace(/,\s*/g, ","))
  ) {
    throw new TypeError(
      `${label("corsOrigins")} must be origins like https://a.example,https://b.example, or *`,
    );
  }
  if (typeof config.accessLog !== "boolean") {
    throw new TypeError(`${label("accessLog")} must be true or false`);
  }
  return config;
}

/**
 * Fills in defaults and validates settings given in code.
 * @throws {RangeError | TypeError} naming the setting and its value.
 * @example
 * ```ts
 * import { resolveConfig } from "./config.ts";
 * console.log(resolveConfig({ batchWindowMs: 0 }).maxBatch); // 32
 * ```
 */
export function resolveConfig(options: Partial<ServeConfig> = {}): ServeConfig {
  const defined = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  const config = { ...DEFAULT_CONFIG, ...defined };
  return checkConfig(config, (key) => `${key} ${JSON.stringify(config[key])}`);
}

/**
 * Reads settings from environment variables ({@linkcode ENV_NAMES}); unset or empty ones take their
 * default. Pass `(name) => Deno.env.get(name)`, or a lookup over a plain object in tests.
 * @throws {RangeError | TypeError} naming the variable and its value, e.g. `MAX_BATCH "0"`.
 * @example
 * ```ts
 * import { configFromEnv } from "./config.ts";
 * const env: Record<string, string> = { MODEL_VARIANT: "float32", BATCH_WINDOW_MS: "0" };
 * const config = configFromEnv((name) => env[name]);
 * console.log(config.variant, config.batchWindowMs, config.maxTexts); // float32 0 64
 * ```
 */
export function configFromEnv(get: (name: string) => string | undefined): ServeConfig {
  const config: ServeConfig = { ...DEFAULT_CONFIG };
  const raw: Partial<Record<keyof ServeConfig, string>> = {};
  for (const key of Object.keys(ENV_NAMES) as (keyof ServeConfig)[]) {
    const text = get(ENV_NAMES[key])?.trim();
    if (text === undefined || text === "") continue;
    raw[key] = text;
    if (key === "modelDir") config.modelDir = text;
    else if (key === "backend") config.backend = text as Backend;
    else if (key === "variant") config.variant = text as ModelVariant;
    else if (key === "corsOrigins") config.corsOrigins = text;
    else if (key === "accessLog") {
      const on = ["1", "true", "on", "yes"].includes(text.toLowerCase());
      config.accessLog = on || ["0", "false", "off", "no"].includes(text.toLowerCase()) ? on : text as never;
    } else config[key] = Number(text); // "abc" -> NaN, rejected below with the text as written
  }
  return checkConfig(config, (key) => `${ENV_NAMES[key]} ${JSON.stringify(raw[key] ?? config[key])}`);
}
