/**
 * The engine's half of the GPU script's parity check (bench/gpu/parity.py writes the inputs and
 * compares): loads a Hugging Face model folder (config.json + model.safetensors, as save_pretrained
 * writes it) with dropout off and `batch.safetensors` (input_ids, attention_mask, token_type_ids:
 * int32 or int64 (B, T); labels: float32 (B)), runs one forward and backward on WebGPU, and writes
 * `webgpu.safetensors` into the same folder: logits (B, num_labels), loss (1), and grad.<name> for
 * every parameter (the mean loss's gradient, as loss.backward() gives it).
 *
 * Run: `deno run -A bench/gpu/parity.ts <folder>`. Prints one JSON line (adapter, bytes allocated).
 * Imports no npm package beyond the zip reader, so the GPU host's offline cache stays small.
 * @module
 */

import { join } from "node:path";
import {
  readSafetensors,
  serializeSafetensors,
  type StoredTensor,
  type TensorToWrite,
} from "../../formats/safetensors.ts";
import { Gpu } from "../../kernels/runtime.ts";
import { loadModel, saveModel } from "../../train/checkpoint.ts";
import { numLabels } from "../../train/config.ts";
import { type BatchInput, BertEngine } from "../../train/model.ts";
import { parameterSpecs } from "../../train/params.ts";

/** What {@linkcode runParity} did. */
export interface ParityRun {
  adapter: string;
  fallback: boolean;
  batch: number;
  seq: number;
  parameters: number;
  bytesAllocated: number;
  /** The file written. */
  output: string;
}

function ints(t: StoredTensor | undefined, name: string, file: string): Int32Array {
  if (!t) throw new RangeError(`Batch "${file}" has no tensor "${name}"; parity.py writes it`);
  if (t.data instanceof Int32Array) return t.data;
  if (t.data instanceof BigInt64Array) return Int32Array.from(t.data, Number);
  throw new TypeError(`Batch tensor "${name}" in "${file}" is ${t.dtype}; expected I32 or I64`);
}

/**
 * Loads `folder`, runs forward + backward once and writes `webgpu.safetensors` there.
 * @throws {RangeError} when the checkpoint lacks parameters the config needs (a fresh head would
 * make the comparison meaningless) or the batch is malformed.
 * @example
 * ```ts ignore
 * import { runParity } from "./parity.ts";
 * console.log(await runParity("/tmp/parity")); // { adapter: "...", output: "/tmp/parity/webgpu.safetensors", ... }
 * ```
 */
export async function runParity(folder: string, gpu?: Gpu): Promise<ParityRun> {
  const model = await loadModel(folder, { dropout: 0 });
  if (model.initialized.length) {
    throw new RangeError(
      `Model "${folder}" lacks ${model.initialized.join(", ")}: save the whole BertForSequenceClassification`,
    );
  }
  const batchFile = join(folder, "batch.safetensors");
  const batch = await readSafetensors(batchFile);
  const ids = batch.tensors.get("input_ids");
  if (!ids || ids.shape.length !== 2) {
    throw new RangeError(`Batch "${batchFile}" needs input_ids of shape (B, T)`);
  }
  const [B, T] = ids.shape;
  const labels = batch.tensors.get("labels");
  if (!labels || !(labels.data instanceof Float32Array)) {
    throw new RangeError(`Batch "${batchFile}" needs float32 labels of shape (${B})`);
  }
  const input: BatchInput = {
    inputIds: ints(ids, "input_ids", batchFile),
    attentionMask: ints(batch.tensors.get("attention_mask"), "attention_mask", batchFile),
    tokenTypeIds: ints(batch.tensors.get("token_type_ids"), "token_type_ids", batchFile),
    labels: labels.data,
    batchSize: B,
    seqLen: T,
  };
  gpu ??= await Gpu.create();
  const engine = BertEngine.create(gpu, model.config, model.weights, { maxBatch: B, maxSeqLen: T });
  engine.setBatch(input);
  const plan = engine.plan(B, T);
  gpu.run([...engine.clearGradients(), ...plan.forward, ...plan.backward]);
  const L = numLabels(model.config);
  const tensors: [string, TensorToWrite][] = [
    ["logits", { shape: [B, L], data: await gpu.readF32(engine.logits, B * L) }],
    ["loss", { shape: [1], data: await gpu.readF32(engine.loss, 1) }],
  ];
  const grads = await engine.readGrads();
  const specs = parameterSpecs(model.config);
  for (const spec of specs) {
    tensors.push([`grad.${spec.name}`, { shape: spec.shape, data: grads.get(spec.name)! }]);
  }
  const output = join(folder, "webgpu.safetensors");
  await Deno.writeFile(output, serializeSafetensors(tensors));
  // Our own checkpoint of the same weights, for parity.py to load with transformers' from_pretrained.
  await saveModel(join(folder, "ours"), model.config, await engine.readParams());
  return {
    adapter: gpu.report.description || gpu.report.vendor,
    fallback: gpu.isFallback,
    batch: B,
    seq: T,
    parameters: specs.length,
    bytesAllocated: engine.bytesAllocated,
    output,
  };
}

if (import.meta.main) {
  if (Deno.args.length !== 1 || Deno.args[0].startsWith("-")) {
    console.error(
      "usage: deno run -A bench/gpu/parity.ts <folder with config.json, model.safetensors, batch.safetensors>",
    );
    Deno.exit(2);
  }
  console.log(JSON.stringify(await runParity(Deno.args[0])));
}
