/**
 * The served model: serve.json, one onnxruntime-web session and the tokenizer, loaded from an export
 * folder (a path) or an http(s) URL (fetched into memory; no writable disk needed). One per worker.
 *
 * serve.json (written by `train/export/export.ts`, whose `ServeManifest` this mirrors; serve/ never
 * imports train/): `{ labels, maxLength, models: { float32?, int8? }, problemType }`.
 * @module
 */

import * as ortWeb from "npm:onnxruntime-web@1.30.0";
import { type Encoding, loadTokenizer, type Tokenizer } from "../tokenizer/mod.ts";
import { type Backend, DEFAULT_VARIANT, defaultThreads, type ModelVariant } from "./config.ts";
import { FileRanges, splitInitializers } from "./onnx_external.ts";

/** What serve uses of an onnxruntime module (web, its webgpu entry, or node): the same API. */
type Runtime = Pick<typeof ortWeb, "InferenceSession" | "Tensor">;
type Session = ortWeb.InferenceSession;

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
  /** Where the model runs. @default "wasm" */
  backend?: Backend;
  /** Which model of serve.json. @default the backend's DEFAULT_VARIANT (int8; float16 on webgpu) */
  variant?: ModelVariant;
  /**
   * Intra-op threads (wasm: only the first session of a process sets it).
   * @default defaultThreads(navigator.hardwareConcurrency, DENO_JOBS or 1)
   */
  threads?: number;
  /** Worker count that shares the cores when `threads` is unset (`deno serve --parallel`). @default 1 */
  workers?: number;
}

/** A loaded model, ready to run. */
export interface ServeModel {
  /** The folder or URL it came from, as given. */
  readonly source: string;
  /** Where it runs. */
  readonly backend: Backend;
  /** Intra-op threads in force. */
  readonly threads: number;
  /** Why `threads` is fewer than asked (threads refused by the host), else null. */
  readonly threadsNote: string | null;
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
function int64(runtime: Runtime, values: Int32Array, rows: number, cols: number): ortWeb.Tensor {
  const data = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) data[i] = BigInt(values[i]);
  return new runtime.Tensor("int64", data, [rows, cols]);
}

/** IEEE half-precision bits -> number (for a float16 model whose logits stay float16). */
function halfToFloat(h: number): number {
  const exp = (h >> 10) & 0x1f, frac = h & 0x3ff, sign = h & 0x8000 ? -1 : 1;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** A logits tensor's values as float32, whatever float type the model emits. */
function floats(tensor: ortWeb.Tensor): Float32Array {
  if (tensor.type === "float32") return tensor.data as Float32Array;
  if (tensor.type === "float16") {
    const data = tensor.data as ArrayLike<number>;
    // Uint16Array holds the bits; a runtime with Float16Array hands numbers already.
    const bits = data instanceof Uint16Array;
    return Float32Array.from({ length: data.length }, (_, i) => bits ? halfToFloat(data[i]) : data[i]);
  }
  throw new RangeError(`logits of type ${tensor.type}; expected float32 or float16`);
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
    readonly session: Session,
    readonly runtime: Runtime,
    readonly backend: Backend,
    readonly threads: number,
    readonly threadsNote: string | null,
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
    const feeds: Record<string, ortWeb.Tensor> = {};
    for (const name of this.inputNames) {
      feeds[name] = int64(this.runtime, all[name as keyof typeof all], batch, seq);
    }
    const out = await this.session.run(feeds, ["logits"]);
    const logits = floats(out.logits);
    const labels = this.manifest.labels.length;
    return Array.from({ length: batch }, (_, b) => logits.slice(b * labels, (b + 1) * labels));
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** Why this isolate cannot run onnxruntime-web's wasm threads, or null when it can. */
export function wasmThreadsRefused(
  scope: { SharedArrayBuffer?: unknown; Worker?: unknown } = globalThis,
): string | null {
  if (typeof scope.SharedArrayBuffer !== "function") return "this isolate has no SharedArrayBuffer";
  if (typeof scope.Worker !== "function") return "this isolate has no Worker";
  return null;
}

/**
 * Frees a buffer's memory now instead of at some later garbage collection (an idle server may not
 * collect for minutes): transferring to length 0 detaches it and releases its backing store.
 */
function free(bytes: Uint8Array): void {
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength) {
    (bytes.buffer as ArrayBuffer).transfer?.(0);
  }
}

/** The native backend's module, imported only when MODEL_BACKEND=native. */
const NATIVE_MODULE = "npm:onnxruntime-node@1.30.0";

/** Threads of the first onnxruntime-web initialisation in this isolate (it cannot change later). */
let wasmThreadsInForce: number | null = null;

async function loadRuntime(backend: Backend, variant: ModelVariant, prefix: string): Promise<Runtime> {
  if (backend === "wasm") return ortWeb;
  if (backend === "webgpu") {
    const gpu = (navigator as { gpu?: GPU }).gpu;
    const adapter = gpu ? await gpu.requestAdapter().catch(() => null) : null;
    if (adapter === null) {
      throw new Error(
        `${prefix}: MODEL_BACKEND webgpu found no WebGPU adapter on this host (navigator.gpu ${
          gpu ? "gave none" : "is missing"
        }); use MODEL_BACKEND wasm (runs anywhere) or native`,
      );
    }
    if (variant === "float16" && !adapter.features.has("shader-f16")) {
      throw new Error(
        `${prefix}: MODEL_BACKEND webgpu with MODEL_VARIANT float16 needs the adapter feature ` +
          `shader-f16, which this adapter (${
            adapter.info?.description || adapter.info?.vendor || "unnamed"
          }) ` +
          `lacks; set MODEL_VARIANT=float32, or use MODEL_BACKEND wasm or native`,
      );
    }
    return await import("npm:onnxruntime-web@1.30.0/webgpu");
  }
  try {
    // Loaded only when chosen: a specifier in a variable is outside Deno's static module graph, so the
    // default path never resolves or downloads the native addon (a literal would put it in the graph
    // and in the serve task's frozen lockfile).
    const specifier = NATIVE_MODULE;
    return (await import(specifier)) as unknown as Runtime;
  } catch (e) {
    const refused = e instanceof Deno.errors.NotCapable || /--allow-ffi|ffi access/i.test(String(e));
    if (/lockfile is out of date/i.test(String(e))) {
      throw new Error(
        `${prefix}: MODEL_BACKEND native needs onnxruntime-node@1.30.0, which the frozen lockfile does not ` +
          `list (locks/serve.lock holds only the default wasm path); start deno serve without ` +
          `--frozen --lock=locks/serve.lock (or with --frozen=false), or use MODEL_BACKEND wasm`,
        { cause: e },
      );
    }
    throw new Error(
      refused
        ? `${prefix}: MODEL_BACKEND native needs native addons, which these permissions refuse ` +
          `(${(e as Error).message}); add --allow-ffi to deno serve ` +
          `(onnxruntime-node's addon lives in the npm cache it already reads), or use MODEL_BACKEND wasm`
        : `${prefix}: MODEL_BACKEND native cannot load onnxruntime-node@1.30.0 on this host ` +
          `(${(e as Error).message ?? e}); use MODEL_BACKEND wasm`,
      { cause: e },
    );
  }
}

interface Created {
  session: Session;
  runtime: Runtime;
  bytes: number;
  threads: number;
  threadsNote: string | null;
}

async function createSession(
  runtime: Runtime,
  backend: Backend,
  loc: Location,
  file: string,
  asked: number,
): Promise<Created> {
  if (backend === "native") {
    const options = { intraOpNumThreads: asked, interOpNumThreads: 1 };
    // A path lets onnxruntime-node read the file itself: no copy of the model in JS.
    if (loc.kind === "path") {
      const name = where(loc, file);
      const bytes = (await Deno.stat(name).catch((e) => {
        if (e instanceof Deno.errors.NotFound) throw new Deno.errors.NotFound(`"${name}" does not exist`);
        throw e;
      })).size;
      return {
        session: await runtime.InferenceSession.create(name, options),
        runtime,
        bytes,
        threads: asked,
        threadsNote: null,
      };
    }
    const model = await readBytes(loc, file);
    const session = await runtime.InferenceSession.create(model, options);
    return { session, runtime, bytes: model.length, threads: asked, threadsNote: null };
  }
  const web = runtime as typeof ortWeb;
  // WebGPU runs the graph on the GPU; its wasm side (shapes, a few CPU ops) stays on one thread
  // (its threaded start needs a blob: Worker, which Deno refuses).
  if (backend === "webgpu") asked = 1;
  let threads = asked, threadsNote: string | null = null;
  const refused = asked > 1 ? wasmThreadsRefused() : null;
  if (refused !== null) {
    threads = 1;
    threadsNote = `${asked} threads asked, 1 used: ${refused}`;
  }
  if (wasmThreadsInForce !== null && backend === "wasm" && wasmThreadsInForce !== threads) {
    threadsNote = `${threads} threads asked, ${wasmThreadsInForce} used: onnxruntime-web was already ` +
      `started in this isolate with ${wasmThreadsInForce}`;
    threads = wasmThreadsInForce;
  }
  web.env.wasm.numThreads = threads;
  // The weights go in as external data pointing into the file itself, so the wasm heap (which never
  // shrinks) receives one copy of them, not three; from a local file they are read range by range,
  // so no JS copy of the file is alive while the heap grows (see onnx_external.ts).
  let model: Uint8Array | null = await readBytes(loc, file);
  const bytes = model.length;
  const { graph } = splitInitializers(model, file);
  let data: Uint8Array = model;
  if (loc.kind === "path") {
    data = new FileRanges(where(loc, file));
    free(model);
    model = null;
  }
  let session: Session;
  try {
    session = await web.InferenceSession.create(graph, {
      externalData: [{ path: file, data }],
      // Measured with bert-base int8 (bench/serve.ts, BENCHMARKS.md): without the arena and the
      // memory pattern, the never-shrinking heap settles about 25 MB lower after mixed batches.
      enableCpuMemArena: false,
      enableMemPattern: false,
      ...(backend === "webgpu" ? { executionProviders: ["webgpu"] } : {}),
    });
  } finally {
    if (data instanceof FileRanges) data.close();
    else free(data);
  }
  // onnxruntime-web drops to one thread by itself where shared wasm memory is missing.
  const used = web.env.wasm.numThreads ?? threads;
  if (used < threads) {
    threadsNote = `${asked} threads asked, ${used} used: onnxruntime-web found no shared wasm memory`;
    threads = used;
  }
  if (backend === "wasm") wasmThreadsInForce ??= threads;
  return { session, runtime, bytes, threads, threadsNote };
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
  const backend = options.backend ?? "wasm";
  const variant = options.variant ?? DEFAULT_VARIANT[backend];
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
  if (backend === "webgpu" && variant === "int8") {
    throw new RangeError(
      `${prefix}: MODEL_BACKEND webgpu cannot run the int8 model (onnxruntime's WebGPU provider has no ` +
        `int8 kernels); set MODEL_VARIANT to float16 or float32, or use MODEL_BACKEND wasm`,
    );
  }
  const file = manifest.models[variant];
  if (file === undefined) {
    const listed = Object.keys(manifest.models).join(", ") || "none";
    throw new RangeError(
      `${prefix}: "${where(loc, "serve.json")}" has no ${variant} model (it lists ${listed}) for ` +
        `MODEL_BACKEND ${backend}; set MODEL_VARIANT to one of those${
          backend === "webgpu" ? " other than int8" : ""
        } or re-export with the current exporter (deno task export writes int8, float32 and float16)`,
    );
  }

  const asked = options.threads ?? defaultThreads(navigator.hardwareConcurrency, options.workers ?? 1);
  const runtime = await loadRuntime(backend, variant, prefix);
  let tokenizer: Tokenizer, created: Created;
  try {
    tokenizer = await loadTokenizerAt(loc);
  } catch (e) {
    throw withPrefix(prefix, e);
  }
  try {
    created = await createSession(runtime, backend, loc, file, asked);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw withPrefix(prefix, e);
    throw new Error(
      `${prefix}: "${where(loc, file)}" is not a loadable ONNX model on MODEL_BACKEND ${backend} (${
        (e as Error).message ?? e
      })`,
      { cause: e },
    );
  }
  const { session, bytes, threads, threadsNote } = created;
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
  const model = new OrtServeModel(
    shown,
    manifest,
    variant,
    file,
    bytes,
    tokenizer,
    session,
    created.runtime,
    backend,
    threads,
    threadsNote,
  );
  // One probe run of serve.json's longest input catches, before serving, a maxLength beyond the
  // model's position table (which would fail every long request) and a logits width that disagrees
  // with serve.json's labels.
  let probe: Float32Array;
  try {
    [probe] = await model.run([longestInput(tokenizer, manifest.maxLength)]);
  } catch (e) {
    await session.release();
    if (backend === "webgpu") {
      throw new RangeError(
        `${prefix}: MODEL_BACKEND webgpu cannot run "${where(loc, file)}" (${(e as Error).message ?? e}); ` +
          `its provider lacks some onnxruntime contrib ops: re-export with --portable, use MODEL_VARIANT ` +
          `float16 (always portable), or MODEL_BACKEND wasm`,
        { cause: e },
      );
    }
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
