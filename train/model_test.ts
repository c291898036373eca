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
import { Gpu } from "../kernels/runtime.ts";
import { assertClose, GPU_TEST, testGpu } from "../tests/util.ts";
import { MODEL_F16, MODEL_F32 } from "../tests/tolerance.ts";

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
for (const [name, precision] of [["odd", "f32"], ["tiny_dropout", "f32"], ["tiny_dropout", "f16"]] as const) {
  Deno.test({
    name:
      `BertEngine with recompute (gradient checkpointing) equals the full engine bit for bit (${name}, ${precision})`,
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
          precision,
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

/**
 * The same device, but "auto" picks the kernel variants of a real GPU (shared-memory tiled matmul,
 * workgroup LayerNorm and softmax rows): the path a GPU host runs, composed into the whole model here.
 */
async function gpuVariants(): Promise<{ gpu: Gpu; sources: string[] }> {
  const base = await testGpu();
  const gpu = new Gpu(base.device, { ...base.report, isFallback: false });
  const sources: string[] = [];
  const pipeline = gpu.pipeline.bind(gpu);
  gpu.pipeline = (label, code) => {
    sources.push(code);
    return pipeline(label, code);
  };
  return { gpu, sources };
}

// The whole model on the real-GPU kernel variants, in f32 (PyTorch's tolerance) and in f16 storage
// (MODEL_F16: every activation rounded to f16; the loss scale 1024 keeps small gradients normal).
for (const precision of ["f32", "f16"] as const) {
  for (const name of ["odd", "tiny_dropout"]) {
    Deno.test({
      name: `BertEngine on the real-GPU kernel variants, ${precision}, matches PyTorch (${name})`,
      ...GPU_TEST,
      fn: async () => {
        const { gpu, sources } = await gpuVariants();
        const dropout = name === "tiny_dropout";
        const c = await loadCase(name, dropout);
        const engine = BertEngine.create(gpu, c.config, c.weights, {
          maxBatch: c.input.batchSize,
          maxSeqLen: c.input.seqLen,
          precision,
        });
        const scale = precision === "f16" ? 1024 : 1;
        if (engine.lossScale) gpu.write(engine.lossScale, new Float32Array([scale, 0, 0, 0]));
        engine.setBatch(c.input);
        if (dropout) engine.setDropoutSeed(777);
        const plan = engine.plan(c.input.batchSize, c.input.seqLen);
        if (!sources.some((code) => code.includes("// matmul tiled"))) {
          throw new Error("the tiled matmul did not run");
        }
        gpu.run([...engine.clearGradients(), ...plan.forward, ...plan.backward]);
        // f16: within MODEL_F16.rel of each tensor's largest magnitude.
        const maxAbs = (x: ArrayLike<number>) => Array.from(x).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        const check = (
          got: ArrayLike<number>,
          want: Float32Array | Float64Array,
          what: string,
          scaleOf = want,
        ) => {
          const big = maxAbs(scaleOf);
          const tol = precision === "f16" ? { abs: MODEL_F16.rel * big, rel: 0 } : MODEL_F32;
          assertClose(got, want, tol, `${name} ${precision} ${what}`);
        };
        const L = Object.keys(c.config.id2label).length;
        check(
          await gpu.readF32(engine.logits, c.input.batchSize * L),
          floatTensor(c.expected, "logits"),
          "logits",
        );
        check(await gpu.readF32(engine.loss, 1), floatTensor(c.expected, "loss"), "loss");
        for (const [param, g] of await engine.readGrads()) {
          const want = floatTensor(c.expected, `grad.${param}`);
          // The key bias gradient is 0 in exact arithmetic (softmax ignores a shift shared by all keys): its
          // f16 value is rounding noise, held to the scale of the same layer's query bias gradient.
          const scaleOf = param.endsWith("key.bias")
            ? floatTensor(c.expected, `grad.${param.replace("key.bias", "query.bias")}`)
            : want;
          check(g.map((x) => x / scale), want, `grad ${param}`, scaleOf);
        }
      },
    });
  }
}
