"""Bayesian synthetic control: donor weights with a Dirichlet (simplex) or horseshoe (sparse) prior.

Estimand
--------
The effect on the treated unit in each post-period, ``y_1t - y_1t(0)``, and its average over the
post-period (the ATT of one treated unit), with ``y_1t(0)`` drawn from the posterior predictive of the
synthetic control.

Model (outcomes divided by the treated unit's pre-period sd ``c``, so priors are scale-free)::

    y_1t / c ~ N(b + sum_j w_j y_jt / c, sigma)     for pre-periods t < t0
    "dirichlet":  w ~ Dirichlet(1, ..., 1),  b = 0                      (convex weights, as Abadie et al.)
    "horseshoe":  w_j = z_j lambda_j tau,  z_j ~ N(0, 1), lambda_j ~ HalfCauchy(1),
                  tau ~ HalfCauchy(tau_sd=0.1 * 1/J), b ~ N(0, intercept_sd=1)   (sparse, unconstrained)
    sigma ~ HalfNormal(sigma_sd=1)

Assumptions: the treated unit's untreated outcome is (approximately) the weighted donor combination
in every period, with the same weights before and after ``t0``; donors are unaffected by the policy.

References
----------
Abadie, Diamond and Hainmueller (2010), "Synthetic control methods for comparative case studies",
JASA 105, 493-505.
Kim, Lee and Gupta (2020), "Bayesian synthetic control methods", J Marketing Research 57(5), 831-852.
Carvalho, Polson and Scott (2010), "The horseshoe estimator for sparse signals", Biometrika 97, 465-480.
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

SYNTH_PRIORS: dict[str, float] = {"sigma_sd": 1.0, "tau_sd": 0.1, "intercept_sd": 1.0}


class SynthDesign(NamedTuple):
    """``y1``: (T,) treated outcome; ``y0``: (T, J) donors; ``pre``: (T,) bool; labels; ``c``: scale."""

    y1: np.ndarray
    y0: np.ndarray
    pre: np.ndarray
    donors: list[str]
    times: list[str]
    c: float


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
    return SynthDesign(y1=y1, y0=y0, pre=np.arange(panel.n_periods) < t0, donors=[str(d) for d in donors],
                       times=[str(t) for t in panel.times], c=c)


def synth_model(design: SynthDesign, *, weights: str, priors: dict[str, float]) -> Any:
    """The PyMC model of :func:`synthetic_control` (built, not sampled)."""
    import pymc as pm
    import pytensor.tensor as pt

    n_donors = design.y0.shape[1]
    x = design.y0 / design.c
    coords = {"donor": design.donors, "time": design.times}
    with pm.Model(coords=coords) as model:
        if weights == "dirichlet":
            w = pm.Dirichlet("weights", a=np.ones(n_donors), dims="donor")
            b = 0.0
        else:
            tau = pm.HalfCauchy("tau", priors["tau_sd"] / n_donors)
            lam = pm.HalfCauchy("lambda", 1.0, dims="donor")
            z = pm.Normal("weights_z", 0.0, 1.0, dims="donor")
            w = pm.Deterministic("weights", z * lam * tau, dims="donor")
            b = pm.Normal("intercept", float(np.mean(design.y1[design.pre] / design.c - x[design.pre].mean(axis=1))),
                          priors["intercept_sd"])
        sigma = pm.HalfNormal("sigma", priors["sigma_sd"])
        synth = pm.Deterministic("synthetic", (b + pt.dot(x, w)) * design.c, dims="time")
        pm.Normal("y", mu=synth[design.pre] / design.c, sigma=sigma, observed=design.y1[design.pre] / design.c)
    return model


def synthetic_control(
    panel: Panel,
    *,
    treated: Any,
    start: Any,
    weights: Weights = "dirichlet",
    scale: str = "auto",
    priors: dict[str, float] | None = None,
    sampler: str = "numpyro",
    chains: int = 4,
    draws: int = 1000,
    tune: int = 1000,
    seed: int = 0,
    target_accept: float = 0.95,
    strict: bool = False,
    progress: bool = False,
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
        Convex donor weights (Dirichlet(1) prior on the simplex) or sparse unconstrained weights
        (horseshoe prior) with an intercept.
    scale : {"auto", "raw", "rate"}
        Outcome scale (``panel.outcome(scale)``; ``"auto"`` uses the rate when the panel has population).
    priors : dict, optional
        ``sigma_sd``, ``tau_sd``, ``intercept_sd`` (on the standardised scale; see module notes).
    sampler, chains, draws, tune, seed, target_accept, strict, progress
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
    design = synth_design(panel, treated=treated, start=start, scale=scale)
    model = synth_model(design, weights=weights, priors=pri)
    idata = sample(model, sampler=sampler, chains=chains, draws=draws, tune=tune, seed=seed,
                   target_accept=target_accept, progress=progress)
    gated = [v.name for v in model.free_RVs if v.name != "lambda"] + ["weights"]
    diag = check_convergence(idata, gated, estimator="bayes.synthetic_control", strict=strict)
    series = _gaps(idata, design, seed)
    spec = Spec(
        estimator="bayes.synthetic_control",
        options={"treated": str(treated), "start": str(start), "weights": weights, "scale": scale, "priors": pri,
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
