"""Weight kernels of :func:`decrimkit.estimators.synth.sdid`: synthdid's Frank-Wolfe solver in JAX.

The solver is R ``synthdid``'s ``sc.weight.fw`` step for step (exact line search; 100 iterations,
sparsification -- weights at or below a quarter of the largest set to zero -- then up to 10,000
iterations stopping once an iteration lowers the penalised loss by no more than ``min_decrease^2``).
Only the arithmetic of one iteration is rearranged so that it costs O(n + m) instead of O(n m) for
an (m, n) design ``A``:

* the residual ``A x - b`` is updated along the step (``A x + s (A e_i - A x)``) instead of being
  recomputed, so the line search and the loss use the same vectors as R, without a matrix product;
* the gradient ``A'(A x - b) + eta x = G x - A'b + eta x`` (``G = A'A`` precomputed), needed only to
  pick the Frank-Wolfe vertex, moves with ``x`` to ``(1 - s) x + s e_i``: it is updated with one row of
  ``G`` per iteration; the line-search slope ``half_grad . dx`` is computed from the residuals as in R;
* ``||x||^2`` is updated in O(1) along the same step (``(1 - s)^2 ||x||^2 + 2 s (1 - s) x_i + s^2``)
  rather than recomputed: this changes only rounding (estimates within 1e-11 relative of the direct
  sum on Prop 99 and a 2,000-unit panel, same iteration counts).

For the unit weights every problem of a call (the fit, placebo and bootstrap replicates) uses
columns of one design -- the units' pre-period paths, demeaned over time -- so ``G`` is computed
once per call for all units and shared by the problems.

The Frank-Wolfe vertex (the first minimiser of the gradient over the active slots, as ``argmin``)
is found with two plain reductions -- the minimum, then the first slot holding it -- because XLA's
variadic argmin reduction is several times slower on CPU; this alone halved the solver's time.

Replicates run through :func:`jax.lax.map` in vmapped chunks of :data:`CHUNK`: a batch runs until
its slowest problem stops (placebo iteration counts range from hundreds to the 10,000 cap), while
tiny batches pay XLA's per-op overhead; 40 measured best on Prop 99. The solver's batching rule
(:func:`jax.custom_batching.custom_vmap`) writes the batch's loop by hand: one ``while_loop`` runs
while any problem is running and a stopped problem takes step 0, which leaves its state unchanged
bit for bit. (``vmap`` of a ``while_loop`` instead selects every state array between running and
stopped problems at each iteration: 25% slower at 2,000 units.) Iterates are identical to the
per-problem loop. The gradient is kept at +inf on the inactive slots, so the vertex search needs no
mask. On small panels (Prop 99: 39 units) the cost is XLA's per-operation overhead, about 19 small
kernels per iteration, rather than arithmetic.
The fit and the placebos (no repeated units) pass ``cols=None`` and read Gram rows directly; the
bootstrap, whose draws repeat units, addresses them through ``cols``.
"""

from __future__ import annotations

from functools import cache, partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from decrimkit.numerics.chunks import map_chunks

__all__ = ["OPTIONS", "SDIDFit", "SDIDOptions", "fit_problems", "sdid_fit_batch"]

CHUNK = 40  # problems vmapped together inside lax.map (see module docstring)
SHARED_SHAPE_MAX_UNITS = 256  # up to this many units, every call runs CHUNK problems (see fit_problems)
FIRST_ITER = 100
MAX_ITER = 10_000


class SDIDFit(NamedTuple):
    """Fits of a batch. estimate: (R,); omega: (R, n) zero off the control slots; lam: (R, T0);
    iterations: (R, 4) Frank-Wolfe iterations (lambda first/second pass, omega first/second pass)."""

    estimate: jax.Array
    omega: jax.Array
    lam: jax.Array
    iterations: jax.Array


class SDIDOptions(NamedTuple):
    update_omega: bool
    update_lambda: bool
    omega_intercept: bool
    lambda_intercept: bool


OPTIONS = {
    "sdid": SDIDOptions(True, True, True, True),
    "sc": SDIDOptions(True, False, False, True),
    "did": SDIDOptions(False, False, True, True),
}


def _fw_start(at, c, gram, cols, x, eta, active):
    """Loop state of one problem before its first iteration."""
    del gram, cols
    ax = x @ at
    nan = jnp.asarray(jnp.nan, dtype=at.dtype)
    half_grad = jnp.where(active, at @ ax - c + eta * x, jnp.inf)  # +inf on the inactive slots
    return (jnp.asarray(0), x, jnp.dot(x, x), ax, half_grad, nan, nan)


def _fw_step(state, at, b, c, gram, cols, eta, zeta2, active, denom, min_dec2, *, max_iter):
    """One Frank-Wolfe iteration of one problem; a no-op (step 0) once its stopping rule has fired.

    Returns the new state and whether the problem was still running.
    """
    t, x, xx, ax, half_grad, prev, cur = state
    go = (t < max_iter) & ((t < 2) | (prev - cur > min_dec2))
    n = x.shape[0]
    slot = jnp.arange(n)
    # the first minimiser over the active slots, as jnp.argmin, from two plain reductions (XLA's
    # variadic argmin is slow on CPU); half_grad is +inf on the inactive slots
    i = jnp.min(jnp.where(half_grad == jnp.min(half_grad), slot, n))
    xi = x[i]
    at_vertex = slot == i
    derr = at[i] - ax  # A dx
    # half_grad . dx = (A x - b) . A dx + eta x . dx, with x . dx = x_i - x . x, dx . dx = 1 - 2 x_i + x . x
    slope = jnp.dot(ax - b, derr) + eta * (xi - xx)
    s = jnp.clip(-slope / (jnp.dot(derr, derr) + eta * (1.0 - 2.0 * xi + xx)), 0.0, 1.0)
    # x is the vertex (dx == 0): R returns x unchanged; a stopped problem takes step 0, which changes nothing
    s = jnp.where(((xi == 1.0) & (xx == 1.0)) | ~go, 0.0, s)
    x = x + s * jnp.where(at_vertex, 1.0 - x, -x)
    xx = (1.0 - s) * (1.0 - s) * xx + 2.0 * s * (1.0 - s) * xi + s * s  # ||(1 - s) x + s e_i||^2
    ax = ax + s * derr
    grow = gram[i] if cols is None else gram[cols[i]][cols]  # row i of A'A
    # x moves to (1 - s) x + s e_i, so the gradient G x - A'b + eta x moves the same way
    half_grad = jnp.where(active, (1.0 - s) * half_grad + s * (grow - c + jnp.where(at_vertex, eta, 0.0)), jnp.inf)
    err = ax - b
    loss = zeta2 * xx + jnp.dot(err, err) / denom
    return (t + go, x, xx, ax, half_grad, jnp.where(go, cur, prev), jnp.where(go, loss, cur)), go


def _fw_batched(axis_size, in_batched, at, b, c, gram, cols, x, eta, zeta2, active, denom, min_dec2, *, max_iter):
    """``_fw`` on a batch of problems: one loop over all of them until the last one stops.

    The problems' iterations are vmapped by hand inside one ``while_loop`` (stopped problems take
    step 0), rather than vmapping a ``while_loop``, which would select every state array between the
    running and the stopped problems at each iteration.
    """
    args = (at, b, c, gram, cols, x, eta, zeta2, active, denom, min_dec2)
    axes = jax.tree_util.tree_map(lambda batched: 0 if batched else None, tuple(in_batched))
    state = jax.vmap(_fw_start, in_axes=(axes[0], axes[2], axes[3], axes[4], axes[5], axes[6], axes[8]),
                     axis_size=axis_size)(at, c, gram, cols, x, eta, active)
    step = jax.vmap(
        lambda st, at, b, c, gram, cols, x, eta, zeta2, active, denom, min_dec2: _fw_step(
            st, at, b, c, gram, cols, eta, zeta2, active, denom, min_dec2, max_iter=max_iter),
        in_axes=(0, *axes), axis_size=axis_size)

    def body(carry):
        return step(carry[0], *args)

    (t, x, *_), _ = jax.lax.while_loop(lambda carry: jnp.any(carry[1]), body,
                                       (state, jnp.ones(axis_size, dtype=bool)))
    return (x, t), (True, True)


@cache
def _fw_kernel(max_iter: int):
    @jax.custom_batching.custom_vmap
    def fw(at, b, c, gram, cols, x, eta, zeta2, active, denom, min_dec2):
        args = (at, b, c, gram, cols, x, eta, zeta2, active, denom, min_dec2)
        (x, t), _ = _fw_batched(1, jax.tree_util.tree_map(lambda _: False, args), *args, max_iter=max_iter)
        return x[0], t[0]

    fw.def_vmap(partial(_fw_batched, max_iter=max_iter))
    return fw


def _fw(at, b, c, gram, cols, x, eta, zeta2, active, denom, min_dec2, max_iter):
    """synthdid's ``sc.weight.fw`` on ``||A x - b||^2 / denom + zeta2 ||x||^2`` over the (masked) simplex.

    ``at`` is ``A'`` (row ``i`` is column ``i`` of ``A``), ``c = A'b``; row ``i`` of ``A'A`` is
    ``gram[i]``, or ``gram[cols[i]][cols]`` when ``cols`` (the units of a bootstrap draw) is given.
    Returns the weights and the number of iterations.
    """
    return _fw_kernel(max_iter)(at, b, c, gram, cols, x, eta, zeta2, active, denom, min_dec2)


def _sparsify(v):
    v = jnp.where(v <= jnp.max(v) / 4, 0.0, v)
    return v / jnp.sum(v)


def _solve(at, b, gram, cols, x0, eta, zeta2, active, denom, min_dec2):
    c = at @ b
    x, t1 = _fw(at, b, c, gram, cols, x0, eta, zeta2, active, denom, min_dec2, FIRST_ITER)
    x, t2 = _fw(at, b, c, gram, cols, _sparsify(x), eta, zeta2, active, denom, min_dec2, MAX_ITER)
    return x, jnp.stack([t1, t2])


def _one(y, yc, a, gram, cols, ctrl, treat, omega0, lam0, zeta_omega, zeta_lambda, min_dec, *, t0, opts):
    """One synthdid fit on the units ``cols`` (slots): controls where ``ctrl``, treated where ``treat``."""
    dtype = y.dtype
    n_ctrl = jnp.sum(ctrl).astype(dtype)
    n_tr = jnp.sum(treat).astype(dtype)
    min_dec2 = min_dec * min_dec
    no_iter = jnp.zeros(2, dtype=jnp.asarray(0).dtype)

    lam, it_lam = lam0, no_iter
    if opts.update_lambda:
        rows = yc if cols is None else yc[cols]  # (n, T0 + 1): pre-periods and the post-period mean
        z = jnp.where(ctrl[:, None], rows, 0.0)
        if opts.lambda_intercept:
            z = jnp.where(ctrl[:, None], rows - (jnp.sum(z, axis=0) / n_ctrl)[None, :], 0.0)
        at = z[:, :t0].T  # (T0, n)
        g = at @ at.T
        zl2 = zeta_lambda * zeta_lambda
        lam, it_lam = _solve(
            at, z[:, t0], g, None, lam0, n_ctrl * zl2, zl2, jnp.ones(t0, dtype=bool), n_ctrl, min_dec2
        )

    omega, it_omega = omega0, no_iter
    if opts.update_omega:
        at = a if cols is None else a[cols]  # (n, T0): the units' (demeaned) pre-period paths
        b = jnp.where(treat, 1.0 / n_tr, 0.0) @ at
        zo2 = zeta_omega * zeta_omega
        omega, it_omega = _solve(at, b, gram, cols, omega0, t0 * zo2, zo2, ctrl, jnp.asarray(t0, dtype), min_dec2)

    t1 = y.shape[1] - t0
    time_w = jnp.concatenate([-lam, jnp.full(t1, 1.0 / t1, dtype)])
    unit_w = jnp.where(treat, 1.0 / n_tr, 0.0) - jnp.where(ctrl, omega, 0.0)
    return SDIDFit(
        estimate=unit_w @ ((y if cols is None else y[cols]) @ time_w),
        omega=jnp.where(ctrl, omega, 0.0),
        lam=lam,
        iterations=jnp.concatenate([it_lam, it_omega]),
    )


@partial(jax.jit, static_argnames=("t0", "opts"))
def sdid_fit_batch(
    y, cols, ctrl, treat, omega0, lam0, zeta_omega, zeta_lambda, min_dec, *, t0: int, opts: SDIDOptions
) -> SDIDFit:
    """A batch of synthdid fits sharing the outcome matrix ``y`` (N, T) and the adoption period ``t0``.

    Problem ``r`` uses the units ``cols[r]`` (indices into ``y``'s rows, repeats allowed) with controls
    where ``ctrl[r]`` and treated units where ``treat[r]`` (other slots are ignored); its unit weights
    start at ``omega0[r]`` and its time weights at ``lam0``. All of shape (R, n) except ``lam0`` (T0,).
    ``cols=None`` means every problem uses all rows of ``y`` in order (n = N; faster: the rows of the
    Gram matrix are read directly) -- the fit and the placebos, where no unit repeats.
    """
    yc = jnp.concatenate([y[:, :t0], jnp.mean(y[:, t0:], axis=1)[:, None]], axis=1)
    a = yc[:, :t0]
    if opts.omega_intercept:
        a = a - jnp.mean(a, axis=1, keepdims=True)
    gram = a @ a.T if opts.update_omega else None
    one = partial(_one, y, yc, a, gram, t0=t0, opts=opts)
    if cols is None:
        return jax.lax.map(
            lambda p: one(None, *p, lam0, zeta_omega, zeta_lambda, min_dec), (ctrl, treat, omega0), batch_size=CHUNK
        )
    return jax.lax.map(
        lambda p: one(*p, lam0, zeta_omega, zeta_lambda, min_dec), (cols, ctrl, treat, omega0), batch_size=CHUNK
    )


def fit_problems(y, ctrl, treat, omega0, lam0, zeta_omega, zeta_lambda, min_dec, *, t0: int, opts: SDIDOptions) -> SDIDFit:
    """``sdid_fit_batch`` (``cols=None``) for any number of problems, returned as numpy arrays.

    On panels of at most :data:`SHARED_SHAPE_MAX_UNITS` units every call runs exactly :data:`CHUNK`
    problems (:func:`decrimkit.numerics.chunks.map_chunks`), so the fit and the
    placebo batch share one compiled kernel: compiling costs about 2.4 s per shape on the 2-core
    machine, while 39 padded lanes cost 0.006 s at 47 units and 0.6 s at 500 (measured). On larger
    panels the padded lanes cost as much as real ones, and each batch runs at its own size.
    """
    chunk = CHUNK if y.shape[0] <= SHARED_SHAPE_MAX_UNITS else ctrl.shape[0]  # large panels: one exact batch
    yj, lamj = jnp.asarray(y), jnp.asarray(lam0)
    return map_chunks(lambda c, t, o: sdid_fit_batch(yj, None, jnp.asarray(c), jnp.asarray(t), jnp.asarray(o), lamj,
                                                     zeta_omega, zeta_lambda, min_dec, t0=t0, opts=opts),
                      (ctrl, treat, omega0), chunk=chunk, description="SDID fits")
