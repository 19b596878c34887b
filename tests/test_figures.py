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


def test_loglog_rate():
    ax = nslib.figures.loglog_rate([1, 10], {"a": [1.0, 10.0]})
    assert ax.get_xscale() == "log" and len(ax.lines) == 2
    plt.close("all")
