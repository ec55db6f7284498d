"""Exact simplex-constrained quadratic programming in JAX.

Solves ``min_w 0.5 w'Qw - c'w`` subject to ``w >= 0``, ``sum(w) = 1`` and ``w_i = 0`` where
``mask_i`` is False, for a symmetric positive semi-definite ``Q``. This is the synthetic-control
weight problem: with predictors ``X0`` (k, J), a treated column ``x1`` (k,) and a diagonal ``V``,
``Q = X0' V X0`` and ``c = X0' V x1``.

Two phases, both pure JAX so that a batch of problems (placebos, conformal refits) runs under
``vmap``:

1. accelerated projected gradient (FISTA with adaptive restart) using the exact Euclidean
   projection onto the (masked) simplex (sort-and-threshold, Held et al. 1974; Duchi et al. 2008);
2. a primal active-set polish started from the support found in phase 1: each step solves the
   equality-constrained problem on the free set exactly (a bordered KKT system), steps back to
   the simplex when a weight would turn negative, and frees the coordinate with the most negative
   multiplier otherwise. It stops when the KKT conditions hold to rounding error, which makes the
   result exact rather than approximate.

The returned ``kkt`` is the largest violation of the KKT conditions (stationarity on the support,
dual feasibility off it), scaled to ``Q`` and ``c``; the caller checks it.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["SimplexSolution", "simplex_qp", "simplex_ls", "project_simplex", "kkt_violation", "donor_bucket", "pad_donors",
           "valid_donors"]


class SimplexSolution(NamedTuple):
    """Output of :func:`simplex_qp`.

    w : (n,) weights on the simplex (zero where masked out).
    mu : () multiplier of the sum-to-one constraint (``Qw - c + mu = 0`` on the support).
    kkt : () largest KKT violation, relative to ``1 + max|Q| + max|c|`` of the problem rescaled so that
        ``max|Q| = 1`` (the weights do not depend on that scale).
    iterations : () number of active-set iterations used.
    converged : () True when ``kkt <= tol``.
    """

    w: jax.Array
    mu: jax.Array
    kkt: jax.Array
    iterations: jax.Array
    converged: jax.Array


def project_simplex(v: jax.Array, mask: jax.Array) -> jax.Array:
    """Exact Euclidean projection of ``v`` onto ``{w >= 0, sum w = 1, w[~mask] = 0}``."""
    n = v.shape[0]
    big = -1e100
    vm = jnp.where(mask, v, big)
    u = jnp.sort(vm)[::-1]
    css = jnp.cumsum(jnp.where(u > big / 2, u, 0.0))
    k = jnp.arange(1, n + 1, dtype=v.dtype)
    cond = (u > big / 2) & (u - (css - 1.0) / k > 0)
    rho = jnp.max(jnp.where(cond, jnp.arange(n), 0))
    theta = (css[rho] - 1.0) / (rho + 1.0)
    return jnp.where(mask, jnp.maximum(v - theta, 0.0), 0.0)


def kkt_violation(Q: jax.Array, c: jax.Array, w: jax.Array, mask: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(violation, mu): largest KKT violation of ``w`` and the implied sum multiplier.

    On the support ``g_i + mu = 0`` (``g = Qw - c``); off it ``g_i + mu >= 0``; primal feasibility
    (``w >= 0``, ``sum w = 1``) is included. Scaled by ``1 + max|Q| + max|c|``.
    """
    g = Q @ w - c
    supp = mask & (w > 0)
    n_s = jnp.maximum(jnp.sum(supp), 1)
    mu = -jnp.sum(jnp.where(supp, g, 0.0)) / n_s
    z = g + mu
    stat = jnp.max(jnp.where(supp, jnp.abs(z), 0.0))
    dual = jnp.max(jnp.where(mask & ~supp, jnp.maximum(-z, 0.0), 0.0))
    prim = jnp.maximum(jnp.abs(jnp.sum(w) - 1.0), jnp.max(jnp.maximum(-w, 0.0)))
    scale = 1.0 + jnp.max(jnp.abs(Q)) + jnp.max(jnp.abs(c))
    return jnp.maximum(jnp.maximum(stat, dual) / scale, prim), mu


def _fista(Q, c, mask, w0, max_iter, tol):
    qm = jnp.where(mask[:, None] & mask[None, :], Q, 0.0)
    lip = jnp.maximum(jnp.linalg.eigvalsh(qm)[-1], 1e-300)
    return _fista_grad(lambda y: Q @ y - c, lip, mask, w0, max_iter, tol)


def _fista_grad(grad, lip, mask, w0, max_iter, tol):
    """FISTA with adaptive restart on the masked simplex for a gradient ``grad`` with Lipschitz ``lip``."""
    step = 1.0 / lip

    def cond(s):
        it, _, _, _, delta = s
        return (it < max_iter) & (delta > tol)

    def body(s):
        it, w, y, t, _ = s
        g = grad(y)
        w_new = project_simplex(y - step * g, mask)
        restart = jnp.dot(g, w_new - w) > 0
        t_new = jnp.where(restart, 1.0, (1.0 + jnp.sqrt(1.0 + 4.0 * t * t)) / 2.0)
        mom = jnp.where(restart, 0.0, (t - 1.0) / t_new)
        y_new = w_new + mom * (w_new - w)
        return it + 1, w_new, y_new, t_new, jnp.max(jnp.abs(w_new - w))

    dt = w0.dtype
    init = (jnp.asarray(0), w0, w0, jnp.asarray(1.0, dtype=dt), jnp.asarray(jnp.inf, dtype=dt))
    return jax.lax.while_loop(cond, body, init)[1]


def _eqp(Q, c, free):
    """Minimise 0.5 w'Qw - c'w subject to sum(w) = 1 and w = 0 off ``free`` (bordered KKT system)."""
    n = Q.shape[0]
    fm = free.astype(Q.dtype)
    qf = jnp.where(free[:, None] & free[None, :], Q, 0.0) + jnp.diag(1.0 - fm)
    top = jnp.concatenate([qf, fm[:, None]], axis=1)
    bottom = jnp.concatenate([fm, jnp.zeros(1, Q.dtype)])[None, :]
    m = jnp.concatenate([top, bottom], axis=0)
    rhs = jnp.concatenate([jnp.where(free, c, 0.0), jnp.ones(1, Q.dtype)])
    sol = jnp.linalg.lstsq(m, rhs)[0]
    return jnp.where(free, sol[:n], 0.0), sol[n]


def _active_set(Q, c, mask, w0, max_iter, tol):
    scale = 1.0 + jnp.max(jnp.abs(Q)) + jnp.max(jnp.abs(c))
    return _active_set_with(partial(_eqp, Q, c), lambda w: Q @ w - c, scale, mask, w0, max_iter, tol)


def _active_set_with(eqp, grad, scale, mask, w0, max_iter, tol):
    """Primal active-set polish: ``eqp(free)`` solves the equality-constrained problem on a free set
    (returning the point and the sum multiplier), ``grad(w)`` is ``Qw - c``."""
    free0 = mask & (w0 > 0)

    def cond(s):
        it, _, _, done = s
        return (it < max_iter) & ~done

    def body(s):
        it, w, free, _ = s
        w_hat, mu = eqp(free)
        d = w_hat - w
        infeasible = jnp.any(free & (w_hat < 0))
        # step back to the boundary: the first free weight to hit zero leaves the free set
        ratio = jnp.where(free & (d < 0), w / jnp.where(d < 0, -d, 1.0), jnp.inf)
        j_block = jnp.argmin(ratio)
        alpha = jnp.clip(ratio[j_block], 0.0, 1.0)
        w_b = jnp.maximum((w + alpha * d).at[j_block].set(0.0), 0.0)
        w_b = w_b / jnp.sum(w_b)
        free_b = free.at[j_block].set(False)
        # feasible: accept, then free the most negative multiplier (if any)
        w_f = jnp.where(free, jnp.maximum(w_hat, 0.0), 0.0)
        w_f = w_f / jnp.sum(w_f)
        z = grad(w_f) + mu
        z_off = jnp.where(mask & ~free, z, jnp.inf)
        j_add = jnp.argmin(z_off)
        optimal = z_off[j_add] >= -tol * scale
        free_f = jnp.where(optimal, free, free.at[j_add].set(True))
        w_next = jnp.where(infeasible, w_b, w_f)
        free_next = jnp.where(infeasible, free_b, free_f)
        return it + 1, w_next, free_next, (~infeasible) & optimal

    it, w, _, _ = jax.lax.while_loop(cond, body, (jnp.asarray(0), w0, free0, jnp.asarray(False)))
    return w, it


@partial(jax.jit, static_argnames=("max_iter", "polish_iter"))
def simplex_qp(
    Q: jax.Array,
    c: jax.Array,
    mask: jax.Array | None = None,
    *,
    max_iter: int = 500,
    polish_iter: int = 200,
    tol: float = 1e-12,
    init: jax.Array | None = None,
) -> SimplexSolution:
    """Minimise ``0.5 w'Qw - c'w`` on the (masked) unit simplex, exactly.

    Parameters
    ----------
    Q : (n, n) float64, symmetric positive semi-definite.
    c : (n,) float64.
    mask : (n,) bool, optional
        Coordinates allowed to be positive (default: all). At least one must be True.
    max_iter : int
        Iteration cap of the accelerated projected-gradient phase.
    polish_iter : int
        Iteration cap of the active-set phase.
    tol : float
        Relative KKT tolerance for the active-set stopping rule and ``converged``.
    init : (n,) float64, optional
        A starting point (e.g. an approximate solution from another solver); projected onto the
        masked simplex. Default: equal weights. A start near the optimum leaves the active-set phase
        one or two exact steps, which matters for thousands of donors.

    Returns
    -------
    SimplexSolution
        Works under ``vmap`` (batch ``Q``, ``c`` and ``mask`` together or separately).
    """
    n = Q.shape[0]
    if mask is None:
        mask = jnp.ones(n, dtype=bool)
    # The minimiser does not change when Q and c are divided by one positive number, but the bordered
    # KKT system of the active-set phase mixes Q's entries with the constraint's ones: with raw
    # outcomes in the thousands (Q ~ 1e8) lstsq's cutoff dropped the constraint and a wrong,
    # non-optimal point came back (ASCM weights moved with the outcome's units). Solve at unit scale.
    unit = jnp.max(jnp.abs(jnp.where(mask[:, None] & mask[None, :], Q, 0.0)))
    unit = jnp.where(unit > 0, unit, 1.0)
    Q, c = Q / unit, c / unit
    w0 = jnp.where(mask, 1.0, 0.0) / jnp.sum(mask) if init is None else project_simplex(init, mask)
    w1 = _fista(Q, c, mask, w0, max_iter, 1e-10)
    # drop weights that are zero up to rounding, keep the point on the simplex
    w1 = jnp.where(w1 > 1e-10 * jnp.max(w1), w1, 0.0)
    w1 = w1 / jnp.sum(w1)
    w, it = _active_set(Q, c, mask, w1, polish_iter, tol)
    kkt, mu = kkt_violation(Q, c, w, mask)
    return SimplexSolution(w=w, mu=mu * unit, kkt=kkt, iterations=it, converged=kkt <= 1e-9)


# ----------------------------------------------------------------------------- factor form
def _eqp_ls(A, b, free):
    """Minimise 0.5 ||Aw - b||^2 subject to sum(w) = 1 and w = 0 off ``free``, in the k-dimensional space.

    With ``w = 1_F / |F| + u`` and ``u`` summing to zero on F, ``A_F u`` must fit ``r = b - A 1_F / |F|``:
    the minimum-norm least-squares ``u`` of the (k, n) matrix ``A_F P`` (P centres on F) lies in its row
    space, so it is zero off F and sums to zero on F. One (k, n) SVD instead of an (n+1, n+1) one.
    """
    fm = free.astype(A.dtype)
    nf = jnp.maximum(jnp.sum(fm), 1.0)
    af = A * fm[None, :]
    ap = af - (af @ fm)[:, None] * fm[None, :] / nf
    w0 = fm / nf
    u = jnp.linalg.lstsq(ap, b - A @ w0)[0]
    w = jnp.where(free, w0 + u, 0.0)
    g = A.T @ (A @ w - b)
    return w, -jnp.sum(jnp.where(free, g, 0.0)) / nf


def _prune(eqp, mask, w, steps):
    """A better start for the active set: up to ``steps`` equality-constrained solves on the support,
    each dropping every weight that comes out negative at once (the active set drops one per solve).

    Returns a feasible point (non-negative, summing to one) whose support is what is left; the
    active-set phase then proceeds from it exactly as from any start, so the optimum it certifies
    by the KKT conditions does not depend on the pruning. A step that would leave no positive
    weight keeps the previous point.
    """

    def body(_, w):
        free = mask & (w > 0)
        w_hat, _ = eqp(free)
        pos = jnp.where(free, jnp.maximum(w_hat, 0.0), 0.0)
        total = jnp.sum(pos)
        return jnp.where(total > 0, pos / jnp.where(total > 0, total, 1.0), w)

    return jax.lax.fori_loop(0, steps, body, w)


@partial(jax.jit, static_argnames=("max_iter", "polish_iter", "prune"))
def simplex_ls(
    A: jax.Array,
    b: jax.Array,
    mask: jax.Array | None = None,
    *,
    max_iter: int = 500,
    polish_iter: int | None = None,
    tol: float = 1e-12,
    init: jax.Array | None = None,
    prune: int = 0,
) -> SimplexSolution:
    """Minimise ``0.5 ||Aw - b||^2`` on the (masked) unit simplex, exactly: :func:`simplex_qp` with
    ``Q = A'A`` and ``c = A'b``, never forming the (n, n) matrix.

    The synthetic-control problem in factor form: ``A`` (k, n) is ``V^(1/2) X0`` (k predictors or
    pre-periods, n donors) and ``b`` is ``V^(1/2) x1``. Every step costs O(k n) (gradients) or one (k, n)
    SVD (the active-set's equality-constrained solves) instead of O(n^2) and an (n+1, n+1) SVD, which is
    what makes placebo batches over hundreds of donors feasible. Same phases, same stopping rule and the
    same ``SimplexSolution`` (``kkt`` relative to ``Q = A'A`` rescaled to ``max|Q| = 1``; for a
    positive semi-definite Q that maximum is the largest squared column norm of ``A``).

    ``prune`` (static, default 0): equality-constrained solves between the pre-solve and the active
    set that each drop every negative weight at once (:func:`_prune`); they shorten the active-set
    phase when the pre-solve's support is much larger than the optimum's (batched placebos, where
    every problem waits for the slowest). The certified optimum is the same.
    """
    n = A.shape[1]
    # each infeasible active-set step drops one weight: from a short pre-solve's support on hundreds of
    # donors that takes hundreds of steps (one (k, n) SVD each)
    polish_iter = max(200, 2 * n) if polish_iter is None else polish_iter
    if mask is None:
        mask = jnp.ones(n, dtype=bool)
    A = jnp.where(mask[None, :], A, 0.0)
    # unit scale (see simplex_qp): divide A and b by the largest column norm, Q and c by its square
    unit = jnp.max(jnp.sum(A * A, axis=0))
    unit = jnp.where(unit > 0, unit, 1.0)
    root = jnp.sqrt(unit)
    A, b = A / root, b / root
    grad = lambda w: A.T @ (A @ w - b)  # noqa: E731
    lip = jnp.maximum(jnp.linalg.eigvalsh(A @ A.T)[-1], 1e-300)
    w0 = jnp.where(mask, 1.0, 0.0) / jnp.sum(mask) if init is None else project_simplex(init, mask)
    w1 = _fista_grad(grad, lip, mask, w0, max_iter, 1e-10)
    # the exact polish starts from the pre-solve's k + 1 largest weights: some optimum has at most k + 1
    # (Caratheodory in the k-dimensional fit space), and the polish frees any missing one by one, where
    # starting from a short pre-solve's whole support (hundreds of small weights) meant dropping them one
    # (k, n) SVD step at a time
    keep = min(n, A.shape[0] + 1)
    w1 = jnp.where((w1 > 1e-10 * jnp.max(w1)) & (w1 >= jnp.sort(w1)[n - keep]), w1, 0.0)
    w1 = w1 / jnp.sum(w1)
    if prune:
        w1 = _prune(partial(_eqp_ls, A, b), mask, w1, prune)
    c = A.T @ b
    scale = 2.0 + jnp.max(jnp.abs(c))  # 1 + max|Q| + max|c| at unit scale
    w, it = _active_set_with(partial(_eqp_ls, A, b), grad, scale, mask, w1, polish_iter, tol)
    g = grad(w)
    supp = mask & (w > 0)
    mu = -jnp.sum(jnp.where(supp, g, 0.0)) / jnp.maximum(jnp.sum(supp), 1)
    z = g + mu
    stat = jnp.max(jnp.where(supp, jnp.abs(z), 0.0))
    dual = jnp.max(jnp.where(mask & ~supp, jnp.maximum(-z, 0.0), 0.0))
    prim = jnp.maximum(jnp.abs(jnp.sum(w) - 1.0), jnp.max(jnp.maximum(-w, 0.0)))
    kkt = jnp.maximum(jnp.maximum(stat, dual) / scale, prim)
    return SimplexSolution(w=w, mu=mu * unit, kkt=kkt, iterations=it, converged=kkt <= 1e-9)


# ----------------------------------------------------------------------------- padded donor axis
def donor_bucket(n_donors: int) -> int:
    """The padded donor count the kernels are compiled for: the next multiple of 8.

    A study that refits on nearby donor pools (leave-one-out, a donor added or dropped) then compiles
    each kernel once per bucket instead of once per pool size. Padded donors are zero columns masked
    out of the simplex, so they get weight exactly zero and change nothing; at most 7 of them keep the
    extra work small (powers of two made Prop 99's 38-donor placebo batch, padded to 64, 4x slower).
    """
    return 8 * -(-int(n_donors) // 8)


def pad_donors(a: np.ndarray, width: int) -> np.ndarray:
    """Zero columns appended to the last (donor) axis up to ``width``."""
    extra = width - a.shape[-1]
    return np.concatenate([a, np.zeros(a.shape[:-1] + (extra,))], axis=-1) if extra else a


def valid_donors(n_donors: int) -> jax.Array:
    """Mask of the real donors among the ``donor_bucket(n_donors)`` padded slots."""
    return jnp.arange(donor_bucket(n_donors)) < n_donors
