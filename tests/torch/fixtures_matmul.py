"""Dev-only: writes tests/fixtures/kernels/{matmul,bias_grad}.safetensors from PyTorch autograd.

Run from the repository root with Debian's python (torch 1.13):  /usr/bin/python3 tests/torch/fixtures_matmul.py

Inputs (and upstream gradients) are drawn in float32, what the GPU kernels read, and stored as F32;
outputs and gradients are computed by torch in float64 from those same values and stored as F64, so
the float64 CPU reference must match them to rounding and the float32 GPU kernels to float32
tolerances.

matmul.safetensors
  linear.*     y(BT, N) = F.linear(x(BT, K), w(N, K), b(N)); dy random; dx, dw, db by autograd
  batched.*    c(Z, M, N) = torch.matmul(a(Z, M, K), b(Z, K, N)); dc random; da, db by autograd
  attention.*  q, k, v: (B, T, H*D); p: (B, H, T, T); per head h of q, k, v (columns h*D..h*D+D):
               scores = (q_h @ k_h^T) * scale, ctx = p @ v_h merged back to (B, T, H*D);
               dscores, dctx random; dq, dk, dp, dv by autograd
bias_grad.safetensors
  dy(R, C) random; dbias = the bias gradient of y = x + bias by autograd
qkv.safetensors (the engine's fused Q/K/V projection, checked against three separate nn.Linear)
  x (B*T, C); wq, wk, wv (C, C); bq, bk, bv (C); q, k, v = F.linear(x, w*, b*); per head h:
  scores = q_h @ k_h^T, ctx = p @ v_h (B, T, C); dscores, dctx random; dx, dw*, db* by autograd
"""
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
import st  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "fixtures", "kernels")


def randn(*shape):
    """float32 draw, widened to float64 so torch computes the exact reference of the GPU's inputs."""
    return torch.randn(*shape, dtype=torch.float32).double()


def linear():
    bt, n, k = 3 * 7, 33, 45
    x, w, b = randn(bt, k).requires_grad_(), randn(n, k).requires_grad_(), randn(n).requires_grad_()
    y = F.linear(x, w, b)
    dy = randn(bt, n)
    y.backward(dy)
    return {"linear.x": x, "linear.w": w, "linear.b": b, "linear.y": y, "linear.dy": dy,
            "linear.dx": x.grad, "linear.dw": w.grad, "linear.db": b.grad}


def batched():
    z, m, n, k = 6, 5, 7, 33
    a, b = randn(z, m, k).requires_grad_(), randn(z, k, n).requires_grad_()
    c = torch.matmul(a, b)
    dc = randn(z, m, n)
    c.backward(dc)
    return {"batched.a": a, "batched.b": b, "batched.c": c, "batched.dc": dc,
            "batched.da": a.grad, "batched.db": b.grad}


def attention():
    bsz, t, h, d = 3, 7, 2, 5
    c = h * d
    scale = 1 / math.sqrt(d)
    q, k, v = (randn(bsz, t, c).requires_grad_() for _ in range(3))
    p = randn(bsz, h, t, t).requires_grad_()

    def heads(x):  # (B, T, H*D) -> (B, H, T, D)
        return x.view(bsz, t, h, d).transpose(1, 2)

    scores = (heads(q) @ heads(k).transpose(-1, -2)) * scale
    ctx = (p @ heads(v)).transpose(1, 2).reshape(bsz, t, c)
    dscores, dctx = randn(bsz, h, t, t), randn(bsz, t, c)
    torch.autograd.backward([scores, ctx], [dscores, dctx])
    return {"attention.q": q, "attention.k": k, "attention.v": v, "attention.p": p,
            "attention.scores": scores, "attention.ctx": ctx,
            "attention.dscores": dscores, "attention.dctx": dctx,
            "attention.dq": q.grad, "attention.dk": k.grad, "attention.dp": p.grad, "attention.dv": v.grad}


def bias_grad():
    rows, cols = 37, 45
    x, bias = randn(rows, cols), randn(cols).requires_grad_()
    dy = randn(rows, cols)
    (x + bias).backward(dy)
    return {"dy": dy, "dbias": bias.grad}


def qkv():
    bsz, t, h, d = 3, 7, 2, 5
    c = h * d
    x = randn(bsz * t, c).requires_grad_()
    w = {n: randn(c, c).requires_grad_() for n in "qkv"}
    b = {n: randn(c).requires_grad_() for n in "qkv"}
    p = randn(bsz, h, t, t)
    q, k, v = (F.linear(x, w[n], b[n]) for n in "qkv")

    def heads(y):  # (B*T, H*D) -> (B, H, T, D)
        return y.view(bsz, t, h, d).transpose(1, 2)

    scores = heads(q) @ heads(k).transpose(-1, -2)
    ctx = (p @ heads(v)).transpose(1, 2).reshape(bsz * t, c)
    dscores, dctx = randn(bsz, h, t, t), randn(bsz * t, c)
    torch.autograd.backward([scores, ctx], [dscores, dctx])
    out = {"x": x, "p": p, "scores": scores, "ctx": ctx, "dscores": dscores, "dctx": dctx, "dx": x.grad}
    for n in "qkv":
        out.update({f"w{n}": w[n], f"b{n}": b[n], f"dw{n}": w[n].grad, f"db{n}": b[n].grad})
    return out


INPUTS = {"x", "w", "b", "dy", "a", "dc", "q", "k", "v", "p", "dscores", "dctx",
          "wq", "wk", "wv", "bq", "bk", "bv"}


def stored(tensors):
    """Inputs back to float32 (exact: they were drawn in float32), results kept in float64."""
    return {name: t.detach().float() if name.split(".")[-1] in INPUTS else t.detach()
            for name, t in tensors.items()}


def main():
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    tensors = {**linear(), **batched(), **attention()}
    meta = {"generator": "tests/torch/fixtures_matmul.py", "torch": torch.__version__}
    st.save(os.path.join(OUT, "matmul.safetensors"), stored(tensors), meta)
    st.save(os.path.join(OUT, "bias_grad.safetensors"), stored(bias_grad()), meta)
    st.save(os.path.join(OUT, "qkv.safetensors"), stored(qkv()), meta)


if __name__ == "__main__":
    main()
