/**
 * BertForSequenceClassification as an ONNX graph (opset 17), computing what Hugging Face's
 * modeling_bert.py computes at inference (no dropout):
 *
 *   inputs  input_ids, attention_mask, token_type_ids: int64 (batch, sequence)
 *   h       = LayerNorm(word[ids] + type[token_type_ids] + position[0..T-1])
 *   layer   = LN(h1 + FFN(h1)), h1 = LN(h + Attention(h)), FFN = dense(GELU_erf(dense(h1)))
 *   output  logits: float32 (batch, num_labels) = classifier(tanh(pooler(h[:, 0])))
 *
 * The attention mask is added as (1 - mask) * float32 min, exactly HF's extended mask, after the
 * scores are divided by sqrt(head_dim). Linear weights arrive in PyTorch's (out, in) layout and are
 * transposed to MatMul's (in, out) here.
 *
 * int8: every weight MatMul (Q, K, V, attention output, FFN, pooler, classifier) becomes a dynamic
 * quantized matmul and the word embeddings a per-row int8 table; LayerNorm, attention's
 * activation x activation matmuls, position and token type embeddings stay float32.
 *
 * Two graph forms compute the same function:
 * - fused (default): onnxruntime's com.microsoft transformer ops: one Q|K|V matmul per layer split for
 *   MultiHeadAttention, SkipLayerNormalization for residual + LayerNorm, Gelu (exact, erf) or BiasGelu.
 * - portable: standard ONNX ops only (opset 17), for any runtime.
 * @module
 */

import { type BertConfig, numLabels } from "../config.ts";
import { layerNames, parameterSpecs } from "../params.ts";
import { float, GraphBuilder } from "./graph.ts";
import { DataType } from "./onnx_proto.ts";
import { emitInt8Gather, emitInt8Linear, type Int8LinearForm, type Int8LinearOptions } from "./quantize.ts";

/** float32's most negative finite value, torch.finfo(torch.float32).min: HF's mask fill value. */
export const FLOAT32_MIN = -3.4028234663852886e38;

/** Options of {@linkcode buildBertOnnx}. */
export interface BertOnnxOptions {
  /** "int8": dynamic quantization of the weight matmuls and the word embeddings. @default "none" */
  quantize?: "none" | "int8";
  /**
   * How an int8 linear layer is written (see {@linkcode Int8LinearForm}); chosen by measurement on
   * onnxruntime-web wasm. @default "DynamicQuantizeMatMul"
   */
  int8Linear?: Int8LinearForm;
  /** Storage of the int8 weights (see {@linkcode Int8LinearOptions}). @default "uint8" */
  int8Weights?: "int8" | "uint8";
  /** Quantize the word embedding table to int8 (per row) when quantizing. @default true */
  int8Embeddings?: boolean;
  /**
   * Standard ONNX ops only (no com.microsoft domain): unfused attention, LayerNorm and GELU, and int8
   * linears as MatMulInteger. For runtimes other than onnxruntime. @default false
   */
  portable?: boolean;
  /**
   * Use onnxruntime's fused transformer ops (MultiHeadAttention, SkipLayerNormalization, Gelu).
   * @default true unless `portable`
   */
  fused?: boolean;
}

/** The graph form options resolve to: whether ops are fused and how int8 linears are written. */
export function graphForm(options: BertOnnxOptions): { fused: boolean; int8Linear: Int8LinearForm } {
  const portable = options.portable ?? false;
  const fused = options.fused ?? !portable;
  const int8Linear = options.int8Linear ?? (portable ? "MatMulInteger" : "DynamicQuantizeMatMul");
  if (portable && (fused || int8Linear !== "MatMulInteger")) {
    throw new RangeError(
      `A portable graph uses standard ONNX ops only; drop fused (${fused}) and int8Linear "${int8Linear}"`,
    );
  }
  return { fused, int8Linear };
}

/** Model inputs, in order: int64 (batch, sequence). */
export const INPUT_NAMES = ["input_ids", "attention_mask", "token_type_ids"] as const;
/** Model output: float32 (batch, num_labels). */
export const OUTPUT_NAME = "logits";

/**
 * Checks that every parameter of the config is present with its PyTorch shape.
 * @throws {RangeError} naming the first missing or mis-sized tensor.
 * @example
 * ```ts
 * import { parseBertConfig } from "../config.ts";
 * import { initWeights } from "../weights.ts";
 * import { checkWeights } from "./bert_onnx.ts";
 * const config = parseBertConfig({ hidden_size: 8, num_hidden_layers: 1, num_attention_heads: 2,
 *   intermediate_size: 16, vocab_size: 20, max_position_embeddings: 8 });
 * checkWeights(config, initWeights(config, 1)); // throws when a tensor is missing
 * ```
 */
export function checkWeights(
  config: BertConfig,
  weights: Map<string, Float32Array>,
  source = "weights",
): void {
  for (const spec of parameterSpecs(config)) {
    const w = weights.get(spec.name);
    const count = spec.shape.reduce((a, b) => a * b, 1);
    if (!w) throw new RangeError(`Tensor "${spec.name}" is missing from "${source}"`);
    if (w.length !== count) {
      throw new RangeError(
        `Tensor "${spec.name}" in "${source}" has ${w.length} values, expected shape [${spec.shape}] (${count})`,
      );
    }
  }
}

/** (out, in) row-major -> (in, out) row-major. */
function transpose(w: Float32Array, out: number, inp: number): Float32Array {
  const t = new Float32Array(w.length);
  for (let o = 0; o < out; o++) for (let i = 0; i < inp; i++) t[i * out + o] = w[o * inp + i];
  return t;
}

/**
 * Builds the BERT sequence classifier as ONNX protobuf bytes.
 * @throws {RangeError} when a weight is missing or has the wrong size.
 * @example
 * ```ts
 * import { parseBertConfig } from "../config.ts";
 * import { initWeights } from "../weights.ts";
 * import { buildBertOnnx } from "./bert_onnx.ts";
 * const config = parseBertConfig({ hidden_size: 8, num_hidden_layers: 1, num_attention_heads: 2,
 *   intermediate_size: 16, vocab_size: 20, max_position_embeddings: 8 });
 * const bytes = buildBertOnnx(config, initWeights(config, 1), { quantize: "int8" });
 * ```
 */
export function buildBertOnnx(
  config: BertConfig,
  weights: Map<string, Float32Array>,
  options: BertOnnxOptions = {},
): Uint8Array {
  const form = graphForm(options);
  return bertGraph(config, weights, options).encode({
    docString: `BertForSequenceClassification, ${options.quantize === "int8" ? "int8 dynamic" : "float32"}, ${
      options.portable ? "portable (standard ONNX ops)" : form.fused ? "fused (com.microsoft ops)" : "unfused"
    }`,
  });
}

/**
 * The graph behind {@linkcode buildBertOnnx}, before encoding (for inspection and size accounting).
 * @example
 * ```ts
 * import { parseBertConfig } from "../config.ts";
 * import { initWeights } from "../weights.ts";
 * import { bertGraph } from "./bert_onnx.ts";
 * const config = parseBertConfig({ hidden_size: 8, num_hidden_layers: 1, num_attention_heads: 2,
 *   intermediate_size: 16, vocab_size: 20, max_position_embeddings: 8 });
 * const graph = bertGraph(config, initWeights(config, 1)).build().graph;
 * console.log(graph.node.length, graph.initializer.length);
 * ```
 */
export function bertGraph(
  config: BertConfig,
  weights: Map<string, Float32Array>,
  options: BertOnnxOptions = {},
): GraphBuilder {
  checkWeights(config, weights);
  const int8 = options.quantize === "int8";
  const { fused, int8Linear } = graphForm(options);
  const int8Options: Int8LinearOptions = { form: int8Linear, weightType: options.int8Weights };
  const H = config.hidden_size;
  const heads = config.num_attention_heads;
  const D = H / heads;
  const L = numLabels(config);
  const eps = config.layer_norm_eps;
  const W = (name: string) => weights.get(name)!;
  const g = new GraphBuilder("bert_for_sequence_classification");

  const dims = ["batch", "sequence"];
  const ids = g.input("input_ids", DataType.INT64, dims);
  const mask = g.input("attention_mask", DataType.INT64, dims);
  const types = g.input("token_type_ids", DataType.INT64, dims);

  // y = x @ W^T + b for x (..., in), W (out, in). Float32 without `addBias` leaves the bias to the caller.
  const linearOf = (x: string, name: string, w: Float32Array, b: Float32Array, addBias = true): string => {
    if (int8) return emitInt8Linear(g, x, w, b, name, int8Options);
    const out = b.length;
    const inp = w.length / out;
    const wT = g.initializer(`${name}.weight_t`, transpose(w, out, inp), [inp, out]); // MatMul wants (in, out)
    const y = g.op("MatMul", [x, wT]);
    return addBias ? g.op("Add", [y, g.initializer(`${name}.bias`, b, [out])]) : y;
  };
  const linear = (x: string, name: string, addBias = true): string =>
    linearOf(x, name, W(`${name}.weight`), W(`${name}.bias`), addBias);
  // Residual + LayerNorm: LN(x + bias + skip); `bias` is the float32 linear's bias left out of x.
  const skipLayerNorm = (x: string, skip: string, name: string, bias?: string): string =>
    fused
      ? g.op(
        "SkipLayerNormalization",
        [
          x,
          skip,
          g.initializer(`${name}.weight`, W(`${name}.weight`), [H]),
          g.initializer(`${name}.bias`, W(`${name}.bias`), [H]),
          ...(bias ? [bias] : []),
        ],
        { epsilon: float(eps) },
        "com.microsoft",
      )
      : layerNorm(g.op("Add", [bias ? g.op("Add", [x, bias]) : x, skip]), name);
  const layerNorm = (x: string, name: string): string =>
    g.op("LayerNormalization", [
      x,
      g.initializer(`${name}.weight`, W(`${name}.weight`), [H]),
      g.initializer(`${name}.bias`, W(`${name}.bias`), [H]),
    ], { axis: -1, epsilon: float(eps) });
  const table = (name: string): string => {
    const t = W(name);
    return g.initializer(name, t, [t.length / H, H]);
  };

  // Embeddings: (B, T, H). Word + token type, then + position, in HF's order.
  const wordName = "bert.embeddings.word_embeddings.weight";
  const word = int8 && options.int8Embeddings !== false
    ? emitInt8Gather(g, W(wordName), H, ids, wordName)
    : g.op("Gather", [table(wordName), ids], { axis: 0 });
  const type = g.op("Gather", [table("bert.embeddings.token_type_embeddings.weight"), types], { axis: 0 });
  const seqLen = g.op("Shape", [ids], { start: 1, end: 2 }); // (1,): [T]
  const positions = g.op("Slice", [
    table("bert.embeddings.position_embeddings.weight"),
    g.int64([0]),
    seqLen,
    g.int64([0]),
  ]); // rows 0..T-1: (T, H), broadcast over the batch
  let h = layerNorm(g.op("Add", [g.op("Add", [word, type]), positions]), "bert.embeddings.LayerNorm");

  // Additive mask (B, 1, 1, T): 0 where attended, float32 min where padded (HF's extended mask).
  let additiveMask = "";
  const additive = () => {
    if (!additiveMask) {
      const maskF = g.op("Cast", [g.op("Unsqueeze", [mask, g.int64([1, 2])])], { to: DataType.FLOAT });
      additiveMask = g.op("Mul", [g.op("Sub", [g.float32([1]), maskF]), g.float32([FLOAT32_MIN])]);
    }
    return additiveMask;
  };

  // Constants of the unfused form (made on first use, shared after).
  const headShape = () => g.int64([0, 0, heads, D]); // Reshape's 0 copies B and T
  // Fused attention masks keys with an int32 (B, T) 1/0 mask and fills float32 min, as HF does.
  const keyMask = fused ? g.op("Cast", [mask], { to: DataType.INT32 }) : "";
  const biasOf = (name: string) =>
    g.initializer(`${name}.bias`, W(`${name}.bias`), [W(`${name}.bias`).length]);
  for (let i = 0; i < config.num_hidden_layers; i++) {
    const n = layerNames(i);
    let context: string; // (B, T, H)
    if (fused) {
      // One (H, 3H) matmul for Q|K|V, split into three (B, T, H) for MultiHeadAttention.
      const qkvW = new Float32Array(3 * H * H);
      const qkvB = new Float32Array(3 * H);
      [n.query, n.key, n.value].forEach((name, j) => {
        qkvW.set(W(`${name}.weight`), j * H * H);
        qkvB.set(W(`${name}.bias`), j * H);
      });
      const qkvName = n.query.replace(/query$/, "qkv");
      const qkv = linearOf(h, qkvName, qkvW, qkvB, int8);
      const [q, k, v] = g.node("Split", [qkv], { outputs: 3, attributes: { axis: -1 } });
      const qkvBias = int8 ? "" : g.initializer(`${qkvName}.bias`, qkvB, [3 * H]);
      context = g.op(
        "MultiHeadAttention",
        [q, k, v, qkvBias, keyMask],
        { num_heads: heads, mask_filter_value: float(FLOAT32_MIN) },
        "com.microsoft",
      );
    } else {
      const split = (x: string, perm: number[]) =>
        g.op("Transpose", [g.op("Reshape", [x, headShape()])], { perm });
      const q = split(linear(h, n.query), [0, 2, 1, 3]); // (B, heads, T, D)
      const kT = split(linear(h, n.key), [0, 2, 3, 1]); // (B, heads, D, T)
      const v = split(linear(h, n.value), [0, 2, 1, 3]); // (B, heads, T, D)
      const scores = g.op("Add", [
        g.op("Div", [g.op("MatMul", [q, kT]), g.float32([Math.sqrt(D)])]),
        additive(),
      ]); // (B, heads, T, T)
      const probs = g.op("Softmax", [scores], { axis: -1 });
      context = g.op("Reshape", [
        g.op("Transpose", [g.op("MatMul", [probs, v])], { perm: [0, 2, 1, 3] }),
        g.int64([0, 0, H]),
      ]);
    }
    const h1 = skipLayerNorm(
      linear(context, n.attnOut, !fused || int8),
      h,
      n.attnLn,
      fused && !int8 ? biasOf(n.attnOut) : undefined,
    );
    let gelu: string;
    if (fused) {
      // Exact GELU (erf) as one op; float32 adds the bias inside it (BiasGelu).
      gelu = int8
        ? g.op("Gelu", [linear(h1, n.inter)], {}, "com.microsoft")
        : g.op("BiasGelu", [linear(h1, n.inter, false), biasOf(n.inter)], {}, "com.microsoft");
    } else {
      // Exact GELU: x * 0.5 * (1 + erf(x / sqrt(2))).
      const pre = linear(h1, n.inter);
      const erf = g.op("Erf", [g.op("Mul", [pre, g.float32([Math.SQRT1_2])])]);
      gelu = g.op("Mul", [g.op("Mul", [pre, g.float32([0.5])]), g.op("Add", [erf, g.float32([1])])]);
    }
    h = skipLayerNorm(
      linear(gelu, n.out, !fused || int8),
      h1,
      n.outLn,
      fused && !int8 ? biasOf(n.out) : undefined,
    );
  }

  // Pooler on token 0: (B, H) -> tanh(dense), then the classifier: (B, num_labels).
  const first = g.op("Gather", [h, g.int64([0], [])], { axis: 1 });
  const pooled = g.op("Tanh", [linear(first, "bert.pooler.dense")]);
  const logits = g.node("Identity", [linear(pooled, "classifier")], { outputs: [OUTPUT_NAME] })[0];
  g.output(logits, DataType.FLOAT, ["batch", L]);
  return g;
}
