/**
 * Test helpers for the exporter: onnxruntime-web / -node sessions, the PyTorch fixture models, random
 * padded batches, and the official onnx checker (tests/onnx_check.py).
 * @module
 */

import * as ortWeb from "npm:onnxruntime-web@1.30.0";
import { type BertConfig, parseBertConfig } from "../config.ts";
import { parameterSpecs } from "../params.ts";
import { floatTensor, readSafetensors } from "../../formats/safetensors.ts";
import type { Rng } from "../../kernels/random.ts";

ortWeb.env.wasm.numThreads = 1;

/** Either runtime: both expose InferenceSession and Tensor with the same API. */
export type OrtRuntime = typeof ortWeb;

/** onnxruntime-web (wasm, one thread). */
export const web: OrtRuntime = ortWeb;

/** onnxruntime-node, loaded on first use (native library). */
export async function node(): Promise<OrtRuntime> {
  return (await import("npm:onnxruntime-node@1.30.0")) as unknown as OrtRuntime;
}

/** A batch of int64 (B, T) inputs, as plain arrays. */
export interface Batch {
  inputIds: number[];
  attentionMask: number[];
  tokenTypeIds: number[];
  batch: number;
  sequence: number;
}

/** Runs a BERT ONNX model on a batch; returns logits (B, num_labels). */
export async function runLogits(
  ort: OrtRuntime,
  model: Uint8Array | string,
  b: Batch,
): Promise<Float32Array> {
  // Two branches because create() has separate overloads for a path and for bytes.
  const session = typeof model === "string"
    ? await ort.InferenceSession.create(model)
    : await ort.InferenceSession.create(model);
  const t = (v: number[]) => new ort.Tensor("int64", BigInt64Array.from(v, BigInt), [b.batch, b.sequence]);
  const out = await session.run({
    input_ids: t(b.inputIds),
    attention_mask: t(b.attentionMask),
    token_type_ids: t(b.tokenTypeIds),
  });
  const logits = out.logits.data as Float32Array;
  await session.release();
  return logits;
}

/** A fixture model written by tests/torch/fixtures_model.py, with its batch and PyTorch's logits. */
export interface FixtureModel {
  dir: string;
  config: BertConfig;
  weights: Map<string, Float32Array>;
  batch: Batch;
  logits: Float32Array;
}

/** The fixture folder tests/fixtures/model/<name>/. */
export function fixtureDir(name: string): string {
  return new URL(`../../tests/fixtures/model/${name}/`, import.meta.url).pathname;
}

/** Loads a fixture model: config, weights, batch and expected logits. */
export async function loadFixture(name: string): Promise<FixtureModel> {
  const dir = fixtureDir(name);
  const config = parseBertConfig(
    JSON.parse(await Deno.readTextFile(`${dir}config.json`)),
    `${dir}config.json`,
  );
  const model = await readSafetensors(`${dir}model.safetensors`);
  const weights = new Map(parameterSpecs(config).map((s) => [s.name, floatTensor(model, s.name)]));
  const stored = await readSafetensors(`${dir}batch.safetensors`);
  const ints = (n: string) => Array.from(stored.tensors.get(n)!.data as Int32Array);
  const [batch, sequence] = stored.tensors.get("input_ids")!.shape;
  const expected = await readSafetensors(`${dir}expected.safetensors`);
  return {
    dir,
    config,
    weights,
    batch: {
      inputIds: ints("input_ids"),
      attentionMask: ints("attention_mask"),
      tokenTypeIds: ints("token_type_ids"),
      batch,
      sequence,
    },
    logits: floatTensor(expected, "logits"),
  };
}

/** Random ids in [1, vocab), right padding (row 0 full length), pair segments in the second half. */
export function randomBatch(rng: Rng, config: BertConfig, batch: number, sequence: number): Batch {
  const b: Batch = { inputIds: [], attentionMask: [], tokenTypeIds: [], batch, sequence };
  for (let r = 0; r < batch; r++) {
    const length = r === 0 ? sequence : 2 + Math.floor(rng.uniform() * (sequence - 1));
    for (let t = 0; t < sequence; t++) {
      const real = t < length;
      b.inputIds.push(real ? 1 + Math.floor(rng.uniform() * (config.vocab_size - 1)) : config.pad_token_id);
      b.attentionMask.push(real ? 1 : 0);
      b.tokenTypeIds.push(real && t >= length / 2 && config.type_vocab_size > 1 ? 1 : 0);
    }
  }
  return b;
}

/** Runs `/usr/bin/python3 tests/onnx_check.py` (onnx.checker full_check) on files; returns code and output. */
export async function onnxCheck(...paths: string[]): Promise<{ code: number; output: string }> {
  const script = new URL("../../tests/onnx_check.py", import.meta.url).pathname;
  const { code, stdout, stderr } = await new Deno.Command("/usr/bin/python3", { args: [script, ...paths] })
    .output();
  const text = new TextDecoder();
  return { code, output: text.decode(stdout) + text.decode(stderr) };
}

/** Index of the largest value in each row of a (rows, cols) array. */
export function argmaxRows(values: ArrayLike<number>, cols: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < values.length / cols; r++) {
    let best = 0;
    for (let c = 1; c < cols; c++) if (values[r * cols + c] > values[r * cols + best]) best = c;
    out.push(best);
  }
  return out;
}
