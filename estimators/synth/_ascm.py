"""Augmented-SCM kernels (Ben-Michael, Feller and Rothstein 2021): the ridge-augmented weight fit, batched
fits at one compiled shape, and augsynth's leave-one-period-out choice of lambda.

Pure array code shared by :mod:`.augmented` (the estimator) and :mod:`.conformal` (its inference).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from decrimkit.errors import DesignError
from decrimkit.numerics.chunks import map_chunks

from ._simplex import simplex_ls

__all__ = ["AugFit", "ROWS", "aug_fit", "aug_fit_batch", "choose_lambda", "fit_rows"]


class AugFit(NamedTuple):
    """w: (J,) augmented weights; w_scm: (J,) SCM part; att: (T,) treated minus synthetic."""

    w: jax.Array
    w_scm: jax.Array
    att: jax.Array


def _after(sol, lam):
    """``lam``, made to depend on the simplex solution (NaN if the solver failed).

    jaxlib's CPU LAPACK kernels split a batch over XLA's intra-op thread pool and block until it is
    done; two of them running side by side (the ridge factorisation does not need the simplex
    weights, so XLA may start it beside the solver's eigenvalue or SVD calls) can take every pool
    thread and wait on each other forever (seen on 2 cores: 0% CPU, never returns). Tying the
    ridge system to the solution orders them: one LAPACK call at a time.
    """
    return jnp.where(jnp.isfinite(sol.kkt), lam, jnp.nan)


def _weights(xc, x1, lam, ridge: bool, used):
    """SCM weights (V = I) plus the ridge correction. xc: (J, T) centred controls, zero in the columns
    not ``used`` for fitting; x1: (T,), likewise."""
    sol = simplex_ls(xc.T, x1)  # Q = xc xc', c = xc x1
    if not ridge:
        return sol.w, sol.w
    resid = x1 - xc.T @ sol.w
    lam = _after(sol, lam)
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
        sol = simplex_ls(x0.T, x1k)
        syn = sol.w
        lams = _after(sol, lambdas)  # the ridge systems are factorised after the simplex solve
        resid = x1k - x0.T @ syn
        gram = x0.T @ x0

        def err(lam):
            w = syn + x0 @ jnp.linalg.solve(gram + lam * jnp.eye(t0, dtype=xc.dtype), resid)
            e = x1[i] - xc[:, i] @ w
            return e * e

        return jax.vmap(err)(lams)

    return jax.vmap(hold)(jnp.arange(t0 - 1))


def choose_lambda(xc: np.ndarray, x1: np.ndarray) -> tuple[float, pd.DataFrame]:
    if xc.shape[1] < 3:
        raise DesignError(
            f"choosing the ridge lambda by cross-validation needs at least 3 pre-periods (the one-SE rule needs "
            f"two held-out periods); this design has {xc.shape[1]}. Pass lambda_= or use more pre-periods."
        )
    lam_max = np.linalg.svd(xc, compute_uv=False)[0] ** 2
    lambdas = lam_max * (1e-8 ** (1 / 20)) ** np.arange(21)
    errors = np.asarray(_cv_errors(jnp.asarray(xc), jnp.asarray(x1), jnp.asarray(lambdas)))
    mean = errors.mean(axis=0)
    se = errors.std(axis=0, ddof=1) / np.sqrt(errors.shape[0])
    i = int(np.argmin(mean))
    lam = float(np.max(lambdas[mean <= mean[i] + se[i]]))
    return lam, pd.DataFrame({"lambda": lambdas, "cv_error": mean, "cv_se": se})
