import json
import math

import numpy as np
import pytest
import torch

import nslib
from nslib.runner import to_json_safe
from nslib.verdicts import Verdict


def test_nonfinite_become_null_with_reason():
    out = to_json_safe({"a": float("nan"), "b": np.float32("inf"), "c": [1.0, float("-inf")], "d": np.int64(3)})
    assert out == {"a": None, "a_nonfinite": "nan", "b": None, "b_nonfinite": "inf", "c": [1.0, None], "d": 3}
    json.dumps(out, allow_nan=False)


def test_verdict_casts_numpy_bool_and_tensors():
    v = Verdict.decided(np.bool_(True), "crit", x=torch.tensor([1.0, 2.0]), y=np.array([np.nan]))
    assert v["holds"] is True and v["measured"] == {"x": [1.0, 2.0], "y": [None]}


def test_unsupported_type_is_a_clear_error():
    with pytest.raises(TypeError, match="cannot write"):
        to_json_safe({"x": object()})


def test_run_requires_every_claim_and_writes_atomically(tmp_path, monkeypatch):
    monkeypatch.setenv("NSLIB_RUN_DIR", str(tmp_path))
    info = nslib.runner.load_notebook("nonsmooth-convex-dynamics")
    run = nslib.Run("nonsmooth-convex-dynamics", info.resolve("quick"), "quick")
    with pytest.raises(KeyError):
        run.record_verdict("not-a-claim", Verdict.decided(True, "c"))
    with pytest.raises(RuntimeError, match="no verdict"):
        run.save()
    for cid in info.claims:
        run.record_verdict(cid, Verdict.decided(False, "c", value=math.inf))
    path = run.save()
    data = json.loads(path.read_text())
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]
    assert data["verdicts"][next(iter(info.claims))]["measured"] == {"value": None, "value_nonfinite": "inf"}
    assert path.stat().st_mode & 0o044 == 0o044  # readable by group and others, like the notebook beside it


def test_start_rejects_bad_values_from_the_notebook_namespace():
    info = nslib.runner.load_notebook("nonsmooth-convex-dynamics")
    ns = dict(info.resolve("quick"))
    ns["steps"] = -5
    with pytest.raises(nslib.ParamError, match="'steps'"):
        nslib.start("nonsmooth-convex-dynamics", ns)


def test_provenance_names_the_run_folder_hash_and_the_environment(monkeypatch):
    from nslib.glue import provenance_text
    from nslib.runner import run_hash

    info = nslib.runner.load_notebook("nonsmooth-convex-dynamics")
    params = info.resolve("quick")
    run = nslib.Run("nonsmooth-convex-dynamics", params, "quick")
    text = provenance_text(run)
    env = run.env()
    for part in ("profile quick", f"parameters hash {run_hash('quick', params)}", f"nslib {env['nslib']}",
                 f"torch {env['torch']}", f"device {env['device']}", f"{env['threads']} thread(s)", "UTC"):
        assert part in text, part
    assert (env["git_commit"] or "none")[:12] in text
