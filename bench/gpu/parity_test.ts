/**
 * The GPU script's parity path at a tiny size on this machine's adapter: bench/gpu/parity.py writes the
 * model (tests/torch/bert_reference.py when transformers is missing) and batch, runs
 * bench/gpu/parity.ts, and compares. Skipped when /usr/bin/python3 has no torch.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { parseSafetensors, serializeSafetensors, type TensorToWrite } from "../../formats/safetensors.ts";
import { assertClose } from "../../tests/util.ts";
import { MODEL_F32 } from "../../tests/tolerance.ts";

const PYTHON = "/usr/bin/python3";
const PARITY = fileURLToPath(new URL("./parity.py", import.meta.url));
const GROUPS = [
  "logits",
  "loss",
  "grad embeddings",
  "grad attention",
  "grad feed-forward",
  "grad encoder LayerNorm",
  "grad pooler",
  "grad classifier",
];

async function pythonHas(module: string): Promise<boolean> {
  try {
    return (await new Deno.Command(PYTHON, { args: ["-c", `import ${module}`], stderr: "null" }).output())
      .success;
  } catch {
    return false;
  }
}

async function parity(args: string[]): Promise<{ code: number; text: string }> {
  const out = await new Deno.Command(PYTHON, {
    args: [PARITY, ...args, "--deno", Deno.execPath()],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  return { code: out.code, text: d.decode(out.stdout) + d.decode(out.stderr) };
}

async function load(path: string) {
  return parseSafetensors(await Deno.readFile(path), path);
}

Deno.test({
  name: "parity.py --tiny: the WebGPU engine matches PyTorch, and a wrong gradient is reported",
  ignore: !(await pythonHas("torch")),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "bench_parity_test_" });
    try {
      const run = await parity(["--tiny", "--out", dir, "--work", `${dir}/work`]);
      assert.equal(run.code, 0, run.text);
      const result = JSON.parse(await Deno.readTextFile(`${dir}/parity.json`));
      assert.ok(result.ok, run.text);
      const transformers = await pythonHas("transformers");
      assert.match(result.reference, transformers ? /^transformers / : /bert_reference\.py/);
      assert.deepEqual(Object.keys(result.groups).sort(), [...GROUPS].sort());
      assert.deepEqual([result.batch, result.seq], [4, 16]);
      for (const [name, g] of Object.entries(result.groups) as [string, { max_abs: number }][]) {
        assert.ok(Number.isFinite(g.max_abs), `${name}: ${g.max_abs}`);
      }

      // The engine's tensors against the reference, element by element, with the model tolerance.
      const ours = await load(`${dir}/work/webgpu.safetensors`);
      const ref = await load(`${dir}/work/reference.safetensors`);
      assert.equal(ours.tensors.size, ref.tensors.size);
      for (const [name, t] of ref.tensors) {
        const mine = ours.tensors.get(name);
        assert.ok(mine, `webgpu.safetensors lacks ${name}`);
        assertClose(mine.data as Float32Array, t.data as Float32Array, MODEL_F32, name);
      }

      // Scale the largest attention gradient by 1.01 (a 1% error in the group's largest value, ten
      // times the bound): the comparison must flag that group and only that group.
      let target = "";
      let largest = -1;
      for (const [name, t] of ref.tensors) {
        if (!name.includes(".attention.") || name.includes("LayerNorm")) continue;
        const m = (t.data as Float32Array).reduce((a, v) => Math.max(a, Math.abs(v)), 0);
        if (m > largest) [largest, target] = [m, name];
      }
      const corrupted: [string, TensorToWrite][] = [...ours.tensors].map(([name, t]) => [name, {
        shape: t.shape,
        data: name === target ? (t.data as Float32Array).map((v) => v * 1.01) : t.data as Float32Array,
      }]);
      await Deno.writeFile(`${dir}/work/webgpu.safetensors`, serializeSafetensors(corrupted));
      const again = await parity(["--compare-only", "--out", dir, "--work", `${dir}/work`]);
      assert.equal(again.code, 1, again.text);
      const flagged = JSON.parse(await Deno.readTextFile(`${dir}/parity.json`));
      assert.equal(flagged.ok, false);
      const failing = Object.entries(flagged.groups as Record<string, { ok: boolean; worst: string }>)
        .filter(([, g]) => !g.ok);
      assert.deepEqual(failing.map(([n, g]) => [n, g.worst]), [["grad attention", target]]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
