"""The shared first stage of the imputation (Borusyak-Jaravel-Spiess) and two-stage (Gardner) estimators.

Both fit ``Y_it = alpha_i + lambda_t + X_it' delta + e_it`` by (weighted) least squares on the
untreated observations only (never-treated units, and treated units before ``g - anticipation``),
then predict ``Y_it(0)`` everywhere. The design ``Z`` is sparse (unit dummies, period dummies without
the first period, covariates); its untreated Gram matrix is factorised once and reused for the point
estimates, the BJS imputation weights ``v*`` and Gardner's GMM correction.

All design checks that can raise run here: a treated unit must have an untreated period (else its
``alpha_i`` is not identified: a cohort treated in the first period, or anticipation that reaches
back to the first period), every period with treated observations must have untreated ones (else
``lambda_t`` is not identified), and covariates must vary within unit (time-invariant covariates are
absorbed by the unit effects) and not be collinear.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import factorized

from decrimkit.errors import DataError, DesignError, SpecificationError
from decrimkit.numerics.demean import demean
from decrimkit.panel import Panel

from ._reg_design import require_cluster_sides, require_clusters

__all__ = ["FirstStage", "first_stage", "obs_weights"]


class FirstStage(NamedTuple):
    """Fitted first stage over the N rows of ``panel.frame``.

    z: (N, q) sparse design; untreated: (N,) bool rows used in the fit; target: (N,) bool rows whose
    effect is estimated (``t >= g - anticipation``); event: (N,) event time ``t - g`` (NaN for
    never-treated); weight: (N,) observation weights; y0_hat: (N,) predicted ``Y(0)``; resid: (N,)
    ``Y - Y(0)_hat`` (the effect estimate on target rows); solve: applies ``(Z0' W Z0)^{-1}``;
    cluster: (N,) integer cluster codes; n_clusters.
    """

    z: sp.csr_matrix
    untreated: np.ndarray
    target: np.ndarray
    event: np.ndarray
    weight: np.ndarray
    y0_hat: np.ndarray
    resid: np.ndarray
    solve: Callable[[np.ndarray], np.ndarray]
    cluster: np.ndarray
    n_clusters: int


def obs_weights(panel: Panel, weights: str | None) -> np.ndarray:
    """Observation weights: a column of ``panel.frame``, the panel's declared weights, or ones."""
    if weights is None:
        return (
            panel.frame["weight"].to_numpy(dtype="float64") if "weight" in panel.frame.columns else np.ones(panel.n_obs)
        )
    if weights not in panel.frame.columns:
        raise SpecificationError(f"weights={weights!r} is not a column of the panel.")
    w = panel.frame[weights].to_numpy(dtype="float64")
    if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise DataError(f"weights column {weights!r} must be finite, non-negative and not all zero.")
    return w


def _check_covariates(panel: Panel, covariates: tuple[str, ...], rows: np.ndarray) -> np.ndarray:
    for c in covariates:
        if c not in panel.covariates:
            raise SpecificationError(
                f"covariate {c!r} is not a covariate of the panel; declare it with "
                f"Panel.from_frame(..., covariates=[{c!r}])."
            )
    x = panel.frame.loc[:, list(covariates)].to_numpy(dtype="float64")
    if not covariates:
        return x
    sub = panel.frame.loc[rows, ["unit", *covariates]]
    within = sub.groupby("unit", sort=False)[list(covariates)].nunique().max()
    constant = [c for c in covariates if within[c] <= 1]
    if constant:
        raise SpecificationError(
            f"covariates {constant} are constant within every unit on the untreated observations, so the unit "
            f"fixed effects absorb them. Drop them (or interact them with time before building the panel)."
        )
    return x


def _check_rank(
    unit: np.ndarray,
    t: np.ndarray,
    untreated: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    covariates: tuple[str, ...],
    panel: Panel,
) -> None:
    """Identification of the untreated two-way model: connected unit-period graph, covariates of full rank."""
    rows = untreated & (w > 0)
    n_u, n_t = panel.n_units, panel.n_periods
    adj = sp.csr_matrix((np.ones(int(rows.sum())), (unit[rows], n_u + t[rows])), shape=(n_u + n_t, n_u + n_t))
    n_comp, labels = connected_components(adj, directed=False)
    used = np.zeros(n_u + n_t, dtype=bool)
    used[unit[rows]] = True
    used[n_u + t[rows]] = True
    if len(np.unique(labels[used])) > 1:
        raise DesignError(
            "the untreated observations split into groups of units and periods that share no observation, so "
            "unit and period effects are not jointly identified. Add never-treated units or restrict the sample."
        )
    if covariates:
        resid = demean(x[rows], [unit[rows], t[rows]], weights=w[rows]).values
        scale = np.maximum(np.abs(x[rows]).max(axis=0), 1.0)
        if np.linalg.matrix_rank(resid / scale, tol=1e-9 * np.sqrt(rows.sum())) < len(covariates):
            raise SpecificationError(
                f"the covariates {list(covariates)} are collinear with each other or with the unit and period "
                f"effects on the untreated observations. Drop redundant covariates."
            )


def first_stage(
    panel: Panel,
    *,
    covariates: tuple[str, ...],
    anticipation: int,
    weights: str | None,
    cluster: str | None,
    check_clusters: bool = False,
) -> FirstStage:
    """Validate the design and fit the untreated-observation two-way fixed-effects model.

    ``check_clusters=True`` applies the few-clusters rule (callers that report its cluster-robust SE).
    """
    if isinstance(anticipation, bool) or not isinstance(anticipation, (int, np.integer)) or anticipation < 0:
        raise SpecificationError(f"anticipation must be a non-negative integer, got {anticipation!r}.")
    if panel.has_group:
        raise SpecificationError("this estimator needs one row per unit and period; the panel has a group dimension.")
    f = panel.frame
    t = f["t"].to_numpy()
    g = f["g"].to_numpy()
    times = panel.times
    never = ~np.isfinite(g)
    if never.all():
        raise DesignError("no unit is ever treated; check the cohort column of the panel.")
    target = ~never & (t >= g - anticipation)
    untreated = ~target
    unit = panel.unit_index
    # every treated unit needs an untreated period
    has_pre = np.bincount(unit, weights=untreated.astype(float), minlength=panel.n_units) > 0
    treated_units = np.bincount(unit, weights=target.astype(float), minlength=panel.n_units) > 0
    bad = treated_units & ~has_pre
    if bad.any():
        first_cohort = times[int(np.min(g[np.isin(unit, np.flatnonzero(bad))]))]
        what = (
            f"anticipation={anticipation} reaches back to the first period"
            if anticipation
            else f"they are treated in the first period ({times[0]})"
        )
        raise DesignError(
            f"{int(bad.sum())} treated units (earliest cohort {first_cohort}) have no untreated period: {what}, "
            f"so their unit effects cannot be estimated. Drop them with panel.subset(...) or lower anticipation."
        )
    period_untreated = np.bincount(t, weights=untreated.astype(float), minlength=panel.n_periods) > 0
    lonely = np.unique(t[target & ~period_untreated[t]])
    if lonely.size:
        raise DesignError(
            f"periods {np.asarray(times)[lonely[:5]].tolist()} have treated but no untreated observations (no never- or "
            f"not-yet-treated units), so Y(0) cannot be imputed there. Restrict the panel to earlier periods."
        )
    x = _check_covariates(panel, covariates, untreated)
    w = obs_weights(panel, weights)
    n_obs = len(f)
    rows = np.arange(n_obs)
    unit_d = sp.csr_matrix((np.ones(n_obs), (rows, unit)), shape=(n_obs, panel.n_units))
    keep_t = t > 0
    time_d = sp.csr_matrix(
        (np.ones(int(keep_t.sum())), (rows[keep_t], t[keep_t] - 1)), shape=(n_obs, panel.n_periods - 1)
    )
    z = sp.hstack([unit_d, time_d, sp.csr_matrix(x)], format="csr")
    z0w = z.multiply((w * untreated)[:, None]).tocsr()
    gram = (z0w.T @ z).tocsc()
    diag = gram.diagonal()
    if (diag <= 0).any():
        raise DesignError(
            "some unit or period has no untreated observation with positive weight; Y(0) is not "
            "identified there. Drop zero-weight units or restrict the periods."
        )
    _check_rank(unit, t, untreated, x, w, covariates, panel)
    try:
        solve = factorized(gram)
    except RuntimeError as exc:  # SuperLU: "Factor is exactly singular"
        raise SpecificationError(
            "the first-stage design is singular on the untreated observations (collinear covariates, or units "
            "and periods not connected by untreated observations). Drop redundant covariates."
        ) from exc
    y = f["y"].to_numpy(dtype="float64")
    beta = solve(z0w.T @ y)
    if not np.isfinite(beta).all():
        raise SpecificationError("the first-stage fit is singular (collinear covariates); drop redundant covariates.")
    y0_hat = z @ beta
    event = np.where(never, np.nan, t - np.where(never, 0, g))
    if cluster is None:
        codes = unit
    else:
        if cluster not in f.columns:
            raise SpecificationError(f"cluster={cluster!r} is not a column of the panel.")
        codes = np.unique(f[cluster].to_numpy(), return_inverse=True)[1].reshape(-1)
        require_clusters(int(codes.max()) + 1, cluster)
    if check_clusters:
        require_cluster_sides(codes, g, cluster or "unit")
    return FirstStage(
        z=z,
        untreated=untreated,
        target=target,
        event=event,
        weight=w,
        y0_hat=y0_hat,
        resid=y - y0_hat,
        solve=solve,
        cluster=codes,
        n_clusters=int(codes.max()) + 1,
    )
