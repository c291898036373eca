/**
 * `deno task export`'s library part: a Hugging Face model folder (config.json + model.safetensors,
 * BertForSequenceClassification names) -> model.onnx (float32), model.int8.onnx, model.fp16.onnx
 * (float16, for WebGPU), serve.json and
 * copies of the tokenizer files, ready for serve/.
 * @module
 */

import { type BertConfig, numLabels } from "../config.ts";
import { join } from "node:path";
import { loadModel } from "../checkpoint.ts";
import { writeFileAtomic } from "../atomic.ts";
import { buildBertOnnx } from "./bert_onnx.ts";
import { float16Model } from "./fp16.ts";

/**
 * Export variants and their file names in the output folder.
 * @example
 * ```ts
 * import { VARIANT_FILES } from "./export.ts";
 * console.log(VARIANT_FILES.int8); // model.int8.onnx
 * ```
 */
export const VARIANT_FILES = {
  float32: "model.onnx",
  int8: "model.int8.onnx",
  float16: "model.fp16.onnx",
} as const;

/** A variant of the exported model. */
export type ExportVariant = keyof typeof VARIANT_FILES;

/**
 * Where transformers.js and Optimum look for each variant (`onnx/model.onnx`, and
 * `onnx/model_quantized.onnx` for `dtype: "q8"` / `quantized: true`): hard links to the files above
 * (copies where links fail), so both layouts cost the disk space of one.
 * @example
 * ```ts
 * import { HF_ONNX_FILES } from "./export.ts";
 * console.log(HF_ONNX_FILES.int8); // onnx/model_quantized.onnx
 * ```
 */
export const HF_ONNX_FILES = {
  float32: "onnx/model.onnx",
  int8: "onnx/model_quantized.onnx",
  float16: "onnx/model_fp16.onnx",
} as const;

/** Tokenizer files copied next to the model when present. */
export const TOKENIZER_FILES = ["tokenizer.json", "vocab.txt", "tokenizer_config.json"] as const;

/** Options of {@linkcode exportModel}. */
export interface ExportOptions {
  /** Output folder (created if missing). @default the model folder */
  output?: string;
  /**
   * Longest input in tokens, written to serve.json; at most max_position_embeddings.
   * @default the run's training max length (training_args.json), else max_position_embeddings capped at 512
   */
  maxLength?: number;
  /** Which models to write (float16 is for WebGPU, see fp16.ts). @default ["float32", "int8", "float16"] */
  variants?: ExportVariant[];
  /**
   * Standard ONNX ops only (no onnxruntime com.microsoft ops), for runtimes other than onnxruntime;
   * same logits as the default fused graph. @default false
   */
  portable?: boolean;
}

/** What {@linkcode exportModel} wrote. */
export interface ExportResult {
  /** Variant -> path of the .onnx file. */
  files: Record<string, string>;
  /** Variant -> size in bytes. */
  bytes: Record<string, number>;
  /** serve.json's maxLength. */
  maxLength: number;
  /** Where maxLength came from, for the user: "--max-length", "training_args.json" or "max_position_embeddings". */
  maxLengthSource: MaxLengthSource;
}

/** Where an export's maxLength came from. */
export type MaxLengthSource = "option" | "training_args.json" | "max_position_embeddings";

/** The longest input a model takes by default, when the caller gives none. */
const MAX_DEFAULT_LENGTH = 512;

/**
 * The maxLength an export uses when none is given: the run's training max length (`maxLength` or
 * `max_length` in training_args.json) when known and within max_position_embeddings, else
 * max_position_embeddings capped at 512.
 * @example
 * ```ts
 * import { defaultMaxLength } from "./export.ts";
 * const dir = await Deno.makeTempDir();
 * console.log(await defaultMaxLength(dir, 64)); // { maxLength: 64, source: "max_position_embeddings" }
 * await Deno.writeTextFile(`${dir}/training_args.json`, JSON.stringify({ maxLength: 32 }));
 * console.log(await defaultMaxLength(dir, 64)); // { maxLength: 32, source: "training_args.json" }
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function defaultMaxLength(
  modelDir: string,
  maxPositionEmbeddings: number,
): Promise<{ maxLength: number; source: MaxLengthSource }> {
  let args: Record<string, unknown> | null = null;
  try {
    args = JSON.parse(await Deno.readTextFile(join(modelDir, "training_args.json")));
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound || error instanceof SyntaxError)) throw error;
  }
  const trained = args?.maxLength ?? args?.max_length;
  if (Number.isInteger(trained) && (trained as number) >= 1 && (trained as number) <= maxPositionEmbeddings) {
    return { maxLength: trained as number, source: "training_args.json" };
  }
  return {
    maxLength: Math.min(MAX_DEFAULT_LENGTH, maxPositionEmbeddings),
    source: "max_position_embeddings",
  };
}

/** serve.json: what the server needs besides the model files. */
export interface ServeManifest {
  labels: string[];
  maxLength: number;
  /** Variant -> file name, relative to serve.json. */
  models: Partial<Record<ExportVariant, string>>;
  problemType: BertConfig["problem_type"];
}

/**
 * Reads config.json and model.safetensors from a model folder: the config (validated) and every
 * parameter as float32 in PyTorch layout.
 * @throws {Deno.errors.NotFound} naming the missing folder or file.
 * @throws {RangeError | TypeError | SyntaxError} naming the file for an unsupported config or a
 * missing, mis-shaped or non-float tensor.
 * @example
 * ```ts
 * import { loadModelFolder } from "./export.ts";
 * const { config, weights } = await loadModelFolder("tests/fixtures/model/odd");
 * console.log(config.hidden_size, weights.get("classifier.weight")!.length);
 * ```
 */
export async function loadModelFolder(
  modelDir: string,
): Promise<{ config: BertConfig; weights: Map<string, Float32Array> }> {
  const stat = await Deno.stat(modelDir).catch(() => null);
  if (!stat?.isDirectory) {
    throw new Deno.errors.NotFound(
      `Cannot export: model folder "${modelDir}" does not exist or is not a folder`,
    );
  }
  const model = await loadModel(modelDir);
  if (model.initialized.length) {
    throw new RangeError(
      `Cannot export "${modelDir}": ${model.source} lacks ${
        model.initialized.join(", ")
      }; export a fine-tuned model folder`,
    );
  }
  return { config: model.config, weights: model.weights };
}

/**
 * Exports a model folder to ONNX: writes model.onnx and/or model.int8.onnx, serve.json, the same
 * models as onnx/model.onnx and onnx/model_quantized.onnx (the transformers.js / Optimum layout), and
 * copies config.json, tokenizer.json / vocab.txt / tokenizer_config.json when present and the output
 * folder differs.
 * @param modelDir A model folder (config.json + model.safetensors), e.g. a run folder.
 * @param options The output folder, serve.json's maxLength and the variants to write.
 * @returns The path and size of each .onnx file written.
 * @throws {Deno.errors.NotFound} naming a missing folder or file.
 * @throws {RangeError} for an unsupported config, a bad tensor, an unknown variant or a maxLength
 * over max_position_embeddings.
 * @example
 * ```ts
 * import { exportModel } from "./export.ts";
 * const output = await Deno.makeTempDir();
 * const result = await exportModel("tests/fixtures/model/tiny", { output });
 * console.log(result.files.int8, result.bytes.int8);
 * await Deno.remove(output, { recursive: true });
 * ```
 */
export async function exportModel(modelDir: string, options: ExportOptions = {}): Promise<ExportResult> {
  const variants = options.variants ?? ["float32", "int8", "float16"];
  for (const v of variants) {
    if (!(v in VARIANT_FILES)) {
      throw new RangeError(`Unknown export variant "${v}"; use ${Object.keys(VARIANT_FILES).join(" or ")}`);
    }
  }
  if (variants.length === 0) {
    throw new RangeError("No export variants given; use float32, int8 and/or float16");
  }
  const { config, weights } = await loadModelFolder(modelDir);
  const { maxLength, source: maxLengthSource } = options.maxLength === undefined
    ? await defaultMaxLength(modelDir, config.max_position_embeddings)
    : { maxLength: options.maxLength, source: "option" as const };
  if (!Number.isInteger(maxLength) || maxLength < 1 || maxLength > config.max_position_embeddings) {
    throw new RangeError(
      `maxLength ${maxLength} must be an integer in [1, ${config.max_position_embeddings}] (max_position_embeddings)`,
    );
  }
  const output = options.output ?? modelDir;
  await Deno.mkdir(output, { recursive: true });

  const result: ExportResult = { files: {}, bytes: {}, maxLength, maxLengthSource };
  const models: ServeManifest["models"] = {};
  for (const variant of variants) {
    // float16 is built from the standard-op graph: its casts and float16 kernels were checked on that form.
    const built = buildBertOnnx(config, weights, {
      quantize: variant === "int8" ? "int8" : "none",
      portable: variant === "float16" ? true : options.portable ?? false,
    });
    const bytes = variant === "float16" ? float16Model(built) : built;
    const path = join(output, VARIANT_FILES[variant]);
    await writeFileAtomic(path, bytes);
    result.files[variant] = path;
    result.bytes[variant] = bytes.length;
    models[variant] = VARIANT_FILES[variant];
    const hf = join(output, HF_ONNX_FILES[variant]);
    await Deno.mkdir(join(output, "onnx"), { recursive: true });
    await Deno.remove(hf).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    });
    await Deno.link(path, hf).catch(async () => await Deno.copyFile(path, hf));
  }

  if (!(await sameFolder(modelDir, output))) {
    // config.json (with id2label) makes the folder a Hugging Face model folder for other tools.
    for (const name of ["config.json", ...TOKENIZER_FILES]) {
      await Deno.copyFile(join(modelDir, name), join(output, name)).catch((e) => {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      });
    }
  }
  const labels = Array.from({ length: numLabels(config) }, (_, i) => config.id2label[String(i)]);
  const manifest: ServeManifest = { labels, maxLength, models, problemType: config.problem_type };
  await writeFileAtomic(join(output, "serve.json"), JSON.stringify(manifest, null, 2) + "\n");
  return result;
}

async function sameFolder(a: string, b: string): Promise<boolean> {
  const [ra, rb] = await Promise.all([Deno.realPath(a), Deno.realPath(b)]);
  return ra === rb;
}
