"""Dev-only: PyTorch 1.13 fixtures for the fused kernels (matmul + GELU, softmax + dropout).

Run from the repo root with Debian's torch:  /usr/bin/python3 tests/torch/fixtures_fused.py
Writes tests/fixtures/kernels/fused.safetensors (small, committed).

Inputs are float32 (what the GPU sees); outputs and gradients are float64 torch results on those
inputs (autograd for gradients). Dropout masks come from our counter-based hash (kernels/dropout.ts,
reimplemented below), since torch's RNG cannot be reproduced on the GPU; torch then applies them.
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
M32 = 0xFFFFFFFF


def pcg(v):
    s = (v * 747796405 + 2891336453) & M32
    w = (((s >> ((s >> 28) + 4)) ^ s) * 277803737) & M32
    return ((w >> 22) ^ w) & M32


def keep_mask(seed, stream, n, p):
    threshold = math.ceil(p * 2**32)
    return torch.tensor([pcg(pcg((pcg(i) + seed) & M32) ^ stream) >= threshold for i in range(n)])


def gelu_linear(t):
    """BertIntermediate: inter = gelu(h1 @ W1.T + b1), then out = inter @ W2.T (BertOutput's dense).

    The fused forward gives pre = h1 @ W1.T + b1 and inter; the fused dgrad gives
    dpre = (dout @ W2) * gelu'(pre), autograd's gradient at the float32 pre the forward saved.
    """
    torch.manual_seed(6)
    N, C, I = 21, 12, 44
    x, w1, b1 = torch.randn(N, C), torch.randn(I, C) * 0.5, torch.randn(I) * 0.5
    w2, dout = torch.randn(C, I) * 0.3, torch.randn(N, C)
    pre = F.linear(x.double(), w1.double(), b1.double())
    pre32 = F.linear(x, w1, b1)
    p = pre32.double().requires_grad_()
    (F.linear(F.gelu(p), w2.double()) * dout.double()).sum().backward()
    t.update({
        "gelu.x": x, "gelu.w1": w1, "gelu.b1": b1, "gelu.w2": w2, "gelu.dout": dout,
        "gelu.pre": pre, "gelu.inter": F.gelu(pre), "gelu.pre_f32": pre32, "gelu.dpre": p.grad,
    })


def softmax_dropout(t):
    """HF BertSelfAttention in training: dropout(softmax(scores / sqrt(D) + ext_mask)), p = 0.1."""
    torch.manual_seed(7)
    B, H, T, D = 3, 2, 7, 15
    seed, stream, p = 1234567, 8, 0.1
    scores = torch.randn(B, H, T, T) * 3
    mask = torch.tensor([[1.0] * 7, [1.0] * 4 + [0.0] * 3, [1.0] * 2 + [0.0] * 5])
    ddropped = torch.randn(B, H, T, T)
    keep = keep_mask(seed, stream, B * H * T * T, p).reshape(B, H, T, T)
    scale = torch.tensor(1 / (1 - p), dtype=torch.float32).double()  # fround(1 / fround(1 - p))
    s = scores.double().requires_grad_()
    ext = (1.0 - mask.double()[:, None, None, :]) * F32_MIN
    probs = F.softmax(s / math.sqrt(D) + ext, dim=-1)
    dropped = probs * keep.double() * scale
    (dropped * ddropped.double()).sum().backward()
    t.update({
        "sd.scores": scores, "sd.mask": mask, "sd.ddropped": ddropped,
        "sd.shape": torch.tensor([B, H, T, D], dtype=torch.int32),
        "sd.dropout": torch.tensor([seed, stream], dtype=torch.int32), "sd.p": torch.tensor([p], dtype=torch.float64),
        "sd.probs": probs.detach(), "sd.dropped": dropped.detach(), "sd.dscores": s.grad,
    })


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    tensors = {}
    gelu_linear(tensors)
    softmax_dropout(tensors)
    save(os.path.join(OUT, "fused.safetensors"), tensors)
