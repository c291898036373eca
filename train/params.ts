/**
 * The parameter layout of BertForSequenceClassification, stated in one place: Hugging Face names
 * and PyTorch shapes. Linear weights are [out, in] (nn.Linear), embeddings [rows, hidden],
 * LayerNorm weight/bias [hidden].
 * @module
 */

import { type BertConfig, numLabels } from "./config.ts";

/** One named parameter. */
export interface ParamSpec {
  name: string;
  shape: number[];
  /** How a fresh parameter is initialised (HF `_init_weights`). */
  init: "normal" | "zeros" | "ones";
}

/** Names of one encoder layer's parameters, with the layer prefix. */
export function layerNames(i: number) {
  const p = `bert.encoder.layer.${i}`;
  return {
    query: `${p}.attention.self.query`,
    key: `${p}.attention.self.key`,
    value: `${p}.attention.self.value`,
    attnOut: `${p}.attention.output.dense`,
    attnLn: `${p}.attention.output.LayerNorm`,
    inter: `${p}.intermediate.dense`,
    out: `${p}.output.dense`,
    outLn: `${p}.output.LayerNorm`,
  };
}

/** Every parameter of the model, in Hugging Face's state_dict order. */
export function parameterSpecs(config: BertConfig): ParamSpec[] {
  const H = config.hidden_size;
  const I = config.intermediate_size;
  const specs: ParamSpec[] = [];
  const linear = (name: string, out: number, inp: number) => {
    specs.push({ name: `${name}.weight`, shape: [out, inp], init: "normal" });
    specs.push({ name: `${name}.bias`, shape: [out], init: "zeros" });
  };
  const layerNorm = (name: string) => {
    specs.push({ name: `${name}.weight`, shape: [H], init: "ones" });
    specs.push({ name: `${name}.bias`, shape: [H], init: "zeros" });
  };
  specs.push({
    name: "bert.embeddings.word_embeddings.weight",
    shape: [config.vocab_size, H],
    init: "normal",
  });
  specs.push({
    name: "bert.embeddings.position_embeddings.weight",
    shape: [config.max_position_embeddings, H],
    init: "normal",
  });
  specs.push({
    name: "bert.embeddings.token_type_embeddings.weight",
    shape: [config.type_vocab_size, H],
    init: "normal",
  });
  layerNorm("bert.embeddings.LayerNorm");
  for (let i = 0; i < config.num_hidden_layers; i++) {
    const n = layerNames(i);
    linear(n.query, H, H);
    linear(n.key, H, H);
    linear(n.value, H, H);
    linear(n.attnOut, H, H);
    layerNorm(n.attnLn);
    linear(n.inter, I, H);
    linear(n.out, H, I);
    layerNorm(n.outLn);
  }
  linear("bert.pooler.dense", H, H);
  linear("classifier", numLabels(config), H);
  return specs;
}

/** Number of scalar parameters. */
export function parameterCount(config: BertConfig): number {
  return parameterSpecs(config).reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0);
}
