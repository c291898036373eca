"""BertForSequenceClassification written out in plain PyTorch, computing exactly what Hugging Face's
modeling_bert.py computes (transformers is not installable here; the GPU host checks the real one).

Parameters use HF names and [out, in] layouts; dropout is off unless a generator is passed, or
`dropout_seed`: then every site drops with the engine's own counter-based mask (kernels/dropout.ts),
so gradients can be compared with dropout on.
"""
import math

import torch
import torch.nn.functional as F


def layer_names(i):
    p = f"bert.encoder.layer.{i}"
    return dict(query=f"{p}.attention.self.query", key=f"{p}.attention.self.key",
                value=f"{p}.attention.self.value", attn_out=f"{p}.attention.output.dense",
                attn_ln=f"{p}.attention.output.LayerNorm", inter=f"{p}.intermediate.dense",
                out=f"{p}.output.dense", out_ln=f"{p}.output.LayerNorm")


def param_shapes(cfg, num_labels):
    H, I = cfg["hidden_size"], cfg["intermediate_size"]
    shapes = {
        "bert.embeddings.word_embeddings.weight": [cfg["vocab_size"], H],
        "bert.embeddings.position_embeddings.weight": [cfg["max_position_embeddings"], H],
        "bert.embeddings.token_type_embeddings.weight": [cfg["type_vocab_size"], H],
        "bert.embeddings.LayerNorm.weight": [H], "bert.embeddings.LayerNorm.bias": [H],
    }
    for i in range(cfg["num_hidden_layers"]):
        n = layer_names(i)
        for k, (o, inp) in dict(query=(H, H), key=(H, H), value=(H, H), attn_out=(H, H),
                                inter=(I, H), out=(H, I)).items():
            shapes[f"{n[k]}.weight"] = [o, inp]
            shapes[f"{n[k]}.bias"] = [o]
        for k in ("attn_ln", "out_ln"):
            shapes[f"{n[k]}.weight"] = [H]
            shapes[f"{n[k]}.bias"] = [H]
    shapes["bert.pooler.dense.weight"] = [H, H]
    shapes["bert.pooler.dense.bias"] = [H]
    shapes["classifier.weight"] = [num_labels, H]
    shapes["classifier.bias"] = [num_labels]
    return shapes


def random_params(cfg, num_labels, gen):
    """Random weights with non-trivial LayerNorm and biases, so every gradient path is exercised."""
    out = {}
    for name, shape in param_shapes(cfg, num_labels).items():
        if name.endswith("LayerNorm.weight"):
            t = 1.0 + 0.1 * torch.randn(shape, generator=gen)
        elif name.endswith("bias"):
            t = 0.05 * torch.randn(shape, generator=gen)
        else:
            t = 0.2 * torch.randn(shape, generator=gen)
        out[name] = t.float()
    out["bert.embeddings.word_embeddings.weight"][cfg.get("pad_token_id", 0)] = 0.0
    return out


M32 = 0xFFFFFFFF


def _pcg(v):
    s = (v * 747796405 + 2891336453) & M32
    w = (((s >> ((s >> 28) + 4)) ^ s) * 277803737) & M32
    return ((w >> 22) ^ w) & M32


def dropout_hash(seed, stream, i):
    """kernels/dropout.ts's dropoutHash: pcg(pcg(pcg(i) + seed) ^ stream), all mod 2^32."""
    return _pcg(_pcg((_pcg(i) + seed) & M32) ^ stream)


def engine_dropout(x, p, seed, stream):
    """The engine's inverted dropout of x (row-major element index i): keep when hash >= ceil(p 2^32),
    kept values times float32(1 / float32(1 - p)), as torch's CPU dropout scales."""
    threshold = math.ceil(p * 4294967296)
    keep = torch.tensor([dropout_hash(seed, stream, i) >= threshold for i in range(x.numel())], dtype=x.dtype)
    scale = float(torch.tensor(1.0, dtype=torch.float32) / torch.tensor(1 - p, dtype=torch.float32))
    return x * keep.view(x.shape) * scale


def forward(cfg, P, input_ids, attention_mask, token_type_ids, labels, num_labels, dropout_gen=None,
            dropout_seed=None):
    """Returns (logits, loss). P: dict name -> tensor (requires_grad as the caller wants)."""
    H = cfg["hidden_size"]
    heads = cfg["num_attention_heads"]
    D = H // heads
    eps = cfg["layer_norm_eps"]
    B, T = input_ids.shape
    on = dropout_gen is not None or dropout_seed is not None
    p_hidden = cfg["hidden_dropout_prob"] if on else 0.0
    p_attn = cfg["attention_probs_dropout_prob"] if on else 0.0

    def drop(x, p, stream):
        """stream: the engine's site constant, layer * 8 + site (train/model.ts SITE)."""
        if p == 0.0:
            return x
        if dropout_seed is not None:
            return engine_dropout(x, p, dropout_seed, stream)
        keep = (torch.rand(x.shape, generator=dropout_gen) >= p).to(x.dtype)
        return x * keep / (1 - p)

    def lin(x, name):
        return F.linear(x, P[f"{name}.weight"], P[f"{name}.bias"])

    def ln(x, name):
        return F.layer_norm(x, (H,), P[f"{name}.weight"], P[f"{name}.bias"], eps)

    pad = cfg.get("pad_token_id", 0)
    pos = torch.arange(T).unsqueeze(0).expand(B, T)
    emb = F.embedding(input_ids, P["bert.embeddings.word_embeddings.weight"], padding_idx=pad)
    emb = emb + F.embedding(token_type_ids, P["bert.embeddings.token_type_embeddings.weight"])
    emb = emb + F.embedding(pos, P["bert.embeddings.position_embeddings.weight"])
    h = drop(ln(emb, "bert.embeddings.LayerNorm"), p_hidden, 6)
    dtype = h.dtype
    ext = (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min
    for i in range(cfg["num_hidden_layers"]):
        n = layer_names(i)

        def split(x):
            return x.view(B, T, heads, D).permute(0, 2, 1, 3)

        q, k, v = split(lin(h, n["query"])), split(lin(h, n["key"])), split(lin(h, n["value"]))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(D) + ext
        probs = drop(torch.softmax(scores, dim=-1), p_attn, i * 8 + 0)
        ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).reshape(B, T, H)
        h1 = ln(drop(lin(ctx, n["attn_out"]), p_hidden, i * 8 + 1) + h, n["attn_ln"])
        inter = F.gelu(lin(h1, n["inter"]))
        h = ln(drop(lin(inter, n["out"]), p_hidden, i * 8 + 2) + h1, n["out_ln"])
    pooled = torch.tanh(lin(h[:, 0], "bert.pooler.dense"))
    logits = lin(drop(pooled, p_hidden, cfg["num_hidden_layers"] * 8 + 7), "classifier")
    if num_labels == 1:
        loss = F.mse_loss(logits.squeeze(), labels.squeeze().to(dtype))
    else:
        loss = F.cross_entropy(logits.view(-1, num_labels), labels.view(-1).long())
    return logits, loss
