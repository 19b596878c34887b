import pytest
import torch

import nslib


def test_device_resolution():
    assert nslib.runner.resolve_device("cpu") == torch.device("cpu")
    assert nslib.runner.resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ValueError, match="allowed"):
        nslib.runner.resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            nslib.runner.resolve_device("cuda")


def test_dtype_resolution():
    assert nslib.runner.resolve_dtype("bfloat16") is torch.bfloat16
    with pytest.raises(ValueError, match="float64"):
        nslib.runner.resolve_dtype("float8")


def test_threads_from_environment(monkeypatch):
    monkeypatch.setenv("NSLIB_THREADS", "1")
    assert nslib.runner.set_threads() == 1 and torch.get_num_threads() == 1
    monkeypatch.setenv("NSLIB_THREADS", "zero")
    with pytest.raises(ValueError, match="NSLIB_THREADS"):
        nslib.runner.set_threads()


def test_seeding_reproduces_draws():
    nslib.runner.seed_everything(7)
    a = torch.randn(5)
    nslib.runner.seed_everything(7)
    assert torch.equal(a, torch.randn(5))
