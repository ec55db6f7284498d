"""The four-policy-models study's run: registry cohorts, state estimates, power, pooling -> its Report."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from decrimkit.progress import stages

from . import figures, pooling
from .data import Rules, StatePanel, jurisdiction_cohorts, qualifying_rows, state_overdose_rates
from .methods import SETTINGS, Settings, dejure_estimates, power_grid
from .power import ESTIMATOR_LABELS, TARGET_POWER
from .text import sections

__all__ = ["run"]

log = logging.getLogger("decrimkit.studies.policy_models")


class Analysis(NamedTuple):
    """Everything one run computes, before it is written."""

    rows: pd.DataFrame  # every registry row, with whether the main rules use it
    cohorts: pd.DataFrame  # adoption cohorts by model and jurisdiction
    sp: StatePanel  # the main state panel
    dejure: pd.DataFrame  # statewide-policy estimates by rule set
    records: pd.DataFrame  # power grid, one row per replicate
    summary: pd.DataFrame  # power grid summary
    mde: pd.DataFrame
    designs: list[Any]
    dropped: pd.DataFrame
    hdid: Any  # the state hierarchical DiD posterior
    hdid_warn: str
    eff: pd.DataFrame  # posterior effects (state hierarchical DiD and pooled studies)
    study_est: pd.DataFrame
    study_status: pd.DataFrame
    pool_warn: str


# What the real-data placebo validation says of the Bayesian DiD's intervals (validation/README.md, cell
# placebo_state_annual_4_bayes), printed beside every state-level posterior
BAYES_CALIBRATION = ("calibration on real data: on 100 placebo laws with four states on real overdose series the 95% "
                     "HDI of this model (its default AR(1) deviations) covered 0 in 98 (MC SE 1.4 points; without "
                     "the AR(1) deviations, 73), at short sampling settings (2 chains x 250 draws); "
                     "validation/README.md")


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
    a = _analyse(cfg, root, seed=seed, quick=quick, scheduler=scheduler, n_workers=n_workers)
    _add_results(rep, a)
    _add_figures_and_tables(rep, a, cfg)
    return rep.write()


def _analyse(
    cfg: Settings, root: Path, *, seed: int, quick: bool, scheduler: str | None, n_workers: int | None
) -> Analysis:
    """The five stages: registry cohorts, de jure estimates, power grid, state hierarchical DiD, pooling."""
    with stages("study policy-models", total=5) as step:
        step("registry cohorts and state overdose rates")
        rows = qualifying_rows(Rules())
        cohorts = jurisdiction_cohorts(rows)
        rates = state_overdose_rates()
        t0 = time.perf_counter()
        step("de jure state estimates")
        dejure, sp = dejure_estimates(rates, seed=seed)
        log.info("state-level estimates done (%.0f s)", time.perf_counter() - t0)
        step("power grid")
        records, summary, mde, designs, dropped = power_grid(
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
        pool_warn = ""
        if len(study_est):
            pooled, pool_warn = pooling.pool_studies(study_est, seed=seed, quick=quick)
            effects.append(
                pooling.posterior_effects(pooled, "pooled studies", dict(zip(study_est["site"], study_est["policy_model"])))
            )
        eff = pd.concat(effects, ignore_index=True)
        log.info("pooling done (%.0f s)", time.perf_counter() - t0)
    return Analysis(rows, cohorts, sp, dejure, records, summary, mde, designs, dropped, hdid, hdid_warn, eff,
                    study_est, study_status, pool_warn)



def _convergence_warning(a: Analysis, source: str) -> str:
    """The convergence warning of the sampler behind a posterior source ("" if it passed the gate): the state
    hierarchical DiD for the "state ..." sources, the pooling of study estimates otherwise."""
    return a.hdid_warn if source.startswith("state") else a.pool_warn

def _add_results(rep: Any, a: Analysis) -> None:
    """results.json: the de jure estimates, the pooled posteriors by model, Bayesian power, the MDEs."""
    for r in a.dejure[a.dejure["spec"] == "main"].itertuples(index=False):
        key = next(k for k, v in ESTIMATOR_LABELS.items() if v == r.estimator)
        rep.add_result(
            f"dejure_{key}",
            estimate=r.estimate,
            se=r.se,
            conf_int=(r.conf_low, r.conf_high),
            p_value=r.p_value,
            n=len(a.sp.frame),
            method=f"{r.estimator} ({r.inference} p-value and interval), state-year log overdose rate, {r.rules}",
            unit="log rate ratio",
            note=f"treated: {r.treated}; {r.comparison_states} comparison states",
        )
    att = a.hdid.effect("overall").set_index("term").loc["att"]
    # a posterior that fails the convergence gate gives no interval or probability: its chains disagree, so
    # an HDI from them is not the posterior's; the mean and sd stay, labelled
    def not_converged(warn: str, fn: str) -> str:
        return (f"NOT CONVERGED ({warn}): the 95% HDI and P(effect<0) are withheld; refit with longer chains "
                f"({fn}'s chains, draws, target_accept)") if warn else ""

    withheld = not_converged(_convergence_warning(a, "state"), "bayes.hierarchical_did")
    rep.add_result(
        "dejure_bayes_att",
        estimate=att["mean"],
        se=att["sd"],
        conf_int=None if withheld else (att["hdi_low"], att["hdi_high"]),
        n=len(a.sp.frame),
        method="bayes.hierarchical_did (negative binomial, population offset, AR(1) unit deviations)",
        unit="log rate ratio",
        note=(withheld or f"P(effect<0) = {att['p_negative']:.3f}; 95% HDI") + f"; {BAYES_CALIBRATION}",
    )
    for r in a.eff[a.eff["level"] == "model"].itertuples(index=False):
        tag = "state" if r.source.startswith("state") else "studies"
        gate = withheld if tag == "state" else not_converged(_convergence_warning(a, r.source), "bayes.pool")
        rep.add_result(
            f"pooled_{tag}_{r.model}",
            estimate=r.mean,
            se=r.sd,
            conf_int=None if gate else (r.hdi_low, r.hdi_high),
            method=f"{r.source}: posterior of the policy-model mean mu_model",
            unit="log rate ratio",
            note=(gate or f"P(effect < 0) = {r.p_negative:.3f}; 95% HDI")
            + f"; r-hat {r.r_hat:.3f}, bulk ESS {r.ess_bulk:.0f}" + (f"; {BAYES_CALIBRATION}" if tag == "state" else ""),
        )
        if not gate:  # not reported from chains that disagree (the pooled row says why)
            rep.add_result(
                f"p_negative_{tag}_{r.model}",
                estimate=r.p_negative,
                method=f"{r.source}: P(mu_model < 0)",
                unit="posterior probability",
                note=f"posterior mean {r.mean:.3f} log rate ratio",
            )
    for r in a.summary[a.summary["estimator"] == "hierarchical_did"].itertuples(index=False):
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
    for r in a.mde.itertuples(index=False):
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
                if r.size >= TARGET_POWER
                else f"; not reached on the grid (max {r.max_delta:g})"
            )
            + (f"; {r.note}" if r.note else ""),
        )


def _add_figures_and_tables(rep: Any, a: Analysis, cfg: Settings) -> None:
    """The report's figures, sections and tables, in the order they appear."""
    rep.add_figure(
        "timeline",
        figures.timeline_figure(a.rows),
        caption="Every registry policy by model: start (marker), end (bar); opacity = confidence",
    )
    for title, text in sections(
        cfg=cfg,
        summary=a.summary,
        rows=a.rows,
        cohorts=a.cohorts,
        sp=a.sp,
        mde=a.mde,
        designs=a.designs,
        study_status=a.study_status,
        hdid_warn=a.hdid_warn,
        pool_warn=a.pool_warn,
        n_pool=len(a.designs[0].states) if a.designs else 0,
    ):
        rep.add_section(title, text)
    reg_tab = a.rows[
        ["jurisdiction", "state", "model", "start", "ended", "confidence", "cannabis_only", "cohort", "status"]
    ].assign(start=lambda d: d["start"].dt.strftime("%Y-%m-%d"), ended=lambda d: d["ended"].dt.strftime("%Y-%m-%d"))
    rep.add_table(
        "registry_rules",
        reg_tab,
        caption="Every registry row and whether the main rules use it",
        count_columns=(),
        not_counts="all",
    )
    coh_tab = a.cohorts.assign(
        start=a.cohorts["start"].dt.strftime("%Y-%m-%d"), ended=a.cohorts["ended"].dt.strftime("%Y-%m-%d")
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
        a.sp.treated.assign(
            start=a.sp.treated["start"].dt.strftime("%Y-%m-%d"), ended=a.sp.treated["ended"].dt.strftime("%Y-%m-%d")
        ),
        count_columns=(),
        not_counts="all",
        caption="States treated by a statewide policy (main rules)",
    )
    rep.add_table(
        "state_panel_excluded",
        a.sp.excluded,
        count_columns=(),
        not_counts="all",
        caption="States left out of the state panel",
    )
    rep.add_table(
        "dejure_estimates",
        a.dejure,
        count_columns=(),
        not_counts="all",
        caption="Statewide (de jure) policies: effect on the log overdose death rate, by rule set",
    )
    rep.add_figure(
        "mde_by_model",
        figures.mde_figure(a.summary, a.mde),
        caption="Power by injected effect, model and estimator (real state overdose noise)",
    )
    rep.add_table(
        "power_grid",
        a.summary,
        count_columns=(),
        not_counts="all",
        caption="Bias, RMSE, coverage and power per model, estimator and injected effect (log rate ratio)",
    )
    rep.add_table(
        "mde", a.mde, count_columns=(), not_counts="all", caption="Minimum detectable effect at 80% power (alpha 0.05)"
    )
    if len(a.dropped):
        rep.add_table(
            "power_dropped",
            a.dropped,
            count_columns=(),
            not_counts="all",
            caption="Adoptions that cannot be placed in 2015-2024",
        )
    rep.add_figure(
        "forest_by_model",
        figures.forest_figure(a.eff, not_converged={src for src in set(a.eff["source"]) if _convergence_warning(a, src)}),
        caption="Posterior means and 95% HDIs by policy model, with P(effect < 0) (means only where the sampler did not converge)",
    )
    rep.add_table(
        "posterior_effects", a.eff, count_columns=(), not_counts="all", caption="Posterior effects (log rate ratio)"
    )
    rep.add_table(
        "study_inputs",
        a.study_est,
        count_columns=(),
        not_counts="all",
        caption="Study estimates pooled, on the log rate ratio scale",
    )
    rep.add_table(
        "study_status",
        a.study_status,
        count_columns=(),
        not_counts="all",
        caption="Which study outputs were found and used",
    )
