"""Dev-only check that the offline demo task (train/demo/) is learnable but not trivial. Not a test.

Reads a JSON dump {"vocab": [...], "train": [...], "validation": [...]} of generateDemoData() (do not
commit it), e.g. from the repository root:

    deno eval 'import { generateDemoData, demoVocabulary } from "./train/demo/mod.ts";
      Deno.writeTextFileSync("/tmp/demo.json", JSON.stringify({ vocab: demoVocabulary(), ...generateDemoData() }))'
    /usr/bin/python3 tests/torch/demo_learnability.py /tmp/demo.json ['{"train_sequences": 4000}']

and prints validation accuracy, overall and per error kind, of
  1. logistic regression on a bag of words (word order invisible), trained on the whole train split,
  2. logistic regression on a bag of words and bigrams (local order only), likewise,
  3. a tiny BERT trained from scratch (HF BertForSequenceClassification's shape: post-LN, GELU, tanh
     pooler over [CLS]) for 3 epochs on the first `train_sequences` sentences, for `seeds` seeds.
The optional JSON argument overrides entries of the tiny BERT's config (see `main`); "baselines": 0
skips 1 and 2. Tokenization is BERT's WordPiece on the demo vocabulary ("dogs" -> dog ##s).

Measured on seed-42 data (torch 1.13, CPU), validation accuracy, majority rate 0.500:
  bag of words 0.632, bag of words + bigrams 0.768 (agreement 0.23, attractor 0.00);
  tiny BERT, lr 2e-3, batch 16, initializer_range 0.05, no dropout:
    4000 sentences x 3 epochs: 0.898, 0.902 (seeds 0, 1)     1500 x 3: 0.748, 0.838
  tiny BERT, train/demo/main.ts's recipe (lr 1e-3, batch 32, initializer_range 0.02, dropout 0.1):
    4000 x 3: 0.778, 0.872                                    1500 x 3: 0.540, 0.584
"""
import json
import math
import re
import sys
import time

import torch
from torch import nn

torch.set_num_threads(1)  # the machine is shared; more threads only contend

MAX_LEN = 24


def wordpieces(text, vocab_index):
    """BERT's basic + WordPiece tokenization (greedy longest match) of lowercase demo text."""
    out = []
    for word in re.findall(r"[a-z0-9]+|[^\sa-z0-9]", text.lower()):
        start, pieces = 0, []
        while start < len(word):
            end = len(word)
            while end > start and ("##" if start else "") + word[start:end] not in vocab_index:
                end -= 1
            if end == start:
                pieces = ["[UNK]"]
                break
            pieces.append(("##" if start else "") + word[start:end])
            start = end
        out += pieces
    return out


def encode(examples, vocab_index):
    """[CLS] words [SEP] [PAD]... as (N, MAX_LEN) ids and a (N, MAX_LEN) attention mask."""
    ids = torch.zeros(len(examples), MAX_LEN, dtype=torch.long)
    for i, e in enumerate(examples):
        seq = ["[CLS]"] + wordpieces(e["text"], vocab_index) + ["[SEP]"]
        assert len(seq) <= MAX_LEN, e["text"]
        ids[i, : len(seq)] = torch.tensor([vocab_index[w] for w in seq])
    return ids, ids != 0


def accuracy_report(name, examples, predictions):
    labels = torch.tensor([e["label"] for e in examples])
    correct = predictions == labels
    by_kind = {}
    for e, c in zip(examples, correct.tolist()):
        by_kind.setdefault(e["kind"], []).append(c)
    kinds = ", ".join(f"{k} {sum(v) / len(v):.3f}" for k, v in sorted(by_kind.items()))
    print(f"{name}: validation accuracy {correct.float().mean():.3f} ({kinds})")
    return correct.float().mean().item()


def bag_features(examples, vocab_index, bigrams):
    """Counts of words (and of adjacent word pairs) per sentence, [CLS]/[SEP] included for bigrams."""
    v = len(vocab_index)
    dim = v + (v * v if bigrams else 0)
    x = torch.zeros(len(examples), dim)
    for i, e in enumerate(examples):
        seq = [vocab_index[w] for w in ["[CLS]"] + wordpieces(e["text"], vocab_index) + ["[SEP]"]]
        for a in seq:
            x[i, a] += 1
        if bigrams:
            for a, b in zip(seq, seq[1:]):
                x[i, v + a * v + b] += 1
    return x


def logistic_regression(name, data, vocab_index, bigrams):
    """Full-batch L2-regularised logistic regression (LBFGS), trained on the whole training split."""
    torch.manual_seed(0)
    x = bag_features(data["train"], vocab_index, bigrams)
    y = torch.tensor([e["label"] for e in data["train"]], dtype=torch.float)
    model = nn.Linear(x.shape[1], 1)
    opt = torch.optim.LBFGS(model.parameters(), max_iter=300, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = nn.functional.binary_cross_entropy_with_logits(model(x).squeeze(1), y)
        loss = loss + 1e-4 * model.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    xv = bag_features(data["validation"], vocab_index, bigrams)
    with torch.no_grad():
        predictions = (model(xv).squeeze(1) > 0).long()
    return accuracy_report(name, data["validation"], predictions)


class TinyBert(nn.Module):
    """BERT as in HF (post-LN, GELU, tanh pooler over [CLS]), sized for the demo."""

    def __init__(self, vocab_size, hidden, layers, heads, intermediate, dropout, init_std):
        super().__init__()
        self.word = nn.Embedding(vocab_size, hidden, padding_idx=0)
        self.position = nn.Embedding(MAX_LEN, hidden)
        self.token_type = nn.Embedding(2, hidden)
        self.norm = nn.LayerNorm(hidden, eps=1e-12)
        self.drop = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(
            hidden, heads, intermediate, dropout, activation="gelu", batch_first=True, layer_norm_eps=1e-12
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.pooler = nn.Linear(hidden, hidden)
        self.classifier = nn.Linear(hidden, 2)
        for m in self.modules():  # BERT's init: N(0, initializer_range) weights, zero biases
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=init_std)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
            if isinstance(m, nn.MultiheadAttention):  # packed query/key/value, as three Linear in HF
                nn.init.normal_(m.in_proj_weight, std=init_std)
                nn.init.zeros_(m.in_proj_bias)

    def forward(self, ids, mask):
        positions = torch.arange(ids.shape[1])
        h = self.word(ids) + self.position(positions)[None] + self.token_type(torch.zeros_like(ids))
        h = self.encoder(self.drop(self.norm(h)), src_key_padding_mask=~mask)
        return self.classifier(self.drop(torch.tanh(self.pooler(h[:, 0]))))


def tiny_bert(data, vocab_index, cfg, seed):
    torch.manual_seed(seed)
    train = data["train"][: cfg["train_sequences"]]
    ids, mask = encode(train, vocab_index)
    y = torch.tensor([e["label"] for e in train])
    vids, vmask = encode(data["validation"], vocab_index)
    model = TinyBert(len(vocab_index), cfg["hidden"], cfg["layers"], cfg["heads"], cfg["intermediate"],
                     cfg["dropout"], cfg["initializer_range"])
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=0.01)
    steps = cfg["epochs"] * math.ceil(len(train) / cfg["batch"])
    warmup = int(0.1 * steps)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warmup if s < warmup else max(0.0, (steps - s) / (steps - warmup))
    )
    start = time.time()
    for epoch in range(cfg["epochs"]):
        model.train()
        losses = []
        order = torch.randperm(len(train))
        for b in range(0, len(train), cfg["batch"]):
            idx = order[b : b + cfg["batch"]]
            loss = nn.functional.cross_entropy(model(ids[idx], mask[idx]), y[idx])
            losses.append(loss.item())
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            schedule.step()
        model.eval()
        with torch.no_grad():
            predictions = model(vids, vmask).argmax(1)
        name = f"tiny BERT seed {seed} epoch {epoch + 1} train loss {sum(losses) / len(losses):.3f}"
        acc = accuracy_report(name, data["validation"], predictions)
    print(f"  ({steps} steps, {time.time() - start:.1f} s)")
    return acc


def main():
    with open(sys.argv[1]) as f:
        data = json.load(f)
    vocab_index = {w: i for i, w in enumerate(data["vocab"])}
    labels = [e["label"] for e in data["validation"]]
    print(f"validation majority-class rate {max(labels.count(0), labels.count(1)) / len(labels):.3f}")
    # train/demo/main.ts's model (demoConfig) with the recipe that learned fastest here; its own
    # recipe is lr 1e-3, batch 32, initializer_range 0.02, dropout 0.1.
    cfg = dict(baselines=1, seeds=2, train_sequences=1500, epochs=3, batch=16, lr=2e-3, hidden=64, layers=2,
               heads=4, intermediate=128, dropout=0.0, initializer_range=0.05)
    if len(sys.argv) > 2:
        cfg.update(json.loads(sys.argv[2]))
    if cfg.pop("baselines"):
        logistic_regression("bag of words", data, vocab_index, bigrams=False)
        logistic_regression("bag of words + bigrams", data, vocab_index, bigrams=True)
    print("tiny BERT config", cfg)
    accs = [tiny_bert(data, vocab_index, cfg, seed) for seed in range(int(cfg.pop("seeds")))]
    print(f"tiny BERT final validation accuracy over seeds: {', '.join(f'{a:.3f}' for a in accs)}")


if __name__ == "__main__":
    main()
