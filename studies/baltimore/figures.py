"""Figures of the Baltimore study. Each drawer takes a tidy frame and returns a Figure (never shows or saves)."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import NullFormatter

from decrimkit.plotting import PALETTE, style

POLICY_DATE = pd.Timestamp("2020-03-18")
COVID_SPAN = (pd.Timestamp("2020-03-01"), pd.Timestamp("2020-06-30"))


def _marks(ax: Any, *, legend: bool = True) -> None:
    ax.axvspan(*COVID_SPAN, color="0.85", alpha=0.6, lw=0, label="COVID-19 lockdown (2020-03..06)" if legend else None)
    ax.axvline(
        POLICY_DATE, color="0.2", lw=1.0, ls="--", label="non-prosecution begins (2020-03-18)" if legend else None
    )


def _log_axis(ax: Any, ticks: tuple[float, ...]) -> None:
    """Log scale with plain-number tick labels at ``ticks``."""
    ax.set_yscale("log")
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_yticks(ticks, [f"{t:g}" for t in ticks])


def trajectory(data: pd.DataFrame, *, title: str) -> Any:
    """Observed monthly CDS arrests, model fit before the policy, counterfactual with its 95% band after.

    ``data``: date, observed, fitted, counterfactual, cf_low, cf_high, post (bool) and optionally
    bayes_cf, bayes_low, bayes_high.
    """
    with style():
        fig, ax = plt.subplots(figsize=(7.0, 4.2))
        post = data["post"].to_numpy(bool)
        x = data["date"]
        ax.fill_between(
            x[post],
            data["cf_low"][post],
            data["cf_high"][post],
            color=PALETTE[1],
            alpha=0.2,
            lw=0,
            label="counterfactual, 95% interval",
        )
        ax.plot(
            x[post],
            data["counterfactual"][post],
            color=PALETTE[1],
            lw=1.6,
            label="counterfactual: no policy (comparative ITS)",
        )
        if "bayes_cf" in data.columns:
            ax.plot(
                x[post],
                data["bayes_cf"][post],
                color=PALETTE[2],
                lw=1.2,
                ls="-.",
                label="counterfactual (Bayesian comparative ITS)",
            )
        ax.plot(x[~post], data["fitted"][~post], color=PALETTE[0], lw=1.0, alpha=0.8, label="model fit, pre-policy")
        ax.plot(x, data["observed"], "o-", color="0.1", ms=2.6, lw=0.8, label="observed CDS arrests")
        _marks(ax)
        ax.set_ylabel("arrests per month")
        ax.set_ylim(bottom=0)
        ax.set_title(title)
        ax.legend(loc="upper right", fontsize=7.5)
    return fig


def comparison_series(data: pd.DataFrame) -> Any:
    """Drug and handgun arrests (log scale) and their ratio, with the policy date and COVID months."""
    with style():
        fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(7.0, 5.4), sharex=True, height_ratios=(3, 2))
        ax1.plot(data["date"], data["drug"], "o-", ms=2.4, lw=0.9, color=PALETTE[0], label="CDS (drug) arrests")
        ax1.plot(
            data["date"], data["handgun"], "s-", ms=2.4, lw=0.9, color=PALETTE[1], label="handgun arrests (comparison)"
        )
        _log_axis(ax1, (30, 50, 100, 200, 400))
        ax1.set_ylabel("arrests per month (log scale)")
        _marks(ax1)
        ax1.legend(loc="upper right", fontsize=7.5)
        ax1.set_title("Treated and comparison series, Baltimore Police Department")
        ax2.plot(data["date"], data["drug"] / data["handgun"], "o-", ms=2.4, lw=0.9, color=PALETTE[2])
        _log_axis(ax2, (0.3, 0.5, 1, 2, 4, 6))
        ax2.set_ylabel("drug / handgun")
        _marks(ax2, legend=False)
    return fig


def estimator_comparison(data: pd.DataFrame) -> Any:
    """Rate ratio and cumulative arrests averted (95% intervals) for each estimator, one row each."""
    with style():
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(7.4, 0.55 * len(data) + 1.6), sharey=True)
        pos = np.arange(len(data))[::-1]
        for ax, col, ref, xlabel in (
            (ax1, "rate_ratio", 1.0, "rate ratio, observed / counterfactual"),
            (ax2, "averted", 0.0, "arrests averted, 2020-04 .. 2022-12"),
        ):
            est, lo, hi = data[col], data[f"{col}_low"], data[f"{col}_high"]
            ok = np.isfinite(est.to_numpy(float))
            ax.errorbar(
                est[ok],
                pos[ok],
                xerr=np.vstack([est[ok] - lo[ok], hi[ok] - est[ok]]),
                fmt="o",
                color=PALETTE[0],
                capsize=3,
            )
            ax.axvline(ref, color="0.4", lw=0.8, ls="--")
            ax.set_xlabel(xlabel)
        ax1.set_yticks(pos, data["estimator"])
        fig.suptitle("Estimated effect of non-prosecution on monthly CDS arrests, by estimator", fontsize=10)
        fig.tight_layout()
    return fig


def robustness(data: pd.DataFrame) -> Any:
    """Rate ratios with 95% intervals for the robustness and placebo runs."""
    with style():
        fig, ax = plt.subplots(figsize=(9.0, 0.42 * len(data) + 1.4))
        pos = np.arange(len(data))[::-1]
        est, lo, hi = data["rate_ratio"], data["rate_ratio_low"], data["rate_ratio_high"]
        colours = [PALETTE[1] if str(k).startswith("placebo") else PALETTE[0] for k in data["kind"]]
        for p, e, lo_, hi_, c in zip(pos, est, lo, hi, colours):
            ax.errorbar([e], [p], xerr=[[e - lo_], [hi_ - e]], fmt="o", color=c, capsize=3)
        ax.axvline(1.0, color="0.4", lw=0.8, ls="--")
        ax.set_yticks(pos, data["run"])
        ax.set_xlabel("rate ratio over the (placebo) policy window; 1 = no change")
        ax.set_title("Robustness (blue) and placebo checks (orange: should include 1)")
        fig.tight_layout()
    return fig


def composition(data: pd.DataFrame, *, published_share: float) -> Any:
    """Share of pre-policy CDS arrests by race under each charge definition, with the published share."""
    with style():
        fig, ax = plt.subplots(figsize=(7.0, 3.6))
        defs = list(dict.fromkeys(data["definition"]))
        races = list(dict.fromkeys(data["race"]))
        width = 0.8 / len(defs)
        for i, d in enumerate(defs):
            sub = data.loc[data["definition"] == d].set_index("race").reindex(races)
            ax.bar(
                np.arange(len(races)) + (i - (len(defs) - 1) / 2) * width,
                sub["share"],
                width,
                color=PALETTE[i],
                label=d,
            )
        ax.axhline(
            published_share,
            color="0.2",
            ls=":",
            lw=1.0,
            label=f"JHU: {published_share:.0%} of averted arrests in the Black community",
        )
        ax.set_xticks(np.arange(len(races)), races)
        ax.set_ylabel("share of arrests, 2017-01 .. 2018-02")
        ax.set_ylim(0, 1.3)
        ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
        ax.legend(fontsize=7.5, loc="upper right", ncol=2)
        ax.set_title("Who was arrested for drugs before the policy (BPD arrest extract)")
    return fig
