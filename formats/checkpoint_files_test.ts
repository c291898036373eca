import assert from "node:assert/strict";
import { CHECKPOINT_FILE_NAMES, loadCheckpointTensors } from "./checkpoint_files.ts";
import {
  readSafetensors,
  serializeSafetensors,
  type StoredTensor,
  type TensorToWrite,
} from "./safetensors.ts";
import { readTorchBin } from "./torch_bin.ts";

const FIXTURES = new URL("../tests/fixtures/checkpoints/", import.meta.url);
const fixturePath = (name: string) => new URL(name, FIXTURES).pathname;

/** Runs `fn` in a fresh temporary folder, removed afterwards. */
async function inTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ckpt_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The tiny BERT twin's tensors as written by PyTorch (the oracle for every layout below). */
async function bertTensors(): Promise<Map<string, StoredTensor>> {
  return (await readSafetensors(fixturePath("bert_tiny.safetensors"))).tensors;
}

/** Writes `tensors` (F32/I64 as read from the twin) as a safetensors file. */
async function writeSafetensors(path: string, tensors: [string, StoredTensor][]): Promise<void> {
  await Deno.writeFile(path, serializeSafetensors(tensors.map(([k, t]) => [k, t as TensorToWrite])));
}

async function writeIndex(path: string, weightMap: Record<string, string>): Promise<void> {
  await Deno.writeTextFile(path, JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));
}

async function rejectsWith(p: Promise<unknown>, cls: new (...args: never[]) => Error, ...parts: string[]) {
  await assert.rejects(p, (e: Error) => {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${e}`);
    for (const part of parts) assert.ok(e.message.includes(part), `"${part}" not in: ${e.message}`);
    return true;
  });
}

Deno.test("loadCheckpointTensors() reads model.safetensors from a folder", async () => {
  await inTempDir(async (dir) => {
    const want = await bertTensors();
    await writeSafetensors(`${dir}/model.safetensors`, [...want]);
    const got = await loadCheckpointTensors(dir);
    assert.equal(got.format, "safetensors");
    assert.deepEqual(got.files, [`${dir}/model.safetensors`]);
    assert.deepStrictEqual(got.tensors, want);
  });
});

Deno.test("loadCheckpointTensors() prefers model.safetensors over pytorch_model.bin", async () => {
  await inTempDir(async (dir) => {
    await Deno.copyFile(fixturePath("bert_tiny.bin"), `${dir}/pytorch_model.bin`);
    await writeSafetensors(`${dir}/model.safetensors`, [...(await bertTensors())]);
    assert.equal((await loadCheckpointTensors(dir)).format, "safetensors");
    await Deno.remove(`${dir}/model.safetensors`);
    const got = await loadCheckpointTensors(dir);
    assert.equal(got.format, "pytorch");
    assert.deepEqual(got.files, [`${dir}/pytorch_model.bin`]);
    assert.deepStrictEqual(got.tensors, await readTorchBin(fixturePath("bert_tiny.bin")));
  });
});

Deno.test("loadCheckpointTensors() joins a two-shard safetensors checkpoint in weight_map order", async () => {
  await inTempDir(async (dir) => {
    const want = [...(await bertTensors())];
    const half = Math.ceil(want.length / 2);
    const shards = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"];
    await writeSafetensors(`${dir}/${shards[0]}`, want.slice(0, half));
    await writeSafetensors(`${dir}/${shards[1]}`, want.slice(half));
    await writeIndex(
      `${dir}/model.safetensors.index.json`,
      Object.fromEntries(want.map(([k], i) => [k, shards[i < half ? 0 : 1]])),
    );
    const got = await loadCheckpointTensors(dir);
    assert.equal(got.format, "safetensors");
    assert.deepEqual(got.files, [`${dir}/model.safetensors.index.json`, ...shards.map((s) => `${dir}/${s}`)]);
    assert.deepStrictEqual(got.tensors, new Map(want));
  });
});

Deno.test("loadCheckpointTensors() names a missing shard and its index", async () => {
  await inTempDir(async (dir) => {
    const want = [...(await bertTensors())];
    await writeSafetensors(`${dir}/a.safetensors`, want.slice(0, 3));
    await writeIndex(`${dir}/model.safetensors.index.json`, {
      [want[0][0]]: "a.safetensors",
      [want[5][0]]: "b.safetensors",
    });
    await rejectsWith(
      loadCheckpointTensors(dir),
      Deno.errors.NotFound,
      'shard "b.safetensors" is missing',
      "index.json",
    );
  });
});

Deno.test("loadCheckpointTensors() rejects an index that escapes its folder or misplaces a tensor", async () => {
  await inTempDir(async (dir) => {
    const want = [...(await bertTensors())];
    await writeSafetensors(`${dir}/a.safetensors`, want.slice(0, 3));
    const index = `${dir}/model.safetensors.index.json`;
    await writeIndex(index, { w: "../a.safetensors" });
    await rejectsWith(loadCheckpointTensors(dir), SyntaxError, index, '"../a.safetensors"');
    await writeIndex(index, { [want[5][0]]: "a.safetensors" });
    await rejectsWith(
      loadCheckpointTensors(dir),
      RangeError,
      `tensor "${want[5][0]}" is missing from shard "a.safetensors"`,
    );
    await Deno.writeTextFile(index, "{not json");
    await rejectsWith(loadCheckpointTensors(dir), SyntaxError, index, "not valid JSON");
    await Deno.writeTextFile(index, "{}");
    await rejectsWith(loadCheckpointTensors(dir), SyntaxError, index, "weight_map");
  });
});

Deno.test("loadCheckpointTensors() reads a sharded pytorch_model.bin.index.json", async () => {
  await inTempDir(async (dir) => {
    // Two copies of one torch file; the index takes half of the tensors from each.
    const shards = ["pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin"];
    for (const s of shards) await Deno.copyFile(fixturePath("bert_tiny.bin"), `${dir}/${s}`);
    const want = await readTorchBin(fixturePath("bert_tiny.bin"));
    await writeIndex(
      `${dir}/pytorch_model.bin.index.json`,
      Object.fromEntries([...want.keys()].map((k, i) => [k, shards[i % 2]])),
    );
    const got = await loadCheckpointTensors(dir);
    assert.equal(got.format, "pytorch");
    assert.equal(got.files.length, 3);
    assert.deepStrictEqual(got.tensors, want);
  });
});

Deno.test("loadCheckpointTensors() reads a single weights file given directly", async () => {
  const bin = await loadCheckpointTensors(fixturePath("bert_tiny.bin"));
  const st = await loadCheckpointTensors(fixturePath("bert_tiny.safetensors"));
  assert.deepEqual([bin.format, st.format], ["pytorch", "safetensors"]);
  assert.deepEqual([...bin.tensors.keys()], [...st.tensors.keys()]);
  await rejectsWith(
    loadCheckpointTensors(fixturePath("values.json")),
    TypeError,
    "values.json",
    "unknown file type",
  );
});

Deno.test("loadCheckpointTensors() names the folder and every file it looked for when none exists", async () => {
  await inTempDir(async (dir) => {
    await rejectsWith(loadCheckpointTensors(dir), Deno.errors.NotFound, dir, ...CHECKPOINT_FILE_NAMES);
    await rejectsWith(loadCheckpointTensors(`${dir}/nope`), Deno.errors.NotFound, `${dir}/nope`);
  });
});
