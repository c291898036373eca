/**
 * `deno task bench`: the performance suites in one run, a JSON report with the environment, and a
 * table printed last.
 *
 *   deno task bench                               # every suite, full size (long on a software adapter)
 *   deno task bench --suite train --quick         # one suite, tiny shapes
 *   deno task bench --suite kernels,train --json out.json --torch torch.json   # the GPU script's call
 *
 * Every figure is a median over timed runs after warm-up, with min and max; every ratio divides two
 * figures measured in this run and names its reference. Suites: kernels (bench/kernels.ts), train
 * (bench/train.ts), tokenizer (bench/tokenizer.ts), infer (bench/infer.ts), serve (bench/serve.ts).
 * The last three are imported only when selected, so this entry point carries no onnxruntime or
 * native tokenizer into hosts that run only kernels and train (the GPU script).
 * @module
 */

import { fileURLToPath } from "node:url";
import { type Flag, helpText, parseFlags, UsageError, versionText } from "../train/cli.ts";
import { type AdapterReport, describeAdapter } from "../kernels/device.ts";
import { Gpu } from "../kernels/runtime.ts";
import { benchKernels, type KernelsBenchResult, type TorchMatmulReference } from "./kernels.ts";
import { benchTrain, type TorchGpuTrainReference, type TrainBenchResult } from "./train.ts";
import type { Ratio } from "./_stats.ts";
import { formatTable, type Row, row } from "./_table.ts";

/** The suites, in the order they run. */
export const SUITES = ["kernels", "train", "tokenizer", "infer", "serve"] as const;
/** One suite's name. */
export type SuiteName = typeof SUITES[number];

/** The flags of `deno task bench`. */
export const BENCH_FLAGS: Record<string, Flag> = {
  suite: {
    type: "string",
    default: "all",
    value: "names",
    help: `Suites to run: ${SUITES.join("|")}|all, or a comma-separated list`,
  },
  quick: { type: "boolean", help: "Tiny shapes and 1-2 repeats (a smoke test, not a measurement)" },
  json: { type: "string", value: "file", help: "Also write the report (environment + every figure) as JSON" },
  python: {
    type: "string",
    default: "/usr/bin/python3",
    value: "path",
    help: "Python with torch for the train suite's PyTorch CPU reference",
  },
  torch: {
    type: "string",
    value: "file",
    help: "JSON written by bench/gpu/torch_bench.py in the same GPU run: adds ours vs PyTorch ratios",
  },
  "edge-bert-base": {
    type: "boolean",
    help:
      "infer and serve suites on a random bert-base-size model, serve with CoLA dev sentences at 1, 8, 32 clients",
  },
  "bert-base-batch": {
    type: "int",
    min: 1,
    value: "n",
    help: "bert-base batch to time (default 32; 2 on a software adapter, where a step takes minutes)",
  },
};

/** What the run was on. */
export interface Environment {
  adapter: Pick<AdapterReport, "vendor" | "architecture" | "description" | "isFallback" | "features"> | null;
  cpu: string;
  cores: number;
  os: string;
  deno: string;
  v8: string;
  typescript: string;
  /** npm packages as pinned in deno.lock (name -> version). */
  packages: Record<string, string>;
  date: string;
  git: { commit: string; dirty: boolean } | null;
  command: string;
}

/** The JSON report. */
export interface BenchReport {
  environment: Environment;
  quick: boolean;
  suites: Partial<Record<SuiteName, unknown>>;
  /** Suites that threw, with the message. */
  errors: Partial<Record<SuiteName, string>>;
  rows: Row[];
  ratios: (Ratio & { suite: string })[];
  notes: string[];
}

/**
 * Parses `--suite`: names from {@linkcode SUITES}, comma-separated, or "all".
 * @throws {UsageError} naming an unknown suite.
 * @example
 * ```ts
 * import { parseSuites } from "./main.ts";
 * parseSuites("train,kernels"); // ["kernels", "train"]
 * ```
 */
export function parseSuites(value: string): SuiteName[] {
  const names = value.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (names.includes("all")) return [...SUITES];
  for (const n of names) {
    if (!(SUITES as readonly string[]).includes(n)) {
      throw new UsageError(`Unknown suite "${n}": use ${SUITES.join(", ")} or all (comma-separated)`);
    }
  }
  if (names.length === 0) throw new UsageError(`--suite is empty: use ${SUITES.join(", ")} or all`);
  return SUITES.filter((s) => names.includes(s));
}

async function git(args: string[]): Promise<string | null> {
  try {
    const out = await new Deno.Command("git", { args, stdout: "piped", stderr: "null" }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : null;
  } catch {
    return null;
  }
}

/** Collects the environment block (the adapter as the suites get it: high-performance preference). */
async function environment(): Promise<Environment> {
  let report: AdapterReport | null = null;
  if (typeof navigator !== "undefined" && navigator.gpu) {
    const adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
    if (adapter) report = describeAdapter(adapter);
  }
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  const cpu = cpuinfo.match(/^model name\s*:\s*(.+)$/m)?.[1].trim() ?? "unknown";
  const lock = JSON.parse(
    await Deno.readTextFile(new URL("../deno.lock", import.meta.url)).catch(() => "{}"),
  );
  const packages: Record<string, string> = {};
  for (const spec of Object.keys(lock.specifiers ?? {})) {
    const m = spec.match(/^npm:(.+)@([^@]+)$/);
    if (m) packages[m[1]] = m[2];
  }
  const root = fileURLToPath(new URL("..", import.meta.url));
  const commit = await git(["-C", root, "rev-parse", "HEAD"]);
  const status = commit === null ? null : await git(["-C", root, "status", "--porcelain"]);
  return {
    adapter: report
      ? {
        vendor: report.vendor,
        architecture: report.architecture,
        description: report.description,
        isFallback: report.isFallback,
        features: report.features,
      }
      : null,
    cpu,
    cores: navigator.hardwareConcurrency,
    os: `${Deno.build.os} ${Deno.osRelease()} ${Deno.build.arch}`,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
    packages,
    date: new Date().toISOString(),
    git: commit === null ? null : { commit, dirty: (status ?? "") !== "" },
    command: ["deno run -A bench/main.ts", ...Deno.args].join(" "),
  };
}

function kernelRows(r: KernelsBenchResult, rows: Row[], ratios: Ratio[], torchDevice: string): void {
  for (const m of r.matmul) {
    rows.push(row("kernels", `matmul ${m.shape} (${m.kernel})`, m.gflops, "GFLOP/s"));
    if (m.torchGflops) rows.push(row("kernels", `torch.matmul ${m.shape}`, m.torchGflops, "GFLOP/s"));
    if (m.vsTorch !== undefined) {
      ratios.push({
        name: `matmul ${m.shape}: ours / torch`,
        value: m.vsTorch,
        reference: `torch.matmul float32 on ${torchDevice} (GPU script, same run)`,
        reading: "> 1: ours is faster",
      });
    }
  }
  for (const k of r.rows) rows.push(row("kernels", `${k.kernel} ${k.shape} (${k.variant})`, k.gbps, "GB/s"));
  for (const k of r.fused) {
    rows.push(row("kernels", `unfused ${k.fused} ${k.shape}`, k.unfusedMs, "ms"));
    rows.push(row("kernels", `fused ${k.fused} ${k.shape}`, k.fusedMs, "ms"));
    ratios.push({
      name: `${k.fused}: unfused / fused`,
      value: k.speedup,
      reference: "the unfused dispatches, same shapes, same run",
      reading: "> 1: the fused kernel is faster",
    });
  }
}

function trainRows(r: TrainBenchResult, rows: Row[]): void {
  for (const s of r.steps) {
    const model = s.precision === "f16" ? `${s.model} f16` : s.model;
    const shape = `${model} step ${s.batch}x${s.seq}`;
    rows.push(row("train", shape, s.stepMs, "ms"));
    rows.push(row("train", `${model} sequences/s`, s.sequencesPerSecond, "seq/s"));
    rows.push({
      suite: "train",
      what: `${model} training memory (${s.allocatedFor.batch}x${s.allocatedFor.seq})`,
      median: s.trainingBytes / 2 ** 20,
      unit: "MiB (bytesAllocated)",
    });
  }
  if (r.memory) {
    const m = r.memory;
    for (const p of ["f32", "f16", "f16Recompute"] as const) {
      rows.push({
        suite: "train",
        what: `bert-base ${
          p === "f16Recompute" ? "f16 + gradient checkpointing" : p
        } training memory ${m.batch}x${m.seq} (model states ${
          (m[p].modelStates / 2 ** 20).toFixed(0)
        } + activations ${(m[p].activations / 2 ** 20).toFixed(0)} MiB)`,
        median: m[p].total / 2 ** 20,
        unit: "MiB (bytesAllocated)",
      });
    }
  }
  for (const a of r.accounts) {
    const at = `${a.model} ${a.batch}x${a.seq}`;
    const count = (what: string, median: number, unit: string) =>
      rows.push({ suite: "train", what, median, unit });
    count(`${at} dispatches/step`, a.dispatches, `(per-tensor path: ${a.perTensorDispatches})`);
    count(`${at} distinct pipelines`, a.pipelines, "pipelines");
    rows.push(row("train", `${at} encode one step (host)`, a.encodeMs, "ms"));
    count(`${at} est. ${a.estimate.gpu.name} roofline`, a.estimate.ms, "ms");
    if (a.measuredMs !== undefined) count(`${at} measured GPU time (pass per dispatch)`, a.measuredMs, "ms");
    for (const f of a.families) {
      const measured = f.measuredMs === undefined
        ? ""
        : `; measured ${(f.measuredMs * 1000).toPrecision(3)} µs`;
      count(
        `${at} ${f.family}: ${f.dispatches} disp, ${(f.flops / 1e9).toFixed(2)} GFLOP, ${
          (f.bytes / 2 ** 20).toFixed(1)
        } MiB`,
        f.estimateMs * 1000,
        `µs est. ${a.estimate.gpu.name}${measured}`,
      );
    }
  }
  if (r.padding) {
    for (const kind of ["fixed", "dynamic"] as const) {
      const p = r.padding[kind];
      rows.push({
        suite: "train",
        what: `CoLA ${kind} padding: pad tokens/epoch`,
        median: p.paddedTokens,
        unit: "tokens",
      });
      rows.push(row("train", `CoLA ${kind} padding: epoch (tiny, est.)`, p.epochSeconds, "s"));
    }
  }
  if (r.torchCpu) {
    rows.push(
      row("train", `PyTorch CPU tiny step ${r.torchCpu.batch}x${r.torchCpu.seq}`, r.torchCpu.stepMs, "ms"),
    );
  }
  if (r.torchGpu) {
    const t = r.torchGpu;
    rows.push(row("train", `PyTorch float32 step ${t.batch}x${t.seq} (torch_bench.py)`, t.fp32, "ms"));
    if (t.amp) rows.push(row("train", `PyTorch AMP step ${t.batch}x${t.seq} (torch_bench.py)`, t.amp, "ms"));
  }
}

// The shapes main reads from the lazily imported suites (their modules stay out of this file's graph).
interface MsStats {
  median: number;
  min: number;
  max: number;
}
interface TokenizerResult {
  ours: MsStats;
  hf: MsStats;
  oursBatch: MsStats;
  hfBatch: MsStats;
  ratio: number;
  batchRatio: number;
  sentences: number;
  identical: boolean;
}
interface InferResult {
  timings: {
    runtime: string;
    variant: string;
    batch: number;
    medianMs: number;
    minMs: number;
    maxMs: number;
  }[];
  int8Speedup: Record<string, number>;
  nodeSpeedup: Record<string, number>;
  nodeThreads: number;
  graphs?: { graphSpeedup: Record<string, number>; portableSpeedup: Record<string, number> }[];
  backends?: {
    runs: {
      backend: string;
      variant: string;
      threads: number;
      loadedMiB: number | null;
      peakMiB: number | null;
      timings: { batch: number; sequence: number; medianMs: number; minMs: number; maxMs: number }[];
    }[];
    threadsSpeedup: Record<string, number>;
    wasmOverNative: Record<string, number>;
  };
}
interface ServeResult {
  measurements: {
    batching: string;
    concurrency: number;
    p50Ms: number;
    p99Ms: number;
    maxMs: number;
    throughput: number;
    errors: number;
    paddingRatio: number;
    peakRssMb: number;
  }[];
  batchingSpeedup: Record<string, number>;
  seconds: number;
}

function tokenizerRows(r: TokenizerResult, rows: Row[], ratios: Ratio[]): void {
  const n = `${r.sentences} CoLA sentences`;
  rows.push(row("tokenizer", `ours encode() x ${n}`, r.ours, "ms"));
  rows.push(row("tokenizer", `HF encode() x ${n}`, r.hf, "ms"));
  rows.push(row("tokenizer", `ours encodeBatch(${n})`, r.oursBatch, "ms"));
  rows.push(row("tokenizer", `HF encodeBatch(${n})`, r.hfBatch, "ms"));
  const reading = `> 1: ours is faster (identical ids: ${r.identical})`;
  ratios.push({
    name: "tokenizer one at a time: HF / ours",
    value: r.ratio,
    reference: "HF tokenizers 0.23.2",
    reading,
  });
  ratios.push({
    name: "tokenizer batch: HF / ours",
    value: r.batchRatio,
    reference: "HF tokenizers encodeBatch",
    reading,
  });
}

function inferRows(r: InferResult, rows: Row[], ratios: Ratio[]): void {
  for (const t of r.timings) {
    rows.push(row("infer", `${t.runtime} ${t.variant} batch ${t.batch}`, {
      median: t.medianMs,
      min: t.minMs,
      max: t.maxMs,
    }, "ms"));
  }
  for (const [k, v] of Object.entries(r.int8Speedup)) {
    ratios.push({
      name: `int8 speed-up ${k}`,
      value: v,
      reference: "float32 model",
      reading: "> 1: int8 is faster",
    });
  }
  for (const [k, v] of Object.entries(r.nodeSpeedup)) {
    ratios.push({
      name: `web / node ${k}`,
      value: v,
      reference: `onnxruntime-node, ${r.nodeThreads} thread(s)`,
      reading: "> 1: node is faster",
    });
  }
  for (const g of r.graphs ?? []) {
    for (const [k, v] of Object.entries(g.graphSpeedup)) {
      ratios.push({
        name: `fused graph speed-up ${k}`,
        value: v,
        reference: "unfused graph (the export before fusion), onnxruntime-web",
        reading: "> 1: the fused default graph is faster",
      });
    }
    for (const [k, v] of Object.entries(g.portableSpeedup)) {
      ratios.push({
        name: `portable / fused ${k}`,
        value: v,
        reference: "--portable graph (standard ONNX ops), onnxruntime-web",
        reading: "> 1: the fused default graph is faster",
      });
    }
  }
  for (const b of r.backends?.runs ?? []) {
    for (const t of b.timings) {
      rows.push(
        row("infer", `served ${b.backend} ${b.variant} x${b.threads} threads b${t.batch} s${t.sequence}`, {
          median: t.medianMs,
          min: t.minMs,
          max: t.maxMs,
        }, "ms"),
      );
    }
    if (b.peakMiB !== null) {
      rows.push({
        suite: "infer",
        what: `served ${b.backend} x${b.threads} peak RSS`,
        median: b.peakMiB,
        unit: "MiB",
      });
    }
  }
  for (const [k, v] of Object.entries(r.backends?.threadsSpeedup ?? {})) {
    ratios.push({
      name: `wasm 1 thread / default threads ${k}`,
      value: v,
      reference: "onnxruntime-web at 1 thread",
      reading: "> 1: the default thread count is faster",
    });
  }
  for (const [k, v] of Object.entries(r.backends?.wasmOverNative ?? {})) {
    ratios.push({
      name: `wasm / native ${k}`,
      value: v,
      reference: "onnxruntime-node (MODEL_BACKEND=native), same threads",
      reading: "> 1: native is faster",
    });
  }
}

function serveRows(r: ServeResult, rows: Row[], ratios: Ratio[]): void {
  for (const m of r.measurements) {
    const cell = `batching ${m.batching}, ${m.concurrency} client${m.concurrency === 1 ? "" : "s"}`;
    // One measured period per cell: the latency distribution's p50 and max, not a median over runs.
    rows.push({
      suite: "serve",
      what: `${cell}: latency p50 (max)`,
      median: m.p50Ms,
      max: m.maxMs,
      unit: "ms",
    });
    rows.push({ suite: "serve", what: `${cell}: latency p99`, median: m.p99Ms, unit: "ms" });
    rows.push({ suite: "serve", what: `${cell}: throughput`, median: m.throughput, unit: "req/s" });
    rows.push({ suite: "serve", what: `${cell}: padding share`, median: m.paddingRatio, unit: "ratio" });
  }
  const peak = Math.max(...r.measurements.map((m) => m.peakRssMb));
  if (Number.isFinite(peak)) rows.push({ suite: "serve", what: "server peak RSS", median: peak, unit: "MB" });
  for (const [k, v] of Object.entries(r.batchingSpeedup)) {
    ratios.push({
      name: `serve micro-batching ${k}: on / off`,
      value: v,
      reference: "batching off (req/s)",
      reading: "> 1: batching helps",
    });
  }
}

async function lazy<T>(file: string): Promise<T> {
  // A computed specifier keeps the module (and its npm packages) out of this entry point's static graph.
  return await import(new URL(file, import.meta.url).href) as T;
}

/**
 * Runs the selected suites and returns the report (figures, ratios, environment). A suite that
 * throws is recorded in `errors` and the others still run.
 * @example
 * ```ts ignore
 * import { runBench } from "./main.ts";
 * const report = await runBench(["train"], { quick: true });
 * console.log(report.rows);
 * ```
 */
export async function runBench(
  suites: readonly SuiteName[],
  options: {
    quick?: boolean;
    python?: string;
    torch?: string;
    bertBaseBatch?: number;
    edgeBertBase?: boolean;
  } = {},
): Promise<BenchReport> {
  const quick = options.quick ?? false;
  const env = await environment(); // at the start: the date and git state the figures belong to
  const torch = options.torch ? JSON.parse(await Deno.readTextFile(options.torch)) : null;
  const results: BenchReport["suites"] = {};
  const errors: BenchReport["errors"] = {};
  const rows: Row[] = [];
  const ratios: BenchReport["ratios"] = [];
  const notes: string[] = [];
  for (const suite of suites) {
    const t0 = performance.now();
    console.error(`bench: ${suite}${quick ? " (quick)" : ""} ...`);
    const suiteRatios: Ratio[] = [];
    try {
      if (suite === "kernels") {
        const gpu = await Gpu.create();
        try {
          const r = await benchKernels(gpu, { quick, torchMatmul: torch?.matmul as TorchMatmulReference });
          results.kernels = r;
          kernelRows(r, rows, suiteRatios, String(torch?.device));
          notes.push(...r.notes.map((n) => `kernels: ${n}`));
        } finally {
          gpu.device.destroy();
        }
      } else if (suite === "train") {
        const r = await benchTrain({
          quick,
          python: options.python,
          bertBaseBatch: options.bertBaseBatch,
          torchGpu: torch?.train as TorchGpuTrainReference | undefined,
        });
        results.train = r;
        trainRows(r, rows);
        suiteRatios.push(...r.ratios);
        notes.push(...r.notes.map((n) => `train: ${n}`));
        for (const s of r.steps) if (s.note) notes.push(`train: ${s.model}: ${s.note}`);
      } else if (suite === "tokenizer") {
        const { benchTokenizer } = await lazy<
          { benchTokenizer(o: { quick: boolean }): Promise<TokenizerResult> }
        >("./tokenizer.ts");
        const r = await benchTokenizer({ quick });
        results.tokenizer = r;
        tokenizerRows(r, rows, suiteRatios);
      } else if (suite === "infer") {
        const { benchInfer } = await lazy<
          {
            benchInfer(
              o: { quick: boolean; backends: boolean; size?: "bert-base"; batches?: number[] },
            ): Promise<InferResult>;
          }
        >(
          "./infer.ts",
        );
        const edge = options.edgeBertBase ? { size: "bert-base" as const, batches: [1, 8] } : {};
        const r = await benchInfer({ quick, backends: true, ...edge });
        results.infer = r;
        inferRows(r, rows, suiteRatios);
      } else {
        const { benchServe } = await lazy<
          {
            benchServe(
              o: {
                quick: boolean;
                seconds?: number;
                bertBase?: boolean;
                cola?: boolean;
                concurrency?: number[];
              },
            ): Promise<ServeResult>;
          }
        >("./serve.ts");
        const edge = options.edgeBertBase ? { bertBase: true, cola: true, concurrency: [1, 8, 32] } : {};
        const r = await benchServe({ quick, seconds: quick ? 0.5 : undefined, ...edge });
        results.serve = r;
        serveRows(r, rows, suiteRatios);
        notes.push(`serve: one ${r.seconds} s period a cell; p50/p99/max are over its requests`);
      }
    } catch (e) {
      errors[suite] = (e as Error).stack ?? String(e);
      console.error(`bench: ${suite} failed: ${(e as Error).message}`);
    }
    ratios.push(...suiteRatios.map((r) => ({ suite, ...r })));
    console.error(`bench: ${suite} took ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  return { environment: env, quick, suites: results, errors, rows, ratios, notes };
}

/** The report as text: environment line, notes, then the table (printed last). */
export function formatReport(report: BenchReport): string {
  const env = report.environment;
  const a = env.adapter;
  const lines = [
    `adapter: ${
      a ? `${a.description || a.vendor} (fallback: ${a.isFallback})` : "none"
    }; cpu: ${env.cpu} x ${env.cores}; ` +
    `deno ${env.deno}; ${env.date}; commit ${
      env.git ? `${env.git.commit.slice(0, 12)}${env.git.dirty ? " (dirty)" : ""}` : "unknown"
    }`,
    ...report.notes.map((n) => `note: ${n}`),
    ...Object.entries(report.errors).map(([s, e]) => `FAILED ${s}: ${e.split("\n")[0]}`),
    "",
    formatTable(report.rows, report.ratios),
  ];
  return lines.join("\n");
}

if (import.meta.main) {
  try {
    const { values: v, help, version } = parseFlags(Deno.args, BENCH_FLAGS);
    if (help || version) {
      console.log(
        version
          ? versionText()
          : helpText("Run the performance suites.\n\nUsage: deno task bench [options]", BENCH_FLAGS),
      );
      Deno.exit(0);
    }
    const suites = parseSuites(v.suite as string);
    const batch = v["bert-base-batch"] as number | undefined;
    if (batch !== undefined && !(batch >= 1)) {
      throw new UsageError(`--bert-base-batch must be at least 1, got ${batch}`);
    }
    const report = await runBench(suites, {
      quick: Boolean(v.quick),
      python: v.python as string,
      torch: v.torch as string | undefined,
      bertBaseBatch: batch,
      edgeBertBase: Boolean(v["edge-bert-base"]),
    });
    if (v.json) await Deno.writeTextFile(v.json as string, JSON.stringify(report, null, 1) + "\n");
    console.log(formatReport(report));
    Deno.exit(Object.keys(report.errors).length ? 1 : 0);
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    Deno.exit(e instanceof UsageError ? 2 : 1);
  }
}
