"""Whole-model parity of the WebGPU engine against PyTorch, for the GPU script (bench/gpu/run.sh).

Writes a random-init BertForSequenceClassification (dropout off, 2 labels) with save_pretrained
(safetensors) and a padded batch, runs bench/gpu/parity.ts on it (forward + backward on WebGPU),
computes the same with PyTorch, and prints the largest absolute and relative difference per tensor
group (logits, loss, gradients of embeddings, attention, feed-forward, LayerNorm, pooler, classifier).
Relative = the group's max|ours - torch| / the group's max|torch|; the tensor with the largest
absolute difference is named.

The reference is the real transformers.BertForSequenceClassification (eager attention) when
transformers is installed (the GPU host), else tests/torch/bert_reference.py, which computes the same
thing in plain PyTorch (torch 1.13 here); the output says which.

Run (repo root): python3 bench/gpu/parity.py [--tiny] [--out DIR] [--work DIR] [--deno PATH]
  default: bert-base, batch 32, sequence 64; --tiny: hidden 32, 2 layers, batch 4, sequence 16.
Writes DIR/parity.json and exits 1 on a mismatch; the model folder and tensors go to --work (a
temporary folder by default, deleted afterwards: bert-base's weights and gradients are about 1.3 GB).
--compare-only re-compares a kept --work folder (used by bench/gpu/parity_test.ts).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "torch"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import st  # noqa: E402
from bert_reference import forward, random_params  # noqa: E402
from torch_step import BERT_BASE  # noqa: E402

TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, vocab_size=1000,
            max_position_embeddings=64)
LABELS = ["unacceptable", "acceptable"]
# A group passes when max|diff| <= BOUND * max|reference| over the group: float32 summation
# order differences are ~1e-6..1e-5 of that scale; an indexing or formula bug is O(1).
BOUND = 1e-3


def make_config(tiny):
    cfg = dict(BERT_BASE, **(TINY if tiny else {}))
    cfg.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, model_type="bert",
               architectures=["BertForSequenceClassification"],
               id2label={str(i): n for i, n in enumerate(LABELS)}, label2id={n: i for i, n in enumerate(LABELS)})
    return cfg


def make_batch(B, T, vocab, gen):
    """Padded rows (the first full length), a second segment in each row's second half, labels 0/1."""
    lengths = [T] + [int(torch.randint(max(2, T // 4), T + 1, (1,), generator=gen)) for _ in range(B - 1)]
    ids = torch.zeros(B, T, dtype=torch.int64)
    mask = torch.zeros(B, T, dtype=torch.int64)
    types = torch.zeros(B, T, dtype=torch.int64)
    for b, n in enumerate(lengths):
        ids[b, :n] = torch.randint(1, vocab, (n,), generator=gen)
        mask[b, :n] = 1
        types[b, n // 2:n] = 1
    labels = torch.randint(0, 2, (B,), generator=gen)
    return ids, mask, types, labels


def hf_reference(cfg, work, batch, device):
    """transformers' model: random init (seed 0), saved with save_pretrained; logits, loss, grads."""
    import transformers
    from transformers import BertConfig, BertForSequenceClassification
    fields = {k: v for k, v in cfg.items() if k not in ("model_type", "architectures")}
    config = BertConfig(**fields)
    try:  # the textbook attention; SDPA would differ only in float32 rounding
        config._attn_implementation = "eager"
    except (AttributeError, ValueError):
        pass
    torch.manual_seed(0)
    model = BertForSequenceClassification(config).float()
    model.save_pretrained(work)  # model.safetensors + config.json
    model.to(device).train()
    ids, mask, types, labels = (t.to(device) for t in batch)
    out = model(input_ids=ids, attention_mask=mask, token_type_ids=types, labels=labels)
    out.loss.backward()
    grads = {n: p.grad.detach().float().cpu() for n, p in model.named_parameters()}
    attn = getattr(model.config, "_attn_implementation", None)
    name = f"transformers {transformers.__version__} BertForSequenceClassification (attention: {attn})"
    return name, out.logits.detach().float().cpu(), out.loss.detach().float().cpu().reshape(1), grads


def plain_reference(cfg, work, batch):
    """tests/torch/bert_reference.py on random weights (LayerNorm and biases non-trivial)."""
    params = random_params(cfg, len(LABELS), torch.Generator().manual_seed(0))
    st.save(os.path.join(work, "model.safetensors"), params, {"format": "pt"})
    with open(os.path.join(work, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    leaves = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    ids, mask, types, labels = batch
    logits, loss = forward(cfg, leaves, ids, mask, types, labels.float(), len(LABELS))
    loss.backward()
    grads = {k: v.grad for k, v in leaves.items()}
    return ("tests/torch/bert_reference.py (transformers not installed)", logits.detach(),
            loss.detach().reshape(1), grads)


def group_of(name):
    if name in ("logits", "loss"):
        return name
    n = name[len("grad."):]
    if n.startswith("bert.embeddings."):
        return "grad embeddings"
    if "LayerNorm" in n:
        return "grad encoder LayerNorm"
    if ".attention." in n:
        return "grad attention"
    if ".intermediate." in n or ".output.dense" in n:
        return "grad feed-forward"
    if n.startswith("bert.pooler."):
        return "grad pooler"
    return "grad classifier"


def compare(expected, actual):
    """Per group: the largest |ours - torch| and that over the group's largest |torch| (a per-tensor
    relative figure would divide by ~0 for gradients that vanish exactly, such as the key bias's)."""
    groups = {}
    for name, ref in expected.items():
        if name not in actual:
            raise SystemExit(f"parity.py: the engine wrote no tensor {name!r}; is parity.ts up to date?")
        got = actual[name].float().reshape(ref.shape)
        diff = float((got - ref.float()).abs().max())
        g = groups.setdefault(group_of(name), dict(tensors=0, max_abs=0.0, scale=0.0, worst=name))
        g["tensors"] += 1
        g["scale"] = max(g["scale"], float(ref.abs().max()))
        if diff >= g["max_abs"]:
            g["max_abs"], g["worst"] = diff, name
    for g in groups.values():
        g["max_rel"] = g["max_abs"] / g["scale"] if g["scale"] > 0 else g["max_abs"]
        g["ok"] = g["max_rel"] <= BOUND
    return groups


def report(out, result):
    with open(os.path.join(out, "parity.json"), "w") as f:
        json.dump(result, f, indent=1)
    groups = result["groups"]
    print(f"{'group':24} {'tensors':>7} {'max abs diff':>13} {'max rel diff':>13}  largest difference in")
    for name, g in groups.items():
        flag = "" if g["ok"] else f"  > {BOUND}: CHECK"
        print(f"{name:24} {g['tensors']:7d} {g['max_abs']:13.3e} {g['max_rel']:13.3e}  {g['worst']}{flag}")
    print(f"parity: {'ok' if result['ok'] else 'MISMATCH'} (bound: max|diff| <= {BOUND} x max|reference| per group)")
    sys.exit(0 if result["ok"] else 1)


def hf_loads_ours(folder):
    """Does transformers load the engine's own model.safetensors + config.json with nothing missing?"""
    try:
        from transformers import BertForSequenceClassification
    except ImportError:
        return {"skipped": "transformers not installed"}
    _, info = BertForSequenceClassification.from_pretrained(folder, output_loading_info=True)
    result = {k: sorted(map(str, info.get(k, []))) for k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    result["ok"] = not result["missing_keys"] and not result["mismatched_keys"]
    print(f"parity: transformers loads our checkpoint: {result}", flush=True)
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiny", action="store_true", help="tiny config, batch 4 x 16 (for CPU hosts)")
    ap.add_argument("--out", default=".", help="folder for parity.json")
    ap.add_argument("--work", help="keep the model folder and tensors (reference.safetensors, webgpu.safetensors) "
                    "here (default: a temporary folder, deleted)")
    ap.add_argument("--compare-only", action="store_true",
                    help="only compare --work's reference.safetensors with its webgpu.safetensors")
    ap.add_argument("--deno", default=shutil.which("deno") or "deno", help="deno executable")
    ap.add_argument("--deno-flag", action="append", default=[],
                    help="extra flag for deno run, repeatable (the GPU host: --cached-only)")
    ap.add_argument("--device", help="torch device for the reference (default: cuda when available, else cpu)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    if a.compare_only:
        if not a.work:
            raise SystemExit("parity.py: --compare-only needs --work <folder of an earlier run>")
        groups = compare(st.load(os.path.join(a.work, "reference.safetensors")),
                         st.load(os.path.join(a.work, "webgpu.safetensors")))
        ok = all(g["ok"] for g in groups.values())
        report(a.out, dict(reference=f"{a.work}/reference.safetensors", bound=BOUND, ok=ok, groups=groups))
    t0 = time.time()
    cfg = make_config(a.tiny)
    B, T = (4, 16) if a.tiny else (32, 64)
    work = a.work or tempfile.mkdtemp(prefix="parity_")
    os.makedirs(work, exist_ok=True)
    device = a.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda"):  # true float32 matmuls, like the engine
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    try:
        batch = make_batch(B, T, cfg["vocab_size"], torch.Generator().manual_seed(1234))
        ids, mask, types, labels = batch
        st.save(os.path.join(work, "batch.safetensors"), {
            "input_ids": ids.int(), "attention_mask": mask.int(), "token_type_ids": types.int(),
            "labels": labels.float()})
        try:
            import transformers  # noqa: F401
            reference, logits, loss, grads = hf_reference(cfg, work, batch, device)
        except ImportError:
            device = "cpu"
            reference, logits, loss, grads = plain_reference(cfg, work, batch)
        print(f"parity: reference {reference} on {device}; config hidden {cfg['hidden_size']} x "
              f"{cfg['num_hidden_layers']} layers; batch {B} x {T} ({int(mask.sum())} real tokens)", flush=True)
        expected = {"logits": logits, "loss": loss}
        expected.update({f"grad.{k}": v for k, v in grads.items()})
        if a.work:
            st.save(os.path.join(work, "reference.safetensors"), expected)
        # --no-lock: resolve only this entry point's npm packages, not the whole lockfile (an offline
        # host's DENO_DIR holds just those; versions are pinned exactly in deno.json anyway).
        cmd = [a.deno, "run", "-A", "--no-lock", *a.deno_flag, os.path.join(ROOT, "bench", "gpu", "parity.ts"), work]
        run = subprocess.run(cmd,
                             cwd=ROOT, capture_output=True, text=True)
        if run.returncode != 0:
            sys.stderr.write(run.stdout + run.stderr)
            raise SystemExit(f"parity.py: bench/gpu/parity.ts failed with exit code {run.returncode}")
        webgpu = json.loads(run.stdout.strip().splitlines()[-1])
        print(f"parity: WebGPU adapter {webgpu['adapter']} (fallback: {webgpu['fallback']})")
        groups = compare(expected, st.load(os.path.join(work, "webgpu.safetensors")))
        hf_load = hf_loads_ours(os.path.join(work, "ours"))
    finally:
        if not a.work:
            shutil.rmtree(work, ignore_errors=True)
    ok = all(g["ok"] for g in groups.values()) and hf_load.get("ok", True)
    report(a.out, dict(reference=reference, torch=torch.__version__, device=device, config=cfg, batch=B, seq=T,
                       webgpu=webgpu, bound=BOUND, ok=ok, groups=groups, hf_load=hf_load,
                       seconds=time.time() - t0))


if __name__ == "__main__":
    main()
