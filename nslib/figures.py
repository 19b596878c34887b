"""One figure style for the whole book (seaborn, colourblind-safe) and the plots every page uses."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

__all__ = ["LOG_FLOOR", "PALETTE", "log_floor", "loglog_rate", "loss_curves", "set_theme"]

#: The book's colours: seaborn's colourblind-safe palette.
PALETTE = sns.color_palette("colorblind")

#: Where exact zeros are drawn on a log axis (the captions say so).
LOG_FLOOR = 1e-18


def log_floor(values, floor: float = LOG_FLOOR) -> np.ndarray:
    """``values`` as a float array with everything below ``floor`` (exact zeros included) drawn at ``floor``."""
    return np.clip(np.asarray(values, float), floor, None)


def set_theme() -> None:
    """Apply the book's theme: seaborn whitegrid, colourblind palette, readable sizes."""
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
