"""The validation grid: cells (a DGP with its parameters) and the estimators scored in each.

A cell's replication ``r`` draws its data from ``np.random.default_rng([seed, crc32(cell), r])`` and
every estimator that takes a seed gets ``seed + r``, so each number is reproducible from
``(seed, cell, rep)`` alone, whatever the chunking or the worker that ran it.

Each estimator returns one or more *records* per replication: ``(estimator, target, estimate, se,
conf_low, conf_high, p_value, truth)``; a ``DecrimkitError`` (a design the draw cannot support, e.g.
every unit with zero counts) is counted as a failure of that replication, never silently dropped.
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

import decrimkit  # noqa: F401  (float64 JAX)
from decrimkit import Panel
from decrimkit.errors import DecrimkitError

from . import dgp  # type: ignore[import-not-found]

Record = tuple[str, str, float, float, float, float, float, float]
NAN = float("nan")
Z = float(stats.norm.ppf(0.975))


@dataclass(frozen=True)
class Cell:
    """One DGP setting, the estimators run on each draw, and the replications (full run, quick run)."""

    name: str
    dgp: str
    params: dict[str, Any]
    estimators: tuple[str, ...]
    reps: int
    quick_reps: int
    description: str
    chunk: int = 25
    notes: tuple[str, ...] = field(default=())


# ------------------------------------------------------------------ estimator adapters (one draw -> records)
def _did_panel(draw: dgp.Draw) -> Panel:
    return Panel.from_frame(draw.frame, unit="unit", time="time", outcome="y", cohort="cohort")


def _twfe(draw: dgp.Draw, seed: int) -> list[Record]:
    from decrimkit.estimators import did

    r = did.twfe(_did_panel(draw), cluster="unit")
    lo, hi = r.conf_int()[0]
    return [("twfe", "att", r.att, float(r.se[0]), lo, hi, float(r.p_value[0]), draw.truth["att"])]


def _event_study(draw: dgp.Draw, seed: int) -> list[Record]:
    from decrimkit.estimators import did

    tab = did.event_study(_did_panel(draw), cluster="unit", seed=seed).tidy().set_index("event_time")
    out = []
    for key, truth in draw.truth.items():
        if key.startswith("e") and int(key[1:]) in tab.index:
            row = tab.loc[int(key[1:])]
            out.append(("event_study", key, row["estimate"], row["se"], row["conf_low"], row["conf_high"],
                        row["p_value"], truth))
    return out


def _att_gt(draw: dgp.Draw, seed: int) -> list[Record]:
    from decrimkit.estimators import did

    row = did.att_gt(_did_panel(draw), control="never", n_boot=0, seed=seed).aggregate("simple").tidy().iloc[0]
    return [("att_gt", "att", row["estimate"], row["se"], row["conf_low"], row["conf_high"], row["p_value"],
             draw.truth["att"])]


def _imputation(draw: dgp.Draw, seed: int) -> list[Record]:
    from decrimkit.estimators import did

    est, se = did.imputation(_did_panel(draw)).overall
    p = float(2 * stats.norm.sf(abs(est / se)))
    return [("imputation", "att", est, se, est - Z * se, est + Z * se, p, draw.truth["att"])]


def _poisson(draw: dgp.Draw, seed: int) -> list[Record]:
    from decrimkit.estimators import did

    panel = Panel.from_frame(draw.frame, unit="unit", time="time", outcome="y", cohort="cohort",
                             population="population")
    row = did.poisson(panel, exposure="population", cluster="unit").tidy().iloc[0]
    return [("poisson", "log_rr", row["estimate"], row["se"], row["conf_low"], row["conf_high"], row["p_value"],
             draw.truth["log_rr"])]


def _synth_args(draw: dgp.Draw) -> tuple[Panel, Any]:
    panel = _did_panel(draw)
    start = int(draw.frame.loc[draw.frame["cohort"] > 0, "cohort"].iloc[0])
    return panel, start


def _scm_placebo(draw: dgp.Draw, seed: int) -> list[Record]:
    from decrimkit.estimators import synth

    panel, start = _synth_args(draw)
    fit = synth.scm(panel, treated=0, start=start, v="regression")
    p = float(fit.placebo("space").p_value)
    return [("scm_placebo", "att", float(fit.estimate), NAN, NAN, NAN, p, draw.truth["att"])]


def _ascm_conformal(draw: dgp.Draw, seed: int) -> list[Record]:
    from decrimkit.estimators import synth
    from decrimkit.estimators.synth.augmented import conformal

    panel, start = _synth_args(draw)
    fit = synth.augmented(panel, treated=0, start=start, progfunc="ridge")
    conf = conformal(fit, alpha=0.05, grid_size=50)
    tab = conf.table
    out = [("ascm_conformal", f"period{j}", row["estimate"], NAN, row["conf_low"], row["conf_high"], row["p_value"],
            draw.truth["att"]) for j, row in enumerate(tab.to_dict("records"))]
    out.append(("ascm_conformal", "joint", float(fit.estimate), NAN, NAN, NAN, conf.p_value_joint, draw.truth["att"]))
    return out


def _sdid(draw: dgp.Draw, seed: int) -> list[Record]:
    from decrimkit.estimators import synth

    row = synth.sdid(_did_panel(draw), se_method="placebo", n_reps=50, seed=seed).tidy().iloc[0]
    return [("sdid_placebo", "att", row["estimate"], row["se"], row["conf_low"], row["conf_high"], row["p_value"],
             draw.truth["att"])]


def _mc_nnm(draw: dgp.Draw, seed: int) -> list[Record]:
    from decrimkit.estimators import synth

    row = synth.mc_nnm(_did_panel(draw), n_folds=3, n_reps=25, seed=seed).tidy().iloc[0]
    return [("mc_nnm", "att", row["estimate"], row["se"], row["conf_low"], row["conf_high"], row["p_value"],
             draw.truth["att"])]


ESTIMATORS: dict[str, Callable[[dgp.Draw, int], list[Record]]] = {
    "twfe": _twfe,
    "event_study": _event_study,
    "att_gt": _att_gt,
    "imputation": _imputation,
    "poisson": _poisson,
    "scm_placebo": _scm_placebo,
    "ascm_conformal": _ascm_conformal,
    "sdid_placebo": _sdid,
    "mc_nnm": _mc_nnm,
}

DID = ("twfe", "event_study", "att_gt", "imputation")

CELLS: tuple[Cell, ...] = (
    Cell("did_homogeneous", "staggered", {}, DID, 1000, 20,
         "40 units x 8 periods, cohorts at periods 3 and 5 (10 units each), 20 never treated; tau = 1; iid errors"),
    Cell("did_dynamic", "staggered", {"effect": "dynamic"}, DID, 1000, 20,
         "as did_homogeneous, tau_it = 1 + 0.5 e (effects grow with event time, same path in each cohort)",
         notes=("static TWFE is biased here by design (forbidden comparisons; Goodman-Bacon 2021)",)),
    Cell("did_ar1_null", "staggered", {"rho": 0.7, "tau": 0.0}, DID, 1000, 20,
         "as did_homogeneous with AR(1) errors (rho = 0.7) and no effect (tau = 0): size of each test"),
    Cell("did_few_treated", "staggered", {"cohorts": (4,), "n_treated": (3,)}, DID, 1000, 20,
         "40 units x 8 periods, 3 units treated from period 4, 37 never treated; tau = 1",
         notes=("cluster-robust inference with 3 treated clusters is known to under-cover "
                "(MacKinnon and Webb 2017; Conley and Taber 2011)",)),
    Cell("poisson_mean1", "counts", {"mean": 1.0}, ("poisson",), 1000, 20,
         "40 units x 8 periods, 20 treated from period 4; Poisson counts, about 1 event per unit-period; rate ratio 1.25"),
    Cell("poisson_mean0.2", "counts", {"mean": 0.2}, ("poisson",), 1000, 20,
         "as poisson_mean1 with about 0.2 events per unit-period (mostly zeros)"),
    Cell("synth_one_treated_null", "factor", {"n_units": 20, "tau": 0.0}, ("scm_placebo", "ascm_conformal"), 500, 8,
         "20 exchangeable units x 16 periods, 2 AR(1) factors, unit 0 'treated' from period 12, no effect",
         chunk=10),
    Cell("synth_one_treated_effect", "factor", {"n_units": 20, "tau": 1.0}, ("ascm_conformal",), 500, 8,
         "as synth_one_treated_null with tau = 1 (coverage of the conformal intervals)", chunk=10),
    Cell("synth_block", "factor", {"n_units": 30, "n_periods": 12, "start": 8, "n_treated": 5, "tau": 1.0},
         ("sdid_placebo",), 500, 8,
         "30 units x 12 periods, 5 treated from period 8, 2 AR(1) factors, tau = 1", chunk=10),
    Cell("mc_block", "factor", {"n_units": 20, "n_periods": 10, "start": 7, "n_treated": 4, "tau": 1.0},
         ("mc_nnm",), 500, 4,
         "20 units x 10 periods, 4 treated from period 7, 2 AR(1) factors, tau = 1", chunk=10),
)

CELL_BY_NAME = {c.name: c for c in CELLS}
GENERATORS = {"staggered": dgp.staggered, "counts": dgp.counts, "factor": dgp.factor}


def cell_key(name: str) -> int:
    """A stable 32-bit key for a cell name (part of every replication's seed)."""
    return zlib.crc32(name.encode("utf-8"))


def run_chunk(name: str, reps: list[int], seed: int) -> dict[str, Any]:
    """Run replications ``reps`` of cell ``name``; returns records, failures and warnings counted by estimator."""
    cell = CELL_BY_NAME[name]
    gen = GENERATORS[cell.dgp]
    records: list[tuple[int, *Record]] = []
    failures: dict[str, list[str]] = {}
    warned: dict[str, int] = {}
    for r in reps:
        draw = gen(np.random.default_rng([seed, cell_key(name), r]), **cell.params)
        for est in cell.estimators:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    recs = ESTIMATORS[est](draw, seed + r)
                except DecrimkitError as exc:
                    failures.setdefault(est, []).append(f"rep {r}: {type(exc).__name__}: {exc}"[:300])
                    recs = []
            if caught:
                warned[est] = warned.get(est, 0) + len(caught)
            records.extend((r, *(x if isinstance(x, str) else float(x) for x in rec)) for rec in recs)
    return {"cell": name, "records": records, "failures": failures, "warnings": warned}


def run_sbc_task(n_reps: int, seed: int, quick: bool) -> dict[str, Any]:
    """Simulation-based calibration of the Bayesian hierarchical pooling model (bayes.pool)."""
    from decrimkit.estimators.bayes.calibration import run_sbc

    kw = {"tune": 150, "draws": 150} if quick else {"tune": 500, "draws": 500}
    res = run_sbc(n_reps, seed=seed, prob=0.9, **kw)
    return {"table": res.table.to_dict("records"), "prob": res.prob, "options": dict(res.spec.options),
            "passes": bool(res.passes()) if hasattr(res, "passes") else None}
