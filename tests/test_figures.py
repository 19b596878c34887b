import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import nslib
import nslib.figures


def test_loss_curves_draw_a_median_and_band():
    nslib.set_theme()
    frame = pd.DataFrame({"step": np.tile(np.arange(5), 3), "loss": np.arange(15) + 1.0,
                          "seed": np.repeat([0, 1, 2], 5), "act": "relu"})
    ax = nslib.figures.loss_curves(frame, hue="act")
    assert len(ax.lines) == 1 and len(ax.collections) == 1
    np.testing.assert_allclose(ax.lines[0].get_ydata(), np.arange(5) + 6.0)
    plt.close("all")


def test_loglog_rate_and_verdict_table():
    ax = nslib.figures.loglog_rate([1, 10], {"a": [1.0, 10.0]})
    assert ax.get_xscale() == "log" and len(ax.lines) == 2
    plt.close("all")
    t = nslib.verdicts.verdict_table({"x-y": nslib.verdict(False, "crit", v=1.5),
                                      "z": nslib.inconclusive("crit", "grid misses 2d", v=2.0)})
    assert t.loc["x-y", "verdict"] == "does not hold" and "v = 1.5" in t.loc["x-y", "measured"]
    assert t.loc["z", "verdict"] == "inconclusive: grid misses 2d"


def test_per_group_and_measured_tables_reshape_a_verdict():
    from nslib.runner import combine_verdicts, verdict
    from nslib.verdicts import Verdict, measured_table, per_group_table

    groups = {"a": Verdict.decided(True, "", x=1), "b": Verdict.decided(False, "", x=2)}
    v = combine_verdicts(groups, "c", slope=-1.0, grid=[1, 2])
    table = per_group_table(v)
    assert list(table.index) == ["a", "b"] and list(table["x"]) == [1, 2]
    assert list(table["status"]) == ["holds", "does not hold"]
    assert "grid" not in measured_table(v).index and measured_table(v).loc["slope", "measured"] == -1.0
    assert per_group_table(verdict(True, "c")).empty
