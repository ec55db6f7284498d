"""Augmented synthetic control (Ben-Michael, Feller and Rothstein 2021), ridge outcome model.

Estimand: the effect on one treated unit in each post-period, ``Y_1t - sum_j w_j Y_jt``, and its
post-period mean (``estimate``). The weights are the SCM weights (simplex, fitted to the pre-period
outcomes with V = I, as augsynth) plus a ridge correction that removes the remaining pre-period
imbalance: ``w = w_scm + X_c (X_c'X_c + lambda I)^{-1} (x_1 - X_c'w_scm)`` on control-centred
pre-period outcomes. The weights sum to one but may be negative (extrapolation).
``fixedeff=True`` first removes each unit's pre-period mean (an intercept shift, as augsynth).

lambda, when not given, follows augsynth's ``cv_lambda``: 21 values from ``sigma_max(X_c)^2`` down
by a factor 1e-8; each pre-period but the last is held out in turn (SCM and ridge refitted without
it), and the largest lambda whose mean held-out squared error is within one standard error of the
minimum is chosen. All held-out fits run as one vmapped batch.

Assumptions: untreated outcomes follow a (linear) factor or autoregressive model; no anticipation
or interference; donors untreated.

Conformal inference (``conformal``, ``conformal_average``) lives in :mod:`.conformal` and is
re-exported here.

References
----------
Ben-Michael, E., Feller, A. and Rothstein, J. (2021). The augmented synthetic control method.
JASA 116(536), 1789-1803. Chernozhukov, V., Wuthrich, K. and Zhu, Y. (2021). An exact and robust
conformal inference method for counterfactual and synthetic controls. JASA 116(536), 1849-1864.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from decrimkit.errors import SpecificationError
from decrimkit.numerics.chunks import map_chunks
from decrimkit.options import check_option
from decrimkit.panel import Panel
from decrimkit.results import Spec

from ._design import synth_design
from ._simplex import simplex_qp
from .results import AugmentedResult

__all__ = ["augmented", "fit_rows"]  # conformal, conformal_average, ConformalAverage: see __getattr__

ProgFunc = Literal["ridge", "none"]


class AugFit(NamedTuple):
    """w: (J,) augmented weights; w_scm: (J,) SCM part; att: (T,) treated minus synthetic."""

    w: jax.Array
    w_scm: jax.Array
    att: jax.Array


def _weights(xc, x1, lam, ridge: bool, used):
    """SCM weights (V = I) plus the ridge correction. xc: (J, T) centred controls, zero in the columns
    not ``used`` for fitting; x1: (T,), likewise."""
    sol = simplex_qp(xc @ xc.T, xc @ x1)
    if not ridge:
        return sol.w, sol.w
    resid = x1 - xc.T @ sol.w
    # unused columns are zero in xc and resid: a unit diagonal there decouples them (solution 0) and
    # keeps the system regular whatever lambda is
    adj = xc @ jnp.linalg.solve(xc.T @ xc + jnp.diag(jnp.where(used, lam, 1.0)), resid)
    return sol.w + adj, sol.w


def _fit_one(y1, yc, t0_mask, lam, *, ridge: bool, fixedeff: bool) -> AugFit:
    """One fit on outcomes y1 (T,), yc (J, T); columns where ``t0_mask`` are the fitting periods."""
    if fixedeff:
        n = jnp.sum(t0_mask)
        y1 = y1 - jnp.sum(jnp.where(t0_mask, y1, 0.0)) / n
        yc = yc - (jnp.sum(jnp.where(t0_mask[None, :], yc, 0.0), axis=1) / n)[:, None]
    centre = jnp.mean(yc, axis=0)
    xc = jnp.where(t0_mask[None, :], yc - centre[None, :], 0.0)
    x1 = jnp.where(t0_mask, y1 - centre, 0.0)
    w, w_scm = _weights(xc, x1, lam, ridge, t0_mask)
    return AugFit(w=w, w_scm=w_scm, att=y1 - w @ yc)


@partial(jax.jit, static_argnames=("ridge", "fixedeff"))
def aug_fit(y1, yc, t0_mask, lam, *, ridge: bool, fixedeff: bool) -> AugFit:
    """Jitted single augmented-SCM fit."""
    return _fit_one(y1, yc, t0_mask, lam, ridge=ridge, fixedeff=fixedeff)


@partial(jax.jit, static_argnames=("ridge", "fixedeff"))
def aug_fit_batch(y1, yc, t0_mask, lam, *, ridge: bool, fixedeff: bool) -> AugFit:
    """A batch of fits: y1 (B, T), yc (J, T) shared, t0_mask (B, T), lam shared."""
    one = partial(_fit_one, ridge=ridge, fixedeff=fixedeff)
    return jax.vmap(one, in_axes=(0, None, 0, None))(y1, yc, t0_mask, lam)


ROWS = 32  # fits per aug_fit_batch call (fit_rows): one compiled kernel per panel shape


def fit_rows(y1, yc, masks, lam, *, ridge: bool, fixedeff: bool) -> AugFit:
    """Fits of treated rows ``y1`` (B, T) on the shared controls ``yc`` (J, T), fitting periods ``masks``
    (B, T), as numpy arrays.

    Every call of ``aug_fit_batch`` runs exactly :data:`ROWS` fits
    (:func:`decrimkit.numerics.chunks.map_chunks`), so the fit, the per-period conformal grid, the joint test and the
    average-effect grid of one panel share one compiled kernel instead of compiling once per batch
    size; 31 padded rows cost a few milliseconds at Oregon's size against ~2.5 s per compilation.
    """
    ycj = jnp.asarray(yc)
    return map_chunks(lambda y, m: aug_fit_batch(jnp.asarray(y), ycj, jnp.asarray(m), lam, ridge=ridge, fixedeff=fixedeff),
                      (y1, masks), chunk=ROWS, description="ASCM fits")


@jax.jit
def _cv_errors(xc, x1, lambdas):
    """Leave-one-period-out errors (T0 - 1, L), augsynth's get_lambda_errors with holdout 1."""
    t0 = xc.shape[1]

    def hold(i):
        keep = jnp.arange(t0) != i
        x0 = jnp.where(keep[None, :], xc, 0.0)
        x1k = jnp.where(keep, x1, 0.0)
        syn = simplex_qp(x0 @ x0.T, x0 @ x1k).w
        resid = x1k - x0.T @ syn
        gram = x0.T @ x0

        def err(lam):
            w = syn + x0 @ jnp.linalg.solve(gram + lam * jnp.eye(t0, dtype=xc.dtype), resid)
            e = x1[i] - xc[:, i] @ w
            return e * e

        return jax.vmap(err)(lambdas)

    return jax.vmap(hold)(jnp.arange(t0 - 1))


def _choose_lambda(xc: np.ndarray, x1: np.ndarray) -> tuple[float, pd.DataFrame]:
    lam_max = np.linalg.svd(xc, compute_uv=False)[0] ** 2
    lambdas = lam_max * (1e-8 ** (1 / 20)) ** np.arange(21)
    errors = np.asarray(_cv_errors(jnp.asarray(xc), jnp.asarray(x1), jnp.asarray(lambdas)))
    mean = errors.mean(axis=0)
    se = errors.std(axis=0, ddof=1) / np.sqrt(errors.shape[0])
    i = int(np.argmin(mean))
    lam = float(np.max(lambdas[mean <= mean[i] + se[i]]))
    return lam, pd.DataFrame({"lambda": lambdas, "cv_error": mean, "cv_se": se})


def augmented(
    panel: Panel,
    *,
    treated: Any,
    start: Any,
    progfunc: ProgFunc = "ridge",
    fixedeff: bool = False,
    lambda_: float | None = None,
    donors: Sequence[Any] | None = None,
) -> AugmentedResult:
    """Ridge-augmented synthetic control for one treated unit.

    Parameters
    ----------
    panel : Panel
        Rates per 100,000 when the panel has ``population``.
    treated, start : the treated unit's label and its first treated period.
    progfunc : {"ridge", "none"}
        Ridge outcome model (ASCM) or none (plain SCM on pre-period outcomes, V = I).
    fixedeff : bool
        Remove each unit's pre-period mean first (augsynth's ``fixedeff``).
    lambda_ : float, optional
        Ridge penalty; ``None`` chooses it by augsynth's leave-one-period-out rule (see module notes).
    donors : labels, optional
        The donor pool (default: every never-treated unit other than ``treated``).

    Returns
    -------
    AugmentedResult
        ``estimate`` (mean post-period gap), ``weights`` (may be negative under ridge), ``gap``,
        ``conformal(alpha)``; ``extra`` holds ``lambda``, the CV table and the SCM part of the weights.

    Raises
    ------
    DesignError
        Treated unit or start not in the panel, too few pre-periods or donors, donors with missing outcomes.
    SpecificationError
        ``progfunc`` not allowed, or ``lambda_`` not a positive number.

    Notes
    -----
    Estimand: the effect on the one treated unit in each post-period, ``Y_1t - sum_j w_j Y_jt``, and its
    post-period mean, with SCM weights plus a ridge correction of the remaining pre-period imbalance
    (weights sum to one, may be negative). Assumptions: untreated outcomes follow a linear factor or
    autoregressive model; no anticipation or interference; donors untreated. Inference: conformal
    (``result.conformal``).

    References
    ----------
    Ben-Michael, E., Feller, A. and Rothstein, J. (2021). The augmented synthetic control method.
    *JASA* 116(536), 1789-1803.
    Chernozhukov, V., Wuthrich, K. and Zhu, Y. (2021). An exact and robust conformal inference method for
    counterfactual and synthetic controls. *JASA* 116(536), 1849-1864.

    Examples
    --------
    >>> from decrimkit.datasets import load_dataset
    >>> df = load_dataset("prop99", file="california_prop99_long.csv")
    >>> panel = Panel.from_frame(df, unit="State", time="Year", outcome="PacksPerCapita", treated="treated")
    >>> res = augmented(panel, treated="California", start=1989)
    """
    check_option("progfunc", progfunc, ProgFunc)
    if lambda_ is not None and not (np.isfinite(lambda_) and lambda_ > 0):
        raise SpecificationError(f"lambda_={lambda_!r} must be a positive number (or None for cross-validation).")
    design = synth_design(panel, treated=treated, start=start, donors=donors)
    n_pre = design.n_pre
    y1, yc = design.y_treated, design.y_donors.T
    ridge = progfunc == "ridge"
    cv = None
    lam = 0.0
    if ridge:
        if lambda_ is None:
            pre1, prec = y1[:n_pre], yc[:, :n_pre]
            if fixedeff:
                pre1, prec = pre1 - pre1.mean(), prec - prec.mean(axis=1, keepdims=True)
            centre = prec.mean(axis=0)
            lam, cv = _choose_lambda(prec - centre[None, :], pre1 - centre)
        else:
            lam = float(lambda_)
    mask = np.arange(len(y1)) < n_pre
    fit = AugFit(*(a[0] for a in fit_rows(y1[None], yc, mask[None], lam, ridge=ridge, fixedeff=fixedeff)))
    att = fit.att
    times = pd.Index(list(design.times), name="time")
    notes = (
        design.notes + ("weights = SCM weights (V = I on pre-period outcomes) + ridge correction; may be negative",)
        if ridge
        else design.notes
    )
    spec = Spec(
        estimator="synth.augmented",
        options={
            "treated": design.treated,
            "start": design.start,
            "progfunc": progfunc,
            "fixedeff": fixedeff,
            "lambda": lam if ridge else None,
            "lambda_rule": "given" if lambda_ is not None else "cv_1se",
            "scale": design.scale,
        },
        n_units=design.n_donors + 1,
        n_periods=len(design.times),
        n_obs=(design.n_donors + 1) * len(design.times),
        excluded=design.excluded,
        notes=notes + ("no sampling standard error: use .conformal() for inference",),
    )
    return AugmentedResult(
        estimate=float(att[n_pre:].mean()),
        se=float("nan"),
        weights=pd.Series(np.asarray(fit.w), index=pd.Index(list(design.donors), name="unit"), name="weight"),
        gap=pd.Series(att, index=times, name="gap"),
        observed=pd.Series(y1, index=times, name="treated"),
        synthetic=pd.Series(y1 - att, index=times, name="synthetic"),
        start=design.start,
        spec=spec,
        extra={
            "lambda": lam,
            "cv": cv,
            "scm_weights": pd.Series(np.asarray(fit.w_scm), index=list(design.donors)),
            "design": design,
            "ridge": ridge,
            "fixedeff": fixedeff,
        },
        title="Augmented synthetic control" + (" (ridge)" if ridge else " (no outcome model)"),
    )


def __getattr__(name: str) -> Any:
    """``conformal``, ``conformal_average`` and ``ConformalAverage`` live in :mod:`.conformal` (which
    builds on :func:`fit_rows`); they resolve here on first use, so either module can be imported first."""
    if name in ("conformal", "conformal_average", "ConformalAverage"):
        import importlib

        return getattr(importlib.import_module(".conformal", __package__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
