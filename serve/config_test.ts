import assert from "node:assert/strict";
import {
  configFromEnv,
  DEFAULT_CONFIG,
  DEFAULT_MODEL_DIR,
  defaultThreads,
  ENV_NAMES,
  MAX_DEFAULT_THREADS,
  resolveConfig,
} from "./config.ts";

const fromEnv = (env: Record<string, string>) => configFromEnv((name) => env[name]);

Deno.test("configFromEnv() takes defaults for unset or empty variables", () => {
  assert.deepEqual(fromEnv({}), DEFAULT_CONFIG);
  assert.deepEqual(fromEnv({ MODEL_DIR: "", MAX_BATCH: "  " }), DEFAULT_CONFIG);
  assert.equal(DEFAULT_CONFIG.modelDir, DEFAULT_MODEL_DIR);
  assert.equal(DEFAULT_CONFIG.backend, "wasm");
  assert.equal(
    DEFAULT_CONFIG.variant,
    undefined,
    "the backend picks: int8 on wasm and native, float16 on webgpu",
  );
  assert.equal(DEFAULT_CONFIG.ortThreads, undefined, "the cores the process may use");
  assert.equal(DEFAULT_CONFIG.maxBodyBytes, 1024 * 1024);
});

Deno.test("configFromEnv() reads every variable", () => {
  const config = fromEnv({
    MODEL_DIR: "https://models.example/cola/",
    MODEL_BACKEND: "native",
    MODEL_VARIANT: "float32",
    ORT_THREADS: "2",
    BATCH_WINDOW_MS: "0.5",
    MAX_BATCH: "8",
    MAX_BODY_BYTES: "4096",
    MAX_TEXTS: "3",
    BODY_TIMEOUT_MS: "2500",
    CORS_ORIGINS: "https://a.example, https://b.example",
    ACCESS_LOG: "off",
  });
  assert.deepEqual(config, {
    modelDir: "https://models.example/cola/",
    backend: "native",
    variant: "float32",
    ortThreads: 2,
    batchWindowMs: 0.5,
    maxBatch: 8,
    maxBodyBytes: 4096,
    maxTexts: 3,
    bodyTimeoutMs: 2500,
    corsOrigins: "https://a.example, https://b.example",
    accessLog: false,
  });
  assert.deepEqual(Object.keys(ENV_NAMES).sort(), Object.keys(DEFAULT_CONFIG).sort());
});

Deno.test("configFromEnv() names the variable and the text it rejects", () => {
  const cases: [Record<string, string>, RegExp][] = [
    [
      { MODEL_VARIANT: "fp16" },
      /^MODEL_VARIANT "fp16" is not a model variant; use int8, float32 or float16$/,
    ],
    [
      { MODEL_BACKEND: "cuda" },
      /^MODEL_BACKEND "cuda" is not a backend; use wasm \(default\), webgpu or native$/,
    ],
    [
      { MODEL_BACKEND: "webgpu", MODEL_VARIANT: "int8" },
      /^MODEL_VARIANT "int8" cannot run on MODEL_BACKEND webgpu .*use float16 .* or MODEL_BACKEND wasm or native/,
    ],
    [
      { ORT_THREADS: "0" },
      /^ORT_THREADS "0" must be a whole number >= 1; the default is the cores the process/,
    ],
    [{ MAX_BATCH: "0" }, /^MAX_BATCH "0" must be a whole number >= 1; the default is 32$/],
    [{ MAX_TEXTS: "lots" }, /^MAX_TEXTS "lots" must be a whole number/],
    [{ ORT_THREADS: "1.5" }, /^ORT_THREADS "1.5" must be a whole number/],
    [{ MAX_BODY_BYTES: "-5" }, /^MAX_BODY_BYTES "-5" must be a whole number/],
    [{ BODY_TIMEOUT_MS: "0" }, /^BODY_TIMEOUT_MS "0" must be a whole number >= 1; the default is 10000$/],
    [{ BATCH_WINDOW_MS: "-1" }, /^BATCH_WINDOW_MS "-1" must be milliseconds in \[0, 10000\]; 0 turns/],
    [{ BATCH_WINDOW_MS: "5s" }, /^BATCH_WINDOW_MS "5s" must be milliseconds/],
  ];
  for (const [env, message] of cases) {
    assert.throws(() => fromEnv(env), { name: "RangeError", message }, JSON.stringify(env));
  }
});

Deno.test("configFromEnv() names a bad CORS_ORIGINS or ACCESS_LOG", () => {
  assert.throws(() => fromEnv({ CORS_ORIGINS: "https://*.example" }), {
    name: "TypeError",
    message: /^CORS_ORIGINS "https:\/\/\*\.example" must be origins like/,
  });
  assert.throws(() => fromEnv({ ACCESS_LOG: "maybe" }), {
    name: "TypeError",
    message: /^ACCESS_LOG "maybe" must be true or false$/,
  });
  assert.equal(fromEnv({ ACCESS_LOG: "1", CORS_ORIGINS: "*" }).corsOrigins, "*");
});

Deno.test("resolveConfig() fills in defaults and names a bad setting", () => {
  assert.deepEqual(resolveConfig({ maxBatch: 4, modelDir: undefined }), { ...DEFAULT_CONFIG, maxBatch: 4 });
  assert.throws(() => resolveConfig({ maxTexts: 0 }), { name: "RangeError", message: /^maxTexts 0 must be/ });
  assert.throws(() => resolveConfig({ modelDir: "" }), {
    name: "TypeError",
    message: /^modelDir "" must be/,
  });
});

Deno.test("defaultThreads() takes the cores, capped, shared among workers, never below 1", () => {
  assert.equal(defaultThreads(2), 2);
  assert.equal(defaultThreads(64), MAX_DEFAULT_THREADS);
  assert.equal(defaultThreads(16, 4), 2, "the cap is shared, so 4 workers on a big host take 2 each");
  assert.equal(defaultThreads(2, 4), 1);
  assert.equal(defaultThreads(0), 1, "an isolate that reports no cores still gets one thread");
  assert.equal(defaultThreads(Number.NaN, 0), 1);
});
