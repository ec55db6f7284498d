"""Synthetic control's numerical core: W for a given V, and the choice of V.

W solves ``min_w (x1 - X0 w)' V (x1 - X0 w)`` on the simplex for SD-normalised predictors
(``_simplex.simplex_ls`` in factor form); V is custom, equal, regression-based, R Synth's local search
(``"nested-local"``) or the global nested search of ``_vsearch.py``. Used by ``_scm.py`` (the fit),
``_scm_placebo.py`` (placebo runs) and ``_scm_cv.py`` (V by cross-validation).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from scipy import optimize

from decrimkit.errors import SpecificationError
from decrimkit.numerics.blas import one_blas_thread
from decrimkit.progress import track

from ._design import SynthDesign
from ._simplex import donor_bucket, pad_donors, simplex_ls, valid_donors
from ._vsearch import search_v

__all__ = ["SCMFit", "solve_w"]


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    """One BLAS/LAPACK thread while the simplex kernels run (and their results are read back).

    The kernels' small batched LAPACK calls (SVD least squares in the active-set phase) go to the
    process's OpenBLAS; its worker threads only contend on such small problems. Measured on a loaded
    2-core machine: the Prop 99 placebo batch took 4-26 s with OpenBLAS's default threads and
    0.17-0.3 s with one. The limit comes from :func:`decrimkit.numerics.blas.one_blas_thread`, whose
    library scan is done once per process (``threadpool_limits`` rescanned on every entry: a few ms).
    """
    with one_blas_thread():
        yield


class SCMFit(NamedTuple):
    """w: (J,) donor weights; v: (k,) predictor weights; loss: pre-period outcome MSPE; kkt: solver check."""

    w: np.ndarray
    v: np.ndarray
    loss: float
    kkt: float


def _w_loss_one(v, x0, x1, z0, z1, valid, init=None):
    root = jnp.sqrt(v)[:, None]  # the QP with Q = X0'VX0, c = X0'Vx1 in factor form
    sol = simplex_ls(root * x0, root[:, 0] * x1, valid, max_iter=100, init=init)
    err = z1 - z0 @ sol.w
    return sol.w, jnp.mean(err * err), sol.kkt


_w_and_loss = jax.jit(_w_loss_one)
# many candidate V matrices at once: the finite-difference gradient of the local search
_w_and_loss_batch = jax.jit(jax.vmap(_w_loss_one, in_axes=(0, None, None, None, None, None)))


def solve_w(v: np.ndarray, x_donors: np.ndarray, x_treated: np.ndarray) -> np.ndarray:
    """Simplex weights for a given diagonal V on (already normalised) predictors."""
    j = x_donors.shape[1]
    width = donor_bucket(j)
    with _one_blas_thread():
        w, _, _ = _w_and_loss(
            jnp.asarray(v), jnp.asarray(pad_donors(x_donors, width)), jnp.asarray(x_treated), jnp.zeros((1, width)),
            jnp.zeros(1), valid_donors(j),
        )
        return np.asarray(w)[:j]


def _normalise(design: SynthDesign) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    allx = np.column_stack([design.x_treated, design.x_donors])
    divisor = np.std(allx, axis=1, ddof=1)
    divisor = np.where(divisor > 0, divisor, 1.0)
    return design.x_donors / divisor[:, None], design.x_treated / divisor, divisor


def _regression_v(x0, x1, z0, z1) -> np.ndarray:
    """Regression-based V: squared coefficients of window outcomes on normalised predictors, summed."""
    xs = np.column_stack([np.ones(x0.shape[1] + 1), np.column_stack([x1, x0]).T])
    zs = np.column_stack([z1, z0]).T
    beta = np.linalg.lstsq(xs, zs, rcond=None)[0][1:]
    v = (beta**2).sum(axis=1)
    return v / v.sum() if v.sum() > 0 and np.isfinite(v).all() else np.full(len(v), 1.0 / len(v))


def _custom_v(v: Any, design: SynthDesign) -> np.ndarray:
    """A user-given V (R Synth's ``custom.v``): one non-negative weight per predictor, scaled to sum 1.

    A Series is matched to the predictors by label when its index holds the predictor labels, else
    taken in order; an array is taken in the order of ``predictors``.
    """
    labels = list(design.predictor_labels)
    if isinstance(v, pd.Series):
        if set(map(str, v.index)) == set(labels) and len(v) == len(labels):
            v = v.rename(index=str).reindex(labels)
        v = v.to_numpy()
    try:
        arr = np.asarray(v, dtype="float64").ravel()
    except (TypeError, ValueError):
        raise SpecificationError(
            f"v={v!r} is neither a method name ('nested', 'nested-local', 'equal', 'regression', 'cv') nor numeric predictor weights."
        ) from None
    if arr.shape != (len(labels),):
        raise SpecificationError(
            f"v has {arr.size} weight(s) but there are {len(labels)} predictors ({labels[:4]}...); give one "
            f"weight per predictor, in the order of predictors= (every pre-period outcome when predictors=None)."
        )
    if not np.isfinite(arr).all() or (arr < 0).any() or not arr.sum() > 0:
        raise SpecificationError(
            f"v must hold finite, non-negative predictor weights with a positive sum; got {arr.tolist()[:6]}."
        )
    return arr / arr.sum()


def _choose_v(
    v_method: Any, x0: np.ndarray, x1: np.ndarray, z0: np.ndarray, z1: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """(V on the simplex, approximate W or None) for normalised predictors.

    V is given (custom), equal, regression-based or nested; the global search also returns its
    approximate W at that V, a warm start for the exact solve.
    """
    k = x0.shape[0]
    if not isinstance(v_method, str):
        return np.asarray(v_method, dtype="float64"), None
    if v_method == "equal" or k == 1:
        return np.full(k, 1.0 / k), None
    reg = _regression_v(x0, x1, z0, z1)
    if v_method == "regression":
        return reg, None
    if v_method == "nested-local":
        with _one_blas_thread():
            return _local_v(x0, x1, z0, z1, reg), None
    return search_v(x0, x1, z0, z1, seed=seed, starts=(reg,))


def _local_v(x0: np.ndarray, x1: np.ndarray, z0: np.ndarray, z1: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """R Synth's local V search: Nelder-Mead and BFGS from equal and regression-based V, best of four.

    Kept as ``v="nested-local"`` to reproduce R Synth's published fits; it can stop at a local optimum
    (Basque: pre-period MSPE 0.0078 against 0.0041 at the global search's V).
    """
    k, j = x0.shape
    width = donor_bucket(j)
    args = (*(jnp.asarray(a) for a in (pad_donors(x0, width), x1, pad_donors(z0, width), z1)), valid_donors(j))

    def objective(p: np.ndarray) -> float:
        a = np.abs(p)
        return float(_w_and_loss(jnp.asarray(a / a.sum()), *args)[1]) if a.sum() > 0 else np.inf

    def gradient(p: np.ndarray) -> np.ndarray:
        # forward differences (scipy's default step), all k+1 evaluations in one vmapped batch
        h = np.sqrt(np.finfo(float).eps) * np.where(p >= 0, 1.0, -1.0) * np.maximum(1.0, np.abs(p))
        pts = np.abs(np.vstack([p, p + np.diag(h)]))
        losses = np.asarray(_w_and_loss_batch(jnp.asarray(pts / pts.sum(axis=1, keepdims=True)), *args)[1])
        return (losses[1:] - losses[0]) / h

    best = None
    runs = [(s, m) for s in (np.full(k, 1.0 / k), reg) for m in ("Nelder-Mead", "BFGS")]
    for start, method in track(runs, "SCM fit (local V search)"):
        if method == "Nelder-Mead":
            res = optimize.minimize(
                objective, start, method=method, options={"maxiter": 100 * k, "xatol": 1e-7, "fatol": 1e-12}
            )
        else:
            res = optimize.minimize(objective, start, jac=gradient, method=method)
        if best is None or res.fun < best.fun:
            best = res
    return np.abs(best.x) / np.abs(best.x).sum()


def _fit(design: SynthDesign, v_method: Any, window: tuple[int, int], seed: int = 0) -> SCMFit:
    x0, x1, _ = _normalise(design)
    lo, hi = window
    z0, z1 = design.y_donors[lo : hi + 1], design.y_treated[lo : hi + 1]
    j, width = x0.shape[1], donor_bucket(x0.shape[1])
    args = (*(jnp.asarray(a) for a in (pad_donors(x0, width), x1, pad_donors(z0, width), z1)), valid_donors(j))

    def evaluate(v: np.ndarray, init: np.ndarray | None = None) -> tuple[np.ndarray, float, float]:
        start = None if init is None else jnp.asarray(pad_donors(init, width))
        with _one_blas_thread():
            w, loss, kkt = _w_and_loss(jnp.asarray(v), *args, start)
            return np.asarray(w)[:j], float(loss), float(kkt)

    v, init = _choose_v(v_method, x0, x1, z0, z1, seed)
    w, loss, kkt = evaluate(v, init)
    return SCMFit(w=w, v=v, loss=loss, kkt=kkt)
