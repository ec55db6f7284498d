"""Drawers for the difference-in-differences family. Each takes a ``plot_data()`` frame, returns a Figure.

- :func:`event_study_plot`: coefficients by event time with pointwise intervals and, when the frame has
  ``band_low``/``band_high``, the simultaneous band; a dashed line at zero and at adoption.
- :func:`bacon_plot`: Goodman-Bacon 2x2 estimates against their weights, by comparison type.
- :func:`sensitivity_plot`: HonestDiD robust intervals by M, with the original interval first.
- :func:`disparity_plot`: group-specific effects and the disparity (ratio) change.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from decrimkit.plotting.style import PALETTE, figure, style

__all__ = ["event_study_plot", "bacon_plot", "sensitivity_plot", "disparity_plot"]


def event_study_plot(
    data: pd.DataFrame, *, ax: Any = None, title: str | None = None, ylabel: str = "effect", x: str = "event_time"
) -> Any:
    """Event-study coefficients (``x``, estimate, conf_low, conf_high[, band_low, band_high])."""
    with style():
        fig, ax = figure(ax)
        xs = data[x].to_numpy(dtype="float64")
        if {"band_low", "band_high"} <= set(data.columns):
            ax.fill_between(
                xs, data["band_low"], data["band_high"], color=PALETTE[0], alpha=0.15, label="simultaneous band"
            )
        err = np.vstack([data["estimate"] - data["conf_low"], data["conf_high"] - data["estimate"]])
        ax.errorbar(
            xs, data["estimate"], yerr=err, fmt="o-", color=PALETTE[0], capsize=3, lw=1, label="estimate, pointwise CI"
        )
        ax.axhline(0.0, color="0.4", lw=0.8, ls="--")
        ax.axvline(-0.5, color="0.6", lw=0.8, ls=":")
        ax.set_xlabel("periods since adoption")
        ax.set_ylabel(ylabel)
        if title:
            ax.set_title(title)
        ax.legend(loc="best")
    return fig


def bacon_plot(
    data: pd.DataFrame,
    *,
    ax: Any = None,
    title: str | None = "Goodman-Bacon decomposition",
    overall: float | None = None,
) -> Any:
    """Scatter of 2x2 estimates (y) against weights (x), coloured by ``type``."""
    with style():
        fig, ax = figure(ax)
        markers = ("o", "s", "^", "D")
        for i, (kind, part) in enumerate(data.groupby("type", sort=True)):
            ax.scatter(
                part["weight"],
                part["estimate"],
                color=PALETTE[i % len(PALETTE)],
                marker=markers[i % len(markers)],
                label=str(kind),
                s=28,
                alpha=0.85,
            )
        if overall is not None:
            ax.axhline(overall, color="0.2", lw=0.9, ls="-", label=f"TWFE = {overall:.4g}")
        ax.axhline(0.0, color="0.4", lw=0.8, ls="--")
        ax.set_xlabel("weight")
        ax.set_ylabel("2x2 DiD estimate")
        if title:
            ax.set_title(title)
        ax.legend(loc="best")
    return fig


def sensitivity_plot(data: pd.DataFrame, *, ax: Any = None, title: str | None = None, xlabel: str = "M") -> Any:
    """Robust intervals (``m``, ``lb``, ``ub``, ``method``) by sensitivity parameter M."""
    with style():
        fig, ax = figure(ax)
        labels = [("original" if str(r.method) == "original" else f"{r.m:g}") for r in data.itertuples()]
        pos = np.arange(len(data))
        colors = [PALETTE[1] if lab == "original" else PALETTE[0] for lab in labels]
        for p, r, c in zip(pos, data.itertuples(), colors):
            ax.plot([p, p], [r.lb, r.ub], color=c, lw=2.2)
            ax.plot([p, p], [r.lb, r.ub], "_", color=c, ms=10)
        ax.axhline(0.0, color="0.4", lw=0.8, ls="--")
        ax.set_xticks(pos, labels)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("robust confidence set")
        if title:
            ax.set_title(title)
    return fig


def disparity_plot(
    data: pd.DataFrame, *, ax: Any = None, title: str | None = None, ylabel: str = "change (log points)"
) -> Any:
    """Estimates with intervals per ``term`` (each group's DiD and the disparity contrast)."""
    with style():
        fig, ax = figure(ax)
        pos = np.arange(len(data))
        err = np.vstack([data["estimate"] - data["conf_low"], data["conf_high"] - data["estimate"]])
        colors = [PALETTE[1] if str(t).startswith("disparity") else PALETTE[0] for t in data["term"]]
        for p, (_, r), e0, e1, c in zip(pos, data.iterrows(), err[0], err[1], colors):
            ax.errorbar([p], [r["estimate"]], yerr=[[e0], [e1]], fmt="o", color=c, capsize=3)
        ax.axhline(0.0, color="0.4", lw=0.8, ls="--")
        ax.set_xticks(pos, [str(t) for t in data["term"]], rotation=20 if len(pos) > 3 else 0)
        ax.set_ylabel(ylabel)
        if title:
            ax.set_title(title)
    return fig
