"""Relative-magnitude pieces of :func:`did.honest` (``Delta^RM(Mbar)``): the polyhedra, their identified
set, and the three tests inverted for confidence sets (the ARP hybrid and conditional tests on the
post-period moments, via :mod:`._arp`, and the exact least-favourable intervals). ``d`` is the
``_Design`` of :mod:`.honest` (event times, ``beta``, ``sigma``, ``n_pre``, ``n_post``, ``l_vec``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import linalg, optimize

from decrimkit.errors import DesignError
from decrimkit.estimators.did import _arp
from decrimkit.numerics.keys import numpy_rng

__all__ = ["rm_pieces", "rm_ci_lf", "rm_ci_arp", "id_bounds"]


def rm_pieces(d: Any, mbar: float) -> list[np.ndarray]:
    """Constraint matrices A (rows: A delta_full <= 0, delta over the estimated times) per polyhedron."""
    grid = np.arange(d.times.min(), d.times.max() + 1)  # every event time, the reference included
    n = len(grid)
    ref = int(np.flatnonzero(grid == -1)[0])
    diff = np.zeros((n - 1, n))
    for i in range(n - 1):
        diff[i, i], diff[i, i + 1] = -1.0, 1.0
    diff = np.delete(diff, ref, axis=1)  # delta_ref = 0 drops out
    pre_rows = [i for i in range(n - 1) if grid[i + 1] <= -1]  # changes ending at or before the reference
    post_rows = [i for i in range(n - 1) if grid[i + 1] >= 0]
    pieces = []
    for s in pre_rows:
        for sign in (1.0, -1.0):
            top = sign * diff[s]  # the largest pre-period change, with its sign: top >= |other pre changes|
            bound = np.array([top if r in pre_rows else mbar * top for r in pre_rows + post_rows])
            changes = diff[pre_rows + post_rows]
            rows = np.vstack([changes - bound, -changes - bound])  # HonestDiD's row order: all +, then all -
            pieces.append(rows[np.einsum("ij,ij->i", rows, rows) > 1e-10])  # (s, +): drop the 0 <= 0 row
    return pieces


def _rm_interval(d: Any, a_mat: np.ndarray, crit: float) -> tuple[float, float] | None:
    """Accepted theta values for one polyhedron: min/max theta s.t. A (beta_hat - tau) <= crit * sigma_A."""
    sig_a = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", a_mat, d.sigma, a_mat), 0.0))
    # variables: tau_post (n_post); theta = l' tau_post; delta = beta_hat - (0, tau_post)
    emb = np.vstack([np.zeros((d.n_pre, d.n_post)), np.eye(d.n_post)])  # (k, n_post)
    a_ub = -a_mat @ emb
    b_ub = crit * sig_a - a_mat @ d.beta
    out = []
    for sense in (1.0, -1.0):
        res = optimize.linprog(sense * d.l_vec, A_ub=a_ub, b_ub=b_ub, bounds=[(None, None)] * d.n_post, method="highs")
        if res.status == 2:
            return None
        if res.status == 3:
            out.append(-sense * np.inf)
            continue
        out.append(float(d.l_vec @ res.x))
    return out[0], out[1]


def _rm_crit(d: Any, a_mat: np.ndarray, alpha: float, rng: np.random.Generator, n_draws: int) -> float:
    sig_a = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", a_mat, d.sigma, a_mat), 0.0))
    sig_a = np.where(sig_a > 0, sig_a, np.inf)
    vals, vecs = np.linalg.eigh(d.sigma)
    xi = rng.standard_normal((n_draws, len(d.beta))) @ (vecs * np.sqrt(np.clip(vals, 0, None))).T
    return float(np.quantile(((xi @ a_mat.T) / sig_a).max(axis=1), 1 - alpha))


def _rm_moments(d: Any, a_mat: np.ndarray) -> _arp.Moments:
    """ARP moments of one Delta^RM polyhedron on the rows that involve post periods.

    ``A (beta_hat - tau) <= 0`` with ``tau_post = u0 theta + N nu`` (``l' u0 = 1``, ``N`` spans ``l' u = 0``).
    """
    post = a_mat[:, d.n_pre :]
    rows = np.flatnonzero(np.abs(post).sum(axis=1) > 0)
    a_mat, post = a_mat[rows], post[rows]
    u0 = d.l_vec / (d.l_vec @ d.l_vec)
    null = linalg.null_space(d.l_vec[None, :])  # (n_post, n_post - 1)
    sigma = a_mat @ d.sigma @ a_mat.T
    sd = np.sqrt(np.diag(sigma))
    x = post @ null
    try:
        vertices = _arp.dual_vertices(sd, x)
    except ValueError as exc:
        raise DesignError(
            f"honest(test='hybrid'/'conditional'): {d.n_post} post periods give {exc} to enumerate for the ARP "
            "test; restrict the event study to fewer post periods or use test='lf'."
        ) from exc
    return _arp.Moments(a_mat @ d.beta, post @ u0, x, sigma, sd, vertices)


def rm_ci_arp(
    d: Any, mbar: float, alpha: float, test: str, seed: int, n_draws: int, grid_points: int
) -> tuple[float, float]:
    """Hull of the per-polyhedron ARP confidence sets (hybrid or conditional test)."""
    sd_theta = float(np.sqrt(d.l_vec @ d.sigma[d.n_pre :, d.n_pre :] @ d.l_vec))
    kappa = alpha / 10
    lows, highs = [], []
    id_set = id_bounds(d, [(a, np.zeros(len(a))) for a in rm_pieces(d, mbar)])
    centre = id_set if np.isfinite(id_set).all() else (float(d.l_vec @ d.beta[d.n_pre :]),) * 2
    for i, a_mat in enumerate(rm_pieces(d, mbar)):
        mom = _rm_moments(d, a_mat)
        if len(mom.vertices) == 0:  # no value of theta is rejected in this polyhedron
            lows.append(-np.inf)
            highs.append(np.inf)
            continue
        if test == "hybrid":
            lf_cv = _arp.lf_critical_value(mom, kappa, numpy_rng(seed + i), n_draws)
            window = _arp.lf_window(mom, lf_cv)
            if window is None:
                continue
            level = (alpha - kappa) / (1 - kappa)
        else:
            lf_cv, level = None, alpha
            window = (centre[0] - 20 * sd_theta, centre[1] + 20 * sd_theta)
        bounded = np.isfinite(window)
        window = (
            window[0] if bounded[0] else centre[0] - 20 * sd_theta,
            window[1] if bounded[1] else centre[1] + 20 * sd_theta,
        )
        iv = _arp.confidence_set(mom, window, level, lf_cv, grid_points)
        if iv is None:
            continue
        # an end accepted at the edge of a window that is not the hybrid's exact LF boundary stays open
        lo = -np.inf if (iv[0] <= window[0] and (test == "conditional" or not bounded[0])) else iv[0]
        hi = np.inf if (iv[1] >= window[1] and (test == "conditional" or not bounded[1])) else iv[1]
        lows.append(lo)
        highs.append(hi)
    if not lows:
        return np.nan, np.nan
    return min(lows), max(highs)


def rm_ci_lf(d: Any, mbar: float, alpha: float, seed: int, n_draws: int) -> tuple[float, float]:
    lows, highs = [], []
    for i, a_mat in enumerate(rm_pieces(d, mbar)):
        crit = _rm_crit(d, a_mat, alpha, numpy_rng(seed + i), n_draws)
        iv = _rm_interval(d, a_mat, crit)
        if iv is not None:
            lows.append(iv[0])
            highs.append(iv[1])
    if not lows:
        return np.nan, np.nan
    return min(lows), max(highs)


def id_bounds(d: Any, pieces: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float]:
    """Hull of theta over the polyhedra ``A delta <= rhs`` with ``delta = beta_hat - (0, tau_post)``."""
    lows, highs = [], []
    emb = np.vstack([np.zeros((d.n_pre, d.n_post)), np.eye(d.n_post)])
    for a_mat, rhs in pieces:
        out = []
        for sense in (1.0, -1.0):
            res = optimize.linprog(
                sense * d.l_vec,
                A_ub=-a_mat @ emb,
                b_ub=rhs - a_mat @ d.beta,
                bounds=[(None, None)] * d.n_post,
                method="highs",
            )
            if res.status == 2:
                break
            out.append(-sense * np.inf if res.status == 3 else float(d.l_vec @ res.x))
        if len(out) == 2:
            lows.append(out[0])
            highs.append(out[1])
    return (min(lows), max(highs)) if lows else (np.nan, np.nan)
