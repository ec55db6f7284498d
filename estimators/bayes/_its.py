"""Bayesian (comparative) interrupted time series for one jurisdiction's monthly counts.

Estimand
--------
The effect of a policy that starts in month ``t0`` on a monthly count: for each month ``t >= t0``,
``y_t - y_t(0)``, the observed count minus the count that would have been seen without the policy
(the counterfactual, drawn from the posterior predictive), and its sum over the post-period
(negative values are counts *averted*). The model's level change (a log rate ratio at ``t0``) and
slope change (log rate ratio per year) are reported too.

Model (count families; ``s = 0`` is the treated series, ``s = 1`` the optional comparison series)::

    y_st ~ NegBin(mu_st, phi_s)       (or Poisson(mu_st))
    log mu_st = a_s + b_s (u_t - ubar) + season_s(t) + g_t [comparison only]
                + 1[s=0] (delta P_t + beta P_t u_t + kappa C_t)

with ``u_t`` years since ``t0`` (``ubar`` its pre-period mean), ``P_t = 1[t >= t0]``, ``C_t`` the optional COVID-window indicator,
``season_s`` zero-sum month effects (or two Fourier harmonics) and ``g_t`` month shocks shared by
both series (comparative ITS). With a comparison series the effect is identified against it: the
shared shocks absorb common disturbances (policing, the pandemic), and ``kappa`` is the *differential*
COVID shock of the treated series. The normal family replaces the log link by the identity and
scales every prior by the pre-period sd of the series.

Priors (log scale; override with ``priors={name: scale}``): ``a_s ~ N(log pre-mean, intercept_sd=1)``,
``b_s ~ N(0, trend_sd=0.5)``, season ``~ ZeroSumNormal(season_sd=0.5)``, ``delta ~ N(0, level_sd=1)``,
``beta ~ N(0, slope_sd=0.5)``, ``kappa ~ N(0, covid_sd=1)``, ``g_t = sigma_g z_t``,
``sigma_g ~ HalfNormal(shock_sd=0.2)``, ``1/sqrt(phi_s) ~ HalfNormal(dispersion_sd=1)``.

Assumptions: without the policy the treated series would have followed its pre-period trend and
seasonality (and, with a comparison, the comparison's month-to-month shocks); nothing else changed
at ``t0`` except what the COVID term or excluded months handle.

References
----------
Bernal, Cummins and Gasparrini (2017), "Interrupted time series regression for the evaluation of public
health interventions: a tutorial", Int J Epidemiol 46(1), 348-355.
Brodersen, Gallusser, Koehler, Remy and Scott (2015), "Inferring causal impact using Bayesian structural
time-series models", Ann Appl Stat 9(1), 247-274.
Rouhani, Schneider, Rao, Urquhart, Park and Sherman (2021), "Baltimore Non-Prosecution Policy Evaluation",
Johns Hopkins Bloomberg School of Public Health.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd

from decrimkit.errors import DataError, DesignError, SpecificationError
from decrimkit.options import Family, check_option
from decrimkit.results import Spec

from ._sampling import check_convergence, merge_priors, sample, validate_sampling
from .results import ITSPosterior, Level, hdi

__all__ = ["its", "ITS_PRIORS"]

Season = Literal["month", "fourier", "none"]

ITS_PRIORS: dict[str, float] = {
    "intercept_sd": 1.0, "trend_sd": 0.5, "season_sd": 0.5, "level_sd": 1.0, "slope_sd": 0.5,
    "covid_sd": 1.0, "shock_sd": 0.2, "dispersion_sd": 1.0, "sigma_sd": 1.0,
}


class ITSDesign(NamedTuple):
    """Arrays of one ITS fit. ``y``: (n_series, T); ``months``: (T,) PeriodIndex."""

    y: np.ndarray
    months: pd.PeriodIndex
    post: np.ndarray          # (T,) 0/1
    u: np.ndarray             # (T,) years since start
    month_of_year: np.ndarray  # (T,) 0..11
    covid: np.ndarray         # (T,) 0/1
    keep: np.ndarray          # (T,) bool, in the likelihood
    scale: float              # 1 for counts, pre-period sd for the normal family
    centre: np.ndarray        # (n_series,) prior centre of the intercepts


def _monthly(series: Any, name: str) -> pd.Series:
    if not isinstance(series, pd.Series):
        raise DataError(f"{name} must be a pandas Series of monthly values indexed by month, got "
                        f"{type(series).__name__}. Build one with df.set_index('month')['count'].")
    idx = series.index
    if isinstance(idx, pd.DatetimeIndex):
        idx = idx.to_period("M")
    elif not isinstance(idx, pd.PeriodIndex):
        try:
            idx = pd.PeriodIndex(pd.to_datetime(idx.astype("string"), format="mixed"), freq="M")
        except (ValueError, TypeError) as exc:
            raise DataError(f"{name} index cannot be read as months ({exc}); index it by dates or pd.Period.") from exc
    if idx.freqstr not in ("M", "ME"):
        idx = idx.asfreq("M")
    ordinals = np.asarray(idx.asi8)
    if len(ordinals) < 2 or (np.diff(ordinals) != 1).any():
        bad = np.flatnonzero(np.diff(ordinals) != 1)
        where = f" (first gap after {idx[bad[0]]})" if len(bad) else ""
        raise DataError(f"{name} must hold consecutive months, sorted, without gaps or repeats{where}. "
                        f"Reindex to every month and mark unusable months with exclude= instead.")
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64")
    if not np.isfinite(values).all():
        raise DataError(f"{name} has {int((~np.isfinite(values)).sum())} missing or non-numeric values "
                        f"(first at {idx[np.flatnonzero(~np.isfinite(values))[0]]}); fill them or use exclude=.")
    return pd.Series(values, index=idx, name=series.name)


def _window(months: pd.PeriodIndex, window: Any, name: str) -> np.ndarray:
    if window is None:
        return np.zeros(len(months), dtype=bool)
    if not (isinstance(window, (tuple, list)) and len(window) == 2):
        raise SpecificationError(f"{name} must be a (first, last) pair of months, e.g. ('2020-03', '2020-06').")
    lo, hi = (pd.Period(w, freq="M") for w in window)
    if hi < lo:
        raise SpecificationError(f"{name}={window!r} ends before it starts.")
    return np.asarray((months >= lo) & (months <= hi))


def its_design(series: Any, *, start: Any, comparison: Any, family: str, covid: Any, exclude: Any) -> ITSDesign:
    """Validate the inputs and build the design arrays (raises DataError/DesignError/SpecificationError)."""
    y0 = _monthly(series, "series")
    ys = [y0]
    if comparison is not None:
        y1 = _monthly(comparison, "comparison")
        if not y1.index.equals(y0.index):
            raise DataError(f"comparison covers {y1.index[0]}..{y1.index[-1]} but series covers "
                            f"{y0.index[0]}..{y0.index[-1]}; give both for the same months.")
        ys.append(y1)
    y = np.vstack([s.to_numpy() for s in ys])
    if family != "normal":
        if (y < 0).any() or (y != np.round(y)).any():
            raise DataError(f"family={family!r} needs non-negative whole counts; use family='normal' for rates.")
    months = y0.index
    try:
        t0 = pd.Period(start, freq="M")
    except (ValueError, TypeError) as exc:
        raise SpecificationError(f"start={start!r} is not a month ({exc}); use e.g. '2020-04'.") from exc
    post = np.asarray(months >= t0)
    n_pre, n_post = int((~post).sum()), int(post.sum())
    if n_pre < 12 or n_post < 1:
        raise DesignError(f"start={t0} leaves {n_pre} pre-period and {n_post} post-period months; an ITS with "
                          f"seasonality needs at least 12 pre-period months and one post-period month.")
    u = (np.asarray(months.asi8) - t0.ordinal) / 12.0
    cov = _window(months, covid, "covid")
    keep = ~_window(months, exclude, "exclude")
    pre = ~post & keep
    if family == "normal":
        scale = float(np.std(y[0, pre], ddof=1)) or 1.0
        centre = y[:, pre].mean(axis=1)
    else:
        scale = 1.0
        centre = np.log(np.maximum(y[:, pre].mean(axis=1), 0.5))
    return ITSDesign(y=y, months=months, post=post.astype("float64"), u=u,
                     month_of_year=np.asarray(months.month) - 1, covid=cov.astype("float64"), keep=keep,
                     scale=scale, centre=centre)


def its_model(design: ITSDesign, *, family: str, season: str, priors: dict[str, float]) -> Any:
    """The PyMC model of :func:`its` (built, not sampled)."""
    import pymc as pm
    import pytensor.tensor as pt

    n_s, n_t = design.y.shape
    s = design.scale
    coords = {"series": ["treated", "comparison"][:n_s], "month": [str(m) for m in design.months],
              "month_of_year": list(range(1, 13)), "harmonic": ["sin1", "cos1", "sin2", "cos2"]}
    with pm.Model(coords=coords) as model:
        a = pm.Normal("intercept", mu=design.centre, sigma=priors["intercept_sd"] * s, dims="series")
        b = pm.Normal("trend", 0.0, priors["trend_sd"] * s, dims="series")
        u_c = design.u - design.u[design.keep & (design.post == 0)].mean()  # centred: a and b nearly uncorrelated
        eta = a[:, None] + b[:, None] * u_c[None, :]
        if season == "month":
            sm = pm.ZeroSumNormal("season", sigma=priors["season_sd"] * s, dims=("series", "month_of_year"))
            eta = eta + sm[:, design.month_of_year]
        elif season == "fourier":
            w = 2 * np.pi * design.month_of_year / 12.0
            basis = np.column_stack([np.sin(w), np.cos(w), np.sin(2 * w), np.cos(2 * w)])  # (T, 4)
            coef = pm.Normal("season", 0.0, priors["season_sd"] * s, dims=("series", "harmonic"))
            eta = eta + pt.dot(coef, basis.T)
        if n_s == 2:
            sigma_g = pm.HalfNormal("shock_sd", priors["shock_sd"] * s)
            z = pm.Normal("shock_z", 0.0, 1.0, dims="month")
            eta = eta + (sigma_g * z)[None, :]
        delta = pm.Normal("level_change", 0.0, priors["level_sd"] * s)
        beta = pm.Normal("slope_change", 0.0, priors["slope_sd"] * s)
        policy = delta * design.post + beta * design.post * design.u
        if design.covid.any():
            kappa = pm.Normal("covid", 0.0, priors["covid_sd"] * s)
            other = kappa * design.covid
        else:
            other = pt.zeros(n_t)
        eta_cf0 = eta[0] + other
        pm.Deterministic("mu_cf", pt.exp(eta_cf0) if family != "normal" else eta_cf0, dims="month")
        treated_eta = eta_cf0 + policy
        full = pt.concatenate([treated_eta[None, :], eta[1:]], axis=0) if n_s == 2 else treated_eta[None, :]
        mu = pt.exp(full) if family != "normal" else full
        keep = np.flatnonzero(np.tile(design.keep, n_s))
        mu_obs = mu.reshape((-1,))[keep]
        y_obs = design.y.reshape(-1)[keep]
        if family == "negative_binomial":
            inv = pm.HalfNormal("inv_sqrt_dispersion", priors["dispersion_sd"], dims="series")
            alpha = 1.0 / inv**2
            pm.Deterministic("dispersion", alpha, dims="series")
            series_of = np.repeat(np.arange(n_s), n_t)[keep]
            pm.NegativeBinomial("y", mu=mu_obs, alpha=alpha[series_of], observed=y_obs)
        elif family == "poisson":
            pm.Poisson("y", mu=mu_obs, observed=y_obs)
        else:
            sig = pm.HalfNormal("sigma", priors["sigma_sd"] * s, dims="series")
            series_of = np.repeat(np.arange(n_s), n_t)[keep]
            pm.Normal("y", mu=mu_obs, sigma=sig[series_of], observed=y_obs)
    return model


def _counterfactual_draws(idata: Any, design: ITSDesign, family: str, seed: int) -> np.ndarray:
    """Posterior-predictive counterfactual counts of the treated series: (chains, draws, T)."""
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(4)[3])
    mu = np.asarray(idata.posterior["mu_cf"])
    if family == "poisson":
        return rng.poisson(mu).astype("float64")
    if family == "normal":
        sig = np.asarray(idata.posterior["sigma"])[..., 0]
        return mu + sig[..., None] * rng.standard_normal(mu.shape)
    alpha = np.asarray(idata.posterior["dispersion"])[..., 0][..., None]
    return rng.poisson(rng.gamma(alpha, mu / alpha)).astype("float64")


def _effects(idata: Any, design: ITSDesign, family: str, seed: int) -> pd.DataFrame:
    """Add effect draws to ``idata.posterior_predictive`` and return the by-month summary frame."""
    import xarray as xr

    cf = _counterfactual_draws(idata, design, family, seed)
    obs = design.y[0]
    post = design.post.astype(bool)
    counted = post & design.keep
    eff = obs[None, None, :] - cf
    cum = np.cumsum(np.where(counted, eff, 0.0), axis=-1)
    months = [str(m) for m in design.months]
    pmonths = [m for m, c in zip(months, counted) if c]
    dims = ("chain", "draw")
    coords = {"chain": idata.posterior["chain"], "draw": idata.posterior["draw"]}
    pp = idata.posterior_predictive
    pp["counterfactual"] = xr.DataArray(cf, dims=dims + ("month",), coords={**coords, "month": months})
    pp["effect"] = xr.DataArray(eff[..., counted], dims=dims + ("post_month",), coords={**coords, "post_month": pmonths})
    pp["total_effect"] = xr.DataArray(cum[..., -1], dims=dims, coords=coords)
    pp["mean_effect"] = xr.DataArray(eff[..., counted].mean(axis=-1), dims=dims, coords=coords)
    pp["averted"] = xr.DataArray(-cum[..., -1], dims=dims, coords=coords)
    flat = lambda a: a.reshape(-1, a.shape[-1])  # noqa: E731
    rows = []
    for k, m in enumerate(months):
        c, e, q = flat(cf)[:, k], flat(eff)[:, k], flat(cum)[:, k]
        rows.append({"time": m, "post": bool(post[k]), "counted": bool(counted[k]), "excluded": not design.keep[k],
                     "observed": obs[k], "cf_mean": c.mean(), **dict(zip(("cf_low", "cf_high"), hdi(c))),
                     "effect_mean": e.mean(), **dict(zip(("effect_low", "effect_high"), hdi(e))),
                     "cumulative_mean": q.mean(), **dict(zip(("cumulative_low", "cumulative_high"), hdi(q)))})
    return pd.DataFrame(rows)


def its(
    series: pd.Series,
    *,
    start: Any,
    comparison: pd.Series | None = None,
    season: Season = "month",
    family: Family = "negative_binomial",
    covid: tuple[Any, Any] | None = None,
    exclude: tuple[Any, Any] | None = None,
    priors: dict[str, float] | None = None,
    sampler: str = "blackjax",
    chains: int = 4,
    draws: int = 1000,
    tune: int = 1000,
    seed: int = 0,
    target_accept: float = 0.9,
    strict: bool = False,
    progress: bool | None = None,
) -> ITSPosterior:
    """Bayesian (comparative) interrupted time series of one jurisdiction's monthly counts.

    Parameters
    ----------
    series : Series
        Monthly counts of the treated outcome, indexed by month (dates or ``pd.Period``), consecutive.
    start : month label
        First month with the policy in force (e.g. ``"2020-04"``).
    comparison : Series, optional
        A comparison series for the same months, not targeted by the policy but exposed to the same
        shocks (comparative ITS); its month shocks are shared with the treated series.
    season : {"month", "fourier", "none"}
        Zero-sum month-of-year effects, two Fourier harmonics, or no seasonality.
    family : {"negative_binomial", "poisson", "normal"}
        Likelihood; count families use a log link, ``"normal"`` an identity link (e.g. for rates).
    covid : (first, last) months, optional
        Adds an indicator for this window to the treated series (its differential shock when there is a
        comparison), so the level change is identified from months outside it.
    exclude : (first, last) months, optional
        Months left out of the likelihood (a sensitivity analysis); they get counterfactuals but do not
        count in the total effect.
    priors : dict, optional
        Prior scales to override (names in ``ITS_PRIORS``; see the module notes).
    sampler, chains, draws, tune, seed, target_accept, progress
        Sampling settings (see :func:`decrimkit.estimators.bayes._sampling.sample`).
    strict : bool
        Raise :class:`~decrimkit.errors.ConvergenceError` instead of warning when the gate fails.

    Returns
    -------
    ITSPosterior
        ``estimate``: posterior mean of the total effect (observed minus counterfactual, summed over the
        counted post-period months; negative = averted); ``hdi()``: its 95% HDI. Levels:
        ``"overall"`` (``total_effect``, ``mean_effect``, ``averted``), ``"monthly"`` and ``"parameters"``
        (``level_change``, ``slope_change`` and ``covid`` on the log scale). ``counterfactual()`` gives
        the by-month table; ``plot()`` the observed-versus-counterfactual figure.

    Raises
    ------
    DataError, DesignError, SpecificationError, ConvergenceError

    Examples
    --------
    >>> from decrimkit.datasets import load_dataset  # doctest: +SKIP
    >>> cds = load_dataset("baltimore_bpd_arrests", file="bpd_narcotics_arrests_monthly_2018_2022.csv")
    >>> gun = load_dataset("baltimore_bpd_arrests", file="bpd_handgun_arrests_monthly_2018_2022.csv")
    >>> month = lambda d: pd.PeriodIndex(pd.to_datetime(d[["year", "month"]].assign(day=1)), freq="M")
    >>> y = pd.Series(cds["arrest_count"].to_numpy(), index=month(cds))
    >>> x = pd.Series(gun["arrest_count"].to_numpy(), index=month(gun))
    >>> res = bayes.its(y, start="2020-04", comparison=x, covid=("2020-03", "2020-06"), seed=1)
    >>> res.effect("overall")
    """
    check_option("family", family, Family)
    check_option("season", season, Season)
    validate_sampling(sampler=sampler, chains=chains, draws=draws, tune=tune, seed=seed)
    pri = merge_priors(ITS_PRIORS, priors, "bayes.its")
    design = its_design(series, start=start, comparison=comparison, family=family, covid=covid, exclude=exclude)
    model = its_model(design, family=family, season=season, priors=pri)
    idata = sample(model, sampler=sampler, chains=chains, draws=draws, tune=tune, seed=seed,
                   target_accept=target_accept, progress=progress)
    by_month = _effects(idata, design, family, seed)
    gated = [v.name for v in model.free_RVs]
    diag = check_convergence(idata, gated, estimator="bayes.its", strict=strict)
    params = ("level_change", "slope_change") + (("covid",) if design.covid.any() else ())
    n_excl = int((~design.keep).sum()) * design.y.shape[0]
    spec = Spec(
        estimator="bayes.its",
        options={"start": str(pd.Period(start, freq="M")), "comparison": comparison is not None, "season": season,
                 "family": family, "covid": None if covid is None else [str(c) for c in covid],
                 "exclude": None if exclude is None else [str(c) for c in exclude], "priors": pri,
                 "sampler": sampler, "chains": chains, "draws": draws, "tune": tune, "target_accept": target_accept},
        seed=seed, n_units=design.y.shape[0], n_periods=design.y.shape[1], n_obs=int(design.keep.sum()) * design.y.shape[0],
        excluded=((n_excl, "months excluded from the likelihood (exclude=)"),) if n_excl else (),
        notes=tuple(() if diag.converged else ("convergence gate failed: " + "; ".join(diag.problems),)),
    )
    levels = {
        "overall": Level(("total_effect", "mean_effect", "averted"), None, "term", "posterior_predictive"),
        "monthly": Level(("effect",), "post_month", "month", "posterior_predictive"),
        "parameters": Level(params, None, "term", "posterior", log=family != "normal"),
    }
    return ITSPosterior(idata=idata, spec=spec, levels=levels, headline=("overall", "total_effect"),
                        scale="count difference, observed minus counterfactual" if family != "normal"
                        else "difference in outcome", diagnostics_=diag, series=by_month)
