/**
 * Test-only: tiny exported models for serve/ tests. The weights are the committed PyTorch fixtures
 * (tests/fixtures/model/tiny and /regression); the vocabulary is made up to fit their vocab_size.
 * Test files may import train/ (serve's product code may not): the exporter writes what the server
 * reads, exactly as in production.
 * @module
 */

import { exportModel } from "../train/export/export.ts";
import { vocabTxt } from "../tokenizer/mod.ts";

/** The BERT specials, then words and pieces: enough for tests to write sentences without [UNK]. */
const WORDS = (
  "the a cat cats dog dogs runs run sat mat big small red happy sad man men see sees book " +
  "read good bad very not and with near likes house tree . , ! ? ##s ##ed ##ing is are was it this on to"
).split(" ");

/** The first `size` tokens of the test vocabulary: [PAD] [UNK] [CLS] [SEP] [MASK], then words. */
export function testVocabulary(size: number): string[] {
  const vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ...WORDS];
  if (size > vocab.length) {
    throw new RangeError(`Test vocabulary has ${vocab.length} tokens, asked for ${size}`);
  }
  return vocab.slice(0, size);
}

/** Options of {@linkcode exportTestModel}. */
export interface TestModelOptions {
  /** Fixture under tests/fixtures/model/. @default "tiny" (2 labels, vocab 50, 16 positions) */
  fixture?: "tiny" | "regression";
  /** serve.json maxLength. @default 12 */
  maxLength?: number;
  /** Standard ONNX ops only (export's --portable), e.g. for the WebGPU provider. @default false */
  portable?: boolean;
}

/**
 * Exports a fixture model with a made-up vocabulary into a new temporary folder and returns its path
 * (model.onnx, model.int8.onnx, serve.json, vocab.txt, tokenizer_config.json). The caller removes it.
 */
export async function exportTestModel(options: TestModelOptions = {}): Promise<string> {
  const fixture = new URL(`../tests/fixtures/model/${options.fixture ?? "tiny"}/`, import.meta.url).pathname;
  const config = JSON.parse(await Deno.readTextFile(`${fixture}config.json`));
  const source = await Deno.makeTempDir({ prefix: "serve_model_src_" });
  const output = await Deno.makeTempDir({ prefix: "serve_model_" });
  try {
    await Deno.copyFile(`${fixture}config.json`, `${source}/config.json`);
    await Deno.copyFile(`${fixture}model.safetensors`, `${source}/model.safetensors`);
    await Deno.writeTextFile(`${source}/vocab.txt`, vocabTxt(testVocabulary(config.vocab_size)));
    await Deno.writeTextFile(`${source}/tokenizer_config.json`, JSON.stringify({ do_lower_case: true }));
    await exportModel(source, { output, maxLength: options.maxLength ?? 12, portable: options.portable });
  } catch (e) {
    await Deno.remove(output, { recursive: true });
    throw e;
  } finally {
    await Deno.remove(source, { recursive: true });
  }
  return output;
}
