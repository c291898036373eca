/**
 * The data pipeline: labelled data sets (CoLA, TSV/CSV/JSONL), seeded batching with fixed or
 * dynamic padding, and the metrics the GLUE tasks report (accuracy, MCC, F1).
 * @module
 */

export type { Dataset, Example } from "./dataset.ts";
export { decodeUtf8 } from "./dataset.ts";
export { COLA_LABELS, COLA_ZIP, loadCola, splitTrainValidation } from "./cola.ts";
export type { ColaOptions, ColaSplits } from "./cola.ts";
export { formatFromExtension, loadTable, parseTable } from "./tabular.ts";
export type { TableOptions } from "./tabular.ts";
export { batchOrder, makeBatch, makeBatches } from "./batches.ts";
export type { Batch, BatchEncoding, BatchOptions, BatchOrderOptions, BatchTokenizer } from "./batches.ts";
export { accuracy, averageRanks, f1Score, matthewsCorrcoef, pearson, spearman } from "./metrics.ts";
export type { F1Options } from "./metrics.ts";
export { formatGlueScores, GLUE, GLUE_TASKS, glueScores, glueTask, loadGlue } from "./glue.ts";
export type { GlueMetric, GlueOptions, GlueScores, GlueSplits, GlueTask, GlueTaskName } from "./glue.ts";
export { COLA_URL } from "../hub.ts";
