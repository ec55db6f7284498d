"""Drawers for the Bayesian family: forest plot by policy model, posterior predictive check, ITS figure.

Each takes plain frames or arrays (a result's ``plot_data()``), returns a ``Figure`` and never shows or saves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from decrimkit.plotting.style import PALETTE, figure, style

__all__ = ["forest_plot", "ppc_plot", "its_plot"]

_LEVEL_ORDER = ("overall", "model", "jurisdiction")


def forest_plot(data: pd.DataFrame, *, ax: Any = None, scale: str = "effect",
                groups: Mapping[str, str] | None = None, title: str | None = None, ref: float | None = 0.0) -> Any:
    """Posterior means with 95% HDIs, one row per effect: overall first, then each policy model followed by
    its jurisdictions (indented), so partial pooling toward the model mean is visible.

    ``data``: columns ``level``, ``term``, ``estimate``, ``conf_low``, ``conf_high`` (a result's ``tidy()``);
    ``groups``: jurisdiction -> policy model, to nest jurisdictions under their model.
    """
    rows: list[tuple[str, pd.Series, int]] = []  # (label, row, style index)
    levels = [lv for lv in _LEVEL_ORDER if lv in set(data["level"])] + [
        lv for lv in dict.fromkeys(data["level"]) if lv not in _LEVEL_ORDER]
    by_level = {lv: data.loc[data["level"] == lv] for lv in levels}
    nested = groups is not None and "model" in by_level and "jurisdiction" in by_level
    for lv in levels:
        if nested and lv == "jurisdiction":
            continue
        for _, r in by_level[lv].iterrows():
            rows.append((str(r["term"]), r, 0 if lv == "overall" else 1))
            if nested and lv == "model":
                jur = by_level["jurisdiction"]
                members = [j for j, m in groups.items() if str(m) == str(r["term"])]
                for _, rj in jur.loc[jur["term"].isin([str(m) for m in members])].iterrows():
                    rows.append(("    " + str(rj["term"]), rj, 2))
    with style():
        fig, ax = figure(ax, figsize=(6.5, max(2.5, 0.32 * len(rows) + 1.0)))
        ypos = np.arange(len(rows))[::-1]
        markers = ("D", "s", "o")
        for y, (_, r, k) in zip(ypos, rows):
            ax.plot([r["conf_low"], r["conf_high"]], [y, y], color=PALETTE[k], lw=2.0 if k < 2 else 1.2)
            ax.plot(r["estimate"], y, markers[k], color=PALETTE[k], ms=6 if k < 2 else 4)
        ax.set_yticks(ypos, [lab for lab, _, _ in rows])
        if ref is not None:
            ax.axvline(ref, color="0.4", lw=0.8, ls="--")
        ax.set_xlabel(f"{scale} (posterior mean, 95% HDI)")
        ax.grid(axis="y", visible=False)
        if title:
            ax.set_title(title)
    return fig


def ppc_plot(observed: np.ndarray, predicted: np.ndarray, *, ax: Any = None, title: str | None = None,
             n_lines: int = 40) -> Any:
    """Posterior predictive check: densities of replicated data sets against the observed data's density.

    ``observed``: (n,); ``predicted``: (draws, n). Replicates are drawn evenly across the sample.
    """
    obs = np.asarray(observed, dtype="float64")
    pred = np.asarray(predicted, dtype="float64")
    lo, hi = np.quantile(np.concatenate([obs, pred[:: max(1, len(pred) // 200)].ravel()]), [0.005, 0.995])
    bins = np.linspace(lo, hi if hi > lo else lo + 1, 40)
    with style():
        fig, ax = figure(ax)
        pick = np.linspace(0, len(pred) - 1, min(n_lines, len(pred))).astype(int)
        centres = 0.5 * (bins[1:] + bins[:-1])
        for i, k in enumerate(pick):
            h, _ = np.histogram(pred[k], bins=bins, density=True)
            ax.plot(centres, h, color=PALETTE[5], alpha=0.25, lw=0.8,
                    label="posterior predictive" if i == 0 else None)
        h, _ = np.histogram(obs, bins=bins, density=True)
        ax.plot(centres, h, color="black", lw=1.8, label="observed")
        ax.set_xlabel("outcome")
        ax.set_ylabel("density")
        ax.legend(loc="best")
        if title:
            ax.set_title(title)
    return fig


def _axis(times: pd.Series) -> Any:
    """Integer periods (years) stay numbers; anything else is read as months."""
    text = times.astype(str)
    if text.str.fullmatch(r"-?\d+").all():
        return text.astype(int).to_numpy()
    return pd.PeriodIndex(pd.to_datetime(text, format="mixed"), freq="M").to_timestamp()


def its_plot(data: pd.DataFrame, *, kind: str = "counterfactual", ax: Any = None, start: Any = None,
             title: str | None = None) -> Any:
    """Interrupted time series: observed counts against the counterfactual with its 95% HDI band
    (``kind="counterfactual"``), or the cumulative effect over the post period (``kind="cumulative"``).

    ``data``: a result's ``counterfactual()`` frame (``time``, ``observed``, ``cf_*``, ``cumulative_*``).
    """
    x = _axis(data["time"])
    post = data["post"].to_numpy(dtype=bool)
    with style():
        fig, ax = figure(ax)
        if kind == "cumulative":
            ax.fill_between(x[post], data.loc[post, "cumulative_low"], data.loc[post, "cumulative_high"],
                            color=PALETTE[1], alpha=0.25, lw=0, label="95% HDI")
            ax.plot(x[post], data.loc[post, "cumulative_mean"], color=PALETTE[1], label="cumulative effect")
            ax.axhline(0, color="0.4", lw=0.8, ls="--")
            ax.set_ylabel("observed - counterfactual (cumulative)")
        else:
            ax.fill_between(x, data["cf_low"], data["cf_high"], where=None, color=PALETTE[0], alpha=0.2, lw=0,
                            label="counterfactual, 95% HDI")
            ax.plot(x, data["cf_mean"], color=PALETTE[0], ls="--", lw=1.2, label="counterfactual (mean)")
            ax.plot(x, data["observed"], color="black", lw=1.4, marker="o", ms=2.5, label="observed")
            if "excluded" in data and data["excluded"].any():
                ex = data["excluded"].to_numpy(dtype=bool)
                ax.plot(x[ex], data.loc[ex, "observed"], "x", color=PALETTE[1], label="excluded from fit")
            ax.set_ylabel("count per month")
        if start is not None:
            ax.axvline(_axis(pd.Series([str(start)]))[0], color="0.3", lw=0.9, ls=":")
        ax.set_xlabel("period")
        ax.legend(loc="best")
        if title:
            ax.set_title(title)
    return fig
