"""Cluster-robust and heteroskedasticity-robust variances (the wild cluster bootstrap is in
:mod:`decrimkit.inference.wild`).

Public functions (NumPy arrays in and out; float64):

``sandwich(bread, scores, cluster=None, adj=1.0) -> (p, p)``
    ``adj * bread @ meat @ bread`` with ``meat = sum_g s_g s_g'``, ``s_g`` the sum of the rows of
    ``scores`` (n, p) in cluster ``g`` (each row its own cluster when ``cluster`` is None).
    ``bread`` is the inverse Hessian, e.g. ``inv(X'WX)``. Used by OLS, PPML and influence functions.

``cluster_adjustment(n_obs, n_params, n_clusters) -> float``
    The CR1 factor ``G/(G-1) * (N-1)/(N-K)`` of Stata and fixest.

``fixef_dof(n_coef, fixef, cluster) -> int``
    K for that factor when fixed effects were absorbed, by fixest's rule (pyfixest ``k_fixef="nonnested"``):
    coefficients plus fixed-effect levels, less one per extra factor, less the levels of factors nested in
    the clusters, plus one per such nested factor (e.g. unit and year FE clustered by unit: K = k + T).

``cr1_vcov(x, resid, cluster, *, weights=None, n_params=None) -> ClusterVcov``
    CR1 cluster-robust variance of least squares coefficients on design ``x`` (n, p) with residuals
    ``resid`` (n,), optional analytic ``weights``; ``n_params`` is K (default p). Returns
    ``(vcov, n_clusters, adj)``.

``hc1_vcov(x, resid, *, weights=None, n_params=None) -> (p, p)``
    HC1 heteroskedasticity-robust variance, factor ``N/(N-K)``.

References
----------
Cameron, A. C., Gelbach, J. B. and Miller, D. L. (2008). Bootstrap-based improvements for inference
with clustered errors. *Review of Economics and Statistics* 90(3), 414-427.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from decrimkit.errors import DataError, DesignError

__all__ = ["ClusterVcov", "sandwich", "cluster_adjustment", "fixef_dof", "cr1_vcov", "hc1_vcov"]


class ClusterVcov(NamedTuple):
    """vcov: (p, p) CR1 variance; n_clusters: G; adj: the small-sample factor applied."""

    vcov: np.ndarray
    n_clusters: int
    adj: float


def _codes(cluster: object, n: int) -> tuple[np.ndarray, int]:
    c = np.asarray(cluster)
    if c.shape != (n,):
        raise DataError(f"cluster must hold one label per observation ({n}), got shape {c.shape}.")
    codes = pd.factorize(c, sort=True)[0].astype("int64")
    if (codes < 0).any():
        raise DataError("cluster labels are missing for some observations; every row needs a cluster.")
    return codes, int(codes.max()) + 1


def _group_sum(values: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    out = np.zeros((n_groups,) + values.shape[1:])
    np.add.at(out, codes, values)
    return out


def sandwich(bread: np.ndarray, scores: np.ndarray, cluster: object = None, adj: float = 1.0) -> np.ndarray:
    """``adj * bread @ (sum_g s_g s_g') @ bread`` with cluster sums ``s_g`` of ``scores`` (n, p)."""
    scores = np.asarray(scores, dtype="float64")
    if scores.ndim == 1:
        scores = scores[:, None]
    if cluster is not None:
        codes, g = _codes(cluster, scores.shape[0])
        scores = _group_sum(scores, codes, g)
    meat = scores.T @ scores
    v = adj * bread @ meat @ bread.T
    return (v + v.T) / 2


def cluster_adjustment(n_obs: int, n_params: int, n_clusters: int) -> float:
    """CR1 factor ``G/(G-1) * (N-1)/(N-K)``; raises DesignError with fewer than two clusters."""
    if n_clusters < 2:
        raise DesignError(
            f"cluster-robust variance needs at least two clusters, got {n_clusters}. Cluster at a coarser "
            f"level with more groups, or use heteroskedasticity-robust errors."
        )
    if n_obs <= n_params:
        raise DesignError(f"{n_obs} observations cannot estimate {n_params} parameters; add data or drop terms.")
    return n_clusters / (n_clusters - 1) * (n_obs - 1) / (n_obs - n_params)


def _nested(fe: np.ndarray, cluster: np.ndarray) -> bool:
    """True when every level of ``fe`` lies within one cluster."""
    frame = pd.DataFrame({"f": fe, "c": cluster})
    return bool((frame.groupby("f")["c"].nunique() == 1).all())


def fixef_dof(n_coef: int, fixef: Sequence[np.ndarray], cluster: object = None) -> int:
    """Number of parameters K for ``(N-1)/(N-K)`` with absorbed fixed effects (fixest 'nonnested' rule)."""
    fixef = [np.asarray(f) for f in fixef]
    if not fixef:
        return int(n_coef)
    levels = [len(pd.unique(f)) for f in fixef]
    k = n_coef + sum(levels) - (len(fixef) - 1)
    if cluster is not None:
        c = np.asarray(cluster)
        for f, lev in zip(fixef, levels):
            if _nested(f, c):
                k += 1 - lev
    return int(k)


def _weighted(x: object, resid: object, weights: object) -> tuple[np.ndarray, np.ndarray]:
    xa = np.asarray(x, dtype="float64")
    xa = xa[:, None] if xa.ndim == 1 else xa
    r = np.asarray(resid, dtype="float64").reshape(-1)
    if r.shape[0] != xa.shape[0]:
        raise DataError(f"x has {xa.shape[0]} rows but resid has {r.shape[0]}.")
    if weights is not None:
        sw = np.sqrt(np.asarray(weights, dtype="float64").reshape(-1))
        xa, r = xa * sw[:, None], r * sw
    return xa, r


def _bread(xa: np.ndarray) -> np.ndarray:
    xtx = xa.T @ xa
    if np.linalg.matrix_rank(xtx) < xtx.shape[0]:
        raise DesignError("the design matrix is rank deficient (collinear regressors); drop redundant terms.")
    return np.linalg.inv(xtx)


def cr1_vcov(
    x: object, resid: object, cluster: object, *, weights: object = None, n_params: int | None = None
) -> ClusterVcov:
    """CR1 cluster-robust variance of least squares coefficients (Stata/fixest small-sample factor)."""
    xa, r = _weighted(x, resid, weights)
    codes, g = _codes(cluster, xa.shape[0])
    k = xa.shape[1] if n_params is None else int(n_params)
    adj = cluster_adjustment(xa.shape[0], k, g)
    v = sandwich(_bread(xa), xa * r[:, None], codes, adj)
    return ClusterVcov(v, g, adj)


def hc1_vcov(x: object, resid: object, *, weights: object = None, n_params: int | None = None) -> np.ndarray:
    """HC1 heteroskedasticity-robust variance, small-sample factor ``N/(N-K)``."""
    xa, r = _weighted(x, resid, weights)
    n = xa.shape[0]
    k = xa.shape[1] if n_params is None else int(n_params)
    if n <= k:
        raise DesignError(f"{n} observations cannot estimate {k} parameters; add data or drop terms.")
    return sandwich(_bread(xa), xa * r[:, None], None, n / (n - k))
