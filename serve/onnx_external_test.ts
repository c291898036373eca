import assert from "node:assert/strict";
import * as ort from "npm:onnxruntime-web@1.30.0";
import { FileRanges, splitInitializers } from "./onnx_external.ts";
import { exportTestModel } from "./_test_model.ts";

const ORT = { sanitizeResources: false, sanitizeOps: false } as const;

async function logits(session: ort.InferenceSession): Promise<Float32Array> {
  const t = (values: number[]) => new ort.Tensor("int64", BigInt64Array.from(values, BigInt), [2, 5]);
  const out = await session.run({
    input_ids: t([2, 7, 9, 11, 3, 2, 12, 3, 0, 0]),
    attention_mask: t([1, 1, 1, 1, 1, 1, 1, 1, 0, 0]),
    token_type_ids: t([0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
  });
  return out.logits.data as Float32Array;
}

Deno.test({
  name: "splitInitializers(): the same logits from the bytes, from memory and read range by range",
  ...ORT,
  fn: async () => {
    const dir = await exportTestModel();
    try {
      for (const file of ["model.onnx", "model.int8.onnx"]) {
        const bytes = await Deno.readFile(`${dir}/${file}`);
        const { graph, moved } = splitInitializers(bytes, file);
        assert.ok(moved > 10, `${file}: ${moved} initializers moved`);
        assert.ok(graph.length < bytes.length / 2, `${file}: graph ${graph.length} of ${bytes.length} B`);
        const direct = await ort.InferenceSession.create(bytes);
        const memory = await ort.InferenceSession.create(graph, {
          externalData: [{ path: file, data: bytes }],
        });
        const ranges = new FileRanges(`${dir}/${file}`);
        const lazy = await ort.InferenceSession.create(graph, {
          externalData: [{ path: file, data: ranges }],
        });
        ranges.close();
        const expected = await logits(direct);
        assert.deepEqual(await logits(memory), expected, `${file} in memory`);
        assert.deepEqual(await logits(lazy), expected, `${file} read by ranges`);
        for (const s of [direct, memory, lazy]) await s.release();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("FileRanges reads exact ranges and refuses ones outside the file", async () => {
  const path = await Deno.makeTempFile();
  try {
    await Deno.writeFile(path, Uint8Array.from({ length: 300 }, (_, i) => i & 255));
    const file = new FileRanges(path);
    assert.ok(file instanceof Uint8Array);
    assert.equal(file.byteLength, 300);
    const range = file.subarray(254, 259);
    assert.deepEqual(Array.from(range), [254, 255, 0, 1, 2]);
    const next = file.subarray(0, 2);
    assert.deepEqual(Array.from(next), [0, 1]);
    assert.equal(range.buffer.byteLength, 0, "the next read frees the range before");
    assert.throws(() => file.subarray(290, 301), RangeError);
    file.close();
    assert.equal(next.buffer.byteLength, 0, "close() frees the last range");
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("splitInitializers() refuses bytes that are not a protobuf", () => {
  assert.throws(() => splitInitializers(Uint8Array.from([0x3a, 0xff, 0xff, 0x7f]), "x.onnx"), RangeError);
});
