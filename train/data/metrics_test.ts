import assert from "node:assert/strict";
import { accuracy, averageRanks, f1Score, matthewsCorrcoef, pearson, spearman } from "./metrics.ts";
import { assertThrowsWith } from "./_assertions.ts";
import { assertClose } from "../../tests/util.ts";
import { METRIC_F64 } from "../../tests/tolerance.ts";

interface MetricCase {
  name: string;
  pred: number[];
  gold: number[];
  accuracy: number;
  mcc: number;
  f1Macro: number;
  f1Binary?: number;
}

// Reference values from tests/torch/metrics_fixture.py (sklearn's definitions, computed in numpy).
const fixture: { cases: MetricCase[] } = JSON.parse(
  await Deno.readTextFile(new URL("../../tests/fixtures/metrics.json", import.meta.url)),
);

function compare(
  metric: (c: MetricCase) => number,
  expected: (c: MetricCase) => number | undefined,
  label: string,
) {
  const cases = fixture.cases.filter((c) => expected(c) !== undefined);
  assert.ok(cases.length >= 10, `${label}: only ${cases.length} fixture cases`);
  for (const c of cases) assertClose([metric(c)], [expected(c)!], METRIC_F64, `${label} "${c.name}"`);
}

Deno.test("accuracy() matches the reference on every fixture case", () => {
  compare((c) => accuracy(c.pred, c.gold), (c) => c.accuracy, "accuracy");
});

Deno.test("matthewsCorrcoef() matches sklearn's definition, binary, multiclass and degenerate", () => {
  compare((c) => matthewsCorrcoef(c.pred, c.gold), (c) => c.mcc, "mcc");
  // The degenerate cases are in the fixture and return exactly 0.
  const degenerate = fixture.cases.filter((c) => new Set(c.pred).size === 1 || new Set(c.gold).size === 1);
  assert.ok(degenerate.length >= 4);
  for (const c of degenerate) assert.equal(matthewsCorrcoef(c.pred, c.gold), 0, c.name);
});

Deno.test("f1Score() matches sklearn's binary and macro F1", () => {
  compare((c) => f1Score(c.pred, c.gold), (c) => c.f1Binary, "f1 binary");
  compare((c) => f1Score(c.pred, c.gold, { average: "macro" }), (c) => c.f1Macro, "f1 macro");
});

Deno.test("f1Score() binary with positiveLabel 0 equals binary F1 of the flipped labels", () => {
  for (const c of fixture.cases.filter((c) => c.f1Binary !== undefined)) {
    const flip = (xs: number[]) => xs.map((x) => 1 - x);
    assert.equal(f1Score(c.pred, c.gold, { positiveLabel: 0 }), f1Score(flip(c.pred), flip(c.gold)), c.name);
  }
});

Deno.test("metrics reject mismatched or empty inputs and invalid binary settings", () => {
  assertThrowsWith(() => accuracy([1, 0], [1]), RangeError, "accuracy(): 2 predictions for 1 gold labels");
  assertThrowsWith(() => matthewsCorrcoef([], []), RangeError, "matthewsCorrcoef(): no examples");
  assertThrowsWith(
    () => f1Score([0, 1, 2], [0, 1, 1]),
    RangeError,
    `3 classes (0, 1, 2) with average "binary"`,
  );
  assertThrowsWith(
    () => f1Score([0, 2], [2, 0]),
    RangeError,
    "positiveLabel 1 is not one of the classes 0, 2",
  );
});

// GLUE metrics against scipy.stats / sklearn.metrics on fixed vectors (tests/torch/glue_metrics_fixture.py).
const glue: {
  regression: {
    name: string;
    pred: number[];
    gold: number[];
    pearson: number | null;
    spearmanr: number | null;
    ranks_pred: number[];
  }[];
  classification: {
    name: string;
    pred: number[];
    gold: number[];
    accuracy: number;
    matthews_correlation: number;
    f1?: number;
  }[];
} = JSON.parse(await Deno.readTextFile(new URL("../../tests/fixtures/glue_metrics.json", import.meta.url)));

Deno.test("pearson() and spearman() match scipy.stats, ties as average ranks, NaN for constant input", () => {
  assert.ok(glue.regression.length >= 6);
  for (const c of glue.regression) {
    assert.deepEqual(Array.from(averageRanks(c.pred)), c.ranks_pred, `${c.name} ranks`);
    if (c.pearson === null) {
      assert.ok(Number.isNaN(pearson(c.pred, c.gold)) && Number.isNaN(spearman(c.pred, c.gold)), c.name);
      continue;
    }
    assertClose(
      [pearson(c.pred, c.gold), spearman(c.pred, c.gold)],
      [c.pearson, c.spearmanr!],
      METRIC_F64,
      c.name,
    );
  }
  // A tie-breaking rank (ordinal instead of average) would change this case's Spearman value.
  assert.ok(glue.regression.some((c) => c.name === "many ties"));
  assertThrowsWith(() => pearson([1, NaN], [1, 2]), RangeError, "pearson(): value NaN at index 1");
  assertThrowsWith(() => spearman([1], [1, 2]), RangeError, "spearman(): 1 predictions for 2 gold labels");
});

Deno.test("accuracy, MCC and F1 match sklearn.metrics on the GLUE fixture vectors", () => {
  for (const c of glue.classification) {
    assertClose([accuracy(c.pred, c.gold)], [c.accuracy], METRIC_F64, `${c.name} accuracy`);
    assertClose([matthewsCorrcoef(c.pred, c.gold)], [c.matthews_correlation], METRIC_F64, `${c.name} mcc`);
    if (c.f1 !== undefined) assertClose([f1Score(c.pred, c.gold)], [c.f1], METRIC_F64, `${c.name} f1`);
  }
});
