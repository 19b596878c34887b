import pytest
import torch

import nslib


def test_device_resolution():
    assert nslib.resolve_device("cpu") == torch.device("cpu")
    assert nslib.resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ValueError, match="allowed"):
        nslib.resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            nslib.resolve_device("cuda")


def test_dtype_resolution():
    assert nslib.resolve_dtype("bfloat16") is torch.bfloat16
    with pytest.raises(ValueError, match="float64"):
        nslib.resolve_dtype("float8")


def test_threads_from_environment(monkeypatch):
    monkeypatch.setenv("NSLIB_THREADS", "1")
    assert nslib.set_threads() == 1 and torch.get_num_threads() == 1
    monkeypatch.setenv("NSLIB_THREADS", "zero")
    with pytest.raises(ValueError, match="NSLIB_THREADS"):
        nslib.set_threads()


def test_seeding_reproduces_draws():
    nslib.seed_everything(7)
    a = torch.randn(5)
    nslib.seed_everything(7)
    assert torch.equal(a, torch.randn(5))
