/**
 * Inference benchmark: onnxruntime-web (wasm, one thread) vs onnxruntime-node, float32 vs int8, on the
 * same exported files; batch 1 and 32, sequence 64. Reports median/min/max latency after warm-up,
 * file sizes, and ratios measured in the same run (runs are interleaved, so load drift hits all
 * variants alike), plus each int8 model's largest logit difference from its float32 twin.
 *
 * Graph forms: the same model written as the default fused graph (com.microsoft transformer ops),
 * the unfused graph exported before it, and the portable graph (standard ONNX ops only), timed
 * interleaved on onnxruntime-web at 1 thread in this process and at 2 threads in a child process
 * (onnxruntime-web fixes its thread count once per process); `graphSpeedup` is unfused / fused.
 *
 * Run: `deno run -A bench/infer.ts [--quick] [--bert-base] [model folder]`; `--graphs-only --threads N
 * <model folder>` times the graph forms only. Prints a table and one JSON line.
 * @module
 */

import * as ortWeb from "npm:onnxruntime-web@1.30.0";
import { exportModel, loadModelFolder, VARIANT_FILES } from "../train/export/export.ts";
import { type BertOnnxOptions, buildBertOnnx } from "../train/export/bert_onnx.ts";
import { Rng } from "../kernels/random.ts";
import { randomModelFolder } from "./_model.ts";
import { summarize } from "./_stats.ts";
import { type BackendsResult, benchBackends } from "./infer_backends.ts";

/** Options of {@linkcode benchInfer}. */
export interface BenchInferOptions {
  /** A tiny random model and few runs (seconds): for CI and smoke tests. @default false */
  quick?: boolean;
  /**
   * A folder with model.onnx and model.int8.onnx (an export), or a model folder (config.json +
   * model.safetensors) exported to a temporary folder first. Default: a random model exported to a
   * temporary folder (hidden 256, 4 layers, bert-base's vocabulary; tiny when `quick`).
   */
  modelDir?: string;
  /** onnxruntime-node intra-op threads; 1 compares kernels with single-threaded wasm. @default 1 */
  nodeThreads?: number;
  /** Batch sizes to time (sequence 64). @default [1, 32] */
  batches?: number[];
  /** The random model's size when no `modelDir` is given: "small" (hidden 256 x 4) or "bert-base". @default "small" */
  size?: "small" | "bert-base";
  /**
   * Also time the served model per backend (wasm 1 thread and default threads, native) in child
   * processes ({@linkcode benchBackends}); the random model then carries bert-base's tokenizer.
   */
  backends?: boolean;
  /** onnxruntime-web thread counts at which the graph forms are compared. @default [1, 2] ([1] when quick) */
  graphThreads?: number[];
}

/** The graph forms {@linkcode benchGraphs} compares, as export options. */
export const GRAPH_FORMS = {
  /** Today's default export: com.microsoft transformer ops. */
  fused: {},
  /** The export before fusion: unfused attention / LayerNorm / GELU, int8 as DynamicQuantizeMatMul. */
  unfused: { fused: false },
  /** Standard ONNX ops only (`--portable`). */
  portable: { portable: true },
} satisfies Record<string, BertOnnxOptions>;

/** A graph form's name. */
export type GraphForm = keyof typeof GRAPH_FORMS;

/** One graph form x variant x batch on onnxruntime-web, in milliseconds. */
export interface GraphTiming {
  form: GraphForm;
  variant: "float32" | "int8";
  threads: number;
  batch: number;
  sequence: number;
  runs: number;
  medianMs: number;
  minMs: number;
  maxMs: number;
}

/** What {@linkcode benchGraphs} measured. */
export interface GraphBenchResult {
  timings: GraphTiming[];
  /** unfused median / fused median per variant, threads and batch: > 1 means the fused graph is faster. */
  graphSpeedup: Record<string, number>;
  /** portable median / fused median, same keys. */
  portableSpeedup: Record<string, number>;
  /** max |logit - fused logit| per form and variant (same inputs): the forms compute the same function. */
  maxAbsDiff: Record<string, number>;
}

/** One runtime x variant x batch measurement, in milliseconds. */
export interface InferTiming {
  runtime: "onnxruntime-web" | "onnxruntime-node";
  variant: "float32" | "int8";
  batch: number;
  sequence: number;
  runs: number;
  medianMs: number;
  minMs: number;
  maxMs: number;
}

/** What {@linkcode benchInfer} measured. */
export interface InferBenchResult {
  model: { source: string; hidden: number; layers: number; vocab: number };
  bytes: { float32: number; int8: number; int8Ratio: number };
  timings: InferTiming[];
  /** float32 median / int8 median, per runtime and batch: > 1 means int8 is faster. */
  int8Speedup: Record<string, number>;
  /** web median / node median, per variant and batch: > 1 means node is faster. */
  nodeSpeedup: Record<string, number>;
  /** max |int8 logit - float32 logit| per runtime, on the largest batch timed. */
  int8MaxAbsDiff: Record<string, number>;
  nodeThreads: number;
  /** Graph forms compared at each thread count; absent when `modelDir` holds only .onnx files. */
  graphs?: GraphBenchResult[];
  /** The served model per backend and thread count, when asked for with `backends`. */
  backends?: BackendsResult;
}

type Runtime = typeof ortWeb;
const BATCHES = [1, 32];
const SEQUENCE = 64;

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

function stats(times: number[]) {
  const { median, min, max } = summarize(times);
  return { medianMs: median, minMs: min, maxMs: max };
}

/**
 * Measures inference latency of the float32 and int8 exports on onnxruntime-web and -node.
 * @throws {Deno.errors.NotFound} when `modelDir` has neither the exported files nor a model.
 * @example
 * ```ts
 * import { benchInfer } from "./infer.ts";
 * const result = await benchInfer({ quick: true });
 * console.log(result.int8Speedup);
 * ```
 */
export async function benchInfer(options: BenchInferOptions = {}): Promise<InferBenchResult> {
  const quick = options.quick ?? false;
  const nodeThreads = options.nodeThreads ?? 1;
  const temps: string[] = [];
  try {
    let folder = options.modelDir;
    if (!folder) {
      folder = await randomModelFolder(
        quick ? "tiny" : options.size ?? "small",
        { tokenizer: options.backends, vocabSize: quick && !options.backends ? 1000 : undefined },
      );
      temps.push(folder);
    }
    let files = { float32: `${folder}/${VARIANT_FILES.float32}`, int8: `${folder}/${VARIANT_FILES.int8}` };
    let exportDir = folder;
    if (!(await exists(files.float32) && await exists(files.int8))) {
      const out = exportDir = await Deno.makeTempDir({ prefix: "bench_infer_onnx_" });
      temps.push(out);
      files = (await exportModel(folder, { output: out })).files as typeof files;
    }
    const config = JSON.parse(await Deno.readTextFile(`${folder}/config.json`).catch(() => "{}"));
    const vocab: number = config.vocab_size ?? 30522;

    ortWeb.env.wasm.numThreads = 1;
    const ortNode = (await import("npm:onnxruntime-node@1.30.0")) as unknown as Runtime;
    const runtimes: [InferTiming["runtime"], Runtime, Record<string, unknown>][] = [
      ["onnxruntime-web", ortWeb, {}],
      ["onnxruntime-node", ortNode, { intraOpNumThreads: nodeThreads, interOpNumThreads: 1 }],
    ];
    const sessions = [];
    for (const [name, ort, sessionOptions] of runtimes) {
      for (const variant of ["float32", "int8"] as const) {
        const session = await ort.InferenceSession.create(files[variant], sessionOptions);
        sessions.push({ name, ort, variant, session });
      }
    }

    const rng = new Rng(5);
    const batches = options.batches ?? BATCHES;
    const timings: InferTiming[] = [];
    const logits = new Map<string, Float32Array>();
    for (const batch of batches) {
      const ids = BigInt64Array.from({ length: batch * SEQUENCE }, () => BigInt(1 + rng.int(vocab - 1)));
      const feeds = (ort: Runtime) => ({
        input_ids: new ort.Tensor("int64", ids, [batch, SEQUENCE]),
        attention_mask: new ort.Tensor("int64", new BigInt64Array(batch * SEQUENCE).fill(1n), [
          batch,
          SEQUENCE,
        ]),
        token_type_ids: new ort.Tensor("int64", new BigInt64Array(batch * SEQUENCE), [batch, SEQUENCE]),
      });
      const warmup = quick ? 1 : 2;
      const runs = quick ? 3 : options.size === "bert-base" ? (batch === 1 ? 8 : 3) : batch === 1 ? 20 : 6;
      const times = sessions.map(() => [] as number[]);
      for (const [i, s] of sessions.entries()) {
        for (let w = 0; w < warmup; w++) {
          const out = await s.session.run(feeds(s.ort));
          if (w === 0) logits.set(`${s.name}/${s.variant}/${batch}`, out.logits.data as Float32Array);
        }
        times[i] = [];
      }
      for (let r = 0; r < runs; r++) {
        for (let j = 0; j < sessions.length; j++) {
          const i = (r + j) % sessions.length; // rotate the order so no variant always runs first
          const s = sessions[i];
          const f = feeds(s.ort);
          const t0 = performance.now();
          await s.session.run(f);
          times[i].push(performance.now() - t0);
        }
      }
      sessions.forEach((s, i) =>
        timings.push({
          runtime: s.name,
          variant: s.variant,
          batch,
          sequence: SEQUENCE,
          runs,
          ...stats(times[i]),
        })
      );
    }
    for (const s of sessions) await s.session.release();

    const median = (runtime: string, variant: string, batch: number) =>
      timings.find((t) => t.runtime === runtime && t.variant === variant && t.batch === batch)!.medianMs;
    const int8Speedup: Record<string, number> = {};
    const nodeSpeedup: Record<string, number> = {};
    for (const batch of batches) {
      for (const [name] of runtimes) {
        int8Speedup[`${name} b${batch}`] = median(name, "float32", batch) / median(name, "int8", batch);
      }
      for (const variant of ["float32", "int8"]) {
        nodeSpeedup[`${variant} b${batch}`] = median("onnxruntime-web", variant, batch) /
          median("onnxruntime-node", variant, batch);
      }
    }
    const int8MaxAbsDiff: Record<string, number> = {};
    for (const [name] of runtimes) {
      const largest = batches[batches.length - 1];
      const f = logits.get(`${name}/float32/${largest}`)!;
      const q = logits.get(`${name}/int8/${largest}`)!;
      int8MaxAbsDiff[name] = f.reduce((m, v, i) => Math.max(m, Math.abs(v - q[i])), 0);
    }
    const bytes = {
      float32: (await Deno.stat(files.float32)).size,
      int8: (await Deno.stat(files.int8)).size,
    };
    let graphs: GraphBenchResult[] | undefined;
    if (await exists(`${folder}/model.safetensors`) || await exists(`${folder}/pytorch_model.bin`)) {
      graphs = [];
      const graphOptions = { modelDir: folder, batches: [1], quick };
      for (const threads of options.graphThreads ?? (quick ? [1] : [1, 2])) {
        graphs.push(
          threads === ortWeb.env.wasm.numThreads
            ? await benchGraphs({ ...graphOptions, threads })
            : await benchGraphsInChild({ ...graphOptions, threads }),
        );
      }
    }
    const backends = options.backends && await exists(`${exportDir}/serve.json`)
      ? await benchBackends(exportDir, { quick })
      : undefined;
    return {
      model: {
        source: options.modelDir ??
          (quick ? "random tiny" : options.size === "bert-base" ? "random bert-base" : "random mid-size"),
        hidden: config.hidden_size ?? 0,
        layers: config.num_hidden_layers ?? 0,
        vocab,
      },
      bytes: { ...bytes, int8Ratio: bytes.int8 / bytes.float32 },
      timings,
      int8Speedup,
      nodeSpeedup,
      int8MaxAbsDiff,
      nodeThreads,
      graphs,
      backends,
    };
  } finally {
    for (const t of temps) await Deno.remove(t, { recursive: true });
  }
}

/** Options of {@linkcode benchGraphs}. */
export interface BenchGraphsOptions {
  /** A model folder (config.json + weights). */
  modelDir: string;
  /** onnxruntime-web threads; must equal `env.wasm.numThreads` if the runtime was already used. */
  threads: number;
  /** Batch sizes (sequence 64). @default [1] */
  batches?: number[];
  /** Few runs. @default false */
  quick?: boolean;
}

/**
 * Exports the model folder in every graph form (float32 and int8) and times them on onnxruntime-web,
 * interleaved, in this process.
 * @example
 * ```ts ignore
 * import { benchGraphs } from "./infer.ts";
 * const r = await benchGraphs({ modelDir: "runs/demo", threads: 1 });
 * console.log(r.graphSpeedup);
 * ```
 */
export async function benchGraphs(options: BenchGraphsOptions): Promise<GraphBenchResult> {
  ortWeb.env.wasm.numThreads = options.threads;
  const { config, weights } = await loadModelFolder(options.modelDir);
  const dir = await Deno.makeTempDir({ prefix: "bench_graphs_" });
  try {
    const sessions = [];
    for (const variant of ["int8", "float32"] as const) {
      for (const [form, o] of Object.entries(GRAPH_FORMS) as [GraphForm, BertOnnxOptions][]) {
        const file = `${dir}/${form}.${variant}.onnx`;
        await Deno.writeFile(
          file,
          buildBertOnnx(config, weights, { ...o, quantize: variant === "int8" ? "int8" : "none" }),
        );
        sessions.push({ form, variant, session: await ortWeb.InferenceSession.create(file) });
        await Deno.remove(file);
      }
    }
    const rng = new Rng(9);
    const timings: GraphTiming[] = [];
    const maxAbsDiff: Record<string, number> = {};
    for (const batch of options.batches ?? [1]) {
      const n = batch * SEQUENCE;
      const t = (v: BigInt64Array) => new ortWeb.Tensor("int64", v, [batch, SEQUENCE]);
      const ids = BigInt64Array.from({ length: n }, () => BigInt(1 + rng.int(config.vocab_size - 1)));
      // Some padding in the last row, so the forms' attention masks are compared too.
      const mask = BigInt64Array.from({ length: n }, (_, i) => i >= n - 5 ? 0n : 1n);
      const feeds = () => ({
        input_ids: t(ids),
        attention_mask: t(mask),
        token_type_ids: t(new BigInt64Array(n)),
      });
      const reference: Record<string, Float32Array> = {};
      for (const s of sessions) {
        const logits = (await s.session.run(feeds())).logits.data as Float32Array;
        if (s.form === "fused") reference[s.variant] = logits;
        else {
          const ref = reference[s.variant];
          const key = `${s.form} ${s.variant} b${batch}`;
          maxAbsDiff[key] = logits.reduce((m, v, i) => Math.max(m, Math.abs(v - ref[i])), 0);
        }
        await s.session.run(feeds()); // second warm-up run: lets V8 tier up the hot wasm code
      }
      const runs = options.quick ? 3 : batch === 1 ? 10 : 4;
      const times = sessions.map(() => [] as number[]);
      for (let r = 0; r < runs; r++) {
        for (let j = 0; j < sessions.length; j++) {
          const i = (r + j) % sessions.length;
          const f = feeds();
          const t0 = performance.now();
          await sessions[i].session.run(f);
          times[i].push(performance.now() - t0);
        }
      }
      sessions.forEach((s, i) =>
        timings.push({
          form: s.form,
          variant: s.variant,
          threads: options.threads,
          batch,
          sequence: SEQUENCE,
          runs,
          ...stats(times[i]),
        })
      );
    }
    for (const s of sessions) await s.session.release();
    const median = (form: GraphForm, variant: string, batch: number) =>
      timings.find((t) => t.form === form && t.variant === variant && t.batch === batch)!.medianMs;
    const graphSpeedup: Record<string, number> = {};
    const portableSpeedup: Record<string, number> = {};
    for (const batch of options.batches ?? [1]) {
      for (const variant of ["int8", "float32"]) {
        const key = `${variant} b${batch} t${options.threads}`;
        graphSpeedup[key] = median("unfused", variant, batch) / median("fused", variant, batch);
        portableSpeedup[key] = median("portable", variant, batch) / median("fused", variant, batch);
      }
    }
    return { timings, graphSpeedup, portableSpeedup, maxAbsDiff };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** {@linkcode benchGraphs} in a child process, for a thread count other than this process's. */
async function benchGraphsInChild(options: BenchGraphsOptions): Promise<GraphBenchResult> {
  const args = ["run", "-A", new URL(import.meta.url).pathname, "--graphs-only", "--threads"];
  args.push(String(options.threads), ...(options.quick ? ["--quick"] : []), options.modelDir);
  const out = await new Deno.Command(Deno.execPath(), { args, stderr: "inherit" }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) throw new Error(`benchGraphs child (threads ${options.threads}) failed: ${text}`);
  const line = text.split("\n").find((l) => l.startsWith('{"bench":"graphs"'));
  if (!line) throw new Error(`benchGraphs child printed no result: ${text}`);
  const { bench: _, ...result } = JSON.parse(line);
  return result as GraphBenchResult;
}

/**
 * The result as a fixed-width table.
 * @example
 * ```ts
 * import { benchInfer, formatInferTable } from "./infer.ts";
 * console.log(formatInferTable(await benchInfer({ quick: true })));
 * ```
 */
export function formatInferTable(result: InferBenchResult): string {
  const lines = [
    `model ${result.model.source}: hidden ${result.model.hidden}, ${result.model.layers} layers, vocab ${result.model.vocab}`,
    `files: float32 ${result.bytes.float32} B, int8 ${result.bytes.int8} B (${
      (100 * result.bytes.int8Ratio).toFixed(1)
    }%)`,
    `runtime            variant  batch  seq  runs  median ms     min ms     max ms`,
  ];
  for (const t of result.timings) {
    lines.push(
      `${t.runtime.padEnd(18)} ${t.variant.padEnd(8)} ${String(t.batch).padStart(5)} ${
        String(t.sequence).padStart(4)
      } ${String(t.runs).padStart(5)} ${t.medianMs.toFixed(2).padStart(10)} ${
        t.minMs.toFixed(2).padStart(10)
      } ${t.maxMs.toFixed(2).padStart(10)}`,
    );
  }
  const fmt = (r: Record<string, number>, digits = 2) =>
    Object.entries(r).map(([k, v]) => `${k} ${v.toFixed(digits)}`).join(", ");
  lines.push(`int8 speed-up (float32 / int8 median): ${fmt(result.int8Speedup)}`);
  lines.push(
    `node speed-up (web / node median, node threads ${result.nodeThreads}): ${fmt(result.nodeSpeedup)}`,
  );
  lines.push(`int8 max |logit - float32 logit|: ${fmt(result.int8MaxAbsDiff, 5)}`);
  for (const g of result.graphs ?? []) lines.push(formatGraphs(g));
  return lines.join("\n");
}

function formatGraphs(g: GraphBenchResult): string {
  const fmt = (r: Record<string, number>, digits = 2) =>
    Object.entries(r).map(([k, v]) => `${k} ${v.toFixed(digits)}`).join(", ");
  const lines = [`graph form  variant  threads  batch  runs  median ms     min ms`];
  for (const t of g.timings) {
    lines.push(
      `${t.form.padEnd(11)} ${t.variant.padEnd(8)} ${String(t.threads).padStart(7)} ${
        String(t.batch).padStart(6)
      } ${String(t.runs).padStart(5)} ${t.medianMs.toFixed(2).padStart(10)} ${
        t.minMs.toFixed(2).padStart(10)
      }`,
    );
  }
  lines.push(`graph speed-up (unfused / fused median): ${fmt(g.graphSpeedup)}`);
  lines.push(`portable / fused median: ${fmt(g.portableSpeedup)}`);
  const diffs = Object.entries(g.maxAbsDiff).map(([k, v]) => `${k} ${v.toExponential(1)}`).join(", ");
  lines.push(`max |logit - fused logit|: ${diffs}`);
  return lines.join("\n");
}

if (import.meta.main) {
  const args = [...Deno.args];
  const quick = args.includes("--quick");
  const threadsAt = args.indexOf("--threads");
  if (args.includes("--graphs-only")) {
    const threads = threadsAt >= 0 ? Number(args[threadsAt + 1]) : 1;
    const modelDir = args.filter((a, i) => !a.startsWith("-") && i !== threadsAt + 1)[0];
    if (!modelDir || !(threads >= 1)) {
      console.error("usage: infer.ts --graphs-only [--threads N] [--quick] <model folder>");
      Deno.exit(2);
    }
    const r = await benchGraphs({ modelDir, threads, quick });
    console.error(formatGraphs(r));
    console.log(JSON.stringify({ bench: "graphs", ...r }));
    Deno.exit(0);
  }
  // --bert-base: a random model of bert-base size, batches 1 and 8 (batch 32 takes minutes on wasm).
  const bertBase = args.includes("--bert-base");
  const unknown = args.filter((a) => a.startsWith("-") && a !== "--quick" && a !== "--bert-base");
  const positional = args.filter((a) => !a.startsWith("-"));
  if (unknown.length || positional.length > 1) {
    console.error(
      `Unknown arguments ${
        JSON.stringify([...unknown, ...positional.slice(1)])
      }; usage: infer.ts [--quick] [--bert-base] [model folder]`,
    );
    Deno.exit(2);
  }
  const result = await benchInfer({
    quick,
    modelDir: positional[0],
    ...(bertBase ? { size: "bert-base" as const, batches: [1, 8] } : {}),
  });
  console.log(formatInferTable(result));
  console.log(JSON.stringify({ bench: "infer", ...result }));
}
