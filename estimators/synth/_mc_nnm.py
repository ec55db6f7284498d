"""Matrix completion with a nuclear-norm penalty (MC-NNM; Athey, Bayati, Doudchenko, Imbens and Khosravi 2021).

Estimand: the average effect on the treated cells, ``mean over (i, t) treated of Y_it - Yhat_it(0)``,
where the untreated outcomes of treated cells are imputed from the model fitted to the untreated cells,

    Y_it(0) = L_it + gamma_i + delta_t + X_it' beta + e_it,

minimising ``(1/|O|) sum_O (Y - L - gamma - delta - X beta)^2 + lambda ||L||_*`` over the observed
untreated cells O (unit and time fixed effects unpenalised, as the paper). Time-varying
covariates ``X`` enter linearly. The fit alternates fixed-effect and covariate updates with
singular-value soft-thresholding of L (threshold ``lambda |O| / 2``, as MCPanel's ``mcnnm``).

lambda, when not given, is chosen by K-fold cross-validation on the untreated cells: a geometric
grid of 10 values from the smallest lambda that sets L to zero down by 1e-3; in each fold a random
fifth of the untreated cells is held out; the lambda with the smallest mean held-out squared error
is kept. All fold-by-lambda fits run as vmapped batches (chunks of ten: one compiled kernel per panel).

Standard error: placebo (stated on the result): ``n_reps`` times, as many never-treated units as
there are treated units are drawn at random and given the treated units' treatment pattern, the real
treated units are left out, the model is refitted at the chosen lambda, and the SE is the standard
deviation of the placebo estimates. All placebo fits run in the same vmapped chunks.

Assumptions: untreated outcomes are low rank plus fixed effects and covariates; treatment
assignment is ignorable given them; no anticipation.

References
----------
Athey, S., Bayati, M., Doudchenko, N., Imbens, G. and Khosravi, K. (2021). Matrix completion methods
for causal panel data models. JASA 116(536), 1716-1730.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from decrimkit.errors import DataError, DesignError, SpecificationError
from decrimkit.limits import MAX_REFITS, check_replications
from decrimkit.numerics.chunks import map_chunks
from decrimkit.numerics.keys import key_from_seed
from decrimkit.panel import Panel
from decrimkit.results import Spec

from ._design import outcome_wide
from .results import SynthResult

__all__ = ["mc_nnm"]


class MCFit(NamedTuple):
    """Completed untreated outcomes ``y0`` (N, T), low-rank part ``L``, fixed effects, beta, iterations."""

    y0: jax.Array
    L: jax.Array
    gamma: jax.Array
    delta: jax.Array
    beta: jax.Array
    iterations: jax.Array


def _fit_one(y, x, obs, lam, *, max_iter: int, tol: float) -> MCFit:
    """One MC-NNM fit: y (N, T), x (N, T, K), obs (N, T) bool (cells used for fitting)."""
    n, t = y.shape
    k = x.shape[2]
    w = obs.astype(y.dtype)
    n_obs = jnp.sum(w)
    xm = x * w[:, :, None]
    xtx = jnp.einsum("itk,itl->kl", xm, x) + 1e-12 * jnp.eye(k, dtype=y.dtype)

    def fe(r):
        # two alternating sweeps of observed-cell means: unit then time effects
        def sweep(_, gd):
            g, d = gd
            g = jnp.sum(w * (r - d[None, :]), axis=1) / jnp.maximum(jnp.sum(w, axis=1), 1.0)
            d = jnp.sum(w * (r - g[:, None]), axis=0) / jnp.maximum(jnp.sum(w, axis=0), 1.0)
            return g, d

        return jax.lax.fori_loop(0, 2, sweep, (jnp.zeros(n, y.dtype), jnp.zeros(t, y.dtype)))

    def body(state):
        it, L, g, d, beta, _ = state
        xb = jnp.einsum("itk,k->it", x, beta)
        g, d = fe(y - L - xb)
        base = g[:, None] + d[None, :]
        if k:
            beta = jnp.linalg.solve(xtx, jnp.einsum("itk,it->k", xm, y - L - base))
            xb = jnp.einsum("itk,k->it", x, beta)
        target = jnp.where(obs, y - base - xb, L)
        u, s, vt = jnp.linalg.svd(target, full_matrices=False)
        L_new = (u * jnp.maximum(s - lam * n_obs / 2.0, 0.0)[None, :]) @ vt
        change = jnp.sqrt(jnp.sum((L_new - L) ** 2)) / jnp.maximum(jnp.sqrt(jnp.sum(L * L)), 1e-12)
        return it + 1, L_new, g, d, beta, change

    def cond(state):
        return (state[0] < max_iter) & (state[5] > tol)

    init = (
        jnp.asarray(0),
        jnp.zeros_like(y),
        jnp.zeros(n, y.dtype),
        jnp.zeros(t, y.dtype),
        jnp.zeros(k, y.dtype),
        jnp.asarray(jnp.inf, y.dtype),
    )
    it, L, g, d, beta, _ = jax.lax.while_loop(cond, body, init)
    y0 = L + g[:, None] + d[None, :] + jnp.einsum("itk,k->it", x, beta)
    return MCFit(y0=y0, L=L, gamma=g, delta=d, beta=beta, iterations=it)


@partial(jax.jit, static_argnames=("max_iter", "tol"))
def mc_fit_batch(y, x, obs, lam, *, max_iter: int = 1000, tol: float = 1e-7) -> MCFit:
    """A batch of fits sharing y and x: obs (B, N, T), lam (B,)."""
    return jax.vmap(partial(_fit_one, max_iter=max_iter, tol=tol), in_axes=(None, None, 0, 0))(y, x, obs, lam)


CHUNK = 10  # every batch of fits runs in chunks of this size, so one call compiles mc_fit_batch once


def fit_chunked(y: np.ndarray, x: np.ndarray, obs: np.ndarray, lam: np.ndarray, *, chunk: int = CHUNK) -> MCFit:
    """``mc_fit_batch`` over any number of fits, in fixed-size chunks (the last padded by repetition).

    The cross-validation grid, the main fit and the placebo batch then share one compiled kernel
    per panel shape instead of one per batch size (:func:`decrimkit.numerics.chunks.map_chunks`).
    """
    yj, xj = jnp.asarray(y), jnp.asarray(x)
    return map_chunks(lambda o, lam_: mc_fit_batch(yj, xj, jnp.asarray(o), jnp.asarray(lam_)), (obs, lam), chunk=chunk,
                      description="MC-NNM fits")


def _lambda_max(y: np.ndarray, obs: np.ndarray) -> float:
    w = obs.astype(float)
    g = (w * y).sum(1) / np.maximum(w.sum(1), 1)
    d = (w * (y - g[:, None])).sum(0) / np.maximum(w.sum(0), 1)
    r = np.where(obs, y - g[:, None] - d[None, :], 0.0)
    return 2.0 * np.linalg.svd(r, compute_uv=False)[0] / obs.sum()


def mc_nnm(
    panel: Panel,
    *,
    covariates: Sequence[str] = (),
    lambda_: float | None = None,
    n_folds: int = 5,
    n_reps: int = 50,
    seed: int = 0,
) -> SynthResult:
    """Matrix-completion estimate of the average effect on the treated cells.

    Parameters
    ----------
    panel : Panel
        Balanced; treated cells are those with ``d == 1``. Rates per 100,000 with ``population``.
    covariates : names of time-varying panel covariates entering linearly (must be complete).
    lambda_ : float, optional
        Nuclear-norm penalty; ``None`` chooses it by ``n_folds``-fold cross-validation.
    n_folds : int
        Cross-validation folds (each holds out a random fifth of the untreated cells).
    n_reps : int
        Placebo replications for the standard error (0 skips it).
    seed : int
        Seed of the folds and placebo draws (JAX keys).

    Returns
    -------
    SynthResult
        ``estimate`` (ATT over treated cells), ``se`` (placebo), ``gap`` (mean over treated units of
        observed minus completed outcome, by period); ``weights`` is empty (MC-NNM has no donor
        weights); ``extra`` holds ``lambda``, the CV table, ``rank`` and ``beta``.

    Raises
    ------
    DesignError
        Unbalanced panel, no treated cells, fewer than two never-treated units, or (with ``n_reps > 0``)
        no more never-treated than treated units.
    DataError
        Covariates missing in some unit and period.
    SpecificationError
        Unknown covariates, ``n_folds < 2``, ``n_reps`` of 1 or negative, or a negative ``lambda_``.

    Notes
    -----
    Estimand: the average effect on the treated cells, ``mean over treated (i, t) of Y_it - Yhat_it(0)``,
    with ``Y_it(0) = L_it + gamma_i + delta_t + X_it' beta + e_it`` fitted to the untreated cells under a
    nuclear-norm penalty on ``L``. Assumptions: untreated outcomes are low rank plus fixed effects and
    covariates; treatment assignment ignorable given them; no anticipation. SE: placebo re-assignment.

    References
    ----------
    Athey, S., Bayati, M., Doudchenko, N., Imbens, G. and Khosravi, K. (2021). Matrix completion methods
    for causal panel data models. *JASA* 116(536), 1716-1730.

    Examples
    --------
    >>> from decrimkit import Panel
    >>> from decrimkit.datasets import load_dataset
    >>> from decrimkit.estimators import synth
    >>> df = load_dataset("prop99", file="california_prop99_long.csv")
    >>> panel = Panel.from_frame(df, unit="State", time="Year", outcome="PacksPerCapita", treated="treated")
    >>> res = synth.mc_nnm(panel, seed=0)  # lambda by 5-fold CV, placebo SE
    """
    panel.require_balanced("mc_nnm")
    if n_folds < 2:
        raise SpecificationError(f"n_folds={n_folds!r}: use at least 2 folds.")
    if n_reps == 1 or n_reps < 0:
        raise SpecificationError(f"n_reps={n_reps!r}: use 0 (no standard error) or at least 2.")
    check_replications("n_reps", n_reps, maximum=MAX_REFITS)
    covariates = tuple(covariates)
    unknown = [c for c in covariates if c not in panel.covariates]
    if unknown:
        raise SpecificationError(f"covariates {unknown} are not covariates of the panel {list(panel.covariates)}.")
    wide, scale, notes = outcome_wide(panel)
    y = wide.to_numpy(dtype="float64")
    treated_cells = panel.to_wide("d").to_numpy() == 1
    if not treated_cells.any():
        raise DesignError("no treated cells (d == 1); build the panel with treated= or cohort=.")
    always = treated_cells.all(axis=1)
    if always.any():
        bad = [u.item() if isinstance(u, np.generic) else u for u in panel.units[always][:5]]
        raise DesignError(
            f"{int(always.sum())} treated units (e.g. {bad}) are treated in every period from the first "
            f"({panel.times[0]}): with no untreated period their unit effects cannot be estimated, and an "
            f"imputed untreated path would be fixed by the other units alone (adding a constant to their "
            f"outcomes would move the estimate one for one). Drop them with panel.subset(...) or extend "
            f"the data back in time."
        )
    never = ~treated_cells.any(axis=1)
    if never.sum() < 2:
        raise DesignError(f"mc_nnm needs at least two never-treated units; the panel has {int(never.sum())}.")
    x = (
        np.stack([panel.to_wide(c).to_numpy(dtype="float64") for c in covariates], axis=2)
        if covariates
        else np.zeros(y.shape + (0,))
    )
    if not np.isfinite(x).all():
        raise DataError("covariates for mc_nnm must be observed in every unit and period; impute them first.")
    obs = ~treated_cells
    key = key_from_seed(seed)
    k_cv, k_pl = jax.random.split(key)
    cv = None
    if lambda_ is None:
        lam_max = _lambda_max(y, obs)
        grid = lam_max * 10.0 ** (-3.0 * np.arange(10) / 9)
        fold_keys = jax.random.split(k_cv, n_folds)
        held = np.stack([np.asarray(jax.random.uniform(k, y.shape)) < 0.2 for k in fold_keys]) & obs[None]
        train = obs[None] & ~held
        b_obs = np.repeat(train, len(grid), axis=0)
        b_lam = np.tile(grid, n_folds)
        fits = fit_chunked(y, x, b_obs, b_lam)
        err = (np.asarray(fits.y0) - y[None]) ** 2
        mse = np.array([err[i][np.repeat(held, len(grid), axis=0)[i]].mean() for i in range(len(b_lam))])
        mse = mse.reshape(n_folds, len(grid)).mean(axis=0)
        lam = float(grid[int(np.argmin(mse))])
        cv = pd.DataFrame({"lambda": grid, "cv_mse": mse})
    else:
        if not lambda_ >= 0:
            raise SpecificationError(f"lambda_={lambda_!r} must be non-negative.")
        lam = float(lambda_)
    fit = fit_chunked(y, x, obs[None], np.array([lam]))
    y0 = np.asarray(fit.y0[0])
    effect = np.where(treated_cells, y - y0, np.nan)
    estimate = float(np.nanmean(effect))

    se = float("nan")
    if n_reps:
        se = _placebo_se(y, x, treated_cells, never, lam, n_reps, k_pl)
    tr_units = treated_cells.any(axis=1)
    times = pd.Index(list(panel.times), name="time")
    observed = y[tr_units].mean(axis=0)
    synthetic = y0[tr_units].mean(axis=0)
    rank = int(np.sum(np.linalg.svd(np.asarray(fit.L[0]), compute_uv=False) > 1e-8))
    first = int(np.nanmin(np.where(treated_cells.any(axis=0), np.arange(y.shape[1]), np.nan)))
    spec = Spec(
        estimator="synth.mc_nnm",
        options={
            "lambda": lam,
            "lambda_rule": "cv" if lambda_ is None else "given",
            "n_folds": n_folds,
            "covariates": list(covariates),
            "n_reps": n_reps,
            "scale": scale,
        },
        seed=seed,
        n_units=panel.n_units,
        n_periods=panel.n_periods,
        n_obs=panel.n_obs,
        excluded=tuple(panel.excluded),
        notes=tuple(notes) + ("SE by placebo: never-treated units given the treated units' pattern",),
    )
    return SynthResult(
        estimate=estimate,
        se=se,
        weights=pd.Series(dtype="float64", name="weight"),
        gap=pd.Series(observed - synthetic, index=times, name="gap"),
        observed=pd.Series(observed, index=times, name="treated"),
        synthetic=pd.Series(synthetic, index=times, name="synthetic"),
        start=panel.times[first],
        spec=spec,
        se_method="placebo" if n_reps else None,
        extra={
            "lambda": lam,
            "cv": cv,
            "rank": rank,
            "beta": pd.Series(np.asarray(fit.beta[0]), index=list(covariates)),
            "iterations": int(fit.iterations[0]),
        },
        title="Matrix completion (MC-NNM)",
    )


def _placebo_se(y, x, treated_cells, never, lam, n_reps, key) -> float:
    tr_rows = np.flatnonzero(treated_cells.any(axis=1))
    ctrl_rows = np.flatnonzero(never)
    if len(ctrl_rows) <= len(tr_rows):
        raise DesignError("placebo standard errors need more never-treated than treated units; pass n_reps=0.")
    picks = np.asarray(
        jax.vmap(lambda k: jax.random.permutation(k, len(ctrl_rows))[: len(tr_rows)])(jax.random.split(key, n_reps))
    )
    obs = np.zeros((n_reps,) + y.shape, dtype=bool)
    fake = np.zeros_like(obs)
    for r in range(n_reps):
        pattern = np.zeros(y.shape, dtype=bool)
        pattern[ctrl_rows[picks[r]]] = treated_cells[tr_rows]
        fake[r] = pattern
        obs[r] = ~pattern
        obs[r, tr_rows] = False  # real treated units leave the placebo sample
    fits = fit_chunked(y, x, obs, np.full(n_reps, lam))
    y0 = np.asarray(fits.y0)
    est = np.array([(y - y0[r])[fake[r]].mean() for r in range(n_reps)])
    se = float(np.std(est, ddof=1))
    if not se > 0:
        raise DesignError(
            f"every one of the {n_reps} placebo estimates is the same ({est[0]:.6g}): the control units' "
            f"outcomes carry no variation for a placebo standard error, which would be 0. Pass n_reps=0 "
            f"(no standard error) or check the outcome column."
        )
    return se
