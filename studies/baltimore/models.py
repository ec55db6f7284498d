"""Interrupted-time-series models of the Baltimore study (frequentist; statsmodels).

Estimand: arrests averted in month ``t`` of the policy window, ``mu0_t - y_t``: the expected CDS arrests
had the policy not started (the counterfactual mean ``mu0_t``) minus the arrests observed. Summed over the
window it is the cumulative number averted; ``sum(y) / sum(mu0)`` is the window's rate ratio.

Two designs share one log-linear Poisson (quasi-likelihood) mean model with a level and a slope change
from the first policy month ``t0``:

* comparative ITS (``comparison=True``): drug and handgun arrests stacked, each with its own intercept,
  linear trend and seasonality; level and slope changes after ``t0`` that both series share (the
  comparison series identifies them) plus drug-only level and slope changes, the policy effect.
  The counterfactual is the drug series' own pre-trend and seasonality moved by the comparison
  series' post-policy change (Lopez Bernal, Cummins & Gasparrini 2018, "controlled ITS").
* single-series ITS (``comparison=False``): the drug series alone, trend + seasonality + level and slope
  changes, as in the pre/post time-series models of the JHU evaluation.

COVID-19: ``covid="term"`` adds an indicator for 2020-03 .. 2020-06 (the acute lockdown months), shared by
both series and kept in the counterfactual (it is not the policy); ``covid="exclude"`` drops those months
from the fit instead. Standard errors are HAC: Newey-West for one series, Driscoll-Kraay (scores summed
within month) for the stacked pair, both with 3 lags. Intervals for averted arrests come from
``n_sim`` draws of the coefficients from their estimated normal sampling distribution (seeded), so
they reflect estimation uncertainty in the counterfactual mean, not month-to-month Poisson noise.

References
----------
Lopez Bernal J, Cummins S, Gasparrini A (2018). The use of controls in interrupted time series studies
of public health interventions. Int J Epidemiol 47(6):2082-2093.
Driscoll JC, Kraay AC (1998). Consistent covariance matrix estimation with spatially dependent panel
data. Rev Econ Stat 80(4):549-560.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np
import pandas as pd
import statsmodels.api as sm

from decrimkit.errors import DesignError
from decrimkit.options import check_option

Season = Literal["fourier", "month", "none"]
Covid = Literal["term", "exclude", "none"]

COVID_MONTHS = (pd.Period("2020-03", "M"), pd.Period("2020-06", "M"))
HAC_LAGS = 3
MIN_PRE = 8  # the 2018-09 placebo date leaves 8 pre-months; seasonality is fitted on the whole series


class ITSFit(NamedTuple):
    """One fitted ITS.

    months: (T,) Period labels of the treated series; observed, fitted, counterfactual: (T,) float64
    (``fitted`` and ``counterfactual`` are model means at the point estimate, for every month, also
    excluded ones); cf_low, cf_high: (T,) 95% band of the counterfactual mean; window: (T,) bool, the
    months summed; averted: (n_sim,) cumulative averted draws; ratio: (n_sim,) rate-ratio draws;
    point_averted, point_ratio: at the point estimate; params: coefficient table; n_obs: rows fitted;
    excluded: months left out of the fit (label, reason).
    """

    months: pd.PeriodIndex
    observed: np.ndarray
    fitted: np.ndarray
    counterfactual: np.ndarray
    cf_low: np.ndarray
    cf_high: np.ndarray
    window: np.ndarray
    averted: np.ndarray
    ratio: np.ndarray
    point_averted: float
    point_ratio: float
    params: pd.DataFrame
    n_obs: int
    excluded: tuple[str, ...]


def _season_columns(month_of_year: np.ndarray, season: Season, prefix: str) -> dict[str, np.ndarray]:
    if season == "none":
        return {}
    if season == "fourier":  # two harmonics of the calendar year
        out = {}
        for k in (1, 2):
            angle = 2 * np.pi * k * month_of_year / 12
            out[f"{prefix}sin{k}"] = np.sin(angle)
            out[f"{prefix}cos{k}"] = np.cos(angle)
        return out
    return {f"{prefix}m{m:02d}": (month_of_year == m).astype(float) for m in range(2, 13)}


def _design(
    months: pd.PeriodIndex, *, start: pd.Period, season: Season, covid: Covid, slope: bool, prefix: str = ""
) -> pd.DataFrame:
    """Columns for one series: intercept, trend (years), seasonality, post level/slope, COVID term."""
    rel = np.asarray([(m - start).n for m in months], dtype=float)
    post = (rel >= 0).astype(float)
    cols = {f"{prefix}const": np.ones(len(months)), f"{prefix}trend": rel / 12}
    cols.update(_season_columns(np.asarray(months.month), season, prefix))
    cols["post"] = post
    if slope:
        cols["post_trend"] = post * rel / 12
    if covid == "term":
        cols["covid"] = ((months >= COVID_MONTHS[0]) & (months <= COVID_MONTHS[1])).astype(float)
    return pd.DataFrame(cols)


def _stack(
    frame: pd.DataFrame,
    *,
    outcome: str,
    comparison: str | None,
    start: pd.Period,
    season: Season,
    covid: Covid,
    slope: bool,
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """Design, response, treated-row mask and month position for the (stacked) series."""
    months = pd.PeriodIndex(frame["month"])
    pos = np.arange(len(months))
    if comparison is None:
        x = _design(months, start=start, season=season, covid=covid, slope=slope)
        x = x.rename(columns={"post": "effect_level", "post_trend": "effect_slope"})
        return x, frame[outcome].to_numpy(float), np.ones(len(months), bool), pos
    parts = []
    for name, treated in ((outcome, 1.0), (comparison, 0.0)):
        x = _design(months, start=start, season=season, covid=covid, slope=slope, prefix=f"{name}_")
        x["effect_level"] = treated * x["post"]
        if slope:
            x["effect_slope"] = treated * x["post_trend"]
        parts.append(x)
    x = pd.concat(parts, ignore_index=True).fillna(0.0)
    y = np.concatenate([frame[outcome].to_numpy(float), frame[comparison].to_numpy(float)])
    treated = np.repeat([True, False], len(months))
    return x, y, treated, np.concatenate([pos, pos])


def fit_its(
    frame: pd.DataFrame,
    *,
    start: str,
    outcome: str = "drug",
    comparison: str | None = "handgun",
    season: Season = "fourier",
    covid: Covid = "term",
    slope: bool = True,
    end: str | None = None,
    window: tuple[str, str] | None = None,
    n_sim: int = 4000,
    seed: int = 0,
) -> ITSFit:
    """Fit a (comparative) ITS and simulate arrests averted over ``window``.

    Parameters
    ----------
    frame : DataFrame
        ``month`` (Period) plus one count column per series, one row per month.
    start : str
        First policy month ("YYYY-MM"); the level and slope changes start here.
    outcome, comparison : str
        Treated and comparison columns; ``comparison=None`` fits the single-series ITS.
    season, covid, slope
        Seasonality (Fourier with two harmonics, month dummies, none); COVID-19 handling (module
        docstring); whether the policy also changes the slope.
    end : str, optional
        Last month used (placebo dates fit only the pre-policy months).
    window : (str, str), optional
        Months summed for the cumulative effect; default ``start`` .. last month fitted.
    n_sim, seed
        Coefficient draws for the intervals and their seed.

    Raises
    ------
    SpecificationError
        Unknown ``season`` or ``covid``.
    DesignError
        Fewer than 8 months before ``start`` or fewer than 3 after it.
    """
    check_option("season", season, Season)
    check_option("covid", covid, Covid)
    t0 = pd.Period(start, "M")
    data = frame if end is None else frame.loc[pd.PeriodIndex(frame["month"]) <= pd.Period(end, "M")]
    months = pd.PeriodIndex(data["month"])
    n_pre, n_post = int((months < t0).sum()), int((months >= t0).sum())
    if n_pre < MIN_PRE or n_post < 3:
        raise DesignError(
            f"ITS starting {t0} needs >= {MIN_PRE} months before and >= 3 after it within the data "
            f"({months.min()} .. {months.max()}); got {n_pre} and {n_post}. Pick another start or end."
        )
    x_all, y_all, treated, pos = _stack(
        data, outcome=outcome, comparison=comparison, start=t0, season=season, covid=covid, slope=slope
    )
    keep = np.ones(len(y_all), bool)
    excluded: tuple[str, ...] = ()
    if covid == "exclude":
        m_all = np.concatenate([np.asarray(months)] * (1 if comparison is None else 2))
        drop = np.array([COVID_MONTHS[0] <= m <= COVID_MONTHS[1] for m in m_all])
        keep = ~drop
        excluded = (f"{int(drop.sum())} series-months {COVID_MONTHS[0]}..{COVID_MONTHS[1]} (COVID-19 lockdown)",)
    model = sm.GLM(y_all[keep], x_all.loc[keep], family=sm.families.Poisson())
    if comparison is None:
        res = model.fit(cov_type="HAC", cov_kwds={"maxlags": HAC_LAGS})
    else:
        res = model.fit(cov_type="hac-groupsum", cov_kwds={"time": pos[keep], "maxlags": HAC_LAGS})
    beta, vcov = res.params.to_numpy(), res.cov_params().to_numpy()

    x_t = x_all.loc[treated].to_numpy()
    effect_cols = [i for i, c in enumerate(x_all.columns) if c.startswith("effect_")]
    x_cf = x_t.copy()
    x_cf[:, effect_cols] = 0.0
    y_t = y_all[treated]
    lo, hi = (t0, months.max()) if window is None else (pd.Period(window[0], "M"), pd.Period(window[1], "M"))
    win = np.asarray((months >= lo) & (months <= hi))
    rng = np.random.default_rng(seed)
    draws = rng.multivariate_normal(beta, vcov, size=n_sim, method="eigh")
    cf_draws = np.exp(draws @ x_cf.T)  # (n_sim, T)
    averted = (cf_draws[:, win] - y_t[win]).sum(axis=1)
    ratio = y_t[win].sum() / cf_draws[:, win].sum(axis=1)
    cf = np.exp(x_cf @ beta)
    params = pd.DataFrame({"term": list(x_all.columns), "estimate": beta, "se": np.sqrt(np.diag(vcov))})
    return ITSFit(
        months,
        y_t,
        np.exp(x_t @ beta),
        cf,
        np.quantile(cf_draws, 0.025, axis=0),
        np.quantile(cf_draws, 0.975, axis=0),
        win,
        averted,
        ratio,
        float((cf[win] - y_t[win]).sum()),
        float(y_t[win].sum() / cf[win].sum()),
        params,
        int(keep.sum()),
        excluded,
    )


def pretrend(frame: pd.DataFrame, *, end: str = "2020-02", season: Season = "fourier") -> tuple[float, float, int]:
    """Difference in log-linear pre-policy trends, drug minus handgun, per year: (estimate, se, n_obs).

    A zero difference is what the Poisson DiD's parallel-trends assumption needs; the comparative ITS
    allows any difference (each series has its own trend).
    """
    data = frame.loc[pd.PeriodIndex(frame["month"]) <= pd.Period(end, "M")]
    months = pd.PeriodIndex(data["month"])
    rel = np.asarray([(m - months[0]).n for m in months], float) / 12
    parts = []
    for name, treated in (("drug", 1.0), ("handgun", 0.0)):
        cols = {f"{name}_const": np.ones(len(months)), "trend": rel, "trend_diff": treated * rel}
        cols.update(_season_columns(np.asarray(months.month), season, f"{name}_"))
        parts.append(pd.DataFrame(cols))
    x = pd.concat(parts, ignore_index=True).fillna(0.0)
    y = np.concatenate([data["drug"].to_numpy(float), data["handgun"].to_numpy(float)])
    time = np.concatenate([np.arange(len(months))] * 2)
    res = sm.GLM(y, x, family=sm.families.Poisson()).fit(
        cov_type="hac-groupsum", cov_kwds={"time": time, "maxlags": HAC_LAGS}
    )
    return float(res.params["trend_diff"]), float(res.bse["trend_diff"]), int(len(y))


def summarise(draws: np.ndarray, point: float) -> dict[str, float]:
    """Point estimate, simulation se and 95% percentile interval of a draw vector."""
    lo, hi = np.quantile(draws, [0.025, 0.975])
    return {"estimate": float(point), "se": float(np.std(draws, ddof=1)), "low": float(lo), "high": float(hi)}


def implied_by_race(averted: np.ndarray, point: float, arrests: pd.Series, *, seed: int) -> pd.DataFrame:
    """Averted arrests split by race in proportion to the pre-policy arrest composition.

    Assumption (not testable with these data): the arrests the policy averted had the same racial
    composition as the pre-policy arrests in ``arrests`` (counts by race). The interval combines the
    uncertainty of the averted total (its draws) with that of the shares (Dirichlet with the counts
    plus 1/2, the Jeffreys prior), drawn with ``seed``.
    """
    counts = arrests.to_numpy(float)
    rng = np.random.default_rng(seed)
    shares = rng.dirichlet(counts + 0.5, size=len(averted))
    split = shares * averted[:, None]
    lo, hi = np.quantile(split, [0.025, 0.975], axis=0)
    share_pt = counts / counts.sum()
    return pd.DataFrame(
        {
            "race": list(arrests.index),
            "share": share_pt,
            "averted": point * share_pt,
            "averted_low": lo,
            "averted_high": hi,
        }
    )
