"""att_gt's multiplier bootstrap: one set of draws per fit, aggregated linearly; tiled draws equal dense ones."""

from __future__ import annotations

import numpy as np
import pytest

from decrimkit import Panel
from decrimkit.datasets import load_dataset
from decrimkit.estimators import did
from decrimkit.inference import bootstrap
from decrimkit.inference.bootstrap import multiplier_draws, multiplier_weights, summarise_draws
from decrimkit.numerics.keys import key_from_seed

# Every check below compares two computations of the same linear combinations of the same multipliers.
# The tiled draws form their 0/1 products in single precision on tile-centred influence functions
# (decrimkit.inference.bootstrap): rounding of about 1e-7 of a draw's scale per tile, so two routes to
# the same draws agree to rtol=1e-5, and draws agree with dense double-precision ones to 1e-5 of the
# column's spread. (The bootstrap's own Monte Carlo error is about 2% at 999 replicates.)
RTOL = 1e-5


@pytest.fixture(scope="module")
def panel() -> Panel:
    return Panel.from_frame(load_dataset("mpdta"), unit="countyreal", time="year", outcome="lemp",
                            cohort="first.treat", covariates=["lpop"])


@pytest.mark.parametrize("kind", ["simple", "dynamic", "group", "calendar"])
def test_aggregated_draws_equal_a_direct_bootstrap_of_the_aggregate(panel: Panel, kind: str) -> None:
    fit = did.att_gt(panel, n_boot=199, seed=5)
    agg = fit.aggregate(kind)
    # att_gt orders units by cohort before drawing; the same key and order on the aggregated influence
    # function must give the same replicates as aggregating the fit's cell draws
    order = np.argsort(fit.design.g_unit, kind="stable")
    direct = multiplier_draws(key_from_seed(5), agg.overall_influence[order], n_boot=199)
    se, _ = summarise_draws(direct, fit.n_units)
    np.testing.assert_allclose(agg.overall_boot_se, se[0], rtol=RTOL)
    if kind != "simple":
        direct = multiplier_draws(key_from_seed(5), agg.influence[order], n_boot=199)
        se, crit = summarise_draws(direct, fit.n_units)
        np.testing.assert_allclose(agg.boot_se, se, rtol=RTOL)
        if agg.crit is not None:
            assert agg.crit == pytest.approx(crit, rel=RTOL)


def test_cluster_bootstrap_equals_unit_bootstrap_with_singleton_clusters() -> None:
    frame = load_dataset("mpdta")
    frame = frame.assign(cl=frame["countyreal"].astype(float))
    clustered = Panel.from_frame(frame, unit="countyreal", time="year", outcome="lemp", cohort="first.treat",
                                 covariates=["cl"])
    a = did.att_gt(clustered, n_boot=99, seed=2, cluster="cl")
    n = a.n_units
    # one unit per cluster: clusters are coded in unit order, so the draws are those of the unsorted rows
    direct = multiplier_draws(key_from_seed(2), a.influence, n_boot=99)
    np.testing.assert_allclose(a.boot_se, summarise_draws(direct, n)[0], rtol=RTOL)


def test_tiled_draws_equal_dense_weights_and_ignore_thread_count(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    g = 3 * bootstrap.TILE + 17  # several tiles and a ragged last one
    psi = rng.standard_normal((g, 4))
    psi[: bootstrap.TILE, 1] = 0.0  # a column that is zero on a whole tile is skipped there
    for dist in ("mammen", "rademacher"):
        v = multiplier_weights(key_from_seed(9), n_boot=50, n_clusters=g, dist=dist)
        draws = multiplier_draws(key_from_seed(9), psi, n_boot=50, dist=dist)
        dense = v @ psi / np.sqrt(g)
        np.testing.assert_allclose(draws, dense, rtol=0, atol=RTOL * dense.std())
        monkeypatch.setattr(bootstrap, "_GROUP", 1)
        monkeypatch.setattr(bootstrap, "_workers", lambda n: 1)
        serial = multiplier_draws(key_from_seed(9), psi, n_boot=50, dist=dist)
        monkeypatch.undo()
        # the same tile products, summed in double precision in another grouping
        np.testing.assert_allclose(serial, draws, rtol=1e-12, atol=1e-14)
        np.testing.assert_array_equal(multiplier_draws(key_from_seed(9), psi, n_boot=50, dist=dist), draws)
    assert set(np.unique(multiplier_weights(key_from_seed(1), n_boot=3, n_clusters=10, dist="rademacher"))) <= {-1, 1}
