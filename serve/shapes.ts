/**
 * The request shapes other inference servers take, parsed into texts (and pairs) and answered from
 * the model's logits:
 * - Hugging Face (Inference API / Endpoints, the text-classification pipeline): `POST /` or
 *   `POST /classify` with `{"inputs": "text" | ["t1", ...] | {"text", "text_pair"}, "parameters":
 *   {"top_k", "function_to_apply"}}` (`top_k` is also read at the top level, as the pipeline's
 *   keyword). One text or pair -> `[{label, score}, ...]` sorted by score, `top_k` of them (all by
 *   default); a list -> one such list per text. `function_to_apply`: "softmax" (default), "sigmoid"
 *   or "none" (raw logits). A regression model answers `[{label, score: value}]`.
 * - text-embeddings-inference `POST /predict` with `{"inputs", "truncate", "raw_scores"}`: `inputs`
 *   is a text, a pair `[a, b]` (exactly two strings, as TEI reads it), or a batch `[[a], [a, b], ...]`;
 *   answered `[{score, label}, ...]` (all labels, best first) or, for a batch, one list per input.
 *   `raw_scores: true` gives logits; `truncate` false (TEI's default) refuses an input over the
 *   model's max length with 413 input_too_long instead of truncating it.
 * @module
 */

import { checkCount, describe, HttpError, invalidRequest } from "./http_error.ts";

/** Texts (and optional second texts) to classify, and how to answer them. */
export interface ParsedInputs {
  texts: string[];
  pairs?: (string | undefined)[];
  /** One answer (a list of label/score) or a list of answers. */
  batch: boolean;
  /** Labels kept per answer; undefined: all. */
  topK?: number;
  /** How logits become scores. */
  transform: "softmax" | "sigmoid" | "none";
  /** /predict with truncate false: an input over the max length is an error. */
  refuseLong: boolean;
}

/** A label with its score. */
export interface LabelScore {
  label: string;
  score: number;
}

const HF_FIELDS = ["inputs", "parameters", "top_k", "function_to_apply"];
const HF_EXAMPLE = `{"inputs": "..."} or {"inputs": ["...", "..."], "parameters": {"top_k": 1}}`;
const TEI_FIELDS = ["inputs", "truncate", "raw_scores", "truncation_direction"];
const TEI_EXAMPLE =
  `{"inputs": "..."}, {"inputs": ["text", "pair"]} or {"inputs": [["..."], ["...", "..."]]}`;
const TRANSFORMS = ["softmax", "sigmoid", "none"] as const;

function object(json: unknown, example: string): Record<string, unknown> {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw invalidRequest(`Request body must be a JSON object like ${example}, got ${describe(json)}`);
  }
  return json as Record<string, unknown>;
}

function onlyFields(body: Record<string, unknown>, fields: string[], scope = ""): void {
  const unknown = Object.keys(body).find((k) => !fields.includes(k));
  if (unknown !== undefined) {
    throw invalidRequest(`Unknown field ${JSON.stringify(unknown)}${scope}; use ${fields.join(", ")}`);
  }
}

/** Whether a body is Hugging Face's shape (it has `inputs`) rather than /classify's own. */
export function isHuggingFaceBody(json: unknown): boolean {
  return typeof json === "object" && json !== null && !Array.isArray(json) && "inputs" in json;
}

/** Parses a Hugging Face `{"inputs", "parameters"}` body. */
export function parseHuggingFace(json: unknown, maxTexts: number): ParsedInputs {
  const body = object(json, HF_EXAMPLE);
  onlyFields(body, HF_FIELDS);
  const params = body.parameters === undefined || body.parameters === null
    ? {}
    : object(body.parameters, `{"top_k": 2}`);
  onlyFields(params, ["top_k", "function_to_apply"], " in parameters");
  const topKValue = params.top_k ?? body.top_k;
  let topK: number | undefined;
  if (topKValue !== undefined && topKValue !== null) {
    if (!Number.isSafeInteger(topKValue) || (topKValue as number) < 1) {
      throw invalidRequest(`"top_k" must be a whole number >= 1, got ${describe(topKValue)}`);
    }
    topK = topKValue as number;
  }
  const fn = params.function_to_apply ?? body.function_to_apply ?? "softmax";
  if (!(TRANSFORMS as readonly unknown[]).includes(fn)) {
    throw invalidRequest(`"function_to_apply" must be softmax, sigmoid or none, got ${describe(fn)}`);
  }
  const common = { topK, transform: fn as ParsedInputs["transform"], refuseLong: false };
  const inputs = body.inputs;
  if (typeof inputs === "string") return { texts: [inputs], batch: false, ...common };
  if (Array.isArray(inputs)) {
    checkCount(`"inputs"`, inputs.length, maxTexts);
    if (inputs.length === 0) throw invalidRequest(`"inputs" is empty; send at least one text`);
    const bad = inputs.findIndex((v) => typeof v !== "string");
    if (bad >= 0) throw invalidRequest(`"inputs[${bad}]" must be a string, got ${describe(inputs[bad])}`);
    return { texts: inputs, batch: true, ...common };
  }
  if (typeof inputs === "object" && inputs !== null) {
    const pair = inputs as Record<string, unknown>;
    onlyFields(pair, ["text", "text_pair"], " in inputs");
    if (typeof pair.text !== "string") throw invalidRequest(`"inputs.text" must be a string`);
    if (pair.text_pair !== undefined && typeof pair.text_pair !== "string") {
      throw invalidRequest(`"inputs.text_pair" must be a string, got ${describe(pair.text_pair)}`);
    }
    return { texts: [pair.text], pairs: [pair.text_pair as string | undefined], batch: false, ...common };
  }
  throw invalidRequest(
    `"inputs" must be a string, a list of strings or {"text", "text_pair"}; send ${HF_EXAMPLE}`,
  );
}

/** Parses a text-embeddings-inference `/predict` body. */
export function parsePredict(json: unknown, maxTexts: number): ParsedInputs {
  const body = object(json, TEI_EXAMPLE);
  onlyFields(body, TEI_FIELDS);
  for (const flag of ["truncate", "raw_scores"]) {
    if (body[flag] !== undefined && body[flag] !== null && typeof body[flag] !== "boolean") {
      throw invalidRequest(`"${flag}" must be true or false, got ${describe(body[flag])}`);
    }
  }
  const direction = body.truncation_direction;
  if (direction !== undefined && direction !== null && !/^right$/i.test(String(direction))) {
    throw invalidRequest(`"truncation_direction" ${describe(direction)} is not supported; use "right"`);
  }
  const common = {
    transform: body.raw_scores === true ? "none" as const : "softmax" as const,
    refuseLong: body.truncate !== true,
  };
  const inputs = body.inputs;
  if (typeof inputs === "string") return { texts: [inputs], batch: false, ...common };
  const isPair = (v: unknown) => Array.isArray(v) && v.length === 2 && v.every((s) => typeof s === "string");
  if (isPair(inputs)) {
    const [a, b] = inputs as string[];
    return { texts: [a], pairs: [b], batch: false, ...common };
  }
  if (Array.isArray(inputs)) {
    checkCount(`"inputs"`, inputs.length, maxTexts);
    if (inputs.length === 0) throw invalidRequest(`"inputs" is empty; send at least one input`);
    const texts: string[] = [];
    const pairs: (string | undefined)[] = [];
    inputs.forEach((item, i) => {
      const ok = Array.isArray(item) && (item.length === 1 || item.length === 2) &&
        item.every((s) => typeof s === "string");
      if (!ok) {
        throw invalidRequest(
          `"inputs[${i}]" must be [text] or [text, pair] in a batch, got ${
            describe(item)
          }; send ${TEI_EXAMPLE}`,
        );
      }
      texts.push(item[0]);
      pairs.push(item[1]);
    });
    return { texts, pairs, batch: true, ...common };
  }
  throw invalidRequest(`"inputs" must be a text, a pair or a batch; send ${TEI_EXAMPLE}`);
}

/**
 * One text's answer: every label with its score (softmax, sigmoid or raw logit), best first, cut to
 * `topK`. A regression model (one output) answers its value under its one label.
 * @example
 * ```ts
 * import { labelScores } from "./shapes.ts";
 * const m = { labels: ["no", "yes"], problemType: "single_label_classification" } as const;
 * console.log(labelScores(new Float32Array([0, Math.log(3)]), m, "softmax")); // [{ label: "yes", score: 0.75 }, { label: "no", score: 0.25 }]
 * ```
 */
export function labelScores(
  logits: ArrayLike<number>,
  manifest: { readonly labels: readonly string[]; readonly problemType: string },
  transform: ParsedInputs["transform"],
  topK?: number,
): LabelScore[] {
  if (manifest.problemType === "regression") return [{ label: manifest.labels[0], score: logits[0] }];
  const values = Array.from(logits);
  let scores = values;
  if (transform === "softmax") {
    const max = Math.max(...values);
    const exps = values.map((v) => Math.exp(v - max));
    const sum = exps.reduce((a, b) => a + b, 0);
    scores = exps.map((e) => e / sum);
  } else if (transform === "sigmoid") scores = values.map((v) => 1 / (1 + Math.exp(-v)));
  const answer = manifest.labels.map((label, i) => ({ label, score: scores[i] }));
  answer.sort((a, b) => b.score - a.score);
  return topK === undefined ? answer : answer.slice(0, topK);
}

/** 413 input_too_long for /predict without `truncate`: TEI refuses rather than cuts. */
export function tooLong(index: number, maxLength: number): HttpError {
  return new HttpError(
    413,
    "input_too_long",
    `inputs[${index}] is over the model's ${maxLength} tokens; shorten it or send "truncate": true`,
  );
}
