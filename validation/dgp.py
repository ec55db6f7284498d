"""Data-generating processes of the Monte Carlo validation, vectorised over units and periods.

Every generator takes a NumPy ``Generator`` and returns a long ``DataFrame`` (columns ``unit``,
``time``, ``y``, ``cohort`` and, for counts, ``population``) plus the true value of each target the
estimators are checked against. The replication seed comes from ``(cell, rep)`` in ``run.py``, so one
replication draws the same data whichever worker runs it.

DGPs
----
``staggered``
    ``y_it = a_i + b_t + tau_it D_it + e_it``, ``a_i, b_t ~ N(0, 1)``, ``e_it`` AR(1) with
    coefficient ``rho`` and unit innovation variance (stationary start). Cohorts adopt at the given
    periods and stay treated; the rest are never treated. ``effect="homogeneous"``: ``tau_it = tau``.
    ``effect="dynamic"``: ``tau_it = tau (1 + 0.5 e)`` with ``e = t - g`` the event time, the same
    path in every cohort (heterogeneous over time, so static TWFE is biased towards the short-run
    effects of early cohorts while CS, imputation and a fully dynamic event study are not).
``counts``
    ``y_it ~ Poisson(P_i exp(a_i + b_t + log(rr) D_it) / 1e5)`` with populations ``P_i`` and a base
    mean of ``mean`` events per unit-period (small means give many zeros), one adoption date.
``factor``
    An interactive fixed-effects model for the synthetic-control family:
    ``y_it = a_i + b_t + mu_i' f_t + tau D_it + e_it`` with two AR(1) factors (coefficient 0.8),
    ``mu_i ~ N(0, I)`` and ``e_it ~ N(0, sigma^2)``. Units are exchangeable (i.i.d. draws), so under
    ``tau = 0`` a placebo-in-space rank test of any one of them has exact size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.signal import lfilter

__all__ = ["Draw", "staggered", "counts", "factor", "ar1"]

START = 2000  # label of the first period


@dataclass(frozen=True)
class Draw:
    """One simulated panel and the true values of the targets the estimators are scored on."""

    frame: pd.DataFrame
    truth: dict[str, float]


def ar1(rng: np.random.Generator, shape: tuple[int, int], rho: float, sd: float = 1.0) -> np.ndarray:
    """(units, periods) AR(1) series with coefficient ``rho``, innovation sd ``sd``, stationary start."""
    eps = rng.normal(scale=sd, size=shape)
    if rho == 0:
        return eps
    eps[:, 0] /= np.sqrt(1.0 - rho**2)
    return lfilter([1.0], [1.0, -rho], eps, axis=1)


def _long(y: np.ndarray, g: np.ndarray, **extra: np.ndarray) -> pd.DataFrame:
    n, t = y.shape
    cohort = np.where(np.isfinite(g), g + START, 0).astype("int64")
    data: dict[str, Any] = {
        "unit": np.repeat(np.arange(n), t),
        "time": np.tile(np.arange(t), n) + START,
        "y": y.ravel(),
        "cohort": np.repeat(cohort, t),
    }
    data.update({k: np.repeat(v, t) if v.ndim == 1 else v.ravel() for k, v in extra.items()})
    return pd.DataFrame(data)


def _cohorts(n_units: int, cohorts: tuple[int, ...], n_treated: tuple[int, ...]) -> np.ndarray:
    """First treated period position per unit (inf = never): the first units fill the cohorts in order."""
    g = np.full(n_units, np.inf)
    start = 0
    for c, k in zip(cohorts, n_treated):
        g[start:start + k] = c
        start += k
    return g


def staggered(
    rng: np.random.Generator,
    *,
    n_units: int = 40,
    n_periods: int = 8,
    cohorts: tuple[int, ...] = (3, 5),
    n_treated: tuple[int, ...] = (10, 10),
    tau: float = 1.0,
    effect: str = "homogeneous",
    rho: float = 0.0,
    event_times: tuple[int, ...] = (-2, 0, 2),
) -> Draw:
    """Staggered adoption with homogeneous or dynamic effects and AR(1) errors (see the module notes).

    Truth: ``att`` = mean of ``tau_it`` over treated unit-periods (the estimand of CS "simple",
    imputation's overall ATT and, with homogeneous effects, TWFE); ``e<k>`` = mean effect at event time k.
    """
    g = _cohorts(n_units, cohorts, n_treated)
    t = np.arange(n_periods)
    e = t[None, :] - g[:, None]                        # event time (-inf for never treated)
    treated = e >= 0
    if effect == "homogeneous":
        tau_it = np.where(treated, tau, 0.0)
    elif effect == "dynamic":
        tau_it = np.where(treated, tau * (1.0 + 0.5 * np.where(treated, e, 0)), 0.0)
    else:
        raise ValueError(f"unknown effect {effect!r}")
    y = (rng.normal(size=(n_units, 1)) + rng.normal(size=(1, n_periods)) + tau_it
         + ar1(rng, (n_units, n_periods), rho))
    truth = {"att": float(tau_it[treated].mean())}
    for k in event_times:
        at = e == k
        truth[f"e{k}"] = float(tau_it[at].mean()) if k >= 0 else 0.0
    return Draw(_long(y, g), truth)


def counts(
    rng: np.random.Generator,
    *,
    n_units: int = 40,
    n_periods: int = 8,
    start: int = 4,
    n_treated: int = 20,
    mean: float = 1.0,
    rate_ratio: float = 1.25,
) -> Draw:
    """Poisson counts with a population offset and one adoption date; truth ``log_rr`` = log(rate_ratio)."""
    g = _cohorts(n_units, (start,), (n_treated,))
    pop = np.round(np.exp(rng.normal(np.log(50_000), 0.5, size=n_units)))
    d = np.arange(n_periods)[None, :] >= g[:, None]
    log_mu = (np.log(mean) + np.log(pop / 50_000)[:, None] + 0.3 * rng.normal(size=(n_units, 1))
              + 0.2 * rng.normal(size=(1, n_periods)) + np.log(rate_ratio) * d)
    y = rng.poisson(np.exp(log_mu)).astype("float64")
    return Draw(_long(y, g, population=pop), {"log_rr": float(np.log(rate_ratio))})


def factor(
    rng: np.random.Generator,
    *,
    n_units: int = 20,
    n_periods: int = 16,
    start: int = 12,
    n_treated: int = 1,
    tau: float = 0.0,
    sigma: float = 0.5,
) -> Draw:
    """Interactive fixed effects with two AR(1) factors; ``n_treated`` units adopt at ``start``."""
    g = _cohorts(n_units, (start,), (n_treated,))
    f = ar1(rng, (2, n_periods), 0.8, sd=np.sqrt(1 - 0.8**2))      # (2, T) unit-variance factors
    mu = rng.normal(size=(n_units, 2))
    d = np.arange(n_periods)[None, :] >= g[:, None]
    y = (rng.normal(size=(n_units, 1)) + rng.normal(size=(1, n_periods)) + mu @ f + tau * d
         + rng.normal(scale=sigma, size=(n_units, n_periods)))
    return Draw(_long(y, g), {"att": float(tau)})
