/**
 * Our export loads in transformers.js: its text-classification pipeline, local files only (no hub),
 * reads config.json, tokenizer.json and onnx/model.onnx / onnx/model_quantized.onnx from the export
 * folder and gives the same labels and scores as our serve classifier on CoLA dev sentences.
 * transformers.js runs onnxruntime-node (device "cpu") under Deno; serve runs onnxruntime-web.
 * A tiny BERT over bert-base-uncased's vocabulary with random weights (wide init so scores differ).
 */
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { env, pipeline } from "npm:@huggingface/transformers@4.3.2";
import { tinyCola } from "./cola.ts";
import { parseBertConfig } from "../train/config.ts";
import { initWeights } from "../train/weights.ts";
import { saveModel } from "../train/checkpoint.ts";
import { exportModel } from "../train/export/export.ts";
import { loadClassifier } from "../serve/classifier.ts";

Deno.test({
  name: "transformers.js's text-classification pipeline loads our export and agrees with serve",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { tokenizer, cola, config: tiny } = await tinyCola();
    const config = parseBertConfig({ ...tiny, initializer_range: 0.5 }, "tiny", {
      labels: cola.train.labels,
    });
    const root = await Deno.makeTempDir({ prefix: "tjs_" });
    try {
      const model = join(root, "run");
      await saveModel(model, config, initWeights(config, 3), tokenizer.files());
      const exported = join(root, "models", "cola-tiny");
      await exportModel(model, { output: exported, maxLength: 64 });
      env.allowRemoteModels = false;
      env.allowLocalModels = true;
      env.localModelPath = dirname(exported) + "/";
      const scores: Record<string, number[]> = {};
      const sentences = cola.inDomainDev.examples.slice(0, 24).map((e) => e.text);
      for (const [variant, dtype] of [["float32", "fp32"], ["int8", "q8"]] as const) {
        const classify = await pipeline("text-classification", "cola-tiny", { dtype, device: "cpu" });
        const ours = await loadClassifier(exported, { variant, threads: 1 });
        try {
          const theirs = await classify(sentences, { top_k: null }) as unknown as {
            label: string;
            score: number;
          }[][];
          const expected = await ours.classify(sentences);
          const labels = new Set<string>();
          sentences.forEach((s, i) => {
            const top = theirs[i][0];
            labels.add(top.label);
            assert.equal(top.label, expected[i].label, `${variant}: "${s}"`);
            assert.ok(
              Math.abs(top.score - expected[i].score) < 1e-5,
              `${variant}: ${top.score} vs ${expected[i].score}`,
            );
            for (const { label, score } of theirs[i]) {
              assert.ok(Math.abs(score - expected[i].probabilities[label]) < 1e-5, `${variant} ${label}`);
            }
          });
          assert.equal(labels.size, 2, "both labels occur, so the comparison can fail");
          scores[variant] = theirs.map((t) => t[0].score);
        } finally {
          await classify.dispose();
          await ours.release();
        }
      }
      // q8 really ran onnx/model_quantized.onnx: its scores differ from fp32's.
      assert.notDeepEqual(scores.int8, scores.float32);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});
