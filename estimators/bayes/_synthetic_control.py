"""Bayesian synthetic control: donor weights with a Dirichlet (simplex) or regularised horseshoe (sparse) prior.

Estimand
--------
The effect on the treated unit in each post-period, ``y_1t - y_1t(0)``, and its average over the
post-period (the ATT of one treated unit), with ``y_1t(0)`` drawn from the posterior predictive of the
synthetic control.

Model, ``weights="dirichlet"`` (outcomes divided by the treated unit's pre-period sd ``c``)::

    y_1t / c ~ N(sum_j w_j y_jt / c, sigma),  t < t0,   w ~ Dirichlet(1, ..., 1),  sigma ~ HalfNormal(sigma_sd)

Model, ``weights="horseshoe"`` (the regularised, "Finnish", horseshoe of Piironen and Vehtari 2017).
Every series is centred on its own pre-period mean; the treated series is divided by its pre-period
sd ``c`` and donor j by its own pre-period sd ``s_j`` (``c`` if that is 0), so ``x_jt = (y_jt - m_j)/s_j``
and ``u_t = (y_1t - m_1)/c``::

    u_t ~ N(b + sum_j beta_j x_jt, sigma),  t < t0 (T0 pre-periods, J donors)
    beta_j = z_j tau lambda~_j,  z_j ~ N(0, 1),  lambda_j ~ HalfCauchy(1)
    lambda~_j^2 = s^2 lambda_j^2 / (s^2 + tau^2 lambda_j^2),  s^2 ~ InvGamma(slab_df/2, slab_df slab_scale^2/2)
    tau = tau0 tau_z,  tau_z ~ HalfCauchy(1),  tau0 = p0 / (J - p0) * sigma / sqrt(T0)
    b ~ N(0, intercept_sd),  sigma ~ InvGamma(3, 2 sigma_mean)

and on the outcome scale ``y_1t(0) = m_1 + c (b + sum_j beta_j x_jt)``, donor weights
``w_j = beta_j c / s_j`` (reported as ``"weights"``), intercept ``m_1 + c b - sum_j w_j m_j``.
``p0`` is a prior guess of the number of donors that matter (default 3; clipped to J - 1). The slab
bounds every weight (about ``slab_scale`` in standardised units) where the plain horseshoe lets the few
pre-periods be fitted exactly by large weights. The inverse-gamma prior on sigma has no mass near 0: with
J > T0 many donor subsets fit the pre-period exactly, and a prior with density at 0 (half-normal) leaves
a funnel (sigma -> 0, tau0 -> 0) the sampler cannot explore; a residual sd below about a tenth of the
treated unit's own pre-period sd is not identifiable from a handful of pre-periods.

Assumptions: the treated unit's untreated outcome is (approximately) the weighted donor combination
in every period, with the same weights (and, for the horseshoe, intercept) before and after ``t0``;
donors are unaffected by the policy.

References
----------
Abadie, Diamond and Hainmueller (2010), "Synthetic control methods for comparative case studies",
JASA 105, 493-505.
Kim, Lee and Gupta (2020), "Bayesian synthetic control methods", J Marketing Research 57(5), 831-852.
Carvalho, Polson and Scott (2010), "The horseshoe estimator for sparse signals", Biometrika 97, 465-480.
Piironen and Vehtari (2017), "Sparsity information and regularization in the horseshoe and other
shrinkage priors", Electronic Journal of Statistics 11, 5018-5051.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd

from decrimkit.errors import DesignError
from decrimkit.options import check_option
from decrimkit.panel import Panel
from decrimkit.results import Spec

from ._sampling import check_convergence, merge_priors, sample, validate_sampling
from .results import ITSPosterior, Level, hdi

__all__ = ["synthetic_control", "SYNTH_PRIORS"]

Weights = Literal["dirichlet", "horseshoe"]

SYNTH_PRIORS: dict[str, float] = {"sigma_sd": 1.0, "intercept_sd": 1.0, "sigma_mean": 0.5, "p0": 3.0,
                                  "slab_scale": 1.0, "slab_df": 4.0}
"""Prior settings: ``sigma_sd`` (Dirichlet model's half-normal sigma); the horseshoe model's ``intercept_sd``,
``sigma_mean`` (prior mean of its inverse-gamma sigma), ``p0`` (prior guess of the number of relevant
donors), ``slab_scale`` and ``slab_df`` (the slab); all on the standardised scale of the module notes."""


class SynthDesign(NamedTuple):
    """``y1``: (T,) treated outcome; ``y0``: (T, J) donors; ``pre``: (T,) bool; labels; ``c``: the treated
    unit's pre-period sd; ``m1``, ``m0`` (J,), ``s0`` (J,): pre-period means and donor sds (horseshoe scale)."""

    y1: np.ndarray
    y0: np.ndarray
    pre: np.ndarray
    donors: list[str]
    times: list[str]
    c: float
    m1: float
    m0: np.ndarray
    s0: np.ndarray


def synth_design(panel: Panel, *, treated: Any, start: Any, scale: str) -> SynthDesign:
    """Validate and build the arrays (raises DesignError)."""
    panel.require_balanced("bayes.synthetic_control")
    if treated not in set(panel.units):
        raise DesignError(f"treated={treated!r} is not a unit of the panel; units include {list(panel.units[:5])}.")
    t0 = panel.time_position(start)
    wide = pd.DataFrame(panel.outcome(scale), index=panel.frame.index).assign(
        unit=panel.frame["unit"], t=panel.frame["t"]).pivot(index="t", columns="unit", values=0)
    donors = [u for u in panel.never_treated_units if u != treated]
    if len(donors) < 2:
        raise DesignError(f"bayes.synthetic_control needs at least 2 never-treated donors; the panel has {len(donors)}.")
    if t0 < 3 or t0 >= panel.n_periods:
        raise DesignError(f"start={start!r} leaves {t0} pre-periods and {panel.n_periods - t0} post-periods; "
                          f"at least 3 pre-periods and 1 post-period are needed.")
    y1 = wide[treated].to_numpy(dtype="float64")
    y0 = wide[donors].to_numpy(dtype="float64")
    c = float(np.std(y1[:t0], ddof=1)) or 1.0
    s0 = np.std(y0[:t0], axis=0, ddof=1)
    return SynthDesign(y1=y1, y0=y0, pre=np.arange(panel.n_periods) < t0, donors=[str(d) for d in donors],
                       times=[str(t) for t in panel.times], c=c, m1=float(y1[:t0].mean()),
                       m0=y0[:t0].mean(axis=0), s0=np.where(s0 > 0, s0, c))


def synth_model(design: SynthDesign, *, weights: str, priors: dict[str, float]) -> Any:
    """The PyMC model of :func:`synthetic_control` (built, not sampled)."""
    import pymc as pm
    import pytensor.tensor as pt

    coords = {"donor": design.donors, "time": design.times}
    if weights == "horseshoe":
        return _horseshoe_model(design, priors, coords)
    n_donors = design.y0.shape[1]
    x = design.y0 / design.c
    with pm.Model(coords=coords) as model:
        w = pm.Dirichlet("weights", a=np.ones(n_donors), dims="donor")
        sigma = pm.HalfNormal("sigma", priors["sigma_sd"])
        synth = pm.Deterministic("synthetic", pt.dot(x, w) * design.c, dims="time")
        pm.Normal("y", mu=synth[design.pre] / design.c, sigma=sigma, observed=design.y1[design.pre] / design.c)
    return model


def horseshoe_p0(priors: dict[str, float], n_donors: int) -> float:
    """The ``p0`` the horseshoe model uses: the prior guess, clipped to ``n_donors - 1`` so tau0 is finite."""
    return min(priors["p0"], n_donors - 1.0)


def _horseshoe_model(design: SynthDesign, priors: dict[str, float], coords: dict[str, list[str]]) -> Any:
    """The regularised-horseshoe model of the module notes (centred, standardised, non-centred weights)."""
    import pymc as pm
    import pytensor.tensor as pt

    n_donors, n_pre = design.y0.shape[1], int(design.pre.sum())
    x = (design.y0 - design.m0) / design.s0
    u = (design.y1 - design.m1) / design.c
    p0 = horseshoe_p0(priors, n_donors)
    nu, s = priors["slab_df"], priors["slab_scale"]
    with pm.Model(coords=coords) as model:
        sigma = pm.InverseGamma("sigma", alpha=3.0, beta=2.0 * priors["sigma_mean"])
        tau_z = pm.HalfCauchy("tau_z", 1.0)
        tau = pm.Deterministic("tau", tau_z * p0 / (n_donors - p0) * sigma / np.sqrt(n_pre))
        lam = pm.HalfCauchy("lambda", 1.0, dims="donor")
        slab2 = pm.InverseGamma("slab2", alpha=nu / 2.0, beta=nu * s**2 / 2.0)
        lam_t = pt.sqrt(slab2 * lam**2 / (slab2 + tau**2 * lam**2))
        z = pm.Normal("weights_z", 0.0, 1.0, dims="donor")
        beta = z * tau * lam_t
        b = pm.Normal("intercept", 0.0, priors["intercept_sd"])
        pm.Deterministic("weights", beta * design.c / design.s0, dims="donor")
        mu = b + pt.dot(x, beta)
        pm.Deterministic("synthetic", design.m1 + design.c * mu, dims="time")
        pm.Normal("y", mu=mu[design.pre], sigma=sigma, observed=u[design.pre])
    return model


def synthetic_control(
    panel: Panel,
    *,
    treated: Any,
    start: Any,
    weights: Weights = "dirichlet",
    scale: str = "auto",
    priors: dict[str, float] | None = None,
    sampler: str = "blackjax",
    chains: int = 4,
    draws: int = 1000,
    tune: int = 1000,
    seed: int = 0,
    target_accept: float | None = None,
    strict: bool = False,
    progress: bool | None = None,
) -> ITSPosterior:
    """Bayesian synthetic control of one treated unit against the panel's never-treated donors.

    Parameters
    ----------
    panel : Panel
        Balanced panel; the never-treated units other than ``treated`` are the donors.
    treated : unit label
        The treated unit.
    start : period label
        First period with the policy in force.
    weights : {"dirichlet", "horseshoe"}
        Convex donor weights (Dirichlet(1) prior on the simplex) or sparse unconstrained weights with an
        intercept under the *regularised* ("Finnish") horseshoe of Piironen and Vehtari (2017), on centred,
        standardised series (module notes). Until this release ``"horseshoe"`` meant the plain horseshoe
        on uncentred series, which does not converge when donors outnumber pre-periods.
    scale : {"auto", "raw", "rate"}
        Outcome scale (``panel.outcome(scale)``; ``"auto"`` uses the rate when the panel has population).
    priors : dict, optional
        Overrides of :data:`SYNTH_PRIORS` (standardised scale; module notes): ``sigma_sd`` (Dirichlet);
        ``p0`` (prior number of relevant donors, default 3), ``slab_scale`` (1), ``slab_df`` (4),
        ``sigma_mean`` (0.5), ``intercept_sd`` (1) for the horseshoe.
    target_accept : float, optional
        NUTS target acceptance rate; default 0.95 for ``"dirichlet"`` and 0.995 for ``"horseshoe"``, whose
        posterior (heavy-tailed local scales) gives a few divergences at 0.95 on panels like Oregon's.
    sampler, chains, draws, tune, seed, strict, progress
        As in :func:`decrimkit.estimators.bayes.hierarchical_did`.

    Returns
    -------
    ITSPosterior
        Headline ``mean_effect`` (average post-period gap, observed minus synthetic); levels ``"overall"``
        (``mean_effect``, ``total_effect``), ``"monthly"`` (per post-period; named so for all frequencies)
        and ``"weights"``. ``counterfactual()`` gives observed vs synthetic by period.
    """
    check_option("weights", weights, Weights)
    check_option("scale", scale, ("auto", "raw", "rate"))
    validate_sampling(sampler=sampler, chains=chains, draws=draws, tune=tune, seed=seed)
    pri = merge_priors(SYNTH_PRIORS, priors, "bayes.synthetic_control")
    if target_accept is None:
        target_accept = 0.995 if weights == "horseshoe" else 0.95
    design = synth_design(panel, treated=treated, start=start, scale=scale)
    model = synth_model(design, weights=weights, priors=pri)
    idata = sample(model, sampler=sampler, chains=chains, draws=draws, tune=tune, seed=seed,
                   target_accept=target_accept, progress=progress)
    gated = [v.name for v in model.free_RVs if v.name != "lambda"] + (["tau"] if weights == "horseshoe" else []) + ["weights"]
    diag = check_convergence(idata, gated, estimator="bayes.synthetic_control", strict=strict)
    series = _gaps(idata, design, seed)
    spec = Spec(
        estimator="bayes.synthetic_control",
        options={"treated": str(treated), "start": str(start), "weights": weights, "scale": scale, "priors": pri,
                 **({"p0_used": horseshoe_p0(pri, len(design.donors))} if weights == "horseshoe" else {}),
                 "sampler": sampler, "chains": chains, "draws": draws, "tune": tune, "target_accept": target_accept},
        seed=seed, n_units=len(design.donors) + 1, n_periods=len(design.times), n_obs=int(design.pre.sum()),
        excluded=panel.excluded,
        notes=tuple(() if diag.converged else ("convergence gate failed: " + "; ".join(diag.problems),)),
    )
    levels = {
        "overall": Level(("mean_effect", "total_effect"), None, "term", "posterior_predictive"),
        "monthly": Level(("effect",), "post_period", "period", "posterior_predictive"),
        "weights": Level(("weights",), "donor", "donor"),
    }
    return ITSPosterior(idata=idata, spec=spec, levels=levels, headline=("overall", "mean_effect"),
                        scale="difference in outcome, observed minus synthetic", diagnostics_=diag, series=series,
                        title="Bayesian synthetic control")


def _gaps(idata: Any, design: SynthDesign, seed: int) -> pd.DataFrame:
    """Add posterior-predictive gap draws to ``idata`` and return the by-period table."""
    import xarray as xr

    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(4)[3])
    mean = np.asarray(idata.posterior["synthetic"])                          # (chain, draw, T)
    sig = np.asarray(idata.posterior["sigma"])[..., None] * design.c
    cf = mean + sig * rng.standard_normal(mean.shape)
    eff = design.y1[None, None, :] - cf
    post = ~design.pre
    cum = np.cumsum(np.where(post, eff, 0.0), axis=-1)
    dims, coords = ("chain", "draw"), {"chain": idata.posterior["chain"], "draw": idata.posterior["draw"]}
    pp = idata.posterior_predictive
    pp["counterfactual"] = xr.DataArray(cf, dims=dims + ("time",), coords={**coords, "time": design.times})
    pp["effect"] = xr.DataArray(eff[..., post], dims=dims + ("post_period",),
                                coords={**coords, "post_period": [t for t, p in zip(design.times, post) if p]})
    pp["mean_effect"] = xr.DataArray(eff[..., post].mean(axis=-1), dims=dims, coords=coords)
    pp["total_effect"] = xr.DataArray(cum[..., -1], dims=dims, coords=coords)
    flat = lambda a: a.reshape(-1, a.shape[-1])  # noqa: E731
    rows = []
    for k, t in enumerate(design.times):
        c, e, q = flat(cf)[:, k], flat(eff)[:, k], flat(cum)[:, k]
        rows.append({"time": t, "post": bool(post[k]), "counted": bool(post[k]), "excluded": False,
                     "observed": design.y1[k], "cf_mean": c.mean(), **dict(zip(("cf_low", "cf_high"), hdi(c))),
                     "effect_mean": e.mean(), **dict(zip(("effect_low", "effect_high"), hdi(e))),
                     "cumulative_mean": q.mean(), **dict(zip(("cumulative_low", "cumulative_high"), hdi(q)))})
    return pd.DataFrame(rows)
