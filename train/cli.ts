/**
 * Command-line flags from one table: node:util parseArgs (the role of @std/cli), kebab-case names,
 * typed values, defaults shown in --help, and errors that name the flag.
 * @module
 */

import { parseArgs } from "node:util";

/** One flag. */
export interface Flag {
  type: "string" | "number" | "int" | "boolean";
  help: string;
  default?: string | number | boolean;
  /** Value name in --help. */
  value?: string;
}

/** Thrown for bad command lines; the CLI prints the message and exits with code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** The --help text. */
export function helpText(usage: string, flags: Record<string, Flag>): string {
  const rows = Object.entries(flags).map(([name, f]) => {
    const left = `  --${name}${f.type === "boolean" ? "" : ` <${f.value ?? f.type}>`}`;
    const shown = typeof f.default === "number" && f.default !== 0 && Math.abs(f.default) < 1e-3
      ? f.default.toExponential().replace("e-", "e-")
      : f.default;
    const def = f.default === undefined ? "" : ` (default: ${shown})`;
    return `${left.padEnd(30)} ${f.help}${def}`;
  });
  return `${usage}\n\nOptions:\n${rows.join("\n")}\n${"  --help".padEnd(30)} Show this help\n`;
}

/**
 * Parses `args` against `flags`. Unknown flags, missing values and values of the wrong type throw
 * {@linkcode UsageError} naming the flag.
 */
export function parseFlags(
  args: string[],
  flags: Record<string, Flag>,
): { values: Record<string, string | number | boolean | undefined>; help: boolean } {
  const options: Record<string, { type: "string" | "boolean" }> = { help: { type: "boolean" } };
  for (const [name, f] of Object.entries(flags)) {
    options[name] = { type: f.type === "boolean" ? "boolean" : "string" };
  }
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: false, strict: true });
  } catch (e) {
    const msg = (e as Error).message;
    const unknown = msg.match(/Unknown option '([^']+)'/);
    if (unknown) throw new UsageError(`Unknown flag ${unknown[1]}: run with --help to list the flags`);
    const positional = msg.match(/Unexpected argument '([^']+)'/);
    if (positional) {
      throw new UsageError(`Unexpected argument "${positional[1]}": flags look like --name value`);
    }
    throw new UsageError(msg.replace(/^Option '([^']+)'/, "Flag $1"));
  }
  const values: Record<string, string | number | boolean | undefined> = {};
  for (const [name, f] of Object.entries(flags)) {
    const raw = (parsed.values as Record<string, string | boolean | undefined>)[name];
    if (raw === undefined) {
      values[name] = f.default;
      continue;
    }
    if (f.type === "boolean" || f.type === "string") {
      values[name] = raw;
      continue;
    }
    const n = Number(raw);
    if (raw === "" || !Number.isFinite(n) || (f.type === "int" && !Number.isInteger(n))) {
      throw new UsageError(`--${name} must be ${f.type === "int" ? "an integer" : "a number"}, got "${raw}"`);
    }
    values[name] = n;
  }
  return { values, help: Boolean((parsed.values as Record<string, unknown>).help) };
}

/** Parsed flag values, by flag name. */
export type FlagValues = Record<string, string | number | boolean | undefined>;

/**
 * The shell of every command: parses `args`, prints --help, runs `body`, and exits with its code
 * (0 by default), 2 for a {@linkcode UsageError}, 1 for any other error (its message on stderr).
 */
export async function runCli(
  args: string[],
  usage: string,
  flags: Record<string, Flag>,
  body: (values: FlagValues) => Promise<number | void>,
): Promise<never> {
  try {
    const { values, help } = parseFlags(args, flags);
    if (help) {
      console.log(helpText(usage, flags));
      Deno.exit(0);
    }
    Deno.exit((await body(values)) ?? 0);
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    Deno.exit(e instanceof UsageError ? 2 : 1);
  }
}
