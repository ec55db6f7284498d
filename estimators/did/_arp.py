"""Andrews, Roth and Pakes (2023) tests of linear moment inequalities with nuisance parameters.

The hypothesis ``H0: theta`` is tested through moments ``E[y(theta) - X nu] <= 0`` for some nuisance
``nu``, with ``y(theta) = Y - a theta`` normal with known covariance ``Sigma``. The statistic is

    eta(theta) = min_nu max_j (y_j(theta) - X_j nu) / sd_j = max_{g in V} g' y(theta),

where the second form is the linear-programming dual: ``V`` are the vertices of the polytope
``{g >= 0, g' sd = 1, g' X = 0}``. This module enumerates ``V`` once per polytope, so every quantity
below is closed form and vectorised over a grid of ``theta`` (no linear program per point):

- conditional test (ARP section 4): condition on the maximising vertex ``g*`` and on the part of ``y``
  independent of ``g*' y``; ``g*' y / sigma_B`` (``sigma_B^2 = g*' Sigma g*``) is then a standard normal
  truncated to ``[v_lo, v_up] / sigma_B``, the range of values of ``g*' y`` over which ``g*`` stays the
  maximiser: with ``b = Sigma g* / sigma_B^2`` and ``s = y - b g*' y``, every vertex ``v`` needs
  ``v' s <= (1 - v' b) c``. Reject when the statistic exceeds ``max(0, q_{1-alpha})`` of that law;
- least-favourable (LF) critical value: the ``1 - kappa`` quantile of ``max_{g in V} g' xi`` with
  ``xi ~ N(0, Sigma)`` (simulated);
- conditional-LF hybrid (ARP section 5, HonestDiD's default): reject when ``eta`` exceeds the LF
  critical value at ``kappa = alpha / 10``; otherwise run the conditional test at level
  ``(alpha - kappa) / (1 - kappa)`` with ``v_up`` capped at that critical value.

Reference: Andrews, I., Roth, J. and Pakes, A. (2023). Inference for linear conditional moment
inequalities. *Review of Economic Studies* 90(6), 2763-2791.
"""

from __future__ import annotations

import itertools
from math import comb
from typing import NamedTuple

import numpy as np
from scipy import stats

__all__ = ["Moments", "dual_vertices", "lf_critical_value", "lf_window", "accept", "confidence_set", "MAX_BASES"]

MAX_BASES = 200_000  # enumerating more candidate bases than this is refused (many post periods)
_TOL = 1e-10


class Moments(NamedTuple):
    """``y(theta) = y0 - a * theta``; y0, a, sd: (m,); x: (m, k) nuisance loadings; sigma: (m, m);
    vertices: (n_v, m) dual vertices ``g >= 0, g' sd = 1, g' x = 0``."""

    y0: np.ndarray
    a: np.ndarray
    x: np.ndarray
    sigma: np.ndarray
    sd: np.ndarray
    vertices: np.ndarray


def dual_vertices(sd: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Vertices of ``{g >= 0, g' sd = 1, g' x = 0}`` (rows), by enumerating basic solutions.

    Empty (0 rows) when the polytope is: then ``eta = -inf`` for every ``y``. Raises ValueError when there
    are more than ``MAX_BASES`` candidate bases.
    """
    w = np.column_stack([sd, x])  # (m, k + 1)
    m = w.shape[0]
    rank = np.linalg.matrix_rank(w)
    if comb(m, rank) > MAX_BASES:
        raise ValueError(f"{comb(m, rank)} candidate bases")
    target = np.zeros(w.shape[1])
    target[0] = 1.0
    found: dict[tuple[int, ...], np.ndarray] = {}
    for basis in itertools.combinations(range(m), rank):
        sub = w[list(basis)]  # (rank, k + 1): g_B' sub = target
        g_b, _, r, _ = np.linalg.lstsq(sub.T, target, rcond=None)
        if r < rank or np.abs(sub.T @ g_b - target).max() > 1e-9 or (g_b < -1e-12).any():
            continue
        g = np.zeros(m)
        g[list(basis)] = np.maximum(g_b, 0.0)
        key = tuple(np.round(g * 1e9).astype(np.int64))
        found.setdefault(key, g)
    if not found:  # the moments can always be met: eta is unbounded below and nothing is rejected
        return np.zeros((0, m))
    return np.array(list(found.values()))


def lf_critical_value(mom: Moments, kappa: float, rng: np.random.Generator, n_draws: int) -> float:
    """``1 - kappa`` quantile of ``eta`` under ``y ~ N(0, Sigma)`` (the least-favourable null)."""
    vals, vecs = np.linalg.eigh(mom.sigma)
    xi = rng.standard_normal((n_draws, len(mom.sd))) @ (vecs * np.sqrt(np.clip(vals, 0.0, None))).T
    return float(np.quantile((xi @ mom.vertices.T).max(axis=1), 1 - kappa))


def accept(mom: Moments, theta: np.ndarray, alpha: float, lf_cv: float | None) -> np.ndarray:
    """Acceptance (bool, per ``theta``) of the conditional test, or of the hybrid when ``lf_cv`` is given.

    ``alpha`` is the size of the conditional stage (already adjusted for the hybrid's first stage).
    """
    theta = np.atleast_1d(np.asarray(theta, dtype="float64"))
    y = mom.y0[None, :] - theta[:, None] * mom.a[None, :]  # (n, m)
    proj = y @ mom.vertices.T  # (n, n_v)
    best = proj.argmax(axis=1)
    eta = proj[np.arange(len(theta)), best]
    g = mom.vertices[best]  # (n, m)
    sg = g @ mom.sigma  # (n, m) = (Sigma g)'
    var_b = np.einsum("nm,nm->n", sg, g)
    out = np.zeros(len(theta), dtype=bool)
    tiny = var_b < np.finfo(float).eps
    out[tiny] = eta[tiny] <= 0  # no variance: reject iff eta > 0
    ok = ~tiny
    if lf_cv is not None:
        ok &= eta <= lf_cv  # first stage of the hybrid
    idx = np.flatnonzero(ok)
    if idx.size == 0:
        return out
    b = sg[idx] / var_b[idx, None]
    s = y[idx] - b * eta[idx, None]
    num = s @ mom.vertices.T  # (n, n_v)
    den = 1.0 - b @ mom.vertices.T
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = num / den
    v_lo = np.where(den > _TOL, ratio, -np.inf).max(axis=1)
    v_up = np.where(den < -_TOL, ratio, np.inf).min(axis=1)
    if lf_cv is not None:
        v_up = np.minimum(v_up, lf_cv)
    sigma_b = np.sqrt(var_b[idx])
    stat, z_lo, z_up = eta[idx] / sigma_b, v_lo / sigma_b, v_up / sigma_b
    inside = (z_lo <= stat) & (stat <= z_up)
    cval = np.zeros(len(idx))
    if inside.any():
        lo, up = z_lo[inside], z_up[inside]
        q = stats.truncnorm.ppf(1 - alpha, lo, up)
        cval[inside] = np.maximum(0.0, q)
    out[idx] = ~inside | (stat <= cval)
    return out


def lf_window(mom: Moments, lf_cv: float) -> tuple[float, float] | None:
    """The ``theta`` interval where ``eta(theta) <= lf_cv`` (outside it the hybrid rejects); None if empty."""
    lvl = mom.vertices @ mom.y0 - lf_cv  # need lvl - slope * theta <= 0 for every vertex
    slope = mom.vertices @ mom.a
    if ((np.abs(slope) <= _TOL) & (lvl > 0)).any():
        return None
    pos, neg = slope > _TOL, slope < -_TOL
    lo = float((lvl[pos] / slope[pos]).max()) if pos.any() else -np.inf
    hi = float((lvl[neg] / slope[neg]).min()) if neg.any() else np.inf
    return (lo, hi) if lo <= hi else None


def _edge(mom: Moments, inside: float, outside: float, alpha: float, lf_cv: float | None) -> float:
    """Bisect between an accepted and a rejected ``theta`` down to a relative width of 1e-10."""
    for _ in range(200):
        if abs(outside - inside) <= 1e-10 * max(1.0, abs(inside)):
            break
        mid = 0.5 * (inside + outside)
        if accept(mom, np.array([mid]), alpha, lf_cv)[0]:
            inside = mid
        else:
            outside = mid
    return inside


def confidence_set(
    mom: Moments, window: tuple[float, float], alpha: float, lf_cv: float | None, grid_points: int
) -> tuple[float, float] | None:
    """Hull of the accepted ``theta`` in ``window``: a grid, then bisection at its first and last accepted
    points. An end accepted at the window's edge stays there (the caller decides whether that is open)."""
    lo, hi = window
    grid = np.linspace(lo, hi, grid_points)
    ok = accept(mom, grid, alpha, lf_cv)
    if not ok.any():
        return None
    first, last = int(np.argmax(ok)), int(len(ok) - 1 - np.argmax(ok[::-1]))
    left = grid[first] if first == 0 else _edge(mom, grid[first], grid[first - 1], alpha, lf_cv)
    right = grid[last] if last == len(grid) - 1 else _edge(mom, grid[last], grid[last + 1], alpha, lf_cv)
    return float(left), float(right)
