"""Dev-only: the learning rates of transformers' linear, constant-with-warmup and cosine (num_cycles 0.5)
schedules, as LambdaLR applies them (lr * lambda(step) for step 0..total-1), for
train/schedule_test.ts. Plain Python (no torch): the lambdas are transcribed from
transformers/optimization.py (_get_linear_schedule_with_warmup_lr_lambda,
_get_constant_schedule_with_warmup_lr_lambda, _get_cosine_schedule_with_warmup_lr_lambda).

    /usr/bin/python3 tests/torch/fixtures_schedules.py   # writes tests/fixtures/schedules/lr.json
"""
import json
import math
import os


def linear(step, warmup, total):
    if step < warmup:
        return float(step) / float(max(1, warmup))
    return max(0.0, float(total - step) / float(max(1, total - warmup)))


def constant(step, warmup, total):
    if step < warmup:
        return float(step) / float(max(1.0, warmup))
    return 1.0


def cosine(step, warmup, total, num_cycles=0.5):
    if step < warmup:
        return float(step) / float(max(1, warmup))
    progress = float(step - warmup) / float(max(1, total - warmup))
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress)))


cases = []
for name, fn in [("linear", linear), ("constant", constant), ("cosine", cosine)]:
    for warmup, total, lr in [(0, 10, 2e-5), (3, 17, 1e-3), (5, 5, 3e-4), (2, 40, 5e-5)]:
        cases.append({
            "scheduler": name, "warmupSteps": warmup, "totalSteps": total, "lr": lr,
            "lrs": [lr * fn(s, warmup, total) for s in range(total)],
        })
out = os.path.join(os.path.dirname(__file__), "..", "fixtures", "schedules", "lr.json")
with open(out, "w") as f:
    json.dump({"cases": cases}, f, indent=1)
    f.write("\n")
