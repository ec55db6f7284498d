"""Fixed-effect demeaning (within transformation) for one or more factor sets.

Public functions (arrays in, arrays out; all float64):

``demean(x, factors, weights=None, *, tol=1e-12, max_iter=10_000, method="auto") -> Demeaned``
    Residualise every column of ``x`` (shape ``(n,)`` or ``(n, k)``) on the dummies of each factor in
    ``factors`` (a sequence of integer-code arrays of length ``n``, or an ``(n, f)`` integer array),
    with optional non-negative observation ``weights`` (weighted least squares projection).
    Alternating projections (the method of Gaure 2013, as in fixest/pyfixest/reghdfe): sweep over the
    factors subtracting weighted group means until the largest change is below ``tol`` times the scale
    of ``x``. One factor needs one sweep; balanced two-way panels converge in two. Small problems
    (``n * levels <= DENSE_LIMIT``) take the exact dense path under ``method="auto"``. Returns a
    :class:`Demeaned` tuple ``(values, converged, n_iter)``; ``values`` has the shape of ``x``.

``demean_dense(x, factors, weights=None) -> numpy.ndarray``
    The exact projection by least squares on an explicit dummy matrix. For small problems and tests.

``factor_codes(*columns) -> numpy.ndarray``
    Integer codes ``0..L-1`` of a label array (or of the combination of several).

The jitted kernel is :func:`_demean_kernel` (one ``jax.jit`` entry, ``lax.while_loop`` over sweeps,
``segment_sum`` for group means). Group counts are static arguments, so a new panel shape compiles once.

References
----------
Gaure, S. (2013). OLS with multiple high dimensional category variables. *Computational Statistics &
Data Analysis* 66, 8-18.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from decrimkit.errors import DataError, SpecificationError

__all__ = ["Demeaned", "demean", "demean_dense", "factor_codes", "DENSE_LIMIT"]

DENSE_LIMIT = 200_000  # n times total levels below which method="auto" projects exactly (dense)


class Demeaned(NamedTuple):
    """Output of :func:`demean`.

    values : (n,) or (n, k) float64, the residuals of ``x`` on the fixed effects.
    converged : bool, whether the largest change in the last sweep was below the tolerance.
    n_iter : int, number of sweeps done.
    """

    values: np.ndarray
    converged: bool
    n_iter: int


def factor_codes(*columns: object) -> np.ndarray:
    """Integer codes ``0..L-1`` of one label array, or of the combinations of several (same length)."""
    if len(columns) == 1:
        return pd.factorize(np.asarray(columns[0], dtype=object), sort=True)[0].astype("int64")
    frame = pd.DataFrame({i: np.asarray(c, dtype=object) for i, c in enumerate(columns)})
    return frame.groupby(list(frame.columns), sort=True).ngroup().to_numpy().astype("int64")


def _as_codes(factors: Sequence[np.ndarray] | np.ndarray, n: int) -> tuple[np.ndarray, tuple[int, ...]]:
    """Factor codes as an (f, n) int array of 0..L-1 codes, and the number of levels of each factor."""
    if isinstance(factors, np.ndarray) and factors.ndim == 2:
        cols = [factors[:, j] for j in range(factors.shape[1])]
    elif isinstance(factors, np.ndarray) and factors.ndim == 1:
        cols = [factors]
    else:
        cols = [np.asarray(f) for f in factors]
    if not cols:
        raise DataError("demean needs at least one factor (an integer code per observation).")
    out, levels = [], []
    for j, c in enumerate(cols):
        if c.shape != (n,):
            raise DataError(f"factor {j} has shape {c.shape}; expected ({n},), one code per observation.")
        codes = pd.factorize(c, sort=True)[0].astype("int64")
        out.append(codes)
        levels.append(int(codes.max()) + 1)
    return np.stack(out), tuple(levels)


def _check_inputs(x: object, weights: object) -> tuple[np.ndarray, np.ndarray]:
    xa = np.asarray(x, dtype="float64")
    if xa.ndim not in (1, 2):
        raise DataError(f"x must be 1- or 2-dimensional, got shape {xa.shape}.")
    if not np.isfinite(xa).all():
        raise DataError("x has missing or infinite values; remove or impute them before demeaning.")
    n = xa.shape[0]
    if weights is None:
        w = np.ones(n)
    else:
        w = np.asarray(weights, dtype="float64").reshape(-1)
        if w.shape != (n,) or not np.isfinite(w).all() or (w < 0).any():
            raise DataError(f"weights must be {n} finite non-negative numbers, one per observation.")
    return xa, w


@partial(jax.jit, static_argnames=("levels", "max_iter"))
def _demean_kernel(
    x: jax.Array, codes: jax.Array, w: jax.Array, tol: float, *, levels: tuple[int, ...], max_iter: int
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Alternating projections. x: (n, k); codes: (f, n); w: (n,). Returns (values, converged, n_iter)."""
    wsum = [jax.ops.segment_sum(w, codes[j], num_segments=levels[j]) for j in range(len(levels))]
    wsum = [jnp.where(s > 0, s, 1.0) for s in wsum]
    scale = jnp.maximum(jnp.max(jnp.abs(x)), 1.0)

    def sweep(v: jax.Array) -> jax.Array:
        for j, n_lev in enumerate(levels):
            means = jax.ops.segment_sum(v * w[:, None], codes[j], num_segments=n_lev) / wsum[j][:, None]
            v = v - means[codes[j]]
        return v

    def cond(state: tuple[jax.Array, jax.Array, jax.Array]) -> jax.Array:
        _, change, it = state
        return (change > tol * scale) & (it < max_iter)

    def body(state: tuple[jax.Array, jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array, jax.Array]:
        v, _, it = state
        new = sweep(v)
        return new, jnp.max(jnp.abs(new - v)), it + 1

    first = sweep(x)
    if len(levels) == 1:  # one factor: a single sweep is the exact projection
        return first, jnp.array(True), jnp.array(1)
    init = (first, jnp.max(jnp.abs(first - x)), jnp.array(1))
    v, change, it = jax.lax.while_loop(cond, body, init)
    return v, change <= tol * scale, it


def demean(
    x: object,
    factors: Sequence[np.ndarray] | np.ndarray,
    weights: object = None,
    *,
    tol: float = 1e-12,
    max_iter: int = 10_000,
    method: str = "auto",
) -> Demeaned:
    """Residualise ``x`` on the fixed effects given by ``factors`` (weighted if ``weights``).

    Parameters
    ----------
    x : array, (n,) or (n, k)
        Columns to demean (outcome, regressors).
    factors : sequence of (n,) arrays, or (n, f) array
        Fixed-effect labels or codes per observation, one array per factor (e.g. unit and period).
    weights : (n,) array, optional
        Non-negative weights of a weighted least squares projection.
    tol : float
        Stop when the largest change of a sweep is below ``tol * max(1, max|x|)``.
    max_iter : int
        Maximum number of sweeps.
    method : {"auto", "iterative", "dense"}
        ``"iterative"``: the jitted alternating projections; ``"dense"``: exact least squares on the
        dummy matrix; ``"auto"``: dense when ``n * levels <= DENSE_LIMIT`` (small panels, no compilation).

    Returns
    -------
    Demeaned
        ``values`` (shape of ``x``), ``converged`` and ``n_iter``. Callers should raise or warn
        when ``converged`` is False.

    Raises
    ------
    DataError
        Non-finite ``x``, bad weights, or factors of the wrong length.
    """
    if method not in ("auto", "iterative", "dense"):
        raise SpecificationError(f"method={method!r} is not allowed; use 'auto', 'iterative' or 'dense'.")
    xa, w = _check_inputs(x, weights)
    codes, levels = _as_codes(factors, xa.shape[0])
    n = xa.shape[0]
    x2 = xa.reshape(n, -1)
    if x2.shape[1] == 0:
        return Demeaned(xa.copy(), True, 0)
    if method == "dense" or (method == "auto" and n * sum(levels) <= DENSE_LIMIT):
        return Demeaned(_dense(x2, codes, levels, w).reshape(xa.shape), True, 0)
    k = x2.shape[1]
    width = 1 << max(k - 1, 1).bit_length()  # pad columns to a power of two: fewer distinct compiled shapes
    padded = np.zeros((n, width))
    padded[:, :k] = x2
    v, ok, it = _demean_kernel(
        jnp.asarray(padded), jnp.asarray(codes), jnp.asarray(w), float(tol), levels=levels, max_iter=int(max_iter)
    )
    values = np.asarray(v)[:, :k].reshape(xa.shape)
    return Demeaned(values, bool(ok), int(it))


def demean_dense(x: object, factors: Sequence[np.ndarray] | np.ndarray, weights: object = None) -> np.ndarray:
    """Exact residuals of ``x`` on an explicit dummy matrix of all factors (least squares).

    Memory grows with n times the total number of levels; use for small problems and checks.
    """
    xa, w = _check_inputs(x, weights)
    codes, levels = _as_codes(factors, xa.shape[0])
    return _dense(xa.reshape(xa.shape[0], -1), codes, levels, w).reshape(xa.shape)


def _dense(x2: np.ndarray, codes: np.ndarray, levels: tuple[int, ...], w: np.ndarray) -> np.ndarray:
    """Exact weighted projection via the (levels x levels) normal equations of the dummy matrix."""
    offsets = np.concatenate([[0], np.cumsum(levels)[:-1]]).astype("int64")
    idx = codes + offsets[:, None]  # (f, n) column of each observation's dummy
    total = int(sum(levels))
    gram = np.zeros((total, total))
    for a in range(len(levels)):
        for b in range(len(levels)):
            np.add.at(gram, (idx[a], idx[b]), w)
    rhs = np.zeros((total, x2.shape[1]))
    for a in range(len(levels)):
        np.add.at(rhs, idx[a], w[:, None] * x2)
    coef = np.linalg.lstsq(gram, rhs, rcond=1e-12)[0]
    return x2 - coef[idx].sum(axis=0)
