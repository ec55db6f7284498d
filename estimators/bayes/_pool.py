"""Bayesian three-level meta-analysis: pool already-estimated site effects within and across policy models.

Estimand
--------
The mean effect ``mu_m`` of each policy model, the overall mean ``mu_0`` across models, and each site's
shrunken effect ``theta_j``, from site estimates ``b_k`` with standard errors ``s_k`` (several rows may
share a site: they share its ``theta_j``).

Model::

    b_k ~ N(theta_j(k), s_k)                          (s_k treated as known)
    theta_j = mu_m(j) + tau_m(j) x_j,   mu_m = mu_0 + tau_0 v_m,   x, v ~ N(0, 1)   (non-centred)
    mu_0 ~ N(0, mu_0_sd),  tau_0 ~ HalfNormal(tau_0_sd),  tau_m ~ HalfNormal(tau_m_sd)

Default prior scales (``mu_0_sd=1``, ``tau_0_sd=0.5``, ``tau_m_sd=0.5``) suit effects on a log
rate-ratio scale (or standardised effects); for other scales pass ``priors=`` in the estimates' units.
With one site per model, ``tau_m`` is informed by its prior alone: say so when reporting.

Assumptions: the estimates are on one common scale and independent; sites are exchangeable within a
model, and models exchangeable across models.

References
----------
Konstantopoulos (2011), "Fixed effects and variance components estimation in three-level meta-analysis",
Research Synthesis Methods 2, 61-76.
Gelman, Carlin, Stern, Dunson, Vehtari and Rubin (2013), *Bayesian Data Analysis*, 3rd ed., ch. 5.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from decrimkit.errors import DataError, SpecificationError
from decrimkit.results import Spec

from ._sampling import check_convergence, merge_priors, sample, validate_sampling
from .results import Level, Posterior

__all__ = ["pool", "POOL_PRIORS", "pool_design", "pool_model"]

POOL_PRIORS: dict[str, float] = {"mu_0_sd": 1.0, "tau_0_sd": 0.5, "tau_m_sd": 0.5}


class PoolDesign(NamedTuple):
    """``estimate``, ``se``, ``site`` (index per row); ``model_of_site``; labels."""

    estimate: np.ndarray
    se: np.ndarray
    site: np.ndarray
    model_of_site: np.ndarray
    sites: list[str]
    models: list[str]


def pool_design(estimates: pd.DataFrame, *, site: str = "site", policy_model: str = "policy_model",
                estimate: str = "estimate", se: str = "se") -> PoolDesign:
    """Validate the estimates table and build the arrays."""
    if not isinstance(estimates, pd.DataFrame):
        raise DataError(f"estimates must be a DataFrame with columns {estimate!r}, {se!r}, {site!r}, "
                        f"{policy_model!r}; got {type(estimates).__name__}.")
    missing = [c for c in (estimate, se, site, policy_model) if c not in estimates.columns]
    if missing:
        raise DataError(f"estimates lacks columns {missing}; it has {list(estimates.columns)}. Rename or pass "
                        f"estimate=, se=, site=, policy_model=.")
    b = pd.to_numeric(estimates[estimate], errors="coerce").to_numpy(dtype="float64")
    s = pd.to_numeric(estimates[se], errors="coerce").to_numpy(dtype="float64")
    bad = ~np.isfinite(b) | ~np.isfinite(s) | (s <= 0)
    if bad.any():
        raise DataError(f"{int(bad.sum())} rows have a missing estimate or a non-positive/missing se (first row "
                        f"{int(np.flatnonzero(bad)[0])}); fix or drop them explicitly.")
    if estimates[[site, policy_model]].isna().any().any():
        raise DataError(f"{site!r} and {policy_model!r} must be filled on every row.")
    sites = [str(x) for x in pd.unique(estimates[site].astype(str))]
    per_site = estimates.assign(_s=estimates[site].astype(str), _m=estimates[policy_model].astype(str))
    n_models = per_site.groupby("_s")["_m"].nunique()
    if (n_models > 1).any():
        raise DataError(f"sites {n_models.index[n_models > 1].tolist()} appear under several policy models; a site "
                        f"belongs to one model (split it into separate sites if its policy changed).")
    models = sorted(per_site["_m"].unique())
    model_of_site = per_site.drop_duplicates("_s").set_index("_s")["_m"].reindex(sites)
    return PoolDesign(estimate=b, se=s, site=np.array([sites.index(x) for x in per_site["_s"]], dtype="int64"),
                      model_of_site=np.array([models.index(m) for m in model_of_site], dtype="int64"),
                      sites=sites, models=models)


def pool_model(design: PoolDesign, *, priors: dict[str, float], data: bool = False) -> Any:
    """The PyMC model of :func:`pool` (built, not sampled). ``data=True`` holds ``b`` in ``pm.Data``
    (named ``"estimate"``) so that calibration can swap data sets."""
    import pymc as pm

    coords = {"site": design.sites, "policy_model": design.models, "row": np.arange(len(design.estimate))}
    with pm.Model(coords=coords) as model:
        mu_0 = pm.Normal("mu_0", 0.0, priors["mu_0_sd"])
        tau_0 = pm.HalfNormal("tau_0", priors["tau_0_sd"])
        v = pm.Normal("model_z", 0.0, 1.0, dims="policy_model")
        mu_m = pm.Deterministic("mu_model", mu_0 + tau_0 * v, dims="policy_model")
        tau_m = pm.HalfNormal("tau_model", priors["tau_m_sd"], dims="policy_model")
        x = pm.Normal("site_z", 0.0, 1.0, dims="site")
        theta = pm.Deterministic("theta", mu_m[design.model_of_site] + tau_m[design.model_of_site] * x, dims="site")
        b = pm.Data("estimate", design.estimate, dims="row") if data else design.estimate
        pm.Normal("y", mu=theta[design.site], sigma=design.se, observed=b, dims="row")
    return model


def pool(
    estimates: pd.DataFrame,
    *,
    site: str = "site",
    policy_model: str = "policy_model",
    estimate: str = "estimate",
    se: str = "se",
    priors: dict[str, float] | None = None,
    sampler: str = "blackjax",
    chains: int = 4,
    draws: int = 1000,
    tune: int = 1000,
    seed: int = 0,
    target_accept: float = 0.95,
    strict: bool = False,
    progress: bool | None = None,
) -> Posterior:
    """Pool site estimates in a three-level model: sites within policy models, models overall.

    Parameters
    ----------
    estimates : DataFrame
        One row per estimate with columns ``estimate``, ``se``, ``site`` and ``policy_model`` (names
        changeable through the keyword arguments of the same names). Estimates must share a scale.
    priors : dict, optional
        Prior scales ``mu_0_sd``, ``tau_0_sd``, ``tau_m_sd`` in the estimates' units.
    sampler, chains, draws, tune, seed, target_accept, strict, progress
        As in :func:`decrimkit.estimators.bayes.hierarchical_did`.

    Returns
    -------
    Posterior
        Levels ``"jurisdiction"`` (each site's pooled ``theta_j``), ``"model"`` (``mu_m``), ``"overall"``
        (``mu_0``); headline ``mu_0``. ``plot()`` draws the forest plot by policy model.

    Examples
    --------
    >>> est = pd.DataFrame({"site": ["Baltimore", "Suffolk", "Oregon"], "estimate": [-1.2, -0.3, 0.1],
    ...                     "se": [0.12, 0.2, 0.15], "policy_model": ["unconditional_declination",
    ...                     "case_by_case_declination", "de_jure"]})
    >>> bayes.pool(est, seed=1).effect("model")                               # doctest: +SKIP
    """
    validate_sampling(sampler=sampler, chains=chains, draws=draws, tune=tune, seed=seed)
    pri = merge_priors(POOL_PRIORS, priors, "bayes.pool")
    design = pool_design(estimates, site=site, policy_model=policy_model, estimate=estimate, se=se)
    if not isinstance(target_accept, float) or not 0 < target_accept < 1:
        raise SpecificationError(f"target_accept must be in (0, 1), got {target_accept!r}.")
    model = pool_model(design, priors=pri)
    idata = sample(model, sampler=sampler, chains=chains, draws=draws, tune=tune, seed=seed,
                   target_accept=target_accept, progress=progress)
    gated = [v.name for v in model.free_RVs] + ["theta", "mu_model"]
    diag = check_convergence(idata, gated, estimator="bayes.pool", strict=strict)
    model_of = {s: design.models[m] for s, m in zip(design.sites, design.model_of_site)}
    spec = Spec(
        estimator="bayes.pool",
        options={"priors": pri, "sampler": sampler, "chains": chains, "draws": draws, "tune": tune,
                 "target_accept": target_accept, "policy_model_of": tuple(sorted(model_of.items()))},
        seed=seed, n_units=len(design.sites), n_obs=len(design.estimate),
        notes=tuple(() if diag.converged else ("convergence gate failed: " + "; ".join(diag.problems),)),
    )
    levels = {
        "overall": Level(("mu_0",), None, "term"),
        "model": Level(("mu_model",), "policy_model", "policy_model"),
        "jurisdiction": Level(("theta",), "site", "site"),
    }
    return Posterior(idata=idata, spec=spec, levels=levels, headline=("overall", "mu_0"),
                     scale="pooled effect (the estimates' scale)", diagnostics_=diag, title="Bayesian pooling")
