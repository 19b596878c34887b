"""32 seeds trained at once by :mod:`nslib.tools.ensembles` against the same 32 trainings one after another.

Workload (the kind the relu-vs-smooth page trains by the hundred): MLP 64-32-32-10 with ReLU on 512 sklearn digits,
minibatches of 32 drawn by each seed's own generator, cross-entropy, SGD lr 0.1, 300 steps, loss recorded every
step, float32, 1 thread. Both sides do the same work: the sequential side is ``nslib.tools.train.train`` per seed,
the vectorised side one ``nslib.tools.ensembles.train_ensemble`` over 32 members, and the two reach the same parameters
(checked at the end). They run interleaved (this machine is shared and noisy); median times are compared. The
last stdout line is the speed-up, sequential / vectorised (target >= 4, goal 8).

Small models are bound by Python overhead per step (~0.6 ms here whatever the width), not by arithmetic; stacking
32 of them pays that overhead once. A full-batch or wide workload is bound by arithmetic and gains less.
"""

from __future__ import annotations

import statistics
import sys
import time

import torch
import torch.nn.functional as F

from nslib.tools import ensembles
from nslib.tools.data import load
from nslib.tools.models import mlp
from nslib.tools.train import train

SEEDS, STEPS, LR, BATCH, N_TRAIN, REPEATS = 32, 300, 0.1, 32, 512, 5


def _models(device="cpu"):
    out = []
    for s in range(SEEDS):
        torch.manual_seed(s)
        out.append(mlp([64, 32, 32, 10], "relu").to(device))
    return out


def _generators():
    return [torch.Generator().manual_seed(1000 + s) for s in range(SEEDS)]


def sequential(X, y, steps=STEPS):
    models, gens = _models(X.device), _generators()
    t0 = time.perf_counter()
    for m, g in zip(models, gens):
        train(m, F.cross_entropy, X, y, optimizer="sgd", lr=LR, steps=steps, batch_size=BATCH, generator=g)
    _sync(X.device)
    return time.perf_counter() - t0, models


def vectorised(X, y, steps=STEPS):
    models, gens = _models(X.device), _generators()
    t0 = time.perf_counter()
    run = ensembles.train_ensemble(models, F.cross_entropy, X, y, optimizer="sgd", lr=LR, steps=steps,
                                   batch_size=BATCH, generator=gens)
    _sync(X.device)
    return time.perf_counter() - t0, run


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def measure(device="cpu", steps: int = STEPS, repeats: int = REPEATS) -> dict:
    """Both sides interleaved ``repeats`` times on ``device``: median seconds, the speed-up and the largest relative
    parameter difference between the two (float32)."""
    split = load("digits", n_train=N_TRAIN)
    X, y = split.X_train.to(device), split.y_train.to(device)
    sequential(X, y, steps), vectorised(X, y, steps)  # warm-up (torch.func's first call traces its decompositions)
    t_seq, t_vec = [], []
    for _ in range(repeats):
        ts, models = sequential(X, y, steps)
        tv, run = vectorised(X, y, steps)
        t_seq.append(ts)
        t_vec.append(tv)
    worst = 0.0
    with torch.no_grad():
        for i, m in enumerate(models):
            a = torch.cat([p.reshape(-1) for p in m.parameters()])
            b = torch.cat([p.reshape(-1) for p in run.member(i).parameters()])
            worst = max(worst, float((a - b).norm() / a.norm()))
    s, v = statistics.median(t_seq), statistics.median(t_vec)
    return {"device": str(device), "seeds": SEEDS, "steps": steps, "sequential_s": s, "vectorised_s": v,
            "speedup": s / v, "largest_relative_difference": worst}


def main(tiny: bool = False) -> None:
    """``tiny``: 5 steps, one repeat, for the test suite's smoke run (seconds)."""
    torch.set_num_threads(1)
    r = measure(steps=5, repeats=1) if tiny else measure()
    print(f"{SEEDS} seeds x {r['steps']} steps, minibatch {BATCH}: sequential {r['sequential_s']:.2f} s, vectorised "
          f"{r['vectorised_s']:.2f} s; largest relative parameter difference {r['largest_relative_difference']:.1e} "
          f"(float32)", file=sys.stderr)
    print(f"{r['speedup']:.2f}")


if __name__ == "__main__":
    main(tiny="--tiny" in sys.argv[1:])
