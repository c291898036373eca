/**
 * The HTTP classifier: an exported model (serve.json + ONNX + tokenizer) behind `POST /classify`, with
 * micro-batching over one onnxruntime-web session. Run it with `deno serve serve/main.ts`, or embed
 * {@linkcode createApp} in-process.
 *
 * @example
 * ```ts ignore
 * import { createApp } from "./mod.ts";
 * const app = await createApp({ modelDir: "runs/demo/export" });
 * const response = await app.fetch(new Request("http://x/classify", { method: "POST", body: '{"text": "hi"}' }));
 * console.log(await response.json());
 * await app.close();
 * ```
 * @module
 */

export { type App, type AppOptions, createApp } from "./app.ts";
export { Batcher, type BatcherOptions, type Submitted } from "./batcher.ts";
export {
  configFromEnv,
  DEFAULT_CONFIG,
  DEFAULT_MODEL_DIR,
  ENV_NAMES,
  type ModelVariant,
  resolveConfig,
  type ServeConfig,
} from "./config.ts";
export {
  type LoadModelOptions,
  loadServeModel,
  parseManifest,
  type Prediction,
  predictionOf,
  type ServeManifest,
  type ServeModel,
} from "./model.ts";
