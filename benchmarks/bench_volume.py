"""The bifurcation-zone volume estimator (relu-prime-at-zero): the fast scan (one forward pass without gradients
screens each minibatch, the two backward passes only where a ReLU input is exactly 0, stop at the first difference)
against the plain way (two nets with ReLU'(0) = 0 and 1, forward and backward on every minibatch of a full pass),
side by side in one run, in inits per second.

Workload: the page's base net (64-256x3-10, PyTorch's default init), sklearn digits (1,348 training images),
minibatch 128, one thread, for each of float16, bfloat16 and float32. Both must find the same first differing
minibatch for every init. Batching several inits into one batched matmul is not used: it changes the GEMM kernel,
hence the rounding, hence the very exact zeros being counted. The last stdout line is the speed-up in inits per
second over the three precisions together (target >= 3, goal 10).
"""

from __future__ import annotations

import sys
import time

import torch

from nslib.findings import relu_prime_at_zero as rpz
from nslib.runner._runtime import DTYPES
from nslib.tools import data


def main(n_inits: int = 8, tiny: bool = False) -> None:
    """``tiny``: one init and a net of width 16, for the test suite's smoke run (seconds)."""
    torch.set_num_threads(1)
    n_inits, width = (1, 16) if tiny else (n_inits, 256)
    split = data.load("digits", n_train=1348, seed=0)  # all of digits' training images (it holds no more)
    t_fast = t_naive = 0.0
    for name in ("float16", "bfloat16", "float32"):
        X, y = split.X_train.to(DTYPES[name]), split.y_train
        nets = [rpz.make_kink_mlp(64, width, 3, n_out=10, seed=i, dtype=DTYPES[name]) for i in range(n_inits)]
        t = time.perf_counter()
        fast = [rpz.first_difference(n, X, y, 128)[0] for n in nets]
        dt_fast = time.perf_counter() - t
        t = time.perf_counter()
        naive = [rpz.first_difference_naive(n, X, y, 128) for n in nets]
        dt_naive = time.perf_counter() - t
        if fast != naive:
            raise SystemExit(f"{name}: fast {fast} and naive {naive} disagree")
        t_fast, t_naive = t_fast + dt_fast, t_naive + dt_naive
        print(f"{name}: {sum(f is not None for f in fast)}/{n_inits} inits in S01; fast {n_inits / dt_fast:.1f} "
              f"inits/s, naive {n_inits / dt_naive:.2f} inits/s ({dt_naive / dt_fast:.1f}x)", file=sys.stderr)
    print(f"{t_naive / t_fast:.1f}")


if __name__ == "__main__":
    main(tiny="--tiny" in sys.argv[1:])
