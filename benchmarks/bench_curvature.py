"""Top Hessian eigenvalue: the dense Hessian (torch.func.hessian + eigvalsh) against Lanczos on Hessian-vector
products (nslib.tools.curvature), side by side in one run.

Workload: a bias-free tanh MLP 64-32-32-10 (3,392 parameters) on 256 sklearn digits, cross-entropy, float64, one
thread. Both must agree to 1e-6 relative. The last stdout line is the time ratio dense / Lanczos (target >= 20,
goal 50). The Lanczos time at ~10^5 parameters (64-300-300-10, 112,200 parameters), where the dense Hessian
would need 100 GB, is printed on stderr.
"""

from __future__ import annotations

import sys
import time

import torch
import torch.nn.functional as F

from nslib.tools import curvature, data
from nslib.tools.models import flat_loss, mlp


def loss(sizes, device="cpu"):
    torch.manual_seed(0)
    d = data.load("digits", n_train=256, dtype=torch.float64, device=device)
    net = mlp(sizes, "tanh", bias=False, init="xavier_uniform", dtype=torch.float64).to(device)
    return flat_loss(net, F.cross_entropy, d.X_train, d.y_train)


def measure(device="cpu", sizes=(64, 32, 32, 10)) -> dict:
    """Dense Hessian against Lanczos for the top eigenvalue on ``device``: seconds each, their ratio, and whether
    they agree to 1e-6 relative."""
    f, theta = loss(list(sizes), device)
    curvature.sharpness(f, theta)  # warm-up (first use of torch.func transforms)
    t = time.perf_counter()
    dense = float(torch.linalg.eigvalsh(curvature.hessian(f, theta))[-1])
    t_dense = time.perf_counter() - t
    t = time.perf_counter()
    lanczos = curvature.sharpness(f, theta, tol=1e-10)
    t_lanczos = time.perf_counter() - t
    return {"device": str(device), "parameters": f.n_params, "dense_s": t_dense, "lanczos_s": t_lanczos,
            "ratio": t_dense / t_lanczos, "lambda_max": dense, "agree": abs(lanczos - dense) <= 1e-6 * abs(dense)}


def main(tiny: bool = False) -> None:
    """``tiny``: a net of a few hundred parameters and no large one, for the test suite's smoke run (seconds)."""
    torch.set_num_threads(1)
    r = measure(sizes=(64, 8, 10)) if tiny else measure()
    if not r["agree"]:
        raise SystemExit(f"Lanczos and dense disagree on lambda_max {r['lambda_max']}")
    print(f"{r['parameters']} parameters: dense {r['dense_s']:.2f} s, Lanczos {r['lanczos_s']:.3f} s, lambda_max "
          f"{r['lambda_max']:.6f}", file=sys.stderr)
    big, theta_big = loss([64, 16, 10] if tiny else [64, 300, 300, 10])
    t = time.perf_counter()
    e = curvature.eigen(big, theta_big, tol=1e-6)
    print(f"{big.n_params} parameters: Lanczos {time.perf_counter() - t:.2f} s ({e.products} products), "
          f"lambda_max {e.values[0]:.4f}", file=sys.stderr)
    print(f"{r['ratio']:.1f}")


if __name__ == "__main__":
    main(tiny="--tiny" in sys.argv[1:])
