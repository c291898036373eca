import { runDocTests } from "./_doc.ts";

// The modules whose exports mod.ts re-exports; mod.ts's and train/api.ts's examples run in doc_test.ts.
const FILES = [
  "serve/classifier.ts",
  "tokenizer/mod.ts",
  "tokenizer/tokenizer.ts",
  "tokenizer/load.ts",
  "train/data/batches.ts",
  "train/data/cola.ts",
  "train/data/tabular.ts",
  "train/data/metrics.ts",
  "train/data/glue.ts",
  "train/hub.ts",
  "train/trainer.ts",
  "train/weights.ts",
  "train/checkpoint.ts",
  "train/export/export.ts",
  "kernels/runtime.ts",
];

Deno.test("JSDoc examples of the modules mod.ts re-exports run (deno test --doc)", async () => {
  await runDocTests(FILES);
});
