/**
 * `deno task bench --suite all --quick --json <file>` end to end, as a subprocess: every suite ran,
 * every figure is finite, the environment block is filled in and the table comes last. No speed
 * assertions: these are smoke figures on a shared 2-core machine.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { parseSuites, SUITES } from "./main.ts";
import { UsageError } from "../train/cli.ts";

const MAIN = fileURLToPath(new URL("./main.ts", import.meta.url));

/** Every number stored under a key named like a figure (median, p50Ms, ...), with its path. */
function figures(value: unknown, path = "$"): [string, unknown][] {
  if (Array.isArray(value)) return value.flatMap((v, i) => figures(v, `${path}[${i}]`));
  if (value === null || typeof value !== "object") return [];
  return Object.entries(value).flatMap(([k, v]) =>
    /^(median|min|max|medianMs|minMs|maxMs|p50Ms|p99Ms|throughput|value)$/.test(k) && typeof v !== "object"
      ? [[`${path}.${k}`, v] as [string, unknown]]
      : figures(v, `${path}.${k}`)
  );
}

Deno.test({
  name: "bench/main.ts --suite all --quick writes every suite, finite figures and the environment",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "bench_main_test_" });
    try {
      const json = `${dir}/report.json`;
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", MAIN, "--suite", "all", "--quick", "--json", json],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stdout = new TextDecoder().decode(out.stdout);
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, `exit ${out.code}\n${stdout}\n${stderr}`);
      const report = JSON.parse(await Deno.readTextFile(json));

      assert.deepEqual(Object.keys(report.suites), [...SUITES]);
      assert.deepEqual(report.errors, {});
      assert.equal(report.quick, true);
      const found = figures(report.suites);
      assert.ok(found.length > 50, `only ${found.length} figures`);
      for (const [path, v] of found) {
        assert.ok(typeof v === "number" && Number.isFinite(v), `${path} is ${v}`);
      }
      for (const r of report.rows) assert.ok(Number.isFinite(r.median), JSON.stringify(r));
      for (const r of report.ratios) assert.ok(Number.isFinite(r.value) && r.value > 0, JSON.stringify(r));
      // Each suite contributed rows; the train suite's same-run PyTorch reference is in the ratios
      // whenever this machine's Python has torch.
      for (const s of SUITES) assert.ok(report.rows.some((r: { suite: string }) => r.suite === s), s);
      const train = report.suites.train;
      const env0 = report.environment;
      // The tiny step in f32, then in f16 where the adapter has shader-f16 (lavapipe does).
      const f16 = env0.adapter.features.includes("shader-f16");
      assert.deepEqual(
        train.steps.map((s: { model: string; precision: string }) => `${s.model} ${s.precision}`),
        f16 ? ["tiny f32", "tiny f16"] : ["tiny f32"],
      );
      if (f16) assert.ok(report.ratios.some((r: { name: string }) => r.name === "tiny step: f16 / f32"));
      assert.ok(train.steps[0].trainingBytes > train.steps[0].engineBytes);
      // The cost account: clear, norm and AdamW are a handful of dispatches, not three per tensor.
      const account = train.accounts[0];
      assert.equal(train.dispatchesPerStep.tiny, account.dispatches);
      assert.ok(account.dispatches < account.perTensorDispatches - 100, JSON.stringify(account.phases));
      assert.ok(train.encodeMsPerStep.tiny > 0 && train.estimate.tiny.ms > 0);
      if (train.torchCpu) {
        assert.ok(report.ratios.some((r: { name: string }) => r.name.includes("PyTorch CPU")));
      } else assert.ok(train.notes.some((n: string) => n.includes("PyTorch CPU reference skipped")));
      if (train.padding) {
        assert.ok(train.padding.dynamic.paddedTokens < train.padding.fixed.paddedTokens);
        assert.equal(train.padding.fixed.realTokens, train.padding.dynamic.realTokens);
      }

      const env = report.environment;
      assert.equal(typeof env.adapter.description, "string");
      assert.equal(typeof env.adapter.isFallback, "boolean");
      assert.ok(Array.isArray(env.adapter.features));
      assert.ok(env.cpu.length > 0 && env.cores >= 1, JSON.stringify(env));
      assert.deepEqual([env.deno, env.v8, env.typescript], [
        Deno.version.deno,
        Deno.version.v8,
        Deno.version.typescript,
      ]);
      const lock = JSON.parse(await Deno.readTextFile(new URL("../deno.lock", import.meta.url)));
      assert.deepEqual(
        Object.entries(env.packages).map(([name, version]) => `npm:${name}@${version}`).sort(),
        Object.keys(lock.specifiers).filter((s) => s.startsWith("npm:")).sort(),
      );
      assert.equal(env.packages["onnxruntime-web"], "1.30.0");
      assert.ok(!Number.isNaN(Date.parse(env.date)));
      if (env.git !== null) assert.match(env.git.commit, /^[0-9a-f]{40}$/);

      // The table is printed last: its header, then rows to the end of stdout.
      const lines = stdout.trimEnd().split("\n");
      const header = lines.findIndex((l) => /^suite\s+figure\s+median\s+min\s+max/.test(l));
      assert.ok(header >= 0, stdout);
      assert.equal(lines.length - header - 1, report.rows.length + 1 + report.ratios.length);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("parseSuites() accepts names, lists and all, in run order", () => {
  assert.deepEqual(parseSuites("all"), [...SUITES]);
  assert.deepEqual(parseSuites("train,kernels"), ["kernels", "train"]);
  assert.deepEqual(parseSuites(" serve "), ["serve"]);
  assert.throws(() => parseSuites("kernel"), UsageError);
  assert.throws(() => parseSuites(","), UsageError);
});
