"""The four-policy-models study's estimates: statewide (de jure) policies under each rule set, and the
design-based power grid on real untreated state series."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from decrimkit.options import POLICY_MODELS

from . import power
from .data import Rules, StatePanel, never_registry_states, state_panel_frame
from .placebo_design import PowerDesign

__all__ = ["Settings", "SETTINGS", "SPECS", "state_fit", "dejure_estimates", "power_grid"]


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
        deltas=power.GRID,
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

#: Rule sets of the state panel (:class:`~decrimkit.studies.policy_models.data.Rules`): the main one and
#: the sensitivity analyses.
SPECS = {
    "main": Rules(),
    "with_low_confidence": Rules(min_confidence="low"),
    "with_cannabis_only": Rules(include_cannabis=True),
    "washington_itt": Rules(reversal_itt=True),
    "panel_to_2023": Rules(last_year=2023),
}


def state_fit(estimator: str, panel: Any, *, seed: int) -> tuple[float, float, float, float, float, str]:
    """(estimate, se, p_value, conf_low, conf_high, inference) of one frequentist estimator on a state panel
    (log rate); the p-value and the interval come from the same method (the SE is the estimator's analytic one).

    The statewide adopters are one to four states, so the analytic SEs of Callaway-Sant'Anna and imputation
    over-reject (the power section shows it). Their intervals and p-values come from randomization
    inference (``inference="randomization"``: the adoption dates reassigned across states, 999 seeded draws,
    the interval by inverting the test under a constant effect), the method whose size held on the real
    state placebo laws (validation/README.md, 500 laws with four states: 6.8% for Callaway-Sant'Anna,
    5.0% for imputation, where Conley-Taber, used before, rejected 9.4% for both and Ferman-Pinto 9.6-9.8%;
    6.0% and 4.6% with eight states; conservative, 2.7%, with one). It assumes adoption as good as random
    across states. SDID keeps its jackknife SE (normal interval).
    """
    from decrimkit.estimators import did, synth

    if estimator in ("att_gt", "imputation"):
        if estimator == "att_gt":
            res = did.att_gt(panel, control="never", method="dr", n_boot=0, inference="randomization",
                             seed=seed).aggregate("simple")
        else:
            res = did.imputation(panel, inference="randomization", seed=seed)
        est, p, lo, hi, _ = res.overall_inference(0.05)
        return est, res.overall[1], p, lo, hi, "randomization (adoption dates reassigned across states)"
    res = synth.sdid(panel, se_method="jackknife", seed=seed)
    p = 2 * stats.norm.sf(abs(res.estimate / res.se)) if res.se > 0 else np.nan
    return (res.estimate, res.se, p, res.estimate - power.Z * res.se, res.estimate + power.Z * res.se,
            "normal, jackknife SE")


def dejure_estimates(rates: pd.DataFrame, *, seed: int) -> tuple[pd.DataFrame, StatePanel]:
    """Frequentist state-level estimates (log rate) for statewide policies under each rule set.

    SDID runs on the main rule set only (each rule set changes the panel's shape and so recompiles it).
    """
    from decrimkit import Panel
    from decrimkit.errors import DecrimkitError

    rows = []
    for name, rules in SPECS.items():
        sp = state_panel_frame(rules, rates)
        panel = Panel.from_frame(sp.frame, unit="state", time="year", outcome="log_rate", cohort="cohort")
        for est in ("att_gt", "imputation", "sdid") if name == "main" else ("att_gt", "imputation"):
            base = {
                "spec": name,
                "rules": rules.describe(),
                "estimator": power.ESTIMATOR_LABELS[est],
                "treated": ", ".join(f"{s} ({c})" for s, c in zip(sp.treated["state"], sp.treated["cohort"])),
                "comparison_states": len(sp.controls),
            }
            try:
                e, se, p, lo, hi, how = state_fit(est, panel, seed=seed)
                rows.append(
                    {
                        **base,
                        "estimate": float(e),
                        "se": float(se),
                        "p_value": float(p),
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
                        "p_value": np.nan,
                        "conf_low": np.nan,
                        "conf_high": np.nan,
                        "inference": "",
                        "pct_change": np.nan,
                        "note": str(exc).split(". ")[0],
                    }
                )
    return pd.DataFrame(rows), state_panel_frame(SPECS["main"], rates)


def power_grid(
    rates: pd.DataFrame,
    cohorts: pd.DataFrame,
    cfg: Settings,
    *,
    seed: int,
    scheduler: str | None,
    n_workers: int | None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, list[PowerDesign], pd.DataFrame]:
    """Design-based power of every estimator per policy model, on the never-registry states' real series.

    Returns ``(records, summary, mde, designs, dropped)``: one row per replicate, power/bias/coverage per
    model, estimator and injected effect, the minimum detectable effects, the placebo designs and the
    adoptions that cannot be placed in the panel's years. ``scheduler`` overrides ``cfg.scheduler``.
    """
    pool = never_registry_states(rates)
    designs, dropped = power.power_designs(cohorts, rates, pool, list(POLICY_MODELS))
    parts = [power.GridPart(d, cfg.n_reps, cfg.deltas, power.ESTIMATORS, cfg.chunk) for d in designs]
    parts += [
        power.GridPart(d, cfg.bayes_reps, cfg.bayes_deltas, ("hierarchical_did",), cfg.bayes_chunk)
        for d in designs
        if d.model in cfg.bayes_models
    ]
    records = power.run_grid(
        parts,
        seed=seed,
        sdid_reps=cfg.sdid_reps,
        bayes=cfg.bayes_sampling,
        scheduler=scheduler if scheduler is not None else cfg.scheduler,
        n_workers=n_workers,
    )
    summary = power.summarise(records)
    return records, summary, power.mde_table(summary, designs), designs, dropped
