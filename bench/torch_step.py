"""PyTorch eager reference for bench/train.ts: times one training step (zero_grad, forward, backward,
clip_grad_norm_(1.0), AdamW) of BertForSequenceClassification as tests/torch/bert_reference.py writes
it, float32, at the shapes the engine is timed at, with dropout on as in training (0.1).

Run: /usr/bin/python3 bench/torch_step.py --config '{"hidden_size": 32, ...}' --batch 32 --seq 64
     [--warmup 2] [--repeats 5] [--threads N]
Prints one JSON line: torch version, device, threads, and step_ms {median, min, max, runs}.
bench/gpu/torch_bench.py imports the helpers below for its fallback model.
"""
import argparse
import json
import os
import sys
import time

import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(ROOT, "tests", "torch"))
from bert_reference import forward, param_shapes  # noqa: E402

# Hugging Face BertConfig defaults (bert-base-uncased), as train/config.ts BERT_BASE.
BERT_BASE = dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072, hidden_act="gelu", hidden_dropout_prob=0.1,
                 attention_probs_dropout_prob=0.1, max_position_embeddings=512, type_vocab_size=2,
                 initializer_range=0.02, layer_norm_eps=1e-12, pad_token_id=0)


def summarize(values):
    """Median (mean of the middle two for an even count), min, max and count, as bench/_stats.ts."""
    s = sorted(values)
    n = len(s)
    median = s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2
    return dict(median=median, min=s[0], max=s[-1], runs=n)


def time_steps(step, warmup, repeats, sync=lambda: None):
    """Runs step() warmup times untimed, then repeats times timed; milliseconds, summarized."""
    for _ in range(warmup):
        step()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        sync()
        times.append((time.perf_counter() - t0) * 1000)
    return summarize(times)


def random_batch(B, T, vocab, num_labels, gen, device):
    """Full-length rows of random ids (no padding), as bench/train.ts times the engine."""
    ids = torch.randint(1, vocab, (B, T), generator=gen)
    labels = torch.randint(0, num_labels, (B,), generator=gen)
    return dict(input_ids=ids.to(device), attention_mask=torch.ones(B, T, dtype=torch.int64, device=device),
                token_type_ids=torch.zeros(B, T, dtype=torch.int64, device=device), labels=labels.to(device))


def reference_step(cfg, batch, num_labels=2, device="cpu", seed=0):
    """A step closure over bert_reference's model: HF-style init (normal 0.02, LayerNorm 1/0, biases 0)."""
    gen = torch.Generator().manual_seed(seed)
    params = {}
    for name, shape in param_shapes(cfg, num_labels).items():
        if name.endswith("LayerNorm.weight"):
            t = torch.ones(shape)
        elif name.endswith("bias"):
            t = torch.zeros(shape)
        else:
            t = torch.randn(shape, generator=gen) * cfg["initializer_range"]
        params[name] = t.to(device).requires_grad_(True)
    opt = torch.optim.AdamW(params.values(), lr=2e-5, eps=1e-8, weight_decay=0.0)
    # bert_reference draws dropout masks from a CPU generator: dropout stays off on other devices.
    dropout_gen = torch.Generator().manual_seed(seed + 1) if torch.device(device).type == "cpu" else None

    def step():
        opt.zero_grad(set_to_none=False)
        _, loss = forward(cfg, params, batch["input_ids"], batch["attention_mask"], batch["token_type_ids"],
                          batch["labels"], num_labels, dropout_gen=dropout_gen)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(params.values()), 1.0)
        opt.step()

    return step, dropout_gen is not None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="{}", help="JSON overrides of the bert-base config")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    cfg = dict(BERT_BASE, **json.loads(a.config))
    torch.manual_seed(0)
    batch = random_batch(a.batch, a.seq, cfg["vocab_size"], 2, torch.Generator().manual_seed(1), "cpu")
    step, dropout = reference_step(cfg, batch)
    ms = time_steps(step, a.warmup, a.repeats)
    print(json.dumps(dict(torch=torch.__version__, device="cpu", threads=torch.get_num_threads(),
                          model="tests/torch/bert_reference.py", dropout=dropout, batch=a.batch, seq=a.seq,
                          warmup=a.warmup, step_ms=ms)))


if __name__ == "__main__":
    main()
