/**
 * Finding and reading tokenizer files: a folder, a tokenizer.json, a vocab.txt, or an http(s)/file
 * URL to either.
 * @module
 */

import { type Tokenizer, tokenizerFromJson } from "./tokenizer.ts";
import { bertTokenizerJson, parseVocabTxt, tokenizerJsonText } from "./vocab.ts";

/** Options of {@linkcode loadTokenizer}. */
export interface LoadOptions {
  /**
   * Lowercase and strip accents (uncased BERT). Default: tokenizer_config.json's `do_lower_case`
   * when the folder has one, else what tokenizer.json says, else true for a bare vocab.txt.
   */
  doLowerCase?: boolean;
}

const EXPECTED = "expected a folder holding tokenizer.json or vocab.txt, or the path or URL of one of them";

function remoteOrFileUrl(source: string | URL): URL | null {
  if (source instanceof URL) return source;
  return /^(https?|file):\/\//i.test(source) ? new URL(source) : null;
}

function pathOfFileUrl(url: URL): string {
  const path = decodeURIComponent(url.pathname);
  return /^\/[A-Za-z]:\//.test(path) ? path.slice(1) : path; // file:///C:/x -> C:/x
}

async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

function isJsonName(name: string, bytes: Uint8Array): boolean {
  if (/\.json$/i.test(name)) return true;
  if (/\.txt$/i.test(name)) return false;
  // Neither suffix (a URL without a file name): tokenizer.json starts with "{", vocab.txt never does.
  const first = bytes.find((b) => b !== 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d);
  return first === 0x7b;
}

function parseConfig(text: string, name: string): Record<string, unknown> {
  try {
    const config = JSON.parse(text);
    if (typeof config === "object" && config !== null) return config;
  } catch (e) {
    throw new SyntaxError(`Cannot read "${name}": invalid JSON (${(e as Error).message})`);
  }
  throw new SyntaxError(`Cannot read "${name}": expected a JSON object`);
}

/** Builds the tokenizer from file bytes; `doLowerCase` (if set) overrides the file's normalizer. */
function fromBytes(bytes: Uint8Array, name: string, doLowerCase: boolean | undefined): Tokenizer {
  if (!isJsonName(name, bytes)) {
    const vocab = parseVocabTxt(new TextDecoder().decode(bytes), name);
    const json = bertTokenizerJson(vocab, { doLowerCase: doLowerCase ?? true });
    return tokenizerFromJson(new TextEncoder().encode(json), name);
  }
  const tokenizer = tokenizerFromJson(bytes, name);
  if (doLowerCase === undefined || doLowerCase === tokenizer.doLowerCase) return tokenizer;
  // transformers' BertTokenizerFast rebuilds the normalizer when do_lower_case disagrees with it.
  const root = JSON.parse(new TextDecoder().decode(bytes));
  if (root.normalizer === null || root.normalizer === undefined) {
    throw new TypeError(`Cannot set doLowerCase for "${name}": it has no BertNormalizer to change`);
  }
  root.normalizer.lowercase = doLowerCase;
  const vocab: (string | undefined)[] = [];
  for (const [token, id] of Object.entries(root.model.vocab as Record<string, number>)) vocab[id] = token;
  return tokenizerFromJson(new TextEncoder().encode(tokenizerJsonText(root, vocab)), name);
}

/**
 * Loads a BERT tokenizer from a folder (tokenizer.json preferred, else vocab.txt with
 * tokenizer_config.json's `do_lower_case`), a tokenizer.json or vocab.txt path, or an http(s)/file URL
 * to either. The result gives Hugging Face's ids (see {@linkcode Tokenizer}).
 *
 * @param source A folder, a tokenizer.json or vocab.txt path, or an http(s)/file URL to one of them.
 * @param options `doLowerCase` to override the files' casing.
 * @returns The tokenizer.
 * @throws {Deno.errors.NotFound} naming a missing file or folder; {SyntaxError} or {TypeError} for a file it cannot use.
 * @example
 * ```ts
 * import { loadTokenizer } from "./load.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/vocab.txt`, "[PAD]\n[UNK]\n[CLS]\n[SEP]\nthe\ndog\nruns\n");
 * const tok = await loadTokenizer(dir); // or a hub download: downloadModelFiles("bert-base-uncased")
 * console.log(tok.vocabSize, tok.doLowerCase); // 7 true
 * console.log(Array.from(tok.encode("The dog runs").ids)); // [2, 4, 5, 6, 3]
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function loadTokenizer(source: string | URL, options: LoadOptions = {}): Promise<Tokenizer> {
  const url = remoteOrFileUrl(source);
  if (url !== null && url.protocol !== "file:") {
    const response = await fetch(url);
    if (!response.ok) {
      await response.body?.cancel();
      const message = `Cannot load tokenizer "${url.href}": HTTP ${response.status}; ${EXPECTED}`;
      throw response.status === 404 ? new Deno.errors.NotFound(message) : new Deno.errors.Http(message);
    }
    return fromBytes(new Uint8Array(await response.arrayBuffer()), url.pathname, options.doLowerCase);
  }
  const path = url !== null ? pathOfFileUrl(url) : source as string;
  const info = await statOrNull(path);
  if (info === null) {
    throw new Deno.errors.NotFound(`Cannot load tokenizer "${path}": no such file or folder; ${EXPECTED}`);
  }
  if (!info.isDirectory) return fromBytes(await Deno.readFile(path), path, options.doLowerCase);

  const folder = path.replace(/[\\/]+$/, "");
  const configPath = `${folder}/tokenizer_config.json`;
  const config = (await statOrNull(configPath))?.isFile
    ? parseConfig(await Deno.readTextFile(configPath), configPath)
    : {};
  const configLower = typeof config.do_lower_case === "boolean" ? config.do_lower_case : undefined;
  const doLowerCase = options.doLowerCase ?? configLower;
  for (const file of ["tokenizer.json", "vocab.txt"]) {
    const filePath = `${folder}/${file}`;
    if ((await statOrNull(filePath))?.isFile) {
      return fromBytes(await Deno.readFile(filePath), filePath, doLowerCase);
    }
  }
  throw new Deno.errors.NotFound(
    `Cannot load tokenizer "${path}": the folder has neither tokenizer.json nor vocab.txt; add one of them`,
  );
}
