"""The validation grid: cells (a DGP with its parameters) and the estimators scored in each.

A cell's replication ``r`` draws its data from ``np.random.default_rng([seed, crc32(cell), r])`` and
every estimator that takes a seed gets ``seed + r``, so each number is reproducible from
``(seed, cell, rep)`` alone, whatever the chunking or the worker that ran it.

Each estimator returns one or more *records* per replication: ``(estimator, target, estimate, se,
conf_low, conf_high, p_value, truth)``; a ``DecrimkitError`` (a design the draw cannot support, e.g.
every unit with zero counts) is counted as a failure of that replication, never silently dropped.
The estimators of a cell share one ``Panel`` per replication (built once, as a user would), and a
chunk reports the CPU seconds each estimator took (``cpu``), which ``run.py`` prints and writes to
the README but never to ``results.json``.

Inner replications: SDID's placebo SE uses 200 placebo draws (the package's and R synthdid's default)
and MC-NNM's 100. A standard error estimated from ``B`` placebo draws carries about ``B - 1`` degrees
of freedom, so a normal 95% interval built on it covers ``P(|t_{B-1}| < 1.96)`` at best: 0.938 for
``B = 25``, 0.944 for 50, 0.947 for 100, 0.949 for 200. Fewer draws would make the harness, not the
method, pull coverage towards the 93% edge.
"""

from __future__ import annotations

import os
import time
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

import decrimkit  # noqa: F401  (float64 JAX)
from decrimkit import Panel
from decrimkit.errors import DecrimkitError, FewTreatedWarning

from . import dgp  # type: ignore[import-not-found]

Record = tuple[str, str, float, float, float, float, float, float]
NAN = float("nan")
Z = float(stats.norm.ppf(0.975))
SDID_PLACEBOS = 200   # placebo draws behind SDID's SE (see the module notes)
MC_NNM_PLACEBOS = 100  # placebo draws behind MC-NNM's SE; its cost is set by the CV fits, not by these


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
class Replication:
    """One draw and its panels, built once and shared by the estimators of the cell."""

    def __init__(self, draw: dgp.Draw) -> None:
        self.draw = draw
        self.truth = draw.truth
        self.frame = draw.frame
        self._panels: dict[bool, Panel] = {}

    def panel(self, population: bool = False) -> Panel:
        """The draw as a cohort ``Panel`` (with its ``population`` column when asked)."""
        if population not in self._panels:
            extra = {"population": "population"} if population else {}
            self._panels[population] = Panel.from_frame(self.frame, unit="unit", time="time", outcome="y",
                                                        cohort="cohort", **extra)
        return self._panels[population]


def _twfe(rep: Replication, seed: int) -> list[Record]:
    from decrimkit.estimators import did

    r = did.twfe(rep.panel(), cluster="unit")
    lo, hi = r.conf_int()[0]
    return [("twfe", "att", r.att, float(r.se[0]), lo, hi, float(r.p_value[0]), rep.truth["att"])]


def _event_study(rep: Replication, seed: int) -> list[Record]:
    from decrimkit.estimators import did

    tab = did.event_study(rep.panel(), cluster="unit", seed=seed).tidy().set_index("event_time")
    out = []
    for key, truth in rep.truth.items():
        if key.startswith("e") and int(key[1:]) in tab.index:
            row = tab.loc[int(key[1:])]
            out.append(("event_study", key, row["estimate"], row["se"], row["conf_low"], row["conf_high"],
                        row["p_value"], truth))
    return out


def _att_gt(rep: Replication, seed: int) -> list[Record]:
    from decrimkit.estimators import did

    row = did.att_gt(rep.panel(), control="never", n_boot=0, seed=seed).aggregate("simple").tidy().iloc[0]
    return [("att_gt", "att", row["estimate"], row["se"], row["conf_low"], row["conf_high"], row["p_value"],
             rep.truth["att"])]


def _imputation(rep: Replication, seed: int) -> list[Record]:
    from decrimkit.estimators import did

    est, se = did.imputation(rep.panel()).overall
    p = float(2 * stats.norm.sf(abs(est / se)))
    return [("imputation", "att", est, se, est - Z * se, est + Z * se, p, rep.truth["att"])]


def _poisson(rep: Replication, seed: int) -> list[Record]:
    from decrimkit.estimators import did

    row = did.poisson(rep.panel(population=True), exposure="population", cluster="unit").tidy().iloc[0]
    return [("poisson", "log_rr", row["estimate"], row["se"], row["conf_low"], row["conf_high"], row["p_value"],
             rep.truth["log_rr"])]


def _synth_args(rep: Replication) -> tuple[Panel, Any]:
    panel = rep.panel()
    start = int(rep.frame.loc[rep.frame["cohort"] > 0, "cohort"].iloc[0])
    return panel, start


def _scm_placebo(rep: Replication, seed: int) -> list[Record]:
    from decrimkit.estimators import synth

    panel, start = _synth_args(rep)
    fit = synth.scm(panel, treated=0, start=start, v="regression")
    p = float(fit.placebo("space").p_value)
    return [("scm_placebo", "att", float(fit.estimate), NAN, NAN, NAN, p, rep.truth["att"])]


def _ascm_conformal(rep: Replication, seed: int) -> list[Record]:
    from decrimkit.estimators import synth
    from decrimkit.estimators.synth import conformal

    panel, start = _synth_args(rep)
    fit = synth.augmented(panel, treated=0, start=start, progfunc="ridge")
    conf = conformal(fit, alpha=0.05, grid_size=50)
    tab = conf.table
    out = [("ascm_conformal", f"period{j}", row["estimate"], NAN, row["conf_low"], row["conf_high"], row["p_value"],
            rep.truth["att"]) for j, row in enumerate(tab.to_dict("records"))]
    out.append(("ascm_conformal", "joint", float(fit.estimate), NAN, NAN, NAN, conf.p_value_joint, rep.truth["att"]))
    return out


def _sdid(rep: Replication, seed: int) -> list[Record]:
    from decrimkit.estimators import synth

    row = synth.sdid(rep.panel(), se_method="placebo", n_reps=SDID_PLACEBOS, seed=seed).tidy().iloc[0]
    return [("sdid_placebo", "att", row["estimate"], row["se"], row["conf_low"], row["conf_high"], row["p_value"],
             rep.truth["att"])]


def _mc_nnm(rep: Replication, seed: int) -> list[Record]:
    from decrimkit.estimators import synth

    row = synth.mc_nnm(rep.panel(), n_folds=3, n_reps=MC_NNM_PLACEBOS, seed=seed).tidy().iloc[0]
    return [("mc_nnm", "att", row["estimate"], row["se"], row["conf_low"], row["conf_high"], row["p_value"],
             rep.truth["att"])]


ESTIMATORS: dict[str, Callable[[Replication, int], list[Record]]] = {
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
    # 44 periods so that the permutation p-values can reach 5%: the per-period conformal test ranks T0 + 1 = 41
    # residuals (p in steps of 1/41) and the joint test 44 (steps of 1/44). With 16 periods, as first run, the
    # smallest attainable p-values were 1/13 and 1/16: no 5% test could reject, size was 0 by construction.
    Cell("synth_one_treated_null", "factor", {"n_units": 20, "n_periods": 44, "start": 40, "tau": 0.0},
         ("scm_placebo", "ascm_conformal"), 500, 8,
         "20 exchangeable units x 44 periods, 2 AR(1) factors, unit 0 'treated' from period 40, no effect",
         chunk=10),
    Cell("synth_one_treated_effect", "factor", {"n_units": 20, "n_periods": 44, "start": 40, "tau": 1.0},
         ("ascm_conformal",), 500, 8,
         "as synth_one_treated_null with tau = 1 (coverage of the conformal intervals)", chunk=10,
         notes=("the interval is the hull of the accepted points of a 50-point grid, so a truth off the grid loses "
                "up to one grid step at each end; a paired check on 150 replications gave pooled coverage 0.930 "
                "with 50 points and 0.942 with 400 (the null cell, whose truth 0 is on the grid, covers 0.94-0.97)",)),
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
    """Run replications ``reps`` of cell ``name``.

    Returns the records, the failures and the number of warnings by estimator, and ``cpu``: the process
    CPU seconds of each replication by estimator (``"dgp"``: drawing the data and building the panels),
    with ``pid`` naming the worker process, so that ``run.py`` can tell compilation (a kernel's first call
    in a process) from the steady per-replication cost.
    """
    cell = CELL_BY_NAME[name]
    gen = GENERATORS[cell.dgp]
    records: list[tuple[int, *Record]] = []
    failures: dict[str, list[str]] = {}
    warned: dict[str, int] = {}
    cpu: dict[str, list[float]] = {"dgp": [], **{est: [] for est in cell.estimators}}
    for r in reps:
        began = time.process_time()
        rep = Replication(gen(np.random.default_rng([seed, cell_key(name), r]), **cell.params))
        cpu["dgp"].append(time.process_time() - began)
        for est in cell.estimators:
            began = time.process_time()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    recs = ESTIMATORS[est](rep, seed + r)
                except DecrimkitError as exc:
                    failures.setdefault(est, []).append(f"rep {r}: {type(exc).__name__}: {exc}"[:300])
                    recs = []
            cpu[est].append(time.process_time() - began)
            # the few-treated cells measure the large-sample methods' coverage on purpose: that warning is expected
            caught = [w for w in caught if not issubclass(w.category, FewTreatedWarning)]
            if caught:
                warned[est] = warned.get(est, 0) + len(caught)
            records.extend((r, *(x if isinstance(x, str) else float(x) for x in rec)) for rec in recs)
    return {"cell": name, "records": records, "failures": failures, "warnings": warned, "cpu": cpu,
            "pid": os.getpid()}


def run_group(items: list[tuple[str, list[int]]], seed: int) -> list[dict[str, Any]]:
    """Run several ``(cell, reps)`` chunks in one task (the quick run groups cells that share estimators,
    so each kernel is compiled by one worker only)."""
    return [run_chunk(name, reps, seed) for name, reps in items]


def run_sbc_task(n_reps: int, seed: int, quick: bool) -> dict[str, Any]:
    """Simulation-based calibration of the Bayesian hierarchical pooling model (bayes.pool).

    Full run: 500 warm-up and 500 kept NUTS draws per replication; quick run: 150 and 150. Returns the
    per-parameter table, the coverage pooled over the model-level effects ``mu_model`` and whether it lies
    in [0.85, 0.95] (issue 6), plus the CPU seconds the task took.
    """
    from decrimkit.estimators.bayes.calibration import run_sbc

    began = time.process_time()
    kw = {"tune": 150, "draws": 150} if quick else {"tune": 500, "draws": 500}
    res = run_sbc(n_reps, seed=seed, prob=0.9, **kw)
    return {"table": res.table.to_dict("records"), "prob": res.prob, "options": dict(res.spec.options),
            "model_coverage": float(res.model_coverage), "passes": bool(res.passes()),
            "cpu": time.process_time() - began, "pid": os.getpid()}
