/**
 * The nine GLUE tasks as GLUE distributes them: each task's TSV layout, labels in GLUE's order (as
 * Hugging Face's `glue` data set numbers them), its dev set(s) and metrics.
 *
 * Files are read as GLUE's own readers read them (`csv.DictReader(delimiter="\t",
 * quoting=csv.QUOTE_NONE)`): tabs split cells, quotes are text, a leading BOM is dropped, `\r\n`,
 * `\r` and `\n` end lines, blank lines are skipped. A row too short to hold a column the task reads, or
 * with an empty class label, is skipped and counted, as those readers skip it; any other bad row
 * (a label outside the task's classes, a score that is not a number, a headerless CoLA row with
 * too few cells) is an error naming the file and line.
 *
 * Sources: a folder (holding train.tsv, `<Task>/train.tsv` or the task's zip), a zip, an http(s)
 * URL of a zip, or nothing: the task's public zip is downloaded into the cache through `hub.ts`,
 * hash-checked against the SHA-256 Hugging Face publishes for it. MRPC is not hosted as a GLUE zip:
 * it is built, as GLUE's download script and Hugging Face do, from SentEval's
 * msr_paraphrase_train.txt split by GLUE's mrpc_dev_ids.tsv.
 * @module
 */

import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { download } from "../hub.ts";
import type { Dataset, Example } from "./dataset.ts";
import { readFileOrThrow } from "./dataset.ts";
import { readZipDirectory, readZipMember } from "../../formats/_zip.ts";
import { accuracy, f1Score, matthewsCorrcoef, pearson, spearman } from "./metrics.ts";

/** The GLUE task names, as `--task` takes them. */
export const GLUE_TASKS = ["cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli"] as const;

/** One GLUE task name. */
export type GlueTaskName = typeof GLUE_TASKS[number];

/** A GLUE metric, by Hugging Face `evaluate`'s name. */
export type GlueMetric = "matthews_correlation" | "accuracy" | "f1" | "pearson" | "spearmanr";

/** How one task's files look and are scored. */
export interface GlueTask {
  name: GlueTaskName;
  /** GLUE's folder name inside the zip ("SST-2"). */
  dir: string;
  /** The public zip, and its SHA-256 as Hugging Face's glue dataset_infos.json publishes it. */
  url: string;
  sha256: string;
  /** Whether train/dev files have a header row (all but CoLA). */
  header: boolean;
  /** Column of the text, its pair, and the label: header names, or 0-based indices without a header. */
  text: string;
  pair?: string;
  label: string;
  /** Class names by id in GLUE's order; one name ("score") for STS-B's regression. */
  labels: readonly string[];
  regression: boolean;
  /** Dev sets by name -> file. */
  dev: Record<string, string>;
  /** Metrics on each dev set; the first is the headline. */
  metrics: readonly GlueMetric[];
}

const FB = "https://dl.fbaipublicfiles.com/glue/data";

/** SentEval's MRPC training file and GLUE's dev split ids, with their published SHA-256s. */
export const MRPC_SOURCES = {
  train: {
    url: "https://dl.fbaipublicfiles.com/senteval/senteval_data/msr_paraphrase_train.txt",
    sha256: "60a9b09084528f0673eedee2b69cb941920f0b8cd0eeccefc464a98768457f89",
  },
  devIds: {
    url: `${FB}/mrpc_dev_ids.tsv`,
    sha256: "971d7767d81b997fd9060ade0ec23c4fc31cbb226a55d1bd4a1bac474eb81dc7",
  },
} as const;

const DEV = { dev: "dev.tsv" };
const pairTask = (
  name: GlueTaskName,
  dir: string,
  zip: string,
  sha256: string,
  cols: [string, string, string],
  labels: string[],
  metrics: GlueMetric[] = ["accuracy"],
): GlueTask => ({
  name,
  dir,
  url: `${FB}/${zip}`,
  sha256,
  header: true,
  text: cols[0],
  pair: cols[1],
  label: cols[2],
  labels,
  regression: false,
  dev: DEV,
  metrics,
});

/** Every task's layout, labels, dev sets and metrics. */
export const GLUE: Readonly<Record<GlueTaskName, GlueTask>> = {
  cola: {
    name: "cola",
    dir: "CoLA",
    url: `${FB}/CoLA.zip`,
    sha256: "f212fcd832b8f7b435fb991f101abf89f96b933ab400603bf198960dfc32cbff",
    header: false,
    text: "3",
    label: "1",
    labels: ["unacceptable", "acceptable"],
    regression: false,
    dev: DEV,
    metrics: ["matthews_correlation"],
  },
  sst2: {
    name: "sst2",
    dir: "SST-2",
    url: `${FB}/SST-2.zip`,
    sha256: "d67e16fb55739c1b32cdce9877596db1c127dc322d93c082281f64057c16deaa",
    header: true,
    text: "sentence",
    label: "label",
    labels: ["negative", "positive"],
    regression: false,
    dev: DEV,
    metrics: ["accuracy"],
  },
  mrpc: {
    ...pairTask("mrpc", "MRPC", "", "", ["#1 String", "#2 String", "Quality"], [
      "not_equivalent",
      "equivalent",
    ], ["f1", "accuracy"]),
    url: MRPC_SOURCES.train.url,
    sha256: MRPC_SOURCES.train.sha256,
  },
  stsb: {
    ...pairTask(
      "stsb",
      "STS-B",
      "STS-B.zip",
      "e60a6393de5a8b5b9bac5020a1554b54e3691f9d600b775bd131e613ac179c85",
      ["sentence1", "sentence2", "score"],
      ["score"],
      ["pearson", "spearmanr"],
    ),
    regression: true,
  },
  qqp: pairTask(
    "qqp",
    "QQP",
    "QQP-clean.zip",
    "40e7c862c04eb26ee04b67fd900e76c45c6ba8e6d8fab4f8f1f8072a1a3fbae0",
    ["question1", "question2", "is_duplicate"],
    ["not_duplicate", "duplicate"],
    ["f1", "accuracy"],
  ),
  mnli: {
    ...pairTask(
      "mnli",
      "MNLI",
      "MNLI.zip",
      "e7c1d896d26ed6caf700110645df426cc2d8ebf02a5ab743d5a5c68ac1c83633",
      ["sentence1", "sentence2", "gold_label"],
      ["entailment", "neutral", "contradiction"],
    ),
    dev: { dev_matched: "dev_matched.tsv", dev_mismatched: "dev_mismatched.tsv" },
  },
  qnli: pairTask(
    "qnli",
    "QNLI",
    "QNLIv2.zip",
    "e634e78627a29adaecd4f955359b22bf5e70f2cbd93b493f2d624138a0c0e5f5",
    ["question", "sentence", "label"],
    ["entailment", "not_entailment"],
  ),
  rte: pairTask(
    "rte",
    "RTE",
    "RTE.zip",
    "6bf86de103ecd335f3441bd43574d23fef87ecc695977a63b82d5efb206556ee",
    ["sentence1", "sentence2", "label"],
    ["entailment", "not_entailment"],
  ),
  wnli: pairTask(
    "wnli",
    "WNLI",
    "WNLI.zip",
    "ae0e8e4d16f4d46d4a0a566ec7ecceccfd3fbfaa4a7a4b4e02848c0f2561ac46",
    ["sentence1", "sentence2", "label"],
    ["not_entailment", "entailment"],
  ),
};

/**
 * The task of a `--task` name.
 * @throws {RangeError} for an unknown name, listing the nine.
 * @example
 * ```ts
 * import { glueTask } from "./glue.ts";
 * glueTask("mnli").labels; // ["entailment", "neutral", "contradiction"]
 * ```
 */
export function glueTask(name: string): GlueTask {
  const task = (GLUE as Record<string, GlueTask>)[name.toLowerCase()];
  if (!task || !Object.hasOwn(GLUE, name.toLowerCase())) {
    throw new RangeError(`--task "${name}" is unknown; the GLUE tasks are ${GLUE_TASKS.join(", ")}`);
  }
  return task;
}

/** Rows a file's reader skipped (too few cells for the task's columns, or an empty class label). */
export interface SkippedRows {
  /** The file, as named in examples' `source`. */
  file: string;
  /** 1-based line numbers. */
  lines: number[];
}

/** What {@linkcode loadGlue} returns. */
export interface GlueSplits {
  task: GlueTask;
  /** train.tsv (for MRPC from a download: msr_paraphrase_train.txt minus the dev ids). */
  train: Dataset;
  /** The dev set(s) by name: `dev`, or MNLI's `dev_matched` and `dev_mismatched`. */
  dev: Record<string, Dataset>;
  /** Rows skipped as GLUE's readers skip them, per file (files with none are left out). */
  skipped: SkippedRows[];
}

/** Options of {@linkcode loadGlue}. */
export interface GlueOptions {
  /** Download cache (see hub.ts). */
  cacheDir?: string;
  /** The fetch used for downloads (tests). */
  fetch?: typeof fetch;
  /** Download progress. */
  onProgress?: (done: number, total: number | null) => void;
  /** Read only the dev set(s) (evaluation); `train` is then empty. @default false */
  devOnly?: boolean;
}

/** A place to read named files from: a folder, or a zip's members under a prefix. */
interface FileSource {
  describe: string;
  has(name: string): Promise<boolean>;
  read(name: string): Promise<{ bytes: Uint8Array; file: string }>;
}

/**
 * Loads a GLUE task's train and dev sets.
 * @param taskName One of {@linkcode GLUE_TASKS}.
 * @param source A folder, a zip, an http(s) URL of a zip, or undefined to download the public files.
 * @param options The download cache and fetch.
 * @returns The train and dev data sets with GLUE's labels, and the rows skipped per file.
 * @throws {RangeError} for an unknown task or a bad row (naming file and line);
 *   {@linkcode Deno.errors.NotFound} when the source lacks the task's files (naming what it holds);
 *   `DownloadError` when a download fails.
 * @example
 * ```ts
 * import { loadGlue } from "./glue.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/train.tsv`, "sentence\tlabel\na fine film \t1\na dull film \t0\n");
 * await Deno.writeTextFile(`${dir}/dev.tsv`, "sentence\tlabel\nfine \t1\n");
 * const sst2 = await loadGlue("sst2", dir);
 * console.log(sst2.train.labels, sst2.dev.dev.examples.length); // ["negative", "positive"] 1
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function loadGlue(
  taskName: string,
  source?: string | URL,
  options: GlueOptions = {},
): Promise<GlueSplits> {
  const task = glueTask(taskName);
  const skipped: SkippedRows[] = [];
  const files = source === undefined ? null : await openSource(task, source, options);
  if (task.name === "mrpc" && (files === null || !(await files.has("train.tsv")))) {
    return await loadMrpcOriginal(task, files, options, skipped);
  }
  const from = files ?? await openSource(task, await downloadTask(task, options), options);
  const read = async (name: string, split: string) => {
    const { bytes, file } = await from.read(name);
    return parseGlueTsv(task, bytes, file, `${task.name}/${split}`, skipped);
  };
  const train = options.devOnly
    ? { name: `${task.name}/train`, labels: [...task.labels], examples: [] }
    : await read("train.tsv", "train");
  const dev: Record<string, Dataset> = {};
  for (const [split, file] of Object.entries(task.dev)) dev[split] = await read(file, split);
  return { task, train, dev, skipped };
}

async function downloadTask(task: GlueTask, options: GlueOptions): Promise<string> {
  return await download(task.url, {
    cacheDir: options.cacheDir,
    sha256: task.sha256,
    fetch: options.fetch,
    onProgress: options.onProgress,
    hint: `download ${basename(new URL(task.url).pathname)} yourself and pass --data <its path or folder>`,
  });
}

/** MRPC from SentEval's msr_paraphrase_train.txt and GLUE's dev ids (downloaded, or in `files`). */
async function loadMrpcOriginal(
  task: GlueTask,
  files: FileSource | null,
  options: GlueOptions,
  skipped: SkippedRows[],
): Promise<GlueSplits> {
  let trainBytes: { bytes: Uint8Array; file: string };
  let idBytes: { bytes: Uint8Array; file: string };
  if (files) {
    const idsName = (await files.has("mrpc_dev_ids.tsv")) ? "mrpc_dev_ids.tsv" : "dev_ids.tsv";
    if (!(await files.has("msr_paraphrase_train.txt")) || !(await files.has(idsName))) {
      throw new Deno.errors.NotFound(
        `${files.describe} has neither MRPC's train.tsv and dev.tsv nor msr_paraphrase_train.txt and ` +
          `mrpc_dev_ids.tsv; pass a folder or zip with one of these, or leave out --data to download them`,
      );
    }
    trainBytes = await files.read("msr_paraphrase_train.txt");
    idBytes = await files.read(idsName);
  } else {
    const get = async (s: { url: string; sha256: string }) => {
      const path = await download(s.url, {
        cacheDir: options.cacheDir,
        sha256: s.sha256,
        fetch: options.fetch,
        onProgress: options.onProgress,
        hint:
          "download msr_paraphrase_train.txt and mrpc_dev_ids.tsv yourself and pass --data <their folder>",
      });
      return { bytes: await readFileOrThrow(path, "MRPC file"), file: basename(path) };
    };
    trainBytes = await get(MRPC_SOURCES.train);
    idBytes = await get(MRPC_SOURCES.devIds);
  }
  const devIds = new Set<string>();
  for (const { cells } of tsvLines(idBytes.bytes, idBytes.file)) {
    if (cells.length >= 2) devIds.add(`${cells[0]}\t${cells[1]}`);
  }
  const all = parseGlueTsv(task, trainBytes.bytes, trainBytes.file, "mrpc/train", skipped, true);
  const inDev = (e: Example & { ids?: string }) => devIds.has(e.ids!);
  const strip = ({ ids: _, ...e }: Example & { ids?: string }): Example => e;
  const rows = all.examples as (Example & { ids?: string })[];
  return {
    task,
    train: { ...all, examples: rows.filter((e) => !inDev(e)).map(strip) },
    dev: { dev: { ...all, name: "mrpc/dev", examples: rows.filter(inDev).map(strip) } },
    skipped,
  };
}

async function openSource(task: GlueTask, source: string | URL, options: GlueOptions): Promise<FileSource> {
  const text = source instanceof URL ? source.href : source;
  if (/^https?:\/\//i.test(text)) {
    const path = await download(text, {
      cacheDir: options.cacheDir,
      fetch: options.fetch,
      onProgress: options.onProgress,
      hint: `download the ${task.dir} zip yourself and pass its path`,
    });
    return zipSource(task, path);
  }
  const path = text.startsWith("file:") ? fileURLToPath(text) : text;
  const info = await Deno.stat(path).catch(() => null);
  if (info === null) {
    throw new Deno.errors.NotFound(
      `GLUE ${task.dir} data "${path}" not found; pass a folder with train.tsv, the task's zip, or leave out --data to download it`,
    );
  }
  if (info.isFile) return zipSource(task, path);
  // A folder: the files themselves, a <Task>/ folder, or the task's zip.
  for (const dir of [path, join(path, task.dir)]) {
    const isFile = async (name: string) =>
      (await Deno.stat(join(dir, name)).catch(() => null))?.isFile ?? false;
    if ((await isFile("train.tsv")) || (await isFile("msr_paraphrase_train.txt"))) {
      return {
        describe: `Folder "${dir}"`,
        has: isFile,
        read: async (name) => ({
          bytes: await readFileOrThrow(join(dir, name), `GLUE ${task.dir} file`),
          file: join(dir, name),
        }),
      };
    }
  }
  const zipName = basename(new URL(task.url).pathname);
  const zip = join(path, zipName);
  if ((await Deno.stat(zip).catch(() => null))?.isFile) return zipSource(task, zip);
  throw new Deno.errors.NotFound(
    `Folder "${path}" holds neither train.tsv, ${task.dir}/train.tsv nor ${zipName}; pass the task's folder or zip`,
  );
}

async function zipSource(task: GlueTask, path: string): Promise<FileSource> {
  const bytes = await readFileOrThrow(path, `GLUE ${task.dir} zip`);
  const members = [...readZipDirectory(bytes, path).keys()]
    .filter((n) => !n.endsWith("/") && !n.startsWith("__MACOSX/"));
  // The task's files sit at the root or in one folder (GLUE's zips use <Task>/).
  const marker = members.find((n) => n === `${task.dir}/train.tsv`) ??
    members.find((n) => /(^|\/)train\.tsv$/.test(n)) ??
    members.find((n) => /(^|\/)msr_paraphrase_train\.txt$/.test(n));
  if (marker === undefined) {
    throw new Deno.errors.NotFound(
      `Zip "${path}" has no train.tsv for GLUE ${task.dir}; it holds ${
        members.slice(0, 8).join(", ")
      }. Check that it is the task's zip`,
    );
  }
  const prefix = marker.slice(0, marker.lastIndexOf("/") + 1);
  return {
    describe: `Zip "${path}"`,
    has: (name) => Promise.resolve(members.includes(prefix + name)),
    read: (name) =>
      Promise.resolve({
        bytes: readZipMember(bytes, prefix + name, path),
        file: `${basename(path)}/${prefix}${name}`,
      }),
  };
}

/**
 * Lines of a TSV as GLUE's Python readers see them: a leading UTF-8 BOM dropped, `\r\n`, `\r` and
 * `\n` as line ends (Python's universal newlines), tabs splitting cells, no quoting, blank lines
 * left out. Each line is decoded on its own, so a huge file never becomes one string.
 * @throws {TypeError} for invalid UTF-8, naming the file and line.
 */
export function* tsvLines(bytes: Uint8Array, file: string): Generator<{ line: number; cells: string[] }> {
  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  let start = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  let line = 1;
  for (let i = start; i <= bytes.length; i++) {
    const b = i < bytes.length ? bytes[i] : 0x0a;
    if (b !== 0x0a && b !== 0x0d) continue;
    if (i > start) {
      let text: string;
      try {
        text = decoder.decode(bytes.subarray(start, i));
      } catch {
        throw new TypeError(`"${file}" line ${line}: invalid UTF-8; re-save the file as UTF-8`);
      }
      if (text.trim() !== "") yield { line, cells: text.split("\t") };
    }
    if (b === 0x0d && bytes[i + 1] === 0x0a) i++;
    start = i + 1;
    line++;
  }
}

/**
 * Parses one GLUE file of `task` into a data set named `name`; skipped rows go into `skipped`.
 * `keepIds` records MRPC's "#1 ID\t#2 ID" on each example as `ids` (for the dev split).
 */
function parseGlueTsv(
  task: GlueTask,
  bytes: Uint8Array,
  file: string,
  name: string,
  skipped: SkippedRows[],
  keepIds = false,
): Dataset {
  const lines = tsvLines(bytes, file);
  let index: (column: string) => number;
  if (task.header) {
    const first = lines.next();
    if (first.done) throw new RangeError(`"${file}" is empty; expected a header row and examples`);
    const header = first.value.cells.map((c) => c.trim());
    index = (column) => {
      const i = header.indexOf(column);
      if (i < 0) {
        throw new RangeError(
          `"${file}" has no column "${column}" (GLUE ${task.dir} layout); its header names ${
            header.map((h) => `"${h}"`).join(", ")
          }`,
        );
      }
      return i;
    };
  } else index = Number;
  const textAt = index(task.text);
  const pairAt = task.pair === undefined ? -1 : index(task.pair);
  const labelAt = index(task.label);
  const idsAt = keepIds ? [index("#1 ID"), index("#2 ID")] : [];
  const needed = Math.max(textAt, pairAt, labelAt, ...idsAt) + 1;
  const skip: number[] = [];
  const examples: Example[] = [];
  for (const { line, cells } of lines) {
    const where = `"${file}" line ${line}`;
    if (cells.length < needed) {
      // GLUE's DictReader gives None for missing cells and the row is dropped; headerless CoLA
      // rows are indexed directly, where a short row is an error.
      if (!task.header) {
        throw new RangeError(`${where}: expected ${needed} tab-separated cells, got ${cells.length}`);
      }
      skip.push(line);
      continue;
    }
    const raw = cells[labelAt];
    let label: number;
    if (task.regression) {
      label = raw.trim() === "" ? NaN : Number(raw);
      if (!Number.isFinite(label)) {
        throw new RangeError(
          `${where}: ${task.label} "${raw}" is not a number; GLUE ${task.dir} scores are floats`,
        );
      }
    } else {
      if (raw === "") {
        skip.push(line); // GLUE's reader drops rows with an empty label.
        continue;
      }
      label = task.labels.indexOf(raw);
      if (label < 0 && /^\s*[+-]?\d+\s*$/.test(raw)) label = Number(raw);
      if (!(Number.isInteger(label) && label >= 0 && label < task.labels.length)) {
        throw new RangeError(
          `${where}: ${task.label} "${raw}" is not a GLUE ${task.dir} label; expected one of ${
            task.labels.map((l, i) => `${i} or "${l}"`).join(", ")
          }`,
        );
      }
    }
    const example: Example & { ids?: string } = { text: cells[textAt], label, source: `${file}:${line}` };
    if (pairAt >= 0) example.textPair = cells[pairAt];
    if (keepIds) example.ids = `${cells[idsAt[0]]}\t${cells[idsAt[1]]}`;
    examples.push(example);
  }
  if (skip.length) skipped.push({ file, lines: skip });
  if (examples.length === 0) {
    throw new RangeError(`"${file}" has no examples; check that it is GLUE's ${task.dir} file`);
  }
  return { name, labels: [...task.labels], examples };
}

/** Predictions and gold values of one evaluated set. */
export interface ScoredSet {
  predictions: ArrayLike<number>;
  gold: ArrayLike<number>;
}

/** A task's GLUE figures: per dev set, each metric; and the headline. */
export interface GlueScores {
  task: GlueTaskName;
  /** The metric GLUE ranks the task by, and the set it is read from. */
  headline: { metric: GlueMetric; set: string; value: number };
  /** Metric values by dev set name. */
  sets: Record<string, Partial<Record<GlueMetric, number>>>;
}

/**
 * The task's GLUE metrics on each dev set: CoLA Matthews correlation; SST-2, QNLI, RTE, WNLI
 * accuracy; MRPC and QQP F1 (positive class 1) and accuracy; STS-B Pearson and Spearman; MNLI
 * accuracy on dev_matched and dev_mismatched. The headline is the first metric on the first set.
 * @example
 * ```ts
 * import { glueScores } from "./glue.ts";
 * const s = glueScores("mrpc", { dev: { predictions: [1, 0, 1, 1], gold: [1, 0, 0, 1] } });
 * console.log(s.headline.metric, s.sets.dev.accuracy); // f1 0.75
 * ```
 */
export function glueScores(taskName: string, sets: Record<string, ScoredSet>): GlueScores {
  const task = glueTask(taskName);
  const out: GlueScores["sets"] = {};
  for (const [name, { predictions: p, gold: g }] of Object.entries(sets)) {
    const values: Partial<Record<GlueMetric, number>> = {};
    for (const metric of task.metrics) {
      values[metric] = metric === "accuracy"
        ? accuracy(p, g)
        : metric === "f1"
        ? f1Score(p, g)
        : metric === "matthews_correlation"
        ? matthewsCorrcoef(p, g)
        : metric === "pearson"
        ? pearson(p, g)
        : spearman(p, g);
    }
    out[name] = values;
  }
  const first = Object.keys(task.dev).find((s) => s in out) ?? Object.keys(out)[0];
  if (first === undefined) throw new RangeError(`glueScores(): no evaluated sets for ${task.dir}`);
  const metric = task.metrics[0];
  return { task: task.name, headline: { metric, set: first, value: out[first][metric]! }, sets: out };
}

const METRIC_NAMES: Record<GlueMetric, string> = {
  matthews_correlation: "Matthews correlation",
  accuracy: "accuracy",
  f1: "F1",
  pearson: "Pearson",
  spearmanr: "Spearman",
};

/**
 * One line per dev set, the headline named: `GLUE MRPC dev: F1 0.881 (headline), accuracy 0.838`.
 */
export function formatGlueScores(scores: GlueScores): string[] {
  const task = glueTask(scores.task);
  return Object.entries(scores.sets).map(([set, values]) => {
    const parts = Object.entries(values).map(([m, v]) =>
      `${METRIC_NAMES[m as GlueMetric]} ${Number.isNaN(v) ? "NaN" : v!.toFixed(4)}${
        set === scores.headline.set && m === scores.headline.metric ? " (headline)" : ""
      }`
    );
    return `GLUE ${task.dir} ${set}: ${parts.join(", ")}`;
  });
}
