"""The Suffolk study's computations: IV fits on the simulated sample, the Monte Carlo, the memo DiD."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from decrimkit.estimators import did, iv
from decrimkit.estimators.iv._leniency import fit_core
from decrimkit.estimators.iv.design import leniency_design
from decrimkit.numerics import numpy_rng
from decrimkit.panel import Panel
from decrimkit.progress import track
from decrimkit.studies.suffolk.simulator import Calibration, SuffolkConfig, memo_cells, simulate, simulate_memo

__all__ = ["OUTCOMES", "COVARIATES", "SUBGROUPS", "fit_outcomes", "monte_carlo", "summarise_mc", "MemoDiD", "memo_did"]

# outcome column -> (label in tables, key in the simulator's truth, published relative effect)
OUTCOMES = {
    "any_new_complaint": ("P(new complaint, 2 yrs)", "any", -0.53),
    "n_new_complaints": ("number of new complaints, 2 yrs", "count", -0.60),
}
COVARIATES = ("age", "male", "black", "prior_complaints", "listed_charge")
SUBGROUPS = ("male", "black", "listed_charge")
DESIGN = {"decision": "not_prosecuted", "assignee": "ada", "strata": ("court", "month")}


def fit_outcomes(cases: pd.DataFrame) -> dict[str, Any]:
    """``iv.leniency`` for each outcome, with covariates and the monotonicity subgroups."""
    return {y: iv.leniency(cases, outcome=y, covariates=COVARIATES, subgroups=SUBGROUPS, **DESIGN) for y in OUTCOMES}


def _one_rep(
    seed: int, n_cases: int, config: SuffolkConfig, cal: Calibration, vcovs: tuple[str, ...]
) -> list[dict[str, float | str]]:
    sim = simulate(n_cases, seed=seed, config=config, calibration=cal)
    design = leniency_design(sim.cases, outcome="any_new_complaint", **DESIGN)
    rows = []
    for vcov in vcovs:
        row: dict[str, float | str] = {"seed": seed, "vcov": vcov}
        for col, (_, key, _) in OUTCOMES.items():
            core = fit_core(
                design._replace(y=sim.cases[col].to_numpy(dtype=np.float64)[design.row_index]),
                vcov=vcov,
                engine="numpy",
                diagnostics=False,
            )  # type: ignore[arg-type]
            row |= {
                f"late_{key}": core.estimate[3],
                f"late_{key}_se": core.se[3],
                f"relative_{key}": core.estimate[5],
                f"relative_{key}_se": core.se[5],
                f"late_{key}_truth": sim.truth[f"late_{key}"],
                f"relative_{key}_truth": sim.truth[f"relative_{key}"],
            }
        row["first_stage_f"] = core.f_effective
        rows.append(row)
    return rows


def monte_carlo(
    n_reps: int,
    *,
    seed: int,
    n_cases: int,
    config: SuffolkConfig,
    calibration: Calibration,
    vcovs: tuple[str, ...] = ("jackknife", "cr1"),
) -> pd.DataFrame:
    """One row per simulated data set and variance estimator: 2SLS estimates, SEs and truths.

    Each replication (seeds drawn from ``seed``) simulates a full sample, builds the leave-out
    instrument and fits the 2SLS LATE and relative effect of both outcomes with the NumPy engine
    (equal to linearmodels' IV2SLS to 1e-8) and no covariates, once per entry of ``vcovs`` (the
    estimates are the same; the standard errors differ), so that a replication takes about a second.
    """
    seeds = numpy_rng(seed).integers(0, 2**31 - 1, n_reps)
    rows = [
        row
        for s in track(seeds, description="Suffolk Monte Carlo", total=n_reps)
        for row in _one_rep(int(s), n_cases, config, calibration, vcovs)
    ]
    return pd.DataFrame(rows)


def summarise_mc(reps: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Bias, RMSE, mean SE, SD of estimates and coverage of the normal interval, per estimand."""
    from scipy import stats

    q = stats.norm.ppf(0.5 + level / 2)
    rows = []
    for vcov, part in reps.groupby("vcov", sort=False):
        for label, key, _ in OUTCOMES.values():
            for scale in ("late", "relative"):
                est, se, tr = (part[f"{scale}_{key}"], part[f"{scale}_{key}_se"], part[f"{scale}_{key}_truth"])
                err = est - tr
                rows.append(
                    {
                        "vcov": vcov,
                        "outcome": label,
                        "scale": "absolute (LATE)" if scale == "late" else "relative",
                        "n_reps": len(part),
                        "mean_truth": tr.mean(),
                        "mean_estimate": est.mean(),
                        "bias": err.mean(),
                        "rmse": float(np.sqrt((err**2).mean())),
                        "mean_se": se.mean(),
                        "sd_estimate": est.std(ddof=1),
                        "coverage": float((err.abs() <= q * se).mean()),
                    }
                )
    return pd.DataFrame(rows)


class MemoDiD(NamedTuple):
    """The memo design: charge-by-month cells, TWFE and event-study fits per outcome, and the truth."""

    cells: pd.DataFrame
    n_dropped: int
    twfe: dict[str, Any]
    event_study: dict[str, Any]
    truth: dict[str, float]


MEMO_OUTCOMES = {
    "nonpros_rate": ("non-prosecution rate", "att_nonpros"),
    "new_complaint_rate": ("new-complaint rate (2 yrs)", "att_any"),
}


def memo_did(*, seed: int, config: SuffolkConfig, calibration: Calibration, leads: int = 12, lags: int = 10) -> MemoDiD:
    """DiD of listed vs non-listed charges around the 2019-03-25 memo, on simulated charge-by-month cells.

    TWFE (``did.twfe``) for the average effect and a dynamic TWFE (``did.event_study``, ``leads`` and
    ``lags`` months, endpoints binned) for the event-study figure; SEs clustered by charge.
    """
    cases, truth = simulate_memo(seed=seed, config=config, calibration=calibration)
    cells, n_dropped = memo_cells(cases, config)
    twfe, es = {}, {}
    for col in MEMO_OUTCOMES:
        panel = Panel.from_frame(cells, unit="charge", time="month", outcome=col, treated="treated")
        twfe[col] = did.twfe(panel, cluster="unit")
        es[col] = did.event_study(panel, leads=leads, lags=lags, cluster="unit", seed=seed)
    return MemoDiD(cells=cells, n_dropped=n_dropped, twfe=twfe, event_study=es, truth=truth)
