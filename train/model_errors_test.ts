/** Bad input to the engine: each a clear error, before anything runs. */
import { parseBertConfig } from "./config.ts";
import { BertEngine } from "./model.ts";
import { initWeights } from "./weights.ts";
import { Gpu } from "../kernels/runtime.ts";
import { assertThrows, GPU_TEST, testGpu } from "../tests/util.ts";

const tiny = {
  vocab_size: 50,
  hidden_size: 32,
  num_hidden_layers: 1,
  num_attention_heads: 4,
  intermediate_size: 64,
  max_position_embeddings: 16,
};

Deno.test("parseBertConfig() rejects what the engine does not support, naming the field", () => {
  assertThrows(
    () => parseBertConfig({ ...tiny, hidden_act: "relu" }),
    RangeError,
    /hidden_act "relu" is not supported/,
  );
  assertThrows(
    () => parseBertConfig({ ...tiny, position_embedding_type: "relative_key" }),
    RangeError,
    /position_embedding_type "relative_key" is not supported; only "absolute"/,
  );
  assertThrows(
    () => parseBertConfig({ ...tiny, hidden_size: 30 }),
    RangeError,
    /hidden_size 30 is not a multiple of num_attention_heads 4/,
  );
  assertThrows(
    () => parseBertConfig({ ...tiny, model_type: "roberta" }),
    RangeError,
    /model_type "roberta"/,
  );
  assertThrows(
    () => parseBertConfig({ ...tiny, num_hidden_layers: 0 }),
    RangeError,
    /"num_hidden_layers" must be a positive integer/,
  );
});

Deno.test({
  name: "BertEngine rejects long sequences, unknown token ids and shapes beyond the device",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const config = parseBertConfig(tiny);
    const weights = initWeights(config, 1);
    assertThrows(
      () => BertEngine.create(gpu, config, weights, { maxBatch: 2, maxSeqLen: 17 }),
      RangeError,
      /Sequence length 17 exceeds the model's max_position_embeddings 16/,
    );
    const engine = BertEngine.create(gpu, config, weights, { maxBatch: 2, maxSeqLen: 4 });
    const batch = {
      inputIds: Int32Array.from([2, 5, 3, 0, 2, 50, 3, 0]),
      attentionMask: Int32Array.from([1, 1, 1, 0, 1, 1, 1, 0]),
      tokenTypeIds: new Int32Array(8),
      labels: Float32Array.from([0, 1]),
      batchSize: 2,
      seqLen: 4,
    };
    assertThrows(() => engine.setBatch(batch), RangeError, /50.*index 5.*50/);
    assertThrows(
      () => engine.setBatch({ ...batch, inputIds: new Int32Array(8), labels: Float32Array.from([0, 2]) }),
      RangeError,
      /Label 2 of batch row 1/,
    );
    assertThrows(() => engine.plan(3, 4), RangeError, /Batch size 3 is outside \[1, 2\]/);
    // 40,000 x 16 x 16 x 4 heads x 4 bytes of attention scores: far past llvmpipe's 128 MiB binding limit.
    const before = gpu.bytesAllocated;
    assertThrows(
      () => BertEngine.create(gpu, config, weights, { maxBatch: 40000, maxSeqLen: 16 }),
      RangeError,
      /attention scores .* maxStorageBufferBindingSize.*use a smaller batch size \(now 40000\)/,
    );
    if (gpu.bytesAllocated !== before) throw new Error("a rejected engine left buffers allocated");
  },
});

Deno.test({
  name: "Gpu reports a lost device with a clear error",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await Gpu.create();
    const config = parseBertConfig(tiny);
    const engine = BertEngine.create(gpu, config, initWeights(config, 1), { maxBatch: 1, maxSeqLen: 4 });
    gpu.device.destroy();
    await gpu.device.lost;
    assertThrows(
      () => gpu.run(engine.plan(1, 4).forward),
      Error,
      /WebGPU device was lost.*create a new Gpu/,
    );
  },
});
