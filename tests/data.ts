/**
 * The third-party files that tests and benches read (the CoLA v1.1 zip and bert-base-uncased's
 * tokenizer and config), found in this order:
 *
 * 1. the folder in `$BERT_WEBGPU_TEST_DATA` (laid out as `cola_public_1.1.zip` and
 *    `bert-base-uncased/<file>`), for offline machines;
 * 2. the download cache (`$BERT_WEBGPU_CACHE`, default `~/.cache/bert-webgpu`, as train/hub.ts keeps it);
 * 3. a download through train/hub.ts from the official places: the CoLA site (`$BERT_WEBGPU_COLA_URL`
 *    overrides it) and the Hugging Face hub (`$HF_ENDPOINT` overrides it).
 *
 * Every file is checked against a pinned SHA-256, except tokenizer_config.json (28 bytes of settings
 * the hub may reword; the tokenizer tests check its effect). The files are never committed.
 * @module
 */

import { createHash } from "node:crypto";
import { dirname, join } from "node:path";
import { colaUrl, defaultCacheDir, download, DownloadError, hubFileUrl } from "../train/hub.ts";

/** The variable naming a folder that holds the test data. */
export const TEST_DATA_ENV = "BERT_WEBGPU_TEST_DATA";

/** The bert-base-uncased files tests use, in `bert-base-uncased/` of the data folder. */
export const BERT_FILES = ["vocab.txt", "tokenizer.json", "tokenizer_config.json", "config.json"] as const;

/** A file the resolver knows, as laid out in a `$BERT_WEBGPU_TEST_DATA` folder. */
export type TestDataFile = "cola_public_1.1.zip" | `bert-base-uncased/${typeof BERT_FILES[number]}`;

/** Pinned SHA-256 of each file (undefined: not pinned, see the module doc). */
export const TEST_DATA_SHA256: Record<TestDataFile, string | undefined> = {
  "cola_public_1.1.zip": "2cf856f46df11c143d38e0cf2f9f34ff2fdb088c521cd859f5c4b9581683278b",
  "bert-base-uncased/vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
  "bert-base-uncased/tokenizer.json": "42c76142a4268ec0d46f7047f2a1783033059edcd80bb57d4387147a2e421248",
  "bert-base-uncased/tokenizer_config.json": undefined,
  "bert-base-uncased/config.json": "7160e1553ad2ca51d8c1cb066be533db31826e12d173824c1bb0cb1a4f187d20",
};

/** Where the resolver looks; each field defaults to its environment variable. */
export interface TestDataOptions {
  /** @default $BERT_WEBGPU_TEST_DATA */
  dataDir?: string;
  /** @default $BERT_WEBGPU_CACHE, else ~/.cache/bert-webgpu */
  cacheDir?: string;
  /** @default $HF_ENDPOINT, else https://huggingface.co */
  hfEndpoint?: string;
  /** @default $BERT_WEBGPU_COLA_URL, else the CoLA site */
  colaUrl?: string;
}

/** The official (or overridden) URL of a test data file. */
export function testDataUrl(file: TestDataFile, options: TestDataOptions = {}): string {
  if (file === "cola_public_1.1.zip") return options.colaUrl ?? colaUrl();
  return hubFileUrl("bert-base-uncased", file.slice("bert-base-uncased/".length), {
    endpoint: options.hfEndpoint,
  });
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

const LAYOUT =
  "cola_public_1.1.zip and bert-base-uncased/ (vocab.txt, tokenizer.json, tokenizer_config.json, " +
  "config.json)";

/**
 * The local path of `file`, downloading it into the cache when needed (serialised across processes by
 * a lock file, so parallel test files do not race on one download).
 * @throws {Error} naming the file, the URL and `BERT_WEBGPU_TEST_DATA` when the file cannot be had, or
 *   the file, the digest seen and the digest expected when the bytes are not the pinned ones.
 */
export async function testDataFile(file: TestDataFile, options: TestDataOptions = {}): Promise<string> {
  const expected = TEST_DATA_SHA256[file];
  const dataDir = options.dataDir ?? Deno.env.get(TEST_DATA_ENV);
  if (dataDir) {
    const path = join(dataDir, file);
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(path);
    } catch (error) {
      throw new Error(
        `Test data "${file}" is missing: ${TEST_DATA_ENV}=${dataDir} has no ${path} (${
          (error as Error).message
        }); point ${TEST_DATA_ENV} at a folder holding ${LAYOUT}, or unset it to download from ${
          testDataUrl(file, options)
        }`,
      );
    }
    const seen = sha256(bytes);
    if (expected !== undefined && seen !== expected) {
      throw new Error(
        `Test data "${file}" at ${path} has SHA-256 ${seen}, expected ${expected}: replace it with the official file`,
      );
    }
    return path;
  }
  const cacheDir = options.cacheDir ?? defaultCacheDir();
  const url = testDataUrl(file, options);
  await Deno.mkdir(cacheDir, { recursive: true });
  using lock = await Deno.open(join(cacheDir, ".test-data.lock"), { create: true, write: true });
  await lock.lock(true);
  try {
    return await download(url, {
      cacheDir,
      sha256: expected,
      hint: `set ${TEST_DATA_ENV} to a folder holding ${LAYOUT}`,
    });
  } catch (error) {
    if (!(error instanceof DownloadError)) throw error;
    throw new Error(`Test data "${file}" is not available: ${error.message}`, { cause: error });
  } finally {
    await lock.unlock();
  }
}

/** The CoLA v1.1 zip's local path. */
export function colaZipPath(options: TestDataOptions = {}): Promise<string> {
  return testDataFile("cola_public_1.1.zip", options);
}

/** A folder holding bert-base-uncased's vocab.txt, tokenizer.json, tokenizer_config.json and config.json. */
export async function bertBaseUncasedDir(options: TestDataOptions = {}): Promise<string> {
  const paths = [];
  for (const f of BERT_FILES) paths.push(await testDataFile(`bert-base-uncased/${f}`, options));
  return dirname(paths[0]);
}
