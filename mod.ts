/**
 * bert-webgpu: fine-tune BERT classifiers in TypeScript on WebGPU (our own WGSL kernels for the
 * forward and backward pass and AdamW), save Hugging Face model folders, export int8 ONNX, and
 * classify with onnxruntime-web. It runs from a URL import: nothing here needs an import map.
 *
 * - Tokenize: {@linkcode loadTokenizer} (folder, tokenizer.json, vocab.txt or URL),
 *   {@linkcode tokenizerFromVocab}; Hugging Face's exact ids.
 * - Data: {@linkcode loadCola}, {@linkcode loadGlue} (the nine GLUE tasks), {@linkcode loadTable} /
 *   {@linkcode parseTable} (TSV, CSV, JSONL), {@linkcode splitTrainValidation}, {@linkcode makeBatches};
 *   metrics {@linkcode accuracy}, {@linkcode matthewsCorrcoef}, {@linkcode f1Score}, {@linkcode pearson},
 *   {@linkcode spearman}, and each task's GLUE metrics with {@linkcode glueScores}.
 * - Models: {@linkcode createModelConfig} + {@linkcode initWeights} (from scratch), {@linkcode loadModel}
 *   (a Hugging Face folder, e.g. from {@linkcode downloadModelFiles}), {@linkcode saveModelFolder}.
 * - Train and evaluate: {@linkcode fineTune} (the tutorial's recipe, progress callbacks, AbortSignal),
 *   {@linkcode evaluate}, on a {@linkcode Gpu} device.
 * - Ship: {@linkcode exportModel} (ONNX, float32 and int8), {@linkcode loadClassifier} to classify texts.
 *
 * `deno doc mod.ts` lists every symbol; each has a runnable example.
 *
 * @example Train a tiny model from scratch, export it and classify with it
 * ```ts
 * import { createModelConfig, exportModel, fineTune, initWeights, loadClassifier, tokenizerFromVocab } from "./mod.ts";
 *
 * const tokenizer = tokenizerFromVocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "great", "dull", "film", "plot"]);
 * const texts = ["a great film", "a dull film", "great plot", "dull plot", "a great plot", "a dull plot"];
 * const examples = [...texts, ...texts].map((text) => ({ text, label: text.includes("great") ? 1 : 0 }));
 * const train = { name: "reviews", labels: ["negative", "positive"], examples };
 *
 * const config = createModelConfig({ vocabSize: tokenizer.vocabSize, labels: train.labels });
 * const output = await Deno.makeTempDir();
 * const result = await fineTune({ config, weights: initWeights(config, 42) }, { train, validation: train }, {
 *   tokenizer,
 *   output,
 *   epochs: 5,
 *   batchSize: 12,
 *   maxLength: 8,
 *   lr: 5e-3,
 * });
 * console.log(result.epochs.at(-1)!.validation!.accuracy); // 1
 *
 * await exportModel(output, { output: `${output}/export`, maxLength: 8 });
 * const classifier = await loadClassifier(`${output}/export`);
 * console.log((await classifier.classify("a great film")).label); // positive
 * await classifier.release();
 * await Deno.remove(output, { recursive: true });
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

// Data sets, batching and metrics
export type { Dataset, Example } from "./train/data/dataset.ts";
export {
  COLA_LABELS,
  type ColaOptions,
  type ColaSplits,
  loadCola,
  splitTrainValidation,
} from "./train/data/cola.ts";
export { COLA_URL, downloadModelFiles, type DownloadOptions } from "./train/hub.ts";
export { loadTable, parseTable, type TableOptions } from "./train/data/tabular.ts";
export {
  type Batch,
  type BatchOptions,
  batchOrder,
  type BatchOrderOptions,
  type BatchTokenizer,
  makeBatch,
  makeBatches,
} from "./train/data/batches.ts";
export {
  accuracy,
  averageRanks,
  type F1Options,
  f1Score,
  matthewsCorrcoef,
  pearson,
  spearman,
} from "./train/data/metrics.ts";
export {
  GLUE,
  GLUE_TASKS,
  type GlueMetric,
  type GlueOptions,
  type GlueScores,
  glueScores,
  type GlueSplits,
  type GlueTask,
  glueTask,
  type GlueTaskName,
  loadGlue,
  type ScoredSet,
  type SkippedRows,
} from "./train/data/glue.ts";

// Models: configs, weights, model folders
export type { BertConfig, ConfigOverrides } from "./train/config.ts";
export { initWeights, type WeightReport, type Weights } from "./train/weights.ts";
export { type LoadedModel, loadModel } from "./train/checkpoint.ts";

// Training and evaluation on WebGPU
export {
  createModelConfig,
  evaluate,
  type EvaluateOptions,
  fineTune,
  type FineTuneOptions,
  type FineTuneResult,
  type ModelConfigOptions,
  type ModelSource,
  type ModelWeights,
  saveModelFolder,
  type SaveModelOptions,
  type StepProgress,
  type TrainingData,
} from "./train/api.ts";
export {
  DEFAULT_TRAIN_OPTIONS,
  type EpochLog,
  type EvalResult,
  NonFiniteLossError,
  type StepLog,
  type TrainOptions,
  type TrainPosition,
} from "./train/trainer.ts";
export type { RunTokenizer } from "./train/run.ts";
export { type Dispatch, Gpu, type Param } from "./kernels/runtime.ts";
export type { AdapterReport, GpuLimitRequest, RequestDeviceOptions } from "./kernels/device.ts";

// Export and classification
export {
  exportModel,
  type ExportOptions,
  type ExportResult,
  type ExportVariant,
  VARIANT_FILES,
} from "./train/export/export.ts";
export {
  type Classification,
  type Classifier,
  type ClassifyOptions,
  loadClassifier,
  type LoadClassifierOptions,
} from "./serve/classifier.ts";
export type { ModelVariant } from "./serve/config.ts";
