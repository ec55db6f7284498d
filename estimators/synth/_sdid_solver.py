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
stopped problems at each iteration: 25% slower at 2,000 units.) The gradient is kept at +inf on the
inactive slots, so the vertex search needs no mask. On small panels (Prop 99: 39 units) the cost is
XLA's per-operation overhead, about 19 small kernels per iteration, rather than arithmetic.

The fit and the placebos (no repeated units) pass ``cols=None`` and read Gram rows directly. Their
unit weights' second pass -- the long one -- runs in a pool (``_fw_pool``): :data:`CHUNK` lanes
iterate side by side and a problem that stops hands its lane to the next one, so a call costs about
the problems' total iterations / CHUNK instead of the sum over chunks of each chunk's slowest problem
(Prop 99 placebos: 36,500 instead of 50,000 batched iterations). Each problem's iterates are those of
its own loop. Only panels of at most :data:`SHARED_SHAPE_MAX_UNITS` units use the pool (see
:func:`fit_problems`). The bootstrap, whose draws repeat units, addresses them through ``cols`` and runs in
chunks.
"""

from __future__ import annotations

from functools import cache, partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from decrimkit.numerics.chunks import map_chunks

__all__ = ["OPTIONS", "SDIDFit", "SDIDOptions", "fit_problems", "sdid_fit_batch"]

CHUNK = 40  # problems vmapped together inside lax.map (see module docstring)
POOL = 5 * CHUNK  # problems per call on small panels (see fit_problems)
SHARED_SHAPE_MAX_UNITS = 256  # up to this many units, every call runs POOL problems (see fit_problems)
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
    return (jnp.asarray(0), x, jnp.dot(x, x), ax, half_grad, nan, nan, jnp.asarray(True))


def _fw_step(state, at, b, c, gram, cols, eta, zeta2, active, denom, min_dec2, *, max_iter):
    """One Frank-Wolfe iteration of one problem; a no-op (step 0) once its stopping rule has fired.

    Returns the new state and whether the problem was still running.
    """
    t, x, xx, ax, half_grad, prev, cur, go = state
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
    t, prev, cur = t + go, jnp.where(go, cur, prev), jnp.where(go, loss, cur)
    go = (t < max_iter) & ((t < 2) | (prev - cur > min_dec2))
    return t, x, xx, ax, half_grad, prev, cur, go


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

    def body(state):
        return step(state, *args)

    t, x, *_ = jax.lax.while_loop(lambda state: jnp.any(state[-1]), body, state)
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


class _Started(NamedTuple):
    """A problem after its time weights and the first pass of its unit weights."""

    lam: jax.Array
    it_lam: jax.Array
    b: jax.Array  # omega's target (the treated units' mean pre-period path)
    c: jax.Array  # A'b
    omega: jax.Array  # sparsified first-pass omega (omega0 when omega is not updated)
    it_omega1: jax.Array


def _start(y, yc, a, gram, cols, ctrl, treat, omega0, lam0, zeta_omega, zeta_lambda, min_dec, *, t0, opts):
    """The time weights (both passes) and the unit weights' first pass of one problem on the units ``cols``."""
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

    at = a if cols is None else a[cols]  # (n, T0): the units' (demeaned) pre-period paths
    b = jnp.where(treat, 1.0 / n_tr, 0.0) @ at
    c = at @ b
    omega, it1 = omega0, jnp.asarray(0)
    if opts.update_omega:
        zo2 = zeta_omega * zeta_omega
        omega, it1 = _fw(at, b, c, gram, cols, omega0, t0 * zo2, zo2, ctrl, jnp.asarray(t0, dtype), min_dec2, FIRST_ITER)
        omega = _sparsify(omega)
    return _Started(lam, it_lam, b, c, omega, it1)


def _finish(y, cols, ctrl, treat, lam, omega, iterations, *, t0):
    dtype = y.dtype
    n_tr = jnp.sum(treat).astype(dtype)
    t1 = y.shape[1] - t0
    time_w = jnp.concatenate([-lam, jnp.full(t1, 1.0 / t1, dtype)])
    unit_w = jnp.where(treat, 1.0 / n_tr, 0.0) - jnp.where(ctrl, omega, 0.0)
    return SDIDFit(
        estimate=unit_w @ ((y if cols is None else y[cols]) @ time_w),
        omega=jnp.where(ctrl, omega, 0.0),
        lam=lam,
        iterations=iterations,
    )


def _one(y, yc, a, gram, cols, ctrl, treat, omega0, lam0, zeta_omega, zeta_lambda, min_dec, *, t0, opts):
    """One synthdid fit on the units ``cols`` (slots): controls where ``ctrl``, treated where ``treat``."""
    st = _start(y, yc, a, gram, cols, ctrl, treat, omega0, lam0, zeta_omega, zeta_lambda, min_dec, t0=t0, opts=opts)
    omega, it2 = st.omega, jnp.asarray(0)
    if opts.update_omega:
        at = a if cols is None else a[cols]
        zo2 = zeta_omega * zeta_omega
        omega, it2 = _fw(at, st.b, st.c, gram, cols, st.omega, t0 * zo2, zo2, ctrl, jnp.asarray(t0, y.dtype),
                         min_dec * min_dec, MAX_ITER)
    its = jnp.concatenate([st.it_lam, jnp.stack([st.it_omega1, it2])])
    return _finish(y, cols, ctrl, treat, st.lam, omega, its, t0=t0)


def _fw_pool(at, b, c, gram, x0, eta, zeta2, active, denom, min_dec2, real, *, lanes):
    """Second pass of the unit weights of problems ``0..R-1`` (rows of ``b``, ``c``, ``x0``, ``active``).

    ``lanes`` problems iterate side by side; when one stops, its weights are stored and the next problem
    takes its lane, so the batch runs for about the problems' total iterations / ``lanes`` rather
    than, chunk by chunk, the slowest problem's. Problems where ``real`` is False are skipped.
    Each problem's iterates are those of ``_fw``.
    """
    n_prob = x0.shape[0]
    start = jax.vmap(_fw_start, in_axes=(None, 0, None, None, 0, None, 0))
    step = jax.vmap(lambda st, b, c, active: _fw_step(st, at, b, c, gram, None, eta, zeta2, active, denom,
                                                       min_dec2, max_iter=MAX_ITER))
    order = jnp.argsort(~real, stable=True)  # real problems first, in order
    n_real = jnp.sum(real)

    def load(k):  # state and data of the problems order[k] (k < n_real)
        p = order[jnp.minimum(k, n_prob - 1)]
        return p, start(at, c[p], gram, None, x0[p], eta, active[p]), b[p], c[p], active[p]

    k0 = jnp.arange(lanes)
    p, st, lb, lc, la = load(k0)
    live = k0 < n_real
    st = (*st[:-1], st[-1] & live)
    pid = jnp.where(live, p, n_prob)
    out_x = jnp.where(real[:, None], x0, 0.0)
    out_t = jnp.zeros(n_prob, dtype=st[0].dtype)

    def refill(carry):
        st, pid, nxt, lb, lc, la, out_x, out_t = carry
        done = ~st[-1] & (pid < n_prob)
        out_x = out_x.at[jnp.where(done, pid, n_prob)].set(st[1], mode="drop")
        out_t = out_t.at[jnp.where(done, pid, n_prob)].set(st[0], mode="drop")
        k = nxt + jnp.cumsum(done) - 1
        take = done & (k < n_real)
        p, fresh, fb, fc, fa = load(k)

        def pick(new, old):
            return jnp.where(take.reshape((-1,) + (1,) * (old.ndim - 1)), new, old)

        st = jax.tree_util.tree_map(pick, fresh, st)
        pid = jnp.where(take, p, jnp.where(done, n_prob, pid))
        return st, pid, nxt + jnp.sum(done), pick(fb, lb), pick(fc, lc), pick(fa, la), out_x, out_t

    def body(carry):
        st, pid, nxt, lb, lc, la, out_x, out_t = carry
        st = step(st, lb, lc, la)
        carry = (st, pid, nxt, lb, lc, la, out_x, out_t)
        return jax.lax.cond(jnp.any(~st[-1] & (pid < n_prob)), refill, lambda c: c, carry)

    carry = (st, pid, jnp.asarray(lanes), lb, lc, la, out_x, out_t)
    carry = jax.lax.while_loop(lambda c: jnp.any(c[0][-1]), body, carry)
    return carry[-2], carry[-1]


@partial(jax.jit, static_argnames=("t0", "opts", "pool"))
def sdid_fit_batch(
    y, cols, ctrl, treat, omega0, lam0, zeta_omega, zeta_lambda, min_dec, real=None, *, t0: int, opts: SDIDOptions,
    pool: bool = False,
) -> SDIDFit:
    """A batch of synthdid fits sharing the outcome matrix ``y`` (N, T) and the adoption period ``t0``.

    Problem ``r`` uses the units ``cols[r]`` (indices into ``y``'s rows, repeats allowed) with controls
    where ``ctrl[r]`` and treated units where ``treat[r]`` (other slots are ignored); its unit weights
    start at ``omega0[r]`` and its time weights at ``lam0``. All of shape (R, n) except ``lam0`` (T0,).
    ``cols=None`` means every problem uses all rows of ``y`` in order (n = N; faster: the rows of the
    Gram matrix are read directly) -- the fit and the placebos, where no unit repeats. With ``pool``
    (and ``cols=None``) the unit weights' second pass runs in a pool of :data:`CHUNK` lanes
    (``_fw_pool``), skipping the problems where ``real`` (R,) is False (padding; their outputs are
    meaningless).
    """
    yc = jnp.concatenate([y[:, :t0], jnp.mean(y[:, t0:], axis=1)[:, None]], axis=1)
    a = yc[:, :t0]
    if opts.omega_intercept:
        a = a - jnp.mean(a, axis=1, keepdims=True)
    gram = a @ a.T if opts.update_omega else None
    if cols is None and pool:
        st = jax.lax.map(lambda p: _start(y, yc, a, gram, None, *p, lam0, zeta_omega, zeta_lambda, min_dec,
                                          t0=t0, opts=opts), (ctrl, treat, omega0), batch_size=CHUNK)
        omega, it2 = st.omega, jnp.zeros_like(st.it_omega1)
        if opts.update_omega:
            zo2 = zeta_omega * zeta_omega
            real = jnp.ones(ctrl.shape[0], dtype=bool) if real is None else real
            omega, it2 = _fw_pool(a, st.b, st.c, gram, st.omega, t0 * zo2, zo2, ctrl, jnp.asarray(t0, y.dtype),
                                  min_dec * min_dec, real, lanes=min(CHUNK, ctrl.shape[0]))
        its = jnp.concatenate([st.it_lam, jnp.stack([st.it_omega1, it2], axis=1)], axis=1)
        return jax.vmap(lambda c, t, lam, o, i: _finish(y, None, c, t, lam, o, i, t0=t0))(ctrl, treat, st.lam, omega, its)
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

    On panels of at most :data:`SHARED_SHAPE_MAX_UNITS` units every call runs exactly :data:`POOL`
    problems (:func:`decrimkit.numerics.chunks.map_chunks`; the padding problems are skipped by the
    pooled second pass), so the fit and a placebo batch of up to POOL replicates share one compiled
    kernel and one pool: compiling costs about 2.4 s per shape on the 2-core machine. On larger panels
    each batch runs at its own size, in chunks without the pool: there the placebos mostly run to the
    iteration cap, and the pool's bookkeeping measured 10% slower at 500 units.
    """
    small = y.shape[0] <= SHARED_SHAPE_MAX_UNITS
    chunk = POOL if small else ctrl.shape[0]  # large panels: one exact batch
    yj, lamj = jnp.asarray(y), jnp.asarray(lam0)
    return map_chunks(lambda c, t, o, r: sdid_fit_batch(yj, None, jnp.asarray(c), jnp.asarray(t), jnp.asarray(o), lamj,
                                                        zeta_omega, zeta_lambda, min_dec, jnp.asarray(r), t0=t0,
                                                        opts=opts, pool=small),
                      (ctrl, treat, omega0), chunk=chunk, description="SDID fits", real=True)
