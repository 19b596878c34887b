"""One figure style for the whole book (seaborn, colourblind-safe) and the plots every page uses."""

from __future__ import annotations

import math
from collections.abc import Mapping

import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
import seaborn as sns

__all__ = ["LOG_FLOOR", "MAX_WIDTH", "PALETTE", "log_floor", "log_ticks", "loglog_rate", "loss_curves", "panels",
           "set_theme", "shared_legend", "table_html"]

#: The book's colours: seaborn's colourblind-safe palette.
PALETTE = sns.color_palette("colorblind")

#: Where exact zeros are drawn on a log axis (the captions say so).
LOG_FLOOR = 1e-18


def log_floor(values, floor: float = LOG_FLOOR) -> np.ndarray:
    """``values`` as a float array with everything below ``floor`` (exact zeros included) drawn at ``floor``."""
    return np.clip(np.asarray(values, float), floor, None)


#: The widest a figure is drawn, in inches at the book's 100 dpi: the page's content column is 660 px wide at a
#: 1280 px window (measured in Chromium), a figure must not be shown below 70% of its drawn size (its labels would be
#: too small to read), so at most ~940 px, less the margin a tight bounding box adds around legends and labels.
MAX_WIDTH = 8.8


def panels(n: int, *, ncols: int = 2, panel: tuple[float, float] = (4.6, 3.4), sharex: bool = False,
           sharey: bool = False):
    """A figure of ``n`` panels for the page width: at most ``ncols`` (1 or 2) per row, wrapped into rows, each
    ``panel`` inches (the whole never wider than :data:`MAX_WIDTH`). Returns ``(fig, axes)``, ``axes`` a flat list of
    the ``n`` panels (the unused cell of an odd last row is removed)."""
    if n < 1 or ncols not in (1, 2):
        raise ValueError(f"n = {n}, ncols = {ncols}: allowed is n >= 1 and ncols 1 or 2")
    cols = min(ncols, n)
    rows = -(-n // cols)
    width = min(MAX_WIDTH, panel[0] * cols)
    fig, grid = plt.subplots(rows, cols, figsize=(width, panel[1] * rows), squeeze=False, sharex=sharex,
                             sharey=sharey)
    axes = list(grid.ravel())
    for ax in axes[n:]:
        ax.remove()
    return fig, axes[:n]


def shared_legend(fig, axes, *, title: str | None = None, ncol: int | None = None) -> None:
    """One legend for the whole figure, below the panels, from the labelled artists of every panel (each label once);
    the panels' own legends are removed, and the panels refitted just above the legend's measured height (a fixed
    share of the figure is too little under a short figure with a legend of several rows)."""
    handles, labels = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels and not lab.startswith("_"):
                handles.append(h)
                labels.append(lab)
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    if not handles:
        return
    # fewer columns until the legend fits the figure's width: a wider legend widens the saved image past the page
    for cols in range(ncol or min(len(labels), 4), 0, -1):
        legend = fig.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, 0.0), title=title,
                            frameon=False, ncol=cols)
        fig.draw_without_rendering()
        if cols == 1 or legend.get_window_extent().width <= 0.98 * fig.bbox.width:
            break
        legend.remove()
    height = fig.legends[-1].get_window_extent().height / fig.bbox.height
    fig.tight_layout(rect=(0, min(0.5, height + 0.01), 1, 1))


def log_ticks(axis) -> None:
    """Log-axis ticks that do not overlap: at most six decades labelled, and minor ticks labelled at 2 and 5 where
    the axis spans under two decades, at 2, 3, 5 and 7 under one, all under a third of one (a linear axis is left
    as it is)."""
    if axis.get_scale() != "log":
        return
    axis.set_major_locator(mticker.LogLocator(numticks=6))

    def minor(value, _):
        lo, hi = sorted(axis.get_view_interval())
        if value <= 0 or lo <= 0 or math.log10(hi / lo) >= 2:
            return ""
        span = math.log10(hi / lo)
        labelled = (2, 5) if span >= 1 else (2, 3, 5, 7) if span >= 0.35 else range(2, 10)
        exponent = math.floor(math.log10(value) + 1e-9)
        mantissa = value / 10.0 ** exponent
        if round(mantissa) not in labelled or abs(mantissa - round(mantissa)) > 1e-6:
            return ""
        return rf"$\mathdefault{{{round(mantissa)}\times10^{{{exponent}}}}}$"

    axis.set_minor_formatter(mticker.FuncFormatter(minor))


def _cell_text(value) -> str:
    from .verdicts import format_value

    if isinstance(value, (np.bool_, np.integer, np.floating)):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return "—"
    if isinstance(value, np.ndarray):
        value = value.tolist()
    return format_value(value)


def table_html(frame: pd.DataFrame) -> str:
    """A table as a reader reads it (what a page shows for a DataFrame once :func:`set_theme` ran): numbers to 3
    significant figures, yes / no for booleans, a dash for a missing value (NaN, None), lists joined, column names in
    words (``median_gap`` as "median gap"), no bare row numbers; never a Python repr."""
    shown = frame.rename(columns=lambda c: c.replace("_", " ") if isinstance(c, str) else c)
    styler = shown.style.format(_cell_text).format_index(_cell_text, axis=0)
    if isinstance(frame.index, pd.RangeIndex):  # row numbers 0, 1, 2, ... say nothing to a reader
        styler = styler.hide(axis="index")
    return styler.to_html()


def set_theme() -> None:
    """Apply the book's theme: seaborn whitegrid, colourblind palette, readable sizes; and in a notebook, show every
    DataFrame through :func:`table_html`."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with the notebook stack
        get_ipython = lambda: None  # noqa: E731
    shell = get_ipython()
    if shell is not None:
        shell.display_formatter.formatters["text/html"].for_type(pd.DataFrame, table_html)
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind",
                  rc={"figure.figsize": (7.5, 4.2), "figure.dpi": 100, "axes.titleweight": "bold"})


def loss_curves(frame: pd.DataFrame, x: str = "step", y: str = "loss", *, hue: str | None = None,
                units: str | None = "seed", ax=None, logy: bool = True, title: str = "",
                xlabel: str | None = None, ylabel: str | None = None):
    """Curves of ``y`` against ``x`` per ``hue``, with a band over ``units`` (seeds): median and 10-90%."""
    ax = ax or plt.subplots()[1]
    groups = frame.groupby(hue, sort=False) if hue else [(None, frame)]
    for i, (key, sub) in enumerate(groups):
        stats = sub.groupby(x)[y].quantile([0.1, 0.5, 0.9]).unstack()
        color = PALETTE[i % len(PALETTE)]
        ax.plot(stats.index, stats[0.5], color=color, label=None if key is None else f"{hue} = {key}")
        if units and sub[units].nunique() > 1:
            ax.fill_between(stats.index, stats[0.1], stats[0.9], color=color, alpha=0.25, linewidth=0)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(ylabel or y)
    if title:
        ax.set_title(title)
    if hue:
        ax.legend(frameon=False, fontsize="small")
    return ax


def loglog_rate(x, ys: Mapping[str, np.ndarray], ax=None, *, reference_slope: float | None = 1.0,
                title: str = "", xlabel: str = "", ylabel: str = "", marker: str = "o"):
    """Log-log plot of several series against ``x``, with a dashed reference line of the given slope."""
    ax = ax or plt.subplots()[1]
    x = np.asarray(x, float)
    for i, (label, y) in enumerate(ys.items()):
        ax.plot(x, y, marker=marker, color=PALETTE[i % len(PALETTE)], label=label)
    if reference_slope is not None and ys:
        first = np.asarray(next(iter(ys.values())), float)
        ok = np.isfinite(first) & (first > 0)
        if ok.any():
            x0, y0 = x[ok][0], first[ok][0]
            ax.plot(x, y0 * (x / x0) ** reference_slope, "k--", lw=1, label=f"slope {reference_slope:g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(frameon=False, fontsize="small")
    return ax
