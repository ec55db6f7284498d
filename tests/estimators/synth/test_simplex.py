"""The exact simplex QP solver: KKT conditions, feasibility, masks (hypothesis property tests)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from decrimkit.estimators.synth._simplex import project_simplex, simplex_ls, simplex_qp

# Two fixed problem sizes so that the solver compiles twice, not once per example:
# rank-deficient (more donors than predictors, the usual SCM case) and full rank.
SHAPES = [(6, 12), (25, 10)]


def _problem(seed: int, k: int, n: int, drop: float):
    rng = np.random.default_rng(seed)
    x0 = rng.normal(size=(k, n)) * rng.uniform(0.1, 10)
    x1 = rng.normal(size=k) * rng.uniform(0.1, 10)
    v = rng.dirichlet(np.ones(k))
    q = (x0 * v[:, None]).T @ x0
    c = (x0 * v[:, None]).T @ x1
    mask = rng.random(n) >= drop
    mask[rng.integers(n)] = True
    return q, c, mask


def _factor_problem(seed: int, k: int, n: int, drop: float):
    """A random least-squares simplex problem ``min |a w - b|^2`` in factor form, some donors masked out."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(k, n)) * rng.uniform(0.1, 10)
    b = rng.normal(size=k) * rng.uniform(0.1, 10)
    mask = rng.random(n) >= drop
    mask[rng.integers(n)] = True
    return a, b, mask


def _kkt(q, c, w, mask):
    """Independent KKT check: g = Qw - c; equal on the support, not smaller off it (relative)."""
    g = q @ w - c
    supp = mask & (w > 0)
    mu = -g[supp].mean()
    scale = 1 + np.abs(q).max() + np.abs(c).max()
    stationarity = np.abs(g[supp] + mu).max() / scale
    off = mask & ~supp
    dual = np.maximum(-(g[off] + mu), 0).max() / scale if off.any() else 0.0
    return max(stationarity, dual)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), shape=st.sampled_from(SHAPES), drop=st.sampled_from([0.0, 0.3]))
def test_simplex_qp_satisfies_kkt(seed, shape, drop):
    q, c, mask = _problem(seed, *shape, drop)
    sol = simplex_qp(jnp.asarray(q), jnp.asarray(c), jnp.asarray(mask))
    w = np.asarray(sol.w)
    assert (w >= 0).all()
    assert abs(w.sum() - 1) < 1e-12
    assert (w[~mask] == 0).all()
    assert _kkt(q, c, w, mask) <= 1e-8  # the acceptance bound: KKT to 1e-8
    assert bool(sol.converged)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_simplex_qp_not_worse_than_any_vertex_or_random_point(seed):
    q, c, mask = _problem(seed, 6, 12, 0.0)
    w = np.asarray(simplex_qp(jnp.asarray(q), jnp.asarray(c)).w)
    f = lambda x: 0.5 * x @ q @ x - c @ x  # noqa: E731
    rng = np.random.default_rng(seed)
    others = np.vstack([np.eye(12), rng.dirichlet(np.ones(12), 200)])
    assert f(w) <= min(f(x) for x in others) + 1e-10


def test_projection_is_the_euclidean_projection():
    rng = np.random.default_rng(3)
    v = rng.normal(size=9) * 3
    mask = np.ones(9, dtype=bool)
    mask[[2, 5]] = False
    p = np.asarray(project_simplex(jnp.asarray(v), jnp.asarray(mask)))
    assert abs(p.sum() - 1) < 1e-14 and (p >= 0).all() and (p[~mask] == 0).all()
    # optimality of a projection: (v - p) . (x - p) <= 0 for every feasible x
    for x in np.vstack([np.eye(9)[mask], rng.dirichlet(np.ones(7), 50) @ np.eye(9)[mask]]):
        assert (v - p) @ (x - p) <= 1e-12


def _kkt_unit_free(q, c, w, mask):
    """The KKT violation relative to max|Q| + max|c| (no added 1: the same number in any units)."""
    g = q @ w - c
    supp = mask & (w > 0)
    mu = -g[supp].mean()
    scale = np.abs(q).max() + np.abs(c).max()
    off = mask & ~supp
    dual = np.maximum(-(g[off] + mu), 0).max() if off.any() else 0.0
    return max(np.abs(g[supp] + mu).max(), dual) / scale, mu


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), power=st.sampled_from([-8, -4, 4, 8, 12]))
def test_simplex_qp_solution_does_not_depend_on_the_units(seed, power):
    # Q, c scaled by 10**power have the same minimiser; before the solver worked at unit scale, Q ~ 1e8
    # (outcomes in the thousands) made its bordered KKT system drop the constraint: a non-optimal point
    q, c, mask = _problem(seed, 6, 12, 0.0)
    base = simplex_qp(jnp.asarray(q), jnp.asarray(c))
    scaled = simplex_qp(jnp.asarray(q * 10.0**power), jnp.asarray(c * 10.0**power))
    assert bool(scaled.converged)
    np.testing.assert_allclose(np.asarray(scaled.w), np.asarray(base.w), atol=1e-8)
    assert float(scaled.mu) == pytest.approx(float(base.mu) * 10.0**power, rel=1e-6, abs=1e-9 * 10.0**power)


def test_simplex_qp_is_optimal_with_outcomes_in_the_thousands():
    # 19 pre-periods x 38 donors, outcomes around 3000 (Q ~ 1e8): the old solver stopped at a point whose
    # KKT violation was 7e-4 of the problem's scale (weights off by up to 0.02); the check here is
    # independent of the solver and of the units, at 1e-8 (far from rounding, ~1e-14 here)
    rng = np.random.default_rng(0)
    x0 = rng.normal(size=(19, 38)) * 1000 + 3000
    x1 = x0[:, :5].mean(axis=1) + rng.normal(size=19) * 50
    mask = np.ones(38, dtype=bool)
    weights = []
    for unit in (1.0, 1e-6):  # the same problem in thousands and in thousandths
        q, c = x0.T @ x0 * unit, x0.T @ x1 * unit
        w = np.asarray(simplex_qp(jnp.asarray(q), jnp.asarray(c)).w)
        violation, _ = _kkt_unit_free(q, c, w, mask)
        assert violation < 1e-8
        assert w.min() >= 0 and w.sum() == pytest.approx(1.0, abs=1e-12)
        weights.append(w)
    np.testing.assert_allclose(weights[0], weights[1], atol=1e-7)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), shape=st.sampled_from(SHAPES), drop=st.sampled_from([0.0, 0.3]))
def test_factor_form_solver_reaches_the_same_optimum(seed, shape, drop):
    # simplex_ls(A, b) solves the QP with Q = A'A, c = A'b without forming Q: the same KKT point as
    # simplex_qp (the estimators' solver before the factor form), the same objective
    a, b, mask = _factor_problem(seed, *shape, drop)
    q, c = a.T @ a, a.T @ b
    ls = simplex_ls(jnp.asarray(a), jnp.asarray(b), jnp.asarray(mask))
    qp = simplex_qp(jnp.asarray(q), jnp.asarray(c), jnp.asarray(mask))
    w = np.asarray(ls.w)
    assert bool(ls.converged) and _kkt_unit_free(q, c, w, mask)[0] < 1e-8
    assert w.min() >= 0 and w.sum() == pytest.approx(1.0, abs=1e-12) and not w[~mask].any()
    loss = lambda x: 0.5 * np.sum((a @ x - b) ** 2)  # noqa: E731
    assert loss(w) == pytest.approx(loss(np.asarray(qp.w)), rel=1e-9, abs=1e-12 * (1 + b @ b))
    np.testing.assert_allclose(float(ls.mu), float(qp.mu), rtol=1e-6, atol=1e-9 * (1 + np.abs(c).max()))


def test_factor_form_solver_on_hundreds_of_donors():
    # 8 fitting periods x 400 donors from a 3-factor model: the exact polish starts from the pre-solve's
    # 9 largest weights (not its hundreds of small ones). For this convex problem the KKT conditions,
    # checked independently of the solver, certify the optimum; the loss is not above any donor's alone
    rng = np.random.default_rng(3)
    lam = rng.normal(size=(401, 3))
    y = 20 + lam @ rng.normal(size=(3, 8)) + rng.normal(size=(401, 8)) * 0.5
    a, b = y[1:].T, y[0] + 3.0  # shifted: the treated unit is outside the donors' hull
    sol = simplex_ls(jnp.asarray(a), jnp.asarray(b))
    w = np.asarray(sol.w)
    assert bool(sol.converged) and _kkt_unit_free(a.T @ a, a.T @ b, w, np.ones(400, dtype=bool))[0] < 1e-8
    assert w.min() >= 0 and w.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.sum((a @ w - b) ** 2) <= np.min(np.sum((a - b[:, None]) ** 2, axis=0))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), shape=st.sampled_from(SHAPES), drop=st.sampled_from([0.0, 0.3]))
def test_pruned_start_certifies_the_same_optimum(seed, shape, drop):
    # prune=3 (what the fixed-V placebo batch uses, with a 30-iteration pre-solve) only changes where
    # the active set starts: the KKT-certified point is the default solver's (weights to 1e-9)
    a, b, mask = _factor_problem(seed, *shape, drop)
    base = simplex_ls(jnp.asarray(a), jnp.asarray(b), jnp.asarray(mask), max_iter=100)
    pruned = simplex_ls(jnp.asarray(a), jnp.asarray(b), jnp.asarray(mask), max_iter=30, prune=3)
    w = np.asarray(pruned.w)
    assert bool(pruned.converged) and _kkt_unit_free(a.T @ a, a.T @ b, w, mask)[0] < 1e-8
    assert w.min() >= 0 and w.sum() == pytest.approx(1.0, abs=1e-12) and not w[~mask].any()
    loss = lambda x: 0.5 * np.sum((a @ x - b) ** 2)  # noqa: E731
    assert loss(w) == pytest.approx(loss(np.asarray(base.w)), rel=1e-10, abs=1e-12 * (1 + b @ b))
