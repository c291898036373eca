import assert from "node:assert/strict";
import { type Classification, loadClassifier } from "./classifier.ts";
import { loadServeModel, type Prediction, predictionOf } from "./model.ts";
import { exportTestModel } from "./_test_model.ts";

// ORT's wasm runtime lives for the whole file (it is process-wide), so sessions are not leaks.
const ORT = { sanitizeResources: false, sanitizeOps: false } as const;

/** The served prediction of a classification model, with its truncation flag. */
function classified(p: Prediction, truncated: boolean): Classification {
  assert.ok("probabilities" in p, "a classification model");
  return { ...p, truncated };
}

const TEXTS = ["the cat sat", "a big red dog runs near the house .", "", "men see books , not trees !"];

Deno.test({
  name: "loadClassifier() classify() answers as the served model does, one text or many, in any batch size",
  ...ORT,
  fn: async () => {
    const dir = await exportTestModel();
    const served = await loadServeModel(dir, { variant: "float32" });
    const classifier = await loadClassifier(dir, { variant: "float32" });
    try {
      assert.deepEqual(
        [
          classifier.labels,
          classifier.maxLength,
          classifier.variant,
          classifier.problemType,
          classifier.source,
        ],
        [["unacceptable", "acceptable"], 12, "float32", "single_label_classification", dir],
      );
      // The oracle: one session run per text through the server's own path.
      const expected: Classification[] = [];
      for (const text of TEXTS) {
        const row = served.encode(text);
        expected.push(classified(predictionOf((await served.run([row]))[0], served.manifest), row.truncated));
      }
      const one = await classifier.classify(TEXTS[1]);
      assert.deepEqual(one, expected[1]);
      for (const batchSize of [1, 3, 32]) {
        const all = await classifier.classify(TEXTS, { batchSize });
        assert.equal(all.length, TEXTS.length);
        all.forEach((answer, i) => {
          assert.equal(answer.label, expected[i].label, `text ${i}, batch ${batchSize}`);
          assert.equal(answer.truncated, expected[i].truncated);
          // Padding to a longer batch row changes float rounding a little, never the answer.
          for (const label of classifier.labels) {
            const gap = Math.abs(answer.probabilities[label] - expected[i].probabilities[label]);
            assert.ok(gap < 1e-5, `text ${i} ${label}: ${gap}`);
          }
        });
      }
      assert.deepEqual(await classifier.classify([]), []);
    } finally {
      await classifier.release();
      await served.release();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "loadClassifier() classify() reports truncation and takes sentence pairs",
  ...ORT,
  fn: async () => {
    const dir = await exportTestModel({ maxLength: 8 });
    const served = await loadServeModel(dir);
    const classifier = await loadClassifier(dir);
    try {
      const long = "the big red dog sat near the small cat and the man";
      const answer = await classifier.classify(long);
      assert.equal(answer.truncated, true);
      assert.equal((await classifier.classify("the cat")).truncated, false);
      const paired = await classifier.classify("the cat", { pair: "a dog" });
      const row = served.encode("the cat", "a dog");
      assert.deepEqual(
        paired,
        classified(predictionOf((await served.run([row]))[0], served.manifest), false),
      );
      const [first] = await classifier.classify(["the cat", "a man"], { pair: ["a dog", "the house"] });
      assert.equal(first.label, paired.label);
    } finally {
      await classifier.release();
      await served.release();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "loadClassifier() gives a regression model's value as the score, without probabilities",
  ...ORT,
  fn: async () => {
    const dir = await exportTestModel({ fixture: "regression", maxLength: 8 });
    const served = await loadServeModel(dir);
    const classifier = await loadClassifier(dir);
    try {
      const answer = await classifier.classify("the cat sat");
      const [logits] = await served.run([served.encode("the cat sat")]);
      assert.equal(classifier.problemType, "regression");
      assert.deepEqual(answer, {
        label: "score",
        score: logits[0],
        value: logits[0],
        probabilities: {},
        truncated: false,
      });
    } finally {
      await classifier.release();
      await served.release();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "loadClassifier() rejects bad inputs with messages that name the value",
  ...ORT,
  fn: async () => {
    await assert.rejects(() => loadClassifier("/no/such/export"), {
      name: "NotFound",
      message: /Cannot load model "\/no\/such\/export"/,
    });
    const dir = await exportTestModel();
    const classifier = await loadClassifier(dir);
    try {
      await assert.rejects(() => classifier.classify(["a", 3 as unknown as string]), {
        name: "TypeError",
        message: /texts\[1\] is number/,
      });
      await assert.rejects(() => classifier.classify(["a", "b"], { pair: "c" }), {
        name: "RangeError",
        message: /pair must be a list of 2 strings/,
      });
      await assert.rejects(() => classifier.classify("a", { pair: ["c"] }), {
        name: "TypeError",
        message: /pair must be a string when classifying one text/,
      });
      await assert.rejects(() => classifier.classify(["a"], { batchSize: 0 }), {
        name: "RangeError",
        message: /batchSize 0 must be a positive integer/,
      });
      await assert.rejects(() => classifier.classify(42 as unknown as string), {
        name: "TypeError",
        message: /texts is number/,
      });
    } finally {
      await classifier.release();
      await Deno.remove(dir, { recursive: true });
    }
    await assert.rejects(() => classifier.classify("a"), { name: "TypeError", message: /was released/ });
  },
});
