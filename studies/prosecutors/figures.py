"""Figures of the prosecutors study: forest plot by model, pooled posteriors, county trajectories."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from decrimkit.studies.policy_models.data import MODEL_LABELS

COLOURS = {"SCM": "#1f77b4", "ASCM": "#2ca02c", "SDID": "#d62728"}


def forest(table: pd.DataFrame) -> plt.Figure:
    """Per-county effects with 95% intervals, grouped by policy model, one marker per method."""
    t = table.sort_values(["model", "county", "method"], kind="stable")
    counties = t.drop_duplicates("fips")[["fips", "county", "model"]]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(counties) + 1.5))
    ypos = {f: i for i, f in enumerate(counties["fips"][::-1])}
    offset = {"SCM": 0.2, "ASCM": 0.0, "SDID": -0.2}
    for m, g in t.groupby("method", sort=False):
        y = np.array([ypos[f] for f in g["fips"]]) + offset.get(m, 0)
        x = g["estimate"].to_numpy()
        err = np.vstack([x - g["conf_low"].to_numpy(), g["conf_high"].to_numpy() - x])
        ax.errorbar(x, y, xerr=np.clip(err, 0, None), fmt="o", ms=3, lw=1, color=COLOURS.get(m), label=m)
    ax.axvline(0, color="grey", lw=0.8)
    labels = [f"{r.county} [{MODEL_LABELS[r.model].split()[0]}]" for r in counties.itertuples()][::-1]
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel("effect on overdose deaths per 100,000 per year (95% interval)")
    ax.legend(fontsize=7, loc="lower right")
    return fig


def pooled(summary: pd.DataFrame) -> plt.Figure:
    """Posterior mean and 95% interval per model and overall (bayes.pool)."""
    s = summary.iloc[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(s) + 1.2))
    y = np.arange(len(s))
    ax.errorbar(s["mean"], y, xerr=[s["mean"] - s["low"], s["high"] - s["mean"]], fmt="s", color="k", lw=1)
    ax.axvline(0, color="grey", lw=0.8)
    names = [MODEL_LABELS.get(n, n) + f" (n={k}, P<0={p:.2f})" for n, k, p in
             zip(s["policy_model"], s["n_counties"], s["p_negative"])]
    ax.set_yticks(y, names, fontsize=8)
    ax.set_xlabel("pooled effect, deaths per 100,000 per year (posterior mean, 95% interval)")
    return fig


def trajectory(paths: dict[str, pd.DataFrame], *, title: str, start: int, ylabel: str) -> plt.Figure:
    """Observed path and each method's counterfactual; a line at the first treated year."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    first = next(iter(paths.values()))
    ax.plot(first["year"], first["observed"], color="k", lw=2, label="observed")
    for m, p in paths.items():
        ax.plot(p["year"], p["counterfactual"], lw=1.2, ls="--", color=COLOURS.get(m), label=f"{m} counterfactual")
    ax.axvline(start - 0.5, color="grey", lw=0.8, ls=":")
    ax.set_title(title, fontsize=9)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7)
    return fig
