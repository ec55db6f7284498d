"""Drawers for staggered-adoption estimators: group-time ATT(g,t) panels."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from decrimkit.plotting.style import PALETTE, figure, style

__all__ = ["att_gt_plot"]


def att_gt_plot(data: pd.DataFrame, *, ax: Any = None, title: str | None = None) -> Any:
    """ATT(g,t) against period, one panel per cohort; pre-treatment cells grey, post-treatment blue.

    ``data`` needs ``group, time, estimate, conf_low, conf_high, post`` and may carry ``band_low,
    band_high`` (simultaneous band). With ``ax`` given, all cohorts share that axis, offset slightly.
    """
    groups = list(pd.unique(data["group"]))
    times = sorted(pd.unique(data["time"]))
    numeric = np.issubdtype(np.asarray(times).dtype, np.number)
    where = {t: (float(t) if numeric else float(i)) for i, t in enumerate(times)}
    with style():
        if ax is None:
            fig, axes = figure(
                None, nrows=len(groups), ncols=1, sharex=True, squeeze=False, figsize=(6.5, 1.0 + 1.6 * len(groups))
            )
            axes = list(axes[:, 0])
        else:
            fig, ax = figure(ax)
            axes = [ax] * len(groups)
        for i, (g, a) in enumerate(zip(groups, axes)):
            part = data[data["group"] == g]
            shift = 0.0 if len(set(map(id, axes))) > 1 else 0.08 * (i - (len(groups) - 1) / 2)
            x = np.array([where[t] for t in part["time"]]) + shift
            post = part["post"].to_numpy(dtype=bool)
            for sel, colour, label in ((~post, "0.45", "pre-treatment"), (post, PALETTE[0], "post-treatment")):
                if not sel.any():
                    continue
                est = part["estimate"].to_numpy()[sel]
                err = np.vstack([est - part["conf_low"].to_numpy()[sel], part["conf_high"].to_numpy()[sel] - est])
                a.errorbar(x[sel], est, yerr=err, fmt="o", color=colour, capsize=3, label=label if i == 0 else None)
                if {"band_low", "band_high"} <= set(part.columns):
                    a.vlines(
                        x[sel],
                        part["band_low"].to_numpy()[sel],
                        part["band_high"].to_numpy()[sel],
                        color=colour,
                        alpha=0.3,
                        lw=5,
                    )
            a.axhline(0.0, color="0.4", lw=0.8, ls="--")
            a.set_ylabel(f"cohort {g}" if len(set(map(id, axes))) > 1 else "ATT(g,t)")
        if not numeric:
            axes[-1].set_xticks(
                [where[t] for t in times], [str(t) for t in times], rotation=30 if len(times) > 6 else 0
            )
        axes[-1].set_xlabel("period")
        axes[0].legend(loc="best")
        if title:
            axes[0].set_title(title)
    return fig
