"""Dev-only: PyTorch 1.13 fixtures for LayerNorm, attention softmax, GELU, tanh, dropout and the loss.

Run from the repo root with Debian's torch:  /usr/bin/python3 tests/torch/fixtures_elementwise.py
Writes tests/fixtures/kernels/{layernorm,softmax,gelu,tanh,dropout,loss}.safetensors (small, committed).

Inputs are float32 (what the GPU sees). "<name>" outputs and gradients are float64 torch results on
those inputs (autograd for gradients); "<name>_f32" outputs are the float32 Hugging Face computation
itself, for parity with the model PyTorch would run.
"""
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from st import save  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "fixtures", "kernels")
F32_MIN = torch.finfo(torch.float32).min


def scalar(v):
    return torch.tensor([v], dtype=torch.float64)


def layernorm():
    """nn.LayerNorm (biased variance, eps inside the sqrt), with and without the residual add."""
    torch.manual_seed(0)
    t = {}
    # "res": HF BertSelfOutput, LayerNorm(dropout(dense) + input) with eps 1e-12, B=3, T=7, C=45.
    # "eps": small variance (~1e-5) so the eps of 1e-5 matters, 5 rows of 33.
    cases = [("res", 21, 45, 1e-12, 1.0, True), ("eps", 5, 33, 1e-5, 3e-3, False)]
    for name, rows, cols, eps, scale, residual in cases:
        x = torch.randn(rows, cols) * scale
        r = torch.randn(rows, cols) if residual else torch.zeros(rows, cols)
        s32 = x + r if residual else x  # float32 add, as in the model
        gamma = 1 + 0.2 * torch.randn(cols)
        beta = 0.2 * torch.randn(cols)
        dout = torch.randn(rows, cols)
        s = s32.double().requires_grad_()
        g = gamma.double().requires_grad_()
        b = beta.double().requires_grad_()
        out = F.layer_norm(s, (cols,), g, b, eps)
        (out * dout.double()).sum().backward()
        var, mean = torch.var_mean(s.detach(), dim=1, unbiased=False)
        t.update({
            f"{name}.x": x, f"{name}.gamma": gamma, f"{name}.beta": beta, f"{name}.dout": dout,
            f"{name}.eps": scalar(eps),
            f"{name}.out": out, f"{name}.mean": mean, f"{name}.rstd": 1 / torch.sqrt(var + eps),
            f"{name}.dx": s.grad, f"{name}.dgamma": g.grad, f"{name}.dbeta": b.grad,
            f"{name}.out_f32": F.layer_norm(s32, (cols,), gamma, beta, eps),
        })
        if residual:
            t[f"{name}.residual"] = r
    save(os.path.join(OUT, "layernorm.safetensors"), t)


def softmax():
    """HF BertSelfAttention: softmax(scores / sqrt(head_dim) + (1 - mask) * finfo(f32).min).

    Batch rows: no padding, 3 padded keys, and all keys masked (uniform in float32, not in float64).
    """
    torch.manual_seed(1)
    B, H, T, D = 3, 3, 7, 15
    scores = torch.randn(B, H, T, T) * 3
    mask = torch.tensor([[1.0] * 7, [1.0] * 4 + [0.0] * 3, [0.0] * 7])
    dprobs = torch.randn(B, H, T, T)
    ext32 = (1.0 - mask[:, None, None, :]) * F32_MIN
    probs32 = F.softmax(scores / math.sqrt(D) + ext32, dim=-1)
    s = scores.double().requires_grad_()
    ext = (1.0 - mask.double()[:, None, None, :]) * F32_MIN
    probs = F.softmax(s / math.sqrt(D) + ext, dim=-1)
    (probs * dprobs.double()).sum().backward()
    save(os.path.join(OUT, "softmax.safetensors"), {
        "scores": scores, "mask": mask, "dprobs": dprobs,
        "shape": torch.tensor([B, H, T, D], dtype=torch.int32),
        "probs": probs, "dscores": s.grad, "probs_f32": probs32,
    })


def gelu():
    """F.gelu (exact erf) and its autograd gradient; torch.erf / erfc in float64 for erf()."""
    torch.manual_seed(2)
    x = torch.cat([
        torch.linspace(-12, 12, 97), torch.randn(100) * 3,
        torch.tensor([0.0, 1e-30, -1e-3, 1e-3, 30.0, -30.0, 1.4142135, -1.4142135, -5.5, -8.0]),
    ])
    dout = torch.randn(x.shape[0])
    xd = x.double().requires_grad_()
    out = F.gelu(xd)
    (out * dout.double()).sum().backward()
    z = torch.cat([
        torch.linspace(-6, 6, 241, dtype=torch.float64),
        torch.tensor([1e-300, 1e-10, -1e-5, 0.3, 1.4999999, 1.5, 1.5000001, 2.5, 5.9, 9.5, 26.0],
                     dtype=torch.float64),
        torch.rand(50, dtype=torch.float64) * 8 - 4,
    ])
    save(os.path.join(OUT, "gelu.safetensors"), {
        "x": x, "dout": dout, "out": out, "dx": xd.grad, "out_f32": F.gelu(x),
        "z": z, "erf": torch.erf(z), "erfc": torch.erfc(z),
    })


def tanh():
    """torch.tanh (the pooler) and its autograd gradient."""
    torch.manual_seed(3)
    x = torch.cat([torch.linspace(-20, 20, 81), torch.randn(50) * 2, torch.tensor([1e-6, -1e-6, 0.0])])
    dout = torch.randn(x.shape[0])
    xd = x.double().requires_grad_()
    out = torch.tanh(xd)
    (out * dout.double()).sum().backward()
    save(os.path.join(OUT, "tanh.safetensors"), {
        "x": x, "dout": dout, "out": out, "dx": xd.grad, "out_f32": torch.tanh(x),
    })


def dropout():
    """F.dropout in training mode, float32: which values torch keeps and their exact scaled values."""
    torch.manual_seed(4)
    t = {}
    for name, p in [("p10", 0.1), ("p50", 0.5), ("p33", 1 / 3)]:
        x = torch.randn(2048)
        t.update({f"{name}.x": x, f"{name}.y": F.dropout(x, p, training=True), f"{name}.p": scalar(p)})
    save(os.path.join(OUT, "dropout.safetensors"), t)


def loss():
    """CrossEntropyLoss (mean) and MSELoss (mean), as BertForSequenceClassification uses them."""
    torch.manual_seed(5)
    B, L = 5, 3
    logits = torch.randn(B, L) * 2
    logits[4] = torch.tensor([80.0, -80.0, 3.0])  # extreme row: logsumexp must not overflow
    labels = torch.tensor([0, 2, 1, 2, 1])
    ld = logits.double().requires_grad_()
    ce = F.cross_entropy(ld, labels)
    ce.backward()
    reg = torch.randn(B, 1)
    target = torch.randn(B)
    rd = reg.double().requires_grad_()
    mse = F.mse_loss(rd.squeeze(), target.double())
    mse.backward()
    save(os.path.join(OUT, "loss.safetensors"), {
        "ce.logits": logits, "ce.labels": labels.float(), "ce.loss": ce.detach().reshape(1),
        "ce.dlogits": ld.grad, "ce.loss_f32": F.cross_entropy(logits, labels).reshape(1),
        "mse.logits": reg, "mse.labels": target, "mse.loss": mse.detach().reshape(1),
        "mse.dlogits": rd.grad, "mse.loss_f32": F.mse_loss(reg.squeeze(), target).reshape(1),
    })


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    layernorm()
    softmax()
    gelu()
    tanh()
    dropout()
    loss()
