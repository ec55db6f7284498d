"""Least squares with absorbed fixed effects: the engine behind twfe, event_study, sun_abraham, disparity.

``fe_ols(y, x, fixef, names=, weights=, cluster=, vcov=)`` partials the fixed effects out of ``y`` and
``x`` (alternating projections, :mod:`decrimkit.numerics.demean`), solves the normal equations and
returns coefficients with a CR1 cluster-robust or HC1 variance whose small-sample factor follows
fixest (``decrimkit.inference.cluster.fixef_dof``). Inference uses Student's t with G-1 degrees of
freedom when clustered (N-K otherwise), as fixest and Stata do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from decrimkit.errors import ConvergenceError, SpecificationError
from decrimkit.inference.cluster import cr1_vcov, fixef_dof, hc1_vcov
from decrimkit.numerics.demean import demean

__all__ = ["FEFit", "fe_ols", "collinear_columns"]


class FEFit(NamedTuple):
    """A fixed-effects least squares fit.

    coef: (p,); vcov: (p, p); resid: (n,) unweighted residuals; x, y: demeaned design (n, p) and
    outcome (n,); n_params: K of the small-sample factor; n_clusters: G (None for HC1);
    df: t degrees of freedom; names: column names; weights: (n,) or None.
    """

    coef: np.ndarray
    vcov: np.ndarray
    resid: np.ndarray
    x: np.ndarray
    y: np.ndarray
    n_params: int
    n_clusters: int | None
    df: float
    names: tuple[str, ...]
    weights: np.ndarray | None


def linear_map(fit: FEFit) -> np.ndarray:
    """(n, p) matrix ``A`` with ``coef = A.T @ y`` for every outcome ``y`` on the fit's design.

    With ``X~`` the demeaned regressors and ``W`` the weights, ``coef = (X~'W X~)^{-1} X~'W M y`` and, ``M``
    being the ``W``-orthogonal projection off the fixed effects, ``X~'W M y = X~'W y``: so
    ``A = W X~ (X~'W X~)^{-1}``. What an outcome placed on some rows (a control's residuals, say) does to
    the coefficients is then a product, not a refit.
    """
    w = np.ones(len(fit.x)) if fit.weights is None else np.asarray(fit.weights, dtype="float64")
    wx = fit.x * w[:, None]
    return np.linalg.solve(fit.x.T @ wx, wx.T).T


def collinear_columns(x: np.ndarray, tol: float = 1e-9, scale: np.ndarray | None = None) -> list[int]:
    """Indices of columns of ``x`` that are (numerically) linear combinations of earlier columns.

    Gram-Schmidt with re-orthogonalisation (twice is enough): column j is dependent when the norm of its
    residual on the kept earlier columns is below ``tol * scale_j``, with ``scale`` the norms of the
    columns before the fixed effects were removed (default: the norms of ``x``).
    """
    ref = np.linalg.norm(x, axis=0) if scale is None else np.asarray(scale, dtype="float64")
    basis = np.zeros((x.shape[0], 0))
    out: list[int] = []
    for j in range(x.shape[1]):
        v = x[:, j].copy()
        for _ in range(2):
            v -= basis @ (basis.T @ v)
        norm = np.linalg.norm(v)
        if norm <= tol * ref[j] or norm == 0:
            out.append(j)
        else:
            basis = np.column_stack([basis, v / norm])
    return out


def fe_ols(
    y: np.ndarray,
    x: np.ndarray,
    fixef: Sequence[np.ndarray],
    *,
    names: Sequence[str],
    weights: np.ndarray | None = None,
    cluster: np.ndarray | None = None,
    vcov: str = "cluster",
) -> FEFit:
    """Fit ``y`` on ``x`` (n, p) with the fixed effects ``fixef`` absorbed.

    Raises
    ------
    SpecificationError
        A regressor is constant within the fixed effects or collinear with other regressors.
    DesignError
        Fewer than two clusters, or too few observations.
    ConvergenceError
        The demeaning did not converge.
    """
    names = tuple(names)
    x = np.asarray(x, dtype="float64").reshape(len(y), -1)
    both = demean(np.column_stack([y, x]), list(fixef), weights)
    if not both.converged:
        raise ConvergenceError(
            f"fixed-effect demeaning did not converge in {both.n_iter} sweeps; the panel may be badly "
            f"connected. Check for units observed in a single period."
        )
    yd, xd = both.values[:, 0], both.values[:, 1:]
    sw = np.ones(len(y)) if weights is None else np.sqrt(np.asarray(weights, dtype="float64"))
    xs, ys = xd * sw[:, None], yd * sw
    raw_scale = np.linalg.norm(x * sw[:, None], axis=0)
    bad = collinear_columns(xs, tol=1e-9, scale=raw_scale)
    absorbed = [j for j in bad if np.linalg.norm(xs[:, j]) <= 1e-9 * max(raw_scale[j], 1e-300)]
    if bad:
        which = ", ".join(repr(names[j]) for j in bad)
        why = (
            "constant within the fixed effects (absorbed by unit or period effects)"
            if absorbed == bad
            else "collinear with other regressors or the fixed effects"
        )
        raise SpecificationError(
            f"regressor(s) {which} are {why}; the coefficient is not identified. Drop them or use "
            f"a covariate that varies within units over time."
        )
    bread = np.linalg.inv(xs.T @ xs)
    coef = bread @ (xs.T @ ys)
    resid_dm = yd - xd @ coef
    n = len(y)
    if vcov == "cluster":
        if cluster is None:
            raise SpecificationError("vcov='cluster' needs cluster labels.")
        k = fixef_dof(x.shape[1], list(fixef), cluster)
        cv = cr1_vcov(xd, resid_dm, cluster, weights=weights, n_params=k)
        v, g, df = cv.vcov, cv.n_clusters, float(cv.n_clusters - 1)
    elif vcov == "hetero":
        k = fixef_dof(x.shape[1], list(fixef), None)
        v, g, df = hc1_vcov(xd, resid_dm, weights=weights, n_params=k), None, float(n - k)
    else:
        raise SpecificationError(f"vcov={vcov!r} is not allowed; use 'cluster' or 'hetero'.")
    return FEFit(coef, v, resid_dm, xd, yd, k, g, df, names, None if weights is None else np.asarray(weights))
