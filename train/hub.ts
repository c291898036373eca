/**
 * Downloads with a cache: model files from a Hugging Face-shaped hub and data sets (CoLA).
 *
 * A URL maps to a stable path under the cache folder (`<host>/<path segments>`). Bytes stream to
 * `<path>.part`; an interrupted download resumes with an HTTP Range request; the size is checked
 * against Content-Length / Content-Range and the SHA-256 against the `sha256` option or a 64-hex
 * `X-Linked-ETag` / `ETag` (the hub sends these for LFS files); only then is the file renamed into
 * place. A known hash is kept beside the file (`<path>.sha256`) so a cached file is re-verified on
 * reuse and fetched again when corrupt. The library reports progress through `onProgress` and never
 * prints.
 * @module
 */

import { createHash } from "node:crypto";
import { homedir } from "node:os";
import { dirname, join } from "node:path";

/** Options of {@linkcode download}. */
export interface DownloadOptions {
  /** Cache folder. @default $BERT_WEBGPU_CACHE, else ~/.cache/bert-webgpu */
  cacheDir?: string;
  /** Expected SHA-256 of the file, 64 hex digits. */
  sha256?: string;
  /** Called as bytes arrive: bytes so far (including a resumed prefix) and the total when known. */
  onProgress?: (done: number, total: number | null) => void;
  /** The fetch to use (tests, proxies). @default globalThis.fetch */
  fetch?: typeof fetch;
  /** Cancels the download; the partial file is kept for a later resume. */
  signal?: AbortSignal;
  /** What to tell the user to do instead when the download fails. @default "pass a local copy of the file instead" */
  hint?: string;
}

/**
 * Where the CoLA v1.1 public release is published (the zip the BERT fine-tuning tutorial uses); pass it
 * to `loadCola()` to download it into the cache.
 * @example
 * ```ts
 * import { COLA_URL } from "./hub.ts";
 * console.log(COLA_URL.endsWith("cola_public_1.1.zip")); // true
 * ```
 */
export const COLA_URL = "https://nyu-mll.github.io/CoLA/cola_public_1.1.zip";

/**
 * The CoLA zip's URL: `$BERT_WEBGPU_COLA_URL` (a mirror) when set, else {@linkcode COLA_URL}.
 * @example
 * ```ts
 * import { colaUrl } from "./hub.ts";
 * console.log(colaUrl().endsWith(".zip")); // true
 * ```
 */
export function colaUrl(): string {
  return Deno.env.get("BERT_WEBGPU_COLA_URL") || COLA_URL;
}

/** The hint every model download failure carries. */
const MODEL_HINT = "pass --model <folder> with config.json, model.safetensors and tokenizer files";

/** A failed download: network failure (`status` undefined), an HTTP error status, or a bad file. */
export class DownloadError extends Error {
  /** The URL that failed. */
  readonly url: string;
  /** The HTTP status when the server answered with an error. */
  readonly status?: number;

  /** Creates the error; `message` should name the URL and the way out. */
  constructor(message: string, url: string, status?: number, options?: ErrorOptions) {
    super(message, options);
    this.name = "DownloadError";
    this.url = url;
    this.status = status;
  }
}

/**
 * The default cache folder: `$BERT_WEBGPU_CACHE`, else `~/.cache/bert-webgpu`.
 * @example
 * ```ts
 * import { defaultCacheDir } from "./hub.ts";
 * defaultCacheDir().length > 0; // true
 * ```
 */
export function defaultCacheDir(): string {
  return Deno.env.get("BERT_WEBGPU_CACHE") || join(homedir(), ".cache", "bert-webgpu");
}

function shortHash(text: string): string {
  return createHash("sha256").update(text).digest("hex").slice(0, 8);
}

/** A filesystem-safe name for one URL segment; anything changed gets a hash so names stay distinct. */
function safeSegment(segment: string): string {
  let safe = segment.replace(/[^A-Za-z0-9._-]/g, "_");
  if (safe === "." || safe === "..") safe = safe.replaceAll(".", "_");
  if (safe.length > 100) safe = safe.slice(0, 100);
  return safe === segment ? safe : `${safe}-${shortHash(segment)}`;
}

/**
 * Where {@linkcode download} keeps `url`: `<cacheDir>/<host>/<path segments>`, each segment made
 * filesystem-safe; a query string adds a hash to the file name.
 * @example
 * ```ts
 * import { cachePath } from "./hub.ts";
 * cachePath("https://huggingface.co/bert-base-uncased/resolve/main/config.json", "/tmp/c");
 * // "/tmp/c/huggingface.co/bert-base-uncased/resolve/main/config.json"
 * ```
 */
export function cachePath(url: string | URL, cacheDir: string = defaultCacheDir()): string {
  const u = new URL(url);
  const segments = u.pathname.split("/").filter((s) => s !== "").map(safeSegment);
  if (segments.length === 0 || u.pathname.endsWith("/")) segments.push("index");
  if (u.search) segments[segments.length - 1] += `-q${shortHash(u.search)}`;
  return join(cacheDir, safeSegment(u.host.replace(":", "_")), ...segments);
}

/**
 * The URL of `file` in `modelId`: `{endpoint}/{modelId}/resolve/{revision}/{file}`.
 * @throws {TypeError} when `modelId` is not of the form `name` or `org/name`.
 * @example
 * ```ts
 * import { hubFileUrl } from "./hub.ts";
 * hubFileUrl("bert-base-uncased", "config.json", { endpoint: "https://huggingface.co" });
 * // "https://huggingface.co/bert-base-uncased/resolve/main/config.json"
 * ```
 */
export function hubFileUrl(
  modelId: string,
  file: string,
  options: { endpoint?: string; revision?: string } = {},
): string {
  if (!/^[A-Za-z0-9][\w.-]*(\/[A-Za-z0-9][\w.-]*)?$/.test(modelId) || modelId.includes("..")) {
    throw new TypeError(
      `Model id "${modelId}" is not a hub id like "bert-base-uncased" or "org/name"; to use local files ${MODEL_HINT}`,
    );
  }
  const endpoint = (options.endpoint ?? (Deno.env.get("HF_ENDPOINT") || "https://huggingface.co")).replace(
    /\/+$/,
    "",
  );
  const revision = encodeURIComponent(options.revision ?? "main");
  const path = file.split("/").map(encodeURIComponent).join("/");
  return `${endpoint}/${modelId}/resolve/${revision}/${path}`;
}

function checkSha256(sha256: string | undefined): string | undefined {
  if (sha256 === undefined) return undefined;
  if (!/^[0-9a-fA-F]{64}$/.test(sha256)) {
    throw new TypeError(`sha256 "${sha256}" is not 64 hex digits; pass the file's SHA-256 or leave it out`);
  }
  return sha256.toLowerCase();
}

/** A 64-hex SHA-256 from an ETag-like header value (`"abc..."`, `W/"abc..."`), else undefined. */
function etagSha256(value: string | null): string | undefined {
  const m = value?.trim().match(/^(?:W\/)?"?([0-9a-fA-F]{64})"?$/);
  return m ? m[1].toLowerCase() : undefined;
}

async function fileSize(path: string): Promise<number | null> {
  try {
    const info = await Deno.stat(path);
    return info.isFile ? info.size : null;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

async function removeIfPresent(path: string): Promise<void> {
  await Deno.remove(path).catch((error) => {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  });
}

/** Streams a file through SHA-256. */
async function sha256OfFile(
  path: string,
  hash = createHash("sha256"),
): Promise<ReturnType<typeof createHash>> {
  using file = await Deno.open(path);
  for await (const chunk of file.readable) hash.update(chunk);
  return hash;
}

async function readSidecar(path: string): Promise<string | undefined> {
  try {
    return etagSha256((await Deno.readTextFile(path)).trim());
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/**
 * Downloads `url` into the cache (or reuses the cached copy) and returns the cached file's path.
 * Resumes a `.part` left by an interrupted run with a Range request; checks the size and, when
 * known, the SHA-256; a corrupt cached file is deleted and fetched again.
 * @throws {DownloadError} on network failure, an HTTP error status, a short body or a hash mismatch;
 *   the message names the URL and how to use a local copy instead.
 * @example
 * ```ts ignore
 * import { COLA_URL, download } from "./hub.ts";
 * const zipPath = await download(COLA_URL, { onProgress: (done, total) => console.log(done, total) });
 * ```
 */
export async function download(url: string | URL, options: DownloadOptions = {}): Promise<string> {
  const href = new URL(url).href;
  if (!/^https?:$/.test(new URL(href).protocol)) {
    throw new TypeError(
      `Cannot download "${href}": only http(s) URLs are supported; pass a local path instead`,
    );
  }
  const expected = checkSha256(options.sha256);
  const path = cachePath(href, options.cacheDir);
  if ((await fileSize(path)) !== null) {
    const known = expected ?? (await readSidecar(`${path}.sha256`));
    if (known === undefined) return path;
    if ((await sha256OfFile(path)).digest("hex") === known) return path;
    await Deno.remove(path); // corrupt: fetch again below
  }
  await Deno.mkdir(dirname(path), { recursive: true });
  return await fetchIntoCache(href, path, expected, options, true);
}

async function fetchIntoCache(
  href: string,
  path: string,
  expected: string | undefined,
  options: DownloadOptions,
  mayRestart: boolean,
): Promise<string> {
  const hint = options.hint ?? "pass a local copy of the file instead";
  const part = `${path}.part`;
  let offset = (await fileSize(part)) ?? 0;
  const headers: Record<string, string> = { "accept-encoding": "identity" };
  if (offset > 0) headers.range = `bytes=${offset}-`;
  const { response, linkedEtag } = await fetchFollowingRedirects(href, headers, options, hint);

  if (response.status === 416 && offset > 0 && mayRestart) {
    // The part is as long as (or longer than) the file: start over.
    await response.body?.cancel();
    await removeIfPresent(part);
    return await fetchIntoCache(href, path, expected, options, false);
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new DownloadError(
      `Cannot download "${href}": HTTP ${response.status} ${response.statusText}; check the URL, or ${hint}`,
      href,
      response.status,
    );
  }
  const length = Number(response.headers.get("content-length") ?? NaN);
  const encoded = (response.headers.get("content-encoding") ?? "identity") !== "identity";
  let total: number | null = Number.isFinite(length) && !encoded ? length : null;
  if (response.status === 206) {
    const range = response.headers.get("content-range")?.match(/^bytes (\d+)-(\d+)\/(\d+|\*)$/);
    if (!range || Number(range[1]) !== offset) {
      await response.body?.cancel();
      await removeIfPresent(part);
      if (!mayRestart) {
        throw new DownloadError(
          `Cannot download "${href}": the server sent a range it was not asked for`,
          href,
        );
      }
      return await fetchIntoCache(href, path, expected, options, false);
    }
    total = range[3] === "*" ? (total === null ? null : offset + total) : Number(range[3]);
  } else {
    offset = 0; // 200: the server ignored the Range header; start over.
  }

  const hash = offset > 0 ? await sha256OfFile(part) : createHash("sha256");
  let done = offset;
  options.onProgress?.(done, total);
  {
    using file = await Deno.open(part, {
      write: true,
      create: true,
      append: offset > 0,
      truncate: offset === 0,
    });
    try {
      for await (const chunk of response.body ?? new ReadableStream<Uint8Array>()) {
        for (let written = 0; written < chunk.length;) written += await file.write(chunk.subarray(written));
        hash.update(chunk);
        done += chunk.length;
        options.onProgress?.(done, total);
      }
    } catch (error) {
      if (options.signal?.aborted) throw error;
      throw new DownloadError(
        `Download of "${href}" was interrupted after ${done} bytes (${
          (error as Error).message
        }); run again to resume, or ${hint}`,
        href,
        undefined,
        { cause: error },
      );
    }
  }
  if (total !== null && done !== total) {
    throw new DownloadError(
      `Download of "${href}" ended after ${done} of ${total} bytes; run again to resume, or ${hint}`,
      href,
    );
  }
  const actual = hash.digest("hex");
  const known = expected ?? linkedEtag;
  if (known !== undefined && actual !== known) {
    await removeIfPresent(part);
    if (offset > 0 && mayRestart) return await fetchIntoCache(href, path, expected, options, false);
    throw new DownloadError(
      `Download of "${href}" has SHA-256 ${actual}, expected ${known}; the file was deleted, run again or ${hint}`,
      href,
    );
  }
  if (known !== undefined) await Deno.writeTextFile(`${path}.sha256`, `${known}\n`);
  else await removeIfPresent(`${path}.sha256`);
  await Deno.rename(part, path);
  return path;
}

/** Fetches, following redirects by hand so a hop's `X-Linked-ETag` (the hub's LFS sha256) is seen. */
async function fetchFollowingRedirects(
  href: string,
  headers: Record<string, string>,
  options: DownloadOptions,
  hint: string,
): Promise<{ response: Response; linkedEtag: string | undefined }> {
  const fetchFn = options.fetch ?? fetch;
  let current = href;
  let linkedEtag: string | undefined;
  for (let hop = 0; hop <= 10; hop++) {
    let response: Response;
    try {
      response = await fetchFn(current, { headers, redirect: "manual", signal: options.signal });
    } catch (error) {
      if (options.signal?.aborted) throw error;
      throw new DownloadError(
        `Cannot download "${href}": ${(error as Error).message}; check the network connection, or ${hint}`,
        href,
        undefined,
        { cause: error },
      );
    }
    linkedEtag ??= etagSha256(response.headers.get("x-linked-etag"));
    const location = response.headers.get("location");
    if (response.status >= 300 && response.status < 400 && location) {
      await response.body?.cancel();
      current = new URL(location, current).href;
      continue;
    }
    return { response, linkedEtag: linkedEtag ?? etagSha256(response.headers.get("etag")) };
  }
  throw new DownloadError(`Cannot download "${href}": more than 10 redirects; ${hint}`, href);
}

/**
 * Downloads a model's files from a Hugging Face-shaped hub into the cache and returns their folder:
 * config.json; model.safetensors, else pytorch_model.bin; tokenizer.json, else vocab.txt; and
 * tokenizer_config.json when the hub has it. Files already cached are reused.
 * @param modelId A hub model id such as "bert-base-uncased" or "org/name".
 * @param options The cache folder, hub endpoint (default `$HF_ENDPOINT` or huggingface.co) and revision.
 * @returns The cache folder holding the files, ready for `loadModel()`, `loadTokenizer()` and `fineTune()`.
 * @throws {DownloadError} naming the URL, with the hint to pass a local `--model <folder>` instead.
 * @example
 * ```ts ignore
 * import { downloadModelFiles } from "./hub.ts";
 * const folder = await downloadModelFiles("bert-base-uncased");
 * ```
 */
export async function downloadModelFiles(
  modelId: string,
  options: DownloadOptions & { endpoint?: string; revision?: string } = {},
): Promise<string> {
  const { endpoint, revision, ...rest } = options;
  const fileOptions: DownloadOptions = { ...rest, hint: options.hint ?? MODEL_HINT };
  const url = (file: string) => hubFileUrl(modelId, file, { endpoint, revision });
  const groups: { files: string[]; optional: boolean }[] = [
    { files: ["config.json"], optional: false },
    { files: ["model.safetensors", "pytorch_model.bin"], optional: false },
    { files: ["tokenizer.json", "vocab.txt"], optional: false },
    { files: ["tokenizer_config.json"], optional: true },
  ];
  for (const { files, optional } of groups) {
    // Prefer what is already cached, so a fallback file does not cost a 404 every run.
    let cached: string | undefined;
    for (const f of files) {
      if (cached === undefined && (await fileSize(cachePath(url(f), options.cacheDir))) !== null) cached = f;
    }
    const order = cached ? [cached, ...files.filter((f) => f !== cached)] : files;
    let found = false;
    for (const file of order) {
      try {
        await download(url(file), fileOptions);
        found = true;
        break;
      } catch (error) {
        if (!(error instanceof DownloadError && error.status === 404)) throw error;
      }
    }
    if (!found && !optional) {
      const names = files.join(files.length === 2 ? " nor " : ", ");
      throw new DownloadError(
        `Model "${modelId}" has ${files.length > 1 ? "neither " : "no "}${names} at ${
          url(files[0]).replace(/[^/]+$/, "")
        } (HTTP 404); check the model id and revision, or ${MODEL_HINT}`,
        url(files[0]),
        404,
      );
    }
  }
  return dirname(cachePath(url("config.json"), options.cacheDir));
}
