/**
 * The served model: serve.json, one onnxruntime-web session and the tokenizer, loaded from an export
 * folder (a path) or an http(s) URL (fetched into memory; no writable disk needed). One per worker.
 *
 * serve.json (written by `train/export/export.ts`, whose `ServeManifest` this mirrors; serve/ never
 * imports train/): `{ labels, maxLength, models: { float32?, int8? }, problemType }`.
 * @module
 */

import * as ort from "npm:onnxruntime-web@1.30.0";
import { type Encoding, loadTokenizer, type Tokenizer } from "../tokenizer/mod.ts";
import type { ModelVariant } from "./config.ts";

/** serve.json, as the exporter writes it. */
export interface ServeManifest {
  /** Label of each logit (one, "score" or similar, for regression). */
  labels: string[];
  /** Longest input in tokens, [CLS]/[SEP] included; longer inputs are truncated. */
  maxLength: number;
  /** Variant -> model file name, relative to serve.json. */
  models: Partial<Record<ModelVariant, string>>;
  problemType: "single_label_classification" | "regression";
}

/** Options of {@linkcode loadServeModel}. */
export interface LoadModelOptions {
  /** Which model of serve.json. @default "int8" */
  variant?: ModelVariant;
  /** onnxruntime-web wasm threads; only the first session of a process sets it. @default 1 */
  threads?: number;
}

/** A loaded model, ready to run. */
export interface ServeModel {
  /** The folder or URL it came from, as given. */
  readonly source: string;
  readonly manifest: Readonly<ServeManifest>;
  readonly variant: ModelVariant;
  /** Model file name, e.g. "model.int8.onnx". */
  readonly file: string;
  /** Model file size in bytes. */
  readonly bytes: number;
  /** Session input and output names. */
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly tokenizer: Tokenizer;
  /** Tokenizes one text (or pair) with the manifest's maxLength; `truncated` says if tokens were dropped. */
  encode(text: string, pair?: string): Encoding;
  /** Pads encodings to the longest, runs the session once; returns each row's logits. */
  run(rows: readonly Encoding[]): Promise<Float32Array[]>;
  release(): Promise<void>;
}

const INPUTS = ["input_ids", "attention_mask", "token_type_ids"] as const;
const PROBLEM_TYPES = ["single_label_classification", "regression"];

/** A folder path, or a URL whose files are fetched. */
type Location = { kind: "path"; folder: string } | { kind: "url"; base: URL };

function locate(source: string | URL): Location {
  const url = source instanceof URL ? source : /^(https?|file):\/\//i.test(source) ? new URL(source) : null;
  if (url === null) return { kind: "path", folder: (source as string).replace(/[\\/]+$/, "") || "/" };
  if (url.protocol === "file:") {
    const path = decodeURIComponent(url.pathname);
    return { kind: "path", folder: (/^\/[A-Za-z]:\//.test(path) ? path.slice(1) : path).replace(/\/+$/, "") };
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TypeError(`Cannot load model "${url.href}": use a folder path or an http(s) or file URL`);
  }
  // A base without a trailing slash would resolve "serve.json" next to the folder, not inside it.
  return { kind: "url", base: new URL(url.href.endsWith("/") ? url.href : `${url.href}/`) };
}

function where(loc: Location, file: string): string {
  return loc.kind === "path" ? `${loc.folder}/${file}` : new URL(file, loc.base).href;
}

async function readBytes(loc: Location, file: string): Promise<Uint8Array> {
  const name = where(loc, file);
  if (loc.kind === "path") {
    try {
      return await Deno.readFile(name);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new Deno.errors.NotFound(`"${name}" does not exist`, { cause: e });
      }
      throw e;
    }
  }
  const response = await fetch(name);
  if (!response.ok) {
    await response.body?.cancel();
    const message = `"${name}" answered HTTP ${response.status}`;
    throw response.status === 404 ? new Deno.errors.NotFound(message) : new Deno.errors.Http(message);
  }
  return new Uint8Array(await response.arrayBuffer());
}

/**
 * Parses and checks serve.json; `name` labels errors.
 * @throws {SyntaxError} for invalid JSON; {TypeError} for a missing or mistyped field.
 * @example
 * ```ts
 * import { parseManifest } from "./model.ts";
 * const m = parseManifest('{"labels":["a","b"],"maxLength":8,"models":{"int8":"m.onnx"},"problemType":"single_label_classification"}');
 * console.log(m.labels.length); // 2
 * ```
 */
export function parseManifest(text: string, name = "serve.json"): ServeManifest {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SyntaxError(`"${name}" is not valid JSON (${(e as Error).message}); re-export the model`);
  }
  const bad = (what: string) =>
    new TypeError(
      `"${name}" has ${what}; expected {labels, maxLength, models, problemType} as export writes`,
    );
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw bad("no JSON object");
  const { labels, maxLength, models, problemType } = json;
  if (!Array.isArray(labels) || labels.length === 0 || !labels.every((l) => typeof l === "string")) {
    throw bad(`labels ${JSON.stringify(labels)}, not a non-empty list of strings`);
  }
  if (new Set(labels).size !== labels.length) throw bad(`labels ${JSON.stringify(labels)} with a repeat`);
  if (!Number.isInteger(maxLength) || (maxLength as number) < 2) {
    throw bad(`maxLength ${JSON.stringify(maxLength)}, not a whole number >= 2`);
  }
  if (
    typeof models !== "object" || models === null ||
    !Object.values(models).every((f) => typeof f === "string" && f !== "" && !f.includes(".."))
  ) {
    throw bad(`models ${JSON.stringify(models)}, not a map of variant to file name`);
  }
  if (!PROBLEM_TYPES.includes(problemType as string)) {
    throw bad(`problemType ${JSON.stringify(problemType)}, not one of ${PROBLEM_TYPES.join(", ")}`);
  }
  if (problemType === "regression" && labels.length !== 1) {
    throw bad(`${labels.length} labels for regression, which has one output`);
  }
  return json as unknown as ServeManifest;
}

async function loadTokenizerAt(loc: Location): Promise<Tokenizer> {
  if (loc.kind === "path") return await loadTokenizer(loc.folder);
  // loadTokenizer fetches one file per URL: pick tokenizer.json, else vocab.txt, and honour
  // tokenizer_config.json's do_lower_case as it does for folders.
  let doLowerCase: boolean | undefined;
  const config = await readBytes(loc, "tokenizer_config.json").catch((e) => {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  });
  if (config !== null) {
    const parsed = JSON.parse(new TextDecoder().decode(config));
    if (typeof parsed?.do_lower_case === "boolean") doLowerCase = parsed.do_lower_case;
  }
  try {
    return await loadTokenizer(new URL("tokenizer.json", loc.base), { doLowerCase });
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    return await loadTokenizer(new URL("vocab.txt", loc.base), { doLowerCase });
  }
}

/** The same kind of error with "Cannot load model ...: " in front (NotFound stays NotFound). */
function withPrefix(prefix: string, e: unknown): Error {
  const message = `${prefix}: ${e instanceof Error ? e.message : String(e)}`;
  for (const Kind of [Deno.errors.NotFound, SyntaxError, TypeError, RangeError] as ErrorConstructor[]) {
    if (e instanceof Kind) return new Kind(message, { cause: e });
  }
  return new Error(message, { cause: e });
}

/** int32 ids -> the int64 tensor BERT's ONNX inputs take. */
function int64(values: Int32Array, rows: number, cols: number): ort.Tensor {
  const data = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) data[i] = BigInt(values[i]);
  return new ort.Tensor("int64", data, [rows, cols]);
}

/** [CLS] [UNK]... [SEP], `length` tokens: the longest input serve will run. */
function longestInput(tokenizer: Tokenizer, length: number): Encoding {
  const ids = new Int32Array(length).fill(tokenizer.unkId);
  ids[0] = tokenizer.clsId;
  ids[length - 1] = tokenizer.sepId;
  return {
    ids,
    attentionMask: new Int32Array(length).fill(1),
    tokenTypeIds: new Int32Array(length),
    truncated: false,
  };
}

class OrtServeModel implements ServeModel {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  constructor(
    readonly source: string,
    readonly manifest: ServeManifest,
    readonly variant: ModelVariant,
    readonly file: string,
    readonly bytes: number,
    readonly tokenizer: Tokenizer,
    readonly session: ort.InferenceSession,
  ) {
    this.inputNames = [...session.inputNames];
    this.outputNames = [...session.outputNames];
  }

  encode(text: string, pair?: string): Encoding {
    return this.tokenizer.encode(text, { pair, maxLength: this.manifest.maxLength });
  }

  async run(rows: readonly Encoding[]): Promise<Float32Array[]> {
    const batch = rows.length;
    if (batch === 0) return [];
    const seq = Math.max(...rows.map((r) => r.ids.length));
    // Right padding: pad id, mask 0, segment 0 (what encodeBatch does).
    const ids = new Int32Array(batch * seq).fill(this.tokenizer.padId);
    const mask = new Int32Array(batch * seq);
    const types = new Int32Array(batch * seq);
    rows.forEach((r, b) => {
      ids.set(r.ids, b * seq);
      mask.set(r.attentionMask, b * seq);
      types.set(r.tokenTypeIds, b * seq);
    });
    const all = { input_ids: ids, attention_mask: mask, token_type_ids: types };
    const feeds: Record<string, ort.Tensor> = {};
    for (const name of this.inputNames) feeds[name] = int64(all[name as keyof typeof all], batch, seq);
    const out = await this.session.run(feeds, ["logits"]);
    const logits = out.logits.data as Float32Array;
    const labels = this.manifest.labels.length;
    return Array.from({ length: batch }, (_, b) => logits.slice(b * labels, (b + 1) * labels));
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/**
 * Loads serve.json, the chosen model file and the tokenizer from an export folder or URL, creates
 * the onnxruntime-web session, and checks the session's inputs and outputs against serve.json.
 * @throws {Error} whose message starts `Cannot load model "<source>"` and names the file at fault:
 * a missing folder or file (Deno.errors.NotFound), invalid serve.json (SyntaxError/TypeError), a
 * variant serve.json lacks or a model that disagrees with it (RangeError), or a corrupt .onnx.
 * @example
 * ```ts ignore
 * import { loadServeModel } from "./model.ts";
 * const model = await loadServeModel("runs/demo/export", { variant: "int8" });
 * const [logits] = await model.run([model.encode("the dog runs.")]);
 * console.log(model.manifest.labels, logits);
 * await model.release();
 * ```
 */
export async function loadServeModel(
  source: string | URL,
  options: LoadModelOptions = {},
): Promise<ServeModel> {
  const variant = options.variant ?? "int8";
  const shown = source instanceof URL ? source.href : source;
  const prefix = `Cannot load model "${shown}"`;
  const loc = locate(source);
  if (loc.kind === "path") {
    // Only a missing folder reads as missing; a permission error (NotCapable) says what it is.
    const info = await Deno.stat(loc.folder).catch((e) => {
      if (e instanceof Deno.errors.NotFound) return null;
      throw withPrefix(prefix, e);
    });
    if (!info?.isDirectory) {
      throw new Deno.errors.NotFound(
        `${prefix}: the folder does not exist; export a model there or set MODEL_DIR`,
      );
    }
  }

  let manifest: ServeManifest;
  try {
    manifest = parseManifest(
      new TextDecoder().decode(await readBytes(loc, "serve.json")),
      where(loc, "serve.json"),
    );
  } catch (e) {
    throw withPrefix(prefix, e);
  }
  const file = manifest.models[variant];
  if (file === undefined) {
    throw new RangeError(
      `${prefix}: "${where(loc, "serve.json")}" has no ${variant} model (it lists ${
        Object.keys(manifest.models).join(", ") || "none"
      }); set MODEL_VARIANT to one of those or re-export`,
    );
  }

  let bytes: Uint8Array, tokenizer: Tokenizer;
  try {
    [bytes, tokenizer] = await Promise.all([readBytes(loc, file), loadTokenizerAt(loc)]);
  } catch (e) {
    throw withPrefix(prefix, e);
  }

  ort.env.wasm.numThreads = options.threads ?? 1;
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(bytes);
  } catch (e) {
    throw new Error(
      `${prefix}: "${where(loc, file)}" is not a loadable ONNX model (${(e as Error).message ?? e})`,
      {
        cause: e,
      },
    );
  }
  const unknown = session.inputNames.filter((n) => !(INPUTS as readonly string[]).includes(n));
  if (
    !session.inputNames.includes("input_ids") || unknown.length > 0 || !session.outputNames.includes("logits")
  ) {
    await session.release();
    throw new RangeError(
      `${prefix}: "${where(loc, file)}" has inputs [${session.inputNames}] and outputs ` +
        `[${session.outputNames}]; expected input_ids (with optional attention_mask, token_type_ids) and logits`,
    );
  }
  const model = new OrtServeModel(shown, manifest, variant, file, bytes.length, tokenizer, session);
  // One probe run of serve.json's longest input catches, before serving, a maxLength beyond the
  // model's position table (which would fail every long request) and a logits width that disagrees
  // with serve.json's labels.
  let probe: Float32Array;
  try {
    [probe] = await model.run([longestInput(tokenizer, manifest.maxLength)]);
  } catch (e) {
    await session.release();
    throw new RangeError(
      `${prefix}: "${where(loc, file)}" cannot run an input of ${manifest.maxLength} tokens, the maxLength ` +
        `of "${where(loc, "serve.json")}" (${(e as Error).message ?? e}); re-export the model`,
      { cause: e },
    );
  }
  if (probe.length !== manifest.labels.length || probe.some((v) => !Number.isFinite(v))) {
    await session.release();
    throw new RangeError(
      `${prefix}: "${where(loc, file)}" gives ${probe.length} logits [${Array.from(probe)}] but ` +
        `serve.json has ${manifest.labels.length} labels; re-export the model`,
    );
  }
  return model;
}

/** One text's answer: a class with its probabilities, or a regression value (as `score` and `value`). */
export type Prediction =
  | { label: string; score: number; probabilities: Record<string, number> }
  | { label: string; score: number; value: number };

/**
 * Turns one row of logits into an answer: softmax probabilities and the top label for
 * classification; for regression the raw output as `score` (Hugging Face's pipeline shape, the
 * label being the model's one label, e.g. STS-B's "score") and as `value`.
 * @example
 * ```ts
 * import { predictionOf } from "./model.ts";
 * const m = { labels: ["no", "yes"], maxLength: 8, models: {}, problemType: "single_label_classification" } as const;
 * console.log(predictionOf(new Float32Array([0, Math.log(3)]), m)); // { label: "yes", score: 0.75, ... }
 * ```
 */
export function predictionOf(
  logits: ArrayLike<number>,
  manifest: { readonly labels: readonly string[]; readonly problemType: ServeManifest["problemType"] },
): Prediction {
  if (manifest.problemType === "regression") {
    return { label: manifest.labels[0], score: logits[0], value: logits[0] };
  }
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]);
  // Subtracting the max keeps exp() from overflowing; the ratios are unchanged.
  const exps = Array.from(logits, (v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  let best = 0;
  const probabilities: Record<string, number> = {};
  manifest.labels.forEach((label, i) => {
    probabilities[label] = exps[i] / sum;
    if (exps[i] > exps[best]) best = i;
  });
  return { label: manifest.labels[best], score: exps[best] / sum, probabilities };
}
