/**
 * CoLA (Corpus of Linguistic Acceptability) v1.1 from its public zip, as the BERT fine-tuning
 * tutorial uses it: in_domain_train split 90/10 (seeded) into train/validation, plus the two dev sets.
 * Raw TSVs: no header, 4 columns (source, label 0/1, original mark, sentence).
 * @module
 */

import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { COLA_URL, colaUrl, download } from "../hub.ts";
import { decodeUtf8, readFileOrThrow } from "./dataset.ts";
import type { Dataset } from "./dataset.ts";
import { parseTable } from "./tabular.ts";
import { readZipMember } from "../../formats/_zip.ts";
import { Rng } from "../../kernels/random.ts";

/** The four CoLA data sets. */
export interface ColaSplits {
  /** in_domain_train minus validation (7,695 rows at the default split). */
  train: Dataset;
  /** The held-out part of in_domain_train (856 rows at the default split). */
  validation: Dataset;
  /** in_domain_dev.tsv (527 rows). */
  inDomainDev: Dataset;
  /** out_of_domain_dev.tsv (516 rows). */
  outOfDomainDev: Dataset;
}

/** Options of {@linkcode loadCola}. */
export interface ColaOptions {
  /** Seed of the train/validation split. @default 42 */
  seed?: number;
  /** Fraction of in_domain_train held out for validation. @default 0.1 */
  valSplit?: number;
  /** Cache folder for a URL source (see hub.ts). */
  cacheDir?: string;
  /** Split at random (seeded); `false` holds out the last rows instead. @default true */
  shuffle?: boolean;
}

/**
 * Class names by id, as the CoLA paper reads label 0 and 1.
 * @example
 * ```ts
 * import { COLA_LABELS } from "./cola.ts";
 * console.log(COLA_LABELS[1]); // acceptable
 * ```
 */
export const COLA_LABELS: readonly string[] = ["unacceptable", "acceptable"];

/** The zip's file name. */
export const COLA_ZIP = "cola_public_1.1.zip";

const MEMBERS = {
  train: "cola_public/raw/in_domain_train.tsv",
  inDomainDev: "cola_public/raw/in_domain_dev.tsv",
  outOfDomainDev: "cola_public/raw/out_of_domain_dev.tsv",
} as const;

/**
 * Loads CoLA. `source` is a local path to cola_public_1.1.zip, a folder holding it, or an http(s)
 * URL (downloaded into the cache); without one, the official zip (`$BERT_WEBGPU_COLA_URL` when set,
 * else `COLA_URL`).
 * @param source The zip's path, a folder holding it, or an http(s) URL. @default colaUrl()
 * @param options The validation fraction and split seed, and the download cache.
 * @returns The train/validation split of in_domain_train and the two dev sets, labels unacceptable (0) and acceptable (1).
 * @throws {Deno.errors.NotFound} for a missing zip or member; {@linkcode SyntaxError} for a corrupt
 *   zip; RangeError/TypeError for malformed rows (naming file and line).
 * @example
 * ```ts
 * import { zipSync } from "npm:fflate@0.8.3";
 * import { loadCola } from "./cola.ts";
 * // loadCola() with no source downloads the official zip (8,551 train rows) into the cache; here a
 * // zip of the same layout, written by the example.
 * const tsv = (rows: string[]) => new TextEncoder().encode(rows.map((r) => `src\t${r}\n`).join(""));
 * const dir = await Deno.makeTempDir();
 * await Deno.writeFile(`${dir}/cola_public_1.1.zip`, zipSync({
 *   "cola_public/raw/in_domain_train.tsv": tsv(["1\t\tThe dog runs.", "0\t*\tDog the runs.", "1\t\tIt rains."]),
 *   "cola_public/raw/in_domain_dev.tsv": tsv(["1\t\tCats sleep."]),
 *   "cola_public/raw/out_of_domain_dev.tsv": tsv(["0\t*\tSleep cats the."]),
 * }));
 * const cola = await loadCola(dir, { valSplit: 0.3 });
 * console.log(cola.train.examples.length, cola.validation.examples.length); // 2 1
 * console.log(cola.outOfDomainDev.examples[0]); // { text: "Sleep cats the.", label: 0, ... }
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function loadCola(
  source: string | URL = colaUrl(),
  options: ColaOptions = {},
): Promise<ColaSplits> {
  const zipPath = await resolveZip(source, options.cacheDir);
  const zip = await readFileOrThrow(zipPath, "CoLA zip");
  const zipName = basename(zipPath);
  const read = (member: string, name: string): Dataset => {
    const file = `${zipName}/${member}`;
    const ds = parseTable(decodeUtf8(readZipMember(zip, member, zipPath), file), file, {
      format: "tsv",
      header: false,
      expectedColumns: 4,
      textColumn: "3",
      labelColumn: "1",
      label2id: { "0": 0, "1": 1 },
    });
    return { ...ds, labels: [...COLA_LABELS], name };
  };
  const all = read(MEMBERS.train, "cola");
  const { train, validation } = options.shuffle === false
    ? splitInOrder(all, options.valSplit ?? 0.1)
    : splitTrainValidation(all, options.valSplit ?? 0.1, options.seed ?? 42);
  return {
    train,
    validation,
    inDomainDev: read(MEMBERS.inDomainDev, "cola/in_domain_dev"),
    outOfDomainDev: read(MEMBERS.outOfDomainDev, "cola/out_of_domain_dev"),
  };
}

async function resolveZip(source: string | URL, cacheDir: string | undefined): Promise<string> {
  const text = source instanceof URL ? source.href : source;
  if (/^https?:\/\//i.test(text)) {
    return await download(text, {
      cacheDir,
      hint: `download ${COLA_ZIP} yourself and pass its path or folder`,
    });
  }
  const path = text.startsWith("file:") ? fileURLToPath(text) : text;
  const info = await Deno.stat(path).catch(() => null);
  const zipPath = info?.isDirectory ? join(path, COLA_ZIP) : path;
  if (!(await Deno.stat(zipPath).catch(() => null))?.isFile) {
    throw new Deno.errors.NotFound(
      `CoLA zip "${zipPath}" not found; pass the path of ${COLA_ZIP}, a folder holding it, or the URL ${COLA_URL}`,
    );
  }
  return zipPath;
}

/** How many rows go to validation: n - floor((1 - valSplit) * n), as torch random_split sizes are set in the tutorial. */
function validationCount(n: number, valSplit: number): number {
  if (!(valSplit >= 0 && valSplit < 1)) {
    throw new RangeError(`valSplit ${valSplit} is outside [0, 1); pass a fraction such as 0.1`);
  }
  return n - Math.floor((1 - valSplit) * n);
}

function subset(ds: Dataset, indices: readonly number[], name: string): Dataset {
  return { examples: indices.map((i) => ds.examples[i]), labels: [...ds.labels], name };
}

/**
 * Splits a data set at random (seeded): `n - floor((1 - valSplit) * n)` examples go to validation
 * (856 of CoLA's 8,551 at 0.1, as in the tutorial). Both parts keep the original order.
 * @param ds The data set to split.
 * @param valSplit The fraction held out for validation, in [0, 1).
 * @param seed Seeds the draw.
 * @returns Both parts, named `<name>/train` and `<name>/validation`.
 * @throws {RangeError} when `valSplit` is outside [0, 1).
 * @example
 * ```ts
 * import { splitTrainValidation } from "./cola.ts";
 * const ds = { name: "d", labels: ["a", "b"], examples: Array.from({ length: 10 }, (_, i) => ({ text: `${i}`, label: i % 2 })) };
 * const { train, validation } = splitTrainValidation(ds, 0.1, 42);
 * [train.examples.length, validation.examples.length]; // [9, 1]
 * ```
 */
export function splitTrainValidation(
  ds: Dataset,
  valSplit: number,
  seed: number,
): { train: Dataset; validation: Dataset } {
  const n = ds.examples.length;
  const nVal = validationCount(n, valSplit);
  const order = new Rng(seed).shuffle(Array.from({ length: n }, (_, i) => i));
  const byIndex = (a: number, b: number) => a - b;
  return {
    train: subset(ds, order.slice(nVal).sort(byIndex), `${ds.name}/train`),
    validation: subset(ds, order.slice(0, nVal).sort(byIndex), `${ds.name}/validation`),
  };
}

function splitInOrder(ds: Dataset, valSplit: number): { train: Dataset; validation: Dataset } {
  const n = ds.examples.length;
  const nTrain = n - validationCount(n, valSplit);
  const indices = Array.from({ length: n }, (_, i) => i);
  return {
    train: subset(ds, indices.slice(0, nTrain), `${ds.name}/train`),
    validation: subset(ds, indices.slice(nTrain), `${ds.name}/validation`),
  };
}
