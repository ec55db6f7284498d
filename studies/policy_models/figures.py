"""Figures of the four-policy-models study: adoption timeline, MDE by model, forest plot by model."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from decrimkit.options import POLICY_MODELS
from decrimkit.plotting import PALETTE, figure, style

from .data import MODEL_LABELS
from .power import ESTIMATOR_LABELS

__all__ = ["timeline_figure", "mde_figure", "forest_figure"]

_ALPHA = {"high": 1.0, "medium": 0.6, "low": 0.3}
_COLOUR = {m: PALETTE[i] for i, m in enumerate(POLICY_MODELS)}
AXIS_END = pd.Timestamp("2025-06-30")  # right edge of the timeline; open policies run to it


def timeline_figure(rows: pd.DataFrame, *, end: pd.Timestamp = AXIS_END) -> Any:
    """Staggered-adoption chart: one line per registry row, grouped by model.

    A filled marker is the start (effective, else announced date); its opacity is the coder's
    confidence (high opaque, medium half, low faint); cannabis-only rows are drawn with an ``x``; a bar
    ends a policy that ended, an open line runs to the right edge when no end is recorded (which is not
    proof that the policy is still in force). Undated rows are listed in the cohort table, not drawn.
    """
    dated = rows[rows["start"].notna()].copy()
    dated["model"] = dated["model"].astype("string")
    order = {m: i for i, m in enumerate(POLICY_MODELS)}
    dated = dated.assign(_o=dated["model"].map(order)).sort_values(
        ["_o", "start"], ascending=[False, False], kind="stable"
    )
    with style():
        fig, ax = figure(figsize=(7.5, max(4.0, 0.2 * len(dated) + 1.2)))
        ypos = np.arange(len(dated))
        for y, r in zip(ypos, dated.itertuples(index=False)):
            colour, alpha = _COLOUR[r.model], _ALPHA[str(r.confidence)]
            stop = r.ended if pd.notna(r.ended) else end
            ax.plot([r.start, stop], [y, y], color=colour, alpha=alpha, lw=2.0, ls=":" if r.cannabis_only else "-")
            ax.plot(r.start, y, "x" if r.cannabis_only else "o", color=colour, alpha=alpha, ms=6)
            if pd.notna(r.ended):
                ax.plot(r.ended, y, "|", color=colour, alpha=alpha, ms=10, mew=2)
        ax.set_yticks(ypos, [str(j) for j in dated["jurisdiction"]], fontsize=7)
        ax.set_xlim(pd.Timestamp("2009-01-01"), end)
        ax.set_xlabel("policy start (marker) to end (bar); no bar = no end recorded")
        ax.grid(axis="y", visible=False)
        models = [Line2D([], [], color=_COLOUR[m], lw=2, label=MODEL_LABELS[m]) for m in POLICY_MODELS]
        conf = [
            Line2D([], [], color="0.2", marker="o", ls="", alpha=a, label=f"{c} confidence") for c, a in _ALPHA.items()
        ]
        conf.append(Line2D([], [], color="0.2", marker="x", ls=":", label="cannabis-only (excluded)"))
        ax.legend(handles=models + conf, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        ax.set_title("Policy adoptions in the registry, by model")
    return fig


def mde_figure(summary: pd.DataFrame, mde: pd.DataFrame) -> Any:
    """Power curves by model and estimator, with the 80% line (MDE where each curve crosses it)."""
    models = [m for m in POLICY_MODELS if m in set(summary["model"])]
    estimators = list(dict.fromkeys(summary["estimator"]))
    with style():
        fig, axes = figure(
            figsize=(7.5, 2.2 * ((len(models) + 1) // 2) + 0.6),
            nrows=(len(models) + 1) // 2,
            ncols=2,
            sharex=True,
            sharey=True,
            squeeze=False,
        )
        for k, m in enumerate(models):
            ax = axes.flat[k]
            for i, e in enumerate(estimators):
                s = summary[(summary["model"] == m) & (summary["estimator"] == e)].sort_values("delta")
                if s.empty:
                    continue
                row = mde[(mde["model"] == m) & (mde["estimator"] == e)]
                val = float(row["mde_log"].iloc[0]) if len(row) else float("nan")
                name = ESTIMATOR_LABELS.get(e, e)
                size = s.loc[s["delta"] == 0, "power"]
                if np.isfinite(val):
                    lab = f"{name}: MDE {val:.2f}"
                elif len(size) and float(size.iloc[0]) >= 0.8:
                    lab = f"{name}: no valid MDE (size {float(size.iloc[0]):.2f})"
                else:
                    lab = f"{name}: MDE > {s['delta'].max():.2f}"
                bayes = e == "hierarchical_did"
                if bayes:
                    lab += f" [{int(s['reps_run'].max())} reps, indicative]"
                ax.plot(
                    s["delta"],
                    s["power"],
                    marker="o",
                    ms=3,
                    color=PALETTE[i],
                    label=lab,
                    ls="--" if bayes else "-",
                    alpha=0.6 if bayes else 1.0,
                )
            ax.axhline(0.8, color="0.4", lw=0.8, ls="--")
            ax.axhline(0.05, color="0.6", lw=0.6, ls=":")
            ax.set_title(MODEL_LABELS[m], fontsize=9)
            ax.legend(fontsize=6, frameon=False, loc="lower right")
        for ax in axes.flat[len(models) :]:
            ax.set_visible(False)
        for ax in axes[-1]:
            ax.set_xlabel("injected effect (log rate ratio)")
        for ax in axes[:, 0]:
            ax.set_ylabel("power (5% test)")
        fig.suptitle("Design-based power on real state overdose series (80% line; dotted: 5%)", fontsize=10)
    return fig


def forest_figure(effects: pd.DataFrame, not_converged: Collection[str] = ()) -> Any:
    """Posterior means and 95% HDIs on the log-rate-ratio scale, grouped by policy model.

    ``effects``: ``source, model, label, level, mean, hdi_low, hdi_high, p_negative``; model-level rows
    are drawn as diamonds, jurisdiction/study rows as dots beneath them. Rows of a source in
    ``not_converged`` (its sampler failed the convergence gate) show the mean only, hollow, labelled: no
    interval and no P(<0), as in the study's results.
    """
    rows = []
    for src in dict.fromkeys(effects["source"]):
        e = effects[effects["source"] == src]
        for m in [m for m in POLICY_MODELS if m in set(e["model"])] + (
            ["overall"] if "overall" in set(e["model"]) else []
        ):
            sub = e[e["model"] == m]
            rows.extend(sub[sub["level"] != "jurisdiction"].to_dict("records"))
            rows.extend(sub[sub["level"] == "jurisdiction"].to_dict("records"))
    with style():
        fig, ax = figure(figsize=(7.0, max(2.5, 0.3 * len(rows) + 1.2)))
        ypos = np.arange(len(rows))[::-1]
        labels = []
        for y, r in zip(ypos, rows):
            colour = _COLOUR.get(r["model"], "0.2")
            big = r["level"] != "jurisdiction"
            ok = r["source"] not in not_converged
            if ok:
                ax.plot([r["hdi_low"], r["hdi_high"]], [y, y], color=colour, lw=2.2 if big else 1.2)
            ax.plot(r["mean"], y, "D" if big else "o", color=colour, ms=6 if big else 4,
                    mfc=colour if ok else "none")
            ax.annotate(
                f"P(<0)={r['p_negative']:.2f}" if ok else "not converged: HDI withheld",
                (1.0, y),
                xycoords=("axes fraction", "data"),
                fontsize=6.5,
                va="center",
                ha="left",
            )
            name = (
                "all models (mu_0)"
                if r["level"] == "overall"
                else MODEL_LABELS.get(r["label"], r["label"])
                if big
                else r["label"]
            )
            labels.append(("" if big else "    ") + f"{name} [{r['source']}]")
        ax.set_yticks(ypos, labels, fontsize=7)
        ax.axvline(0.0, color="0.4", lw=0.8, ls="--")
        ax.set_xlabel("effect, log rate ratio (posterior mean, 95% HDI)")
        ax.grid(axis="y", visible=False)
        ax.set_title("Bayesian pooling by policy model")
    return fig
