"""Writes the training parity fixture tests/fixtures/training/: a tiny BERT folder (config.json,
model.safetensors, vocab.txt, tokenizer_config.json), train.tsv (sentence, label; whole-word texts so
the WordPiece ids are the word indices), and what 20 optimizer steps in PyTorch give:
steps.json (loss, learning rate and pre-clip gradient norm per step) and final.safetensors (weights).

Recipe: AdamW (betas 0.9/0.999, eps 1e-8, weight decay 0.01 except bias and LayerNorm.weight),
HF linear schedule with 2 warmup steps over 20, clip_grad_norm_ 1.0, batch 4, max length 8 with
fixed padding, dropout off, file order. Run: /usr/bin/python3 tests/torch/fixtures_training.py
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
import st  # noqa: E402
from bert_reference import forward, random_params  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "fixtures", "training")
STEPS, BATCH, MAXLEN, LR, WARMUP, WD = 20, 4, 8, 3e-3, 2, 0.01
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = [f"w{i}" for i in range(45)]


def main():
    gen = torch.Generator().manual_seed(7)
    vocab = SPECIALS + WORDS
    cfg = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
               vocab_size=len(vocab), max_position_embeddings=16, type_vocab_size=2, hidden_act="gelu",
               layer_norm_eps=1e-12, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
               initializer_range=0.02, pad_token_id=0, position_embedding_type="absolute", model_type="bert",
               architectures=["BertForSequenceClassification"],
               id2label={"0": "unacceptable", "1": "acceptable"}, label2id={"unacceptable": 0, "acceptable": 1})
    P = random_params(cfg, 2, gen)
    for k in P:  # smaller weights: gradient norms then straddle the clipping threshold
        if k.endswith(".weight") and "LayerNorm" not in k:
            P[k] *= 0.25
    os.makedirs(OUT, exist_ok=True)
    st.save(os.path.join(OUT, "model.safetensors"), P, {"format": "pt"})
    with open(os.path.join(OUT, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    with open(os.path.join(OUT, "vocab.txt"), "w") as f:
        f.write("\n".join(vocab) + "\n")
    with open(os.path.join(OUT, "tokenizer_config.json"), "w") as f:
        json.dump({"do_lower_case": True}, f)

    rows = []
    for _ in range(STEPS * BATCH):
        n = int(torch.randint(1, MAXLEN - 1, (1,), generator=gen))
        words = [WORDS[int(i)] for i in torch.randint(0, len(WORDS), (n,), generator=gen)]
        # A learnable rule, so the loss moves: label 1 when w0..w9 appears.
        label = int(any(int(w[1:]) < 10 for w in words))
        rows.append((" ".join(words), label))
    with open(os.path.join(OUT, "train.tsv"), "w") as f:
        f.write("sentence\tlabel\n")
        for text, label in rows:
            f.write(f"{text}\t{label}\n")

    params = {k: v.clone().requires_grad_(True) for k, v in P.items()}
    decay = [p for n, p in params.items() if not any(nd in n for nd in ("bias", "LayerNorm.weight"))]
    no_decay = [p for n, p in params.items() if any(nd in n for nd in ("bias", "LayerNorm.weight"))]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WD}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=LR, eps=1e-8, foreach=False)

    def lr_lambda(step):
        if step < WARMUP:
            return float(step) / float(max(1, WARMUP))
        return max(0.0, float(STEPS - step) / float(max(1, STEPS - WARMUP)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda)
    log = []
    for s in range(STEPS):
        chunk = rows[s * BATCH:(s + 1) * BATCH]
        ids = torch.zeros(BATCH, MAXLEN, dtype=torch.int64)
        mask = torch.zeros(BATCH, MAXLEN, dtype=torch.int64)
        for b, (text, _) in enumerate(chunk):
            toks = [2] + [vocab.index(w) for w in text.split()] + [3]
            ids[b, :len(toks)] = torch.tensor(toks)
            mask[b, :len(toks)] = 1
        labels = torch.tensor([float(lab) for _, lab in chunk])
        lr = sched.get_last_lr()[0]
        opt.zero_grad()
        _, loss = forward(cfg, params, ids, mask, torch.zeros_like(ids), labels, 2)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(list(params.values()), 1.0)
        opt.step()
        sched.step()
        log.append({"step": s + 1, "loss": float(loss), "learning_rate": lr, "grad_norm": float(norm)})
    with open(os.path.join(OUT, "steps.json"), "w") as f:
        json.dump(log, f, indent=1)
    st.save(os.path.join(OUT, "final.safetensors"), {k: v.detach() for k, v in params.items()})
    clipped = sum(1 for e in log if e["grad_norm"] > 1.0)
    print(f"{STEPS} steps, loss {log[0]['loss']:.4f} -> {log[-1]['loss']:.4f}, clipping active on {clipped} steps")


if __name__ == "__main__":
    main()
