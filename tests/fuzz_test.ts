import assert from "node:assert/strict";
import { fuzzParser } from "./fuzz.ts";

const seeds = [new TextEncoder().encode('{"a":[1,2,{"b":"c"}],"d":null}')];

/** A well-behaved parser: JSON, with errors rethrown as SyntaxError naming the file. */
function parseJson(bytes: Uint8Array, name: string): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new SyntaxError(`Cannot parse "${name}": ${(e as Error).message}`);
  }
}

Deno.test("fuzzParser() counts parsed and rejected cases of a well-behaved parser", () => {
  const report = fuzzParser("json", seeds, parseJson, { cases: 500, seed: 1, timeLimitMs: 100 });
  assert.equal(report.cases, 500);
  assert.equal(report.parsed + (report.rejected.SyntaxError ?? 0), 500);
  assert.ok(report.parsed > 0 && report.rejected.SyntaxError > 0, JSON.stringify(report));
});

Deno.test("fuzzParser() is reproducible from its seed", () => {
  const seen = (seed: number) => {
    const inputs: string[] = [];
    fuzzParser("json", seeds, (b) => inputs.push([...b].join(",")), { cases: 50, seed, timeLimitMs: 100 });
    return inputs;
  };
  assert.deepEqual(seen(7), seen(7));
  assert.notDeepEqual(seen(7), seen(8));
});

Deno.test("fuzzParser() fails on an error that does not name the file", () => {
  const anonymous = (bytes: Uint8Array) => JSON.parse(new TextDecoder().decode(bytes));
  assert.throws(
    () => fuzzParser("json", seeds, anonymous, { cases: 200, seed: 1, timeLimitMs: 100 }),
    /does not name the file/,
  );
});

Deno.test("fuzzParser() fails on an error of another class, and on a slow case", () => {
  const bare = (bytes: Uint8Array, name: string) => {
    if (bytes.length !== seeds[0].length) throw new Error(`"${name}" changed length`);
  };
  assert.throws(
    () => fuzzParser("json", seeds, bare, { cases: 200, seed: 1, timeLimitMs: 100 }),
    /threw Error/,
  );
  const slow = () => {
    const until = performance.now() + 5;
    while (performance.now() < until) { /* busy */ }
  };
  assert.throws(
    () => fuzzParser("json", seeds, slow, { cases: 3, seed: 1, timeLimitMs: 1 }),
    /over the 1 ms limit/,
  );
});
