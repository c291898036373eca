"""Reference values for the GLUE metrics of train/data/metrics.ts -> tests/fixtures/glue_metrics.json
(dev-only): scipy.stats.pearsonr / spearmanr and sklearn's accuracy_score, f1_score and
matthews_corrcoef on fixed vectors (ties, negatives, degenerate cases).
Needs Debian's python3-scipy and python3-sklearn. Run: /usr/bin/python3 tests/torch/glue_metrics_fixture.py
"""
import json
import math
import os
import warnings

import numpy as np
from scipy import stats
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

rng = np.random.default_rng(15)


def nan_to_none(v):
    v = float(v)
    return None if math.isnan(v) else v


def regression(name, pred, gold):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant input: scipy warns and returns nan
        p = stats.pearsonr(pred, gold)[0]
        s = stats.spearmanr(pred, gold)[0]
    return {
        "name": name,
        "pred": [float(v) for v in pred],
        "gold": [float(v) for v in gold],
        "pearson": nan_to_none(p),
        "spearmanr": nan_to_none(s),
        "ranks_pred": [float(v) for v in stats.rankdata(pred, method="average")],
    }


def classification(name, pred, gold):
    labels = sorted(set(pred) | set(gold))
    out = {
        "name": name,
        "pred": [int(v) for v in pred],
        "gold": [int(v) for v in gold],
        "accuracy": float(accuracy_score(gold, pred)),
        "matthews_correlation": float(matthews_corrcoef(gold, pred)),
    }
    if len(labels) <= 2:
        out["f1"] = float(f1_score(gold, pred, pos_label=1, zero_division=0)) if 1 in labels or len(labels) < 2 else None
    if out.get("f1") is None:
        out.pop("f1", None)
    return out


regs = [
    regression("simple", [1.0, 2.0, 3.0, 4.0, 5.0], [1.1, 1.9, 3.5, 3.9, 5.2]),
    regression("negative", [0.5, 1.5, 2.5, 3.5], [4.0, 3.0, 2.5, 0.0]),
    regression("ties in both", [1, 2, 2, 3, 3, 3, 4], [2, 2, 1, 4, 4, 3, 5]),
    regression("stsb-like", [round(v, 3) for v in rng.uniform(0, 5, 40)], [round(v * 5) / 5 for v in rng.uniform(0, 5, 40)]),
    regression("many ties", [0, 0, 0, 1, 1, 1, 2, 2], [0, 1, 0, 1, 2, 1, 2, 2]),
    regression("constant prediction", [2.5, 2.5, 2.5, 2.5], [1, 2, 3, 4]),
    regression("two points", [1, 3], [0, -2]),
]
g = rng.integers(0, 2, 50)
p = np.where(rng.uniform(size=50) < 0.8, g, 1 - g)
g3 = rng.integers(0, 3, 60)
p3 = np.where(rng.uniform(size=60) < 0.6, g3, rng.integers(0, 3, 60))
clss = [
    classification("binary", list(p), list(g)),
    classification("binary all one", [1] * 6, [0, 1, 1, 0, 1, 1]),
    classification("binary perfect", [0, 1, 1, 0], [0, 1, 1, 0]),
    classification("three classes", list(p3), list(g3)),
]
out = {"regression": regs, "classification": clss}
path = os.path.join(os.path.dirname(__file__), "..", "fixtures", "glue_metrics.json")
with open(path, "w") as f:
    json.dump(out, f, indent=1)
    f.write("\n")
print("wrote", path)
