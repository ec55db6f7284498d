"""Generic drawers shared by every estimator family."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from decrimkit.plotting.style import PALETTE, figure, style


def coef_plot(
    data: pd.DataFrame,
    *,
    x: str,
    ax: Any = None,
    title: str | None = None,
    ref: float | None = 0.0,
    ylabel: str = "estimate",
) -> Any:
    """Point estimates with pointwise intervals (and simultaneous bands when the frame has them)."""
    with style():
        fig, ax = figure(ax)
        xs = data[x].to_numpy()
        numeric = np.issubdtype(np.asarray(xs).dtype, np.number)
        pos = xs if numeric else np.arange(len(xs))
        whole = numeric and len(xs) > 0 and bool(np.all(np.asarray(xs, dtype="float64") % 1 == 0))
        if {"band_low", "band_high"} <= set(data.columns):
            # a band is a filled region only along a continuous or step-1 axis (event time, calendar year); over
            # separate categories (cohorts 2004, 2006, 2007; labels) it is a shaded bar at each point
            steps = np.diff(np.sort(np.asarray(pos, dtype="float64")))
            if numeric and (not whole or bool(np.all(steps == 1))):
                ax.fill_between(pos, data["band_low"], data["band_high"], color=PALETTE[0], alpha=0.15,
                                label="simultaneous band", step=None)
            else:
                width = 0.4 * (float(steps.min()) if len(steps) and steps.min() > 0 else 1.0)
                ax.bar(pos, data["band_high"] - data["band_low"], bottom=data["band_low"], width=width,
                       color=PALETTE[0], alpha=0.15, label="simultaneous band")
        err = np.vstack([data["estimate"] - data["conf_low"], data["conf_high"] - data["estimate"]])
        ax.errorbar(pos, data["estimate"], yerr=err, fmt="o", color=PALETTE[0], capsize=3, label="estimate, 95% CI")
        if ref is not None:
            ax.axhline(ref, color="0.4", lw=0.8, ls="--")
        if not numeric:
            ax.set_xticks(pos, [str(v) for v in xs], rotation=30 if len(xs) > 6 else 0)
        elif whole:
            # cohorts, years, event times: whole-number ticks (2019, 2021), never 2019.25; each value when few
            if len(xs) <= 12:
                ax.set_xticks(xs, [str(int(v)) for v in xs])
            else:
                from matplotlib.ticker import MaxNLocator

                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(x)
        ax.set_ylabel(ylabel)
        if title:
            ax.set_title(title)
        ax.legend(loc="best")
    return fig


def bootstrap_plot(t_boot: Any, t_stat: float, *, ax: Any = None, title: str | None = None) -> Any:
    """Histogram of bootstrap statistics under the null with the observed statistic (+-) marked."""
    with style():
        fig, ax = figure(ax)
        ax.hist(np.asarray(t_boot, dtype="float64"), bins=50, color=PALETTE[0], alpha=0.7)
        for v in (t_stat, -t_stat):
            ax.axvline(v, color=PALETTE[1], lw=1)
        ax.set_xlabel("bootstrap t statistic under the null")
        ax.set_ylabel("draws")
        if title:
            ax.set_title(title)
    return fig
