"""Robustness checks and the reversal window of the Oregon study.

Each check refits ADH SCM (placebo inference off: it is the fastest estimator that weights donors)
on a changed panel and reports the average post-window gap; the main specification is the first row.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from . import data as oregon_data
from .methods import MethodEstimate, adh_scm, pre_rmspe


def _row(check: str, what: str, est: MethodEstimate | None, *, estimate: float | None = None,
         rmspe: float | None = None, n_donors: int | None = None) -> dict[str, Any]:
    return {"check": check, "what changes": what,
            "estimate": est.estimate if est is not None else estimate,
            "pre_rmspe": est.pre_rmspe if est is not None else rmspe,
            "donors": n_donors}


def checks(inputs: oregon_data.Inputs, data: oregon_data.StudyData, main: MethodEstimate, *, years: tuple[int, int],
           quick: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run the robustness checks; returns (summary table, leave-one-donor-out table)."""
    n = len(data.rules.donors)
    rows = [_row("main", "Feb-Jan windows 2014-2023, main pool, predicted counts", main, n_donors=n)]

    # leave-one-donor-out: every donor with a weight of at least 0.001
    w = main.weights if main.weights is not None else pd.Series(dtype="float64")
    used = tuple(w.index[w >= 1e-3])
    if quick:  # the two largest weights only
        used = tuple(w.sort_values(ascending=False).index[:2])
    loo = []
    for d in used:
        donors = tuple(x for x in data.rules.donors if x != d)
        e = adh_scm(data.panel(years=years, donors=donors), placebo=False)
        loo.append({"left_out": d, "weight": float(w[d]), "estimate": e.estimate, "pre_rmspe": e.pre_rmspe})
    loo_df = pd.DataFrame(loo, columns=["left_out", "weight", "estimate", "pre_rmspe"])
    if len(loo_df):
        rows.append(_row("leave-one-donor-out (min)", f"drop {loo_df.loc[loo_df['estimate'].idxmin(), 'left_out']}",
                         None, estimate=float(loo_df["estimate"].min()), n_donors=n - 1))
        rows.append(_row("leave-one-donor-out (max)", f"drop {loo_df.loc[loo_df['estimate'].idxmax(), 'left_out']}",
                         None, estimate=float(loo_df["estimate"].max()), n_donors=n - 1))

    # in-time placebo: pretend the policy began in February 2019, using pre-policy windows only
    fake = adh_scm(data.panel(years=(years[0], oregon_data.START_YEAR - 1), start=2019), start=2019, placebo=False)
    rows.append(_row("in-time placebo", "fake start Feb 2019; windows 2014-2020 only", fake, n_donors=n))

    # Washington alone as the comparison (DiD): a neighbour with the same fentanyl timing, partly treated by Blake
    from decrimkit.errors import FewTreatedWarning
    from decrimkit.estimators import did

    wa = oregon_data.build(inputs, pool="with_wa")
    with warnings.catch_warnings():  # a point estimate only (one treated, one control): no p-value is reported
        warnings.simplefilter("ignore", FewTreatedWarning)
        att = float(did.twfe(wa.panel(years=years, donors=("WA",)), cluster=None).att)  # no cluster SE: 1 vs 1
    rows.append(_row("DiD vs Washington only", "TWFE, Oregon against Washington (Blake: partly treated)", None,
                     estimate=att, n_donors=1))

    if quick:  # compile-heavy shape changes are left to the full run
        return pd.DataFrame(rows), loo_df
    for first in (2016, 2017):
        e = adh_scm(data.panel(years=(first, years[1])), placebo=False)
        rows.append(_row(f"pre-period {first}-2020", f"{oregon_data.START_YEAR - first} pre windows instead of "
                         f"{oregon_data.START_YEAR - years[0]}", e, n_donors=n))
    e = adh_scm(data.panel(years=years, drop_years=(2020,)), placebo=False)
    rows.append(_row("without 2020", "drop the Feb 2020 - Jan 2021 (COVID) window", e, n_donors=n))

    e = adh_scm(data.panel(years=years, outcome="constant_rate"), placebo=False)
    rows.append(_row("constant denominator", "deaths / 2020 population (no vintage seam)", e, n_donors=n))

    variants = [("with Washington", "Washington added to the donors", {"pool": "with_wa"}),
                ("strict pool", "drop states with any non-cannabis registry policy", {"pool": "strict"}),
                ("reported counts", "data_value instead of predicted_value", {"count": "reported"})]
    variants.append(("calendar years", "December windows 2015-2023 (2021 includes January)",
                         {"frequency": "calendar"}))
    for check, what, kw in variants:
        alt = oregon_data.build(inputs, **kw)
        yrs = (max(years[0], 2015), years[1]) if kw.get("frequency") == "calendar" else years
        e = adh_scm(alt.panel(years=yrs), placebo=False)
        rows.append(_row(check, what, e, n_donors=len(alt.rules.donors)))
    return pd.DataFrame(rows), loo_df


def late_surge_scm(data: oregon_data.StudyData, *, years: tuple[int, int], since: str = "2019-01",
                   placebo: bool = True) -> MethodEstimate:
    """ADH SCM with donors restricted to states whose surge onset (the fentanyl proxy) is ``since`` or later.

    A donor-matching form of the fentanyl adjustment: Oregon is compared only with states whose
    overdose surge began in the same era, so their post-2021 rise carries the same fentanyl timing.
    """
    cut = pd.Period(since, "M")
    on = data.onset
    donors = tuple(d for d in data.rules.donors if pd.isna(on.get(d)) is False and on[d] >= cut)
    e = adh_scm(data.panel(years=years, donors=donors), key="scm_late", placebo=placebo,
                method=f"ADH SCM, late-surge donors (onset >= {since})", adjusted=True)
    return e


def reversal(data: oregon_data.StudyData, main: MethodEstimate) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Gap between Oregon and its synthetic control in every 12-month-ending window, with the main weights.

    The weights fitted on the February-January panel are applied to the monthly 12-month-ending rates,
    including the 2024 window and the windows after recriminalization (2024-09). Only windows where
    every donor with positive weight is observed are kept (Colorado has no 2025-04 row).
    """
    w = main.weights[main.weights > 0]
    m = data.monthly.pivot(index="month", columns="state", values="rate")
    donors = m.loc[:, w.index]
    complete = donors.notna().all(axis=1)
    synth = donors.loc[complete] @ w.to_numpy()
    gap = (m.loc[complete, oregon_data.TREATED] - synth).rename("gap")
    frame = pd.DataFrame({"month": gap.index, "gap": gap.to_numpy()})
    frame["x"] = frame["month"].dt.year + (frame["month"].dt.month - 1) / 12
    last_decrim = oregon_data.POLICY_END - 1  # window ending 2024-08: the last one entirely under Measure 110
    end = gap.index.max()
    months_recrim = int(np.clip(end.ordinal - oregon_data.POLICY_END.ordinal + 1, 0, 12))
    annual = main.path.set_index("year")
    stats = {
        "gap_2023": float(annual.loc[oregon_data.POST_YEARS[-1], "gap"]) if oregon_data.POST_YEARS[-1] in annual.index else np.nan,
        "gap_last_decrim": float(gap.get(last_decrim, np.nan)),
        "last_window": str(end),
        "gap_last_window": float(gap.loc[end]),
        "months_recriminalized_in_last_window": months_recrim,
        "peak_window": str(gap.idxmax()),
        "peak_gap": float(gap.max()),
    }
    return frame, stats


def window_2024(data: oregon_data.StudyData, main: MethodEstimate) -> float:
    """Gap in the 2024 February-January window (7 decriminalized + 5 recriminalized months)."""
    a = data.annual.loc[data.annual["year"] == oregon_data.REVERSAL_YEAR].set_index("state")["rate"]
    w = main.weights[main.weights > 0]
    return float(a[oregon_data.TREATED] - a[w.index] @ w.to_numpy())


__all__ = ["checks", "late_surge_scm", "reversal", "window_2024", "pre_rmspe"]
