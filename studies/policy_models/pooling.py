"""Bayesian pooling: the state-level hierarchical DiD and the pooled study estimates, by policy model.

Two separate models, both on the log rate ratio scale:

1. ``bayes.hierarchical_did`` on the state-year panel of statewide (de jure) policies
   (:func:`~decrimkit.studies.policy_models.data.state_panel_frame`): negative-binomial overdose death
   counts with a log-population offset, state and year effects, one effect per treated state pooled
   within its policy model. Only the de jure model has statewide adopters, so the model level has a
   single member and the across-model level is identified by its prior alone.
2. ``bayes.pool`` on the headline estimates of the project's single-site studies, read from their
   ``results.json`` (never re-estimated or typed in here), each converted to a log rate ratio. Which
   study offers which result, its policy model and its scale come from the study registry (each
   record's :class:`~decrimkit.studies.registry.Pooling`):

   - ``scale="rate_ratio"`` (Baltimore, ``rate_ratio``: observed / counterfactual police drug
     arrests) -> ``log(rate_ratio)``; SE = (log upper - log lower) / (2 x 1.96), i.e. the published
     interval is taken as symmetric on the log scale.
   - ``scale="excess_rate"`` (Oregon, ``sdid_rate``, else ``scm_rate``): an excess in deaths per 100,000
     per year over February 2021 - January 2024. With ``o`` the state's observed mean rate over the
     same windows (CDC VSRR ``predicted_value``, as the Oregon study uses, the record's January windows
     2022-2024 over Census populations of the year before: an approximation of that study's
     interpolated denominators), the counterfactual is ``o - att`` and the log rate ratio
     ``log(o / (o - att))``; the interval endpoints are mapped the same way and the SE taken from them
     as above.
   - ``simulated=True`` (Suffolk): its estimates come from simulated data (the study says so), so they
     are not pooled.

   The outcomes differ (police drug arrests in Baltimore, overdose deaths in Oregon), so the overall
   mean mixes outcomes and is not a policy effect; each model level holds at most one real study, so
   its posterior is that study's estimate shrunk toward the prior.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from decrimkit.datasets import load_dataset
from decrimkit.errors import ConvergenceWarning
from decrimkit.studies.registry import Pooling, pooled_studies

from .data import StatePanel

__all__ = ["hierarchical_state", "study_estimates", "pool_studies", "posterior_effects", "SAMPLING"]

Z = 1.959963984540054
SAMPLING = {False: {"chains": 2, "draws": 1000, "tune": 1000}, True: {"chains": 2, "draws": 100, "tune": 100}}


def _sample(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, str]:
    """Call a Bayesian estimator; a convergence warning is captured and returned as text."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        res = fn(*args, **kwargs)
    msgs = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    return res, "; ".join(m.split(":", 2)[-1].split(". ")[0].strip() for m in msgs)


def hierarchical_state(sp: StatePanel, *, seed: int, quick: bool) -> tuple[Any, str]:
    """``bayes.hierarchical_did`` on the statewide-policy panel (deaths, population offset)."""
    from decrimkit import Panel
    from decrimkit.estimators import bayes

    panel = Panel.from_frame(
        sp.frame, unit="state", time="year", outcome="deaths", cohort="cohort", population="population"
    )
    models = {str(s): str(m) for s, m in zip(sp.treated["state"], sp.treated["model"])}
    return _sample(bayes.hierarchical_did, panel, policy_model=models, seed=seed, **SAMPLING[quick])


def _observed_rate(state: str, years: tuple[int, ...]) -> float:
    """Mean observed overdose death rate per 100,000 of ``state`` over the January windows of ``years``
    (12-month-ending counts, each over the population of the year before)."""
    od = load_dataset("cdc_vsrr_overdose")
    od = od[
        (od["indicator"] == "Number of Drug Overdose Deaths")
        & (od["state"] == state)
        & (od["month"] == 1)
        & od["year"].isin(list(years))
    ]
    pop = load_dataset("state_population")
    pop = pop[(pop["state"] == state) & pop["year"].isin([y - 1 for y in years])]
    rates = od.sort_values("year")["predicted_value"].to_numpy(dtype=float) / pop.sort_values("year")[
        "population"
    ].to_numpy(dtype=float)
    return float(np.mean(rates) * 1e5)


def _pooled_row(name: str, offer: Pooling, res: dict[str, Any]) -> dict[str, Any] | str:
    """The log-rate-ratio row of study ``name``'s offered result, or why there is none."""
    key = next((k for k in offer.results if k in res and res[k]["estimate"] is not None), None)
    r = res.get(key) if key else None
    wanted = " or ".join(repr(k) for k in offer.results)
    if offer.scale == "rate_ratio":
        if r is None or r["conf_int"] is None or min(r["conf_int"]) <= 0:
            return f"not pooled: no usable {wanted} result"
        lo, hi = np.log(r["conf_int"])
        estimate, conversion = float(np.log(r["estimate"])), "log(rate ratio); SE from log CI / 3.92"
    elif offer.scale == "excess_rate":
        if r is None or r["conf_int"] is None:
            return f"not pooled: no {wanted} with an interval"
        o = _observed_rate(offer.state, offer.years)

        def to_log(att: float, o: float = o) -> float:
            return float(np.log(o / (o - att)))

        lo, hi = to_log(r["conf_int"][0]), to_log(r["conf_int"][1])
        estimate = to_log(r["estimate"])
        conversion = f"log(o / (o - att)), o = {o:.2f} per 100,000 (Feb {offer.years[0] - 1}-Jan {offer.years[-1]})"
    else:
        raise ValueError(f"study {name}: unknown pooling scale {offer.scale!r}")
    return {
        "site": offer.site,
        "policy_model": offer.policy_model,
        "outcome": offer.outcome,
        "source_result": f"{name}/{key}",
        "estimate": estimate,
        "se": float((hi - lo) / (2 * Z)),
        "conversion": conversion,
    }


def study_estimates(root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read the registered studies' results.json under ``root`` and convert their offered results to log rate ratios.

    Returns
    -------
    (estimates, status)
        ``estimates``: ``site, policy_model, outcome, source_result, estimate, se, conversion``;
        ``status``: one row per study that offers a result, with what was used or why not (missing
        file, simulated data, no usable result).
    """
    est, status = [], []
    for name, offer in pooled_studies().items():
        path = root / name / "results.json"
        if not path.exists():
            status.append({"study": name, "status": "missing: results.json not found (run the study first)"})
            continue
        if offer.simulated:
            status.append({"study": name, "status": "not pooled: its estimates come from simulated data"})
            continue
        res = {r["name"]: r for r in json.loads(path.read_text(encoding="utf-8"))["results"]}
        row = _pooled_row(name, offer, res)
        if isinstance(row, str):
            status.append({"study": name, "status": row})
            continue
        est.append(row)
        status.append({"study": name, "status": f"pooled ({row['source_result']})"})
    cols = ["site", "policy_model", "outcome", "source_result", "estimate", "se", "conversion"]
    return pd.DataFrame(est, columns=cols), pd.DataFrame(status, columns=["study", "status"])


def pool_studies(estimates: pd.DataFrame, *, seed: int, quick: bool) -> tuple[Any, str]:
    """``bayes.pool`` over the converted study estimates, sites grouped by policy model."""
    from decrimkit.estimators import bayes

    return _sample(bayes.pool, estimates, site="site", policy_model="policy_model", seed=seed, **SAMPLING[quick])


def posterior_effects(post: Any, source: str, groups: dict[str, str]) -> pd.DataFrame:
    """Model, overall and jurisdiction/site effects of a Posterior in one long frame (for the forest plot)."""
    out = []
    for level in ("overall", "model", "jurisdiction"):
        tab = post.effect(level)
        label_col = tab.columns[0]
        for r in tab.to_dict("records"):
            lab = str(r[label_col])
            if level == "overall" and lab != "mu_0":
                continue
            model = "overall" if level == "overall" else (lab if level == "model" else groups.get(lab, "overall"))
            out.append(
                {
                    "source": source,
                    "level": level,
                    "model": model,
                    "label": lab,
                    "mean": r["mean"],
                    "sd": r["sd"],
                    "hdi_low": r["hdi_low"],
                    "hdi_high": r["hdi_high"],
                    "p_negative": r["p_negative"],
                    "r_hat": r["r_hat"],
                    "ess_bulk": r["ess_bulk"],
                }
            )
    return pd.DataFrame(out)
