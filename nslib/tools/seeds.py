"""Independent random streams from one page seed.

A page's ``seed`` parameter names one experiment; everything random inside it (data splits, initialisations,
minibatch orders, the inits of a volume count) takes its seed from here, so that two pages seeds are two
independent tries. ``range(seed, seed + n)`` does not give that: seeds 0 and 1 of a page would share n - 1 of their
inits, and "holds at 9 of 10 seeds" would count the same draws again. numpy's :class:`numpy.random.SeedSequence`
spawns streams that are independent by construction, whatever the seeds are; ``purpose`` keeps the streams of one
page apart from each other (the data of seed 0 never equals the inits of seed 0).

    >>> stream_seeds(0, 3, "init")            # three independent 32-bit seeds for torch.manual_seed
    >>> rng = numpy_rng(0, "data")            # one numpy Generator
    >>> g = torch_generator(0, "batches")     # one torch Generator
"""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["numpy_rng", "stream_seed", "stream_seeds", "torch_generator"]


def _sequence(seed: int, purpose: str) -> np.random.SeedSequence:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    # the purpose enters as spawn-key words derived from its name: stable across runs and Python versions (unlike
    # hash()), and disjoint from the keys spawn() adds
    words = np.frombuffer(hashlib.sha256(purpose.encode()).digest()[:8], dtype=np.uint32)
    return np.random.SeedSequence(int(seed), spawn_key=tuple(int(w) for w in words))


def stream_seeds(seed: int, n: int, purpose: str = "") -> list[int]:
    """``n`` independent 32-bit seeds for the page seed ``seed`` and the stream ``purpose`` (spawned from
    ``SeedSequence(seed)``): the i-th is stream i, and ``stream_seeds(seed, m)[:n] == stream_seeds(seed, n)``."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return [int(child.generate_state(1, dtype=np.uint32)[0]) for child in _sequence(seed, purpose).spawn(n)]


def stream_seed(seed: int, purpose: str = "") -> int:
    """One 32-bit seed for the page seed ``seed`` and the stream ``purpose``: ``stream_seeds(seed, 1, purpose)[0]``."""
    return stream_seeds(seed, 1, purpose)[0]


def numpy_rng(seed: int, purpose: str = "") -> np.random.Generator:
    """A numpy Generator on the stream ``purpose`` of the page seed ``seed``."""
    return np.random.default_rng(stream_seed(seed, purpose))


def torch_generator(seed: int, purpose: str = ""):
    """A torch CPU Generator on the stream ``purpose`` of the page seed ``seed``."""
    import torch

    return torch.Generator().manual_seed(stream_seed(seed, purpose))
