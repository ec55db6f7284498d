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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

import decrimkit  # noqa: F401  (float64 JAX)
from decrimkit import Panel
from decrimkit.errors import DecrimkitError, FewTreatedWarning

from . import dgp, realdata  # type: ignore[import-not-found]

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
    # per inference method, keywords that override _few_kw's in this cell (e.g. {"randomization": {"max_exact": 100}})
    inference_kw: dict[str, dict[str, Any]] = field(default_factory=dict)


# ------------------------------------------------------------------ estimator adapters (one draw -> records)
class Replication:
    """One draw and its panels, built once and shared by the estimators of the cell."""

    def __init__(self, draw: dgp.Draw) -> None:
        self.draw = draw
        self.truth = draw.truth
        self.frame = draw.frame
        self._panels: dict[bool, Panel] = {}
        self.inference_kw: dict[str, dict[str, Any]] = {}  # the cell's overrides of _few_kw (set by run_chunk)

    def panel(self, population: bool = False) -> Panel:
        """The draw as a cohort ``Panel`` (with its ``population`` column when asked)."""
        if population not in self._panels:
            extra = {"population": "population"} if population else {}
            self._panels[population] = Panel.from_frame(self.frame, unit="unit", time="time", outcome="y",
                                                        cohort="cohort", **extra)
        return self._panels[population]


class RealReplication(Replication):
    """A real-data placebo draw: ``panel(population=True)`` is the rate outcome ``y`` with its population
    declared (not a count; Ferman-Pinto reads the population), ``count_panel()`` the deaths with population."""

    def panel(self, population: bool = False) -> Panel:
        if population not in self._panels:
            extra = {"population": "population", "count": False} if population else {}
            self._panels[population] = Panel.from_frame(self.frame, unit="unit", time="time", outcome="y",
                                                        cohort="cohort", **extra)
        return self._panels[population]

    def count_panel(self) -> Panel:
        if "count" not in self.__dict__:
            self.__dict__["count"] = Panel.from_frame(self.frame, unit="unit", time="time", outcome="deaths",
                                                      cohort="cohort", population="population")
        return self.__dict__["count"]


def _twfe(rep: Replication, seed: int) -> list[Record]:
    from decrimkit.estimators import did

    r = did.twfe(rep.panel(), cluster="unit")
    lo, hi = r.conf_int().iloc[0]
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


# ------------------------------------------------------------------ real-data placebo adapters
# Inner draws of the few-treated methods in the placebo cells. A randomization test is exact with any number
# of random permutations (the observed assignment is one of n_perm + 1 exchangeable draws), so 99 draws keep
# its size at 5% exactly (p in steps of 0.01) at a tenth of the default's cost; Conley-Taber and Ferman-Pinto
# enumerate every tuple of controls when there are at most 2000 (one treated unit; two treated states) and
# otherwise use 199 random tuples (their measured size is that of the 199-draw version); the wild bootstrap
# uses 199 Webb-weight draws.
PLACEBO_PERM = 99
# the monthly cells enumerate reassignments only up to this many (one state: 37); with two states the 1,332
# reassignments of the two adoption months would each refit a 37 x 120 panel (about 10 CPU s a law for TWFE
# alone, measured 2026-12-07), so there the test uses PLACEBO_PERM seeded random ones: exact in size all the same
PLACEBO_EXACT_MONTHLY = 100
PLACEBO_DRAWS = 199  # with B draws a 5% equal-tailed test rejects when at most floor(0.025 B) fall beyond the
# estimate in a tail; under the method's own assumptions the estimate ranks uniformly among B + 1 values, so its
# size is 2 (floor(0.025 B) + 1) / (B + 1): exactly 5% for B = 199 (and 999), 6% for B = 99
PLACEBO_BOOT = 199
PLACEBO_SDID = 50      # placebo draws behind SDID's SE (normal interval on 49 df: 0.944 at best, see notes above)
# the Bayesian placebo fits: hierarchical_did's model and target_accept (0.9), through hierarchical_did_batch (the
# package's NUTS engine, one compile per variant and worker), but 2 chains x (300 warm-up + 250 kept draws) instead of
# the default 4 x (1000 + 1000): the AR(1) model's NUTS trajectories run long, about 26 CPU s a fit at these
# settings (4.7 without the AR(1) deviations; measured 2026-12-07), so the defaults would cost hours. A 95% HDI from 500 draws
# still places its ends within a small fraction of a posterior sd; fits this short fail the package's convergence
# gate (bulk ESS < 400), and each failure is counted in the cell's warnings column.
PLACEBO_BAYES = {"chains": 2, "tune": 300, "draws": 250, "target_accept": 0.9}


def _few_kw(method: str) -> dict[str, Any]:
    if method == "randomization":
        return {"n_perm": PLACEBO_PERM}
    if method in ("conley_taber", "ferman_pinto"):
        return {"n_perm": PLACEBO_DRAWS}
    if method == "wild":
        return {"n_boot": PLACEBO_BOOT, "weights_dist": "webb"}
    return {}


def _tidy_row(result: Any) -> dict[str, float]:
    """estimate, se, conf_low, conf_high, p_value of a result's first term (the result contract's tidy())."""
    row = result.tidy(alpha=0.05).iloc[0]
    return {k: float(row[k]) for k in ("estimate", "se", "conf_low", "conf_high", "p_value")}


def _real_did(estimator: str, method: str) -> Callable[[Replication, int], list[Record]]:
    """Adapter for one DiD estimator under one ``inference=`` method on a real placebo panel (target: the ATT)."""

    def run(rep: Replication, seed: int) -> list[Record]:
        from decrimkit.estimators import did

        panel = rep.panel(population="population" in rep.frame.columns)  # simulated DGPs have no population
        kw = {"inference": method, "seed": seed, **_few_kw(method), **rep.inference_kw.get(method, {})}
        if estimator == "twfe":
            r = _tidy_row(did.twfe(panel, cluster="unit", **kw))
        elif estimator == "att_gt":
            r = _tidy_row(did.att_gt(panel, control="never", n_boot=0, **kw).aggregate("simple"))
        elif estimator == "imputation":
            res = did.imputation(panel, **kw)
            est, p, lo, hi, _ = res.overall_inference(0.05)
            r = {"estimate": est, "se": res.overall[1], "conf_low": lo, "conf_high": hi, "p_value": p}
        else:  # pragma: no cover - the grid names only the estimators above
            raise KeyError(estimator)
        return [(f"{estimator}/{method}", "att", r["estimate"], r["se"], r["conf_low"], r["conf_high"], r["p_value"],
                 rep.truth["att"])]

    return run


def _real_poisson(method: str) -> Callable[[Replication, int], list[Record]]:
    def run(rep: Replication, seed: int) -> list[Record]:
        from decrimkit.estimators import did

        kw = {"inference": method, "seed": seed, **_few_kw(method), **rep.inference_kw.get(method, {})}
        r = _tidy_row(did.poisson(rep.count_panel(), exposure="population", cluster="unit", **kw))
        return [(f"poisson/{method}", "log_rr", r["estimate"], r["se"], r["conf_low"], r["conf_high"], r["p_value"],
                 rep.truth["log_rr"])]

    return run


def _real_scm(rep: Replication, seed: int) -> list[Record]:
    from decrimkit.estimators import synth

    treated = rep.frame.loc[rep.frame["cohort"] > 0, ["unit", "cohort"]].drop_duplicates()
    if len(treated) != 1:
        raise DecrimkitError("scm placebo inference needs exactly one treated unit")  # never in the grid
    fit = synth.scm(rep.panel(population=True), treated=treated["unit"].iloc[0], start=int(treated["cohort"].iloc[0]),
                    v="regression")
    p = float(fit.placebo("space").p_value)
    return [("scm/placebo", "att", float(fit.estimate), NAN, NAN, NAN, p, rep.truth["att"])]


def _real_sdid(rep: Replication, seed: int) -> list[Record]:
    from decrimkit.estimators import synth

    r = _tidy_row(synth.sdid(rep.panel(population=True), se_method="placebo", n_reps=PLACEBO_SDID, seed=seed))
    return [("sdid/placebo", "att", r["estimate"], r["se"], r["conf_low"], r["conf_high"], r["p_value"],
             rep.truth["att"])]


def _real_bayes(deviations: str) -> Callable[[list[Replication], list[int]], list[list[Record]]]:
    """``bayes.hierarchical_did`` (negative binomial, population offset) on the placebo deaths; the ATT's 95% HDI.

    Batched: the replications of a chunk are fit together by ``hierarchical_did_batch`` (the same model,
    its data as inputs of one compiled program, the package's NUTS engine; each replication with the
    seed ``hierarchical_did`` would take), so a worker compiles each variant once. A fit that fails the
    package's convergence gate still counts (its interval is scored), and its ``ConvergenceWarning`` is
    counted in the cell's warnings column, never hidden.
    """

    def run(reps: list[Replication], seeds: list[int]) -> list[list[Record]]:
        from decrimkit.estimators import bayes

        panels = [rep.count_panel() for rep in reps]
        models = [{u: "placebo" for u in rep.frame.loc[rep.frame["cohort"] > 0, "unit"].unique()} for rep in reps]
        posts = bayes.hierarchical_did_batch(panels, policy_model=models, seeds=seeds, deviations=deviations,
                                       batch_size=len(reps), **PLACEBO_BAYES)
        out = []
        for rep, post in zip(reps, posts):
            tab = post.tidy(alpha=0.05)
            row = tab[(tab["level"] == "overall") & (tab["term"] == "att")].iloc[0]
            # judged on its interval (the HDI), not on a p-value: the Bayesian model reports none
            out.append([(f"bayes_hdid/{deviations}", "att", float(row["estimate"]), float(row["se"]),
                         float(row["conf_low"]), float(row["conf_high"]), NAN, rep.truth["att"])])
        return out

    return run


REAL_DID = {f"{est}/{m}": _real_did(est, m)
            for est in ("twfe", "att_gt", "imputation")
            for m in ("cluster", "wild", "randomization", "conley_taber", "ferman_pinto")}
REAL_OTHER = {"poisson/cluster": _real_poisson("cluster"), "poisson/randomization": _real_poisson("randomization"),
              "scm/placebo": _real_scm, "sdid/placebo": _real_sdid}
# estimators that fit every replication of a chunk in one call: (replications, seeds) -> records per replication
BATCHED: dict[str, Callable[[list[Replication], list[int]], list[list[Record]]]] = {
    "bayes_hdid/none": _real_bayes("none"), "bayes_hdid/ar1": _real_bayes("ar1")}

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
    **REAL_DID,
    **REAL_OTHER,
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
    Cell("did_few_treated_methods", "staggered", {"cohorts": (4,), "n_treated": (3,)},
         ("twfe/wild", "twfe/randomization", "twfe/conley_taber", "att_gt/conley_taber", "imputation/randomization",
          "imputation/conley_taber"), 500, 0,
         "as did_few_treated (3 of 40 treated, tau = 1): the few-treated inference methods of issue 21 (Ferman-Pinto "
         "needs populations, which this DGP does not have: see the placebo cells)", chunk=10),
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

# ------------------------------------------------------------------ real-data placebo cells (issue 21 part 6)
# Every inference method of the DiD estimators, the synthetic-control family's one-treated inference and the
# Bayesian hierarchical DiD on placebo laws placed on real overdose series (validation/realdata.py). A method
# an estimator refuses in a design (cluster-robust variance with one treated cluster) is still listed: its
# DesignError is counted as a failure of every replication, which is the package refusing an invalid p-value.
_DID_ALL = tuple(f"{e}/{m}" for e in ("twfe", "att_gt", "imputation")
                 for m in ("cluster", "wild", "randomization", "conley_taber", "ferman_pinto")
                 if not (m == "wild" and e != "twfe"))  # the wild bootstrap is on did.twfe only
# one treated unit: did.imputation's overall ATT is TWFE's (same estimate and intervals in every replication
# checked), so it is scored from two treated units on
_ONE = (*(m for m in _DID_ALL if not m.startswith("imputation/")), "poisson/cluster", "poisson/randomization",
        "scm/placebo")
# att_gt's randomization test refits every (g, t) cell per permutation; it is the policy-models study's headline
# (with imputation's), so it is scored on the annual state designs; on the monthly ones (120 periods, hundreds of
# (g, t) cells a permutation) it is left out for cost
_FEW = (*_DID_ALL, "poisson/cluster")
_FEW_MONTHLY = tuple(m for m in _FEW if m != "att_gt/randomization")
_PLACEBO_NOTE = ("real overdose series with a placebo law (true effect 0): the rejection rate is the size of "
                 "the 5% test under the data's own serial correlation and heteroskedasticity",)
_BAYES_NOTE = ("fits at the cell's short settings (2 chains x 250 draws after 300 warm-up) fail the package's "
               "convergence gate (the warn column counts the warnings: bulk ESS < 400, r-hat > 1.01, divergences), "
               "so each HDI carries more Monte Carlo error than a fit at the defaults (4 x 1000); coverage is that "
               "of the HDIs users would get at these settings; bayes_hdid/ar1 is hierarchical_did's default")
_STATE = "37 states without a statewide policy, {what}; {n} placebo state{s} (adoption {window}), {scale}"
# why the SCM placebo-in-space test (post/pre RMSPE ratio rank) rejected none of the one-unit laws: measured on all
# 185 state laws (and spot-checked on county laws), not a code defect but the statistic's degeneracy in these panels
_SCM_NOTE_STATE = (
    "scm/placebo rejects no law by construction, not by a defect: with 36 donors and only 3-7 pre-period years a "
    "convex combination of donors reproduces most states' pre-period exactly (pre-RMSPE at rounding level), so "
    "those runs' post/pre RMSPE ratios are infinite and tie at the top of the ranking. In every one of the 185 "
    "laws at least 3 of the 37 runs fit exactly (22-26 of 37 when the law starts in 2018, 3-4 when it starts in 2022), so the "
    "rank p-value is at least 3/37 = 0.081 (smallest observed: 4/37 = 0.108) and the 5% test cannot reject; "
    "the RMSPE-ratio test needs more pre-periods than donors (or fewer donors) to reach 5%")
_SCM_NOTE_COUNTY = (
    "scm/placebo: the same degeneracy as in the one-state cell: with 100 donors and 4-10 pre-period years "
    "several placebo runs (3-7 of 101 in the laws checked, 73 with a 2016 start) fit their pre-period exactly and "
    "tie at an infinite RMSPE ratio, so the rank p-value can reach 0.05 only when at most 4 other runs tie there; read its "
    "size as conservative by construction")


_PERM_NOTE_MONTHLY_2 = (
    f"randomization rows: {PLACEBO_PERM} seeded random reassignments of the two adoption months (of 1,332; 666 "
    "when both fall in one month), not all of them as in the two-state annual cell, for cost; a Monte Carlo "
    "randomization test is exact in size (the observed assignment is one of 100 exchangeable draws), so only "
    "the p-values' resolution differs")


N_STATE_YEAR_LAWS = 185  # 37 comparison states x adoption years 2018-2022 (checked in tests against realdata)


def _placebo_cells() -> tuple[Cell, ...]:
    out = []
    for freq, source, window in (("annual", "state_annual", "years 2018-2022"),
                                 ("monthly", "state_monthly", "months 2017-01..2022-12")):
        what = ("calendar years 2015-2024" if freq == "annual"
                else "months 2015-01..2024-12 (12-month-ending counts, a moving sum)")
        for n in (1, 2, 4, 8):
            outcome = "rate" if n == 1 else "log_rate"  # Oregon's scale for one treated state, policy models' else
            scale = "deaths per 100,000" if outcome == "rate" else "log deaths per 100,000"
            monthly = freq == "monthly"
            # one state a year: only 37 x 5 = 185 distinct laws exist, so all are enumerated once (exact)
            exhaustive = n == 1 and not monthly
            params = {"source_name": source, "n_treated": n, "outcome": outcome, **({"exhaustive": True} if exhaustive else {})}
            out.append(Cell(f"placebo_state_{freq}_{n}", "placebo", params,
                            _ONE if n == 1 else (_FEW_MONTHLY if monthly else _FEW), N_STATE_YEAR_LAWS if exhaustive else 500,
                            2 if n in (1, 4) and not monthly else 0,
                            _STATE.format(what=what, n=n, s="" if n == 1 else "s", window=window, scale=scale),
                            chunk=10, notes=_PLACEBO_NOTE + ((_SCM_NOTE_STATE,) if exhaustive else ())
                            + ((_PERM_NOTE_MONTHLY_2,) if monthly and n == 2 else ()),
                            inference_kw={"randomization": {"max_exact": PLACEBO_EXACT_MONTHLY}} if monthly else {}))
    out.append(Cell("placebo_county_1", "placebo", {"source_name": "county_annual", "n_treated": 1, "outcome": "rate"},
                    _ONE, 500, 2,
                    "one placebo county (adoption 2014-2020) and its 100 nearest eligible counties in 2010 population, "
                    "2010-2022, counties fully reported every year (no suppressed count used); deaths per 100,000",
                    chunk=10, notes=(*_PLACEBO_NOTE, _SCM_NOTE_COUNTY)))
    for src, label in (("state_annual", "placebo_state_annual_1"), ("county_annual", "placebo_county_1")):
        exhaustive = src == "state_annual"
        params = {"source_name": src, "n_treated": 1, "outcome": "rate", **({"exhaustive": True} if exhaustive else {})}
        out.append(Cell(f"{label}_sdid", "placebo", params, ("sdid/placebo",), N_STATE_YEAR_LAWS if exhaustive else 500, 0,
                        f"as {label}, synthetic DiD with its placebo standard error ({PLACEBO_SDID} placebo draws)",
                        chunk=10, notes=_PLACEBO_NOTE))
    out.append(Cell("placebo_state_annual_4_bayes", "placebo",
                    {"source_name": "state_annual", "n_treated": 4, "outcome": "log_rate"},
                    ("bayes_hdid/none", "bayes_hdid/ar1"), 100, 1,
                    "as placebo_state_annual_4 (4 placebo states), Bayesian hierarchical DiD (negative binomial deaths, "
                    "population offset) without and with AR(1) unit deviations: 95% HDI coverage of 0",
                    chunk=2, notes=(*_PLACEBO_NOTE, _BAYES_NOTE)))
    return tuple(out)


CELLS = CELLS + _placebo_cells()

# The inference each study reports as its headline, and the placebo cell whose design matches it (issue 21 part 7):
# (study, what the study reports, cell, method). The README checks each against the verdicts and replications.
HEADLINES: tuple[tuple[str, str, str, str], ...] = (
    ("oregon", "DiD (TWFE), Conley-Taber interval and p; one state, annual rates", "placebo_state_annual_1",
     "twfe/conley_taber"),
    ("policy_models", "Callaway-Sant'Anna (simple ATT), randomization inference; 1-4 states, annual log rates",
     "placebo_state_annual_4", "att_gt/randomization"),
    ("policy_models", "imputation (overall ATT), randomization inference; 1-4 states, annual log rates",
     "placebo_state_annual_4", "imputation/randomization"),
    ("prosecutors", "SCM placebo-in-space rank p; one county (the study chooses V by pre-period MSPE, the cell by "
     "regression)", "placebo_county_1", "scm/placebo"),
    ("prosecutors", "SDID, placebo SE, normal interval; one county", "placebo_county_1_sdid", "sdid/placebo"),
    ("oregon", "SDID, placebo SE, normal interval; one state", "placebo_state_annual_1_sdid", "sdid/placebo"),
)
CELL_BY_NAME = {c.name: c for c in CELLS}
GENERATORS = {"staggered": dgp.staggered, "counts": dgp.counts, "factor": dgp.factor, "placebo": realdata.placebo}


def cell_key(name: str) -> int:
    """A stable 32-bit key for a cell name (part of every replication's seed)."""
    return zlib.crc32(name.encode("utf-8"))


def cell_estimators(name: str, only: Sequence[str] | None = None) -> tuple[str, ...]:
    """The estimators of cell ``name``, restricted to ``only`` when given (in the cell's order)."""
    ests = CELL_BY_NAME[name].estimators
    return ests if only is None else tuple(e for e in ests if e in set(only))


def run_chunk(name: str, reps: list[int], seed: int, estimators: Sequence[str] | None = None) -> dict[str, Any]:
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
    ests = cell_estimators(name, estimators)
    cpu: dict[str, list[float]] = {"dgp": [], **{est: [] for est in ests}}
    drawn: list[Replication] = []
    for r in reps:
        began = time.process_time()
        kind = RealReplication if cell.dgp == "placebo" else Replication
        extra = {"rep": r} if cell.params.get("exhaustive") else {}
        rep = kind(gen(np.random.default_rng([seed, cell_key(name), r]), **cell.params, **extra))
        rep.inference_kw = cell.inference_kw
        cpu["dgp"].append(time.process_time() - began)
        for est in ests:
            if est in BATCHED:
                continue
            began = time.process_time()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    recs = ESTIMATORS[est](rep, seed + r)
                except DecrimkitError as exc:
                    failures.setdefault(est, []).append(f"rep {r}: {type(exc).__name__}: {exc}"[:300])
                    recs = []
            cpu[est].append(time.process_time() - began)
            _count_warnings(warned, est, caught)
            records.extend((r, *(x if isinstance(x, str) else float(x) for x in rec)) for rec in recs)
        if any(est in BATCHED for est in ests):
            drawn.append(rep)
    for est in (e for e in ests if e in BATCHED):
        # one call for the chunk; its CPU time is shared equally by the replications (compilation included:
        # a worker compiles each batched estimator once, on its first chunk)
        began = time.process_time()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                per_rep = BATCHED[est](drawn, [seed + r for r in reps])
            except DecrimkitError as exc:  # the batch failed as a whole: every replication counts as failed
                failures.setdefault(est, []).extend(f"rep {r}: {type(exc).__name__}: {exc}"[:300] for r in reps)
                per_rep = [[] for _ in reps]
        cpu[est].extend([(time.process_time() - began) / len(reps)] * len(reps))
        _count_warnings(warned, est, caught)
        records.extend((r, *(x if isinstance(x, str) else float(x) for x in rec)) for r, recs in zip(reps, per_rep)
                       for rec in recs)
    return {"cell": name, "records": records, "failures": failures, "warnings": warned, "cpu": cpu,
            "pid": os.getpid()}


def _count_warnings(warned: dict[str, int], est: str, caught: list[Any]) -> None:
    # the few-treated cells measure the large-sample methods' coverage on purpose: that warning is expected
    caught = [w for w in caught if not issubclass(w.category, FewTreatedWarning)]
    if caught:
        warned[est] = warned.get(est, 0) + len(caught)


def run_group(items: list[tuple[str, list[int], tuple[str, ...] | None]], seed: int,
              estimators: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Run several ``(cell, reps, only)`` chunks in one task (the quick run groups cells that share estimators,
    so each kernel is compiled by one worker only). ``only`` (None: all) limits a chunk to some of its cell's
    estimators, within the run's ``estimators``."""
    out = []
    for name, reps, only in items:
        ests = only if estimators is None else (estimators if only is None else [e for e in only if e in estimators])
        if only is not None and not cell_estimators(name, ests):
            continue  # a chunk split off for estimators that this run does not run
        out.append(run_chunk(name, reps, seed, ests))
    return out


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
