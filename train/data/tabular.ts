/**
 * TSV, CSV and JSONL loaders for text classification and regression.
 *
 * - TSV: split on tabs with no quoting (as the GLUE files and their Python readers do: quotes are text).
 * - CSV: RFC 4180 quoting via csv-parse.
 * - JSONL: one JSON object per line; columns are keys.
 *
 * TSV/CSV files with a header row name their columns; a headerless file is addressed by 0-based
 * column index strings ("3"). Labels: integers are class ids as they stand; strings map through
 * `label2id` when given, else through the sorted distinct strings; `regression` reads floats.
 * @module
 */

import { parse as parseCsv } from "npm:csv-parse@7.0.3/sync";
import { decodeUtf8, readFileOrThrow } from "./dataset.ts";
import type { Dataset, Example } from "./dataset.ts";

/** How to read a table. */
export interface TableOptions {
  /** Column (header name, 0-based index string, or JSONL key) holding the text. */
  textColumn: string;
  /** Column holding the second text of a sentence-pair task. */
  textPairColumn?: string;
  /** Column holding the label. */
  labelColumn: string;
  /** Label name -> class id, ids 0..k-1; labels outside it are errors. */
  label2id?: Record<string, number>;
  /** File format. @default from the extension (.tsv/.tab, .csv, .jsonl/.ndjson) */
  format?: "tsv" | "csv" | "jsonl";
  /**
   * Whether the first TSV/CSV row is a header.
   * @default false when every column option is an index string such as "3", else true
   */
  header?: boolean;
  /** Read the label as a float target (one output, num_labels 1). @default false */
  regression?: boolean;
  /** Every row must have exactly this many columns (TSV/CSV). @default the first row's count */
  expectedColumns?: number;
}

interface Row {
  line: number;
  /** Cells by column name (or index string). */
  get(column: string): unknown;
}

const INDEX = /^\d+$/;
const INTEGER = /^-?\d+$/;

/**
 * Reads a data file into a {@linkcode Dataset}; the format comes from the extension unless given.
 * @param path The file (.tsv/.tab, .csv, .jsonl/.ndjson unless `format` says otherwise).
 * @param options Which columns hold the text, its pair and the label, and how to read labels.
 * @returns The data set, named by `path`, each example's source `path:line`.
 * @throws {Deno.errors.NotFound} for a missing file; see {@linkcode parseTable} for the rest.
 * @example
 * ```ts
 * import { loadTable } from "./tabular.ts";
 * const path = await Deno.makeTempFile({ suffix: ".tsv" });
 * await Deno.writeTextFile(path, "sentence\tlabel\nit was great\t1\nit was dull\t0\n");
 * const ds = await loadTable(path, { textColumn: "sentence", labelColumn: "label" });
 * console.log(ds.labels, ds.examples[0].text, ds.examples[0].label); // ["0", "1"] it was great 1
 * await Deno.remove(path);
 * ```
 */
export async function loadTable(path: string, options: TableOptions): Promise<Dataset> {
  const format = options.format ?? formatFromExtension(path);
  const bytes = await readFileOrThrow(path, "data file");
  return parseTable(decodeUtf8(bytes, path), path, { ...options, format });
}

/**
 * Parses a table held in memory. `name` names the source in errors and in `Example.source`.
 * @param text The file's text.
 * @param name Names the source in errors and in each example's `source`.
 * @param options Which columns hold the text, its pair and the label, and how to read labels.
 * @returns The data set.
 * @throws {RangeError} for a wrong column count, a missing column, a label outside the label set or
 *   an empty data set; {@linkcode SyntaxError} for malformed CSV or JSON; {@linkcode TypeError} for a
 *   non-string text. Messages read `"train.tsv" line 12: ...`.
 * @example
 * ```ts
 * import { parseTable } from "./tabular.ts";
 * const ds = parseTable("text,label\ngood,pos\nbad,neg\n", "reviews.csv", {
 *   textColumn: "text",
 *   labelColumn: "label",
 * });
 * ds.labels; // ["neg", "pos"]
 * ds.examples[0].label; // 1
 * ```
 */
export function parseTable(text: string, name: string, options: TableOptions): Dataset {
  const format = options.format ?? formatFromExtension(name);
  // One line ending everywhere, so line numbers agree across parsers.
  text = text.replaceAll("\r\n", "\n");
  const rows = format === "jsonl" ? jsonlRows(text, name) : delimitedRows(text, name, format, options);
  const raw: { text: string; textPair?: string; label: string; line: number }[] = [];
  for (const row of rows) {
    const where = `"${name}" line ${row.line}`;
    const textValue = row.get(options.textColumn);
    if (typeof textValue !== "string") {
      throw new TypeError(
        `${where}: text column "${options.textColumn}" holds ${describe(textValue)}, expected a string`,
      );
    }
    let textPair: string | undefined;
    if (options.textPairColumn !== undefined) {
      const pair = row.get(options.textPairColumn);
      if (typeof pair !== "string") {
        throw new TypeError(
          `${where}: text pair column "${options.textPairColumn}" holds ${describe(pair)}, expected a string`,
        );
      }
      textPair = pair;
    }
    raw.push({
      text: textValue,
      textPair,
      label: labelString(row.get(options.labelColumn), where, options),
      line: row.line,
    });
  }
  if (raw.length === 0) {
    throw new RangeError(`"${name}" has no examples; check that it is the right file and not just a header`);
  }
  const { labels, toId } = labelMapping(raw, name, options);
  const examples: Example[] = raw.map((r) => {
    const example: Example = { text: r.text, label: toId(r.label, r.line), source: `${name}:${r.line}` };
    if (r.textPair !== undefined) example.textPair = r.textPair;
    return example;
  });
  return { examples, labels, name };
}

/**
 * The format implied by a file name's extension.
 * @throws {TypeError} for an unknown extension, suggesting the `format` option.
 * @example
 * ```ts
 * import { formatFromExtension } from "./tabular.ts";
 * formatFromExtension("data/train.jsonl"); // "jsonl"
 * ```
 */
export function formatFromExtension(path: string): "tsv" | "csv" | "jsonl" {
  const ext = path.toLowerCase().match(/\.([a-z]+)$/)?.[1];
  if (ext === "tsv" || ext === "tab") return "tsv";
  if (ext === "csv") return "csv";
  if (ext === "jsonl" || ext === "ndjson") return "jsonl";
  throw new TypeError(
    `Cannot tell the format of "${path}" from its extension; pass format: "tsv", "csv" or "jsonl"`,
  );
}

function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  return `${value === null ? "null" : typeof value} ${JSON.stringify(value)}`;
}

function labelString(value: unknown, where: string, options: TableOptions): string {
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  if (typeof value === "boolean") return String(value);
  if (typeof value !== "string") {
    throw new TypeError(
      `${where}: label column "${options.labelColumn}" holds ${describe(value)}, expected a string or number`,
    );
  }
  if (value.trim() === "") throw new RangeError(`${where}: label column "${options.labelColumn}" is empty`);
  return value.trim();
}

function labelMapping(
  raw: readonly { label: string; line: number }[],
  name: string,
  options: TableOptions,
): { labels: string[]; toId: (label: string, line: number) => number } {
  if (options.regression) {
    return {
      labels: [options.labelColumn],
      toId: (label, line) => {
        const v = Number(label);
        if (!Number.isFinite(v)) {
          throw new RangeError(`"${name}" line ${line}: regression label "${label}" is not a finite number`);
        }
        return v;
      },
    };
  }
  if (options.label2id) {
    const labels = labelsFromLabel2id(options.label2id);
    return {
      labels,
      toId: (label, line) => {
        const id = Object.hasOwn(options.label2id!, label) ? options.label2id![label] : undefined;
        if (id === undefined) {
          throw new RangeError(
            `"${name}" line ${line}: label "${label}" is not in the label set ${
              JSON.stringify(labels)
            }; add it to label2id`,
          );
        }
        return id;
      },
    };
  }
  if (raw.every((r) => INTEGER.test(r.label))) {
    // Integer labels are class ids: names "0".."max".
    let max = 0;
    for (const r of raw) {
      const id = Number(r.label);
      if (id < 0) {
        throw new RangeError(
          `"${name}" line ${r.line}: label ${id} is outside the label set (class ids are 0 or more); pass label2id to map it`,
        );
      }
      max = Math.max(max, id);
    }
    return { labels: Array.from({ length: max + 1 }, (_, i) => String(i)), toId: (label) => Number(label) };
  }
  // Distinct strings in code-unit order (Python's sorted()).
  const labels = [...new Set(raw.map((r) => r.label))].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const ids = new Map(labels.map((l, i) => [l, i]));
  return { labels, toId: (label) => ids.get(label)! };
}

function labelsFromLabel2id(label2id: Record<string, number>): string[] {
  const entries = Object.entries(label2id);
  const labels: string[] = new Array(entries.length);
  for (const [label, id] of entries) {
    if (!Number.isInteger(id) || id < 0 || id >= entries.length || labels[id] !== undefined) {
      throw new RangeError(
        `label2id ${JSON.stringify(label2id)} must map ${entries.length} labels to the distinct ids 0..${
          entries.length - 1
        }; "${label}" maps to ${id}`,
      );
    }
    labels[id] = label;
  }
  return labels;
}

function delimitedRows(text: string, name: string, format: "tsv" | "csv", options: TableOptions): Row[] {
  const records = format === "tsv" ? tsvRecords(text) : csvRecords(text, name);
  const columns = [options.textColumn, options.textPairColumn, options.labelColumn].filter(
    (c): c is string => c !== undefined,
  );
  const header = options.header ?? !columns.every((c) => INDEX.test(c));
  const expected = options.expectedColumns ?? records[0]?.cells.length;
  for (const r of records) {
    if (r.cells.length !== expected) {
      throw new RangeError(`"${name}" line ${r.line}: expected ${expected} columns, got ${r.cells.length}`);
    }
  }
  let index: Map<string, number>;
  let body = records;
  if (header) {
    if (records.length === 0) throw new RangeError(`"${name}" is empty; expected a header row`);
    index = new Map(records[0].cells.map((c, i) => [c.trim(), i]));
    body = records.slice(1);
  } else {
    index = new Map(Array.from({ length: expected ?? 0 }, (_, i) => [String(i), i]));
  }
  for (const c of columns) {
    if (!index.has(c)) {
      const known = [...index.keys()].map((k) => `"${k}"`).join(", ");
      throw new RangeError(
        header
          ? `"${name}" has no column "${c}"; its header names ${known}`
          : `"${name}" has no column ${c}; it has ${expected ?? 0} columns (0-based)`,
      );
    }
  }
  return body.map((r) => ({ line: r.line, get: (column: string) => r.cells[index.get(column)!] }));
}

/** Tab-split lines; blank lines are skipped. */
function tsvRecords(text: string): { cells: string[]; line: number }[] {
  const out: { cells: string[]; line: number }[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() === "") continue;
    out.push({ cells: lines[i].split("\t"), line: i + 1 });
  }
  return out;
}

function csvRecords(text: string, name: string): { cells: string[]; line: number }[] {
  let parsed: { record: string[]; info: { lines: number } }[];
  try {
    parsed = parseCsv(text, {
      info: true,
      relax_column_count: true,
      skip_empty_lines: true,
    }) as unknown as typeof parsed;
  } catch (error) {
    const e = error as Error & { lines?: number };
    throw new SyntaxError(`"${name}" line ${e.lines ?? "?"}: malformed CSV (${e.message})`, { cause: error });
  }
  // info.lines is the line a record ends on; quoted newlines inside it move its start up.
  return parsed.map(({ record, info }) => ({
    cells: record,
    line: info.lines - record.reduce((n, cell) => n + (cell.match(/\n/g)?.length ?? 0), 0),
  }));
}

function jsonlRows(text: string, name: string): Row[] {
  const rows: Row[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() === "") continue;
    let value: unknown;
    try {
      value = JSON.parse(lines[i]);
    } catch (error) {
      throw new SyntaxError(`"${name}" line ${i + 1}: invalid JSON (${(error as Error).message})`, {
        cause: error,
      });
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      throw new SyntaxError(`"${name}" line ${i + 1}: expected a JSON object, got ${describe(value)}`);
    }
    const object = value as Record<string, unknown>;
    const line = i + 1;
    rows.push({
      line,
      get: (column) => {
        if (!Object.hasOwn(object, column)) {
          throw new RangeError(`"${name}" line ${line}: missing key "${column}"`);
        }
        return object[column];
      },
    });
  }
  return rows;
}
