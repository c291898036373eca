/**
 * The classifying side of bert-webgpu (`@bert-webgpu/bert-webgpu/classify`): load an exported model
 * (serve.json, ONNX and tokenizer files, from a folder or URL) and classify texts with onnxruntime-web
 * (wasm). It does not load the WebGPU training code.
 * @example
 * ```ts ignore
 * import { loadClassifier } from "./classify.ts";
 * const classifier = await loadClassifier("runs/demo/export");
 * console.log((await classifier.classify("the dog runs.")).label); // acceptable
 * await classifier.release();
 * ```
 * @module
 */

// Tokenizer
export {
  type BatchEncoding,
  type BatchOptions as EncodeBatchOptions,
  type EncodeOptions,
  type Encoding,
  type LoadOptions as LoadTokenizerOptions,
  loadTokenizer,
  type Tokenizer,
  tokenizerFromJson,
  tokenizerFromVocab,
  type VocabOptions,
} from "./tokenizer/mod.ts";

// Classification
export {
  type Classification,
  type Classifier,
  type ClassifyOptions,
  loadClassifier,
  type LoadClassifierOptions,
} from "./serve/classifier.ts";
export type { ModelVariant } from "./serve/config.ts";
