"""Multiplier bootstrap over influence functions (R did's mboot)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from decrimkit.errors import DataError, SpecificationError
from decrimkit.inference.bootstrap import multiplier_bootstrap, multiplier_weights, quantile_type1
from decrimkit.numerics.keys import key_from_seed


def test_mammen_and_rademacher_moments() -> None:
    for dist, third in (("mammen", 1.0), ("rademacher", 0.0)):
        v = np.asarray(multiplier_weights(key_from_seed(0), n_boot=400, n_clusters=500, dist=dist)).ravel()
        # 200,000 draws: sampling error of each moment is about 0.002-0.005
        assert abs(v.mean()) < 0.01 and abs(v.var() - 1) < 0.02 and abs(np.mean(v**3) - third) < 0.03


def test_quantile_type1_matches_r() -> None:
    x = np.arange(1.0, 11.0)  # R: quantile(1:10, c(.25, .5, .95), type = 1) -> 3, 5, 10
    assert [float(quantile_type1(x, q)) for q in (0.25, 0.5, 0.95)] == [3.0, 5.0, 10.0]


def test_bootstrap_se_and_sup_t_band() -> None:
    rng = np.random.default_rng(1)
    n = 2000
    psi = rng.standard_normal((n, 3)) * np.array([1.0, 2.0, 0.5])
    boot = multiplier_bootstrap(psi, key_from_seed(3), n_boot=999)
    analytic = np.sqrt(np.mean(psi**2, axis=0) / n)
    np.testing.assert_allclose(boot.se, analytic, rtol=0.1)  # 999 draws: IQR-based SE within 10%
    # three independent columns: the sup-t value is near the 1 - 0.05/3 normal quantile, above 1.96
    assert stats.norm.ppf(0.975) < boot.crit < stats.norm.ppf(1 - 0.05 / 6) + 0.3
    again = multiplier_bootstrap(psi, key_from_seed(3), n_boot=999)
    np.testing.assert_array_equal(again.draws, boot.draws)


def test_clusters_and_degenerate_columns() -> None:
    rng = np.random.default_rng(2)
    psi = np.column_stack([rng.standard_normal(600), np.zeros(600)])
    boot = multiplier_bootstrap(psi, key_from_seed(0), n_boot=199, cluster=np.arange(600) // 3)
    assert boot.n_clusters == 200 and np.isfinite(boot.se[0]) and np.isnan(boot.se[1])
    with pytest.raises(DataError, match="n_boot"):
        multiplier_bootstrap(psi, key_from_seed(0), n_boot=1)
    with pytest.raises(SpecificationError, match="dist"):
        multiplier_bootstrap(psi, key_from_seed(0), dist="webb")
