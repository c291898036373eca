#!/usr/bin/env bash
# The one script for an NVIDIA GPU host (see bench/gpu/README.md), in about 4 minutes (under 8):
#   1. checks that Deno's WebGPU adapter is the NVIDIA GPU, not llvmpipe, and prints it;
#   2. parity: the engine's forward + backward vs transformers' BertForSequenceClassification at
#      bert-base size, batch 32, sequence 64, random init, dropout off (bench/gpu/parity.py);
#   3. PyTorch timings: training step float32 and AMP, torch.matmul, peak memory (torch_bench.py);
#   4. ours in the same run: deno task bench --suite kernels,train with PyTorch's figures as reference;
#   5. a short summary table, printed last.
# Run on the GPU host from the tree's root:  bash bench/gpu/on_device.sh bash bench/gpu/run.sh
# Everything is written under $OUT (default /tmp/bench_gpu). PYTHON picks the Python with torch.
# BENCH_GPU_TINY=1 is a dry run for a machine without the GPU: tiny shapes, any adapter accepted.
set -uo pipefail
OUT=${OUT:-/tmp/bench_gpu}
PY=${PYTHON:-python3}
TINY=${BENCH_GPU_TINY:-0}
tiny=()
quick=()
[ "$TINY" = 1 ] && tiny=(--tiny) && quick=(--quick)
mkdir -p "$OUT"
[ -d .gpu/deno_dir ] && export DENO_DIR=${DENO_DIR:-$PWD/.gpu/deno_dir}
export DENO_NO_UPDATE_CHECK=1
# Offline: only what .gpu/deno_dir holds (cached with --no-lock, see README), and fail fast otherwise.
DENO_RUN=(deno run -A --no-lock --cached-only)
start=$(date +%s)
log() { echo "[run.sh +$(($(date +%s) - start))s] $*"; }
status=0

log "1/5 WebGPU adapter"
deno eval 'const a = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
const i = a?.info;
console.log(JSON.stringify(a ? { vendor: i.vendor, architecture: i.architecture, description: i.description,
  fallback: i.isFallbackAdapter, features: [...a.features] } : null));' > "$OUT/adapter.json" 2> "$OUT/adapter.err"
cat "$OUT/adapter.json"
nvidia_adapter=0
if grep -qiE 'nvidia|0x10de|"4318"' "$OUT/adapter.json" && ! grep -qiE 'llvmpipe|lavapipe|"fallback":true' "$OUT/adapter.json"; then
  nvidia_adapter=1
  log "adapter is the NVIDIA GPU"
elif [ "$TINY" = 1 ]; then
  nvidia_adapter=1
  log "adapter is not an NVIDIA GPU: going on anyway (BENCH_GPU_TINY=1 dry run)"
else
  log "ADAPTER IS NOT THE NVIDIA GPU: skipping our parity and timings (PyTorch still runs)"
  cat "$OUT/adapter.err"
  ls -l /usr/local/nvidia/share/vulkan/icd.d /usr/share/vulkan/icd.d 2>&1 | sed 's/^/vulkan icd: /'
  status=3
fi

if [ $nvidia_adapter = 1 ]; then
  log "2/5 parity (bert-base, batch 32 x 64; tiny in a dry run)"
  timeout 180 "$PY" bench/gpu/parity.py "${tiny[@]}" --out "$OUT" --deno "$(command -v deno)" --deno-flag=--cached-only 2>&1 | tee "$OUT/parity.log"
  [ "${PIPESTATUS[0]}" = 0 ] || status=1
fi

log "3/5 PyTorch timings"
timeout 120 "$PY" bench/gpu/torch_bench.py "${tiny[@]}" --out "$OUT/torch.json" 2>&1 | tee "$OUT/torch.log"
[ "${PIPESTATUS[0]}" = 0 ] || status=1

if [ $nvidia_adapter = 1 ]; then
  log "4/5 ours: deno task bench --suite kernels,train"
  torch_flag=()
  [ -s "$OUT/torch.json" ] && torch_flag=(--torch "$OUT/torch.json")
  timeout 230 "${DENO_RUN[@]}" bench/main.ts --suite kernels,train "${quick[@]}" --python "$PY" --json "$OUT/bench.json" \
    "${torch_flag[@]}" 2>&1 | tee "$OUT/bench.log"
  [ "${PIPESTATUS[0]}" = 0 ] || status=1
fi

log "5/5 summary"
"$PY" - "$OUT" <<'PYEOF' | tee "$OUT/summary.txt"
import json, os, sys
out = sys.argv[1]
def load(name):
    try:
        with open(os.path.join(out, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
adapter, parity, torch, bench = (load(n) for n in ("adapter.json", "parity.json", "torch.json", "bench.json"))
print(f"GPU run: adapter {adapter and adapter.get('description')}; PyTorch {torch and torch['torch']} on {torch and torch['device']}")
if parity:
    worst = max(parity["groups"].items(), key=lambda kv: kv[1]["max_rel"])
    print(f"parity vs {parity['reference']}: {'ok' if parity['ok'] else 'MISMATCH'}; worst group {worst[0]}: "
          f"max abs {worst[1]['max_abs']:.2e}, rel {worst[1]['max_rel']:.2e}")
else:
    print("parity: not run or failed (see parity.log)")
def fmt(x, unit=""):
    return "-" if x is None else f"{x:.2f}{unit}"
rows = []
tt = (torch or {}).get("train") or {}
cfg = (torch or {}).get("config") or {}
train = (bench or {}).get("suites", {}).get("train") or {}
def ours_at(precision):
    return next((s for s in train.get("steps", []) if s["config"]["hidden_size"] == cfg.get("hidden_size")
                 and s["config"]["num_hidden_layers"] == cfg.get("num_hidden_layers") and s["batch"] == tt.get("batch")
                 and s.get("precision", "f32") == precision), None)
ours, ours16 = ours_at("f32"), ours_at("f16")
memory = train.get("memory") or {}
if tt:
    o = ours and ours["stepMs"]["median"]
    f32 = tt.get("fp32", {}).get("median")
    amp = tt.get("amp", {}).get("median")
    shape = f"hidden {cfg.get('hidden_size')} x {cfg.get('num_hidden_layers')} layers, {tt['batch']}x{tt['seq']}"
    rows.append((f"train step {shape} (ms)", o, f32, amp, f32 / o if o and f32 else None))
    o16 = ours16 and ours16["stepMs"]["median"]
    rows.append((f"train step f16 (ours) vs AMP (ms)", o16, None, amp, amp / o16 if o16 and amp else None))
    mib = lambda b: b / 2**20 if b else None
    rows.append(("training memory (MiB)", mib(ours and ours["trainingBytes"]),
                 mib(tt.get("peakBytes", {}).get("fp32")), mib(tt.get("peakBytes", {}).get("amp")), None))
    rows.append(("training memory f16 (ours) vs AMP (MiB)", mib((memory.get("f16") or {}).get("total")),
                 None, mib(tt.get("peakBytes", {}).get("amp")), None))
kern = (bench or {}).get("suites", {}).get("kernels") or {}
best = {}
for m in kern.get("matmul", []):
    if m["shape"] not in best or m["gflops"]["median"] > best[m["shape"]]["gflops"]["median"]:
        best[m["shape"]] = m
for shape, m in best.items():
    t = (torch or {}).get("matmul", {}).get(shape, {}).get("median")
    rows.append((f"matmul {shape} {m['kernel']} (GFLOP/s)", m["gflops"]["median"], t, None,
                 m["gflops"]["median"] / t if t else None))
print(f"{'figure (medians)':44} {'ours':>10} {'torch f32':>10} {'torch AMP':>10} {'ratio':>8}")
for name, o, t, a, r in rows:
    print(f"{name:44} {fmt(o):>10} {fmt(t):>10} {fmt(a):>10} {fmt(r):>8}")
print("ratio: torch float32 (AMP for the f16 row) time / ours for the step (> 1: ours faster); ours / torch GFLOP/s for matmul")
for a in train.get("accounts", []):
    timed = next((s for s in train.get("steps", []) if s["model"] == a["model"] and s["batch"] == a["batch"]
                  and s.get("precision", "f32") == "f32"), None)
    meas = f"; measured {timed['stepMs']['median']:.2f} ms" if timed else ""
    print(f"cost account {a['model']} {a['batch']}x{a['seq']}: {a['dispatches']} dispatches, {a['pipelines']} pipelines, "
          f"encode {a['encodeMs']['median']:.2f} ms, {a['estimate']['gpu']['name']} roofline {a['estimate']['ms']:.2f} ms{meas}")
PYEOF
log "done (exit $status); files in $OUT"
exit $status
