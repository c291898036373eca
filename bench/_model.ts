/**
 * Random Hugging Face model folders for the benches: config.json + model.safetensors with seeded
 * random weights, and optionally bert-base-uncased's tokenizer files so the export can be served.
 * @module
 */

import { join } from "node:path";
import { configToJson, parseBertConfig } from "../train/config.ts";
import { initWeights } from "../train/weights.ts";
import { serializeSafetensors, type TensorToWrite } from "../formats/safetensors.ts";
import { parameterSpecs } from "../train/params.ts";
import { bertBaseUncasedDir } from "../tests/data.ts";

/** "tiny" for --quick runs, "small" (hidden 256 x 4 layers), or full "bert-base". */
export type BenchModelSize = "tiny" | "small" | "bert-base";

const SIZES: Record<BenchModelSize, Record<string, number>> = {
  tiny: {
    hidden_size: 64,
    num_hidden_layers: 2,
    num_attention_heads: 2,
    intermediate_size: 128,
    max_position_embeddings: 128,
  },
  small: {
    hidden_size: 256,
    num_hidden_layers: 4,
    num_attention_heads: 4,
    intermediate_size: 1024,
    max_position_embeddings: 128,
  },
  "bert-base": {},
};

/**
 * Writes a random model folder of `size` (bert-base's vocabulary unless `vocabSize` is given) and
 * returns its path; `tokenizer` copies bert-base-uncased's tokenizer files in (from the test data).
 */
export async function randomModelFolder(
  size: BenchModelSize,
  options: { tokenizer?: boolean; vocabSize?: number } = {},
): Promise<string> {
  const overrides = { ...SIZES[size], ...(options.vocabSize ? { vocab_size: options.vocabSize } : {}) };
  const config = parseBertConfig(overrides);
  const weights = initWeights(config, 1);
  const dir = await Deno.makeTempDir({ prefix: `bench_model_${size}_` });
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(configToJson(config)));
  const tensors = parameterSpecs(config).map((s): [string, TensorToWrite] => [
    s.name,
    { shape: s.shape, data: weights.get(s.name)! },
  ]);
  await Deno.writeFile(`${dir}/model.safetensors`, serializeSafetensors(tensors));
  if (options.tokenizer) {
    const bert = await bertBaseUncasedDir();
    for (const f of ["tokenizer.json", "vocab.txt", "tokenizer_config.json"]) {
      await Deno.copyFile(join(bert, f), `${dir}/${f}`);
    }
  }
  return dir;
}
