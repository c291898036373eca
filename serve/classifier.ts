/**
 * Classifying texts in-process with an exported model (serve.json + ONNX + tokenizer): the same
 * onnxruntime-web session and softmax that `deno serve serve/main.ts` uses, without HTTP.
 * Like the rest of serve/, it never imports train/ or kernels/.
 *
 * @example
 * ```ts
 * import { createModelConfig, exportModel, initWeights, loadClassifier, saveModelFolder, tokenizerFromVocab } from "../mod.ts";
 *
 * // An untrained model is enough to show the calls; fineTune() makes a useful one.
 * const tokenizer = tokenizerFromVocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "good", "bad"]);
 * const config = createModelConfig({ vocabSize: tokenizer.vocabSize, labels: ["negative", "positive"] });
 * const dir = await saveModelFolder(await Deno.makeTempDir(), { config, weights: initWeights(config, 1) }, { tokenizer });
 * await exportModel(dir, { maxLength: 16 });
 * const classifier = await loadClassifier(dir);
 * const [a, b] = await classifier.classify(["good", "bad bad"]);
 * console.log(classifier.labels, Object.keys(a), b.truncated); // ["negative", "positive"] ["label", "score", "probabilities", "truncated"] false
 * await classifier.release();
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */

import { loadServeModel, type Prediction, predictionOf, type ServeModel } from "./model.ts";
import type { Backend, ModelVariant } from "./config.ts";

/** Options of {@linkcode loadClassifier}. */
export interface LoadClassifierOptions {
  /** Where the model runs: onnxruntime-web wasm or WebGPU, or onnxruntime-node. @default "wasm" */
  backend?: Backend;
  /** Which model of serve.json to run. @default "int8" ("float16" on webgpu) */
  variant?: ModelVariant;
  /**
   * Intra-op threads (wasm: only the first session of a process sets it).
   * @default the cores the process may use, at most 8
   */
  threads?: number;
}

/** Options of {@linkcode Classifier.classify}. */
export interface ClassifyOptions {
  /**
   * Second text of a sentence-pair model: one string for one text, one string per text for a list.
   */
  pair?: string | readonly string[];
  /** Texts per session run (bounds memory for long lists). @default 32 */
  batchSize?: number;
}

/**
 * One text's answer, shaped as Hugging Face's text-classification pipeline shapes it: the top label
 * and its probability, plus every label's probability. A regression model's answer has its one label,
 * the predicted value as `score` and `value`, and no probabilities.
 */
export interface Classification {
  /** The most probable label (regression: the model's one label). */
  label: string;
  /** The probability of `label` (regression: the predicted value). */
  score: number;
  /** Every label's softmax probability, by name (regression: empty). */
  probabilities: Record<string, number>;
  /** The predicted value of a regression model; absent for classification. */
  value?: number;
  /** Whether tokens past the model's maxLength were dropped before classifying. */
  truncated: boolean;
}

/** An exported model ready to classify texts. */
export interface Classifier {
  /** The folder or URL it was loaded from, as given. */
  readonly source: string;
  /** Label names by class id (one name, the target, for regression). */
  readonly labels: readonly string[];
  /** Longest input in tokens, [CLS] and [SEP] included; longer texts are truncated. */
  readonly maxLength: number;
  /** The model file that runs: "int8", "float32" or "float16". */
  readonly variant: ModelVariant;
  /** "single_label_classification" (softmax over labels) or "regression" (one value). */
  readonly problemType: "single_label_classification" | "regression";
  /**
   * Classifies one text.
   * @param text The text (any length; truncated to `maxLength` tokens).
   * @param options The second text of a pair model.
   * @returns The answer for the text.
   */
  classify(text: string, options?: ClassifyOptions): Promise<Classification>;
  /**
   * Classifies texts, `batchSize` at a time.
   * @param texts The texts, in order.
   * @param options One second text per text for a pair model, and the batch size.
   * @returns One answer per text, in order.
   */
  classify(texts: readonly string[], options?: ClassifyOptions): Promise<Classification[]>;
  /** Frees the onnxruntime session; the classifier cannot be used afterwards. */
  release(): Promise<void>;
}

class OnnxClassifier implements Classifier {
  readonly source: string;
  readonly labels: readonly string[];
  readonly maxLength: number;
  readonly variant: ModelVariant;
  readonly problemType: "single_label_classification" | "regression";
  readonly #model: ServeModel;
  #released = false;

  constructor(model: ServeModel) {
    this.#model = model;
    this.source = model.source;
    this.labels = [...model.manifest.labels];
    this.maxLength = model.manifest.maxLength;
    this.variant = model.variant;
    this.problemType = model.manifest.problemType;
  }

  classify(text: string, options?: ClassifyOptions): Promise<Classification>;
  classify(texts: readonly string[], options?: ClassifyOptions): Promise<Classification[]>;
  async classify(
    input: string | readonly string[],
    options: ClassifyOptions = {},
  ): Promise<Classification | Classification[]> {
    if (this.#released) {
      throw new TypeError(`classify(): the classifier of "${this.source}" was released; load it again`);
    }
    const single = typeof input === "string";
    const texts = single ? [input] : input;
    if (!Array.isArray(texts)) {
      throw new TypeError(`classify(): texts is ${typeof input}; pass a string or an array of strings`);
    }
    const pairs = pairsOf(texts, options.pair, single);
    texts.forEach((t, i) => {
      if (typeof t !== "string") {
        throw new TypeError(`classify(): texts[${i}] is ${t === null ? "null" : typeof t}; pass strings`);
      }
    });
    const batchSize = options.batchSize ?? 32;
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new RangeError(`classify(): batchSize ${batchSize} must be a positive integer`);
    }
    const results: Classification[] = [];
    for (let start = 0; start < texts.length; start += batchSize) {
      const rows = texts.slice(start, start + batchSize).map((t, i) =>
        this.#model.encode(t, pairs?.[start + i])
      );
      const logits = await this.#model.run(rows);
      rows.forEach((row, i) =>
        results.push(
          classification(predictionOf(logits[i], this.#model.manifest), row.truncated, this.labels),
        )
      );
    }
    return single ? results[0] : results;
  }

  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    await this.#model.release();
  }
}

/** A served prediction in the pipeline's shape (regression: the value as the score). */
function classification(p: Prediction, truncated: boolean, labels: readonly string[]): Classification {
  if ("value" in p) return { label: labels[0], score: p.value, probabilities: {}, value: p.value, truncated };
  return { label: p.label, score: p.score, probabilities: p.probabilities, truncated };
}

/** The second texts, checked against the texts: a string for one text, a same-length list for many. */
function pairsOf(
  texts: readonly string[],
  pair: ClassifyOptions["pair"],
  single: boolean,
): readonly string[] | undefined {
  if (pair === undefined) return undefined;
  if (single) {
    if (typeof pair !== "string") {
      throw new TypeError(`classify(): pair must be a string when classifying one text, got ${typeof pair}`);
    }
    return [pair];
  }
  if (!Array.isArray(pair) || pair.length !== texts.length || pair.some((p) => typeof p !== "string")) {
    throw new RangeError(
      `classify(): pair must be a list of ${texts.length} strings (one per text), got ${
        Array.isArray(pair) ? `${pair.length} items` : typeof pair
      }`,
    );
  }
  return pair;
}

/**
 * Loads an exported model (a folder or http(s) URL holding serve.json, model.int8.onnx or model.onnx,
 * and tokenizer files, as `exportModel()` writes them) and returns a {@linkcode Classifier}.
 * @param source The export folder path, or its file or http(s) URL.
 * @param options The model variant and the wasm thread count.
 * @returns A classifier; call `release()` when done.
 * @throws {Error} whose message starts `Cannot load model "<source>"` and names the file at fault:
 *   Deno.errors.NotFound for a missing folder or file, SyntaxError/TypeError for an invalid
 *   serve.json, RangeError for a variant serve.json lacks or a model that disagrees with it.
 * @example
 * ```ts
 * import { loadClassifier } from "../mod.ts";
 * try {
 *   await loadClassifier("no/such/folder");
 * } catch (e) {
 *   console.log(e instanceof Deno.errors.NotFound); // true
 * }
 * ```
 */
export async function loadClassifier(
  source: string | URL,
  options: LoadClassifierOptions = {},
): Promise<Classifier> {
  return new OnnxClassifier(
    await loadServeModel(source, {
      backend: options.backend,
      variant: options.variant,
      threads: options.threads,
    }),
  );
}
