"""Dev-only: PyTorch 1.13 fixtures for embeddings, gradient clipping, AdamW and the LR schedule.

Run from the repo root with Debian's torch:  /usr/bin/python3 tests/torch/fixtures_optim.py
Writes tests/fixtures/kernels/{embedding,grad_norm,adamw}.safetensors and
tests/fixtures/kernels/schedule.json (all small, committed).
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from st import save  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "fixtures", "kernels")


def embedding():
    """HF BertEmbeddings' sum before LayerNorm, float64, with autograd table gradients."""
    torch.manual_seed(0)
    B, T, C, V, P, TV = 3, 7, 45, 37, 9, 2
    word = torch.nn.Embedding(V, C).double()
    pos = torch.nn.Embedding(P, C).double()
    typ = torch.nn.Embedding(TV, C).double()
    # repeated ids, many [PAD] = 0 tokens, and ids at the end of the vocabulary
    ids = torch.tensor([
        [2, 5, 36, 5, 3, 0, 0],
        [2, 35, 36, 36, 7, 3, 0],
        [2, 0, 0, 0, 0, 0, 0],
    ], dtype=torch.int64)
    tt = torch.tensor([
        [0, 0, 0, 1, 1, 0, 0],
        [0, 0, 1, 1, 1, 1, 0],
        [0, 0, 0, 0, 0, 0, 0],
    ], dtype=torch.int64)
    position_ids = torch.arange(T).unsqueeze(0)  # HF's default position_ids[:, :T]
    out = (word(ids) + typ(tt)) + pos(position_ids)
    dout = torch.randn(B, T, C, dtype=torch.float64)
    (out * dout).sum().backward()
    save(os.path.join(OUT, "embedding.safetensors"), {
        "input_ids": ids.int(), "token_type_ids": tt.int(),
        "word": word.weight, "position": pos.weight, "token_type": typ.weight,
        "out": out, "dout": dout,
        "d_word": word.weight.grad, "d_position": pos.weight.grad, "d_token_type": typ.weight.grad,
    })


def grad_norm():
    """clip_grad_norm_ over tensors of odd sizes (one spans 3 partial chunks of 4096), float32."""
    torch.manual_seed(1)
    sizes = [45, 91, 8200, 1, 5]
    grads = [torch.randn(n, dtype=torch.float32) * s for n, s in zip(sizes, [1.0, 3.0, 0.5, 10.0, 2.0])]
    tensors = {}
    for i, g in enumerate(grads):
        tensors[f"grad.{i}"] = g
    for case, max_norm in [("clipped", 1.0), ("unclipped", 1000.0)]:
        params = [torch.zeros_like(g, requires_grad=True) for g in grads]
        for p, g in zip(params, grads):
            p.grad = g.clone()
        total = torch.nn.utils.clip_grad_norm_(params, max_norm)
        tensors[f"{case}.max_norm"] = torch.tensor([max_norm], dtype=torch.float32)
        tensors[f"{case}.total"] = total.reshape(1)
        # the coefficient exactly as clip_grad_norm_ computes it
        tensors[f"{case}.clip"] = torch.clamp(max_norm / (total + 1e-6), max=1.0).reshape(1)
        if case == "clipped":
            for i, p in enumerate(params):
                tensors[f"{case}.grad.{i}"] = p.grad
    save(os.path.join(OUT, "grad_norm.safetensors"), tensors)


def hf_linear(warmup, total):
    """transformers.get_linear_schedule_with_warmup's lr_lambda."""
    def lr_lambda(step):
        if step < warmup:
            return float(step) / float(max(1, warmup))
        return max(0.0, float(total - step) / float(max(1, total - warmup)))
    return lr_lambda


def adamw():
    """torch.optim.AdamW (single-tensor) for 4 steps after clip_grad_norm_, float32, two configs."""
    torch.manual_seed(2)
    shapes = [(45,), (7, 13), (5,)]
    steps = 4
    init = [torch.randn(s, dtype=torch.float32) for s in shapes]
    grads = [torch.randn((steps,) + s, dtype=torch.float32) for s in shapes]
    tensors = {}
    for i in range(len(shapes)):
        tensors[f"param.{i}"] = init[i]
        tensors[f"grads.{i}"] = grads[i]
    configs = [
        # clipping active (total norm ~ 12 > 1) and a warmup schedule whose first step has lr 0
        ("decay", dict(lr=1e-2, weight_decay=0.01, betas=(0.9, 0.999), eps=1e-8), 1.0, (1, 5)),
        ("nodecay", dict(lr=3e-3, weight_decay=0.0, betas=(0.8, 0.99), eps=1e-6), 0.0, None),
    ]
    for name, opt_args, max_norm, sched in configs:
        params = [torch.nn.Parameter(p.clone()) for p in init]
        opt = torch.optim.AdamW(params, foreach=False, amsgrad=False, maximize=False, **opt_args)
        lam = hf_linear(*sched) if sched else (lambda step: 1.0)
        scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lam)
        lrs, totals, clips = [], [], []
        for s in range(steps):
            for p, g in zip(params, grads):
                p.grad = g[s].clone()
            if max_norm > 0:
                total = torch.nn.utils.clip_grad_norm_(params, max_norm)
                totals.append(total.item())
                clips.append(torch.clamp(max_norm / (total + 1e-6), max=1.0).item())
            lrs.append(scheduler.get_last_lr()[0])
            opt.step()
            scheduler.step()
        tensors[f"{name}.lr"] = torch.tensor(lrs, dtype=torch.float64)
        tensors[f"{name}.hyper"] = torch.tensor(
            [opt_args["betas"][0], opt_args["betas"][1], opt_args["eps"], opt_args["weight_decay"], max_norm],
            dtype=torch.float64)
        if totals:
            tensors[f"{name}.total"] = torch.tensor(totals, dtype=torch.float32)
            tensors[f"{name}.clip"] = torch.tensor(clips, dtype=torch.float32)
        for i, p in enumerate(params):
            st = opt.state[p]
            tensors[f"{name}.param.{i}"] = p.detach()
            tensors[f"{name}.exp_avg.{i}"] = st["exp_avg"]
            tensors[f"{name}.exp_avg_sq.{i}"] = st["exp_avg_sq"]
    save(os.path.join(OUT, "adamw.safetensors"), tensors)


def schedule():
    """LambdaLR with HF's linear warmup/decay: the lr each optimizer step runs at, and param groups."""
    base_lr = 2e-5
    total = 20
    cases = []
    for warmup in [0, 2]:
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=base_lr)
        scheduler = torch.optim.lr_scheduler.LambdaLR(opt, hf_linear(warmup, total))
        lrs = []
        for _ in range(total + 2):  # two steps past the end: the rate stays 0
            lrs.append(scheduler.get_last_lr()[0])
            opt.step()
            scheduler.step()
        cases.append({"warmupSteps": warmup, "totalSteps": total, "lr": base_lr, "lrs": lrs})
    names = [
        "bert.embeddings.word_embeddings.weight",
        "bert.embeddings.position_embeddings.weight",
        "bert.embeddings.token_type_embeddings.weight",
        "bert.embeddings.LayerNorm.weight",
        "bert.embeddings.LayerNorm.bias",
        "bert.encoder.layer.0.attention.self.query.weight",
        "bert.encoder.layer.0.attention.self.query.bias",
        "bert.encoder.layer.0.attention.output.dense.weight",
        "bert.encoder.layer.0.attention.output.LayerNorm.weight",
        "bert.encoder.layer.0.attention.output.LayerNorm.bias",
        "bert.encoder.layer.11.intermediate.dense.weight",
        "bert.encoder.layer.11.output.dense.bias",
        "bert.pooler.dense.weight",
        "bert.pooler.dense.bias",
        "classifier.weight",
        "classifier.bias",
    ]
    no_decay = ["bias", "LayerNorm.weight"]  # run_glue.py / the BERT fine-tuning tutorial
    groups = [{"name": n, "decay": not any(nd in n for nd in no_decay)} for n in names]
    with open(os.path.join(OUT, "schedule.json"), "w") as f:
        json.dump({"cases": cases, "params": groups}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    embedding()
    grad_norm()
    adamw()
    schedule()
    print("wrote", sorted(os.listdir(OUT)))
