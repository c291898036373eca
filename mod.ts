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

// Everything: the training side (tokenizer, data, models, training, export) and the classifier.
// Subpaths load less: "./train" (no onnxruntime-web), "./classify" (no training code), "./serve".
export * from "./train.ts";
export * from "./classify.ts";
