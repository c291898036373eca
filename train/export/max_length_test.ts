/** The export's default max length: the run's training length, else max_position_embeddings capped at 512. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { defaultMaxLength, exportModel } from "./export.ts";
import { fixtureDir } from "./_test_util.ts";

/** A copy of a fixture model folder (max_position_embeddings 16), with training_args.json when given. */
async function modelFolder(trainingArgs?: Record<string, unknown>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "export_maxlen_" });
  for (const f of ["config.json", "model.safetensors"]) {
    await Deno.copyFile(fixtureDir("tiny") + f, join(dir, f));
  }
  if (trainingArgs) await Deno.writeTextFile(join(dir, "training_args.json"), JSON.stringify(trainingArgs));
  return dir;
}

async function servedLength(dir: string): Promise<number> {
  return JSON.parse(await Deno.readTextFile(join(dir, "serve.json"))).maxLength;
}

Deno.test("exportModel() without maxLength uses max_position_embeddings (16) when no training length is known", async () => {
  const dir = await modelFolder();
  try {
    const r = await exportModel(dir, { variants: ["int8"] });
    assert.deepEqual([r.maxLength, r.maxLengthSource], [16, "max_position_embeddings"]);
    assert.equal(await servedLength(dir), 16);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("exportModel() without maxLength uses the run's training max length; an explicit one wins", async () => {
  const dir = await modelFolder({ maxLength: 12, batchSize: 8 });
  try {
    const r = await exportModel(dir, { variants: ["int8"] });
    assert.deepEqual([r.maxLength, r.maxLengthSource], [12, "training_args.json"]);
    assert.equal(await servedLength(dir), 12);
    const explicit = await exportModel(dir, { variants: ["int8"], maxLength: 5 });
    assert.deepEqual([explicit.maxLength, explicit.maxLengthSource], [5, "option"]);
    assert.equal(await servedLength(dir), 5);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("defaultMaxLength() caps at 512, reads max_length too, and ignores a training length the model cannot take", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assert.deepEqual(await defaultMaxLength(dir, 2048), {
      maxLength: 512,
      source: "max_position_embeddings",
    });
    await Deno.writeTextFile(join(dir, "training_args.json"), JSON.stringify({ max_length: 256 }));
    assert.deepEqual(await defaultMaxLength(dir, 2048), { maxLength: 256, source: "training_args.json" });
    await Deno.writeTextFile(join(dir, "training_args.json"), JSON.stringify({ maxLength: 128 }));
    assert.deepEqual(await defaultMaxLength(dir, 64), { maxLength: 64, source: "max_position_embeddings" });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task export with no --max-length on a 16-position model works and says which length and why", async () => {
  const dir = await modelFolder({ maxLength: 12 });
  try {
    const main = new URL("./main.ts", import.meta.url).pathname;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", main, "--model", dir, "--variants", "int8"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, text);
    assert.match(text, /max length 12 tokens: the length the model was trained at \(training_args\.json\)/);
    await Deno.remove(join(dir, "training_args.json"));
    const again = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", main, "--model", dir, "--variants", "int8"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text2 = new TextDecoder().decode(again.stdout) + new TextDecoder().decode(again.stderr);
    assert.equal(again.code, 0, text2);
    assert.match(text2, /max length 16 tokens: max_position_embeddings capped at 512/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
