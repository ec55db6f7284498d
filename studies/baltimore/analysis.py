"""All estimates of the Baltimore study, computed once and gathered in :class:`StudyResults`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import pandas as pd
from scipy import stats

from decrimkit.progress import track
from decrimkit.studies.baltimore import alternatives, data, models

POLICY_DATE = "2020-03-18"
START = "2020-04"  # first full month of non-prosecution
END = "2022-12"  # last month of data; the policy was rescinded 2023-01-03
POST_COVID = ("2020-07", "2022-12")  # window of the COVID-sensitivity analysis
JHU_WINDOW = ("2020-04", "2021-05")  # post period of the JHU report (443 arrests averted)
PUBLISHED_BLACK_SHARE = 0.78
JHU_AVERTED = 443


class StudyResults(NamedTuple):
    """Everything the report needs. Frames are tidy; ``summaries`` maps a result name to
    ``{"estimate", "se", "low", "high"}``; ``fits`` holds the ITS fits by name."""

    frame: pd.DataFrame
    fits: dict[str, models.ITSFit]
    summaries: dict[str, dict[str, float]]
    estimators: pd.DataFrame
    robustness: pd.DataFrame
    pretrend: dict[str, float]
    micro: data.Microdata
    rule_counts: pd.DataFrame
    composition: pd.DataFrame
    black_share: pd.DataFrame
    implied: pd.DataFrame
    bayes: Any
    n_sim: int


def _row(name: str, fit: models.ITSFit, **extra: Any) -> dict[str, Any]:
    av = models.summarise(fit.averted, fit.point_averted)
    rr = models.summarise(fit.ratio, fit.point_ratio)
    return {
        "run": name,
        **extra,
        "months": int(fit.window.sum()),
        "rate_ratio": rr["estimate"],
        "rate_ratio_low": rr["low"],
        "rate_ratio_high": rr["high"],
        "averted": av["estimate"],
        "averted_low": av["low"],
        "averted_high": av["high"],
        "n_obs": fit.n_obs,
    }


def _robustness(frame: pd.DataFrame, main: models.ITSFit, n_sim: int, seed: int, quick: bool) -> pd.DataFrame:
    """Every robustness and placebo run, reported whatever it shows."""
    fit = models.fit_its
    rows = [_row("main: comparative ITS, Fourier seasonality, COVID term", main, kind="main")]
    runs: list[tuple[str, str, dict[str, Any]]] = [
        ("COVID months 2020-03..06 excluded (window 2020-07..)", "covid", dict(covid="exclude", window=POST_COVID)),
        ("seasonality: month dummies", "seasonality", dict(season="month")),
        ("seasonality: none", "seasonality", dict(season="none")),
        ("level change only (no slope change)", "functional form", dict(slope=False)),
        ("placebo date 2019-03 (data to 2020-02)", "placebo date", dict(start="2019-03", end="2020-02", covid="none")),
        ("placebo date 2018-09 (data to 2020-02)", "placebo date", dict(start="2018-09", end="2020-02", covid="none")),
        (
            "placebo outcome: handgun arrests, single-series ITS",
            "placebo outcome",
            dict(outcome="handgun", comparison=None),
        ),
    ]
    if not quick:
        runs += [
            (
                "placebo date 2019-07 (data to 2020-02)",
                "placebo date",
                dict(start="2019-07", end="2020-02", covid="none"),
            ),
            ("no COVID term", "covid", dict(covid="none")),
        ]
    for name, kind, kw in track(runs, "robustness runs"):
        kw = {"start": START, **kw}
        rows.append(_row(name, fit(frame, n_sim=n_sim, seed=seed, **kw), kind=kind))
    return pd.DataFrame(rows)


def _black_share(composition: pd.DataFrame) -> pd.DataFrame:
    """Black vs all other arrests per definition, with a Jeffreys 95% interval for the Black share."""
    rows = []
    for name, sub in composition.groupby("definition", sort=False):
        n = int(sub["arrests"].sum())
        b = int(sub.loc[sub["race"] == "Black", "arrests"].sum())
        lo, hi = stats.beta.ppf([0.025, 0.975], b + 0.5, n - b + 0.5)
        rows.append(
            {
                "definition": name,
                "arrests": n,
                "black": b,
                "not_black": n - b,
                "black_share": b / n,
                "share_low": float(lo),
                "share_high": float(hi),
            }
        )
    return pd.DataFrame(rows)


STAGES = 5  # calls of ``step`` in analyse()


def analyse(*, seed: int = 0, quick: bool = False, step: Callable[[str], None] = lambda name: None) -> StudyResults:
    """Fit every model of the study (see the package docstring); deterministic given ``seed``.

    ``step(name)`` is called as each of the :data:`STAGES` stages starts (a progress display).
    """
    n_sim = 1000 if quick else 4000
    step("ITS models")
    frame = data.monthly_series()
    fit = models.fit_its
    fits = {
        "main": fit(frame, start=START, n_sim=n_sim, seed=seed),
        "main_post_covid": fit(frame, start=START, window=POST_COVID, n_sim=n_sim, seed=seed),
        "covid_excluded": fit(frame, start=START, covid="exclude", window=POST_COVID, n_sim=n_sim, seed=seed),
        "jhu_window": fit(frame, start=START, window=JHU_WINDOW, n_sim=n_sim, seed=seed),
        "single_series": fit(frame, start=START, comparison=None, n_sim=n_sim, seed=seed),
    }
    n_months = int(fits["main"].window.sum())
    summaries: dict[str, dict[str, float]] = {}
    for name, f in fits.items():
        summaries[f"{name}_averted"] = models.summarise(f.averted, f.point_averted)
        summaries[f"{name}_rate_ratio"] = models.summarise(f.ratio, f.point_ratio)
    summaries["main_monthly_averted"] = models.summarise(
        fits["main"].averted / n_months, fits["main"].point_averted / n_months
    )

    alt_rows = [
        _row(
            "Comparative ITS (main): Poisson QMLE, drug vs handgun, Driscoll-Kraay SE",
            fits["main"],
            estimator="comparative ITS (main)",
        ),
        _row(
            "Single-series ITS: Poisson QMLE on drug arrests, Newey-West SE",
            fits["single_series"],
            estimator="single-series ITS",
        ),
    ]
    step("Poisson DiD")
    did_row = alternatives.poisson_did(frame, start=START)
    alt_rows.append(did_row)
    summaries["did_rate_ratio"] = {
        "estimate": did_row["rate_ratio"],
        "low": did_row["rate_ratio_low"],
        "high": did_row["rate_ratio_high"],  # se: delta method from the log scale
        "se": did_row["rate_ratio"] * did_row["log_rr_se"],
    }
    summaries["did_averted"] = {
        "estimate": did_row["averted"],
        "se": float("nan"),
        "low": did_row["averted_low"],
        "high": did_row["averted_high"],
    }
    step("Bayesian comparative ITS (NUTS)")
    bayes = alternatives.bayes_its(frame, start=START, seed=seed, quick=quick)
    alt_rows.append(bayes.row)
    summaries["bayes_averted"] = bayes.averted
    summaries["bayes_rate_ratio"] = bayes.rate_ratio
    estimators = pd.DataFrame(alt_rows)

    step("robustness and placebo runs")
    robustness = _robustness(frame, fits["main"], n_sim, seed, quick)
    est, se, n_pt = models.pretrend(frame)
    z = est / se
    pretrend = {
        "estimate": est,
        "se": se,
        "low": est - 1.96 * se,
        "high": est + 1.96 * se,
        "p_value": float(2 * stats.norm.sf(abs(z))),
        "n": n_pt,
    }

    step("arrest composition")
    micro = data.microdata()
    composition = data.possession_composition(micro)
    black_share = _black_share(composition)
    primary = black_share.iloc[0]
    split = pd.Series([primary["black"], primary["not_black"]], index=["Black", "all other groups"])
    implied = models.implied_by_race(fits["main"].averted, fits["main"].point_averted, split, seed=seed)
    return StudyResults(
        frame,
        fits,
        summaries,
        estimators,
        robustness,
        pretrend,
        micro,
        data.charge_rule_counts(micro),
        composition,
        black_share,
        implied,
        bayes,
        n_sim,
    )


def month_dates(months: pd.PeriodIndex) -> pd.DatetimeIndex:
    """Mid-month timestamps for plotting."""
    return months.to_timestamp(how="start") + pd.Timedelta(days=14)


__all__ = ["analyse", "StudyResults", "month_dates"]
