"""ATT(g,t) cell estimates: the 2x2 estimators of every (g, t) cell at once, and their fit checks.

Two routes to the same numbers: cells that share a design (cohort, comparison units, covariates) are fitted
together in NumPy (:func:`~decrimkit.estimators.did._cs_groups.fit_groups`, the default, measured several times
faster), and the JAX kernels below ``vmap`` the single-cell estimator of
:mod:`decrimkit.estimators.did._drdid` over cells (``method="dr_imp"``, and the randomization draws, which
refit every cell per permutation in one compiled call). Kernel and group fits report the same flags
(convergence, the largest propensity score, finiteness), which :func:`check_fit` turns into named errors.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from decrimkit.errors import ConvergenceError, DesignError
from decrimkit.estimators.did._cs_design import CellDesign
from decrimkit.estimators.did._cs_groups import GroupFit, fit_groups
from decrimkit.estimators.did._drdid import CellFit, cell_estimate_given_ps, cell_estimate_imp, cell_logit

__all__ = ["att_gt_kernel", "att_gt_point_kernel", "att_gt_imp_kernel", "cell_estimates", "check_fit",
           "treated_linear_map"]


@jax.jit
def att_gt_kernel(y_post, y_pre, treat, mask, x, weights, method, rep, group, n_units) -> CellFit:
    """All cells at once: ``vmap`` of the 2x2 estimator over the leading (cell) axis.

    Every (K, m) input holds only the units of each cell (:func:`~decrimkit.estimators.did._cs_design.compact_cells`; ``weights`` too), padded
    with ``mask = 0``; ``n_units`` is the sample size that scales the influence functions.
    The propensity-score logit is fitted once per distinct (cohort, units, covariates) signature: for
    the cells ``rep`` (U,), then handed to every cell ``k`` through ``group[k]`` (see :func:`~decrimkit.estimators.did._cs_design.logit_groups`).
    ``method`` is a traced index into ``METHODS``, so DR, IPW and REG share one compilation per shape.
    """
    beta, converged = jax.vmap(cell_logit)(treat[rep], mask[rep], x[rep], weights[rep])
    return jax.vmap(cell_estimate_given_ps, in_axes=(0, 0, 0, 0, 0, 0, None, 0, 0, None))(
        y_post, y_pre, treat, mask, x, weights, method, beta[group], converged[group], n_units)


@jax.jit
def att_gt_point_kernel(y_post, y_pre, treat, mask, x, weights, method, rep, group, n_units) -> CellFit:
    """:func:`att_gt_kernel` without the influence functions (XLA skips computing them): randomization draws."""
    fit = att_gt_kernel(y_post, y_pre, treat, mask, x, weights, method, rep, group, n_units)
    return fit._replace(inf=jnp.zeros((fit.att.shape[0], 1)))


@jax.jit
def att_gt_imp_kernel(y_post, y_pre, treat, mask, x, weights) -> CellFit:
    """All cells at once for ``method="dr_imp"`` (its own kernel: the tilting fit is compiled only when used)."""
    return jax.vmap(cell_estimate_imp, in_axes=(0, 0, 0, 0, 0, None))(y_post, y_pre, treat, mask, x, weights)


def cell_estimates(design: CellDesign, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Every cell's ATT and its influence functions (units x cells), base cells zero, fit flags checked."""
    if method == "dr_imp":
        cells = (jnp.asarray(design.y_post), jnp.asarray(design.y_pre), jnp.asarray(design.treat),
                 jnp.asarray(design.mask), jnp.asarray(design.x), jnp.asarray(design.w_unit))
        fit = att_gt_imp_kernel(*cells)
        att, inf = np.array(fit.att), np.array(fit.inf).T
    else:  # cells sharing a design fitted together in NumPy (measured several times faster than the kernel)
        fit = fit_groups(design, method)
        att, inf = fit.att, fit.inf
    check_fit(fit, design, method)
    att = np.where(design.is_base, 0.0, att)
    inf[:, design.is_base] = 0.0
    return att, inf


def check_fit(fit: CellFit | GroupFit, design: CellDesign, method: str) -> None:
    """Turn kernel flags into named errors (cells are reported by cohort and period labels)."""
    times = design.times
    live = ~design.is_base

    def where(i: int) -> str:
        return f"(group {times[design.gpos[i]]}, period {times[design.tpos[i]]})"

    if method == "dr_imp":
        bad = np.flatnonzero(live & ~np.asarray(fit.converged))
        if bad.size:
            raise ConvergenceError(
                f"the inverse-probability-tilting propensity score (method='dr_imp') did not converge in "
                f"{bad.size} cells, first {where(bad[0])}: reweighting the comparison units cannot reproduce the "
                f"cohort's covariate means (weak overlap). Use method='dr', fewer or coarser covariates, or "
                f"another comparison group."
            )
    if method in ("dr", "ipw", "dr_imp"):
        ps_max, conv = np.asarray(fit.ps_max), np.asarray(fit.converged)
        bad = np.flatnonzero(live & (ps_max >= 0.999))
        if bad.size:
            raise DesignError(
                f"overlap fails in {bad.size} cells, first {where(bad[0])}: the propensity score reaches "
                f"{ps_max[bad[0]]:.4f} (covariates almost perfectly separate the cohort from its comparison "
                f"units). Use fewer or coarser covariates, method='reg', or another comparison group."
            )
        bad = np.flatnonzero(live & ~conv)
        if bad.size:
            raise ConvergenceError(
                f"the propensity-score logit did not converge in {bad.size} cells, first {where(bad[0])}. "
                f"Rescale the covariates or drop near-collinear ones."
            )
    att, inf = np.asarray(fit.att), np.asarray(fit.inf)
    # a GroupFit holds (n_units, K) influence functions, the kernels' CellFit (K, m)
    finite_inf = np.isfinite(inf).all(axis=0 if isinstance(fit, GroupFit) else 1)
    bad = np.flatnonzero(live & ~(np.isfinite(att) & finite_inf))
    if bad.size:
        raise DesignError(
            f"ATT(g,t) is not finite in {bad.size} cells, first {where(bad[0])}: a singular propensity-score "
            f"or outcome-regression fit. Drop collinear covariates or use a larger comparison group."
        )


def treated_linear_map(
    design: CellDesign, unit_index: np.ndarray, time_index: np.ndarray, treated: np.ndarray,
    estimates_of_outcome: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """(n_obs, K): how each treated unit's outcome rows move every ATT(g,t), one fit per treated unit.

    Given the design (propensity scores depend on covariates only), a cell's ATT is linear in its units'
    differences ``y_i[t] - y_i[base]``: ``att_k = sum_i c_ki (y_i[t_k] - y_i[base_k])``. Filling unit ``j``'s
    rows with its period positions (every other unit zero) gives ``att_k = c_kj (t_k - base_k)``, so one fit
    recovers unit ``j``'s coefficients in every cell, and a row ``(j, t)`` of the map is
    ``c_kj ([t = t_k] - [t = base_k])``. Rows of other units are zero (Conley-Taber and Ferman-Pinto place
    control residuals on treated units only). ``estimates_of_outcome(y)``: the K cell ATTs with outcome ``y``
    (rows in panel order).
    """
    gap = (design.tpos - design.base).astype("float64")
    live = ~design.is_base & (gap != 0)
    out = np.zeros((unit_index.size, design.tpos.size))
    for j in treated:
        rows = np.flatnonzero(unit_index == j)
        y = np.zeros(unit_index.size)
        y[rows] = time_index[rows]
        c = np.where(live, np.asarray(estimates_of_outcome(y)) / np.where(live, gap, 1.0), 0.0)
        t = time_index[rows][:, None]
        out[rows] = c[None, :] * ((t == design.tpos[None, :]).astype("float64") - (t == design.base[None, :]))
    return out
