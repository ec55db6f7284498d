"""TWFE DiD: castle doctrine reference (REFERENCES section 2), Card-Krueger 2x2 property, pyfixest."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from decrimkit import Panel
from decrimkit.datasets import load_dataset
from decrimkit.errors import DesignError, FewTreatedWarning, SpecificationError
from decrimkit.estimators import did


@pytest.fixture(scope="module")
def castle_frame() -> pd.DataFrame:
    return load_dataset("castle_doctrine")


@pytest.fixture(scope="module")
def castle(castle_frame) -> Panel:
    # cohort = effyear gives D = 1{year >= effyear}, the coding that reproduces the reference (not `post`)
    return Panel.from_frame(
        castle_frame,
        unit="state",
        time="year",
        outcome="l_homicide",
        cohort="effyear",
        weights="popwt",
        covariates=("unemployrt", "income", "poverty"),
    )


def _pyfixest_se(frame: pd.DataFrame, fml: str, cluster: str, k_ours: int, weights: str | None = None):
    """pyfixest CR1 coefficients and SEs with k_fixef='none', rescaled to our K.

    pyfixest's own 'nonnested' K detection runs in a numba prange loop whose count of nested fixed effects
    is racy (on this machine the same call gives K = 2 or K = 12 depending on threads), so we ask for
    K = k (k_fixef='none', deterministic) and rescale by sqrt((N - k) / (N - K)): the CR1 meat is shared.
    """
    import pyfixest as pf

    with warnings.catch_warnings():  # the peer's own pandas deprecation warnings, not ours
        warnings.simplefilter("ignore")
        m = pf.feols(fml, data=frame, vcov={"CRV1": cluster}, ssc=pf.ssc(k_fixef="none"), weights=weights)
    n, k = m._N, m._k
    return m.coef().to_numpy(), m.se().to_numpy() * np.sqrt((n - k) / (n - k_ours))


def test_castle_twfe_reference(castle):
    # bacondecomp index.ipynb (REFERENCES section 2, tag V): 0.0818116169306475, rtol 1e-6
    res = did.twfe(castle)
    assert res.att == pytest.approx(0.0818116169306475, rel=1e-6)
    assert res.label == ("treated",) and res.df == 49


def test_castle_matches_pyfixest(castle):
    f = castle.frame.assign(state=castle.frame["unit"], year=castle.frame["time"], lhom=castle.frame["y"])
    res = did.twfe(castle)
    coef, se = _pyfixest_se(f, "lhom ~ d | state + year", "state", k_ours=12)
    assert res.estimate[0] == pytest.approx(coef[0], rel=1e-6)
    assert res.se[0] == pytest.approx(se[0], rel=1e-6)
    # with covariates and analytic weights
    res = did.twfe(castle, covariates=("unemployrt", "income", "poverty"), weights="weights")
    coef, se = _pyfixest_se(
        f, "lhom ~ d + unemployrt + income + poverty | state + year", "state", k_ours=15, weights="weight"
    )
    np.testing.assert_allclose(res.estimate, coef, rtol=1e-6)
    np.testing.assert_allclose(res.se, se, rtol=1e-6)


def test_mpdta_matches_pyfixest(mpdta):
    f = mpdta.frame.assign(county=mpdta.frame["unit"], year=mpdta.frame["time"])
    res = did.twfe(mpdta)
    coef, se = _pyfixest_se(f, "y ~ d | county + year", "county", k_ours=1 + 5)
    assert res.estimate[0] == pytest.approx(coef[0], rel=1e-6)
    assert res.se[0] == pytest.approx(se[0], rel=1e-6)


def test_card_krueger_interaction_is_difference_of_cell_means():
    # Sample rule: every store with FTE (empft + nmgrs + 0.5 emppt) in both waves (384 stores); the six
    # closed stores (status2 == 3) stay in with wave-2 FTE 0 as coded; stores are identified by row, since
    # sheet 407 is two different stores (PA KFC and NJ Wendy's).
    ck = load_dataset("card_krueger")
    fte1 = ck["empft"] + ck["nmgrs"] + 0.5 * ck["emppt"]
    fte2 = ck["empft2"] + ck["nmgrs2"] + 0.5 * ck["emppt2"]
    keep = fte1.notna() & fte2.notna()
    store = np.flatnonzero(keep)
    nj = ck.loc[keep, "state"].to_numpy()
    long = pd.DataFrame(
        {
            "store": np.concatenate([store, store]),
            "wave": np.repeat([0, 1], len(store)),
            "fte": np.concatenate([fte1[keep], fte2[keep]]),
            "first": np.concatenate([nj, nj]),  # NJ treated at wave 1
        }
    )
    panel = Panel.from_frame(long, unit="store", time="wave", outcome="fte", cohort="first")
    res = did.twfe(panel)
    m = long.groupby(["first", "wave"])["fte"].mean()
    expected = (m[(1, 1)] - m[(1, 0)]) - (m[(0, 1)] - m[(0, 0)])
    assert res.att == pytest.approx(expected, rel=1e-12)
    assert keep.sum() == 384


def test_wild_bootstrap_inference(castle):
    res = did.twfe(castle, se_method="wild", n_boot=1999, seed=4)
    again = did.twfe(castle, se_method="wild", n_boot=1999, seed=4)
    assert res.p_value[0] == again.p_value[0]
    plain = did.twfe(castle)
    assert res.att == plain.att and res.se[0] == plain.se[0]  # the SE stays CR1
    assert res.p_value[0] != plain.p_value[0]
    ci = res.conf_int().iloc[0].to_numpy()
    assert ci[0] < res.att < ci[1]
    assert res.tidy()["p_value"].iloc[0] == res.wild.p_value == res.p_value[0]
    webb = did.twfe(castle, se_method="wild", n_boot=1999, seed=4, weights_dist="webb")
    assert webb.wild.weights_dist == "webb" and webb.spec.seed == 4


def test_named_errors(castle, castle_frame):
    base = castle_frame[["state", "year", "effyear", "l_homicide", "unemployrt", "south"]].copy()
    with pytest.raises(SpecificationError, match="not declared"):
        did.twfe(castle, covariates=("police",))
    with pytest.raises(SpecificationError, match="se_method"):
        did.twfe(castle, se_method="bootstrap")
    with pytest.raises(SpecificationError, match="cluster"):
        did.twfe(castle, cluster="region")
    # collinear covariates
    f = base.assign(unemp2=2 * castle_frame["unemployrt"] + 1)
    p = Panel.from_frame(
        f, unit="state", time="year", outcome="l_homicide", cohort="effyear", covariates=("unemployrt", "unemp2")
    )
    with pytest.raises(SpecificationError, match="collinear"):
        did.twfe(p, covariates=("unemployrt", "unemp2"))
    # a covariate constant within unit is absorbed by the unit effects
    f = base.assign(region=castle_frame["south"] * 1.0)
    p = Panel.from_frame(f, unit="state", time="year", outcome="l_homicide", cohort="effyear", covariates=("region",))
    with pytest.raises(SpecificationError, match="absorbed"):
        did.twfe(p, covariates=("region",))
    # no comparison units: everyone adopts in 2006
    f = base.assign(effyear=2006)
    p = Panel.from_frame(f, unit="state", time="year", outcome="l_homicide", cohort="effyear")
    with pytest.raises(DesignError, match="same time"):
        did.twfe(p)
    # the wild bootstrap needs clusters
    with pytest.raises(SpecificationError, match="needs a cluster"):
        did.twfe(castle, cluster=None, se_method="wild")
    # no treated observation at all
    p = Panel.from_frame(base.assign(effyear=np.nan), unit="state", time="year", outcome="l_homicide", cohort="effyear")
    with pytest.raises(DesignError, match="no observation is treated"):
        did.twfe(p)


def test_two_clusters_run_and_one_cluster_is_refused(castle_frame):
    two = castle_frame[castle_frame["state"].isin(["Florida", "Alaska"])]
    p = Panel.from_frame(two, unit="state", time="year", outcome="l_homicide", cohort="effyear")
    # two treated states (different years): the time-clustered fit warns that it rests on few treated units
    with pytest.warns(FewTreatedWarning, match="rests on 2 treated units"):
        assert np.isfinite(did.twfe(p, cluster="time").se[0])
    # Florida (2005) and Alaska (2006): Alaska is the only comparison (not yet treated in 2005), one cluster
    # on that side, so the CR1 SE would be far too small (issue 18.6)
    with pytest.raises(DesignError, match=r"2 treated and 1 comparison cluster\(s\); a cluster-robust variance needs"):
        did.twfe(p, cluster="unit")
    with pytest.warns(FewTreatedWarning):
        assert np.isfinite(did.twfe(p, cluster=None).att)  # the coefficient itself is identified
    four = castle_frame[castle_frame["state"].isin(["Florida", "Texas", "Alaska", "Vermont"])]
    with pytest.warns(FewTreatedWarning):
        res = did.twfe(Panel.from_frame(four, unit="state", time="year", outcome="l_homicide", cohort="effyear"))
    assert res.df == 3 and res.se[0] > 0  # three treated, three comparison clusters: t with G - 1 = 3 df
    with pytest.raises(DesignError, match="at least two clusters"):
        from decrimkit.inference.cluster import cr1_vcov

        cr1_vcov(np.ones((p.n_obs, 1)), np.ones(p.n_obs), np.zeros(p.n_obs))


def test_inputs_not_mutated_and_summary(castle_frame):
    before = castle_frame.copy()
    p = Panel.from_frame(castle_frame, unit="state", time="year", outcome="l_homicide", cohort="effyear")
    res = did.twfe(p)
    pd.testing.assert_frame_equal(castle_frame, before)
    assert "treated" in str(res) and res.spec.options["cluster"] == "unit"
    with pytest.raises(ValueError):
        res.estimate[0] = 1.0
