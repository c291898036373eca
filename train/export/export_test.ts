import assert from "node:assert/strict";
import { exportModel, HF_ONNX_FILES, type ServeManifest } from "./export.ts";
import { decodeModel } from "./onnx_proto.ts";
import { fixtureDir, loadFixture, onnxCheck, runLogits, web } from "./_test_util.ts";
import { assertClose } from "../../tests/util.ts";
import { ONNX_F32 } from "../../tests/tolerance.ts";
import { bertBaseUncasedDir } from "../../tests/data.ts";

/** A temporary model folder: a fixture's config and weights, plus bert-base-uncased's tokenizer files. */
async function modelFolder(fixture: string, withTokenizer: boolean): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "export_model_" });
  for (const f of ["config.json", "model.safetensors"]) {
    await Deno.copyFile(fixtureDir(fixture) + f, `${dir}/${f}`);
  }
  if (withTokenizer) {
    const bert = await bertBaseUncasedDir();
    for (const f of ["tokenizer.json", "vocab.txt", "tokenizer_config.json"]) {
      await Deno.copyFile(`${bert}/${f}`, `${dir}/${f}`);
    }
  }
  return dir;
}

Deno.test("exportModel() writes the three models, serve.json and the tokenizer files", async () => {
  const model = await modelFolder("tiny", true);
  const output = `${await Deno.makeTempDir({ prefix: "export_out_" })}/nested/out`;
  try {
    const result = await exportModel(model, { output, maxLength: 12 });
    assert.deepEqual(result.files, {
      float32: `${output}/model.onnx`,
      int8: `${output}/model.int8.onnx`,
      float16: `${output}/model.fp16.onnx`,
    });
    for (const [variant, path] of Object.entries(result.files)) {
      assert.equal((await Deno.stat(path)).size, result.bytes[variant]);
    }
    const check = await onnxCheck(result.files.float32, result.files.int8);
    assert.equal(check.code, 0, check.output);

    const fx = await loadFixture("tiny");
    assertClose(
      await runLogits(web, result.files.float32, fx.batch),
      fx.logits,
      ONNX_F32,
      "exported float32",
    );

    const manifest: ServeManifest = JSON.parse(await Deno.readTextFile(`${output}/serve.json`));
    assert.deepEqual(manifest, {
      labels: ["unacceptable", "acceptable"],
      maxLength: 12,
      models: { float32: "model.onnx", int8: "model.int8.onnx", float16: "model.fp16.onnx" },
      problemType: "single_label_classification",
    });
    for (const f of ["config.json", "tokenizer.json", "vocab.txt", "tokenizer_config.json"]) {
      assert.deepEqual(await Deno.readFile(`${output}/${f}`), await Deno.readFile(`${model}/${f}`), f);
    }
    // transformers.js / Optimum layout: the same bytes under onnx/ (hard links, one copy on disk).
    const files: Record<string, string> = result.files;
    for (const [variant, hf] of Object.entries(HF_ONNX_FILES)) {
      const linked = await Deno.stat(`${output}/${hf}`);
      const original = await Deno.stat(files[variant]);
      assert.deepEqual(await Deno.readFile(`${output}/${hf}`), await Deno.readFile(files[variant]), hf);
      if (Deno.build.os !== "windows") assert.equal(linked.ino, original.ino, `${hf} is a hard link`);
    }
    const config = JSON.parse(await Deno.readTextFile(`${output}/config.json`));
    assert.deepEqual(config.id2label, { 0: "unacceptable", 1: "acceptable" });
  } finally {
    await Deno.remove(model, { recursive: true });
    await Deno.remove(output.replace(/\/nested\/out$/, ""), { recursive: true });
  }
});

Deno.test("exportModel() defaults to the model folder and writes only the variants asked for", async () => {
  const model = await modelFolder("regression", false);
  try {
    const result = await exportModel(model, { variants: ["int8"] });
    assert.deepEqual(Object.keys(result.files), ["int8"]);
    const names = [];
    for await (const e of Deno.readDir(model)) names.push(e.name);
    assert.deepEqual(names.sort(), [
      "config.json",
      "model.int8.onnx",
      "model.safetensors",
      "onnx",
      "serve.json",
    ]);
    const manifest: ServeManifest = JSON.parse(await Deno.readTextFile(`${model}/serve.json`));
    // maxLength defaults to 128, capped by this model's 8 positions.
    assert.deepEqual(manifest, {
      labels: ["score"],
      maxLength: 8,
      models: { int8: "model.int8.onnx" },
      problemType: "regression",
    });
  } finally {
    await Deno.remove(model, { recursive: true });
  }
});

Deno.test("exportModel({ portable }) writes standard-ONNX graphs that pass the full onnx check", async () => {
  const model = await modelFolder("tiny", false);
  const output = await Deno.makeTempDir({ prefix: "export_portable_" });
  try {
    const result = await exportModel(model, { output, portable: true });
    for (const path of Object.values(result.files)) {
      const { graph, opset_import } = decodeModel(await Deno.readFile(path));
      assert.deepEqual(opset_import.map((o) => o.domain ?? ""), [""], path); // decoding drops the empty domain
      assert.ok(graph.node.every((n) => !n.domain), path);
    }
    const check = await onnxCheck(result.files.float32, result.files.int8);
    assert.equal(check.code, 0, check.output);
    const fx = await loadFixture("tiny");
    assertClose(
      await runLogits(web, result.files.float32, fx.batch),
      fx.logits,
      ONNX_F32,
      "portable float32",
    );
  } finally {
    await Deno.remove(model, { recursive: true });
    await Deno.remove(output, { recursive: true });
  }
});

Deno.test("exportModel() names the missing folder or file", async () => {
  const parent = await Deno.makeTempDir();
  const missing = `${parent}/no-such-model`;
  await assert.rejects(
    exportModel(missing),
    (e: Error) => e instanceof Deno.errors.NotFound && e.message.includes(missing),
  );
  await Deno.remove(parent);
  const model = await modelFolder("tiny", false);
  try {
    await Deno.remove(`${model}/model.safetensors`);
    await assert.rejects(
      exportModel(model),
      (e: Error) =>
        e instanceof Deno.errors.NotFound && e.message.includes(model) &&
        e.message.includes("model.safetensors"),
    );
    await Deno.remove(`${model}/config.json`);
    await assert.rejects(
      exportModel(model),
      (e: Error) => e instanceof Deno.errors.NotFound && e.message.includes(`${model}/config.json`),
    );
  } finally {
    await Deno.remove(model, { recursive: true });
  }
});

Deno.test("exportModel() rejects an unsupported config or tensor, naming the file", async () => {
  const model = await modelFolder("tiny", false);
  const configPath = `${model}/config.json`;
  const original = JSON.parse(await Deno.readTextFile(configPath));
  try {
    await Deno.writeTextFile(configPath, JSON.stringify({ ...original, hidden_act: "relu" }));
    await assert.rejects(
      exportModel(model),
      (e: Error) =>
        e instanceof RangeError && e.message.includes(configPath) && e.message.includes("hidden_act"),
    );
    // A config that disagrees with the weights: the tensor, its file and both shapes are named.
    await Deno.writeTextFile(configPath, JSON.stringify({ ...original, intermediate_size: 48 }));
    await assert.rejects(
      exportModel(model),
      (e: Error) =>
        e instanceof RangeError && e.message.includes(`${model}/model.safetensors`) &&
        e.message.includes("intermediate.dense.weight") && e.message.includes("[48,32]"),
    );
    await Deno.writeTextFile(configPath, "{ not json");
    await assert.rejects(
      exportModel(model),
      (e: Error) => e instanceof SyntaxError && e.message.includes(configPath),
    );
    await Deno.writeTextFile(configPath, JSON.stringify(original));
    await assert.rejects(exportModel(model, { maxLength: 17 }), {
      name: "RangeError",
      message: /maxLength 17 .*\[1, 16\]/,
    });
    await assert.rejects(
      exportModel(model, { variants: ["fp16" as "int8"] }),
      { name: "RangeError", message: /Unknown export variant "fp16"/ },
    );
  } finally {
    await Deno.remove(model, { recursive: true });
  }
});
