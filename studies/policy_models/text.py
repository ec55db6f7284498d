"""Report text of the four-policy-models study: design rules, power, pooling, limits (computed values only)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .data import MODEL_LABELS
from .power import ESTIMATOR_LABELS

__all__ = ["sections"]


def _mde_lines(mde: pd.DataFrame) -> str:
    lines = []
    for m, g in mde.groupby("model", sort=False):
        parts = []
        for r in g.itertuples(index=False):
            val = f"{r.mde_log:.2f} ({r.mde_pct:.0f}%)" if np.isfinite(r.mde_log) else f"> {r.max_delta:g}"
            parts.append(f"{ESTIMATOR_LABELS.get(r.estimator, r.estimator)} {val}, size {r.size:.2f}")
        lines.append(
            f"- **{MODEL_LABELS.get(m, m)}** ({int(g['adopters'].iloc[0])} placebo adopters, "
            f"{int(g['reps'].max())} replications): " + "; ".join(parts)
        )
    return "\n".join(lines)


def _bayes_lines(summary: pd.DataFrame) -> str:
    b = summary[summary["estimator"] == "hierarchical_did"]
    if not len(b):
        return "No Bayesian replication ran."
    lines = ["Bayesian hierarchical DiD (power = HDI excludes 0):"]
    for r in b.itertuples(index=False):
        lines.append(
            f"- {MODEL_LABELS.get(r.model, r.model)}, delta {r.delta:g}: {int(r.reps_used)} of {int(r.reps_run)} "
            f"replications usable; power {r.power:.2f} (MC SE {r.power_mcse:.2f}), coverage {r.coverage:.2f} "
            f"(MC SE {r.coverage_mcse:.2f}), bias {r.bias:.3f} (MC SE {r.bias_mcse:.3f}); "
            f"share passing the convergence gate {getattr(r, 'share_converged', float('nan')):.2f}"
        )
    return "\n".join(lines)


def sections(
    *,
    cfg: Any,
    summary: pd.DataFrame,
    rows: pd.DataFrame,
    cohorts: pd.DataFrame,
    sp: Any,
    mde: pd.DataFrame,
    designs: list,
    study_status: pd.DataFrame,
    hdid_warn: str,
    pool_warn: str,
    n_pool: int,
) -> list[tuple[str, str]]:
    """(title, markdown) pairs in report order."""
    used = int(rows["qualifies"].sum())
    by_status = rows["status"].value_counts()
    status_txt = ", ".join(f"{k}: {v}" for k, v in by_status.items())
    excluded = "; ".join(f"{r.state} ({r.reason})" for r in sp.excluded.itertuples(index=False))
    treated = ", ".join(
        f"{r.state} {r.cohort} ({r.jurisdiction}, {r.confidence})" for r in sp.treated.itertuples(index=False)
    )
    adopt = "; ".join(f"{MODEL_LABELS[d.model]}: {', '.join(map(str, d.cohorts))}" for d in designs)
    studies = "; ".join(f"{r.study}: {r.status}" for r in study_status.itertuples(index=False))
    return [
        (
            "Data and question",
            f"""
The policy registry codes {len(rows)} prosecutor and state policy changes (hand-coded for this project;
see its PROVENANCE.md) into Rouhani et al.'s four de facto models plus de jure reform. The only outcome
bundled for every state is CDC VSRR provisional overdose deaths: calendar-year counts are the December
12-month-ending windows (2015-2024; New York = VSRR `NY` + `YC`; PA, RI and SC are absent), divided by
Census July-1 populations (Vintage 2019 to 2019, Vintage 2024 from 2020: a level seam shared by all
states). Effects are on the **log overdose death rate** (log rate ratio; `100 (exp(b) - 1)` is the
percent change).""",
        ),
        (
            "Rules: from registry rows to analysis units",
            f"""
- **R1 scope**: `[cannabis-only]` rows are excluded (outside Rouhani et al.'s scope); sensitivity `with_cannabis_only`.
- **R2 confidence**: the main analysis uses medium- and high-confidence rows; low-confidence rows enter
  the `with_low_confidence` sensitivity only (PROVENANCE.md: treat them as leads to verify).
- **R3** undated rows are listed but not used.
- **R4 several rows per jurisdiction**: within a model, the jurisdiction's first qualifying policy defines its cohort.
- **R5 annual exposure**: the cohort is the first calendar year with at least six months in force
  (start on or before 1 July: that year; later: the next).
- **R6 reversals**: adoption is intention-to-treat (a state stays treated after its policy ended;
  Oregon's HB 4002 in September 2024 leaves 2024 coded treated; sensitivity `panel_to_2023` stops in 2023).
  A policy in force under six months in every calendar year has no annual cohort: Washington's
  State v. Blake spell (2021-02-25 to 2021-05-13) drops Washington from the main panel; `washington_itt` keeps it as a 2021 cohort.
- **R7 geography**: only statewide rows treat a state. A county or city policy moves its state's total
  by an unknown share, so that state is neither a clean treated nor a clean comparison unit and is
  dropped. **County policies (all four de facto models) cannot be evaluated with state-level outcomes**;
  the study reports them and asks only what a state-level series could detect (power, below).
- **R8 comparison states** have no qualifying registry row. The registry covers 14 states selectively;
  absence is not proof that a state had no policy.

Registry rows by status: {status_txt} ({used} used). Main state panel: treated {treated};
{len(sp.controls)} comparison states; left out: {excluded}. Vermont's Chittenden County buprenorphine
policy (2018) precedes its statewide change, so Vermont's pre-period is partly exposed.""",
        ),
        (
            "Design-based power",
            f"""
For each model the registry's in-window adoption years ({adopt}) are given at random to states with
no registry row at all ({n_pool} states: real 2015-2024 series, real noise). A known effect `delta`
(log rate ratio, constant after adoption) is added to those states' log rates (and `exp(delta)` times
their death counts for the Bayesian model) and each estimator is run with the other pool states as
never-treated comparisons. Replications: **{cfg.n_reps} per model** for Callaway-Sant'Anna (outcome
regression, analytic SE), imputation (BJS conservative SE) and synthetic DiD (jackknife SE, placebo SE
with one adopter, {cfg.sdid_reps} placebo draws) at effects {", ".join(f"{d:g}" for d in cfg.deltas)};
**{cfg.bayes_reps} replications** for the Bayesian hierarchical DiD (`bayes.hierarchical_did`'s model:
negative-binomial deaths, population offset, AR(1) state deviations, its default priors; models: {", ".join(cfg.bayes_models)};
effects {", ".join(f"{d:g}" for d in cfg.bayes_deltas)}; {cfg.bayes_sampling["chains"]} NUTS chains of
{cfg.bayes_sampling["draws"]} draws after {cfg.bayes_sampling["tune"]} warm-up steps per replicate; the
95% HDI excluding 0 is the test). The Bayesian model is compiled once per design and every replicate is
sampled in one vectorised call (the estimator's own PyMC graph with the data as inputs, blackjax NUTS),
because a separate `hierarchical_did` call recompiles the model each time (about 20 CPU seconds a fit).
It runs for {", ".join(cfg.bayes_models)} only: the study fits the hierarchical DiD to statewide (de jure)
adopters, and each further model costs one more compilation; {cfg.bayes_reps} replications at two effect
sizes give coverage and power with Monte Carlo standard errors but no MDE.
The same placebo assignment is used across effect sizes; each replicate is seeded from the study seed,
model and replicate index, so the numbers do not depend on scheduling. The grid runs locally by default
(a Dask LocalCluster with two worker processes; `--quick` runs in-process) and on any Dask cluster
with `--scheduler ADDRESS`.

Monte Carlo uncertainty (power-grid table): bias ± `sd(error)/sqrt(R)`, coverage and power ±
`sqrt(p(1-p)/R)`, with `R` the replications used (`reps_used`). With {cfg.n_reps} replications a coverage of
0.95 is known to about ±{1.96 * (0.95 * 0.05 / cfg.n_reps) ** 0.5:.2f} and a power of 0.8 to about
±{1.96 * (0.8 * 0.2 / cfg.n_reps) ** 0.5:.2f} (95%); with {cfg.bayes_reps} Bayesian replications, to
±{1.96 * (0.95 * 0.05 / cfg.bayes_reps) ** 0.5:.2f} and ±{1.96 * (0.8 * 0.2 / cfg.bayes_reps) ** 0.5:.2f}.

Minimum detectable effect at 80% power (two-sided 5%; linear interpolation on the grid) and the
rejection rate at `delta = 0` (size):

{_mde_lines(mde)}

A size above 0.05 means the estimator's nominal test over-rejects with so few treated states and
serially correlated real noise; its MDE is then optimistic (flagged in the MDE table above 0.10).
{_bayes_lines(summary)}

The MDE is a **statewide** effect: a county
policy's effect on its state's total would be diluted by the county's share of state deaths.""",
        ),
        (
            "Pooling",
            f"""
`bayes.hierarchical_did` is fit to the main state panel (negative-binomial deaths, log-population
offset, state and year effects, AR(1) state deviations; priors in its docstring). Only de jure reform has statewide adopters,
so its model-level effect rests on {len(sp.treated)} states and the across-model mean on its prior.
{("Convergence: " + hdid_warn + ".") if hdid_warn else "The sampler passed the convergence gate."}

`bayes.pool` pools the single-site studies' published estimates, converted to log rate ratios
(conversions in the study-inputs table; Baltimore's outcome is police drug arrests, Oregon's overdose
deaths, so the overall mean mixes outcomes). Studies: {studies}.
{("Convergence: " + pool_warn + ".") if pool_warn else ""}
Every model-level posterior with one member is that member's estimate shrunk toward the prior; read
P(effect < 0) as a summary of one or two studies, not of a policy model.""",
        ),
        (
            "Limits",
            """
- County and city policies, which are most of the registry, are not evaluated: no county outcome series is bundled.
- VSRR counts are provisional and by place of occurrence; no drug-specific (fentanyl) series is available,
  so the fentanyl wave is part of the noise the power analysis uses, not adjusted for.
- The registry is a working list; dates marked derived and low-confidence rows need verification.
- Quick mode (`--quick`) uses very few replications and short chains: its numbers are for checking that the pipeline runs.""",
        ),
    ]
