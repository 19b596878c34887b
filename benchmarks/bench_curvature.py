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


def loss(sizes):
    torch.manual_seed(0)
    d = data.load_digits(n_train=256, dtype=torch.float64)
    net = mlp(sizes, "tanh", bias=False, init="xavier_uniform", dtype=torch.float64)
    return flat_loss(net, F.cross_entropy, d.X_train, d.y_train)


def main() -> None:
    torch.set_num_threads(1)
    f, theta = loss([64, 32, 32, 10])
    curvature.sharpness(f, theta)  # warm-up (first use of torch.func transforms)
    t = time.perf_counter()
    dense = float(torch.linalg.eigvalsh(curvature.hessian(f, theta))[-1])
    t_dense = time.perf_counter() - t
    t = time.perf_counter()
    lanczos = curvature.sharpness(f, theta, tol=1e-10)
    t_lanczos = time.perf_counter() - t
    if abs(lanczos - dense) > 1e-6 * abs(dense):
        raise SystemExit(f"Lanczos {lanczos} and dense {dense} disagree")
    print(f"{f.n_params} parameters: dense {t_dense:.2f} s, Lanczos {t_lanczos:.3f} s, lambda_max {dense:.6f}",
          file=sys.stderr)
    big, theta_big = loss([64, 300, 300, 10])
    t = time.perf_counter()
    e = curvature.eigen(big, theta_big, tol=1e-6)
    print(f"{big.n_params} parameters: Lanczos {time.perf_counter() - t:.2f} s ({e.products} products), "
          f"lambda_max {e.values[0]:.4f}", file=sys.stderr)
    print(f"{t_dense / t_lanczos:.1f}")


if __name__ == "__main__":
    main()
