/**
 * Backends and threads benchmark: the served model (serve/model.ts, exactly what `deno serve` runs)
 * on wasm at 1 thread and at the default thread count, native (onnxruntime-node) at the same
 * threads, and WebGPU where the adapter allows, for sequences 16 and 64 and batches 1 and 8.
 * onnxruntime-web fixes its thread count once per isolate, so every (backend, threads) pair runs in
 * its own process; the pairs run one after another, so they do not compete for cores. Reports
 * median/min/max ms, each process's RSS after loading and its peak, and the ratios 1 thread /
 * default threads and wasm / native in the same run.
 *
 * Run: `deno run -A bench/infer_backends.ts [--quick] [--webgpu] <export folder>` (a folder with
 * serve.json, e.g. from `deno task export`; `bench/infer.ts --bert-base --backends` makes a random
 * bert-base one). Prints a table and one JSON line.
 * @module
 */

import { loadServeModel } from "../serve/model.ts";
import { type Backend, defaultThreads, type ModelVariant } from "../serve/config.ts";
import { readRssKb } from "./soak.ts";
import { summarize } from "./_stats.ts";

/** One process's measurements. */
export interface BackendRun {
  backend: Backend;
  variant: ModelVariant;
  threads: number;
  /** MiB after the session exists, and the process's peak (VmHWM) at the end. */
  loadedMiB: number | null;
  peakMiB: number | null;
  timings: {
    batch: number;
    sequence: number;
    runs: number;
    medianMs: number;
    minMs: number;
    maxMs: number;
  }[];
}

/** What {@linkcode benchBackends} measured. */
export interface BackendsResult {
  runs: BackendRun[];
  /** "int8 b1 s64": wasm 1-thread median / wasm default-threads median (> 1: threads help). */
  threadsSpeedup: Record<string, number>;
  /** "int8 b1 s64 t2": wasm median / native median at the same threads (> 1: native is faster). */
  wasmOverNative: Record<string, number>;
}

const SHAPES = { batches: [1, 8], sequences: [16, 64] };

async function timeOne(
  dir: string,
  backend: Backend,
  variant: ModelVariant,
  threads: number,
  quick: boolean,
) {
  const model = await loadServeModel(dir, { backend, variant, threads });
  const loadedKb = readRssKb(Deno.pid);
  const timings: BackendRun["timings"] = [];
  for (const sequence of SHAPES.sequences) {
    for (const batch of SHAPES.batches) {
      if (sequence > model.manifest.maxLength) continue; // a tiny test export
      const vocab = model.tokenizer.vocabSize;
      const ids = new Int32Array(sequence).map((_, i) => 5 + ((i * 7919) % (vocab - 5)));
      ids[0] = model.tokenizer.clsId;
      ids[sequence - 1] = model.tokenizer.sepId;
      const row = {
        ids,
        attentionMask: new Int32Array(sequence).fill(1),
        tokenTypeIds: new Int32Array(sequence),
        truncated: false,
      };
      const rows = Array.from({ length: batch }, () => row);
      await model.run(rows); // warm-up
      const runs = quick ? 2 : batch === 1 ? 10 : 4;
      const times: number[] = [];
      for (let r = 0; r < runs; r++) {
        const t0 = performance.now();
        await model.run(rows);
        times.push(performance.now() - t0);
      }
      const { median, min, max } = summarize(times);
      timings.push({ batch, sequence, runs, medianMs: median, minMs: min, maxMs: max });
    }
  }
  await model.release();
  const mib = (kb: number | null) => kb === null ? null : kb / 1024;
  const run: BackendRun = {
    backend,
    variant,
    threads: model.threads,
    loadedMiB: mib(loadedKb),
    peakMiB: mib(readRssKb(Deno.pid, "VmHWM")),
    timings,
  };
  return run;
}

/**
 * Times every (backend, threads) pair in its own process on one export folder.
 * @throws {Error} with the child's output when a pair fails (e.g. no WebGPU adapter).
 */
export async function benchBackends(
  dir: string,
  options: { quick?: boolean; webgpu?: boolean; threads?: number } = {},
): Promise<BackendsResult> {
  const many = options.threads ?? defaultThreads(navigator.hardwareConcurrency);
  const pairs: [Backend, ModelVariant, number][] = [
    ["wasm", "int8", 1],
    ["native", "int8", 1],
    ...(many > 1
      ? [["wasm", "int8", many], ["native", "int8", many]] as [Backend, ModelVariant, number][]
      : []),
    ...(options.webgpu ? [["webgpu", "float32", 1]] as [Backend, ModelVariant, number][] : []),
  ];
  const runs: BackendRun[] = [];
  for (const [backend, variant, threads] of pairs) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        import.meta.filename!,
        "--one",
        JSON.stringify({ dir, backend, variant, threads, quick: !!options.quick }),
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    const line = text.split("\n").find((l) => l.startsWith("{"));
    if (out.code !== 0 || line === undefined) {
      throw new Error(
        `${backend} ${variant} x${threads} failed:\n${text}${new TextDecoder().decode(out.stderr)}`,
      );
    }
    runs.push(JSON.parse(line));
  }
  const median = (backend: Backend, threads: number, batch: number, sequence: number) =>
    runs.find((r) => r.backend === backend && r.threads === threads)?.timings.find((t) =>
      t.batch === batch && t.sequence === sequence
    )?.medianMs;
  const threadsSpeedup: Record<string, number> = {};
  const wasmOverNative: Record<string, number> = {};
  for (const sequence of SHAPES.sequences) {
    for (const batch of SHAPES.batches) {
      const key = `int8 b${batch} s${sequence}`;
      const one = median("wasm", 1, batch, sequence), all = median("wasm", many, batch, sequence);
      if (many > 1 && one && all) threadsSpeedup[key] = one / all;
      for (const t of new Set([1, many])) {
        const w = median("wasm", t, batch, sequence), n = median("native", t, batch, sequence);
        if (w && n) wasmOverNative[`${key} t${t}`] = w / n;
      }
    }
  }
  return { runs, threadsSpeedup, wasmOverNative };
}

/** The result as a fixed-width table. */
export function formatBackends(result: BackendsResult): string {
  const f = (v: number | null) => v === null ? "n/a" : v.toFixed(0);
  const lines = ["backend  variant  threads  batch  seq  median ms   min ms   max ms  loaded MiB  peak MiB"];
  for (const r of result.runs) {
    for (const t of r.timings) {
      lines.push(
        `${r.backend.padEnd(8)} ${r.variant.padEnd(8)} ${String(r.threads).padStart(7)} ${
          String(t.batch).padStart(6)
        } ${String(t.sequence).padStart(4)} ${t.medianMs.toFixed(2).padStart(10)} ${
          t.minMs.toFixed(2).padStart(8)
        } ${t.maxMs.toFixed(2).padStart(8)} ${f(r.loadedMiB).padStart(11)} ${f(r.peakMiB).padStart(9)}`,
      );
    }
  }
  const fmt = (o: Record<string, number>) =>
    Object.entries(o).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(", ");
  lines.push(`wasm 1 thread / default threads: ${fmt(result.threadsSpeedup) || "n/a (one core)"}`);
  lines.push(`wasm / native, same threads: ${fmt(result.wasmOverNative)}`);
  return lines.join("\n");
}

if (import.meta.main) {
  const args = [...Deno.args];
  if (args[0] === "--one") {
    const { dir, backend, variant, threads, quick } = JSON.parse(args[1]);
    console.log(JSON.stringify(await timeOne(dir, backend, variant, threads, quick)));
    Deno.exit(0); // the WebGPU device would keep the process alive
  }
  const quick = args.includes("--quick"), webgpu = args.includes("--webgpu");
  const dir = args.find((a) => !a.startsWith("-"));
  if (dir === undefined) {
    console.error("usage: infer_backends.ts [--quick] [--webgpu] <export folder with serve.json>");
    Deno.exit(2);
  }
  const result = await benchBackends(dir, { quick, webgpu });
  console.log(formatBackends(result));
  console.log(JSON.stringify({ bench: "infer-backends", ...result }));
}
