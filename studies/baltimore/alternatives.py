"""The alternative estimators of the Baltimore study: Poisson DiD and Bayesian comparative ITS.

Both come from decrimkit's estimator families; this module only shapes the study's data for them and
reads their results into the rows of the estimator-comparison table.
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from decrimkit.errors import ConvergenceWarning, FewTreatedWarning
from decrimkit.estimators import bayes, did
from decrimkit.panel import Panel
from decrimkit.studies.baltimore.models import COVID_MONTHS

BAYES_FULL = {"chains": 4, "draws": 1000, "tune": 1000}
BAYES_QUICK = {"chains": 2, "draws": 300, "tune": 300}


def poisson_did(frame: pd.DataFrame, *, start: str) -> dict[str, Any]:
    """Poisson (PPML) DiD of drug vs handgun arrests with series and month fixed effects.

    Estimand: the post-policy rate ratio of drug arrests relative to handgun arrests, against the
    pre-policy ratio (parallel trends in logs). Arrests averted = observed post-policy drug arrests
    x (1 / rate ratio - 1), with the interval carried over from the rate ratio's. With two series,
    clustering by series is impossible; standard errors are clustered by month (errors of the two
    series may correlate within a month; serial correlation is not allowed for, so they are too small
    if the monthly errors are autocorrelated).
    """
    long = pd.concat(
        [
            pd.DataFrame({"series": "drug", "month": frame["month"], "arrests": frame["drug"], "cohort": start}),
            pd.DataFrame({"series": "handgun", "month": frame["month"], "arrests": frame["handgun"], "cohort": None}),
        ],
        ignore_index=True,
    )
    panel = Panel.from_frame(long, unit="series", time="month", outcome="arrests", cohort="cohort")
    # one treated series against one control: decrimkit warns that the estimate rests on one treated unit.
    # No unit-level few-treated method applies with two series (a randomization test has two assignments),
    # so the warning is kept as the result's inference note instead of being printed.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FewTreatedWarning)
        res = did.poisson(panel, exposure=None, cluster="time")
    few = [str(w.message) for w in caught if issubclass(w.category, FewTreatedWarning)]
    log_rr, se = float(res.estimate[0]), float(res.se[0])
    lo, hi = (float(v) for v in res.conf_int().iloc[0])
    post_obs = float(frame.loc[pd.PeriodIndex(frame["month"]) >= pd.Period(start, "M"), "drug"].sum())
    months = int((pd.PeriodIndex(frame["month"]) >= pd.Period(start, "M")).sum())
    return {
        "run": "Poisson DiD: drug vs handgun, series + month fixed effects (did.poisson)",
        "estimator": "Poisson DiD",
        "months": months,
        "rate_ratio": np.exp(log_rr),
        "rate_ratio_low": np.exp(lo),
        "rate_ratio_high": np.exp(hi),
        "log_rr_se": se,
        "averted": post_obs * (np.exp(-log_rr) - 1),
        "averted_low": post_obs * (np.exp(-hi) - 1),
        "averted_high": post_obs * (np.exp(-lo) - 1),
        "n_obs": int(panel.n_obs),
        "result": res,
        "inference_note": (
            "one treated series (drug) against one control (handgun): the interval rests on month-clustered "
            "errors being serially uncorrelated, not on many treated units; no few-treated method applies to "
            "two series" if few else ""),
    }


class BayesFit(NamedTuple):
    """The Bayesian comparative ITS as the study uses it.

    row: the estimator-table row; averted, rate_ratio: summaries (posterior median, sd, 95% equal-tailed
    interval); counterfactual: (T,) posterior-predictive mean of the counterfactual; converged: the
    convergence gate's verdict; problems: what failed, if anything; settings: chains, draws, tune.
    """

    row: dict[str, Any]
    averted: dict[str, float]
    rate_ratio: dict[str, float]
    counterfactual: np.ndarray
    converged: bool
    problems: tuple[str, ...]
    settings: dict[str, int]


def bayes_its(frame: pd.DataFrame, *, start: str, seed: int, quick: bool) -> BayesFit:
    """Bayesian comparative ITS (negative binomial, shared month shocks with the handgun series).

    A failed convergence gate does not stop the study: the warning is caught, and the verdict and its
    reasons are returned so that the report states them next to the estimate.
    """
    months = pd.PeriodIndex(frame["month"])
    y = pd.Series(frame["drug"].to_numpy(), index=months, name="drug")
    x = pd.Series(frame["handgun"].to_numpy(), index=months, name="handgun")
    covid = tuple(str(m) for m in COVID_MONTHS)
    settings = BAYES_QUICK if quick else BAYES_FULL
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        res = bayes.its(
            y,
            start=start,
            comparison=x,
            season="fourier",
            family="negative_binomial",
            covid=covid,
            seed=seed,
            **settings,
        )
    for w in caught:  # anything other than the convergence gate is passed on unchanged
        if not issubclass(w.category, ConvergenceWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    diag = res.diagnostics()
    averted = np.asarray(res.draws("averted", "posterior_predictive"), dtype="float64")
    cf = np.asarray(res.draws("counterfactual", "posterior_predictive"), dtype="float64")
    post = np.asarray(months >= pd.Period(start, "M"))
    ratio = frame["drug"].to_numpy(float)[post].sum() / cf[:, post].sum(axis=1)

    def summary(d: np.ndarray) -> dict[str, float]:
        lo, med, hi = np.quantile(d, [0.025, 0.5, 0.975])
        return {"estimate": float(med), "se": float(np.std(d, ddof=1)), "low": float(lo), "high": float(hi)}

    av, rr = summary(averted), summary(ratio)
    row = {
        "run": "Bayesian comparative ITS: negative binomial, shared month shocks, COVID term (bayes.its)",
        "estimator": "Bayesian comparative ITS",
        "months": int(post.sum()),
        "rate_ratio": rr["estimate"],
        "rate_ratio_low": rr["low"],
        "rate_ratio_high": rr["high"],
        "averted": av["estimate"],
        "averted_low": av["low"],
        "averted_high": av["high"],
        "n_obs": int(res.spec.n_obs),
    }
    return BayesFit(
        row, av, rr, cf.mean(axis=0), bool(diag.converged), tuple(getattr(diag, "problems", ())), dict(settings)
    )
