/**
 * BertConfig: Hugging Face `config.json` field names verbatim, so HF files load unchanged.
 * Unsupported values are errors that name the field and say what is supported.
 * @module
 */

/** The fields of a Hugging Face BERT config the engine reads. */
export interface BertConfig {
  /** Rows of the word embedding: the tokenizer's vocabulary size or more. */
  vocab_size: number;
  /** Width of every token vector (768 in bert-base). */
  hidden_size: number;
  /** Transformer layers (12 in bert-base). */
  num_hidden_layers: number;
  /** Attention heads per layer; divides hidden_size. */
  num_attention_heads: number;
  /** Width of each layer's feed-forward block (3072 in bert-base). */
  intermediate_size: number;
  /** Only "gelu" (exact erf GELU) is supported. */
  hidden_act: "gelu";
  /** Dropout after embeddings, attention output and feed-forward, in [0, 1). */
  hidden_dropout_prob: number;
  /** Dropout on the attention probabilities, in [0, 1). */
  attention_probs_dropout_prob: number;
  /** Longest input in tokens ([CLS] and [SEP] included). */
  max_position_embeddings: number;
  /** Segment ids (2: a text and its pair). */
  type_vocab_size: number;
  /** Standard deviation of freshly initialised weights. */
  initializer_range: number;
  /** Epsilon added to the variance in LayerNorm. */
  layer_norm_eps: number;
  /** Id of [PAD]; its embedding row starts at zero. */
  pad_token_id: number;
  /** Only "absolute" is supported. */
  position_embedding_type: "absolute";
  /** Label names by id (string keys as in config.json). */
  id2label: Record<string, string>;
  /** Label ids by name (the inverse of id2label). */
  label2id: Record<string, number>;
  /** "single_label_classification" or "regression" (num_labels 1). */
  problem_type: "single_label_classification" | "regression";
  /** Extra fields from the file, kept so a saved config round-trips. */
  extra: Record<string, unknown>;
}

/** bert-base-uncased's architecture (the defaults of HF's BertConfig). */
export const BERT_BASE: Omit<BertConfig, "id2label" | "label2id" | "problem_type" | "extra"> = {
  vocab_size: 30522,
  hidden_size: 768,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  intermediate_size: 3072,
  hidden_act: "gelu",
  hidden_dropout_prob: 0.1,
  attention_probs_dropout_prob: 0.1,
  max_position_embeddings: 512,
  type_vocab_size: 2,
  initializer_range: 0.02,
  layer_norm_eps: 1e-12,
  pad_token_id: 0,
  position_embedding_type: "absolute",
};

const KNOWN = new Set([
  ...Object.keys(BERT_BASE),
  "id2label",
  "label2id",
  "num_labels",
  "problem_type",
]);

/** Options for {@linkcode parseBertConfig}: labels override what the file says. */
export interface ConfigOverrides {
  /** Label names in id order; sets id2label, label2id and num_labels. */
  labels?: readonly string[];
  /** Overrides both dropout probabilities (0 turns dropout off). */
  dropout?: number;
}

function positiveInt(obj: Record<string, unknown>, key: string, source: string): number {
  const v = obj[key];
  if (!Number.isInteger(v) || (v as number) <= 0) {
    throw new RangeError(`Config "${source}": "${key}" must be a positive integer, got ${JSON.stringify(v)}`);
  }
  return v as number;
}

function probability(obj: Record<string, unknown>, key: string, source: string): number {
  const v = obj[key];
  if (typeof v !== "number" || !(v >= 0 && v < 1)) {
    throw new RangeError(`Config "${source}": "${key}" must be a number in [0, 1), got ${JSON.stringify(v)}`);
  }
  return v;
}

/**
 * Validates a parsed config.json object. `source` names the file in errors.
 * @throws {RangeError | TypeError} naming the field, the value and what is supported.
 */
export function parseBertConfig(
  json: unknown,
  source = "config.json",
  overrides: ConfigOverrides = {},
): BertConfig {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new TypeError(`Config "${source}" must be a JSON object`);
  }
  const raw = { ...BERT_BASE, ...(json as Record<string, unknown>) } as Record<string, unknown>;
  const modelType = raw.model_type;
  if (modelType !== undefined && modelType !== "bert") {
    throw new RangeError(
      `Config "${source}": model_type "${modelType}" is not supported; only "bert" models are`,
    );
  }
  if (raw.hidden_act !== "gelu") {
    throw new RangeError(
      `Config "${source}": hidden_act ${
        JSON.stringify(raw.hidden_act)
      } is not supported; only "gelu" (exact erf GELU) is`,
    );
  }
  if (raw.position_embedding_type !== "absolute") {
    throw new RangeError(
      `Config "${source}": position_embedding_type ${
        JSON.stringify(raw.position_embedding_type)
      } is not supported; only "absolute" is`,
    );
  }
  for (const key of ["is_decoder", "add_cross_attention"]) {
    if (raw[key] === true) {
      throw new RangeError(`Config "${source}": "${key}": true is not supported (encoder only)`);
    }
  }
  const hidden = positiveInt(raw, "hidden_size", source);
  const heads = positiveInt(raw, "num_attention_heads", source);
  if (hidden % heads !== 0) {
    throw new RangeError(
      `Config "${source}": hidden_size ${hidden} is not a multiple of num_attention_heads ${heads}`,
    );
  }
  const eps = raw.layer_norm_eps;
  if (typeof eps !== "number" || !(eps > 0)) {
    throw new RangeError(
      `Config "${source}": "layer_norm_eps" must be a positive number, got ${JSON.stringify(eps)}`,
    );
  }
  const init = raw.initializer_range;
  if (typeof init !== "number" || !(init > 0)) {
    throw new RangeError(
      `Config "${source}": "initializer_range" must be positive, got ${JSON.stringify(init)}`,
    );
  }
  const labels = overrides.labels ?? labelsFromConfig(raw, source);
  if (labels.length < 1) throw new RangeError(`Config "${source}": at least one label is needed`);
  const id2label: Record<string, string> = {};
  const label2id: Record<string, number> = {};
  labels.forEach((name, i) => {
    id2label[String(i)] = name;
    label2id[name] = i;
  });
  let problem = raw.problem_type ?? (labels.length === 1 ? "regression" : "single_label_classification");
  if (overrides.labels) problem = labels.length === 1 ? "regression" : "single_label_classification";
  if (problem !== "single_label_classification" && problem !== "regression") {
    throw new RangeError(
      `Config "${source}": problem_type ${
        JSON.stringify(problem)
      } is not supported; use "single_label_classification" or "regression"`,
    );
  }
  if (problem === "regression" && labels.length !== 1) {
    throw new RangeError(
      `Config "${source}": problem_type "regression" needs num_labels 1, got ${labels.length}`,
    );
  }
  const dropout = overrides.dropout;
  if (dropout !== undefined && !(dropout >= 0 && dropout < 1)) {
    throw new RangeError(`Dropout must be in [0, 1), got ${dropout}`);
  }
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(json as Record<string, unknown>)) if (!KNOWN.has(k)) extra[k] = v;
  return {
    vocab_size: positiveInt(raw, "vocab_size", source),
    hidden_size: hidden,
    num_hidden_layers: positiveInt(raw, "num_hidden_layers", source),
    num_attention_heads: heads,
    intermediate_size: positiveInt(raw, "intermediate_size", source),
    hidden_act: "gelu",
    hidden_dropout_prob: dropout ?? probability(raw, "hidden_dropout_prob", source),
    attention_probs_dropout_prob: dropout ?? probability(raw, "attention_probs_dropout_prob", source),
    max_position_embeddings: positiveInt(raw, "max_position_embeddings", source),
    type_vocab_size: positiveInt(raw, "type_vocab_size", source),
    initializer_range: init,
    layer_norm_eps: eps,
    pad_token_id: Number.isInteger(raw.pad_token_id) ? raw.pad_token_id as number : 0,
    position_embedding_type: "absolute",
    id2label,
    label2id,
    problem_type: problem as BertConfig["problem_type"],
    extra,
  };
}

function labelsFromConfig(raw: Record<string, unknown>, source: string): string[] {
  const id2label = raw.id2label as Record<string, string> | undefined;
  if (id2label && typeof id2label === "object") {
    const n = Object.keys(id2label).length;
    const out: string[] = [];
    for (let i = 0; i < n; i++) {
      const name = id2label[String(i)];
      if (typeof name !== "string") {
        throw new RangeError(
          `Config "${source}": id2label must map "0".."${n - 1}" to names; "${i}" is missing`,
        );
      }
      out.push(name);
    }
    if (raw.num_labels === undefined || raw.num_labels === n) return out;
  }
  const n = raw.num_labels ?? 2;
  if (!Number.isInteger(n) || (n as number) < 1) {
    throw new RangeError(
      `Config "${source}": "num_labels" must be a positive integer, got ${JSON.stringify(n)}`,
    );
  }
  return Array.from({ length: n as number }, (_, i) => `LABEL_${i}`);
}

/** Number of labels (logits) of the classifier head. */
export function numLabels(config: BertConfig): number {
  return Object.keys(config.id2label).length;
}

/** The config as Hugging Face writes it (for config.json next to model.safetensors). */
export function configToJson(config: BertConfig): Record<string, unknown> {
  const { extra, ...fields } = config;
  return {
    ...extra,
    architectures: ["BertForSequenceClassification"],
    model_type: "bert",
    ...fields,
    num_labels: undefined,
  };
}
