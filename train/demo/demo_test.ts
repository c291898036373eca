/**
 * The offline demo learns for real: a tiny BERT trained from scratch on the generated grammar task
 * ends far above the majority-class rate on the held-out test split, and the export is servable.
 * (A smaller training set than `deno task demo` uses, to keep CI short.)
 */
import { join } from "node:path";
import { runDemo } from "./main.ts";
import { GPU_TEST } from "../../tests/util.ts";

Deno.test({
  name: "runDemo() trains a tiny BERT far above the majority rate and exports it",
  ...GPU_TEST,
  fn: async () => {
    const output = await Deno.makeTempDir();
    try {
      const r = await runDemo({ output, trainSize: 3000, quiet: true });
      if (!r) throw new Error("the demo stopped early");
      if (!(r.test.accuracy >= r.majority + 0.2) || !(r.test.mcc >= 0.4)) {
        throw new Error(
          `test accuracy ${r.test.accuracy} (MCC ${r.test.mcc}) is not far above the majority rate ${r.majority}`,
        );
      }
      for (const f of ["model.onnx", "model.int8.onnx", "serve.json", "vocab.txt"]) {
        await Deno.stat(join(r.exported!, f));
      }
    } finally {
      await Deno.remove(output, { recursive: true });
    }
  },
});
