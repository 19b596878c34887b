"""nslib's training loop against a hand-written torch loop on a pinned workload.

Workload: MLP 64-128-128-10 with ReLU on sklearn digits (1,797 images), full batch, cross-entropy,
SGD lr 0.1, 500 steps, 1 thread. The two loops run interleaved (this machine is shared and noisy);
the median time of each is compared. The last stdout line is the ratio nslib / hand-written
(target <= 1.10).
"""

from __future__ import annotations

import statistics
import sys
import time

import torch
import torch.nn.functional as F

from nslib.tools.models import mlp
from nslib.tools.train import train

STEPS, LR, REPEATS = 500, 0.1, 5


def _model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return mlp([64, 128, 128, 10], "relu")


def hand_written(X, y, seed: int, steps: int = STEPS) -> float:
    model = _model(seed)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    t0 = time.perf_counter()
    for _ in range(steps + 1):  # same work as nslib.train: STEPS updates, STEPS + 1 loss evaluations
        loss = F.cross_entropy(model(X), y)
        loss.item()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def with_nslib(X, y, seed: int, steps: int = STEPS) -> float:
    model = _model(seed)
    t0 = time.perf_counter()
    train(model, F.cross_entropy, X, y, optimizer="sgd", lr=LR, steps=steps, record_every=10)
    return time.perf_counter() - t0


def main(tiny: bool = False) -> None:
    """``tiny``: 20 steps, one repeat, for the test suite's smoke run (seconds)."""
    torch.set_num_threads(1)
    steps, repeats = (20, 1) if tiny else (STEPS, REPEATS)
    import sklearn.datasets

    d = sklearn.datasets.load_digits()
    X = torch.tensor(d.data / 16.0, dtype=torch.float32)
    y = torch.tensor(d.target)
    hand_written(X, y, 0, steps), with_nslib(X, y, 0, steps)  # warm-up
    t_hand, t_ns = [], []
    for r in range(repeats):
        t_hand.append(hand_written(X, y, r, steps))
        t_ns.append(with_nslib(X, y, r, steps))
    mh, mn = statistics.median(t_hand), statistics.median(t_ns)
    print(f"hand-written: median {mh:.3f} s  {['%.3f' % t for t in t_hand]}", file=sys.stderr)
    print(f"nslib.train:  median {mn:.3f} s  {['%.3f' % t for t in t_ns]}", file=sys.stderr)
    print(f"{mn / mh:.3f}")


if __name__ == "__main__":
    main(tiny="--tiny" in sys.argv[1:])
