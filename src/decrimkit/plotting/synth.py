"""Drawers of the synthetic-control family: trajectories, gaps, donor weights, placebo paths, comparisons.

Each takes the frame a result's ``plot_data(kind)`` returns and gives back a Figure (never shown or saved).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from decrimkit.plotting.style import PALETTE, figure, style

__all__ = ["trajectory_plot", "gap_plot", "weights_plot", "placebo_plot", "compare_plot"]


def _start_line(ax: Any, start: Any) -> None:
    if start is not None:
        ax.axvline(start, color="0.5", lw=0.8, ls=":")


def trajectory_plot(data: pd.DataFrame, *, start: Any = None, ax: Any = None, title: str | None = None) -> Any:
    """Treated and synthetic outcome by period (columns ``time``, ``treated``, ``synthetic``)."""
    with style():
        fig, ax = figure(ax)
        ax.plot(data["time"], data["treated"], color=PALETTE[0], label="treated")
        ax.plot(data["time"], data["synthetic"], color=PALETTE[1], ls="--", label="synthetic")
        _start_line(ax, start)
        ax.set_xlabel("period")
        ax.set_ylabel("outcome")
        ax.legend(loc="best")
        if title:
            ax.set_title(title)
    return fig


def gap_plot(data: pd.DataFrame, *, start: Any = None, ax: Any = None, title: str | None = None) -> Any:
    """Treated minus synthetic by period (columns ``time``, ``gap``; optional ``conf_low``/``conf_high``)."""
    with style():
        fig, ax = figure(ax)
        if {"conf_low", "conf_high"} <= set(data.columns):
            ax.fill_between(
                data["time"], data["conf_low"], data["conf_high"], color=PALETTE[0], alpha=0.2, label="interval"
            )
        ax.plot(data["time"], data["gap"], color=PALETTE[0], label="gap")
        ax.axhline(0.0, color="0.4", lw=0.8, ls="--")
        _start_line(ax, start)
        ax.set_xlabel("period")
        ax.set_ylabel("treated - synthetic")
        if title:
            ax.set_title(title)
    return fig


def weights_plot(data: pd.DataFrame, *, ax: Any = None, title: str | None = None, top: int = 20) -> Any:
    """Horizontal bars of the largest donor weights (columns ``unit``, ``weight``)."""
    shown = data.sort_values("weight", ascending=False).head(top).iloc[::-1]
    with style():
        fig, ax = figure(ax)
        ax.barh([str(u) for u in shown["unit"]], shown["weight"], color=PALETTE[0])
        ax.set_xlabel("weight")
        if title:
            ax.set_title(title)
    return fig


def placebo_plot(data: pd.DataFrame, *, start: Any = None, ax: Any = None, title: str | None = None) -> Any:
    """Placebo gap paths in grey, the actual one highlighted (columns ``time``, ``run``, ``gap``,
    ``included``, ``actual``)."""
    with style():
        fig, ax = figure(ax)
        for _run, part in data.loc[data["included"] & ~data["actual"]].groupby("run", sort=False):
            ax.plot(part["time"], part["gap"], color="0.75", lw=0.8)
        actual = data.loc[data["actual"]]
        ax.plot(actual["time"], actual["gap"], color=PALETTE[1], lw=1.8, label="actual")
        ax.axhline(0.0, color="0.4", lw=0.8, ls="--")
        _start_line(ax, start)
        ax.set_xlabel("period")
        ax.set_ylabel("gap")
        ax.legend(loc="best")
        if title:
            ax.set_title(title)
    return fig


def compare_plot(data: pd.DataFrame, *, start: Any = None, ax: Any = None, title: str | None = None) -> Any:
    """Gap paths of several estimators (columns ``time``, ``method``, ``gap``)."""
    with style():
        fig, ax = figure(ax)
        for i, (method, part) in enumerate(data.groupby("method", sort=False)):
            ax.plot(part["time"], part["gap"], color=PALETTE[i % len(PALETTE)], label=str(method))
        ax.axhline(0.0, color="0.4", lw=0.8, ls="--")
        _start_line(ax, start)
        ax.set_xlabel("period")
        ax.set_ylabel("treated - synthetic")
        ax.legend(loc="best")
        if title:
            ax.set_title(title)
    return fig


def pvalue_curve_plot(
    data: pd.DataFrame, *, alpha: float, low: float, high: float, ax: Any = None, title: str | None = None
) -> Any:
    """p-value (``p_value``) of each null tried (``null``), the level ``alpha`` and the interval's ends."""
    import numpy as np

    with style():
        fig, ax = figure(ax)
        d = data.sort_values("null")
        ax.plot(d["null"], d["p_value"], "o-", color=PALETTE[0], ms=3, lw=1)
        ax.axhline(alpha, color="0.4", lw=0.8, ls="--")
        for end in (low, high):
            if np.isfinite(end):
                ax.axvline(end, color=PALETTE[1], lw=0.8)
        ax.set_xlabel("constant effect (null)")
        ax.set_ylabel("p-value")
        if title:
            ax.set_title(title)
    return fig
