/**
 * The shape every loader returns: labelled examples plus the label names, and the strict UTF-8
 * decoding and file reading they share, so every error names the file (and line) at fault.
 * @module
 */

/** One labelled example. */
export interface Example {
  /** The (first) text. */
  text: string;
  /** The second text of a sentence-pair task (MNLI, MRPC, ...). */
  textPair?: string;
  /** Class id in [0, labels.length), or the target value of a regression task. */
  label: number;
  /** Where the example came from, `"file:line"`, for error messages. */
  source?: string;
}

/** A labelled data set. */
export interface Dataset {
  /** The examples, in file order unless a split says otherwise. */
  examples: Example[];
  /** Label names by class id (`labels[id]`); one name for a regression target. */
  labels: string[];
  /** A human-readable name (usually the file), used in messages. */
  name: string;
}

/**
 * Decodes UTF-8 strictly (a leading BOM is dropped). `name` is used in the error message.
 * @throws {TypeError} on invalid UTF-8, naming the file and the first bad line.
 * @example
 * ```ts
 * import { decodeUtf8 } from "./dataset.ts";
 * decodeUtf8(new TextEncoder().encode("héllo"), "a.txt"); // "héllo"
 * ```
 */
export function decodeUtf8(bytes: Uint8Array, name: string): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    // 0x0A never occurs inside a multi-byte sequence, so decoding line by line finds the bad line.
    const decoder = new TextDecoder("utf-8", { fatal: true });
    let line = 1;
    let start = 0;
    for (let i = 0; i <= bytes.length; i++) {
      if (i < bytes.length && bytes[i] !== 0x0a) continue;
      try {
        decoder.decode(bytes.subarray(start, i));
      } catch {
        throw new TypeError(
          `"${name}" line ${line}: invalid UTF-8; re-save the file as UTF-8`,
        );
      }
      line++;
      start = i + 1;
    }
    throw new TypeError(`"${name}": invalid UTF-8; re-save the file as UTF-8`);
  }
}

/**
 * Reads a whole file. `what` describes it for the error ("data file", "CoLA zip").
 * @throws {Deno.errors.NotFound} when the file does not exist, naming it.
 * @example
 * ```ts ignore
 * import { readFileOrThrow } from "./dataset.ts";
 * const bytes = await readFileOrThrow("train.tsv", "data file");
 * ```
 */
export async function readFileOrThrow(path: string, what: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Deno.errors.NotFound(`Cannot read ${what} "${path}": no such file; check the path`, {
        cause: error,
      });
    }
    throw error;
  }
}
