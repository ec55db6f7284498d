"""Two-period, two-group DiD estimators on panel data with their influence functions.

These are the building blocks of :func:`decrimkit.estimators.did.att_gt`: each ATT(g,t) is one
2x2 comparison between the cohort ``g`` and its comparison units, using the outcome change from a
base period to period ``t``. The three estimators follow Sant'Anna and Zhao (2020) exactly as the
R package ``DRDID`` (1.2) implements them, because R ``did`` calls these functions:

``"dr"``  ``DRDID::drdid_panel``, the locally efficient doubly robust estimator (logit propensity
          score by maximum likelihood, linear outcome regression of the change on the controls,
          Hajek-normalised weights, propensity scores capped at ``1 - 1e-6``, controls with a score
          of 0.995 or more trimmed);
``"ipw"`` ``DRDID::std_ipw_did_panel``, the Hajek (normalised) inverse probability weighting estimator;
``"reg"`` ``DRDID::reg_did_panel``, the outcome regression estimator of Heckman, Ichimura and Todd (1997);
``"dr_imp"`` ``DRDID::drdid_imp_panel``, the improved ("bias-reduced") doubly robust estimator of
          Sant'Anna and Zhao (2020, section 3.1): propensity score by inverse probability tilting
          (Graham, Pinto and Egel 2012), outcome regression by least squares on the comparison units
          weighted by the fitted odds ``p/(1-p)``, the same cap and trimming of propensity scores as
          ``"dr"`` (DRDID 1.2.2 on). Its influence function has no estimation-effect terms (the
          tilting and the odds weights make them vanish), exactly as in DRDID.

R ``did``'s ``att_gt(est_method = "dr")`` calls ``drdid_panel`` (the ``"dr"`` estimator here), not the
improved one; the two coincide without covariates.

Kernels are written for one cell over all ``n`` units of the panel with a 0/1 ``mask`` for the units
in the cell (cohort ``g`` or comparison units). Every sample mean is over the ``n1`` masked units, so
the result equals the estimator run on the sub-sample; units outside get a zero influence function.
As in R ``did`` the influence function is rescaled by ``n / n1`` so that it is a per-unit influence
function of the whole sample. Nothing here is jitted: the caller (``att_gt``) sets the jit boundary
and ``vmap`` s over cells.

References
----------
Sant'Anna, P. H. C. and Zhao, J. (2020). Doubly robust difference-in-differences estimators.
*Journal of Econometrics* 219(1), 101-122.
Graham, B. S., Pinto, C. C. and Egel, D. (2012). Inverse probability tilting for moment condition
models with missing data. *Review of Economic Studies* 79(3), 1053-1079.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

__all__ = ["METHODS", "CellFit", "cell_estimate", "cell_estimate_given_ps", "cell_estimate_imp", "cell_logit"]

_PS_CAP = 1.0 - 1e-6  # DRDID: pmin(ps.fit, 1 - 1e-6)
_TRIM = 0.995  # DRDID default trim.level for comparison units
_NEWTON_TOL = 1e-12
_NEWTON_MAX = 100
_TILT_TOL = 1e-10  # stop once a full Newton step of the tilting fit moves no coefficient more than this
#                   (relative to 1 + |coefficient|); convergence is quadratic, so the last step is exact
_TILT_MAX = 200  # Newton iterations of the tilting fit
_TILT_HALVINGS = 60  # step halvings of its line search


class CellFit(NamedTuple):
    """One 2x2 cell.

    att: () the ATT estimate; inf: (n,) its influence function over all units (zero outside the cell);
    ps_max: () the largest fitted propensity score in the cell (0 for ``"reg"``);
    converged: () bool, whether the propensity-score fit converged: the logit for ``"dr"`` and ``"ipw"``,
    the inverse-probability-tilting fit for ``"dr_imp"`` (True for ``"reg"``).
    """

    att: jax.Array
    inf: jax.Array
    ps_max: jax.Array
    converged: jax.Array


def _mean(x: jax.Array, n1: jax.Array) -> jax.Array:
    return jnp.sum(x, axis=0) / n1


def _logit(x: jax.Array, d: jax.Array, w: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Weighted logit MLE by Newton-Raphson from zero. Returns (coefficients, converged)."""
    k = x.shape[1]

    def step(state: tuple) -> tuple:
        beta, _, it = state
        p = jax.nn.sigmoid(x @ beta)
        grad = x.T @ (w * (d - p))
        hess = (x * (w * p * (1 - p))[:, None]).T @ x
        delta = jnp.linalg.solve(hess, grad)
        return beta + delta, jnp.max(jnp.abs(delta)), it + 1

    def keep_going(state: tuple) -> jax.Array:
        _, size, it = state
        return (size > _NEWTON_TOL) & (it < _NEWTON_MAX) & jnp.isfinite(size)

    beta, size, _ = lax.while_loop(keep_going, step, (jnp.zeros(k), jnp.array(1e300), 0))
    return beta, (size <= _NEWTON_TOL) & jnp.all(jnp.isfinite(beta))


def _wols(x: jax.Array, y: jax.Array, w: jax.Array) -> jax.Array:
    """Weighted least squares coefficients of ``y`` on ``x`` with weights ``w`` (zeros drop rows)."""
    xw = x * w[:, None]
    return jnp.linalg.solve(xw.T @ x, xw.T @ y)


class _Nuisance(NamedTuple):
    ps_raw: jax.Array  # (n,) fitted propensity scores
    converged: jax.Array  # () logit converged
    out: jax.Array  # (n,) fitted outcome change from the comparison-unit regression
    alr_ols: jax.Array  # (n, p) asymptotic linear representation of the regression coefficients
    hess_ps: jax.Array  # (p, p) n1 times the inverse Hessian of the logit at the fitted score


def _nuisance(dy, d, x, iw, n1, beta_ps, converged) -> _Nuisance:
    """The two nuisance fits shared by the three estimators: logit propensity score (given) and WLS on controls.

    Both (p, p) inverses (the regression's Gram matrix and the logit's Hessian) come from one batched
    ``inv`` call: two independent LAPACK calls could be scheduled side by side on XLA's CPU thread pool,
    where jaxlib's batched LAPACK kernels have hung; one call has nothing to run beside it.
    """
    w_ols = iw * (1 - d)
    xw = x * w_ols[:, None]
    xpx = xw.T @ x / n1
    ps_raw = jax.nn.sigmoid(x @ beta_ps)
    ps = jnp.minimum(ps_raw, _PS_CAP)
    wl = ps * (1 - ps) * iw
    inv_ols, inv_ps = jnp.linalg.inv(jnp.stack([xpx, (x * wl[:, None]).T @ x]))
    beta = inv_ols @ (xw.T @ dy / n1)
    out = x @ beta
    alr_ols = (x * (w_ols * (dy - out))[:, None]) @ inv_ols
    return _Nuisance(ps_raw, converged, out, alr_ols, inv_ps * n1)


def _ps_parts(x, d, iw, nu: _Nuisance):
    """Capped and trimmed propensity weights and the logit's asymptotic linear representation (DRDID)."""
    ps = jnp.minimum(nu.ps_raw, _PS_CAP)
    trim = jnp.where(d == 1, 1.0, (ps < _TRIM).astype(x.dtype))
    w_treat = trim * iw * d
    w_cont = trim * iw * ps * (1 - d) / (1 - ps)
    alr_ps = (x * (iw * (d - ps))[:, None]) @ nu.hess_ps
    return w_treat, w_cont, alr_ps


def _dr(dy, d, x, iw, n1, nu: _Nuisance):
    """``DRDID::drdid_panel``: locally efficient doubly robust DiD."""
    w_treat, w_cont, alr_ps = _ps_parts(x, d, iw, nu)
    att_treat = w_treat * (dy - nu.out)
    att_cont = w_cont * (dy - nu.out)
    eta_treat = _mean(att_treat, n1) / _mean(w_treat, n1)
    eta_cont = _mean(att_cont, n1) / _mean(w_cont, n1)
    m1 = _mean(w_treat[:, None] * x, n1)
    inf_treat = (att_treat - w_treat * eta_treat - nu.alr_ols @ m1) / _mean(w_treat, n1)
    m2 = _mean((w_cont * (dy - nu.out - eta_cont))[:, None] * x, n1)
    m3 = _mean(w_cont[:, None] * x, n1)
    inf_cont = (att_cont - w_cont * eta_cont + alr_ps @ m2 - nu.alr_ols @ m3) / _mean(w_cont, n1)
    return eta_treat - eta_cont, inf_treat - inf_cont


def _ipw(dy, d, x, iw, n1, nu: _Nuisance):
    """``DRDID::std_ipw_did_panel``: normalised (Hajek) inverse probability weighting."""
    w_treat, w_cont, alr_ps = _ps_parts(x, d, iw, nu)
    att_treat = w_treat * dy
    att_cont = w_cont * dy
    eta_treat = _mean(att_treat, n1) / _mean(w_treat, n1)
    eta_cont = _mean(att_cont, n1) / _mean(w_cont, n1)
    inf_treat = (att_treat - w_treat * eta_treat) / _mean(w_treat, n1)
    m2 = _mean((w_cont * (dy - eta_cont))[:, None] * x, n1)
    inf_cont = (att_cont - w_cont * eta_cont + alr_ps @ m2) / _mean(w_cont, n1)
    return eta_treat - eta_cont, inf_treat - inf_cont


def _reg(dy, d, x, iw, n1, nu: _Nuisance):
    """``DRDID::reg_did_panel``: outcome regression (imputation of the comparison change)."""
    w_treat = iw * d
    att_treat = w_treat * dy
    att_cont = w_treat * nu.out
    eta_treat = _mean(att_treat, n1) / _mean(w_treat, n1)
    eta_cont = _mean(att_cont, n1) / _mean(w_treat, n1)
    inf_treat = (att_treat - w_treat * eta_treat) / _mean(w_treat, n1)
    m1 = _mean(w_treat[:, None] * x, n1)
    inf_cont = (att_cont - w_treat * eta_cont + nu.alr_ols @ m1) / _mean(w_treat, n1)
    return eta_treat - eta_cont, inf_treat - inf_cont


def _tilt(x, d, iw, n1, start):
    """Propensity score by inverse probability tilting (``DRDID::pscore.cal``, Graham et al. 2012).

    Minimises the strictly convex loss ``mean(iw * ((1 - D) * exp(x'g) - D * x'g))`` over the cell,
    whose first-order condition makes the odds-weighted comparison units reproduce the cohort's
    (weighted) covariate totals: ``sum iw (1-D) exp(x'g) x = sum iw D x``. Damped Newton from ``start``
    (the logit estimate, as in DRDID); the minimiser is unique, so the path does not matter. It exists
    only when the cohort's covariate mean can be reached by reweighting the comparison units; otherwise
    the loss is unbounded below and the fit does not converge. Returns (coefficients, converged).
    """
    live = iw > 0  # units outside the cell carry zero weight; keep exp() of their index out of the sums

    def loss(g: jax.Array) -> jax.Array:
        v = x @ g
        term = jnp.where(live, iw * ((1 - d) * jnp.exp(jnp.where(live, v, 0.0)) - d * v), 0.0)
        return jnp.sum(term) / n1

    def newton(g: jax.Array) -> tuple[jax.Array, jax.Array]:
        e = jnp.where(live, (1 - d) * jnp.exp(jnp.where(live, x @ g, 0.0)), 0.0)
        grad = x.T @ (iw * (e - d)) / n1
        hess = (x * (iw * e)[:, None]).T @ x / n1
        return -jnp.linalg.solve(hess, grad), grad

    def step(state: tuple) -> tuple:
        g, _, it, _ = state
        delta, grad = newton(g)
        f0, slope = loss(g), grad @ delta
        slack = 1e-12 * (1.0 + jnp.abs(f0))  # rounding of the loss near the optimum

        def shorter(ls: tuple) -> tuple:
            t, k = ls
            return t / 2, k + 1

        def too_long(ls: tuple) -> jax.Array:
            t, k = ls
            f1 = loss(g + t * delta)
            ok = jnp.isfinite(f1) & (f1 <= f0 + 1e-4 * t * slope + slack)
            return ~ok & (k < _TILT_HALVINGS)

        t, k = lax.while_loop(too_long, shorter, (jnp.array(1.0), 0))
        stalled = k >= _TILT_HALVINGS
        size = jnp.where(stalled, jnp.inf, jnp.max(jnp.abs(delta) / (1.0 + jnp.abs(g))))
        return g + t * delta, size, it + 1, stalled

    def keep_going(state: tuple) -> jax.Array:
        _, size, it, stalled = state
        return (size > _TILT_TOL) & (it < _TILT_MAX) & ~stalled & jnp.isfinite(size)

    g0 = jnp.where(jnp.all(jnp.isfinite(start)), start, jnp.zeros_like(start))
    g, size, _, _ = lax.while_loop(keep_going, step, (g0, jnp.array(1e300), 0, jnp.array(False)))
    return g, (size <= _TILT_TOL) & jnp.all(jnp.isfinite(g))


class _ImpFit(NamedTuple):
    att: jax.Array
    inf: jax.Array
    ps: jax.Array
    converged: jax.Array


def _dr_imp(dy, d, x, iw, n1) -> _ImpFit:
    """``DRDID::drdid_imp_panel``: improved (bias-reduced) doubly robust DiD, Sant'Anna and Zhao (2020) 3.1."""
    gamma, converged = _tilt(x, d, iw, n1, _logit(x, d, iw)[0])
    ps = jnp.minimum(jax.nn.sigmoid(x @ gamma), _PS_CAP)
    trim = jnp.where(d == 1, 1.0, (ps < _TRIM).astype(x.dtype))
    odds = jnp.where(iw > 0, ps / (1 - ps), 0.0)
    beta = _wols(x, dy, iw * odds * (1 - d))  # trimmed comparison units stay in the regression, as in DRDID
    out = x @ beta
    summand = jnp.where(iw > 0, trim * (1 - (1 - d) / (1 - ps)) * (dy - out), 0.0)
    treated = _mean(d * iw, n1)
    att = _mean(iw * summand, n1) / treated
    inf = iw * trim * (summand - d * att) / treated
    return _ImpFit(att, inf, ps, converged)


METHODS = ("dr", "ipw", "reg")  # served by cell_estimate; "dr_imp" by cell_estimate_imp


def _cell_weights(mask, weights):
    """Cell size n1 and the weights normalised to mean one within the cell (zero outside it), as DRDID does."""
    n1 = jnp.sum(mask)
    wm = weights * mask
    return n1, wm / (jnp.sum(wm) / n1)


def _cell_inputs(y_post, y_pre, treat, mask, weights):
    """Cell size n1, weights normalised to mean one in the cell, cohort indicator and outcome change."""
    n1, iw = _cell_weights(mask, weights)
    d = treat * mask
    dy = jnp.where(mask > 0, y_post - y_pre, 0.0)
    return n1, iw, d, dy


def cell_logit(treat: jax.Array, mask: jax.Array, x: jax.Array, weights: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Propensity-score logit of one cell: (coefficients (p,), converged ()).

    It depends only on the cell's cohort indicator, units, covariates and weights, not on the
    outcomes, so cells that share those (every cell of a cohort with never-treated comparison units
    and time-invariant covariates) share one fit (see :func:`cell_estimate_given_ps`).
    """
    _, iw = _cell_weights(mask, weights)
    return _logit(x, treat * mask, iw)


def cell_estimate(
    y_post: jax.Array,
    y_pre: jax.Array,
    treat: jax.Array,
    mask: jax.Array,
    x: jax.Array,
    weights: jax.Array,
    method: jax.Array,
) -> CellFit:
    """ATT of one 2x2 cell and its whole-sample influence function.

    Parameters
    ----------
    y_post, y_pre : (n,) outcomes in the later-compared period ``t`` and the base period.
    treat : (n,) 1 for units of cohort ``g``; mask : (n,) 1 for units in the cell (cohort or comparison).
    x : (n, p) design with an intercept column (covariates at the earlier of the two periods).
    weights : (n,) sampling weights (normalised to mean one within the cell, as DRDID does).
    method : () int, the index of the estimator in ``METHODS`` (``"dr"``, ``"ipw"``, ``"reg"``). All three
        share the nuisance fits, so one compiled kernel serves every method.
    """
    beta_ps, converged = cell_logit(treat, mask, x, weights)
    return cell_estimate_given_ps(y_post, y_pre, treat, mask, x, weights, method, beta_ps, converged)


def cell_estimate_given_ps(
    y_post: jax.Array,
    y_pre: jax.Array,
    treat: jax.Array,
    mask: jax.Array,
    x: jax.Array,
    weights: jax.Array,
    method: jax.Array,
    beta_ps: jax.Array,
    ps_converged: jax.Array,
    n_units: jax.Array | None = None,
) -> CellFit:
    """:func:`cell_estimate` with the propensity-score logit already fitted (:func:`cell_logit`).

    Only the selected estimator is evaluated (``lax.switch`` on the unbatched ``method`` index stays a
    branch under ``vmap``); ``beta_ps`` and ``ps_converged`` are ignored by ``"reg"``. The arrays may
    hold only the cell's units (padded with ``mask = 0``) when ``n_units``, the size of the whole
    sample that scales the influence function, is given; units with ``mask = 0`` contribute exactly
    zero to every sum.
    """
    n = mask.shape[0] if n_units is None else n_units
    n1, iw, d, dy = _cell_inputs(y_post, y_pre, treat, mask, weights)
    nu = _nuisance(dy, d, x, iw, n1, beta_ps, ps_converged)
    att, inf = lax.switch(method, [lambda: _dr(dy, d, x, iw, n1, nu), lambda: _ipw(dy, d, x, iw, n1, nu),
                                   lambda: _reg(dy, d, x, iw, n1, nu)])
    uses_ps = method < 2
    ps_max = jnp.where(uses_ps, jnp.max(jnp.where(iw > 0, nu.ps_raw, 0.0)), 0.0)
    converged = jnp.where(uses_ps, nu.converged, True)
    return CellFit(att=att, inf=inf * (n / n1) * mask, ps_max=ps_max, converged=converged)


def cell_estimate_imp(
    y_post: jax.Array,
    y_pre: jax.Array,
    treat: jax.Array,
    mask: jax.Array,
    x: jax.Array,
    weights: jax.Array,
) -> CellFit:
    """Improved doubly robust ATT (``"dr_imp"``) of one 2x2 cell; arguments as in :func:`cell_estimate`.

    Kept apart from :func:`cell_estimate` so that the tilting fit is compiled only when it is used.
    ``converged`` reports the tilting fit (the logit only supplies its starting value, as in DRDID).
    """
    n = mask.shape[0]
    n1, iw, d, dy = _cell_inputs(y_post, y_pre, treat, mask, weights)
    fit = _dr_imp(dy, d, x, iw, n1)
    ps_max = jnp.max(jnp.where(iw > 0, fit.ps, 0.0))
    return CellFit(att=fit.att, inf=fit.inf * (n / n1) * mask, ps_max=ps_max, converged=fit.converged)
