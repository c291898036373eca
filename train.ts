/**
 * The training side of bert-webgpu (`@bert-webgpu/bert-webgpu/train`): tokenize, load data, fine-tune
 * and evaluate on WebGPU, save Hugging Face model folders and export ONNX. It does not load
 * onnxruntime-web; classify with `./classify.ts` (or import everything from `mod.ts`).
 * @example
 * ```ts
 * import { createModelConfig, initWeights, tokenizerFromVocab } from "./train.ts";
 * const tokenizer = tokenizerFromVocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "good"]);
 * const config = createModelConfig({ vocabSize: tokenizer.vocabSize, labels: ["no", "yes"] });
 * console.log(initWeights(config, 42).size > 0); // true
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
export { COLA_URL, colaUrl, downloadModelFiles, type DownloadOptions } from "./train/hub.ts";
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

// Export
export {
  exportModel,
  type ExportOptions,
  type ExportResult,
  type ExportVariant,
  VARIANT_FILES,
} from "./train/export/export.ts";
