"""Writes whole-model parity fixtures: tests/fixtures/model/<case>/{model.safetensors, config.json,
batch.safetensors, expected.safetensors}. Run: /usr/bin/python3 tests/torch/fixtures_model.py
expected.safetensors holds logits, loss and grad.<name> for every parameter (dropout off, padding in
the batch), computed in float32 like the engine. Case "tiny_dropout" is "tiny" with dropout 0.1 on at
every site, drawn with the engine's own masks for dropout seed DROPOUT_SEED.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
import st  # noqa: E402
from bert_reference import forward, random_params  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..", "fixtures", "model")
DROPOUT_SEED = 777

CASES = {
    # The tiny config: 2 layers, hidden 32, 4 heads, FFN 64, batch 3, sequence 7.
    "tiny": dict(cfg=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                          vocab_size=50, max_position_embeddings=16, type_vocab_size=2),
                 labels=["unacceptable", "acceptable"], B=3, T=7, pair=True),
    # Odd sizes: hidden 45 (not a multiple of 4), 3 heads of 15, FFN 37, 3 labels.
    "odd": dict(cfg=dict(hidden_size=45, num_hidden_layers=1, num_attention_heads=3, intermediate_size=37,
                         vocab_size=23, max_position_embeddings=9, type_vocab_size=2),
                labels=["a", "b", "c"], B=5, T=5, pair=False),
    # Regression head (num_labels 1, MSE).
    "regression": dict(cfg=dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=24,
                                vocab_size=30, max_position_embeddings=8, type_vocab_size=2),
                       labels=["score"], B=4, T=6, pair=False),
}
CASES["tiny_dropout"] = dict(CASES["tiny"], dropout_seed=DROPOUT_SEED)


def make_batch(gen, B, T, vocab, pair, num_labels):
    lengths = [T] + [int(torch.randint(3, T + 1, (1,), generator=gen)) for _ in range(B - 1)]
    ids = torch.zeros(B, T, dtype=torch.int64)
    mask = torch.zeros(B, T, dtype=torch.int64)
    types = torch.zeros(B, T, dtype=torch.int64)
    for b, n in enumerate(lengths):
        ids[b, :n] = torch.randint(1, vocab, (n,), generator=gen)
        mask[b, :n] = 1
        if pair and n >= 4:
            types[b, n // 2:n] = 1
    if num_labels == 1:
        labels = torch.randn(B, generator=gen)
    else:
        labels = torch.randint(0, num_labels, (B,), generator=gen).float()
    return ids, mask, types, labels


def main():
    for case, spec in CASES.items():
        gen = torch.Generator().manual_seed(1234)
        cfg = dict(spec["cfg"], hidden_act="gelu", layer_norm_eps=1e-12, hidden_dropout_prob=0.1,
                   attention_probs_dropout_prob=0.1, initializer_range=0.02, pad_token_id=0,
                   position_embedding_type="absolute", model_type="bert",
                   architectures=["BertForSequenceClassification"],
                   id2label={str(i): n for i, n in enumerate(spec["labels"])},
                   label2id={n: i for i, n in enumerate(spec["labels"])})
        L = len(spec["labels"])
        if L == 1:
            cfg["problem_type"] = "regression"
        P = random_params(cfg, L, gen)
        ids, mask, types, labels = make_batch(gen, spec["B"], spec["T"], cfg["vocab_size"], spec["pair"], L)
        Pg = {k: v.clone().requires_grad_(True) for k, v in P.items()}
        logits, loss = forward(cfg, Pg, ids, mask, types, labels, L, dropout_seed=spec.get("dropout_seed"))
        loss.backward()
        out = os.path.join(ROOT, case)
        os.makedirs(out, exist_ok=True)
        st.save(os.path.join(out, "model.safetensors"), P, {"format": "pt"})
        with open(os.path.join(out, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        st.save(os.path.join(out, "batch.safetensors"), {
            "input_ids": ids.int(), "attention_mask": mask.int(), "token_type_ids": types.int(),
            "labels": labels.float()})
        expected = {"logits": logits.detach(), "loss": loss.detach().reshape(1)}
        for k, v in Pg.items():
            expected[f"grad.{k}"] = v.grad
        st.save(os.path.join(out, "expected.safetensors"), expected)
        if case == "tiny":
            # The same weights as torch.save(state_dict) with bare BertModel names (no "bert." prefix).
            bin_dir = os.path.join(ROOT, "tiny_bin")
            os.makedirs(bin_dir, exist_ok=True)
            torch.save({k[5:] if k.startswith("bert.") else k: v for k, v in P.items()},
                       os.path.join(bin_dir, "pytorch_model.bin"))
            with open(os.path.join(bin_dir, "config.json"), "w") as f:
                json.dump(cfg, f, indent=2)
        print(case, "loss", float(loss))


if __name__ == "__main__":
    main()
