/**
 * A small seeded mutation fuzzer for file parsers. Each case takes one seed input, applies one to
 * three mutations (bit flips, byte overwrites, truncation, insertions, deletions, duplicated chunks,
 * and little-endian integer edits that hit length and offset fields, half of them at the start where
 * headers live), and runs the parser on it under a per-case name. The parser must either return or
 * throw a SyntaxError, RangeError or TypeError whose message contains that name, within the time
 * limit. Anything else (a crash, a bare Error, an engine TypeError such as "Cannot read properties of
 * undefined", which never names the file, or a slow case) fails the run with the case number and its
 * mutations, which are reproducible from the seed.
 * @module
 */

import { Rng } from "../kernels/random.ts";

/** Options for {@linkcode fuzzParser}. */
export interface FuzzOptions {
  /** Number of mutated inputs to try. */
  cases: number;
  /** Seed of the mutation stream; the same seed gives the same cases. */
  seed: number;
  /** Most milliseconds one case may take (checked after it returns; a true hang stops the run). */
  timeLimitMs: number;
}

/** What a fuzz run saw. */
export interface FuzzReport {
  cases: number;
  /** Cases the parser accepted. */
  parsed: number;
  /** Cases rejected with an allowed error, by error class name. */
  rejected: Record<string, number>;
  /** The slowest case, in milliseconds. */
  slowestMs: number;
}

const ALLOWED: readonly (new (...args: never[]) => Error)[] = [SyntaxError, RangeError, TypeError];
/** Values that tend to sit on boundaries of length and offset checks. */
const INTERESTING = [0, 1, 2, 7, 8, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0xffff, 0x7fffffff, 0xffffffff];

/**
 * Fuzzes `parse` with mutations of `seedInputs` and returns counts; throws on the first case that
 * breaks the contract described in the module doc.
 * @example
 * ```ts
 * import { fuzzParser } from "./fuzz.ts";
 * const report = fuzzParser("json", [new TextEncoder().encode('{"a":[1,2]}')], (bytes, name) => {
 *   try {
 *     return JSON.parse(new TextDecoder().decode(bytes));
 *   } catch (e) {
 *     throw new SyntaxError(`Cannot parse "${name}": ${(e as Error).message}`);
 *   }
 * }, { cases: 100, seed: 1, timeLimitMs: 50 });
 * console.assert(report.cases === 100);
 * ```
 */
export function fuzzParser(
  name: string,
  seedInputs: readonly Uint8Array[],
  parse: (bytes: Uint8Array, name: string) => unknown,
  options: FuzzOptions,
): FuzzReport {
  if (seedInputs.length === 0) throw new RangeError(`fuzzParser("${name}") needs at least one seed input`);
  const rng = new Rng(options.seed);
  const report: FuzzReport = { cases: 0, parsed: 0, rejected: {}, slowestMs: 0 };
  for (let i = 0; i < options.cases; i++) {
    const seedIndex = rng.int(seedInputs.length);
    let bytes = seedInputs[seedIndex];
    const steps: string[] = [];
    for (let m = 1 + rng.int(3); m > 0; m--) {
      const [next, what] = mutate(bytes, rng);
      bytes = next;
      steps.push(what);
    }
    const caseName = `${name}-fuzz-case-${i}`;
    const where = () => `${caseName} (seed input ${seedIndex}, ${steps.join(", ")})`;
    const start = performance.now();
    let error: unknown = null;
    try {
      parse(bytes, caseName);
    } catch (e) {
      error = e;
    }
    const ms = performance.now() - start;
    report.slowestMs = Math.max(report.slowestMs, ms);
    if (ms > options.timeLimitMs) {
      throw new Error(
        `Fuzz case ${where()} took ${ms.toFixed(1)} ms, over the ${options.timeLimitMs} ms limit`,
      );
    }
    report.cases++;
    if (error === null) {
      report.parsed++;
      continue;
    }
    const e = error as Error;
    if (!ALLOWED.some((cls) => e instanceof cls)) {
      throw new Error(`Fuzz case ${where()} threw ${e?.constructor?.name}: ${e?.message ?? String(e)}`);
    }
    if (!e.message.includes(caseName)) {
      throw new Error(`Fuzz case ${where()} threw a ${e.name} that does not name the file: ${e.message}`);
    }
    report.rejected[e.name] = (report.rejected[e.name] ?? 0) + 1;
  }
  return report;
}

/** One random mutation and its description. */
function mutate(input: Uint8Array, rng: Rng): [Uint8Array, string] {
  const n = input.length;
  const at = rng.int(n + 1);
  switch (rng.int(7)) {
    case 0: { // flip one bit
      if (n === 0) break;
      const out = input.slice();
      const bit = rng.int(8);
      out[at % n] ^= 1 << bit;
      return [out, `flip bit ${bit} of byte ${at % n}`];
    }
    case 1: { // overwrite a byte
      if (n === 0) break;
      const out = input.slice();
      const v = rng.int(2) ? INTERESTING[rng.int(INTERESTING.length)] & 0xff : rng.int(256);
      out[at % n] = v;
      return [out, `set byte ${at % n} to ${v}`];
    }
    case 2: // truncate
      return [input.slice(0, at), `truncate to ${at}`];
    case 3: { // insert random bytes
      const k = 1 + rng.int(16);
      const ins = new Uint8Array(k).map(() => rng.int(256));
      return [concat(input.subarray(0, at), ins, input.subarray(at)), `insert ${k} bytes at ${at}`];
    }
    case 4: { // delete a run
      const k = 1 + rng.int(16);
      return [concat(input.subarray(0, at), input.subarray(at + k)), `delete ${k} bytes at ${at}`];
    }
    case 5: { // duplicate a chunk
      const k = 1 + rng.int(64);
      return [concat(input.subarray(0, at + k), input.subarray(at)), `duplicate ${k} bytes at ${at}`];
    }
    default: { // overwrite a little-endian 1/2/4/8-byte integer, often in the header
      const width = [1, 2, 4, 8][rng.int(4)];
      if (n < width) break;
      const pos = rng.int(2) ? rng.int(Math.min(n - width + 1, 16)) : rng.int(n - width + 1);
      const out = input.slice();
      const dv = new DataView(out.buffer);
      const old = width === 8 ? Number(dv.getBigUint64(pos, true)) : readUint(dv, pos, width);
      const choices = [...INTERESTING, n, n - 1, n + 1, old + 1, old - 1, old * 2, old + 256];
      const v = Math.max(0, choices[rng.int(choices.length)]);
      if (width === 8) dv.setBigUint64(pos, BigInt(Math.min(v, Number.MAX_SAFE_INTEGER)), true);
      else writeUint(dv, pos, width, v % 2 ** (8 * width));
      return [out, `set u${8 * width} at ${pos} to ${v}`];
    }
  }
  return [input.slice(0, Math.max(0, n - 1)), "drop the last byte"];
}

function readUint(dv: DataView, pos: number, width: number): number {
  return width === 1 ? dv.getUint8(pos) : width === 2 ? dv.getUint16(pos, true) : dv.getUint32(pos, true);
}

function writeUint(dv: DataView, pos: number, width: number, v: number): void {
  if (width === 1) dv.setUint8(pos, v);
  else if (width === 2) dv.setUint16(pos, v, true);
  else dv.setUint32(pos, v, true);
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
