"""Design-based power and minimum detectable effect (MDE) per policy model on real county noise.

The policy-models study's placebo design (:mod:`decrimkit.studies.policy_models.placebo_design`,
:mod:`decrimkit.studies.policy_models.power`) moved to counties: for one policy model with ``K``
evaluated counties (cohort years ``c_1..c_K``), one replicate draws ``K`` distinct counties from the
study's **main pool** (rules D1-D4: every county with no registry row, outside the statewide-policy
states, with a 2010 population of at least 250,000 and reported in all 13 years: 219 counties, the
size class of the treated counties and the comparison counties of every estimate), gives them the model's cohort years and leaves the others as never-treated
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
    """One placebo design per policy model with evaluated counties: its cohorts on the main pool (D1-D4)."""
    pool = list(pools.large)
    sub = df[df["fips"].isin(pool)]
    years = tuple(range(data.FIRST, data.LAST + 1))

    def wide(col: str) -> np.ndarray:
        w = sub.pivot(index="fips", columns="year", values=col).loc[pool, list(years)]
        return w.astype("float64").to_numpy()

    y, deaths, population = wide("rate"), wide("deaths"), wide("population")
    if not np.isfinite(y).all():  # never: the pool is fully reported (D3); a guard, not a filter
        raise ValueError("the main pool has a suppressed or missing cell")
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


N_BOOT = 200  # bootstrap resamples of the replicates for the Monte Carlo SE of an MDE


def mde_mcse(records: pd.DataFrame, deltas: Sequence[float], *, seed: int, n_boot: int = N_BOOT) -> pd.DataFrame:
    """Monte Carlo uncertainty of each MDE: per (model, estimator), the SD of the MDE over ``n_boot`` bootstrap
    resamples of its replicates (``mde_mcse``) and the share of resamples in which 80% power is not reached on
    the grid (``mde_unreached``).

    ``records``: the ``delta = 0`` fits with their intervals, the placebo-calibrated rows included; for those the
    calibration quantiles are recomputed in each resample (they come from the same replicates). Power at
    ``delta`` is the share of resampled intervals shifted by ``delta`` that exclude zero, and the MDE is
    interpolated as :func:`~decrimkit.studies.policy_models.power.mde_table` does.
    """
    ok = records[(records["delta"] == 0.0) & np.isfinite(records["estimate"]) & np.isfinite(records["se"])
                 & (records["se"] > 0)]
    d = np.asarray(deltas, dtype="float64")
    rng = np.random.default_rng([seed, 22])
    frames, keys = [], []
    for (m, e), g in ok.groupby(["model", "estimator"], sort=True):
        est, lo, hi = (g[c].to_numpy(dtype="float64") for c in ("estimate", "conf_low", "conf_high"))
        idx = rng.integers(0, len(g), size=(n_boot, len(g)))
        eb = est[idx]
        if e.endswith("(placebo-calibrated)"):
            q_lo, q_hi = np.quantile(eb, [0.025, 0.975], axis=1)
            lob, hib = eb - q_hi[:, None], eb - q_lo[:, None]
        else:
            lob, hib = lo[idx], hi[idx]
        pw = ((lob[:, :, None] + d > 0) | (hib[:, :, None] + d < 0)).mean(axis=1)  # (n_boot, n_delta)
        frames.append(pd.DataFrame({"model": np.repeat([f"{m}|{b}" for b in range(n_boot)], len(d)),
                                    "estimator": e, "delta": np.tile(d, n_boot), "power": pw.ravel(),
                                    "reps_run": len(g), "coverage": np.nan, "bias": np.nan}))
        keys.append((m, e))
    if not frames:
        return pd.DataFrame(columns=["model", "estimator", "mde_mcse", "mde_unreached"])
    boot = mde_table(pd.concat(frames, ignore_index=True), [])
    boot["model"] = boot["model"].str.rsplit("|", n=1).str[0]
    g = boot.groupby(["model", "estimator"], sort=True)["mde_log"]
    return pd.DataFrame({"mde_mcse": g.std(ddof=1), "mde_unreached": g.apply(lambda x: float(x.isna().mean()))}
                        ).reset_index()


def power_grid(designs_: Sequence[PowerDesign], *, n_reps: dict[str, int], seed: int, sdid_reps: int,
               deltas: Sequence[float] = GRID, scheduler: str | None = "synchronous") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summary per model, estimator and delta; MDE table per model and estimator with its Monte Carlo SE),
    deaths per 100,000.

    ``n_reps``: replicates per estimator in :data:`ESTIMATORS` (SDID's Frank-Wolfe fits on 219 counties cost about a second
    each, imputation about 10 ms); replicate ``r`` draws the same placebo counties for every estimator.
    ``scheduler``: ``"synchronous"`` (this process) or ``None`` (a local Dask cluster of two processes; SDID's
    replicates go in chunks of 5); every replicate is seeded by (seed, model, replicate), so both give the same records.
    """
    parts = [GridPart(d, n, (0.0,), (e,), chunk=5 if e == "sdid" else n) for d in designs_ for e, n in n_reps.items()]
    records = run_grid(parts, seed=seed, sdid_reps=sdid_reps, scheduler=scheduler)
    both = pd.concat([records, calibrated(records)], ignore_index=True)
    summary = summarise(shift(both, deltas))
    mde = mde_table(summary, designs_).drop(columns=["mde_pct"]).rename(columns={"mde_log": "mde"})
    mde = mde.merge(mde_mcse(both, deltas, seed=seed), on=["model", "estimator"], how="left")
    return summary, mde
