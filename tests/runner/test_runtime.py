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


def test_a_dtype_the_device_cannot_compute_is_a_clear_error():
    from nslib.runner import ParamError, check_dtypes

    def probe(dt, dev):
        if dt == torch.bfloat16:
            raise RuntimeError("not implemented for 'BFloat16'")
    check_dtypes(["float32"], "cpu", probe)
    with pytest.raises(ParamError, match=r"dtype 'bfloat16' cannot be computed on device 'cpu'"):
        check_dtypes(["float32", torch.bfloat16], "cpu", probe)
    with pytest.raises(ParamError, match="float8"):
        check_dtypes(["float8"], "cpu")
