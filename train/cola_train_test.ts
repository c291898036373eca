/** A tiny BERT on real CoLA (../shared/data) with the real bert-base-uncased tokenizer learns: the loss falls. */
import { loadTokenizer } from "../tokenizer/mod.ts";
import { loadCola } from "./data/cola.ts";
import { parseBertConfig } from "./config.ts";
import { initWeights } from "./weights.ts";
import { DEFAULT_TRAIN_OPTIONS, Trainer } from "./trainer.ts";
import { GPU_TEST, testGpu } from "../tests/util.ts";

const shared = new URL("../../shared/data/", import.meta.url);

Deno.test({
  name: "Trainer.fit() on CoLA with a tiny config lowers the loss over a few dozen steps",
  ...GPU_TEST,
  fn: async () => {
    const tokenizer = await loadTokenizer(new URL("bert-base-uncased/", shared));
    const cola = await loadCola(new URL("cola_public_1.1.zip", shared).pathname);
    const config = parseBertConfig(
      {
        vocab_size: tokenizer.vocabSize,
        hidden_size: 32,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        intermediate_size: 64,
      },
      "tiny",
      { labels: cola.train.labels, dropout: 0 },
    );
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
