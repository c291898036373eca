/**
 * Whole-model parity: logits, loss and the gradient of every named parameter against PyTorch
 * (tests/torch/fixtures_model.py, HF BertForSequenceClassification semantics, dropout off,
 * padding in the batch).
 */
import { floatTensor, readSafetensors } from "../formats/safetensors.ts";
import { parseBertConfig } from "./config.ts";
import { BertEngine } from "./model.ts";
import { parameterSpecs } from "./params.ts";
import type { Weights } from "./weights.ts";
import { assertClose, GPU_TEST, testGpu } from "../tests/util.ts";
import { MODEL_F32 } from "../tests/tolerance.ts";

const fixtures = new URL("../tests/fixtures/model/", import.meta.url);

async function loadCase(name: string, dropout = false) {
  const dir = new URL(`${name}/`, fixtures).pathname;
  const config = parseBertConfig(
    JSON.parse(await Deno.readTextFile(`${dir}config.json`)),
    `${dir}config.json`,
    dropout ? {} : { dropout: 0 },
  );
  const model = await readSafetensors(`${dir}model.safetensors`);
  const weights: Weights = new Map();
  for (const spec of parameterSpecs(config)) weights.set(spec.name, floatTensor(model, spec.name));
  const batch = await readSafetensors(`${dir}batch.safetensors`);
  const expected = await readSafetensors(`${dir}expected.safetensors`);
  const ids = batch.tensors.get("input_ids")!;
  const [B, T] = ids.shape;
  return {
    config,
    weights,
    expected,
    input: {
      inputIds: ids.data as Int32Array,
      attentionMask: batch.tensors.get("attention_mask")!.data as Int32Array,
      tokenTypeIds: batch.tensors.get("token_type_ids")!.data as Int32Array,
      labels: floatTensor(batch, "labels"),
      batchSize: B,
      seqLen: T,
    },
  };
}

// "tiny_dropout": dropout 0.1 at every site, torch applying the engine's own masks for seed 777
// (tests/torch/fixtures_model.py), so the dropout paths of the forward and backward are checked too.
for (const name of ["tiny", "odd", "regression", "tiny_dropout"]) {
  Deno.test({
    name: `BertEngine forward and backward match PyTorch (${name})`,
    ...GPU_TEST,
    fn: async () => {
      const gpu = await testGpu();
      const dropout = name === "tiny_dropout";
      const c = await loadCase(name, dropout);
      if (dropout && !(c.config.hidden_dropout_prob > 0 && c.config.attention_probs_dropout_prob > 0)) {
        throw new Error("tiny_dropout must have dropout on");
      }
      const engine = BertEngine.create(gpu, c.config, c.weights, {
        maxBatch: c.input.batchSize,
        maxSeqLen: c.input.seqLen,
      });
      engine.setBatch(c.input);
      if (dropout) engine.setDropoutSeed(777);
      const plan = engine.plan(c.input.batchSize, c.input.seqLen);
      gpu.run([...engine.clearGradients(), ...plan.forward, ...plan.backward]);
      const logits = await gpu.readF32(
        engine.logits,
        c.input.batchSize * Object.keys(c.config.id2label).length,
      );
      assertClose(logits, floatTensor(c.expected, "logits"), MODEL_F32, `${name} logits`);
      assertClose(
        await gpu.readF32(engine.loss, 1),
        floatTensor(c.expected, "loss"),
        MODEL_F32,
        `${name} loss`,
      );
      const grads = await engine.readGrads();
      for (const [param, g] of grads) {
        assertClose(g, floatTensor(c.expected, `grad.${param}`), MODEL_F32, `${name} grad ${param}`);
      }
    },
  });
}

// Gradient checkpointing reruns each layer's forward before its backward: the same dispatches on the same
// inputs and dropout masks, so every output must be bit-identical to keeping all activations.
for (const name of ["odd", "tiny_dropout"]) {
  Deno.test({
    name: `BertEngine with recompute (gradient checkpointing) equals the full engine bit for bit (${name})`,
    ...GPU_TEST,
    fn: async () => {
      const gpu = await testGpu();
      const c = await loadCase(name, name === "tiny_dropout");
      const run = async (recompute: boolean) => {
        const before = gpu.bytesAllocated;
        const engine = BertEngine.create(gpu, c.config, c.weights, {
          maxBatch: c.input.batchSize,
          maxSeqLen: c.input.seqLen,
          recompute,
        });
        const bytes = gpu.bytesAllocated - before;
        engine.setBatch(c.input);
        engine.setDropoutSeed(777);
        const plan = engine.plan(c.input.batchSize, c.input.seqLen);
        gpu.run([...engine.clearGradients(), ...plan.forward, ...plan.backward]);
        const logits = await gpu.readF32(
          engine.logits,
          c.input.batchSize * Object.keys(c.config.id2label).length,
        );
        return { bytes, logits, loss: await gpu.readF32(engine.loss, 1), grads: await engine.readGrads() };
      };
      const full = await run(false);
      const ckpt = await run(true);
      assertClose(ckpt.logits, full.logits, { abs: 0, rel: 0 }, `${name} logits`);
      assertClose(ckpt.loss, full.loss, { abs: 0, rel: 0 }, `${name} loss`);
      for (const [param, g] of full.grads) {
        assertClose(ckpt.grads.get(param)!, g, { abs: 0, rel: 0 }, `${name} grad ${param}`);
      }
      if (c.config.num_hidden_layers > 1 && !(ckpt.bytes < full.bytes)) {
        throw new Error(`recompute allocated ${ckpt.bytes} bytes, the full engine ${full.bytes}`);
      }
    },
  });
}
