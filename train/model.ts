/**
 * BertForSequenceClassification on WebGPU: parameters and gradients live on the GPU; the forward
 * and the backward are each a straight sequence of kernel calls (llm.c style), recorded once per
 * batch shape into a {@linkcode Plan} and replayed every step.
 *
 * Activation buffers are allocated once for the largest (batch, sequence) shape and shared by the
 * plans of every smaller shape (dynamic padding, the last short batch).
 * @module
 */

import { type Dispatch, type Dtype, dtypeBytes, type Gpu, requireDtype } from "../kernels/runtime.ts";
import { matmul } from "../kernels/matmul.ts";
import { layerNormBackwardDx, layerNormForward } from "../kernels/layernorm.ts";
import { paramGrads } from "../kernels/param_grads.ts";
import { attentionSoftmaxBackward, attentionSoftmaxForward } from "../kernels/softmax.ts";
import { tanhBackward, tanhForward } from "../kernels/tanh.ts";
import { dropout } from "../kernels/dropout.ts";
import { lossForwardBackward } from "../kernels/loss.ts";
import {
  buildEmbeddingIndex,
  createEmbeddingIndexBuffers,
  embeddingBackward,
  embeddingForward,
  type EmbeddingIndex,
  positionEmbeddingBackward,
  validateTokenIds,
  writeEmbeddingIndex,
} from "../kernels/embedding.ts";
import { fill } from "../kernels/fill.ts";
import { type BertConfig, numLabels } from "./config.ts";
import { flatLayout, layerNames, parameterSpecs } from "./params.ts";
import { FlatTensors } from "./flat.ts";
import { numel, type Weights } from "./weights.ts";

/** One batch as the engine takes it: [B, T] row-major token ids, mask and types; labels [B]. */
export interface BatchInput {
  inputIds: Int32Array;
  attentionMask: Int32Array;
  tokenTypeIds: Int32Array;
  /** Class ids (classification) or targets (regression), one per row. */
  labels: Float32Array;
  batchSize: number;
  seqLen: number;
}

/** The dispatches for one batch shape. */
export interface Plan {
  batchSize: number;
  seqLen: number;
  /** Embeddings through logits, plus the loss and dlogits. */
  forward: Dispatch[];
  /** dlogits back to every parameter gradient (accumulating: clear grads between optimizer steps). */
  backward: Dispatch[];
}

/** How a training plan scales its loss and gradients. */
export interface PlanOptions {
  /** Multiplier of dL/dlogits: 1 / (batch size x accumulation steps). @default 1 / batch size */
  gradScale?: number;
  /** Add this batch's mean loss to the loss buffer instead of overwriting it (micro-batches 2..n). */
  accumulateLoss?: boolean;
}

/** Options for {@linkcode BertEngine.create}. */
export interface EngineOptions {
  /** Largest batch size the engine will see. */
  maxBatch: number;
  /** Largest sequence length the engine will see (at most max_position_embeddings). */
  maxSeqLen: number;
  /**
   * "f16": activations (and their gradients) stored as float16, with f32 arithmetic, parameters,
   * gradients, LayerNorm statistics, softmax and loss; the loss gradient is scaled by
   * {@linkcode BertEngine.lossScale}. Needs the adapter's shader-f16. @default "f32"
   */
  precision?: Precision;
  /**
   * Gradient checkpointing (transformers' `gradient_checkpointing`): keep only each encoder layer's input
   * and rerun the layer's forward just before its backward, into one set of buffers all layers share.
   * Activation memory drops from one set per layer to one set in all; a step costs about one more
   * forward. Gradients are identical: the rerun is the same dispatches on the same inputs, with the same
   * dropout masks (they come from the seed). @default false
   */
  recompute?: boolean;
}

/** Storage precision of the engine's activations. */
export type Precision = "f32" | "f16";

/** Every precision {@linkcode EngineOptions.precision} accepts. */
export const PRECISIONS: readonly Precision[] = ["f32", "f16"];

/** Where each dropout site takes its RNG stream: layer * 8 + site. */
const SITE = { attnProbs: 0, attnOut: 1, ffnOut: 2, embeddings: 6, pooler: 7 } as const;

interface LayerActs {
  qkv: GPUBuffer; // (N, 3C): Q | K | V side by side, one fused projection

  probs: GPUBuffer; // (B·H, T, T) softmax output
  probsDrop: GPUBuffer; // after attention dropout (== probs when p = 0)
  ctx: GPUBuffer;
  attnOut: GPUBuffer; // projection output before dropout (scratch shared by every layer: the backward reads sum1)
  sum1: GPUBuffer; // dropout(attnOut) + x
  h1: GPUBuffer; // LayerNorm(sum1)
  mean1: GPUBuffer;
  rstd1: GPUBuffer;
  interPre: GPUBuffer; // (N, I) before GELU
  inter: GPUBuffer;
  ffnOut: GPUBuffer; // the same shared scratch (the backward reads sum2)
  sum2: GPUBuffer;
  out: GPUBuffer; // LayerNorm(sum2): the layer output
  mean2: GPUBuffer;
  rstd2: GPUBuffer;
}

/** The engine: weights, gradients and activations on one device. */
export class BertEngine {
  readonly gpu: Gpu;
  readonly config: BertConfig;
  readonly maxBatch: number;
  readonly maxSeqLen: number;
  /** Every parameter in one flat arena (AdamW updates it in one pass). */
  readonly parameters: FlatTensors;
  /** Every gradient in one flat arena of the same layout (accumulated; see {@linkcode BertEngine.clearGradients}). */
  readonly gradients: FlatTensors;
  /** Parameters by HF name: views into {@linkcode BertEngine.parameters}. */
  readonly params: Map<string, GPUBuffer>;
  /** Gradients by HF name: views into {@linkcode BertEngine.gradients}. */
  readonly grads: Map<string, GPUBuffer>;
  /** The dropout seed buffer (u32[0]); written by {@linkcode BertEngine.setDropoutSeed}. */
  readonly seed: GPUBuffer;
  /** Loss (f32[1]) of the last forward, summed over micro-batches when accumulating. */
  readonly loss: GPUBuffer;
  /** Logits (B, num_labels) of the last forward. */
  readonly logits: GPUBuffer;
  /** Storage type of activations. */
  readonly precision: Precision;
  /** Gradient checkpointing: see {@linkcode EngineOptions.recompute}. */
  readonly recompute: boolean;
  /** f16 only: f32[1] loss scale S multiplying dL/dlogits (train/grad_scaler.ts writes it); null for f32. */
  readonly lossScale: GPUBuffer | null;
  #plans = new Map<string, Plan>();
  #b: ReturnType<typeof allocate>;
  #clearGrads: Dispatch[];

  private constructor(gpu: Gpu, config: BertConfig, weights: Weights, options: EngineOptions) {
    this.gpu = gpu;
    this.config = config;
    this.maxBatch = options.maxBatch;
    this.maxSeqLen = options.maxSeqLen;
    if (!(options.maxBatch >= 1) || !(options.maxSeqLen >= 1)) {
      throw new RangeError(
        `Batch size ${options.maxBatch} and sequence length ${options.maxSeqLen} must be >= 1`,
      );
    }
    if (options.maxSeqLen > config.max_position_embeddings) {
      throw new RangeError(
        `Sequence length ${options.maxSeqLen} exceeds the model's max_position_embeddings ${config.max_position_embeddings}: use a max length of at most ${config.max_position_embeddings}`,
      );
    }
    this.precision = options.precision ?? "f32";
    if (!PRECISIONS.includes(this.precision)) {
      throw new RangeError(
        `Precision must be one of ${PRECISIONS.join(", ")}, got ${JSON.stringify(this.precision)}`,
      );
    }
    requireDtype(gpu, this.precision, "--precision f16");
    checkDeviceLimits(gpu, config, options.maxBatch, options.maxSeqLen);
    const specs = parameterSpecs(config);
    for (const spec of specs) {
      const data = weights.get(spec.name);
      if (!data) throw new RangeError(`Weights are missing parameter "${spec.name}"`);
      if (data.length !== numel(spec.shape)) {
        throw new RangeError(
          `Parameter "${spec.name}" has ${data.length} values, expected shape [${spec.shape}]`,
        );
      }
    }
    const layout = flatLayout(specs);
    this.parameters = new FlatTensors(gpu, layout, "params");
    this.gradients = new FlatTensors(gpu, layout, "grads");
    this.parameters.write(new Map(specs.map((s) => [s.name, weights.get(s.name)!])));
    this.params = this.parameters.views;
    this.grads = this.gradients.views;
    this.#clearGrads = this.gradients.clear();
    this.seed = gpu.upload("dropout-seed", new Uint32Array(4));
    this.recompute = options.recompute ?? false;
    this.#b = allocate(gpu, config, options.maxBatch, options.maxSeqLen, this.precision, this.recompute);
    this.lossScale = this.precision === "f16"
      ? gpu.upload("loss-scale", new Float32Array([1, 0, 0, 0]))
      : null;
    this.loss = this.#b.loss;
    this.logits = this.#b.logits;
  }

  /** Uploads weights and allocates gradients and activations for the largest batch shape. */
  static create(gpu: Gpu, config: BertConfig, weights: Weights, options: EngineOptions): BertEngine {
    return new BertEngine(gpu, config, weights, options);
  }

  /** Bytes this engine allocated on the device (parameters, gradients, activations, plans). */
  get bytesAllocated(): number {
    return this.gpu.bytesAllocated;
  }

  /** Dispatches that zero every gradient (start of an optimizer step's accumulation): one per arena window. */
  clearGradients(): Dispatch[] {
    return this.#clearGrads;
  }

  /** Sets the per-step dropout seed (queued before the next submit). */
  setDropoutSeed(seed: number): void {
    this.gpu.write(this.seed, new Uint32Array([seed >>> 0, 0, 0, 0]));
  }

  /**
   * Uploads a batch for `plan`'s shape: ids (validated against the vocabulary), mask, types,
   * labels and the embedding-gradient indexes.
   */
  setBatch(batch: BatchInput): void {
    const { batchSize: B, seqLen: T } = batch;
    this.#checkShape(B, T);
    const n = B * T;
    for (
      const [name, arr] of [["inputIds", batch.inputIds], ["attentionMask", batch.attentionMask], [
        "tokenTypeIds",
        batch.tokenTypeIds,
      ]] as const
    ) {
      if (arr.length !== n) {
        throw new RangeError(`Batch ${name} has ${arr.length} values, expected ${B} x ${T}`);
      }
    }
    if (batch.labels.length !== B) {
      throw new RangeError(`Batch labels have ${batch.labels.length} values, expected ${B}`);
    }
    validateTokenIds(batch.inputIds, this.config.vocab_size, "input_ids");
    validateTokenIds(batch.tokenTypeIds, this.config.type_vocab_size, "token_type_ids");
    const L = numLabels(this.config);
    if (L > 1) {
      for (let i = 0; i < B; i++) {
        const y = batch.labels[i];
        if (!Number.isInteger(y) || y < 0 || y >= L) {
          throw new RangeError(`Label ${y} of batch row ${i} is not a class id in [0, ${L})`);
        }
      }
    }
    const b = this.#b;
    this.gpu.write(b.inputIds, batch.inputIds);
    this.gpu.write(b.tokenTypeIds, batch.tokenTypeIds);
    this.gpu.write(b.mask, Float32Array.from(batch.attentionMask));
    this.gpu.write(b.labels, batch.labels);
    // Word-embedding gradient index; the padding row gets no gradient (nn.Embedding padding_idx).
    const words = withoutRow(buildEmbeddingIndex(batch.inputIds), this.config.pad_token_id);
    writeEmbeddingIndex(this.gpu, b.wordIndex, words);
    writeEmbeddingIndex(this.gpu, b.typeIndex, buildEmbeddingIndex(batch.tokenTypeIds));
  }

  #checkShape(B: number, T: number): void {
    if (!Number.isInteger(B) || B < 1 || B > this.maxBatch) {
      throw new RangeError(`Batch size ${B} is outside [1, ${this.maxBatch}] the engine was created for`);
    }
    if (!Number.isInteger(T) || T < 1 || T > this.maxSeqLen) {
      throw new RangeError(
        `Sequence length ${T} is outside [1, ${this.maxSeqLen}] the engine was created for (max_position_embeddings ${this.config.max_position_embeddings})`,
      );
    }
  }

  /** The recorded dispatches for a batch shape (cached). */
  plan(B: number, T: number, options: PlanOptions = {}): Plan {
    this.#checkShape(B, T);
    const o = {
      gradScale: options.gradScale ?? 1 / B,
      accumulateLoss: options.accumulateLoss ?? false,
      train: true,
    };
    const key = `${B}x${T}:${o.gradScale}:${o.accumulateLoss}`;
    let p = this.#plans.get(key);
    if (!p) {
      p = record(this, this.#b, B, T, o);
      this.#plans.set(key, p);
    }
    return p;
  }

  /** Forward only, dropout off (evaluation): logits and the mean loss of the batch. */
  inferencePlan(B: number, T: number): Plan {
    this.#checkShape(B, T);
    const key = `${B}x${T}:inference`;
    let p = this.#plans.get(key);
    if (!p) {
      p = record(this, this.#b, B, T, { gradScale: 1 / B, accumulateLoss: false, train: false });
      this.#plans.set(key, p);
    }
    return p;
  }

  /** Reads every parameter back (checkpoints). */
  async readParams(): Promise<Weights> {
    return await this.parameters.read();
  }

  /** Reads every gradient back (tests). */
  async readGrads(): Promise<Weights> {
    return await this.gradients.read();
  }

  /** Overwrites parameters from host weights (resume, tests). */
  writeParams(weights: Weights): void {
    this.parameters.write(weights);
  }
}

/**
 * Fails before anything is allocated when the largest buffer of this config and batch shape exceeds
 * what the device can bind; names the limit, the sizes and the fix.
 */
export function checkDeviceLimits(gpu: Gpu, config: BertConfig, B: number, T: number): void {
  const limits = gpu.device.limits;
  const limit = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
  const N = B * T;
  const largest: [string, number][] = [
    ["attention scores (batch x heads x seq x seq)", B * config.num_attention_heads * T * T * 4],
    ["feed-forward activations (batch x seq x intermediate_size)", N * config.intermediate_size * 4],
    ["word embeddings (vocab_size x hidden_size)", config.vocab_size * config.hidden_size * 4],
  ];
  for (const [what, bytes] of largest) {
    if (bytes > limit) {
      throw new RangeError(
        `The ${what} need a ${bytes}-byte buffer but the device's maxStorageBufferBindingSize/maxBufferSize is ${limit}: ` +
          `use a smaller batch size (now ${B}) or sequence length (now ${T})`,
      );
    }
  }
}

/** The index without one row: nn.Embedding(padding_idx) gives the padding row no gradient. */
export function withoutRow(index: EmbeddingIndex, row: number): EmbeddingIndex {
  const r = index.rows.indexOf(row);
  if (r < 0) return index;
  const s0 = index.starts[r];
  const s1 = index.starts[r + 1];
  const k = s1 - s0;
  const positions = new Uint32Array(index.positions.length - k);
  positions.set(index.positions.subarray(0, s0));
  positions.set(index.positions.subarray(s1), s0);
  const rows = new Uint32Array(index.rows.length - 1);
  rows.set(index.rows.subarray(0, r));
  rows.set(index.rows.subarray(r + 1), r);
  const starts = new Uint32Array(index.starts.length - 1);
  starts.set(index.starts.subarray(0, r + 1));
  for (let i = r + 2; i < index.starts.length; i++) starts[i - 1] = index.starts[i] - k;
  return { rows, starts, positions };
}

/** Allocates activations for the largest shape: one set per layer (one shared set with recompute) plus scratch. */
function allocate(gpu: Gpu, config: BertConfig, B: number, T: number, act: Dtype, recompute: boolean) {
  const C = config.hidden_size;
  const I = config.intermediate_size;
  const H = config.num_attention_heads;
  const L = numLabels(config);
  const N = B * T;
  const f = (label: string, count: number) => gpu.buffer(label, count * 4);
  // Activations and their gradients: f16 in mixed precision.
  const h = (label: string, count: number) => gpu.buffer(label, count * dtypeBytes(act));
  const dropAttn = config.attention_probs_dropout_prob > 0;
  const dropHidden = config.hidden_dropout_prob > 0;
  const embSum = h("emb.sum", N * C);
  const embOut = h("emb.out", N * C);
  const embDrop = dropHidden ? h("emb.drop", N * C) : embOut;
  const layers: LayerActs[] = [];
  // Both output projections of every layer write here: only the LayerNorm right after reads them.
  const projOut = h("proj.out", N * C);
  // One layer's activations; with recompute one set serves every layer (the backward reruns the layer's
  // forward into it first) and only each layer's output, the next layer's input, is kept per layer.
  const layerActs = (prefix: string): LayerActs => {
    const a = (name: string, count: number) => h(`${prefix}.${name}`, count);
    const probs = a("probs", B * H * T * T);
    const attnOut = projOut;
    const ffnOut = projOut;
    const acts: LayerActs = {
      qkv: a("qkv", N * 3 * C),
      probs,
      probsDrop: dropAttn ? a("probsDrop", B * H * T * T) : probs,
      ctx: a("ctx", N * C),
      attnOut,
      sum1: a("sum1", N * C),
      h1: a("h1", N * C),
      mean1: f(`${prefix}.mean1`, N),
      rstd1: f(`${prefix}.rstd1`, N),
      interPre: a("interPre", N * I),
      inter: a("inter", N * I),
      ffnOut,
      sum2: a("sum2", N * C),
      out: a("out", N * C),
      mean2: f(`${prefix}.mean2`, N),
      rstd2: f(`${prefix}.rstd2`, N),
    };
    return acts;
  };
  const shared = recompute && config.num_hidden_layers > 0 ? layerActs("layer") : null;
  for (let l = 0; l < config.num_hidden_layers; l++) {
    layers.push(
      shared ? { ...shared, out: l === 0 ? shared.out : h(`l${l}.out`, N * C) } : layerActs(`l${l}`),
    );
  }
  const pooledPre = f("pool.pre", B * C);
  const pooled = f("pool.out", B * C);
  return {
    inputIds: f("input_ids", N),
    tokenTypeIds: f("token_type_ids", N),
    mask: f("attention_mask", N),
    labels: f("labels", B),
    wordIndex: createEmbeddingIndexBuffers(gpu, N, "word-index"),
    typeIndex: createEmbeddingIndexBuffers(gpu, N, "type-index"),
    embSum,
    embOut,
    embMean: f("emb.mean", N),
    embRstd: f("emb.rstd", N),
    embDrop,
    layers,
    scores: h("scores", B * H * T * T), // raw Q·Kᵀ, scratch shared by every layer
    pooledPre,
    pooled,
    pooledDrop: dropHidden ? f("pool.drop", B * C) : pooled,
    logits: f("logits", B * L),
    loss: f("loss", 1),
    // Backward scratch, shared by every layer.
    dLogits: f("d.logits", B * L),
    dPooled: f("d.pooled", B * C),
    dPooledDrop: f("d.pooledDrop", B * C),
    dA: h("d.a", N * C), // gradient w.r.t. a layer's output
    dB: h("d.b", N * C), // gradient w.r.t. a layer's input
    dH1: h("d.h1", N * C),
    dC: h("d.c", N * C), // scratch (N, C)
    dCtx: h("d.ctx", N * C),
    dQKV: h("d.qkv", N * 3 * C), // dQ | dK | dV side by side
    dInter: h("d.inter", N * I),
    dProbs: h("d.probs", B * H * T * T), // dL/d(dropped probs), then dL/dscores in place
  };
}

/** Records the forward and backward of a (B, T) batch: the model, top to bottom. */
function record(
  engine: BertEngine,
  b: ReturnType<typeof allocate>,
  B: number,
  T: number,
  o: { gradScale: number; accumulateLoss: boolean; train: boolean },
): Plan {
  const { gpu, config } = engine;
  const C = config.hidden_size;
  const I = config.intermediate_size;
  const H = config.num_attention_heads;
  const D = C / H;
  const L = numLabels(config);
  const N = B * T;
  const eps = config.layer_norm_eps;
  const pAttn = o.train ? config.attention_probs_dropout_prob : 0;
  const pHidden = o.train ? config.hidden_dropout_prob : 0;
  const act: Dtype = engine.precision;
  const W = (name: string) => engine.params.get(name)!;
  const G = (name: string) => engine.grads.get(name)!;
  const fwd: Dispatch[] = [];
  const bwd: Dispatch[] = [];
  const qkvOf = (l: number) => {
    const n = layerNames(l);
    return fused(`l${l}.qkv`, [n.query, n.key, n.value]);
  };
  // Dropout (forward, or the backward with the same mask) appended to `list`: returns the buffer the next
  // op reads (x itself when p = 0).
  const dropInto = (list: Dispatch[]) =>
  (
    x: GPUBuffer,
    out: GPUBuffer,
    n: number,
    p: number,
    stream: number,
    dtype = act,
  ): GPUBuffer => {
    if (p <= 0) return x;
    list.push(dropout(gpu, { x, out, n, p, seed: engine.seed, stream, dtype }));
    return out;
  };
  const drop = dropInto(fwd);
  // A linear layer's parameters and gradients: by HF name, or fused (Q|K|V) spans of the arenas.
  type Linear = {
    name: string;
    w: GPUBuffer;
    b: GPUBuffer;
    dw: GPUBuffer;
    db: GPUBuffer;
  };
  const byName = (name: string): Linear => ({
    name,
    w: W(`${name}.weight`),
    b: W(`${name}.bias`),
    dw: G(`${name}.weight`),
    db: G(`${name}.bias`),
  });
  const fused = (label: string, names: string[]): Linear => {
    const span = (arena: typeof engine.parameters, suffix: string) =>
      arena.span(names.map((n) => `${n}.${suffix}`));
    return {
      name: label,
      w: span(engine.parameters, "weight"),
      b: span(engine.parameters, "bias"),
      dw: span(engine.gradients, "weight"),
      db: span(engine.gradients, "bias"),
    };
  };
  const params = (p: string | Linear): Linear => (typeof p === "string" ? byName(p) : p);
  // A LayerNorm's dgamma/dbeta in one dispatch (kernels/param_grads.ts) into its two arena tensors.
  const lnParamGrads = (
    name: string,
    dout: GPUBuffer,
    input: GPUBuffer,
    mean: GPUBuffer,
    rstd: GPUBuffer,
  ) => {
    const { view, at } = engine.gradients.cover([`${name}.weight`, `${name}.bias`]);
    bwd.push(paramGrads(gpu, {
      rows: N,
      dtype: act,
      layerNorm: {
        dout,
        input,
        mean,
        rstd,
        cols: C,
        gammaAt: at(`${name}.weight`),
        betaAt: at(`${name}.bias`),
      },
      grads: view,
      accumulate: true,
    }));
  };
  // Linear y(rows, out) = x(rows, in)·Wᵀ + b, with an optional row stride for x (the pooler reads [CLS] rows).
  const linear = (
    x: GPUBuffer,
    p: string | Linear,
    y: GPUBuffer,
    rows: number,
    out: number,
    inp: number,
    o: { lda?: number; geluPre?: GPUBuffer; x?: Dtype; y?: Dtype } = {},
  ) => {
    const { name, w, b: bias } = params(p);
    fwd.push(matmul(gpu, {
      a: x,
      b: w,
      bias,
      out: y,
      dtypes: { a: o.x ?? act, b: "f32", out: o.y ?? act },
      M: rows,
      N: out,
      K: inp,
      transB: true,
      lda: o.lda,
      // y = gelu(x·Wᵀ + b) with the pre-activation saved for the backward, in one dispatch.
      ...(o.geluPre ? { activation: "gelu" as const, aux: o.geluPre } : {}),
      label: name,
    }));
  };
  // Backward of a linear: dW += dYᵀ·X with db += colsum(dY) in the same dispatch, dX (+)= dY·W.
  const linearBack = (
    dY: GPUBuffer,
    x: GPUBuffer,
    p: string | Linear,
    dX: GPUBuffer | null,
    rows: number,
    out: number,
    inp: number,
    o: {
      accumulateDx?: boolean;
      lda?: number;
      ldc?: number;
      geluPre?: GPUBuffer;
      dY?: Dtype;
      x?: Dtype;
      dX?: Dtype;
    } = {},
  ) => {
    const { name, w, dw, db } = params(p);
    bwd.push(matmul(gpu, {
      a: dY,
      b: x,
      out: dw,
      dtypes: { a: o.dY ?? act, b: o.x ?? act, out: "f32" },
      M: out,
      N: inp,
      K: rows,
      transA: true,
      ldb: o.lda,
      beta: 1,
      rowSum: db, // db += colsum(dY), in the same dispatch
      label: `${name}.dW`,
    }));
    if (dX) {
      bwd.push(matmul(gpu, {
        a: dY,
        b: w,
        out: dX,
        dtypes: { a: o.dY ?? act, b: "f32", out: o.dX ?? act },
        M: rows,
        N: inp,
        K: out,
        ldc: o.ldc,
        beta: o.accumulateDx ? 1 : 0,
        // dX ⊙ gelu'(pre): the gradient through the GELU that produced this linear's input.
        ...(o.geluPre ? { activation: "geluGrad" as const, aux: o.geluPre } : {}),
        label: `${name}.dX`,
      }));
    }
  };
  // Attention products per (b, h) straight from the (B, T, H·D) layout: outer stride b, inner h.
  // An operand is "td": a head's (T, D) columns inside a (B, T, H·D) buffer; "q", "k" or "v": the same
  // inside the Q | K | V block of a (B, T, 3·H·D) buffer; or "tt": a head's (T, T) slice of a (B·H, T, T)
  // buffer. Every product has T rows per head; K is the contracted size.
  type Kind = "td" | "q" | "k" | "v" | "tt";
  type HeadOperand = [GPUBuffer, Kind];
  const ld = (kind: Kind) => (kind === "tt" ? T : kind === "td" ? C : 3 * C);
  const stride = (kind: Kind): [number, number] => (kind === "tt" ? [H * T * T, T * T] : [T * ld(kind), D]);
  const offset = (kind: Kind) => (kind === "k" ? C : kind === "v" ? 2 * C : 0);
  const perHead = (
    label: string,
    a: HeadOperand,
    b: HeadOperand,
    out: HeadOperand,
    K: number,
    t: { transA?: boolean; transB?: boolean } = {},
  ) =>
    matmul(gpu, {
      a: a[0],
      b: b[0],
      out: out[0],
      M: T,
      N: out[1] === "tt" ? T : D,
      K,
      ...t,
      lda: ld(a[1]),
      ldb: ld(b[1]),
      ldc: ld(out[1]),
      batch: B * H,
      heads: H,
      strideA: stride(a[1]),
      strideB: stride(b[1]),
      strideC: stride(out[1]),
      offsetA: offset(a[1]),
      offsetB: offset(b[1]),
      offsetC: offset(out[1]),
      dtypes: { a: act, b: act, out: act },
      label,
    });

  // ---- forward: embeddings
  fwd.push(embeddingForward(gpu, {
    inputIds: b.inputIds,
    tokenTypeIds: b.tokenTypeIds,
    word: W("bert.embeddings.word_embeddings.weight"),
    position: W("bert.embeddings.position_embeddings.weight"),
    tokenType: W("bert.embeddings.token_type_embeddings.weight"),
    out: b.embSum,
    batch: B,
    T,
    dim: C,
    vocabSize: config.vocab_size,
    typeVocabSize: config.type_vocab_size,
    dtype: act,
  }));
  fwd.push(layerNormForward(gpu, {
    x: b.embSum,
    gamma: W("bert.embeddings.LayerNorm.weight"),
    beta: W("bert.embeddings.LayerNorm.bias"),
    out: b.embOut,
    mean: b.embMean,
    rstd: b.embRstd,
    rows: N,
    cols: C,
    eps,
    dtype: act,
  }));
  const embDrop = drop(b.embOut, b.embDrop, N * C, pHidden, SITE.embeddings);
  // A hidden-dropout site fused into the LayerNorm after it (none when p = 0).
  const hiddenDrop = (
    stream: number,
  ) => (pHidden > 0 ? { p: pHidden, seed: engine.seed, stream } : undefined);
  const inputs: GPUBuffer[] = []; // each layer's input
  const probsUsed: GPUBuffer[] = []; // each layer's attention probabilities after dropout

  // ---- forward: encoder layers
  const layerForward: Dispatch[][] = []; // each layer's forward dispatches, rerun by the backward with recompute
  b.layers.forEach((a, l) => {
    const n = layerNames(l);
    const start = fwd.length;
    const x = l === 0 ? embDrop : b.layers[l - 1].out;
    inputs.push(x);
    linear(x, qkvOf(l), a.qkv, N, 3 * C, C);
    fwd.push(perHead(`l${l}.scores`, [a.qkv, "q"], [a.qkv, "k"], [b.scores, "tt"], D, { transB: true }));
    // Scale, mask, softmax and the attention dropout in one dispatch.
    const dropProbs = pAttn > 0 ? { p: pAttn, seed: engine.seed, stream: l * 8 + SITE.attnProbs } : null;
    fwd.push(
      attentionSoftmaxForward(gpu, {
        scores: b.scores,
        mask: b.mask,
        probs: a.probs,
        batch: B,
        heads: H,
        T,
        scale: 1 / Math.sqrt(D),
        dtype: act,
        ...(dropProbs ? { dropout: { ...dropProbs, dropped: a.probsDrop } } : {}),
      }),
    );
    const probs = dropProbs ? a.probsDrop : a.probs;
    probsUsed.push(probs);
    fwd.push(perHead(`l${l}.context`, [probs, "tt"], [a.qkv, "v"], [a.ctx, "td"], T));
    linear(a.ctx, n.attnOut, a.attnOut, N, C, C);
    // h1 = LN(dropout(attnOut) + x): the dropout runs inside the LayerNorm pass.
    fwd.push(layerNormForward(gpu, {
      x: a.attnOut,
      dropout: hiddenDrop(l * 8 + SITE.attnOut),
      residual: x,
      sum: a.sum1,
      gamma: W(`${n.attnLn}.weight`),
      beta: W(`${n.attnLn}.bias`),
      out: a.h1,
      mean: a.mean1,
      rstd: a.rstd1,
      rows: N,
      cols: C,
      eps,
      dtype: act,
    }));
    linear(a.h1, n.inter, a.inter, N, I, C, { geluPre: a.interPre });
    linear(a.inter, n.out, a.ffnOut, N, C, I);
    fwd.push(layerNormForward(gpu, {
      x: a.ffnOut,
      dropout: hiddenDrop(l * 8 + SITE.ffnOut),
      residual: a.h1,
      sum: a.sum2,
      gamma: W(`${n.outLn}.weight`),
      beta: W(`${n.outLn}.bias`),
      out: a.out,
      mean: a.mean2,
      rstd: a.rstd2,
      rows: N,
      cols: C,
      eps,
      dtype: act,
    }));
    layerForward.push(fwd.slice(start));
  });

  // ---- forward: pooler on [CLS] (row b·T of the last output), classifier, loss
  const last = b.layers.length ? b.layers[b.layers.length - 1].out : embDrop;
  const poolerLayer = config.num_hidden_layers * 8;
  // The pooler and the classifier head (B rows) stay f32 in every precision.
  linear(last, "bert.pooler.dense", b.pooledPre, B, C, C, { lda: T * C, y: "f32" });
  fwd.push(tanhForward(gpu, { x: b.pooledPre, out: b.pooled, n: B * C }));
  const pooledDrop = drop(b.pooled, b.pooledDrop, B * C, pHidden, poolerLayer + SITE.pooler, "f32");
  linear(pooledDrop, "classifier", b.logits, B, L, C, { x: "f32", y: "f32" });
  fwd.push(...lossForwardBackward(gpu, {
    logits: b.logits,
    labels: b.labels,
    loss: b.loss,
    dlogits: b.dLogits,
    batch: B,
    numLabels: L,
    gradScale: o.gradScale,
    accumulateLoss: o.accumulateLoss,
    ...(engine.lossScale && o.train ? { scale: engine.lossScale } : {}),
  }));
  if (!o.train) return { batchSize: B, seqLen: T, forward: fwd, backward: [] };

  // ---- backward: classifier, dropout, pooler
  const dropBack = dropInto(bwd);
  // A hidden-dropout site fused into a LayerNorm backward (none when p = 0).
  const dropSite = (dxDrop: GPUBuffer, stream: number) =>
    pHidden > 0 ? { p: pHidden, seed: engine.seed, stream, dxDrop } : undefined;
  linearBack(b.dLogits, pooledDrop, "classifier", b.dPooledDrop, B, L, C, { dY: "f32", x: "f32", dX: "f32" });
  const dPooled = dropBack(b.dPooledDrop, b.dPooled, B * C, pHidden, poolerLayer + SITE.pooler, "f32");
  const dPooledPre = dPooled === b.dPooled ? b.dPooledDrop : b.dPooled;
  bwd.push(tanhBackward(gpu, { out: b.pooled, dout: dPooled, dx: dPooledPre, n: B * C }));
  // The loss reaches the last layer only through [CLS]: zero, then write rows b·T.
  bwd.push(fill(gpu, b.dA, N * C, 0, act));
  linearBack(dPooledPre, last, "bert.pooler.dense", b.dA, B, C, C, { lda: T * C, ldc: T * C, dY: "f32" });

  // ---- backward: encoder layers, last to first. dA = dL/d(layer output); dB = dL/d(layer input).
  let dOut = b.dA;
  let dIn = b.dB;
  for (let l = b.layers.length - 1; l >= 0; l--) {
    const a = b.layers[l];
    const n = layerNames(l);
    // Gradient checkpointing: refill the shared buffers with this layer's activations (the last layer's
    // are still there from the forward).
    if (engine.recompute && l < b.layers.length - 1) bwd.push(...layerForward[l]);
    // out = LN(dropout(ffnOut) + h1): dH1 holds dL/dsum2 first, then collects the FFN path; the same pass
    // writes dFfn = dropout(dL/dsum2) with the forward's mask.
    const dFfn = pHidden > 0 ? b.dC : b.dH1;
    bwd.push(layerNormBackwardDx(gpu, {
      dout: dOut,
      input: a.sum2,
      gamma: W(`${n.outLn}.weight`),
      mean: a.mean2,
      rstd: a.rstd2,
      dx: b.dH1,
      rows: N,
      cols: C,
      dtype: act,
      dropout: dropSite(dFfn, l * 8 + SITE.ffnOut),
    }));
    lnParamGrads(n.outLn, dOut, a.sum2, a.mean2, a.rstd2);
    linearBack(dFfn, a.inter, n.out, b.dInter, N, C, I, { geluPre: a.interPre });
    linearBack(b.dInter, a.h1, n.inter, b.dH1, N, I, C, { accumulateDx: true });
    // h1 = LN(dropout(attnOut) + x): dIn holds dL/dsum1 first, then collects the Q/K/V paths; dAttn =
    // dropout(dL/dsum1) from the same pass.
    const dAttn = pHidden > 0 ? b.dC : dIn;
    bwd.push(layerNormBackwardDx(gpu, {
      dout: b.dH1,
      input: a.sum1,
      gamma: W(`${n.attnLn}.weight`),
      mean: a.mean1,
      rstd: a.rstd1,
      dx: dIn,
      rows: N,
      cols: C,
      dtype: act,
      dropout: dropSite(dAttn, l * 8 + SITE.attnOut),
    }));
    lnParamGrads(n.attnLn, b.dH1, a.sum1, a.mean1, a.rstd1);
    linearBack(dAttn, a.ctx, n.attnOut, b.dCtx, N, C, C);
    // context = P·V: dP = dCtx·Vᵀ, dV = Pᵀ·dCtx.
    const dProbs = b.dProbs;
    bwd.push(perHead(`l${l}.dProbs`, [b.dCtx, "td"], [a.qkv, "v"], [dProbs, "tt"], D, { transB: true }));
    bwd.push(perHead(`l${l}.dV`, [probsUsed[l], "tt"], [b.dCtx, "td"], [b.dQKV, "v"], T, { transA: true }));
    // Gradient w.r.t. the raw scores (attention dropout and scale folded in), in place.
    bwd.push(
      attentionSoftmaxBackward(gpu, {
        probs: a.probs,
        dprobs: dProbs,
        dscores: dProbs,
        rows: B * H * T,
        T,
        scale: 1 / Math.sqrt(D),
        dtype: act,
        ...(pAttn > 0 ? { dropout: { p: pAttn, seed: engine.seed, stream: l * 8 + SITE.attnProbs } } : {}),
      }),
    );
    // scores = Q·Kᵀ: dQ = dS·K, dK = dSᵀ·Q.
    bwd.push(perHead(`l${l}.dQ`, [dProbs, "tt"], [a.qkv, "k"], [b.dQKV, "q"], T));
    bwd.push(perHead(`l${l}.dK`, [dProbs, "tt"], [a.qkv, "q"], [b.dQKV, "k"], T, { transA: true }));
    // One dW for Q, K and V together; one dX summing the three paths (K = 3·hidden).
    linearBack(b.dQKV, inputs[l], qkvOf(l), dIn, N, 3 * C, C, { accumulateDx: true });
    [dOut, dIn] = [dIn, dOut];
  }

  // ---- backward: embeddings. dOut = dL/d(embDrop).
  const dEmbOut = dropBack(dOut, dIn, N * C, pHidden, SITE.embeddings);
  const dEmbSum = dEmbOut === dOut ? dIn : dOut;
  bwd.push(layerNormBackwardDx(gpu, {
    dout: dEmbOut,
    input: b.embSum,
    gamma: W("bert.embeddings.LayerNorm.weight"),
    mean: b.embMean,
    rstd: b.embRstd,
    dx: dEmbSum,
    rows: N,
    cols: C,
    dtype: act,
  }));
  lnParamGrads("bert.embeddings.LayerNorm", dEmbOut, b.embSum, b.embMean, b.embRstd);
  bwd.push(
    embeddingBackward(gpu, {
      dout: dEmbSum,
      index: b.wordIndex,
      dTable: G("bert.embeddings.word_embeddings.weight"),
      dim: C,
      dtype: act,
    }),
  );
  bwd.push(
    embeddingBackward(gpu, {
      dout: dEmbSum,
      index: b.typeIndex,
      dTable: G("bert.embeddings.token_type_embeddings.weight"),
      dim: C,
      dtype: act,
    }),
  );
  bwd.push(
    positionEmbeddingBackward(gpu, {
      dout: dEmbSum,
      dPosition: G("bert.embeddings.position_embeddings.weight"),
      batch: B,
      T,
      dim: C,
      dtype: act,
    }),
  );
  return { batchSize: B, seqLen: T, forward: fwd, backward: bwd };
}
