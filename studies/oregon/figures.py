"""Figures of the Oregon study. Each drawer takes a tidy frame and returns a Figure (never shows or saves)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from decrimkit.plotting import PALETTE, figure, style

RATE_LABEL = "overdose deaths per 100,000 (12-month window)"


def _policy_lines(ax: Any, x_start: float, x_end: float | None = None) -> None:
    ax.axvline(x_start, color="0.35", ls="--", lw=0.9)
    ax.text(x_start, ax.get_ylim()[1], " Measure 110", va="top", ha="left", fontsize=8, color="0.3")
    if x_end is not None:
        ax.axvline(x_end, color="0.35", ls=":", lw=0.9)
        ax.text(x_end, ax.get_ylim()[1], " HB 4002", va="top", ha="left", fontsize=8, color="0.3")


def raw_series(monthly: pd.DataFrame, donors: tuple[str, ...], *, treated: str = "OR",
               policy: tuple[float, float] = (2021 + 1 / 12, 2024 + 8 / 12)) -> Any:
    """Oregon's 12-month-ending rate beside Washington and the donor-pool median and range.

    ``monthly``: columns state, month (Period), rate. The x-axis places each window at its end month.
    """
    m = monthly.assign(x=monthly["month"].dt.year + (monthly["month"].dt.month - 1) / 12)
    wide = m.pivot(index="x", columns="state", values="rate")
    pool = wide.loc[:, [d for d in donors if d in wide.columns]]
    with style():
        fig, ax = figure()
        ax.fill_between(pool.index, pool.quantile(0.1, axis=1), pool.quantile(0.9, axis=1), color="0.85",
                        label="donor pool, 10th-90th percentile")
        ax.plot(pool.index, pool.median(axis=1), color="0.45", lw=1.2, label="donor pool median")
        if "WA" in wide.columns and "WA" not in donors:
            ax.plot(wide.index, wide["WA"], color=PALETTE[2], lw=1.2, label="Washington (excluded)")
        ax.plot(wide.index, wide[treated], color=PALETTE[1], lw=2.0, label="Oregon")
        ax.set_ylabel(RATE_LABEL)
        ax.set_xlabel("end of 12-month window")
        _policy_lines(ax, *policy)
        ax.legend(loc="upper left")
        ax.set_title("Overdose death rates, 12-month-ending windows (CDC VSRR, provisional)")
    return fig


def trajectory(data: pd.DataFrame, *, method: str, start: float) -> Any:
    """Oregon and its counterfactual under ``method``; ``data``: year, observed, counterfactual."""
    with style():
        fig, ax = figure()
        ax.plot(data["year"], data["observed"], color=PALETTE[1], lw=2.0, marker="o", ms=3, label="Oregon")
        ax.plot(data["year"], data["counterfactual"], color=PALETTE[0], lw=1.6, ls="--", marker="s", ms=3,
                label=f"counterfactual ({method})")
        ax.axvline(start - 0.5, color="0.35", ls="--", lw=0.9)
        ax.set_xlabel("12-month window (year in which it starts; 2021 = Feb 2021 - Jan 2022)")
        ax.set_ylabel(RATE_LABEL)
        ax.set_title(f"Oregon vs counterfactual: {method}")
        ax.legend(loc="upper left")
    return fig


def gap(data: pd.DataFrame, *, method: str, start: float, band: str = "interval") -> Any:
    """Observed minus counterfactual per window; ``data``: year, gap (and optional low/high band)."""
    with style():
        fig, ax = figure()
        if {"low", "high"} <= set(data.columns) and data["low"].notna().any():
            ax.fill_between(data["year"], data["low"], data["high"], color=PALETTE[0], alpha=0.18,
                            label=band)
        ax.plot(data["year"], data["gap"], color=PALETTE[0], lw=1.8, marker="o", ms=3, label="gap")
        ax.axhline(0, color="0.4", lw=0.8)
        ax.axvline(start - 0.5, color="0.35", ls="--", lw=0.9)
        ax.set_xlabel("12-month window (year in which it starts)")
        ax.set_ylabel("Oregon minus counterfactual, per 100,000")
        ax.set_title(f"Gap: {method}")
        ax.legend(loc="upper left")
    return fig


def spaghetti(gaps: pd.DataFrame, *, treated: str = "OR", start: float, note: str = "") -> Any:
    """Placebo-in-space gaps: one grey line per donor re-run as if treated, Oregon highlighted.

    ``gaps``: columns unit, year, gap.
    """
    with style():
        fig, ax = figure()
        for unit, g in gaps.groupby("unit", sort=True):
            if unit == treated:
                continue
            ax.plot(g["year"], g["gap"], color="0.7", lw=0.8, alpha=0.8)
        o = gaps.loc[gaps["unit"] == treated]
        ax.plot(o["year"], o["gap"], color=PALETTE[1], lw=2.2, label="Oregon")
        ax.plot([], [], color="0.7", lw=0.8, label="placebo states")
        ax.axhline(0, color="0.4", lw=0.8)
        ax.axvline(start - 0.5, color="0.35", ls="--", lw=0.9)
        ax.set_xlabel("12-month window (year in which it starts)")
        ax.set_ylabel("gap, per 100,000")
        ax.set_title("Placebo-in-space gaps (ADH SCM)" + (f": {note}" if note else ""))
        ax.legend(loc="upper left")
    return fig


def forest(table: pd.DataFrame, *, published: pd.DataFrame | None = None) -> Any:
    """Each method's effect (per 100,000 per year) with its interval; published values as open markers.

    ``table``: method, estimate, conf_low, conf_high, interval (text). ``published``: label, estimate.
    """
    rows = table.reset_index(drop=True)
    n_pub = 0 if published is None else len(published)
    with style():
        fig, ax = figure(figsize=(6.5, 0.35 * (len(rows) + n_pub) + 1.2))
        y = np.arange(len(rows))[::-1] + n_pub
        has = (np.isfinite(rows["conf_low"].to_numpy(dtype="float64"))
               & np.isfinite(rows["conf_high"].to_numpy(dtype="float64")))
        err = np.vstack([rows["estimate"] - rows["conf_low"], rows["conf_high"] - rows["estimate"]])
        ax.errorbar(rows["estimate"][has], y[has], xerr=err[:, has], fmt="o", color=PALETTE[0], capsize=3,
                    label="this study, 95% interval")
        if (~has).any():
            ax.plot(rows["estimate"][~has], y[~has], "D", color=PALETTE[0], label="this study, no interval (see p)")
        labels = list(rows["method"])
        if n_pub:
            yp = np.arange(n_pub)[::-1]
            ax.plot(published["estimate"], yp, "o", mfc="white", color=PALETTE[1], label="published (converted)")
            labels += list(published["label"])
            y = np.concatenate([y, yp])
        ax.set_yticks(y, labels)
        ax.axvline(0, color="0.4", lw=0.8)
        ax.set_xlabel("effect on overdose deaths per 100,000 per year")
        ax.set_title("Measure 110: estimates by method (Feb 2021 - Jan 2024)")
        ax.legend(loc="lower right", fontsize=7.5)
    return fig


def robustness(table: pd.DataFrame) -> Any:
    """Robustness estimates (ADH SCM unless stated) as a dot plot; ``table``: check, estimate."""
    rows = table.reset_index(drop=True)
    with style():
        fig, ax = figure(figsize=(6.5, 0.3 * len(rows) + 1.2))
        y = np.arange(len(rows))[::-1]
        ax.plot(rows["estimate"], y, "o", color=PALETTE[0])
        ax.set_yticks(y, rows["check"])
        ax.axvline(0, color="0.4", lw=0.8)
        ax.set_xlabel("average post-window gap, per 100,000 per year")
        ax.set_title("Robustness checks")
    return fig


def reversal(data: pd.DataFrame, *, policy_end: float) -> Any:
    """Monthly 12-month-ending gap around the 2024-09 recriminalization; ``data``: x, gap."""
    with style():
        fig, ax = figure()
        ax.plot(data["x"], data["gap"], color=PALETTE[0], lw=1.6)
        ax.axhline(0, color="0.4", lw=0.8)
        _policy_lines(ax, 2021 + 1 / 12, policy_end)
        ax.set_xlabel("end of 12-month window")
        ax.set_ylabel("Oregon minus synthetic Oregon, per 100,000")
        ax.set_title("Gap in 12-month-ending windows (ADH SCM weights)")
    return fig
