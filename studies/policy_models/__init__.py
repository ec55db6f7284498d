"""Four-policy-models study: what each de facto decriminalization model can show, across the registry.

``decrimkit study policy-models [--quick] [--seed N] [--out DIR] [--scheduler ADDRESS]`` writes
``outputs/policy-models/``:

1. a staggered-adoption timeline of every registry row by model (confidence as opacity, ended
   policies as bar ends);
2. the analysis panel the registry implies, under rules R1-R8 stated in
   :mod:`~decrimkit.studies.policy_models.panel` (cannabis-only rows out, low-confidence rows as
   sensitivity, first qualifying policy defines the cohort, reversals as intention-to-treat, only
   statewide policies treat a state), and the state-level estimates for statewide (de jure) policies;
3. design-based power per model on real untreated state overdose series
   (:mod:`~decrimkit.studies.policy_models.power`), run on Dask;
4. Bayesian pooling (:mod:`~decrimkit.studies.policy_models.pooling`): ``bayes.hierarchical_did`` on
   the statewide panel and ``bayes.pool`` on the single-site studies' estimates, by model.

Data: ``policy_registry``, ``cdc_vsrr_overdose`` (calendar-year counts from the December
12-month-ending windows), ``state_population``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from decrimkit.options import POLICY_MODELS
from decrimkit.progress import stages

from . import figures, pooling
from . import panel as cohort_rules
from . import power as power_grid
from .text import sections

__all__ = ["run", "Settings", "SETTINGS"]

log = logging.getLogger("decrimkit.studies.policy_models")


@dataclass(frozen=True)
class Settings:
    """Replication counts and grids of one run mode."""

    n_reps: int
    deltas: tuple[float, ...]
    sdid_reps: int
    bayes_reps: int
    bayes_deltas: tuple[float, ...]
    bayes_models: tuple[str, ...]
    bayes_sampling: dict[str, int]
    chunk: int
    bayes_chunk: int
    scheduler: str | None


SETTINGS = {
    False: Settings(
        n_reps=40,
        deltas=power_grid.GRID,
        sdid_reps=30,
        bayes_reps=20,
        bayes_deltas=(0.0, 0.2),
        bayes_models=("de_jure",),
        bayes_sampling={"chains": 2, "draws": 300, "tune": 300},
        chunk=5,
        bayes_chunk=10,
        scheduler=None,
    ),
    True: Settings(
        n_reps=3,
        deltas=(0.0, 0.2, 0.6),
        sdid_reps=10,
        bayes_reps=1,
        bayes_deltas=(0.2,),
        bayes_models=("de_jure",),
        bayes_sampling={"chains": 2, "draws": 100, "tune": 100},
        chunk=3,
        bayes_chunk=1,
        scheduler="synchronous",
    ),
}
SPECS = {
    "main": cohort_rules.Rules(),
    "with_low_confidence": cohort_rules.Rules(min_confidence="low"),
    "with_cannabis_only": cohort_rules.Rules(include_cannabis=True),
    "washington_itt": cohort_rules.Rules(reversal_itt=True),
    "panel_to_2023": cohort_rules.Rules(last_year=2023),
}


def _state_fit(estimator: str, panel: Any, *, seed: int) -> tuple[float, float, float, float, str]:
    """(estimate, se, conf_low, conf_high, inference) of one frequentist estimator on a state panel (log rate).

    The statewide adopters are one to four states, so Callaway-Sant'Anna and imputation report
    Conley-Taber intervals (the never-treated states' residuals in the treated states' place,
    ``inference="conley_taber"``): their analytic SEs over-reject with so few treated states (see the
    power section). SDID keeps its jackknife SE (normal interval).
    """
    from decrimkit.estimators import did, synth

    if estimator in ("att_gt", "imputation"):
        if estimator == "att_gt":
            res = did.att_gt(panel, control="never", method="dr", n_boot=0, inference="conley_taber",
                             seed=seed).aggregate("simple")
        else:
            res = did.imputation(panel, inference="conley_taber", seed=seed)
        est, _, lo, hi, _ = res.overall_inference(0.05)
        return est, res.overall[1], lo, hi, "Conley-Taber"
    res = synth.sdid(panel, se_method="jackknife", seed=seed)
    return res.estimate, res.se, res.estimate - power_grid.Z * res.se, res.estimate + power_grid.Z * res.se, "normal, jackknife SE"


def _dejure_estimates(rates: pd.DataFrame, *, seed: int) -> tuple[pd.DataFrame, cohort_rules.StatePanel]:
    """Frequentist state-level estimates (log rate) for statewide policies under each rule set.

    SDID runs on the main rule set only (each rule set changes the panel's shape and so recompiles it).
    """
    from decrimkit import Panel
    from decrimkit.errors import DecrimkitError

    rows = []
    for name, rules in SPECS.items():
        sp = cohort_rules.state_panel_frame(rules, rates)
        panel = Panel.from_frame(sp.frame, unit="state", time="year", outcome="log_rate", cohort="cohort")
        for est in ("att_gt", "imputation", "sdid") if name == "main" else ("att_gt", "imputation"):
            base = {
                "spec": name,
                "rules": rules.describe(),
                "estimator": power_grid.ESTIMATOR_LABELS[est],
                "treated": ", ".join(f"{s} ({c})" for s, c in zip(sp.treated["state"], sp.treated["cohort"])),
                "comparison_states": len(sp.controls),
            }
            try:
                e, se, lo, hi, how = _state_fit(est, panel, seed=seed)
                rows.append(
                    {
                        **base,
                        "estimate": float(e),
                        "se": float(se),
                        "conf_low": float(lo),
                        "conf_high": float(hi),
                        "inference": how,
                        "pct_change": 100 * np.expm1(e),
                        "note": "",
                    }
                )
            except DecrimkitError as exc:
                rows.append(
                    {
                        **base,
                        "estimate": np.nan,
                        "se": np.nan,
                        "conf_low": np.nan,
                        "conf_high": np.nan,
                        "inference": "",
                        "pct_change": np.nan,
                        "note": str(exc).split(". ")[0],
                    }
                )
    return pd.DataFrame(rows), cohort_rules.state_panel_frame(SPECS["main"], rates)


def _power(
    rates: pd.DataFrame,
    cohorts: pd.DataFrame,
    cfg: Settings,
    *,
    seed: int,
    scheduler: str | None,
    n_workers: int | None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, list[power_grid.PowerDesign], pd.DataFrame]:
    pool = cohort_rules.never_registry_states(rates)
    designs, dropped = power_grid.power_designs(cohorts, rates, pool, list(POLICY_MODELS))
    parts = [power_grid.GridPart(d, cfg.n_reps, cfg.deltas, power_grid.ESTIMATORS, cfg.chunk) for d in designs]
    parts += [
        power_grid.GridPart(d, cfg.bayes_reps, cfg.bayes_deltas, ("hierarchical_did",), cfg.bayes_chunk)
        for d in designs
        if d.model in cfg.bayes_models
    ]
    records = power_grid.run_grid(
        parts,
        seed=seed,
        sdid_reps=cfg.sdid_reps,
        bayes=cfg.bayes_sampling,
        scheduler=scheduler if scheduler is not None else cfg.scheduler,
        n_workers=n_workers,
    )
    summary = power_grid.summarise(records)
    return records, summary, power_grid.mde_table(summary, designs), designs, dropped


def run(
    out: str | Path = "outputs/policy-models",
    *,
    seed: int = 0,
    quick: bool = False,
    scheduler: str | None = None,
    n_workers: int | None = None,
    studies_root: str | Path | None = None,
) -> Path:
    """Run the four-policy-models study and write its report.

    Parameters
    ----------
    out : str or Path
        Output folder (default ``outputs/policy-models``).
    seed : int
        Study seed: every power replicate, SDID placebo and MCMC run is seeded from it.
    quick : bool
        Few replicates, a three-point effect grid and short MCMC (for tests and previews).
    scheduler : str, optional
        Where the power grid runs: the address of an existing Dask scheduler (``tcp://host:8786``),
        ``"synchronous"`` (in this process), or ``"local"`` (a Dask LocalCluster with at most two
        worker processes, one thread each). Default: locally, ``"local"`` for the full run and
        ``"synchronous"`` under ``quick`` (worker start-up and per-worker compilation would cost more
        than the few quick replicates).
    n_workers : int, optional
        Worker processes of the LocalCluster (1 or 2; default ``min(2, cpu_count)``).
    studies_root : str or Path, optional
        Folder holding ``baltimore/``, ``oregon/``, ``suffolk/`` study outputs (default: the parent of ``out``).

    Returns
    -------
    Path
        The output folder.
    """
    from decrimkit.reporting import Report

    cfg = SETTINGS[bool(quick)]
    out = Path(out)
    root = Path(studies_root) if studies_root is not None else out.parent
    rep = Report(
        "policy-models",
        out=out,
        seed=seed,
        quick=quick,
        command=None,
        title="Four policy models: adoptions, what state overdose data can detect, and pooled evidence",
    )
    for name in ("policy_registry", "cdc_vsrr_overdose", "state_population"):
        rep.use_dataset(name)

    with stages("study policy-models", total=5) as step:
        step("registry cohorts and state overdose rates")
        rows = cohort_rules.qualifying_rows(cohort_rules.Rules())
        cohorts = cohort_rules.jurisdiction_cohorts(rows)
        rates = cohort_rules.state_overdose_rates()
        t0 = time.perf_counter()
        step("de jure state estimates")
        dejure, sp = _dejure_estimates(rates, seed=seed)
        log.info("state-level estimates done (%.0f s)", time.perf_counter() - t0)
        step("power grid")
        records, summary, mde, designs, dropped = _power(
            rates, cohorts, cfg, seed=seed, scheduler=scheduler, n_workers=n_workers
        )
        log.info("power grid done: %d records (%.0f s)", len(records), time.perf_counter() - t0)
        step("state hierarchical DiD (NUTS)")
        hdid, hdid_warn = pooling.hierarchical_state(sp, seed=seed, quick=quick)
        log.info("hierarchical DiD done (%.0f s)", time.perf_counter() - t0)
        groups = {str(s): str(m) for s, m in zip(sp.treated["state"], sp.treated["model"])}
        effects = [pooling.posterior_effects(hdid, "state hierarchical DiD", groups)]
        step("pooling the studies (NUTS)")
        study_est, study_status = pooling.study_estimates(root)
        pooled, pool_warn = (None, "")
        if len(study_est):
            pooled, pool_warn = pooling.pool_studies(study_est, seed=seed, quick=quick)
            effects.append(
                pooling.posterior_effects(pooled, "pooled studies", dict(zip(study_est["site"], study_est["policy_model"])))
            )
        eff = pd.concat(effects, ignore_index=True)
        log.info("pooling done (%.0f s)", time.perf_counter() - t0)

    # ---------------------------------------------------------------- results.json
    for r in dejure[dejure["spec"] == "main"].itertuples(index=False):
        key = next(k for k, v in power_grid.ESTIMATOR_LABELS.items() if v == r.estimator)
        rep.add_result(
            f"dejure_{key}",
            estimate=r.estimate,
            se=r.se,
            conf_int=(r.conf_low, r.conf_high),
            n=len(sp.frame),
            method=f"{r.estimator} ({r.inference} interval), state-year log overdose rate, {r.rules}",
            unit="log rate ratio",
            note=f"treated: {r.treated}; {r.comparison_states} comparison states",
        )
    att = hdid.effect("overall").set_index("term").loc["att"]
    rep.add_result(
        "dejure_bayes_att",
        estimate=att["mean"],
        se=att["sd"],
        conf_int=(att["hdi_low"], att["hdi_high"]),
        n=len(sp.frame),
        method="bayes.hierarchical_did (negative binomial, population offset)",
        unit="log rate ratio",
        note=f"P(effect<0) = {att['p_negative']:.3f}; 95% HDI" + (f"; convergence: {hdid_warn}" if hdid_warn else ""),
    )
    for r in eff[eff["level"] == "model"].itertuples(index=False):
        tag = "state" if r.source.startswith("state") else "studies"
        rep.add_result(
            f"pooled_{tag}_{r.model}",
            estimate=r.mean,
            se=r.sd,
            conf_int=(r.hdi_low, r.hdi_high),
            method=f"{r.source}: posterior of the policy-model mean mu_model",
            unit="log rate ratio",
            note=f"P(effect < 0) = {r.p_negative:.3f}; 95% HDI; r-hat {r.r_hat:.3f}, bulk ESS {r.ess_bulk:.0f}",
        )
        rep.add_result(
            f"p_negative_{tag}_{r.model}",
            estimate=r.p_negative,
            method=f"{r.source}: P(mu_model < 0)",
            unit="posterior probability",
            note=f"posterior mean {r.mean:.3f} log rate ratio",
        )
    for r in summary[summary["estimator"] == "hierarchical_did"].itertuples(index=False):
        conv = getattr(r, "share_converged", float("nan"))
        rep.add_result(
            f"bayes_power_{r.model}_delta{r.delta:g}",
            estimate=r.power,
            se=r.power_mcse,
            n=int(r.reps_used) if np.isfinite(r.reps_used) else 0,
            method="design-based power of bayes.hierarchical_did (95% HDI excludes 0), real state overdose series",
            unit="share of replicates",
            note=f"{int(r.reps_run)} replicates run; coverage {r.coverage:.2f} (MC SE {r.coverage_mcse:.2f}); "
            f"bias {r.bias:.3f} (MC SE {r.bias_mcse:.3f}); share passing the convergence gate {conv:.2f}",
        )
    for r in mde.itertuples(index=False):
        if r.estimator == "hierarchical_did":  # two effect sizes: power and coverage above, no MDE
            continue
        rep.add_result(
            f"mde_{r.model}_{r.estimator}",
            estimate=r.mde_log,
            n=r.reps,
            method=f"design-based power, {r.adopters} placebo adopters, real state overdose series",
            unit="log rate ratio at 80% power",
            note=f"size {r.size:.2f}; mean coverage {r.mean_coverage:.2f}"
            + (
                ""
                if np.isfinite(r.mde_log)
                else "; undefined: size >= 0.8"
                if r.size >= power_grid.TARGET_POWER
                else f"; not reached on the grid (max {r.max_delta:g})"
            )
            + (f"; {r.note}" if r.note else ""),
        )

    # ---------------------------------------------------------------- figures and tables
    rep.add_figure(
        "timeline",
        figures.timeline_figure(rows),
        caption="Every registry policy by model: start (marker), end (bar); opacity = confidence",
    )
    for title, text in sections(
        cfg=cfg,
        summary=summary,
        rows=rows,
        cohorts=cohorts,
        sp=sp,
        mde=mde,
        designs=designs,
        study_status=study_status,
        hdid_warn=hdid_warn,
        pool_warn=pool_warn,
        n_pool=len(designs[0].states) if designs else 0,
    ):
        rep.add_section(title, text)
    reg_tab = rows[
        ["jurisdiction", "state", "model", "start", "ended", "confidence", "cannabis_only", "cohort", "status"]
    ].assign(start=lambda d: d["start"].dt.strftime("%Y-%m-%d"), ended=lambda d: d["ended"].dt.strftime("%Y-%m-%d"))
    rep.add_table(
        "registry_rules",
        reg_tab,
        caption="Every registry row and whether the main rules use it",
        count_columns=(),
        not_counts="all",
    )
    coh_tab = cohorts.assign(
        start=cohorts["start"].dt.strftime("%Y-%m-%d"), ended=cohorts["ended"].dt.strftime("%Y-%m-%d")
    )
    rep.add_table(
        "cohorts",
        coh_tab.drop(columns=["unit"]),
        count_columns=(),
        not_counts="all",
        caption="Adoption cohorts by model and jurisdiction (main rules; n_rows = qualifying rows merged)",
    )
    rep.add_table(
        "state_panel_treated",
        sp.treated.assign(
            start=sp.treated["start"].dt.strftime("%Y-%m-%d"), ended=sp.treated["ended"].dt.strftime("%Y-%m-%d")
        ),
        count_columns=(),
        not_counts="all",
        caption="States treated by a statewide policy (main rules)",
    )
    rep.add_table(
        "state_panel_excluded",
        sp.excluded,
        count_columns=(),
        not_counts="all",
        caption="States left out of the state panel",
    )
    rep.add_table(
        "dejure_estimates",
        dejure,
        count_columns=(),
        not_counts="all",
        caption="Statewide (de jure) policies: effect on the log overdose death rate, by rule set",
    )
    rep.add_figure(
        "mde_by_model",
        figures.mde_figure(summary, mde),
        caption="Power by injected effect, model and estimator (real state overdose noise)",
    )
    rep.add_table(
        "power_grid",
        summary,
        count_columns=(),
        not_counts="all",
        caption="Bias, RMSE, coverage and power per model, estimator and injected effect (log rate ratio)",
    )
    rep.add_table(
        "mde", mde, count_columns=(), not_counts="all", caption="Minimum detectable effect at 80% power (alpha 0.05)"
    )
    if len(dropped):
        rep.add_table(
            "power_dropped",
            dropped,
            count_columns=(),
            not_counts="all",
            caption="Adoptions that cannot be placed in 2015-2024",
        )
    rep.add_figure(
        "forest_by_model",
        figures.forest_figure(eff),
        caption="Posterior means and 95% HDIs by policy model, with P(effect < 0)",
    )
    rep.add_table(
        "posterior_effects", eff, count_columns=(), not_counts="all", caption="Posterior effects (log rate ratio)"
    )
    rep.add_table(
        "study_inputs",
        study_est,
        count_columns=(),
        not_counts="all",
        caption="Study estimates pooled, on the log rate ratio scale",
    )
    rep.add_table(
        "study_status",
        study_status,
        count_columns=(),
        not_counts="all",
        caption="Which study outputs were found and used",
    )
    return rep.write()
