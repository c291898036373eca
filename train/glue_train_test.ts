/**
 * `deno task train --task <GLUE task>` end to end on small files in GLUE's layout (made up here): one
 * task per kind (SST-2 single sentence, MNLI pairs with three labels, STS-B regression) trains a tiny
 * BERT a few dozen steps with the loss falling, writes the GLUE metrics into metrics.json, and
 * `deno task eval --task` scores it; the STS-B and MNLI models export and serve.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { main } from "./main.ts";
import { EVAL_FLAGS, runEval } from "./eval.ts";
import { parseFlags } from "./cli.ts";
import { createModelConfig, saveModelFolder } from "./api.ts";
import { initWeights } from "./weights.ts";
import { tokenizerFromVocab } from "../tokenizer/mod.ts";
import { exportModel } from "./export/export.ts";
import { createApp } from "../serve/app.ts";
import { GLUE, GLUE_TASKS } from "./data/glue.ts";
import { Rng } from "../kernels/random.ts";
import { GPU_TEST } from "../tests/util.ts";
import { GLUE_LAYOUT } from "../tests/glue_layout.ts";

const SUBJECTS = [
  "the film",
  "a plot",
  "this book",
  "the song",
  "our trip",
  "that meal",
  "the show",
  "his play",
];
const POSITIVE = ["good", "great", "fine", "lovely"];
const NEGATIVE = ["bad", "dull", "awful", "poor"];
const WORDS = [
  ...new Set([...SUBJECTS.join(" ").split(" "), ...POSITIVE, ...NEGATIVE, "was", "is", "yes", "maybe", "no"]),
  ...["zero", "one", "two", "three", "four", "five"],
];

/** Each kind's rows in its GLUE layout: a learnable rule, seeded. */
function glueFiles(task: "sst2" | "mnli" | "stsb", n: number, seed: number): Record<string, string> {
  const rng = new Rng(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rng.uniform() * xs.length)];
  const rows = (count: number) =>
    Array.from({ length: count }, (_, i) => {
      const subject = pick(SUBJECTS);
      if (task === "sst2") {
        const label = i % 2;
        return `${subject} was ${pick(label ? POSITIVE : NEGATIVE)} \t${label}`;
      }
      if (task === "mnli") {
        const label = GLUE.mnli.labels[i % 3];
        const cue = { entailment: "yes", neutral: "maybe", contradiction: "no" }[label]!;
        const parse = "( x )\t( y )\t(ROOT x)\t(ROOT y)";
        return `${i}\t${i}\t${i}x\tfiction\t${parse}\t${subject} is ${
          pick(POSITIVE)
        }\t${cue} ${subject}\t${label}\t${label}`;
      }
      const score = i % 6;
      const word = ["zero", "one", "two", "three", "four", "five"][score];
      return `${i}\tmain-captions\tMSRvid\t2012test\t${i}\tnone\tnone\t${subject} is ${
        pick(POSITIVE)
      }\t${word} ${subject}\t${score}.000`;
    }).join("\n") + "\n";
  if (task === "sst2") {
    return { "train.tsv": `sentence\tlabel\n${rows(n)}`, "dev.tsv": `sentence\tlabel\n${rows(24)}` };
  }
  if (task === "mnli") {
    const header =
      "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\t" +
      "sentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label\n";
    return {
      "train.tsv": header + rows(n),
      "dev_matched.tsv": header + rows(24),
      "dev_mismatched.tsv": header + rows(24),
    };
  }
  const header = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n";
  return { "train.tsv": header + rows(n), "dev.tsv": header + rows(24) };
}

/** A tiny from-scratch BERT folder whose head already has the task's label count. */
async function tinyModelFolder(dir: string, labels: readonly string[]): Promise<void> {
  const tokenizer = tokenizerFromVocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", ...WORDS]);
  const config = createModelConfig({
    vocabSize: tokenizer.vocabSize,
    labels,
    config: { hidden_size: 32, intermediate_size: 64, max_position_embeddings: 32 },
  });
  await saveModelFolder(dir, { config, weights: initWeights(config, 3) }, { tokenizer });
}

async function capture<T>(fn: () => Promise<T>): Promise<{ value: T; out: string }> {
  const lines: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => lines.push(a.join(" "));
  try {
    return { value: await fn(), out: lines.join("\n") };
  } finally {
    console.log = log;
  }
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Trains `task` on its made-up files; returns the run folder, data folder and what was printed. */
async function trainTask(tmp: string, task: "sst2" | "mnli" | "stsb") {
  const data = join(tmp, `${task}-data`);
  const model = join(tmp, "tiny");
  const output = join(tmp, `${task}-run`);
  await Deno.mkdir(data, { recursive: true });
  for (const [name, text] of Object.entries(glueFiles(task, 96, 7))) {
    await Deno.writeTextFile(join(data, name), text);
  }
  const { value: code, out } = await capture(() =>
    main([
      ...["--task", task, "--data", data, "--model", model, "--output", output],
      ...[
        "--epochs",
        "6",
        "--batch-size",
        "8",
        "--max-length",
        "16",
        "--lr",
        "5e-3",
        "--warmup-ratio",
        "0.1",
        "--dropout",
        "0",
      ],
    ])
  );
  assert.equal(code, 0, out);
  const metrics = JSON.parse(await Deno.readTextFile(join(output, "metrics.json")));
  const losses: number[] = metrics.steps.map((s: { loss: number }) => s.loss);
  assert.equal(losses.length, 72, "96 rows, batch 8, 6 epochs: 72 steps");
  const first = mean(losses.slice(0, 6));
  const last = mean(losses.slice(-6));
  assert.ok(
    last < 0.5 * first,
    `${task}: loss ${first.toFixed(4)} -> ${last.toFixed(4)} did not fall by half`,
  );
  // No --val-split: train.tsv is trained on whole, and the dev set(s) are the reported evaluation.
  assert.deepEqual(metrics.epochs.map((e: object) => "validation" in e), [
    false,
    false,
    false,
    false,
    false,
    false,
  ]);
  assert.deepEqual(Object.keys(metrics.final.tests).sort(), Object.keys(GLUE[task].dev).sort());
  const config = JSON.parse(await Deno.readTextFile(join(output, "config.json")));
  assert.deepEqual(Object.values(config.id2label), [...GLUE[task].labels]);
  return { data, model, output, out, metrics, config };
}

Deno.test({
  name: "train --task sst2 (single sentence): loss falls, accuracy in metrics.json, eval --task agrees",
  ...GPU_TEST,
  fn: async () => {
    const tmp = await Deno.makeTempDir({ prefix: "glue_train_" });
    try {
      await tinyModelFolder(join(tmp, "tiny"), GLUE.sst2.labels);
      const { data, output, out, metrics } = await trainTask(tmp, "sst2");
      assert.equal(metrics.final.glue.headline.metric, "accuracy");
      assert.equal(metrics.final.glue.sets.dev.accuracy, metrics.final.tests.dev.accuracy);
      assert.match(out, /GLUE SST-2 dev: accuracy \d\.\d{4} \(headline\)/);
      const lines: string[] = [];
      const { values } = parseFlags([
        "--model",
        output,
        "--task",
        "sst2",
        "--data",
        data,
        "--max-length",
        "16",
      ], EVAL_FLAGS);
      await runEval(values, (l) => lines.push(l));
      assert.equal(
        lines.find((l) => l.startsWith("GLUE SST-2 dev")),
        `GLUE SST-2 dev: accuracy ${metrics.final.glue.sets.dev.accuracy.toFixed(4)} (headline)`,
      );
      // eval --task reads every two-label task's dev set in its layout and prints its GLUE metric.
      for (const task of GLUE_TASKS.filter((t) => GLUE[t].labels.length === 2)) {
        const folder = join(tmp, `layout-${task}`);
        await Deno.mkdir(folder);
        for (const [name, text] of Object.entries(GLUE_LAYOUT[task])) {
          await Deno.writeTextFile(join(folder, name), text);
        }
        const printed: string[] = [];
        const flags = parseFlags(["--model", output, "--task", task, "--data", folder], EVAL_FLAGS).values;
        await runEval(flags, (l) => printed.push(l));
        const metric = { cola: "Matthews correlation", mrpc: "F1", qqp: "F1" }[task as string] ?? "accuracy";
        assert.match(
          printed.at(-1)!,
          new RegExp(`^GLUE ${GLUE[task].dir} dev: ${metric} -?\\d\\.\\d{4} \\(headline\\)`),
        );
      }
      const wrong = parseFlags(
        ["--model", output, "--task", "mnli", "--data", join(tmp, "layout-rte")],
        EVAL_FLAGS,
      );
      await assert.rejects(runEval(wrong.values), /has 2 labels but GLUE MNLI has 3/);
      // --val-split holds out part of train.tsv for per-epoch validation when asked.
      const { value: code } = await capture(() =>
        main([
          ...["--task", "sst2", "--data", data, "--model", join(tmp, "tiny"), "--output", join(tmp, "split")],
          ...["--epochs", "1", "--batch-size", "8", "--max-length", "16", "--val-split", "0.25"],
        ])
      );
      assert.equal(code, 0);
      const split = JSON.parse(await Deno.readTextFile(join(tmp, "split", "metrics.json")));
      assert.equal(split.epochs[0].validation.examples, 24);
      assert.equal(split.final.tests.dev.examples, 24);
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test({
  name: "train --task mnli (pairs, 3 labels): loss falls, matched and mismatched accuracy; serves text_pair",
  ...GPU_TEST,
  fn: async () => {
    const tmp = await Deno.makeTempDir({ prefix: "glue_train_" });
    try {
      await tinyModelFolder(join(tmp, "tiny"), GLUE.mnli.labels);
      const { output, out, metrics } = await trainTask(tmp, "mnli");
      assert.deepEqual(Object.keys(metrics.final.glue.sets), ["dev_matched", "dev_mismatched"]);
      assert.match(
        out,
        /GLUE MNLI dev_matched: accuracy \d\.\d{4} \(headline\)\nGLUE MNLI dev_mismatched: accuracy/,
      );
      await exportModel(output, { output: join(output, "export"), maxLength: 16 });
      const app = await createApp({ modelDir: join(output, "export"), variant: "float32" });
      try {
        const response = await app.fetch(
          new Request("http://serve.test/classify", {
            method: "POST",
            body: JSON.stringify({
              texts: ["the film is good", "a plot is fine"],
              text_pairs: ["yes the film", "no a plot"],
            }),
          }),
        );
        assert.equal(response.status, 200);
        const { results } = await response.json();
        for (const r of results) {
          assert.deepEqual(Object.keys(r.probabilities), ["entailment", "neutral", "contradiction"]);
        }
      } finally {
        await app.close();
      }
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "train --task stsb (regression): MSE falls, Pearson and Spearman, exports and serves a score per pair",
  ...GPU_TEST,
  fn: async () => {
    const tmp = await Deno.makeTempDir({ prefix: "glue_train_" });
    try {
      await tinyModelFolder(join(tmp, "tiny"), GLUE.stsb.labels);
      const { data, output, out, metrics, config } = await trainTask(tmp, "stsb");
      assert.equal(config.problem_type, "regression");
      assert.deepEqual(Object.keys(metrics.final.glue.sets.dev), ["pearson", "spearmanr"]);
      assert.equal(metrics.final.glue.headline.metric, "pearson");
      assert.match(out, /GLUE STS-B dev: Pearson -?\d\.\d{4} \(headline\), Spearman/);
      const lines: string[] = [];
      const { values } = parseFlags([
        "--model",
        output,
        "--task",
        "stsb",
        "--data",
        data,
        "--max-length",
        "16",
      ], EVAL_FLAGS);
      await runEval(values, (l) => lines.push(l));
      assert.ok(lines.some((l) => /^dev: Pearson .*MSE/.test(l)), lines.join("\n"));
      await exportModel(output, { output: join(output, "export"), maxLength: 16 });
      const serveJson = JSON.parse(await Deno.readTextFile(join(output, "export", "serve.json")));
      assert.equal(serveJson.problemType, "regression");
      const app = await createApp({ modelDir: join(output, "export"), variant: "float32" });
      try {
        const response = await app.fetch(
          new Request("http://serve.test/classify", {
            method: "POST",
            body: JSON.stringify({
              texts: ["the film is good", "a plot is fine"],
              text_pairs: ["five the film", "zero a plot"],
            }),
          }),
        );
        const { results } = await response.json();
        assert.equal(results.length, 2);
        for (const r of results) {
          assert.equal(r.label, "score");
          assert.equal(typeof r.score, "number");
          assert.ok(!("probabilities" in r), "no softmax for regression");
        }
        // The rule: the first word of the pair is the score; a trained model ranks five above zero.
        assert.ok(results[0].score > results[1].score, JSON.stringify(results));
      } finally {
        await app.close();
      }
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test("every GLUE task has a recipe: layout, labels, dev sets and metrics", () => {
  for (const name of GLUE_TASKS) {
    const t = GLUE[name];
    assert.ok(t.metrics.length >= 1 && Object.keys(t.dev).length >= 1, name);
    assert.equal(t.regression, name === "stsb");
  }
});

Deno.test("train --task <GLUE task> names a --data that is not the task's folder or zip", async () => {
  const file = await Deno.makeTempFile({ suffix: ".tsv" });
  try {
    await assert.rejects(main(["--task", "rte", "--data", file]), {
      name: "UsageError",
      message: /is not a zip: with --task rte, expected GLUE RTE's folder or zip/,
    });
    await assert.rejects(main(["--task", "qqp", "--data", "/no/such/glue"]), {
      name: "UsageError",
      message: /--data "\/no\/such\/glue": no such file or folder; expected GLUE QQP's folder or zip/,
    });
  } finally {
    await Deno.remove(file);
  }
});
