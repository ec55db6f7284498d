"""CR1/HC1 variances against statsmodels, and the wild cluster bootstrap against wildboottest."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from decrimkit.datasets import load_dataset
from decrimkit.errors import DesignError, SpecificationError
from decrimkit.inference.cluster import cluster_adjustment, cr1_vcov, fixef_dof, hc1_vcov
from decrimkit.inference.wild import wild_cluster_bootstrap, wild_weights
from decrimkit.numerics.demean import demean
from decrimkit.numerics.keys import key_from_seed


@pytest.fixture(scope="module")
def castle():
    """Castle doctrine (REFERENCES section 2): D = 1{year >= effyear}, state and year effects."""
    df = load_dataset("castle_doctrine")
    d = ((df["year"] >= df["effyear"]) & df["effyear"].notna()).astype(float)
    dummies = pd.get_dummies(
        df[["state"]].astype(str).assign(year=df["year"].astype(str)), drop_first=False, dtype=float
    )
    dummies = dummies.drop(columns=["year_2000"])
    x_full = np.column_stack([d.to_numpy(), dummies.to_numpy()])
    fe = [df["state"].to_numpy(), df["year"].to_numpy()]
    dm = demean(np.column_stack([df["l_homicide"].to_numpy(), d.to_numpy()]), fe)
    return {
        "df": df,
        "x_full": x_full,
        "y": df["l_homicide"].to_numpy(),
        "yd": dm.values[:, 0],
        "xd": dm.values[:, 1:],
        "state": df["state"].to_numpy(),
        "fe": fe,
    }


def _ols(x, y):
    b = np.linalg.solve(x.T @ x, x.T @ y)
    return b, y - x @ b


def test_cr1_matches_statsmodels_dummy_regression(castle):
    # statsmodels' cluster vcov uses G/(G-1) (N-1)/(N-K) with K = all 61 columns; same K here.
    ref = sm.OLS(castle["y"], castle["x_full"]).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(castle["state"])[0]}
    )
    b, r = _ols(castle["xd"], castle["yd"])
    v = cr1_vcov(castle["xd"], r, castle["state"], n_params=castle["x_full"].shape[1])
    assert b[0] == pytest.approx(ref.params[0], rel=1e-10)
    assert np.sqrt(v.vcov[0, 0]) == pytest.approx(ref.bse[0], rel=1e-8)  # same formula: float error only
    assert v.n_clusters == 50


def test_hc1_matches_statsmodels(castle):
    ref = sm.OLS(castle["y"], castle["x_full"]).fit(cov_type="HC1")
    b, r = _ols(castle["xd"], castle["yd"])
    v = hc1_vcov(castle["xd"], r, n_params=castle["x_full"].shape[1])
    assert np.sqrt(v[0, 0]) == pytest.approx(ref.bse[0], rel=1e-8)


def test_fixef_dof_follows_fixest_nonnested_rule(castle):
    # unit FE nested in the unit clusters: K = 1 coefficient + 11 year levels (fixest/pyfixest "nonnested")
    assert fixef_dof(1, castle["fe"], castle["state"]) == 12
    assert fixef_dof(1, castle["fe"], None) == 1 + 50 + 11 - 1
    assert cluster_adjustment(550, 12, 50) == pytest.approx(50 / 49 * 549 / 538, rel=1e-15)


def test_weights_distributions():
    # same static sizes as the bootstrap test below, so the compiled kernels are shared
    v = np.asarray(wild_weights(key_from_seed(1), n_boot=1999, n_clusters=50, dist="webb"))
    assert set(np.round(np.unique(v) ** 2, 12)) == {0.5, 1.0, 1.5}
    assert abs(v.mean()) < 0.01 and abs((v**2).mean() - 1) < 0.01  # 99,950 draws: sd of the mean 0.003
    r = np.asarray(wild_weights(key_from_seed(1), n_boot=1999, n_clusters=50, dist="rademacher"))
    assert set(np.unique(r)) == {-1.0, 1.0}


def test_wild_bootstrap_is_deterministic_and_agrees_with_wildboottest(castle):
    from wildboottest.wildboottest import wildboottest

    xd, yd = castle["xd"], castle["yd"]
    a = wild_cluster_bootstrap(xd, yd, castle["state"], coef=0, n_params=12, n_boot=1999, seed=4)
    b = wild_cluster_bootstrap(xd, yd, castle["state"], coef=0, n_params=12, n_boot=1999, seed=4)
    ci = a.conf_int().loc["coef"].to_numpy()
    assert a.p_value == b.p_value and np.array_equal(ci, b.conf_int().loc["coef"].to_numpy())
    # the bootstrap p-value does not depend on the small-sample factor (it scales t and t* alike), so
    # wildboottest on the dummy regression tests the same statistic; its draws come from another RNG,
    # so the p-values agree only up to Monte Carlo error (sd about sqrt(p(1-p)/B) = 0.008 here).
    model = sm.OLS(castle["y"], castle["x_full"])
    ref = wildboottest(
        model,
        param="x1",
        cluster=pd.factorize(castle["state"])[0],
        B=1999,
        seed=4,
        weights_type="rademacher",
        show=False,
    )
    assert a.p_value == pytest.approx(float(ref["p-value"].iloc[0]), abs=0.03)
    # the CR1 t statistic of beta = 0 and a test-inversion interval containing the estimate
    beta = np.linalg.lstsq(xd, yd, rcond=None)[0][0]
    assert ci[0] < beta < ci[1]
    # at the interval's ends the bootstrap p-value is alpha (up to the step of the p-value function)
    lo = wild_cluster_bootstrap(
        xd, yd, castle["state"], coef=0, null=ci[0], n_params=12, n_boot=1999, seed=4
    )
    assert lo.p_value == pytest.approx(0.05, abs=2 / 1999)


def test_single_cluster_and_bad_options(castle):
    xd, yd = castle["xd"], castle["yd"]
    with pytest.raises(DesignError, match="at least two clusters"):
        cr1_vcov(xd, yd, np.zeros(len(yd)))
    with pytest.raises(SpecificationError, match="weights_dist"):
        wild_cluster_bootstrap(xd, yd, castle["state"], coef=0, weights_dist="mammen")
    with pytest.raises(SpecificationError, match="n_boot"):
        wild_cluster_bootstrap(xd, yd, castle["state"], coef=0, n_boot=10)
    with pytest.raises(DesignError, match="rank deficient"):
        cr1_vcov(np.column_stack([xd, 2 * xd]), yd, castle["state"])


def test_webb_weights_agree_with_wildboottest(castle):
    """Webb six-point weights, WCR, on castle doctrine: wildboottest's p-value up to Monte Carlo error."""
    from wildboottest.wildboottest import wildboottest

    ours = wild_cluster_bootstrap(castle["xd"], castle["yd"], castle["state"], coef=0, n_params=12, n_boot=4999,
                                  seed=4, weights_dist="webb")
    ref = wildboottest(sm.OLS(castle["y"], castle["x_full"]), param="x1", cluster=pd.factorize(castle["state"])[0],
                       B=4999, seed=4, weights_type="webb", show=False)
    # two independent sets of 4999 draws: sd of the difference about sqrt(2 p (1-p) / B) = 0.008
    assert ours.p_value == pytest.approx(float(ref["p-value"].iloc[0]), abs=0.03)


def test_subcluster_bootstrap_statistic_equals_refitting_each_draw(castle):
    """MacKinnon-Webb subcluster WCR: weights per observation, CR1 by state. wildboottest's bootcluster
    path fails when the bootstrap clusters differ from the clusters (its H matrix is G x G), so each
    bootstrap t is checked against the literal algorithm: y* = X b_r + u_r * v, refit, CR1 t of b* - 0."""
    from decrimkit.inference.wild import _t_boot, wild_cluster_test

    xd, yd, state = castle["xd"], castle["yd"], castle["state"]
    n = len(yd)
    test = wild_cluster_test(xd, yd, state, coef=0, n_params=12, n_boot=99, seed=3, weights_dist="webb",
                             bootcluster=np.arange(n))
    assert test.n_bootclusters == n and test.n_clusters == 50
    t_fast = _t_boot(test.moments, np.array([0.0]), test.adj)[0]
    v = np.asarray(wild_weights(key_from_seed(3), n_boot=99, n_clusters=n, dist="webb"))
    u_r = yd  # the null beta = 0 with no other regressor (fixed effects already partialled out)
    for b in range(5):
        y_star = u_r * v[b]
        beta = float(xd[:, 0] @ y_star / (xd[:, 0] @ xd[:, 0]))
        cv = cr1_vcov(xd, y_star - xd[:, 0] * beta, state, n_params=12)
        assert t_fast[b] == pytest.approx(beta / np.sqrt(cv.vcov[0, 0]), rel=1e-9)
    with pytest.raises(SpecificationError, match="nested"):
        wild_cluster_test(xd, yd, state, coef=0, n_boot=99, bootcluster=castle["df"]["year"].to_numpy())
