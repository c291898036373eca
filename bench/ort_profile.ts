/**
 * Where onnxruntime-web's time goes: runs an exported graph with session profiling on and sums the
 * kernel time per op type (and per group: matmuls, quantization, attention, LayerNorm, GELU, ...).
 *
 * onnxruntime-web's wasm build writes the profile (Chrome trace events, one JSON object per line) to
 * stdout when `session.endProfiling()` is called; the wasm module binds its stdout to console.log when
 * it is created, so this tool replaces console.log before the first session and collects the lines.
 *
 * Run: `deno run -A bench/ort_profile.ts [--bert-base] [--threads N] [--runs N] [--seq N] [file.onnx ...]`.
 * Without files it writes a random model (small, or bert-base size) in every graph form of
 * bench/infer.ts (fused, unfused, portable; int8 and float32) to a temporary folder.
 * Prints a table per file and one JSON line.
 * @module
 */

/** Kernel time of one op type, summed over nodes and runs, divided by the runs. */
export interface OpTime {
  op: string;
  group: string;
  ms: number;
  nodes: number;
  share: number;
}

/** The profile of one graph. */
export interface GraphProfile {
  file: string;
  runs: number;
  /** Wall time per run (median), ms. */
  wallMs: number;
  /** Sum of kernel times per run, ms. */
  kernelMs: number;
  ops: OpTime[];
  groups: Record<string, number>;
}

/** Op type -> the group the benchmark reports it under. */
export function opGroup(op: string): string {
  if (/^(MatMul|Gemm|DynamicQuantizeMatMul|MatMulInteger|MatMulIntegerToFloat|FusedMatMul)$/.test(op)) {
    return "matmul";
  }
  if (/QuantizeLinear|DequantizeLinear/.test(op)) return "quantize";
  if (/Attention|Softmax/.test(op)) return "attention";
  if (/LayerNorm/.test(op)) return "layernorm";
  if (/Gelu|Erf/.test(op)) return "gelu";
  if (/Gather|EmbedLayer|Slice/.test(op)) return "gather";
  if (op === "Cast") return "cast";
  if (/^(Reshape|Transpose|Unsqueeze|Squeeze|Shape|Identity)$/.test(op)) return "reshape/transpose";
  if (/^(Add|Mul|Sub|Div|Tanh)$/.test(op)) return "elementwise";
  return "other";
}

interface TraceEvent {
  cat?: string;
  dur?: number;
  name?: string;
  args?: { op_name?: string };
}

/** Sums "Node" trace events per op type. */
export function summarize(events: TraceEvent[], runs: number): Omit<GraphProfile, "file" | "wallMs"> {
  const byOp = new Map<string, { us: number; names: Set<string> }>();
  for (const e of events) {
    if (e.cat !== "Node" || !e.args?.op_name || !e.name?.endsWith("_kernel_time")) continue;
    const entry = byOp.get(e.args.op_name) ?? { us: 0, names: new Set() };
    entry.us += e.dur ?? 0;
    entry.names.add(e.name);
    byOp.set(e.args.op_name, entry);
  }
  const total = [...byOp.values()].reduce((s, v) => s + v.us, 0);
  const ops = [...byOp.entries()].map(([op, v]) => ({
    op,
    group: opGroup(op),
    ms: v.us / 1000 / runs,
    nodes: v.names.size,
    share: total ? v.us / total : 0,
  })).sort((a, b) => b.ms - a.ms);
  const groups: Record<string, number> = {};
  for (const o of ops) groups[o.group] = (groups[o.group] ?? 0) + o.ms;
  return { runs, kernelMs: total / 1000 / runs, ops, groups };
}

if (import.meta.main) {
  const { parseArgs } = await import("node:util");
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      "bert-base": { type: "boolean", default: false },
      threads: { type: "string", default: "1" },
      runs: { type: "string", default: "5" },
      seq: { type: "string", default: "64" },
      batch: { type: "string", default: "1" },
    },
  });
  // Collect the wasm module's stdout: under Deno (Node compatibility) it writes with fs.writeSync(1, ...).
  const lines: string[] = [];
  const log = console.log;
  const fs = (await import("node:fs")).default;
  const writeSync = fs.writeSync;
  // deno-lint-ignore no-explicit-any
  (fs as any).writeSync = (fd: number, data: unknown, ...rest: unknown[]) => {
    if (fd === 1 && typeof data === "string" && /^[[{\]]/.test(data)) {
      lines.push(...data.split("\n").filter((l) => l));
      return data.length;
    }
    // deno-lint-ignore no-explicit-any
    return (writeSync as any)(fd, data, ...rest);
  };
  const ort = await import("npm:onnxruntime-web@1.30.0");
  const { GRAPH_FORMS } = await import("./infer.ts");
  const { randomModelFolder } = await import("./_model.ts");
  const { loadModelFolder } = await import("../train/export/export.ts");
  const { buildBertOnnx } = await import("../train/export/bert_onnx.ts");
  const files = [...positionals];
  const temps: string[] = [];
  if (!files.length) {
    const model = await randomModelFolder(values["bert-base"] ? "bert-base" : "small");
    const out = await Deno.makeTempDir({ prefix: "ort_profile_" });
    temps.push(model, out);
    const { config, weights } = await loadModelFolder(model);
    for (const quantize of ["int8", "none"] as const) {
      for (const [form, o] of Object.entries(GRAPH_FORMS)) {
        const file = `${out}/${form}.${quantize === "int8" ? "int8" : "float32"}.onnx`;
        await Deno.writeFile(file, buildBertOnnx(config, weights, { ...o, quantize }));
        files.push(file);
      }
    }
  }
  ort.env.wasm.numThreads = Number(values.threads);
  const runs = Number(values.runs);
  const T = Number(values.seq);
  const B = Number(values.batch);
  const results: GraphProfile[] = [];
  for (const file of files) {
    const session = await ort.InferenceSession.create(file, { enableProfiling: true });
    const t = (f: (i: number) => bigint) =>
      new ort.Tensor("int64", BigInt64Array.from({ length: B * T }, (_, i) => f(i)), [B, T]);
    const feeds = {
      input_ids: t((i) => BigInt(1000 + (i * 7919) % 20000)),
      attention_mask: t(() => 1n),
      token_type_ids: t(() => 0n),
    };
    await session.run(feeds); // warm-up, also profiled: dropped below by taking the later runs only
    const walls: number[] = [];
    for (let r = 0; r < runs; r++) {
      const t0 = performance.now();
      await session.run(feeds);
      walls.push(performance.now() - t0);
    }
    lines.length = 0;
    session.endProfiling();
    await session.release();
    const events: TraceEvent[] = [];
    for (const l of lines) {
      try {
        events.push(JSON.parse(l.replace(/,\s*$/, "")));
      } catch { /* "[" and "]" lines */ }
    }
    // The profile holds the warm-up run too: keep the last `runs` runs' node events.
    const nodeEvents = events.filter((e) => e.cat === "Node" && e.name?.endsWith("_kernel_time"));
    const perRun = nodeEvents.length / (runs + 1);
    const kept = nodeEvents.slice(Math.round(perRun));
    walls.sort((a, b) => a - b);
    const p = { file, wallMs: walls[walls.length >> 1], ...summarize(kept, runs) };
    results.push(p);
    log(`\n${file}: wall ${p.wallMs.toFixed(1)} ms/run, kernels ${p.kernelMs.toFixed(1)} ms/run`);
    for (const o of p.ops) {
      log(
        `  ${o.op.padEnd(28)} ${o.group.padEnd(18)} ${o.ms.toFixed(2).padStart(8)} ms ${
          (100 * o.share).toFixed(1).padStart(5)
        }% ${String(o.nodes).padStart(4)} nodes`,
      );
    }
  }
  for (const t of temps) await Deno.remove(t, { recursive: true });
  log(JSON.stringify({ bench: "ort_profile", threads: Number(values.threads), seq: T, batch: B, results }));
}
