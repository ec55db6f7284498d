"""The ATT(g,t) cells of ``att_gt`` fitted group by group in NumPy: one design, many outcome changes.

Cells with the same propensity-score signature (``CellDesign.ps_group``: cohort, comparison units and
covariate period) share everything the 2x2 estimators of :mod:`._drdid` use except the outcome
change ``dy``: the units, their covariates, weights and cohort indicator, hence the logit, the
trimmed propensity weights and the Gram matrix of the outcome regression. With never-treated
comparison units and time-invariant covariates that is one group per cohort holding all its cells.
Every estimator is linear in ``dy`` given those, so a group is fitted at once with ``dy`` as an
(m, c) matrix: one logit, one Gram matrix, and matrix products instead of c separate passes.

The formulas are those of :mod:`._drdid` (``DRDID::drdid_panel``, ``std_ipw_did_panel``,
``reg_did_panel``) rearranged, not approximated: the outcome regression's asymptotic linear
representation enters only through ``alr_ols @ m`` for vectors ``m`` shared by the group, which is
``(w_ols * residual) * (x @ solve(xpx, m))``. The jitted :func:`~._drdid.cell_estimate_given_ps`
remains the reference (tests compare the two to 1e-12) and serves the randomization draws, which
evaluate many reassignments in one compiled call. At these sizes (a few covariates, tens of cells)
NumPy's BLAS products beat the padded per-cell XLA kernel several times over, and nothing crosses
between JAX and NumPy.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.special import expit

from decrimkit.numerics.blas import one_blas_thread

from ._cs_design import CellDesign
from ._drdid import _NEWTON_MAX, _NEWTON_TOL, _PS_CAP, _TRIM, METHODS

__all__ = ["GroupFit", "fit_groups"]


class GroupFit(NamedTuple):
    """All K cells: att (K,), inf (n, K) whole-sample influence functions (zero outside each cell),
    ps_max (K,) largest propensity score among a cell's weighted units (0 for ``"reg"``), converged (K,)."""

    att: np.ndarray
    inf: np.ndarray
    ps_max: np.ndarray
    converged: np.ndarray


def _solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``solve(a, b)``, NaN where ``a`` is singular (as the jitted kernel's LAPACK call yields non-finite values)."""
    try:
        return np.linalg.solve(a, b)
    except np.linalg.LinAlgError:
        return np.full(np.broadcast_shapes(a.shape[-1:], b.shape) if b.ndim == 1 else b.shape, np.nan)


def _logit(x: np.ndarray, d: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, bool]:
    """Weighted logit MLE by Newton-Raphson from zero, with the jitted kernel's stopping rule."""
    beta = np.zeros(x.shape[1])
    size, it = 1e300, 0
    while size > _NEWTON_TOL and it < _NEWTON_MAX and np.isfinite(size):
        p = expit(x @ beta)
        grad = x.T @ (w * (d - p))
        hess = (x * (w * p * (1 - p))[:, None]).T @ x
        delta = _solve(hess, grad)
        beta = beta + delta
        size = float(np.max(np.abs(delta)))
        it += 1
    return beta, bool(size <= _NEWTON_TOL and np.isfinite(beta).all())


def _group(dy: np.ndarray, d: np.ndarray, x: np.ndarray, w: np.ndarray, method: str,
           n_units: int) -> tuple[np.ndarray, np.ndarray, float, bool]:
    """(att (c,), inf (c, m), ps_max, converged) of the c cells of one group.

    ``dy`` (c, m): each cell's outcome change over the group's m units (all of them in every cell);
    ``d`` (m,) cohort indicator; ``x`` (m, p) intercept and covariates; ``w`` (m,) sampling weights.
    Cells are rows, so every per-unit weight multiplies along contiguous memory.
    """
    n1 = float(d.shape[0])
    iw = w / (np.sum(w) / n1)
    w_ols = iw * (1 - d)
    xt = np.ascontiguousarray(x.T)  # (p, m)
    xw = xt * w_ols
    gram = xw @ x
    out = _solve(gram, xw @ dy.T).T @ xt  # (c, m) fitted change from the comparison-unit regression
    res = dy - out
    # alr_ols @ m == (w_ols * res) * (x @ solve(xpx, m)) with xpx = gram / n1: one (m,) vector per m
    if method == "reg":
        w_treat = iw * d
        mt = np.sum(w_treat) / n1
        eta_treat = dy @ w_treat / n1 / mt
        eta_cont = out @ w_treat / n1 / mt
        v = w_ols * (_solve(gram / n1, xt @ w_treat / n1) @ xt)
        inf = w_treat * ((dy - eta_treat[:, None]) - (out - eta_cont[:, None])) / mt - res * (v / mt)
        return eta_treat - eta_cont, inf * (n_units / n1), 0.0, True
    beta_ps, converged = _logit(x, d, iw)
    ps_raw = expit(beta_ps @ xt)
    ps_max = float(np.max(np.where(iw > 0, ps_raw, 0.0)))
    ps = np.minimum(ps_raw, _PS_CAP)
    trim = np.where(d == 1, 1.0, (ps < _TRIM).astype(float))
    w_treat = trim * iw * d
    w_cont = trim * iw * ps * (1 - d) / (1 - ps)
    wl = ps * (1 - ps) * iw
    hess_ps = _solve((xt * wl) @ x, np.eye(xt.shape[0])) * n1
    alr_ps = hess_ps.T @ (xt * (iw * (d - ps)))  # (p, m): the logit's asymptotic linear representation
    mt, mc = np.sum(w_treat) / n1, np.sum(w_cont) / n1
    base = res if method == "dr" else dy
    eta_treat = base @ w_treat / n1 / mt
    eta_cont = base @ w_cont / n1 / mc
    cont = w_cont * (base - eta_cont[:, None])  # (c, m)
    m2 = cont @ x / n1  # (c, p)
    inf = (w_treat / mt) * (base - eta_treat[:, None])
    inf -= (cont + m2 @ alr_ps) / mc
    if method == "dr":
        s = _solve(gram / n1, (xt @ w_treat / n1) / mt - (xt @ w_cont / n1) / mc)
        inf -= res * (w_ols * (s @ xt))
    return eta_treat - eta_cont, inf * (n_units / n1), ps_max, converged


def fit_groups(design: CellDesign, method: str) -> GroupFit:
    """Every cell's ATT and whole-sample influence function, one :func:`_group` call per ``ps_group``."""
    if method not in METHODS:
        raise ValueError(f"fit_groups serves {METHODS}, not {method!r}")
    k, n = design.gpos.size, design.n_units
    att, ps_max = np.zeros(k), np.zeros(k)
    converged = np.ones(k, dtype=bool)
    inf = np.zeros((k, n))  # cells as rows while filling; returned as its (n, k) transpose
    y_t = np.ascontiguousarray(design.y.T)  # (T, n): one period's outcomes are contiguous
    with one_blas_thread():  # products with 1 + p columns: BLAS threads only add hand-offs
        for code in np.unique(design.ps_group):
            cells = np.flatnonzero(design.ps_group == code)
            first = int(cells[0])
            units = np.flatnonzero(design.members(first))
            dy = (y_t[design.tpos[cells]] - y_t[design.base[cells]])[:, units]
            d = (design.g_unit[units] == design.gpos[first]).astype("float64")
            x = design.xw[units, design.early[first], :]
            a, f, pm, conv = _group(dy, d, x, design.w_unit[units], method, n)
            att[cells], ps_max[cells], converged[cells] = a, pm, conv
            for j, cell in enumerate(cells):
                inf[cell, units] = f[j]
    return GroupFit(att=att, inf=inf.T, ps_max=ps_max, converged=converged)
