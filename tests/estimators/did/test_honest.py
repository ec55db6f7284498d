"""Rambachan-Roth sensitivity: the properties of REFERENCES section 7 (no reference values there)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from decrimkit.errors import DesignError, SpecificationError
from decrimkit.estimators import did
from decrimkit.estimators.did._honest import identified_set
from decrimkit.results import Effect, Spec


@pytest.fixture(scope="module")
def mpdta():
    """Module-scoped copy of the shared mpdta panel (the event study is fitted once per module)."""
    from decrimkit import Panel
    from decrimkit.datasets import load_dataset

    return Panel.from_frame(load_dataset("mpdta"), unit="countyreal", time="year", outcome="lemp", cohort="first.treat")


@pytest.fixture(scope="module")
def es(mpdta):
    return did.event_study(mpdta)


def test_smoothness_flci_length_weakly_increases_in_m(es):
    res = did.honest(es, method="smoothness", m=[0.0, 0.005, 0.01, 0.02, 0.04])
    length = (res.table["ub"] - res.table["lb"]).to_numpy()
    assert (np.diff(length) >= -1e-9).all()
    assert res.table["method"].eq("FLCI").all()


def test_smoothness_m0_is_linear_extrapolation(es):
    # M = 0: the FLCI is centred at the minimum-variance estimator that is unbiased under linear trends,
    # l'beta_post - w'beta_pre with w't_pre = l't_post (t = event time + 1), and has half-length z * sd
    res = did.honest(es, method="smoothness", m=[0.0])
    beta, sigma = es.estimate, es.vcov
    t = np.asarray(es.label, dtype=float) + 1.0
    pre = np.asarray(es.label) < 0
    # minimise c'Sigma c over c = (-w, e_0) subject to w't_pre = t_0 = 1 (KKT system)
    c0 = np.zeros(len(beta))
    c0[np.flatnonzero(~pre)[0]] = 1.0
    sp = sigma[np.ix_(pre, pre)]
    cross = sigma[np.ix_(pre, ~pre)] @ c0[~pre]
    kkt = np.block([[2 * sp, t[pre][:, None]], [t[pre][None, :], np.zeros((1, 1))]])
    sol = np.linalg.solve(kkt, np.concatenate([2 * cross, [1.0]]))
    c = c0.copy()
    c[pre] = -sol[:-1]
    est, sd = c @ beta, np.sqrt(c @ sigma @ c)
    lb, ub = res.table[["lb", "ub"]].to_numpy()[0]
    assert (lb + ub) / 2 == pytest.approx(est, rel=1e-8)
    assert (ub - lb) / 2 == pytest.approx(1.959963984540054 * sd, rel=1e-8)


def test_smoothness_identified_set_is_a_point_at_m0(es):
    # a pre-trend that is exactly linear (slope 0.01 per period) and post-period coefficients beta_post
    times = np.asarray(es.label)
    beta = np.where(times < 0, 0.01 * (times + 1), 0.05 + 0.01 * (times + 1))
    true = replace(es, estimate=beta)
    lo, hi = identified_set(true, method="smoothness", m=0.0)
    assert lo == pytest.approx(hi, abs=1e-10)
    assert lo == pytest.approx(0.05, abs=1e-10)  # beta_0 minus the extrapolated trend 0.01 * 1
    lo2, hi2 = identified_set(true, method="smoothness", m=0.01)
    assert lo2 < lo - 1e-6 and hi2 > hi + 1e-6


@pytest.mark.parametrize("test", ["hybrid", "lf"])
def test_relative_magnitude_sets_widen_and_contain(es, test):
    res = did.honest(es, method="relative_magnitude", test=test, m=[0.0, 0.5, 1.0, 2.0], n_draws=5000, seed=2)
    lb, ub = res.table["lb"].to_numpy(), res.table["ub"].to_numpy()
    assert (np.diff(ub - lb) >= -1e-9).all()
    assert (np.diff(lb) <= 1e-9).all() and (np.diff(ub) >= -1e-9).all()
    # the identified set at the estimates lies inside the robust interval
    for m, lo, hi in zip(res.table["m"], lb, ub):
        ilo, ihi = identified_set(es, method="relative_magnitude", m=m)
        assert lo <= ilo + 1e-9 and ihi <= hi + 1e-9
    again = did.honest(es, method="relative_magnitude", test=test, m=[0.0, 0.5, 1.0, 2.0], n_draws=5000, seed=2)
    assert again.table.equals(res.table)
    assert res.table["method"].eq({"hybrid": "C-LF", "lf": "ARP-LF"}[test]).all()
    assert "ARP" in res.summary()


def test_hybrid_is_shorter_than_lf(es):
    m = [0.5, 1.0]
    hyb = did.honest(es, method="relative_magnitude", m=m).table
    lf = did.honest(es, method="relative_magnitude", m=m, test="lf").table
    assert ((hyb["ub"] - hyb["lb"]) < (lf["ub"] - lf["lb"])).all()


def test_att_gt_event_study_is_accepted(mpdta):
    # R HonestDiD's honest_did.AGGTEobj: universal base period, drop the -1 coefficient, Sigma = psi'psi / n^2
    gt = did.att_gt(mpdta, base_period="universal", n_boot=0)
    cs, cs_group = gt.aggregate("dynamic"), gt.aggregate("group")
    res = did.honest(cs, method="relative_magnitude", m=[0.5, 1.0])
    keep = np.asarray(cs.label) != -1
    psi = cs.influence[:, keep]
    vcov = psi.T @ psi / psi.shape[0] ** 2
    np.testing.assert_allclose(np.sqrt(np.diag(vcov)), cs.se[keep], rtol=1e-12)  # the aggregate's own SEs
    by_hand = Effect(
        label=tuple(int(t) for t in np.asarray(cs.label)[keep]),
        estimate=cs.estimate[keep],
        se=cs.se[keep],
        spec=Spec(estimator="by hand"),
        vcov=vcov,
        label_name="event_time",
    )
    expected = did.honest(by_hand, method="relative_magnitude", m=[0.5, 1.0])
    np.testing.assert_allclose(
        res.table[["lb", "ub"]].to_numpy(), expected.table[["lb", "ub"]].to_numpy(), rtol=1e-12, atol=1e-15
    )
    assert res.estimate == pytest.approx(cs.estimate[np.asarray(cs.label) == 0][0], rel=1e-12)
    with pytest.raises(SpecificationError, match="universal"):
        did.honest(did.att_gt(mpdta, n_boot=0).aggregate("dynamic"))
    with pytest.raises(SpecificationError, match="dynamic"):
        did.honest(cs_group)


def test_breakdown_and_plot(es):
    res = did.honest(es, method="smoothness", m=[0.0, 0.01, 0.03], l_vec=[0, 0, 1, 0])
    # the effect two periods after adoption is clearly negative at M = 0 but not at M = 0.03
    excl = (res.table["ub"] < 0).to_numpy()
    assert excl[0] and not excl[-1]
    assert res.breakdown == res.table["m"].to_numpy()[np.argmin(excl) - 1]
    fig = res.plot()
    assert len(fig.axes[0].get_xticklabels()) == 4
    assert "breakdown" in str(res)


def test_honest_errors(es, mpdta):
    with pytest.raises(SpecificationError, match="method"):
        did.honest(es, method="bounds")
    with pytest.raises(SpecificationError, match="test"):
        did.honest(es, test="exact")
    with pytest.raises(SpecificationError, match="grid_points"):
        did.honest(es, grid_points=2)
    with pytest.raises(SpecificationError, match="non-negative"):
        did.honest(es, m=[-1.0])
    with pytest.raises(SpecificationError, match="binned"):
        did.honest(did.event_study(mpdta, leads=2, lags=2))
    with pytest.raises(SpecificationError, match="l_vec"):
        did.honest(es, method="smoothness", l_vec=[1.0])
    post_only = replace(es, label=(0, 1, 2, 3), estimate=es.estimate[3:], se=es.se[3:], vcov=es.vcov[3:, 3:])
    with pytest.raises(DesignError, match="pre-period"):
        did.honest(post_only)


def test_refuses_an_event_study_with_few_treated_inference():
    # a few-treated method is chosen because the coefficients are not close to normal: honest() says so
    import pandas as pd

    from decrimkit import Panel

    rng = np.random.default_rng(0)
    units, periods = 10, 6
    df = pd.DataFrame({"unit": np.repeat(np.arange(units), periods), "time": np.tile(np.arange(periods), units),
                       "g": np.repeat([3, 4] + [0] * (units - 2), periods)})
    df["y"] = rng.normal(size=len(df))
    panel = Panel.from_frame(df, unit="unit", time="time", outcome="y", cohort="g")
    es_ct = did.event_study(panel, inference="conley_taber")
    with pytest.raises(SpecificationError, match="inference is 'conley_taber', a few-treated method"):
        did.honest(es_ct, method="relative_magnitude", m=[1.0])
    cs = did.att_gt(panel, n_boot=0, base_period="universal", inference="randomization", n_perm=19, max_exact=0)
    with pytest.raises(SpecificationError, match="inference is 'randomization'"):
        did.honest(cs.aggregate("dynamic"), method="smoothness", m=[0.0])
