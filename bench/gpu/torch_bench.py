"""PyTorch's side of the GPU script's timings (bench/gpu/run.sh), at the shapes our engine is timed at:

- one training step of BertForSequenceClassification (zero_grad, forward, backward,
  clip_grad_norm_(1.0), AdamW lr 2e-5 eps 1e-8), batch 32, sequence 64, dropout 0.1 as in training,
  eager float32 (TF32 off: true float32 matmuls, like our kernels) and eager AMP (float16 autocast +
  GradScaler), each with torch.cuda.max_memory_allocated over its steps;
- torch.matmul float32 GFLOP/s at bench/matmul.ts's shapes (addmm for the linear layers, bias
  included as in ours; Q·Kᵀ of the (B, T, H·D) layout as strided views for attention, without the
  1/sqrt(D) scale).

The model is transformers' BertForSequenceClassification (random init) when installed, else
tests/torch/bert_reference.py. --tiny: the tiny config of bench/train.ts and bench/matmul.ts's quick
shapes (for a CPU check; AMP needs CUDA and is skipped there).

Run (repo root): python3 bench/gpu/torch_bench.py [--tiny] [--out torch.json] [--warmup 3] [--repeats 10]
Writes JSON that `deno task bench --torch <file>` reads (keys "train" and "matmul"); prints a table.
"""
import argparse
import gc
import json
import math
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
from torch_step import BERT_BASE, random_batch, reference_step, summarize, time_steps  # noqa: E402

# bench/train.ts TINY_CONFIG.
TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, vocab_size=30522)
B, T = 32, 64


def linear_shape(rows, out, inp):
    return dict(name=f"{rows}x{out}x{inp}", kind="linear", rows=rows, out=out, inp=inp, flops=2 * rows * out * inp)


def attention_shape(b, h, t, d):
    return dict(name=f"{b}\u00b7{h} x {t}x{t}x{d}", kind="attention", B=b, H=h, T=t, D=d, flops=2 * b * h * t * t * d)


def matmul_shapes(tiny):
    """bench/matmul.ts matmulBenchShapes(quick), with the same names."""
    if tiny:
        return [linear_shape(64, 96, 32), linear_shape(64, 128, 32), linear_shape(64, 32, 128),
                attention_shape(2, 2, 16, 16)]
    return [linear_shape(2048, 768, 768), linear_shape(2048, 3072, 768), linear_shape(2048, 768, 3072),
            attention_shape(32, 12, 64, 64)]


def bench_matmul(tiny, device, repeats, sync):
    out = {}
    gen = torch.Generator().manual_seed(0)
    for s in matmul_shapes(tiny):
        if s["kind"] == "linear":
            x = torch.randn(s["rows"], s["inp"], generator=gen).to(device)
            w = torch.randn(s["out"], s["inp"], generator=gen).to(device)
            bias = torch.randn(s["out"], generator=gen).to(device)

            def op(x=x, w=w, bias=bias):
                return torch.addmm(bias, x, w.t())
        else:
            C = s["H"] * s["D"]
            q = torch.randn(s["B"], s["T"], C, generator=gen).to(device)
            k = torch.randn(s["B"], s["T"], C, generator=gen).to(device)
            qh = q.view(s["B"], s["T"], s["H"], s["D"]).permute(0, 2, 1, 3)
            kt = k.view(s["B"], s["T"], s["H"], s["D"]).permute(0, 2, 3, 1)

            def op(qh=qh, kt=kt):
                return torch.matmul(qh, kt)
        op()
        sync()
        t0 = time.perf_counter()
        op()
        sync()
        once = max(time.perf_counter() - t0, 1e-6)
        count = max(1, min(1000, round(0.2 / once)))  # samples of about 0.2 s, as benchMatmul
        gflops = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(count):
                op()
            sync()
            gflops.append(s["flops"] * count / (time.perf_counter() - t0) / 1e9)
        out[s["name"]] = summarize(gflops)
    return out


def hf_model(cfg, device):
    from transformers import BertConfig, BertForSequenceClassification
    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(**cfg, num_labels=2)).to(device).train()
    attn = getattr(model.config, "_attn_implementation", None)
    return model, f"transformers BertForSequenceClassification (attention: {attn})"


def train_step(cfg, device, amp, warmup, repeats, sync):
    """Times one mode; returns (summary ms, peak bytes or None, model description)."""
    batch = random_batch(B, T, cfg["vocab_size"], 2, torch.Generator().manual_seed(1), device)
    try:
        model, name = hf_model(cfg, device)
    except ImportError:
        model = None
    if device.startswith("cuda"):
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    if model is None:
        if amp:
            raise SystemExit("torch_bench.py: AMP timing needs transformers' model")
        step, _ = reference_step(cfg, batch, device=device)
        name = "tests/torch/bert_reference.py (transformers not installed)"
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=2e-5, eps=1e-8, weight_decay=0.0)
        scaler = torch.amp.GradScaler("cuda") if amp else None

        def step():
            opt.zero_grad(set_to_none=False)
            if amp:
                with torch.autocast("cuda", dtype=torch.float16):
                    loss = model(**batch).loss
                scaler.scale(loss).backward()
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                scaler.step(opt)
                scaler.update()
            else:
                loss = model(**batch).loss
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
    ms = time_steps(step, warmup, repeats, sync)
    peak = torch.cuda.max_memory_allocated() if device.startswith("cuda") else None
    del model
    return ms, peak, name


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiny", action="store_true", help="tiny config and shapes (CPU check)")
    ap.add_argument("--out", default="torch.json")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=10)
    a = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    cfg = dict(BERT_BASE, **(TINY if a.tiny else {}))
    notes = []
    dev_name = torch.cuda.get_device_name() if device == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    fp32, peak32, model_name = train_step(cfg, device, False, a.warmup, a.repeats, sync)
    amp = peak_amp = None
    if device == "cuda":
        amp, peak_amp, _ = train_step(cfg, device, True, a.warmup, a.repeats, sync)
    else:
        notes.append("AMP skipped: float16 autocast with GradScaler needs CUDA")
    matmul = bench_matmul(a.tiny, device, max(3, a.repeats // 2), sync)
    try:
        import transformers
        tf_version = transformers.__version__
    except ImportError:
        tf_version = None
    peak = {k: v for k, v in (("fp32", peak32), ("amp", peak_amp)) if v is not None}
    result = dict(
        torch=torch.__version__, transformers=tf_version, device=dev_name, tf32=False, notes=notes,
        config={k: cfg[k] for k in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                                    "intermediate_size", "vocab_size")},
        train=dict(device=dev_name, torch=torch.__version__, model=model_name, batch=B, seq=T, fp32=fp32,
                   **({"amp": amp} if amp else {}), peakBytes=peak, warmup=a.warmup),
        matmul=matmul)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"PyTorch {torch.__version__} on {dev_name}; {model_name}; TF32 off")
    print(f"{'figure':36} {'median':>10} {'min':>10} {'max':>10}  unit")
    rows = [(f"train step {B}x{T} float32", fp32, "ms")]
    if amp:
        rows.append((f"train step {B}x{T} AMP float16", amp, "ms"))
    rows += [(f"torch.matmul {k}", v, "GFLOP/s") for k, v in matmul.items()]
    for name, s, unit in rows:
        print(f"{name:36} {s['median']:10.3f} {s['min']:10.3f} {s['max']:10.3f}  {unit}")
    for k, v in peak.items():
        print(f"peak memory {k}: {v / 2**20:.1f} MiB (torch.cuda.max_memory_allocated)")
    for n in notes:
        print(f"note: {n}")
    assert all(math.isfinite(s["median"]) for _, s, _ in rows)


if __name__ == "__main__":
    main()
