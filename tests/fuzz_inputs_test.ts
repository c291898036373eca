// Hostile input for every reader that takes outside data, a short run of each fuzz target of
// bench/fuzz.ts (the long mode: `deno run -A bench/fuzz.ts --cases 10000`). Each test prints the
// number of cases its target ran. The ONNX tests below add the named cases the issue asks for:
// truncated files and a valid model with the wrong input or output names.
import assert from "node:assert/strict";
import { join } from "node:path";
import { formatFuzzReport, fuzzTarget, type FuzzTargetName } from "../bench/fuzz.ts";
import { loadServeModel } from "../serve/model.ts";
import { exportTestModel } from "../serve/_test_model.ts";

/** Cases per target in CI: the whole file stays well under 30 s on two cores. */
const CI_CASES: Record<FuzzTargetName, number> = {
  zip: 150,
  cola: 30,
  tsv: 400,
  csv: 400,
  jsonl: 400,
  "serve.json": 25,
  "model.onnx": 40,
  tokenizer: 60, // two of them megabyte strings
};

const WORKERS = { sanitizeResources: false, sanitizeOps: false } as const;

for (const [target, cases] of Object.entries(CI_CASES) as [FuzzTargetName, number][]) {
  Deno.test({
    name: `fuzzTarget("${target}") keeps its contract on ${cases} mutated inputs`,
    ...WORKERS,
    fn: async () => {
      const report = await fuzzTarget(target, { cases, seed: 20_260_611 });
      console.log(formatFuzzReport(report));
      assert.equal(report.cases, cases);
      const rejected = Object.values(report.rejected).reduce((a, b) => a + b, 0);
      assert.equal(report.accepted + rejected, cases);
      if (target === "tokenizer") assert.equal(report.accepted, cases);
      // Mutations that break every file, or none, would test nothing: both outcomes must occur.
      else assert.ok(report.accepted > 0 && rejected > 0, formatFuzzReport(report));
    },
  });
}

Deno.test({
  name: "fuzzTarget() stops a case that hangs and names it",
  ...WORKERS,
  fn: async () => {
    // A grace far below minus any case's limit makes the watchdog take the running case for a hang
    // at its first look; a million cases keep the worker busy until then.
    await assert.rejects(
      () => fuzzTarget("zip", { cases: 1_000_000, seed: 1, graceMs: -1e9 }),
      /Fuzz case zip-fuzz-case-\d+ \(seed 1\) hung: no answer after 0 ms/,
    );
    await assert.rejects(
      () => fuzzTarget("yaml" as FuzzTargetName, { cases: 1 }),
      /Unknown fuzz target "yaml"/,
    );
  },
});

/** A copy of an exported model folder with model.int8.onnx replaced by `bytes`. */
async function withModelFile(source: string, bytes: Uint8Array): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "fuzz_onnx_" });
  for await (const e of Deno.readDir(source)) {
    if (e.isFile) await Deno.copyFile(join(source, e.name), join(dir, e.name)); // onnx/ is not needed
  }
  await Deno.writeFile(join(dir, "model.int8.onnx"), bytes);
  return dir;
}

/** `bytes` with every occurrence of `from` replaced by `to` (same length, so protobuf lengths hold). */
function replaceAscii(bytes: Uint8Array, from: string, to: string): { bytes: Uint8Array; count: number } {
  assert.equal(from.length, to.length);
  const out = bytes.slice();
  const [f, t] = [new TextEncoder().encode(from), new TextEncoder().encode(to)];
  let count = 0;
  for (let i = 0; i + f.length <= out.length; i++) {
    if (f.every((b, k) => out[i + k] === b)) {
      out.set(t, i);
      count++;
    }
  }
  return { bytes: out, count };
}

Deno.test({
  name: "loadServeModel() names the file of a truncated, emptied or renamed-input ONNX model",
  ...WORKERS,
  fn: async () => {
    const source = await exportTestModel({ maxLength: 12 });
    const original = await Deno.readFile(join(source, "model.int8.onnx"));
    const expectations: [string, Uint8Array, ErrorConstructor, RegExp][] = [
      ["empty", new Uint8Array(0), Error, /is not a loadable ONNX model/],
      ["first 10 bytes", original.slice(0, 10), Error, /is not a loadable ONNX model/],
      ["first half", original.slice(0, original.length >> 1), Error, /is not a loadable ONNX model/],
      ["last byte cut", original.slice(0, -1), Error, /is not a loadable ONNX model/],
    ];
    const inputs = replaceAscii(original, "input_ids", "input_idz");
    const outputs = replaceAscii(original, "logits", "logitz");
    assert.ok(inputs.count > 0 && outputs.count > 0);
    expectations.push(
      ["input_ids renamed", inputs.bytes, RangeError, /has inputs \[input_idz,.*expected input_ids/],
      ["logits renamed", outputs.bytes, RangeError, /outputs \[logitz\]; expected .* and logits/],
    );
    try {
      for (const [what, bytes, kind, message] of expectations) {
        const dir = await withModelFile(source, bytes);
        try {
          const error = await loadServeModel(dir).then(() => null, (e: Error) => e);
          assert.ok(error?.constructor === kind, `${what}: expected ${kind.name}, got ${error}`);
          assert.ok(error.message.startsWith(`Cannot load model "${dir}"`), `${what}: ${error.message}`);
          assert.ok(error.message.includes(`"${dir}/model.int8.onnx"`), `${what}: ${error.message}`);
          assert.match(error.message, message, what);
        } finally {
          await Deno.remove(dir, { recursive: true });
        }
      }
    } finally {
      await Deno.remove(source, { recursive: true });
    }
  },
});

Deno.test({
  name: "loadServeModel() refuses a serve.json whose maxLength the model cannot run, naming both files",
  ...WORKERS,
  fn: async () => {
    const dir = await exportTestModel({ maxLength: 12 });
    try {
      const manifest = JSON.parse(await Deno.readTextFile(join(dir, "serve.json")));
      const config = new URL("./fixtures/model/tiny/config.json", import.meta.url);
      const positions = JSON.parse(await Deno.readTextFile(config)).max_position_embeddings;
      // At the model's own limit it loads; one past it, every long request would fail, so loading does.
      await Deno.writeTextFile(
        join(dir, "serve.json"),
        JSON.stringify({ ...manifest, maxLength: positions }),
      );
      await (await loadServeModel(dir)).release();
      await Deno.writeTextFile(
        join(dir, "serve.json"),
        JSON.stringify({ ...manifest, maxLength: positions + 1 }),
      );
      const error = await loadServeModel(dir).then(() => null, (e: Error) => e);
      assert.ok(error instanceof RangeError, String(error));
      assert.ok(
        error.message.includes(`"${dir}/model.int8.onnx" cannot run an input of ${positions + 1} tokens`),
      );
      assert.ok(error.message.includes(`"${dir}/serve.json"`), error.message);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
