"""Drawers for instrumental-variable designs. Each takes a plot_data() frame and returns a Figure."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from decrimkit.plotting.style import PALETTE, figure, style

__all__ = ["first_stage_plot", "relative_effect_plot", "balance_plot", "monotonicity_plot"]


def first_stage_plot(
    data: pd.DataFrame,
    *,
    ax: Any = None,
    decision: str = "decision",
    title: str | None = "First stage: leniency and the decision",
) -> Any:
    """Histogram of leniency (share of cases, left axis) and the decision rate by leniency bin (right axis).

    ``data`` columns: bin_low, bin_high, leniency, share, decision_rate, fitted.
    """
    with style():
        fig, ax = figure(ax)
        width = (data["bin_high"] - data["bin_low"]).to_numpy()
        ax.bar(
            data["bin_low"],
            data["share"],
            width=width,
            align="edge",
            color=PALETTE[5],
            alpha=0.5,
            edgecolor="white",
            label="share of cases",
        )
        ax.set_xlabel("assignee leniency (leave-one-out, residualised on strata)")
        ax.set_ylabel("share of cases")
        ax.grid(False)
        right = ax.twinx()
        ok = np.isfinite(data["decision_rate"].to_numpy())
        right.plot(
            data["leniency"][ok],
            data["decision_rate"][ok],
            "o",
            color=PALETTE[0],
            ms=4,
            label=f"{decision} rate (binned)",
        )
        right.plot(data["leniency"][ok], data["fitted"][ok], "-", color=PALETTE[1], lw=1.2, label="linear first stage")
        right.set_ylabel(f"{decision} rate")
        right.spines["right"].set_visible(True)
        handles = ax.get_legend_handles_labels()
        more = right.get_legend_handles_labels()
        right.legend(handles[0] + more[0], handles[1] + more[1], loc="upper left")
        if title:
            ax.set_title(title)
    return fig


def relative_effect_plot(
    data: pd.DataFrame, *, ax: Any = None, title: str | None = "Effect relative to the complier mean under prosecution"
) -> Any:
    """Relative effects with 95% intervals, one row per outcome.

    ``data`` columns: outcome, estimate, conf_low, conf_high; optional ``truth`` (simulation truth, drawn
    as an open diamond) and ``published`` (a published value, drawn as a red cross).
    """
    with style():
        fig, ax = figure(ax)
        pos = np.arange(len(data))
        err = np.vstack([data["estimate"] - data["conf_low"], data["conf_high"] - data["estimate"]])
        ax.errorbar(pos, data["estimate"], yerr=err, fmt="o", color=PALETTE[0], capsize=4, label="estimate, 95% CI")
        if "truth" in data:
            ax.plot(pos + 0.12, data["truth"], "D", mfc="none", color=PALETTE[2], label="simulation truth")
        if "published" in data:
            ax.plot(pos - 0.12, data["published"], "X", color=PALETTE[1], ms=8, label="published value")
        ax.axhline(0.0, color="0.4", lw=0.8, ls="--")
        ax.set_xticks(pos, [str(v) for v in data["outcome"]])
        ax.set_xlim(-0.6, len(data) - 0.4)
        ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
        ax.set_ylabel("relative effect")
        ax.legend(loc="best")
        if title:
            ax.set_title(title)
    return fig


def balance_plot(
    data: pd.DataFrame, *, ax: Any = None, title: str | None = "Balance: covariates regressed on leniency"
) -> Any:
    """Coefficient of each covariate (and the predicted-outcome index) on leniency, with 95% intervals."""
    with style():
        fig, ax = figure(ax)
        pos = np.arange(len(data))
        half = 1.959963984540054 * data["se"].to_numpy()
        ax.errorbar(data["estimate"], pos, xerr=half, fmt="o", color=PALETTE[0], capsize=3)
        ax.axvline(0.0, color="0.4", lw=0.8, ls="--")
        ax.set_yticks(pos, [str(v) for v in data["term"]])
        ax.set_xlabel("coefficient on leniency (strata fixed effects)")
        if title:
            ax.set_title(title)
    return fig


def monotonicity_plot(
    data: pd.DataFrame, *, ax: Any = None, title: str | None = "Monotonicity: first stage by subgroup"
) -> Any:
    """Subgroup first stages with the full-sample and the reverse-sample instrument."""
    with style():
        fig, ax = figure(ax)
        pos = np.arange(len(data))
        labels = [f"{s}={lv}" for s, lv in zip(data["subgroup"], data["level"])]
        q = 1.959963984540054
        ax.errorbar(
            pos - 0.1,
            data["first_stage"],
            yerr=q * data["se"],
            fmt="o",
            color=PALETTE[0],
            capsize=3,
            label="leniency from all cases",
        )
        ax.errorbar(
            pos + 0.1,
            data["reverse_first_stage"],
            yerr=q * data["reverse_se"],
            fmt="s",
            color=PALETTE[1],
            capsize=3,
            label="leniency from other subgroups (reverse sample)",
        )
        ax.axhline(0.0, color="0.4", lw=0.8, ls="--")
        ax.set_xticks(pos, labels, rotation=30 if len(labels) > 4 else 0)
        ax.set_ylabel("first-stage coefficient")
        ax.legend(loc="best")
        if title:
            ax.set_title(title)
    return fig
