/**
 * Command-line flags from one table, shared by train, eval, export, bench and demo: kebab-case names
 * (run_glue's snake_case spellings are accepted too), typed and range-checked values, repeatable flags,
 * `-h`/`--help`, `--version`, and usage errors that name the flag, the value and what is accepted,
 * with the nearest known flag suggested for a typo. Exit code 2 for every usage error.
 * @module
 */

/** The package version, printed by `--version` (tests/version_test.ts keeps it equal to deno.json's). */
export const VERSION = "0.1.0";

/** One flag. */
export interface Flag {
  type: "string" | "number" | "int" | "boolean";
  help: string;
  default?: string | number | boolean;
  /** Value name in --help. */
  value?: string;
  /** The only values accepted (strings). */
  choices?: readonly string[];
  /** Inclusive bounds of a number. */
  min?: number;
  max?: number;
  /** Exclusive bounds of a number (`above: 0` is "> 0"). */
  above?: number;
  below?: number;
  /** May be given several times; the value is then an array (empty when absent). */
  multiple?: boolean;
}

/** Parsed flag values, by flag name. */
export type FlagValues = Record<string, string | number | boolean | string[] | undefined>;

/** Thrown for bad command lines; the CLI prints the message and exits with code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** What a flag accepts, in words: "an integer >= 1", "a number in [0, 1)", "one of a, b". */
export function accepted(f: Flag): string {
  if (f.choices) return `one of ${f.choices.join(", ")}`;
  if (f.type === "boolean") return "no value";
  if (f.type === "string") return `a ${f.value ?? "value"}`;
  const what = f.type === "int" ? "an integer" : "a number";
  const lo = f.min !== undefined
    ? ["[", f.min] as const
    : f.above !== undefined
    ? ["(", f.above] as const
    : null;
  const hi = f.max !== undefined
    ? ["]", f.max] as const
    : f.below !== undefined
    ? [")", f.below] as const
    : null;
  if (lo && hi) return `${what} in ${lo[0]}${lo[1]}, ${hi[1]}${hi[0]}`;
  if (lo) return `${what} ${lo[0] === "[" ? ">=" : ">"} ${lo[1]}`;
  if (hi) return `${what} ${hi[0] === "]" ? "<=" : "<"} ${hi[1]}`;
  return what;
}

/** run_glue.py / TrainingArguments spellings -> our flag, for suggestions. */
const HF_NAMES: Record<string, string> = {
  "num-train-epochs": "epochs",
  "learning-rate": "lr",
  "per-device-train-batch-size": "batch-size",
  "per-device-eval-batch-size": "eval-batch-size",
  "max-seq-length": "max-length",
  "output-dir": "output",
  "model-name-or-path": "model",
  "train-file": "data",
  "validation-file": "validation-data",
  "test-file": "test-data",
  "adam-epsilon": "eps",
  "gradient-accumulation-steps": "grad-accum",
  "lr-scheduler-type": "lr-scheduler",
  "task-name": "task",
  "resume-from-checkpoint": "resume",
  "hub-token": "token",
};

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length];
}

/** The known flag nearest to `name` (a typo, a prefix, or run_glue's name for it), if any is close. */
export function nearestFlag(name: string, known: string[]): string | undefined {
  const hf = HF_NAMES[name];
  if (hf && known.includes(hf)) return hf;
  const prefixed = known.filter((k) => k.startsWith(name) || name.startsWith(k));
  if (prefixed.length === 1) return prefixed[0];
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = editDistance(name, k);
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return bestDistance <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

/** The --help text. */
export function helpText(usage: string, flags: Record<string, Flag>): string {
  const rows = Object.entries(flags).map(([name, f]) => {
    const value = f.choices ? f.choices.join("|") : f.value ?? f.type;
    const left = `  --${name}${f.type === "boolean" ? "" : ` <${value}>`}`;
    const shown = typeof f.default === "number" && f.default !== 0 && Math.abs(f.default) < 1e-3
      ? f.default.toExponential()
      : f.default;
    const def = f.default === undefined ? "" : ` (default: ${shown})`;
    const more = f.multiple ? " (repeatable)" : "";
    return `${left.padEnd(30)} ${f.help}${def}${more}`;
  });
  return `${usage}\n\nOptions:\n${rows.join("\n")}\n${"  -h, --help".padEnd(30)} Show this help\n${
    "  --version".padEnd(30)
  } Show the package and Deno versions\n`;
}

/** `bert-webgpu 0.1.0 (deno 2.9.6, v8 ..., typescript ...)`. */
export function versionText(): string {
  const v = Deno.version;
  return `bert-webgpu ${VERSION} (deno ${v.deno}, v8 ${v.v8}, typescript ${v.typescript})`;
}

/** A value that looks like a negative number, so `--lr -1` passes -1 to --lr and is range-checked. */
const NEGATIVE_NUMBER = /^-(\d|\.\d|Infinity$)/;

function convert(name: string, f: Flag, raw: string): string | number {
  const bad = () => new UsageError(`--${name} "${raw}" is not accepted: expected ${accepted(f)}`);
  if (f.choices) {
    if (!f.choices.includes(raw)) throw bad();
    return raw;
  }
  if (f.type === "string") {
    if (raw === "") throw bad();
    return raw;
  }
  const n = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(n) || (f.type === "int" && !Number.isInteger(n))) throw bad();
  if (
    (f.min !== undefined && n < f.min) || (f.max !== undefined && n > f.max) ||
    (f.above !== undefined && !(n > f.above)) || (f.below !== undefined && !(n < f.below))
  ) throw bad();
  return n;
}

/**
 * Parses `args` against `flags`: `--name value`, `--name=value`, `--snake_name value`, booleans
 * without a value, repeatable flags into arrays. Throws {@linkcode UsageError} naming the flag, the
 * value and what is accepted; an unknown flag names the nearest known one.
 */
export function parseFlags(
  args: string[],
  flags: Record<string, Flag>,
): { values: FlagValues; help: boolean; version: boolean } {
  const values: FlagValues = {};
  let help = false;
  let version = false;
  const known = Object.keys(flags);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "-h" || arg === "--help") {
      help = true;
      continue;
    }
    if (arg === "--version") {
      version = true;
      continue;
    }
    if (!arg.startsWith("--") || arg === "--") {
      throw new UsageError(
        `Unexpected argument "${arg}": flags look like --name value (run with --help to list them)`,
      );
    }
    const eq = arg.indexOf("=");
    const given = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    const name = given.replaceAll("_", "-");
    const f = flags[name];
    if (!f) {
      const near = nearestFlag(name, known);
      throw new UsageError(
        `Unknown flag --${given}${
          near ? `: did you mean --${near}?` : ""
        } (run with --help to list the flags)`,
      );
    }
    if (f.type === "boolean") {
      if (eq >= 0) throw new UsageError(`--${name} takes no value, got "${arg.slice(eq + 1)}"`);
      values[name] = true;
      continue;
    }
    let raw: string | undefined;
    if (eq >= 0) raw = arg.slice(eq + 1);
    else {
      const next = args[i + 1];
      if (next !== undefined && (!next.startsWith("-") || NEGATIVE_NUMBER.test(next))) {
        raw = next;
        i++;
      }
    }
    if (raw === undefined) throw new UsageError(`--${name} needs a value: expected ${accepted(f)}`);
    const value = convert(name, f, raw);
    if (f.multiple) values[name] = [...((values[name] as string[] | undefined) ?? []), String(value)];
    else values[name] = value;
  }
  for (const [name, f] of Object.entries(flags)) {
    if (values[name] === undefined) values[name] = f.multiple ? [] : f.default;
  }
  return { values, help, version };
}

/**
 * Checks that `path` (given with `--flag`) exists as the `kind` wanted; otherwise a
 * {@linkcode UsageError} naming the flag, the path and `expected` ("a model folder with config.json").
 */
export async function checkPath(
  flag: string,
  path: string,
  kind: "file" | "folder" | "any",
  expected: string,
): Promise<Deno.FileInfo> {
  const info = await Deno.stat(path).catch((e) => {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return null;
    throw e;
  });
  if (!info) throw new UsageError(`--${flag} "${path}": no such file or folder; expected ${expected}`);
  if (kind === "file" && !info.isFile) {
    throw new UsageError(`--${flag} "${path}" is a folder; expected ${expected}`);
  }
  if (kind === "folder" && !info.isDirectory) {
    throw new UsageError(`--${flag} "${path}" is a file, not a folder; expected ${expected}`);
  }
  return info;
}

/** `name=path` (or a bare path, named after the file) of a repeatable data flag. */
export function namedPath(flag: string, value: string): { name: string; path: string } {
  const m = value.match(/^([A-Za-z][\w-]*)=(.+)$/);
  if (m && !/^[A-Za-z]+:\/\//.test(value)) return { name: m[1], path: m[2] };
  if (value.includes("=") && !/^https?:\/\//.test(value)) {
    throw new UsageError(`--${flag} "${value}" is not accepted: expected name=path or a path`);
  }
  const base = value.split(/[\\/]/).pop()!.replace(/\.[^.]*$/, "");
  return { name: base || flag, path: value };
}

/**
 * The shell of every command: parses `args`, prints --help or --version, runs `body`, and exits with
 * its code (0 by default), 2 for a {@linkcode UsageError}, 1 for any other error (its message on stderr).
 */
export async function runCli(
  args: string[],
  usage: string,
  flags: Record<string, Flag>,
  body: (values: FlagValues) => Promise<number | void>,
): Promise<never> {
  Deno.exit(await cliExitCode(args, usage, flags, body));
}

/** {@linkcode runCli} without the exit: returns the exit code (tests). */
export async function cliExitCode(
  args: string[],
  usage: string,
  flags: Record<string, Flag>,
  body: (values: FlagValues) => Promise<number | void>,
): Promise<number> {
  try {
    const { values, help, version } = parseFlags(args, flags);
    if (help) {
      console.log(helpText(usage, flags));
      return 0;
    }
    if (version) {
      console.log(versionText());
      return 0;
    }
    return (await body(values)) ?? 0;
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    return e instanceof UsageError ? 2 : 1;
  }
}
