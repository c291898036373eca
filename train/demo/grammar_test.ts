import assert from "node:assert/strict";
import {
  DEMO_ERROR_KINDS,
  DEMO_LABELS,
  type DemoExample,
  generateDemoData,
  isDemoGrammatical,
} from "./grammar.ts";
import { assertThrows } from "../../tests/util.ts";

// One default-sized data set shared by the tests below (generation takes well under a second).
const DATA = generateDemoData();
const ALL: DemoExample[] = [...DATA.train, ...DATA.validation, ...DATA.test];

Deno.test("generateDemoData() is deterministic for a seed and differs across seeds", () => {
  const small = { train: 200, validation: 50, test: 50 };
  assert.deepStrictEqual(generateDemoData({ seed: 7, ...small }), generateDemoData({ seed: 7, ...small }));
  const other = generateDemoData({ seed: 8, ...small });
  const texts = new Set(generateDemoData({ seed: 7, ...small }).train.map((e) => e.text));
  assert.ok(
    other.train.filter((e) => texts.has(e.text)).length < 20,
    "seeds 7 and 8 give mostly the same sentences",
  );
});

Deno.test("generateDemoData() has the default sizes and balanced labels in every split", () => {
  assert.deepStrictEqual([DATA.train.length, DATA.validation.length, DATA.test.length], [4000, 500, 500]);
  for (const split of [DATA.train, DATA.validation, DATA.test]) {
    assert.strictEqual(split.filter((e) => e.label === 1).length, split.length / 2);
  }
  const odd = generateDemoData({ train: 7, validation: 3, test: 1 });
  assert.deepStrictEqual(
    [odd.train, odd.validation, odd.test].map((s) => s.filter((e) => e.label === 1).length),
    [4, 2, 1],
  );
});

Deno.test("generateDemoData() shuffles labels rather than alternating them", () => {
  const labels = DATA.train.slice(0, 200).map((e) => e.label);
  const alternations = labels.slice(1).filter((l, i) => l !== labels[i]).length;
  assert.ok(alternations > 60 && alternations < 140, `${alternations} label changes in 199 neighbours`);
});

Deno.test("generateDemoData() never repeats a sentence within or across splits", () => {
  assert.strictEqual(new Set(ALL.map((e) => e.text)).size, ALL.length);
});

Deno.test("generateDemoData() keeps validation and test fixed whatever the training size", () => {
  const smaller = generateDemoData({ train: 100 });
  assert.deepStrictEqual(smaller.validation, DATA.validation);
  assert.deepStrictEqual(smaller.test, DATA.test);
  assert.deepStrictEqual(generateDemoData({ train: 10, validation: 20 }).test, DATA.test);
});

Deno.test("generateDemoData() labels agree with isDemoGrammatical() and kinds with labels", () => {
  for (const e of ALL) {
    assert.strictEqual(
      isDemoGrammatical(e.text),
      e.label === 1,
      `"${e.text}" is labelled ${DEMO_LABELS[e.label]}`,
    );
    assert.strictEqual(e.kind === "ok", e.label === 1, `"${e.text}" has kind ${e.kind}`);
  }
});

Deno.test("generateDemoData() produces every error kind in a fair share", () => {
  const errors = DATA.train.filter((e) => e.label === 0);
  for (const kind of DEMO_ERROR_KINDS) {
    const share = errors.filter((e) => e.kind === kind).length / errors.length;
    // "attractor" is drawn for 5% of the examples (see KIND_WEIGHTS), the others for 15% or more.
    assert.ok(share > 0.03, `error kind "${kind}" is only ${(100 * share).toFixed(1)}% of the errors`);
  }
  assert.deepStrictEqual(new Set(errors.map((e) => e.kind)), new Set(DEMO_ERROR_KINDS));
});

Deno.test("generateDemoData() writes lowercase words with a final period", () => {
  for (const e of ALL) assert.match(e.text, /^[a-z]+( [a-z]+)*\.$/, e.text);
});

/** Word-level edit distance (insertions, deletions, substitutions). */
function editDistance(a: string[], b: string[]): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    row = next;
  }
  return row[b.length];
}

/** Whether `bad` is one error away from `ok`: a dropped object, or at most two word edits. */
function isTwin(bad: DemoExample, ok: DemoExample): boolean {
  if (bad.kind === "missing-object") return ok.text.startsWith(bad.text.slice(0, -1) + " ");
  const words = (e: DemoExample) => e.text.replace(/\.$/, " .").split(" ");
  return editDistance(words(bad), words(ok)) <= 2;
}

Deno.test("generateDemoData() pairs every unacceptable sentence with its source in the same split", () => {
  for (const split of [DATA.validation, DATA.test]) {
    const ok = split.filter((e) => e.label === 1);
    for (const bad of split.filter((e) => e.label === 0)) {
      assert.ok(ok.some((o) => isTwin(bad, o)), `"${bad.text}" (${bad.kind}) has no acceptable twin`);
    }
  }
});

Deno.test("generateDemoData() without minimal pairs draws the labels from the same templates", () => {
  const { train } = generateDemoData({ minimalPairs: false, validation: 0, test: 0 });
  const ok = train.filter((e) => e.label === 1);
  const bad = train.filter((e) => e.label === 0);
  assert.strictEqual(ok.length, bad.length);
  const twins = bad.slice(0, 300).filter((b) => ok.some((o) => isTwin(b, o))).length;
  // Short sentences often have a near neighbour by chance (about half do), but not all of them.
  assert.ok(twins < 250, `${twins} of 300 unacceptable sentences have an acceptable twin`);
  // Sentence shape alone must not give the label away: "that" (relative clauses, which carry
  // attractors) survives every corruption, so its rate must match across labels.
  const rate = (split: DemoExample[]) => split.filter((e) => e.text.includes(" that ")).length / split.length;
  assert.ok(
    Math.abs(rate(ok) - rate(bad)) < 0.03,
    `relative clauses: ${rate(ok)} acceptable, ${rate(bad)} not`,
  );
});

Deno.test("generateDemoData() rejects bad sizes and seeds", () => {
  assertThrows(
    () => generateDemoData({ train: -1 }),
    RangeError,
    /"train" must be a non-negative integer, got -1/,
  );
  assertThrows(() => generateDemoData({ validation: 1.5 }), RangeError, /"validation".*got 1\.5/);
  assertThrows(() => generateDemoData({ seed: 0.5 }), RangeError, /seed must be an integer, got 0\.5/);
});

Deno.test("isDemoGrammatical() accepts the grammar's sentences and rejects each error kind", () => {
  const acceptable = [
    "the dog runs.",
    "dogs run.",
    "the dog near the cats runs.",
    "the dogs near the cat run.",
    "the dog that the cats like runs.",
    "the dog that likes the cats runs.",
    "the dogs that the cat does not like do not sleep.",
    "a happy girl likes two small birds.",
    "every teacher wants this horse beside my farmers.",
  ];
  const unacceptable = [
    "the dog run.", // agreement
    "the dogs does not sleep.", // agreement of the auxiliary
    "the dog near the cats run.", // attractor
    "the dog that the cats like run.", // attractor in a relative clause
    "the dog that like the cats runs.", // the relative clause's verb agrees with "dog"
    "dog the runs.", // word order
    "runs the dog.", // verb before subject
    "dog runs.", // missing determiner
    "the the dog runs.", // extra determiner
    "a dogs run.", // determiner number
    "the dog likes.", // missing object
    "the dog sleeps the cat.", // object of an intransitive verb
    "the dog runs", // no period
    "the dog zebras.", // unknown word
  ];
  for (const s of acceptable) assert.ok(isDemoGrammatical(s), s);
  for (const s of unacceptable) assert.ok(!isDemoGrammatical(s), s);
});
