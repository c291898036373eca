/** A tiny BERT on real CoLA (tests/data.ts) with the real bert-base-uncased tokenizer learns: the loss falls. */
import { tinyCola } from "../tests/cola.ts";
import { initWeights } from "./weights.ts";
import { DEFAULT_TRAIN_OPTIONS, Trainer } from "./trainer.ts";
import { GPU_TEST, testGpu } from "../tests/util.ts";

Deno.test({
  name: "Trainer.fit() on CoLA with a tiny config lowers the loss over a few dozen steps",
  ...GPU_TEST,
  fn: async () => {
    const { tokenizer, cola, config } = await tinyCola();
    const train = { ...cola.train, examples: cola.train.examples.slice(0, 48 * 16) };
    const trainer = new Trainer(await testGpu(), config, initWeights(config, 1), tokenizer, {
      ...DEFAULT_TRAIN_OPTIONS,
      epochs: 1,
      batchSize: 16,
      maxLength: 48,
      lr: 1e-3,
      dynamicPadding: true,
    });
    // Held-out loss before and after: deterministic, unlike per-batch training losses.
    const heldOut = { ...cola.validation, examples: cola.validation.examples.slice(0, 256) };
    const before = (await trainer.evaluate(heldOut)).loss;
    const { steps } = await trainer.fit(train, null);
    const after = (await trainer.evaluate(heldOut)).loss;
    if (steps.length !== 48 || !(after < before - 0.02)) {
      throw new Error(
        `held-out loss did not fall: ${before.toFixed(4)} -> ${after.toFixed(4)} (${steps.length} steps)`,
      );
    }
  },
});
