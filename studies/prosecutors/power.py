"""Design-based power and minimum detectable effect (MDE) per policy model on real county noise.

The policy-models study's placebo design (:mod:`decrimkit.studies.policy_models.placebo_design`,
:mod:`decrimkit.studies.policy_models.power`) moved to counties: for one policy model with ``K``
evaluated counties (cohort years ``c_1..c_K``), one replicate draws ``K`` distinct counties from the
**population-only pool** (every county with no registry row, outside the statewide-policy states, with
a 2010 population of at least 250,000 and reported in all 13 years: 219 counties, the size class of the
treated counties), gives them the model's cohort years and leaves the others as never-treated
comparisons. The outcome is the real 2010-2022 overdose death rate per 100,000 of those counties, so the
noise is the counties' own (fentanyl waves, COVID-19, small-number variation). An effect ``delta``
(deaths per 100,000 per year, constant over event time) is added to the placebo-treated counties'
post-period rates, and the staggered imputation DiD (``did.imputation``, BJS conservative SE) and
SDID (jackknife SE with two or more treated counties, placebo SE with one) are run; power is the share
of replicates whose 95% normal interval excludes zero, the MDE the smallest ``delta`` with power >= 0.8
(linear interpolation on the grid), and the rejection rate at ``delta = 0`` is each test's size on real
county noise (when it exceeds 5%, the MDE is not size-adjusted).

Two tests per estimator: its analytic 95% normal interval (BJS conservative SE; SDID jackknife or
placebo SE), whose size on real county noise the grid measures, and the placebo-calibrated test the
study's staggered DiD uses (Conley-Taber: reject when the estimate lies outside the 2.5-97.5% range of
the estimates from the placebo assignments of the same model, i.e. the replicates at ``delta = 0``), which
has size 5% by construction when the placebo counties are exchangeable with the treated ones.

Both estimators are translation-equivariant in an additive effect on the treated post-period cells and
their standard errors do not depend on it (imputation DiD is linear in the outcome and its variance uses
the deviations of the imputed effects from their group means; SDID's unit and time weights use only the
pre-period and the comparison units; the jackknife and placebo replicates shift with the estimate), so
each replicate is fitted once at ``delta = 0`` and the record at ``delta`` is that fit shifted by
``delta``: exactly what a refit on the injected panel gives (``tests/studies/test_prosecutors.py`` checks
it against refits).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from decrimkit.studies.policy_models.placebo_design import PowerDesign
from decrimkit.studies.policy_models.power import GridPart, mde_table, run_grid, summarise

from . import data

__all__ = ["GRID", "designs", "shift", "power_grid"]

GRID = (0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 15.0, 20.0)  # deaths per 100,000 per year
ESTIMATORS = ("imputation", "sdid")


def designs(df: pd.DataFrame, pools: data.Pools, ev: pd.DataFrame) -> list[PowerDesign]:
    """One placebo design per policy model with evaluated counties: its cohorts on the population-only pool."""
    pool = list(pools.large)
    sub = df[df["fips"].isin(pool)]
    years = tuple(range(data.FIRST, data.LAST + 1))

    def wide(col: str) -> np.ndarray:
        w = sub.pivot(index="fips", columns="year", values=col).loc[pool, list(years)]
        return w.astype("float64").to_numpy()

    y, deaths, population = wide("rate"), wide("deaths"), wide("population")
    if not np.isfinite(y).all():  # never: the pool is fully reported (D3); a guard, not a filter
        raise ValueError("the population-only pool has a suppressed or missing cell")
    out = []
    for i, m in enumerate(data.MODELS):
        c = ev.loc[ev["model"] == m, "cohort"]
        if len(c):
            out.append(PowerDesign(m, i, tuple(int(v) for v in c), tuple(pool), years, y, deaths, population))
    return out


def shift(records: pd.DataFrame, deltas: Sequence[float]) -> pd.DataFrame:
    """Records fitted at ``delta = 0`` expanded to every ``delta`` (estimate and interval shifted, SE kept)."""
    base = records[records["delta"] == 0.0]
    parts = []
    for d in deltas:
        parts.append(base.assign(delta=float(d), estimate=base["estimate"] + d, conf_low=base["conf_low"] + d,
                                 conf_high=base["conf_high"] + d))
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values(["model", "estimator", "delta", "rep"], kind="stable").reset_index(drop=True)


Z = 1.959963984540054
MIN_CALIBRATION_REPS = 40  # below this the 2.5% and 97.5% placebo quantiles are interpolated extremes (size != 5%)


def calibrated(records: pd.DataFrame) -> pd.DataFrame:
    """The ``delta = 0`` records with Conley-Taber intervals from the placebo estimates of each model and estimator.

    Interval ``[estimate - q97.5, estimate - q2.5]`` of the placebo estimates (the study's staggered DiD
    interval); ``se`` is its half-width over 1.96, a nominal scale only (power uses the interval). Only for
    an estimator with at least :data:`MIN_CALIBRATION_REPS` replicates (SDID's 10 in the full run are too few).
    """
    base = records[(records["delta"] == 0.0) & np.isfinite(records["estimate"])]
    parts = []
    for (_, e), g in base.groupby(["model", "estimator"], sort=True):
        if len(g) < MIN_CALIBRATION_REPS:
            continue
        lo, hi = np.quantile(g["estimate"].to_numpy(), [0.025, 0.975])
        parts.append(g.assign(estimator=f"{e} (placebo-calibrated)", conf_low=g["estimate"] - hi,
                              conf_high=g["estimate"] - lo, se=(hi - lo) / (2 * Z)))
    return pd.concat(parts, ignore_index=True) if parts else base.iloc[:0]


def power_grid(designs_: Sequence[PowerDesign], *, n_reps: dict[str, int], seed: int, sdid_reps: int,
               deltas: Sequence[float] = GRID) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summary per model, estimator and delta; MDE table per model and estimator), deaths per 100,000.

    ``n_reps``: replicates per estimator in :data:`ESTIMATORS` (SDID's Frank-Wolfe fits on 219 counties cost about a second
    each, imputation about 10 ms); replicate ``r`` draws the same placebo counties for every estimator.
    """
    parts = [GridPart(d, n, (0.0,), (e,), chunk=n) for d in designs_ for e, n in n_reps.items()]
    records = run_grid(parts, seed=seed, sdid_reps=sdid_reps, scheduler="synchronous")
    both = pd.concat([records, calibrated(records)], ignore_index=True)
    summary = summarise(shift(both, deltas))
    mde = mde_table(summary, designs_).drop(columns=["mde_pct"]).rename(columns={"mde_log": "mde"})
    return summary, mde
