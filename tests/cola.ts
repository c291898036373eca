/**
 * Real CoLA for tests: the bert-base-uncased tokenizer and the CoLA zip (through tests/data.ts), plus a
 * tiny BERT config (2 layers, hidden 32) over that vocabulary, dropout off.
 * @module
 */
import { loadTokenizer, type Tokenizer } from "../tokenizer/mod.ts";
import { type ColaSplits, loadCola } from "../train/data/cola.ts";
import { type BertConfig, parseBertConfig } from "../train/config.ts";
import { bertBaseUncasedDir, colaZipPath } from "./data.ts";

/** The tokenizer, the CoLA splits and a tiny config with CoLA's labels. */
export async function tinyCola(): Promise<{ tokenizer: Tokenizer; cola: ColaSplits; config: BertConfig }> {
  const tokenizer = await loadTokenizer(await bertBaseUncasedDir());
  const cola = await loadCola(await colaZipPath());
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
  return { tokenizer, cola, config };
}
