"""``python -m nslib device-check`` at its tiny size on the CPU: the same code a GPU runs, and its output format."""

import json

import pytest

from nslib.cli import main


@pytest.mark.notebook
def test_device_check_tiny_on_the_cpu_writes_one_well_formed_json(tmp_path, capsys):
    assert main(["device-check", "--out", str(tmp_path), "--size", "tiny", "--device", "cpu"]) == 0
    path = tmp_path / "device-check.json"
    assert capsys.readouterr().out.strip().endswith(str(path))
    report = json.loads(path.read_text())
    assert report["size"] == "tiny" and report["environment"]["device"] == "cpu"
    assert {"torch", "nslib", "git_commit", "device_name", "date"} <= set(report["environment"])
    for part in ("notebooks", "volume", "maxpool", "benchmarks"):
        assert report[part]["ok"] is True, report[part]
        assert report[part]["seconds"] >= 0
    assert report["notebooks"]["quick_profiles"]["abs-smooth-clarke"]["passed"] is True
    assert [r["dtype"] for r in report["volume"]["rows"]] == ["float32", "float16", "bfloat16"]
    assert all(0 <= r["volume"] <= 1 and r["ci_low"] <= r["volume"] <= r["ci_high"] for r in report["volume"]["rows"])
    assert {r["beta"] for r in report["maxpool"]["rows"]} == {0.0, 10000.0}
    assert report["benchmarks"]["bench_curvature"][0]["agree"] is True
    assert report["benchmarks"]["bench_seeds"][0]["largest_relative_difference"] < 1e-5
    assert not list(tmp_path.glob(".*tmp*"))  # nothing half-written left behind


def test_device_check_refuses_cuda_without_cuda_and_an_unknown_size(tmp_path, capsys):
    import torch

    if not torch.cuda.is_available():
        assert main(["device-check", "--out", str(tmp_path), "--device", "cuda"]) == 2
        assert "cuda" in capsys.readouterr().err
    assert main(["device-check", "--out", str(tmp_path), "--size", "huge"]) == 2
    err = capsys.readouterr().err
    assert "--size" in err and "'huge'" in err and "'tiny', 'full'" in err
    assert not (tmp_path / "device-check.json").exists()


def test_pages_read_the_committed_gpu_evidence_and_say_when_there_is_none(tmp_path):
    from nslib.evidence import evidence_text

    assert evidence_text("maxpool-jacobians", root=tmp_path).startswith("none yet")
    report = {"size": "full", "environment": {"device": "cuda", "device_name": "NVIDIA H200", "date": "2026-12-01",
                                              "git_commit": "0123456789abcdef"},
              "notebooks": {"quick_profiles": {"maxpool-jacobians": {"passed": True}}},
              "maxpool": {"ok": True, "rows": [{"beta": 0.0, "accuracy": 0.99}, {"beta": 0.0, "accuracy": 0.97},
                                               {"beta": 10000.0, "accuracy": 0.1}]}}
    (tmp_path / "evidence" / "h200").mkdir(parents=True)
    (tmp_path / "evidence" / "h200" / "device-check.json").write_text(json.dumps(report))
    tiny = {**report, "size": "tiny", "environment": {**report["environment"], "device": "cpu"}}  # a smoke run
    (tmp_path / "evidence" / "cpu-tiny").mkdir()
    (tmp_path / "evidence" / "cpu-tiny" / "device-check.json").write_text(json.dumps(tiny))
    text = evidence_text("maxpool-jacobians", root=tmp_path)
    assert text == ("measured on NVIDIA H200, 2026-12-01, nslib 0123456789ab: the quick profile passed on cuda; "
                    "LeNet-5 at float16 on MNIST, mean test accuracy: beta 0 0.980, beta 10000 0.100")
    cpu = {**report, "environment": {**report["environment"], "device": "cpu", "device_name": "AMD EPYC",
                                     "hardware": {"cpu_capability": "DEFAULT"}}}
    (tmp_path / "evidence" / "cpu-default").mkdir()
    (tmp_path / "evidence" / "cpu-default" / "device-check.json").write_text(json.dumps(cpu))
    text = evidence_text("maxpool-jacobians", root=tmp_path)  # the CPU's row beside the GPU's, with its kernels
    assert text.startswith("measured on NVIDIA H200, 2026-12-01")
    assert text.endswith(". Measured on CPU AMD EPYC with torch's DEFAULT kernels, 2026-12-01, nslib 0123456789ab: "
                         "the quick profile passed on cpu; LeNet-5 at float16 on MNIST, mean test accuracy: beta 0 "
                         "0.980, beta 10000 0.100")


def test_cpu_evidence_is_written_per_kernel_set_into_its_own_folder(tmp_path, capsys, monkeypatch):
    from nslib import devicecheck

    calls = []
    monkeypatch.setattr(devicecheck, "per_kernel_checks", lambda out, size, kernels: calls.append(
        (str(out), size, kernels)) or [])
    assert main(["device-check", "--out", str(tmp_path), "--size", "tiny", "--device", "cpu", "--kernels",
                 "default"]) == 0
    assert calls == [(str(tmp_path.resolve()), "tiny", ["default"])]
    assert main(["device-check", "--out", str(tmp_path / "x"), "--kernels", "sse9"]) == 2
    assert "--kernels 'sse9'" in capsys.readouterr().err and not (tmp_path / "x").exists()
