"""Reference values for train/data/metrics.ts -> tests/fixtures/metrics.json (dev-only).

scikit-learn is not installed here, so each metric is computed from its definition, written
independently of the TypeScript (which follows sklearn's confusion-matrix formulas):
- MCC: Gorodkin's R_K = cov(X, Y) / sqrt(cov(X, X) cov(Y, Y)) over the one-hot indicator matrices
  of gold (X) and predictions (Y); 0 when the denominator is 0 (sklearn's convention).
- F1 of a class: 2 P R / (P + R) with P = tp / (tp + fp), R = tp / (tp + fn), each 0 when its
  denominator is 0 (sklearn's zero_division default); "macro" averages over the classes present in
  gold or predictions; "binary" scores pos_label.
Run: /usr/bin/python3 tests/torch/metrics_fixture.py
"""
import json
import os

import numpy as np


def mcc(pred, gold):
    classes = sorted(set(gold) | set(pred))
    x = np.array([[g == c for c in classes] for g in gold], dtype=np.float64)
    y = np.array([[p == c for c in classes] for p in pred], dtype=np.float64)
    xc = x - x.mean(axis=0)
    yc = y - y.mean(axis=0)
    cov_xy = (xc * yc).sum()
    cov_xx = (xc * xc).sum()
    cov_yy = (yc * yc).sum()
    if cov_xx * cov_yy == 0:
        return 0.0
    return float(cov_xy / np.sqrt(cov_xx * cov_yy))


def f1_of(pred, gold, c):
    tp = sum(1 for p, g in zip(pred, gold) if p == c and g == c)
    fp = sum(1 for p, g in zip(pred, gold) if p == c and g != c)
    fn = sum(1 for p, g in zip(pred, gold) if p != c and g == c)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def case(name, pred, gold):
    pred = [int(v) for v in pred]
    gold = [int(v) for v in gold]
    classes = sorted(set(gold) | set(pred))
    out = {
        "name": name,
        "pred": pred,
        "gold": gold,
        "accuracy": float(np.mean(np.array(pred) == np.array(gold))),
        "mcc": mcc(pred, gold),
        "f1Macro": float(np.mean([f1_of(pred, gold, c) for c in classes])),
    }
    if len(classes) <= 2:
        out["f1Binary"] = f1_of(pred, gold, 1)
    return out


def noisy(rng, gold, k, flip):
    """Predictions equal to gold except a `flip` fraction replaced by random classes."""
    pred = gold.copy()
    mask = rng.random(len(gold)) < flip
    pred[mask] = rng.integers(0, k, mask.sum())
    return pred


def main():
    rng = np.random.default_rng(1234)
    cases = []
    for n, flip in [(20, 0.5), (157, 0.3), (300, 0.9), (64, 0.2)]:
        gold = (rng.random(n) < 0.7).astype(int)  # CoLA-like imbalance
        cases.append(case(f"binary n={n} flip={flip}", noisy(rng, gold, 2, flip), gold))
    cases.append(case("binary independent", rng.integers(0, 2, 200), rng.integers(0, 2, 200)))
    for n, k in [(90, 3), (250, 5)]:
        gold = rng.integers(0, k, n)
        cases.append(case(f"multiclass n={n} k={k}", noisy(rng, gold, k, 0.6), gold))
    gold = rng.integers(0, 2, 50)
    cases.append(case("all predictions one class (1)", np.ones(50, int), gold))
    cases.append(case("all predictions one class (0)", np.zeros(50, int), gold))
    cases.append(case("all gold one class", rng.integers(0, 2, 40), np.ones(40, int)))
    cases.append(case("everything class 0", np.zeros(30, int), np.zeros(30, int)))
    cases.append(case("everything class 1", np.ones(30, int), np.ones(30, int)))
    cases.append(case("perfect binary", gold, gold))
    cases.append(case("inverted binary", 1 - gold, gold))
    cases.append(case("single example", [0], [1]))
    gold3 = rng.integers(0, 3, 60)
    cases.append(case("multiclass prediction never right", (gold3 + 1) % 3, gold3))
    cases.append(case("multiclass class only predicted", noisy(rng, gold3, 4, 0.5), gold3))
    path = os.path.join(os.path.dirname(__file__), "..", "fixtures", "metrics.json")
    with open(path, "w") as f:
        json.dump({"generator": "tests/torch/metrics_fixture.py", "cases": cases}, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {len(cases)} cases to {os.path.normpath(path)}")


if __name__ == "__main__":
    main()
