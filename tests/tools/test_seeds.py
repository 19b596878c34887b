"""Independent streams from one page seed: numpy's SeedSequence, spawned, is the reference."""

import numpy as np
import pytest
import torch

from nslib.tools import seeds


def test_streams_of_neighbouring_seeds_share_nothing():
    a, b = seeds.stream_seeds(0, 50, "init"), seeds.stream_seeds(1, 50, "init")
    assert len(set(a)) == 50 and not set(a) & set(b)  # range(seed, seed + n) would share 49 of 50


def test_purposes_are_separate_streams_and_prefixes_are_stable():
    assert not set(seeds.stream_seeds(0, 20, "data")) & set(seeds.stream_seeds(0, 20, "init"))
    assert seeds.stream_seeds(3, 10, "x")[:4] == seeds.stream_seeds(3, 4, "x")
    assert seeds.stream_seed(3, "x") == seeds.stream_seeds(3, 1, "x")[0]


def test_the_streams_are_numpys_spawned_children():
    # independent reference: the children of SeedSequence(seed, spawn_key=purpose words), each's first 32-bit word
    import hashlib

    words = tuple(int(w) for w in np.frombuffer(hashlib.sha256(b"init").digest()[:8], dtype=np.uint32))
    ref = [int(c.generate_state(1, dtype=np.uint32)[0])
           for c in np.random.SeedSequence(7, spawn_key=words).spawn(5)]
    assert seeds.stream_seeds(7, 5, "init") == ref


def test_generators_reproduce_and_differ():
    assert np.array_equal(seeds.numpy_rng(2, "d").random(3), seeds.numpy_rng(2, "d").random(3))
    assert not np.array_equal(seeds.numpy_rng(2, "d").random(3), seeds.numpy_rng(2, "e").random(3))
    g1, g2 = seeds.torch_generator(2, "b"), seeds.torch_generator(2, "b")
    assert torch.equal(torch.rand(3, generator=g1), torch.rand(3, generator=g2))


@pytest.mark.parametrize("bad", [-1, 1.5, True])
def test_a_bad_seed_is_refused(bad):
    with pytest.raises(ValueError, match="seed"):
        seeds.stream_seeds(bad, 2)
