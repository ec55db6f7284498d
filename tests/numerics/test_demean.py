"""Fixed-effect demeaning: the jitted alternating projections against the exact dense projection."""

from __future__ import annotations

import numpy as np
import pytest

from decrimkit.errors import DataError, SpecificationError
from decrimkit.numerics.demean import demean, demean_dense, factor_codes


def _unbalanced(seed: int = 3, n: int = 400):
    rng = np.random.default_rng(seed)
    unit = rng.integers(0, 40, n)
    time = rng.integers(0, 12, n)
    third = rng.integers(0, 5, n)
    x = rng.normal(size=(n, 3)) + unit[:, None] * 0.1 + time[:, None] * 0.05
    w = rng.uniform(0.2, 3.0, n)
    return x, unit, time, third, w


def test_iterative_matches_dense_two_factors_weighted():
    x, unit, time, _, w = _unbalanced()
    it = demean(x, [unit, time], w, method="iterative", tol=1e-13)
    assert it.converged
    # exact projection vs alternating projections stopped at 1e-13: agreement to 1e-9 absolute
    np.testing.assert_allclose(it.values, demean_dense(x, [unit, time], w), atol=1e-9)


def test_three_factors_and_auto_path():
    x, unit, time, third, w = _unbalanced(seed=5)
    exact = demean_dense(x, [unit, time, third])
    np.testing.assert_allclose(demean(x, [unit, time, third], method="iterative", tol=1e-13).values, exact, atol=1e-9)
    np.testing.assert_allclose(demean(x, [unit, time, third]).values, exact, atol=1e-9)  # auto -> dense here


def test_single_factor_is_group_mean_removal():
    x, unit, *_ = _unbalanced()
    out = demean(x[:, 0], unit, method="iterative")
    means = np.bincount(unit, weights=x[:, 0]) / np.bincount(unit)
    np.testing.assert_allclose(out.values, x[:, 0] - means[unit], atol=1e-12)
    assert out.n_iter == 1


def test_residuals_orthogonal_to_dummies():
    x, unit, time, _, w = _unbalanced(seed=7)
    r = demean(x, [unit, time], w, method="iterative", tol=1e-13).values
    for codes in (unit, time):
        sums = np.zeros((codes.max() + 1, 3))
        np.add.at(sums, codes, w[:, None] * r)
        assert np.abs(sums).max() < 1e-8


def test_factor_codes_and_bad_input():
    assert factor_codes(np.array(["b", "a", "b"])).tolist() == [1, 0, 1]
    assert factor_codes(np.array([1, 1, 2]), np.array(["x", "y", "x"])).tolist() == [0, 1, 2]
    with pytest.raises(DataError, match="missing or infinite"):
        demean(np.array([1.0, np.nan]), [np.array([0, 1])])
    with pytest.raises(DataError, match="shape"):
        demean(np.ones(3), [np.array([0, 1])])
    with pytest.raises(DataError, match="weights"):
        demean(np.ones(2), [np.array([0, 1])], weights=np.array([1.0, -1.0]))
    with pytest.raises(SpecificationError, match="method"):
        demean(np.ones(2), [np.array([0, 1])], method="fast")
