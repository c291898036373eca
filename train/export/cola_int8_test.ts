/**
 * A tiny BERT trained on CoLA (real tokenizer and data through tests/data.ts), exported: the float32
 * ONNX logits equal the engine's, and int8 and float16 predictions agree with float32 on the CoLA dev
 * sentences (float16 is WebGPU's variant; its numerics are checked on onnxruntime-web's CPU kernels).
 */
import { makeBatches } from "../data/batches.ts";
import { tinyCola } from "../../tests/cola.ts";
import { initWeights } from "../weights.ts";
import { DEFAULT_TRAIN_OPTIONS, Trainer } from "../trainer.ts";
import { saveModel } from "../checkpoint.ts";
import { exportModel } from "./export.ts";
import { web } from "./_test_util.ts";
import { assertClose, GPU_TEST, testGpu } from "../../tests/util.ts";
import { FP16_LOGITS, ONNX_F32 } from "../../tests/tolerance.ts";

function softmax2(l0: number, l1: number): number {
  return 1 / (1 + Math.exp(l0 - l1));
}

Deno.test({
  name:
    "exportModel() of a CoLA-trained tiny model: float32 equals the engine, int8 agrees on >= 99.5% of dev",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const { tokenizer, cola, config } = await tinyCola();
    const recipe = {
      ...DEFAULT_TRAIN_OPTIONS,
      epochs: 2,
      batchSize: 32,
      maxLength: 48,
      lr: 5e-3,
      dynamicPadding: true,
    };
    const trainer = new Trainer(gpu, config, initWeights(config, 2), tokenizer, recipe);
    // A class-balanced sample, so the model predicts both classes on dev (else agreement is vacuous).
    const pos = cola.train.examples.filter((e) => e.label === 1).slice(0, 640);
    const neg = cola.train.examples.filter((e) => e.label === 0).slice(0, 640);
    await trainer.fit({ ...cola.train, examples: pos.flatMap((e, i) => [e, neg[i]]) }, null);
    const dir = await Deno.makeTempDir();
    try {
      await saveModel(dir, config, await trainer.weights(), tokenizer.files());
      const out = await exportModel(dir, { maxLength: 48 });
      const f32 = await web.InferenceSession.create(out.files.float32!);
      const int8 = await web.InferenceSession.create(out.files.int8!);
      const fp16 = await web.InferenceSession.create(out.files.float16!);
      let agree16 = 0;
      const dev = {
        ...cola.inDomainDev,
        examples: [...cola.inDomainDev.examples, ...cola.outOfDomainDev.examples],
      };
      let agree = 0;
      let total = 0;
      let probDiff = 0;
      const predicted = [0, 0];
      for (const batch of makeBatches(dev, tokenizer, { batchSize: 32, maxLength: 48, padding: "longest" })) {
        // Engine logits on WebGPU.
        trainer.engine.setBatch(batch);
        gpu.run(trainer.engine.inferencePlan(batch.batchSize, batch.seqLen).forward);
        const engine = await gpu.readF32(trainer.engine.logits, batch.batchSize * 2);
        const t = (v: Int32Array) =>
          new web.Tensor("int64", BigInt64Array.from(v, BigInt), [batch.batchSize, batch.seqLen]);
        const feeds = {
          input_ids: t(batch.inputIds),
          attention_mask: t(batch.attentionMask),
          token_type_ids: t(batch.tokenTypeIds),
        };
        const a = (await f32.run(feeds)).logits.data as Float32Array;
        const b = (await int8.run(feeds)).logits.data as Float32Array;
        const c = (await fp16.run(feeds)).logits.data as Float32Array;
        assertClose(a, engine, ONNX_F32, "ONNX float32 vs engine logits");
        const scale = a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        assertClose(c, a, { abs: FP16_LOGITS.abs * scale, rel: 0 }, "ONNX float16 vs float32 logits");
        for (let r = 0; r < batch.batchSize; r++) {
          const pa = a[2 * r + 1] > a[2 * r] ? 1 : 0;
          const pb = b[2 * r + 1] > b[2 * r] ? 1 : 0;
          agree += pa === pb ? 1 : 0;
          agree16 += pa === (c[2 * r + 1] > c[2 * r] ? 1 : 0) ? 1 : 0;
          predicted[pa]++;
          probDiff = Math.max(
            probDiff,
            Math.abs(softmax2(a[2 * r], a[2 * r + 1]) - softmax2(b[2 * r], b[2 * r + 1])),
          );
          total++;
        }
      }
      await f32.release();
      await int8.release();
      await fp16.release();
      if (agree16 / total < 0.995) throw new Error(`float16 agrees on ${agree16}/${total}`);
      const rate = agree / total;
      if (total !== 1043 || rate < 0.995 || probDiff > 0.05) {
        throw new Error(
          `int8 agrees on ${agree}/${total} (${rate}); largest probability difference ${probDiff}`,
        );
      }
      // Not a vacuous agreement: the trained model predicts both classes.
      console.log(
        `agree ${agree}/${total} (float16 ${agree16}), probDiff ${probDiff}, predicted ${predicted}`,
      );
      if (Math.min(...predicted) < 10) throw new Error(`predictions per class: ${predicted}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
