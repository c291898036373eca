/**
 * The project's one download path: model files from a Hugging Face-shaped hub into the Hugging Face
 * cache layout (shared with Python's huggingface_hub; see {@linkcode hubDownload}), and data sets
 * (CoLA) into our URL cache.
 *
 * In the URL cache a URL maps to a stable path under the cache folder (`<host>/<path segments>`). Bytes stream to
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
import { dirname, join, relative } from "node:path";

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
  return env("BERT_WEBGPU_COLA_URL") ?? COLA_URL;
}

/** What to do about HTTP 401/403. */
const AUTH_HINT =
  "the model may be private or gated: accept its terms on the hub and set HF_TOKEN (or pass --token)";

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

/** How a file lands in a cache: the partial file's suffix, the hash sidecar, an Authorization header. */
interface Landing {
  partSuffix: string;
  sidecar: boolean;
  token?: string;
}

const URL_CACHE: Landing = { partSuffix: ".part", sidecar: true };

async function fetchIntoCache(
  href: string,
  path: string,
  expected: string | undefined,
  options: DownloadOptions,
  mayRestart: boolean,
  landing: Landing = URL_CACHE,
): Promise<string> {
  const hint = options.hint ?? "pass a local copy of the file instead";
  const part = `${path}${landing.partSuffix}`;
  let offset = (await fileSize(part)) ?? 0;
  const headers: Record<string, string> = { "accept-encoding": "identity" };
  if (landing.token) headers.authorization = `Bearer ${landing.token}`;
  if (offset > 0) headers.range = `bytes=${offset}-`;
  const { response, linkedEtag } = await fetchFollowingRedirects(href, headers, options, hint);

  if (response.status === 416 && offset > 0 && mayRestart) {
    // The part is as long as (or longer than) the file: start over.
    await response.body?.cancel();
    await removeIfPresent(part);
    return await fetchIntoCache(href, path, expected, options, false, landing);
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new DownloadError(
      `Cannot download "${href}": HTTP ${response.status} ${response.statusText}; ${
        response.status === 401 || response.status === 403 ? AUTH_HINT : "check the URL"
      }, or ${hint}`,
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
      return await fetchIntoCache(href, path, expected, options, false, landing);
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
    if (offset > 0 && mayRestart) return await fetchIntoCache(href, path, expected, options, false, landing);
    throw new DownloadError(
      `Download of "${href}" has SHA-256 ${actual}, expected ${known}; the file was deleted, run again or ${hint}`,
      href,
    );
  }
  if (landing.sidecar) {
    if (known !== undefined) await Deno.writeTextFile(`${path}.sha256`, `${known}\n`);
    else await removeIfPresent(`${path}.sha256`);
  }
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
      const next = new URL(location, current);
      // The token goes to the hub only, never to the CDN a file redirects to (as requests does).
      if (next.origin !== new URL(current).origin) delete headers.authorization;
      current = next.href;
      continue;
    }
    return { response, linkedEtag: linkedEtag ?? etagSha256(response.headers.get("etag")) };
  }
  throw new DownloadError(`Cannot download "${href}": more than 10 redirects; ${hint}`, href);
}

/** An environment variable, or undefined when unset, empty or not permitted (`--allow-env=...`). */
function env(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch (error) {
    if (error instanceof Deno.errors.PermissionDenied || error instanceof Deno.errors.NotCapable) {
      return undefined;
    }
    throw error;
  }
}

/**
 * The Hugging Face hub cache folder, as `huggingface_hub` resolves it: `$HF_HUB_CACHE`, else
 * `$HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`.
 * @example
 * ```ts
 * import { hubCacheDir } from "./hub.ts";
 * hubCacheDir().endsWith("hub"); // true unless $HF_HUB_CACHE says otherwise
 * ```
 */
export function hubCacheDir(): string {
  const home = env("HF_HOME") ?? join(env("XDG_CACHE_HOME") ?? join(homedir(), ".cache"), "huggingface");
  return env("HF_HUB_CACHE") ?? env("HUGGINGFACE_HUB_CACHE") ?? join(home, "hub");
}

/**
 * The hub token: `explicit`, else `$HF_TOKEN`, else the file `huggingface-cli login` writes
 * (`$HF_TOKEN_PATH`, else `$HF_HOME/token`); undefined when there is none.
 */
export async function hubToken(explicit?: string): Promise<string | undefined> {
  if (explicit) return explicit;
  const fromEnv = env("HF_TOKEN") ?? env("HUGGING_FACE_HUB_TOKEN");
  if (fromEnv) return fromEnv;
  const home = env("HF_HOME") ?? join(env("XDG_CACHE_HOME") ?? join(homedir(), ".cache"), "huggingface");
  const path = env("HF_TOKEN_PATH") ?? join(home, "token");
  try {
    return (await Deno.readTextFile(path)).trim() || undefined;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.PermissionDenied) {
      return undefined;
    }
    throw error;
  }
}

/**
 * A model's folder in the hub cache: `models--{org}--{name}`.
 * @example
 * ```ts
 * import { repoFolderName } from "./hub.ts";
 * repoFolderName("google/bert_uncased_L-2_H-128_A-2"); // "models--google--bert_uncased_L-2_H-128_A-2"
 * ```
 */
export function repoFolderName(modelId: string): string {
  return `models--${modelId.replaceAll("/", "--")}`;
}

/** Options of {@linkcode hubDownload} and {@linkcode downloadModelFiles}. */
export interface HubOptions extends Omit<DownloadOptions, "sha256"> {
  /** Hub endpoint. @default $HF_ENDPOINT, else https://huggingface.co */
  endpoint?: string;
  /** Branch, tag or commit. @default "main" */
  revision?: string;
  /** Access token for private and gated models. @default {@linkcode hubToken}() */
  token?: string;
}

const COMMIT = /^[0-9a-f]{40}$/;

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, (e) => {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return false;
    throw e;
  });
}

/** An etag as huggingface_hub stores it: quotes and a weak prefix removed. */
function normalizeEtag(value: string | null): string | undefined {
  const v = value?.trim().replace(/^W\//, "").replace(/^"|"$/g, "");
  return v && /^[\w.-]+$/.test(v) ? v : undefined;
}

/**
 * Where `file` of `modelId` is, if the cache already holds it for `revision`: its snapshot path,
 * `"missing"` when the hub is known not to have it (`.no_exist`), or undefined.
 */
async function cachedSnapshot(storage: string, revision: string, file: string) {
  let commit: string | undefined = COMMIT.test(revision) ? revision : undefined;
  if (!commit) {
    commit = await Deno.readTextFile(join(storage, "refs", revision)).then((t) => t.trim(), (e) => {
      if (e instanceof Deno.errors.NotFound) return undefined;
      throw e;
    });
  }
  if (!commit) return undefined;
  const snapshot = join(storage, "snapshots", commit, file);
  if (await fileSize(snapshot) !== null) return snapshot; // follows the symlink: the blob is there
  if (await exists(join(storage, ".no_exist", commit, file))) return "missing" as const;
  return undefined;
}

/**
 * Downloads one file of a hub model into the Hugging Face cache layout, the one Python's
 * `huggingface_hub` uses, so each reuses the other's files:
 * `<cache>/models--org--name/blobs/<etag>` (the bytes; the etag is the LFS sha256, checked, or the
 * git blob id), `snapshots/<commit>/<file>` (a relative symlink to the blob; a hard link where
 * symlinks are not allowed, as under the train task's path-scoped write permission) and `refs/<revision>` (the commit). A file already in the snapshot of the revision's
 * cached commit is used without a request; `HF_HUB_OFFLINE=1` never makes one. The request sends
 * `Authorization: Bearer <token>` to the hub (not to the CDN it redirects to), reads `X-Repo-Commit`,
 * `X-Linked-Etag`/`ETag` and `X-Linked-Size` from the hub's answer, and resumes a partial
 * `blobs/<etag>.incomplete` with a Range request. A 404 is remembered in `.no_exist/<commit>/`.
 * @returns The file's path in `snapshots/<commit>/`.
 * @throws {DownloadError} naming the URL: 404 (`status` 404), 401/403 (with the token hint), network.
 */
export async function hubDownload(modelId: string, file: string, options: HubOptions = {}): Promise<string> {
  const revision = options.revision ?? "main";
  const url = hubFileUrl(modelId, file, { endpoint: options.endpoint, revision });
  const storage = join(options.cacheDir ?? hubCacheDir(), repoFolderName(modelId));
  const hint = options.hint ?? MODEL_HINT;
  const cached = await cachedSnapshot(storage, revision, file);
  if (cached === "missing") {
    throw new DownloadError(`Model "${modelId}" has no ${file} (cached 404): ${hint}`, url, 404);
  }
  if (cached) return cached;
  if (/^(1|true|yes|on)$/i.test(env("HF_HUB_OFFLINE") ?? "")) {
    throw new DownloadError(
      `${file} of "${modelId}" (revision ${revision}) is not in the cache ${storage} and HF_HUB_OFFLINE is set; ${hint}`,
      url,
    );
  }
  const token = await hubToken(options.token);
  const meta = await hubMetadata(url, token, options, hint);
  if (meta.status === 404) {
    if (meta.commit) {
      const marker = join(storage, ".no_exist", meta.commit, file);
      await Deno.mkdir(dirname(marker), { recursive: true });
      await Deno.writeFile(marker, new Uint8Array());
      await writeRef(storage, revision, meta.commit);
    }
    throw new DownloadError(`Cannot download "${url}": HTTP 404 (no such file); ${hint}`, url, 404);
  }
  const { commit, etag } = meta;
  if (!commit || !etag) {
    throw new DownloadError(
      `Cannot download "${url}": the server sent no X-Repo-Commit or ETag, so it is not a Hugging Face hub; check HF_ENDPOINT, or ${hint}`,
      url,
    );
  }
  const blob = join(storage, "blobs", etag);
  if (await fileSize(blob) === null) {
    await Deno.mkdir(dirname(blob), { recursive: true });
    const sha256 = /^[0-9a-f]{64}$/.test(etag) ? etag : undefined;
    // A redirect's URL is signed: no token there. Without one, the hub itself serves the bytes.
    const sameOrigin = meta.location === url;
    await fetchIntoCache(meta.location, blob, sha256, { ...options, hint }, true, {
      partSuffix: ".incomplete",
      sidecar: false,
      token: sameOrigin ? token : undefined,
    });
  }
  const snapshot = join(storage, "snapshots", commit, file);
  await Deno.mkdir(dirname(snapshot), { recursive: true });
  await removeIfPresent(snapshot);
  const target = relative(dirname(snapshot), blob);
  // A symlink like huggingface_hub's; Deno refuses those under path-scoped --allow-write (the train
  // task's), and some file systems have none: then a hard link (same bytes, no extra space), then a copy.
  await Deno.symlink(target, snapshot).catch(() => Deno.link(blob, snapshot)).catch(() =>
    Deno.copyFile(blob, snapshot)
  );
  await writeRef(storage, revision, commit);
  return snapshot;
}

async function writeRef(storage: string, revision: string, commit: string): Promise<void> {
  if (revision === commit) return;
  const ref = join(storage, "refs", revision);
  await Deno.mkdir(dirname(ref), { recursive: true });
  await Deno.writeTextFile(ref, commit); // huggingface_hub writes it without a newline
}

/**
 * huggingface_hub's metadata request: HEAD on the resolve URL, following same-host redirects (a
 * renamed repo) but not the CDN one, whose headers carry the LFS sha256 and size.
 */
async function hubMetadata(url: string, token: string | undefined, options: HubOptions, hint: string) {
  const fetchFn = options.fetch ?? fetch;
  const headers: Record<string, string> = { "accept-encoding": "identity" };
  if (token) headers.authorization = `Bearer ${token}`;
  let current = url;
  for (let hop = 0; hop <= 10; hop++) {
    let response: Response;
    try {
      response = await fetchFn(current, {
        method: "HEAD",
        headers,
        redirect: "manual",
        signal: options.signal,
      });
    } catch (error) {
      if (options.signal?.aborted) throw error;
      throw new DownloadError(
        `Cannot reach "${url}": ${(error as Error).message}; check the network connection, or ${hint}`,
        url,
        undefined,
        { cause: error },
      );
    }
    await response.body?.cancel();
    const h = response.headers;
    const commit = h.get("x-repo-commit") ?? undefined;
    const location = h.get("location");
    if (response.status >= 300 && response.status < 400 && location) {
      const next = new URL(location, current);
      if (next.origin === new URL(current).origin && !h.get("x-linked-etag")) {
        current = next.href;
        continue;
      }
      return {
        status: response.status,
        commit,
        etag: normalizeEtag(h.get("x-linked-etag") ?? h.get("etag")),
        location: next.href,
      };
    }
    if (response.status === 404) return { status: 404, commit, etag: undefined, location: current };
    if (!response.ok) {
      throw new DownloadError(
        `Cannot download "${url}": HTTP ${response.status} ${response.statusText}; ${
          response.status === 401 || response.status === 403
            ? `${AUTH_HINT}${token ? " (a token was sent: check that it has access)" : ""}`
            : "check the model id and revision"
        }, or ${hint}`,
        url,
        response.status,
      );
    }
    return {
      status: response.status,
      commit,
      etag: normalizeEtag(h.get("x-linked-etag") ?? h.get("etag")),
      location: current,
    };
  }
  throw new DownloadError(`Cannot download "${url}": more than 10 redirects; ${hint}`, url);
}

/**
 * Downloads a model's files from a Hugging Face-shaped hub into the Hugging Face cache and returns
 * their snapshot folder: config.json; model.safetensors, else pytorch_model.bin; tokenizer.json, else
 * vocab.txt; and tokenizer_config.json when the hub has it. Files already cached (by us or by
 * Python's huggingface_hub) are reused.
 * @param modelId A hub model id such as "bert-base-uncased" or "org/name".
 * @param options The cache folder (default {@linkcode hubCacheDir}), endpoint, revision, token, and
 *   `progress(file)` returning a progress callback for each file.
 * @returns The snapshot folder holding the files, ready for `loadModel()`, `loadTokenizer()` and `fineTune()`.
 * @throws {DownloadError} naming the URL, with the hint to pass a local `--model <folder>` instead.
 * @example
 * ```ts ignore
 * import { downloadModelFiles } from "./hub.ts";
 * const folder = await downloadModelFiles("bert-base-uncased");
 * ```
 */
export async function downloadModelFiles(
  modelId: string,
  options: HubOptions & { progress?: (file: string) => DownloadOptions["onProgress"] } = {},
): Promise<string> {
  const { progress, ...rest } = options;
  const fileOptions = (file: string): HubOptions => ({
    ...rest,
    hint: options.hint ?? MODEL_HINT,
    onProgress: progress?.(file) ?? options.onProgress,
  });
  const groups: { files: string[]; optional: boolean }[] = [
    { files: ["config.json"], optional: false },
    { files: ["model.safetensors", "pytorch_model.bin"], optional: false },
    { files: ["tokenizer.json", "vocab.txt"], optional: false },
    { files: ["tokenizer_config.json"], optional: true },
  ];
  let folder: string | undefined;
  for (const { files, optional } of groups) {
    let found = false;
    for (const file of files) {
      try {
        folder = dirname(await hubDownload(modelId, file, fileOptions(file)));
        found = true;
        break;
      } catch (error) {
        if (!(error instanceof DownloadError && error.status === 404)) throw error;
      }
    }
    if (!found && !optional) {
      const url = hubFileUrl(modelId, files[0], options);
      const names = files.join(files.length === 2 ? " nor " : ", ");
      throw new DownloadError(
        `Model "${modelId}" has ${files.length > 1 ? "neither " : "no "}${names} at ${
          url.replace(/[^/]+$/, "")
        } (HTTP 404); check the model id and revision, or ${MODEL_HINT}`,
        url,
        404,
      );
    }
  }
  return folder!;
}
