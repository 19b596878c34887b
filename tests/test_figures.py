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


def test_panels_wrap_at_two_per_row_and_fit_the_page():
    fig, axes = nslib.figures.panels(5)
    assert len(axes) == 5 and len(fig.axes) == 5  # the sixth cell of the 3 x 2 grid is gone
    w, h = fig.get_size_inches()
    assert w <= nslib.figures.MAX_WIDTH and abs(h - 3 * 3.4) < 1e-9
    assert {round(ax.get_position().x0, 2) for ax in axes} == {round(axes[0].get_position().x0, 2),
                                                               round(axes[1].get_position().x0, 2)}
    for i, ax in enumerate(axes):
        ax.plot([0, 1], [0, i], label=f"line {i % 2}")
    nslib.figures.shared_legend(fig, axes)
    assert len(fig.legends) == 1 and [t.get_text() for t in fig.legends[0].get_texts()] == ["line 0", "line 1"]
    assert all(ax.get_legend() is None for ax in axes)
    plt.close("all")


def test_shared_legend_takes_fewer_columns_rather_than_widen_the_figure():
    fig, axes = nslib.figures.panels(2, panel=(3.0, 2.5))
    for i, ax in enumerate(axes):
        for j in range(2):
            ax.plot([0, 1], [0, j], label=f"a long label for line {2 * i + j}, with its step size named")
    nslib.figures.shared_legend(fig, axes)
    legend = fig.legends[0]
    fig.draw_without_rendering()
    assert len(fig.legends) == 1 and legend.get_window_extent().width <= fig.bbox.width
    assert legend._ncols < 4  # four such labels side by side would not fit 6 inches
    plt.close("all")


def test_a_table_shows_readable_values_never_python():
    import re

    frame = pd.DataFrame({"ok": [True, False], "gap": [np.nan, 0.123456], "rs": [None, [1, 2]], "n": [1234, 5]},
                         index=["relu", "tanh"])
    cells = re.sub(r"<[^>]+>", "|", nslib.figures.table_html(frame).split("</style>")[-1])
    cells = [c.strip() for c in cells.split("|") if c.strip() and c.strip() != "&nbsp;"]
    assert cells == ["ok", "gap", "rs", "n", "relu", "yes", "—", "—", "1,234", "tanh", "no", "0.123", "1, 2", "5"]


def test_a_table_names_its_columns_in_words_and_drops_row_numbers():
    import re

    html = nslib.figures.table_html(pd.DataFrame({"median_gap": [0.5, 0.25]}))
    cells = [c.strip() for c in re.sub(r"<[^>]+>", "|", html.split("</style>")[-1]).split("|") if c.strip()]
    assert cells == ["median gap", "0.5", "0.25"]
