import { join } from "node:path";
import { loadModel, saveModel } from "./checkpoint.ts";
import { parameterSpecs } from "./params.ts";
import { numel } from "./weights.ts";
import { BertEngine } from "./model.ts";
import { floatTensor, readSafetensors, serializeSafetensors } from "../formats/safetensors.ts";
import { assertClose, GPU_TEST, testGpu } from "../tests/util.ts";
import type { BatchInput } from "./model.ts";

const fixtures = new URL("../tests/fixtures/model/", import.meta.url).pathname;

async function tinyBatch(): Promise<BatchInput> {
  const b = await readSafetensors(join(fixtures, "tiny", "batch.safetensors"));
  const [B, T] = b.tensors.get("input_ids")!.shape;
  return {
    inputIds: b.tensors.get("input_ids")!.data as Int32Array,
    attentionMask: b.tensors.get("attention_mask")!.data as Int32Array,
    tokenTypeIds: b.tensors.get("token_type_ids")!.data as Int32Array,
    labels: floatTensor(b, "labels"),
    batchSize: B,
    seqLen: T,
  };
}

async function logitsOf(dir: string): Promise<Float32Array> {
  const gpu = await testGpu();
  const m = await loadModel(dir, { dropout: 0 });
  const batch = await tinyBatch();
  const engine = BertEngine.create(gpu, m.config, m.weights, {
    maxBatch: batch.batchSize,
    maxSeqLen: batch.seqLen,
  });
  engine.setBatch(batch);
  gpu.run(engine.inferencePlan(batch.batchSize, batch.seqLen).forward);
  return await gpu.readF32(engine.logits, batch.batchSize * 2);
}

Deno.test("saveModel() then loadModel() then saveModel() gives identical bytes", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const a = await loadModel(join(fixtures, "tiny"));
    await saveModel(join(tmp, "a"), a.config, a.weights);
    const b = await loadModel(join(tmp, "a"));
    await saveModel(join(tmp, "b"), b.config, b.weights);
    for (const f of ["model.safetensors", "config.json"]) {
      const x = await Deno.readFile(join(tmp, "a", f));
      const y = await Deno.readFile(join(tmp, "b", f));
      if (x.length !== y.length || x.some((v, i) => v !== y[i])) {
        throw new Error(`${f} differs after a round trip`);
      }
    }
    // And the weights survive unchanged from the PyTorch-written file.
    const torchFile = await readSafetensors(join(fixtures, "tiny", "model.safetensors"));
    for (const [name, w] of b.weights) assertClose(w, floatTensor(torchFile, name), { abs: 0, rel: 0 }, name);
    const config = JSON.parse(await Deno.readTextFile(join(tmp, "b", "config.json")));
    if (
      config.id2label["1"] !== "acceptable" || config.architectures[0] !== "BertForSequenceClassification"
    ) {
      throw new Error(`config.json lacks HF fields: ${JSON.stringify(config)}`);
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test({
  name: "loadModel() reads torch.save(state_dict) with bare names and gives identical logits",
  ...GPU_TEST,
  fn: async () => {
    const fromSafetensors = await logitsOf(join(fixtures, "tiny"));
    const fromBin = await logitsOf(join(fixtures, "tiny_bin"));
    assertClose(fromBin, fromSafetensors, { abs: 0, rel: 0 }, "logits");
  },
});

Deno.test("loadModel() checks shapes and gives a checkpoint without a classifier a fresh head", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const full = await loadModel(join(fixtures, "tiny"));
    await Deno.copyFile(join(fixtures, "tiny", "config.json"), join(tmp, "config.json"));
    const write = (flat: boolean) =>
      Deno.writeFile(
        join(tmp, "model.safetensors"),
        serializeSafetensors(
          parameterSpecs(full.config).filter((s) => !s.name.startsWith("classifier."))
            .map((
              s,
            ) => [s.name, { shape: flat ? [numel(s.shape)] : s.shape, data: full.weights.get(s.name)! }]),
        ),
      );
    await write(true);
    const err = await loadModel(tmp).catch((e) => e as Error);
    if (
      !(err instanceof RangeError) ||
      !/tensor "bert\.embeddings\.word_embeddings\.weight" has shape \[1600\], expected \[50,32\]/.test(
        err.message,
      )
    ) throw new Error(`unexpected: ${err}`);
    await write(false);
    const m = await loadModel(tmp, { seed: 3 });
    if (m.initialized.join() !== "classifier.weight,classifier.bias") {
      throw new Error(`initialized: ${m.initialized}`);
    }
    const w = m.weights.get("classifier.weight")!;
    const std = Math.sqrt(w.reduce((s, v) => s + v * v, 0) / w.length);
    if (!(std > 0.01 && std < 0.04) || m.weights.get("classifier.bias")!.some((v) => v !== 0)) {
      throw new Error(`fresh head is not normal(0, 0.02) with zero bias: std ${std}`);
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
