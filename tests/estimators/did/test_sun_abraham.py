"""Sun-Abraham interaction-weighted estimator against pyfixest's saturated event study on mpdta."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from decrimkit import Panel
from decrimkit.errors import DesignError
from decrimkit.estimators import did


def test_cells_match_pyfixest_saturated_event_study(mpdta, mpdta_frame):
    from pyfixest.did.saturated_twfe import SaturatedEventStudy

    res = did.sun_abraham(mpdta)
    with warnings.catch_warnings():  # pyfixest flags the class as beta; peer warnings are not ours
        warnings.simplefilter("ignore")
        sat = SaturatedEventStudy(
            mpdta_frame.rename(columns={"first.treat": "g"}),
            yname="lemp",
            idname="countyreal",
            tname="year",
            gname="g",
            cluster="countyreal",
        )
        peer = sat.estimate().coef()
    ours = {(int(r.cohort), int(r.event_time)): r.estimate for r in res.cohort_effects.itertuples()}
    theirs = {}
    for name, value in peer.items():
        rel, coh = name.split(":")[2], name.split("::")[-1]
        theirs[(int(coh), int(float(rel.replace("rel_time::", ""))))] = value
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert ours[key] == pytest.approx(theirs[key], rel=1e-6)


def test_se_and_interaction_weights_match_pyfixest(mpdta, mpdta_frame):
    import pyfixest as pf
    from pyfixest.did.saturated_twfe import compute_period_weights

    res = did.sun_abraham(mpdta)
    cells = res.cohort_effects
    f = mpdta.frame.copy()
    e = f["time"] - f["cohort"]
    names = []
    for i, r in enumerate(cells.itertuples()):
        f[f"c{i}"] = ((f["cohort"] == r.cohort) & (e == r.event_time)).astype(float)
        names.append(f"c{i}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = pf.feols(
            f"y ~ {' + '.join(names)} | unit + time", data=f, vcov={"CRV1": "unit"}, ssc=pf.ssc(k_fixef="none")
        )
    n, k = m._N, m._k
    k_ours = len(names) + mpdta.n_periods  # fixest's nonnested rule (see test_twfe)
    np.testing.assert_allclose(cells["se"], m.se().to_numpy() * np.sqrt((n - k) / (n - k_ours)), rtol=1e-6)
    # interaction weights: pyfixest's Sun-Abraham shares of each cohort at each event time
    g = mpdta_frame.assign(
        rel=mpdta_frame["year"] - mpdta_frame["first.treat"],
        treated=((mpdta_frame["first.treat"] > 0) & (mpdta_frame["year"] >= mpdta_frame["first.treat"])).astype(int),
    )
    g.loc[g["first.treat"] == 0, "rel"] = -1000
    w = compute_period_weights(g, cohort="first.treat", period="rel", treatment="treated").set_index(
        ["first.treat", "rel"]
    )["weight"]
    for r in cells.itertuples():
        assert r.weight == pytest.approx(w.loc[(int(r.cohort), int(r.event_time))], rel=1e-12)
    # event-time effect = weighted cell effects
    for t, est in zip(res.label, res.estimate):
        part = cells[cells["event_time"] == t]
        assert est == pytest.approx(float((part["weight"] * part["estimate"]).sum()), rel=1e-12)


def test_att_aggregate_and_equivalence_without_heterogeneity(mpdta):
    res = did.sun_abraham(mpdta)
    cells = res.cohort_effects
    post = cells[cells["event_time"] >= 0]
    assert res.att == pytest.approx(float((post["n_obs"] * post["estimate"]).sum() / post["n_obs"].sum()), rel=1e-12)
    assert res.att_se > 0 and res.overall == (res.att, res.att_se)
    # with a single treated cohort the saturated model is the dynamic TWFE event study
    one = mpdta.subset(
        units=[u for u, gg in zip(mpdta.units, mpdta.unit_cohort.to_numpy()) if not np.isfinite(gg) or gg == 4],
        reason="keep cohort 2007 and never",
    )
    np.testing.assert_allclose(did.sun_abraham(one).estimate, did.event_study(one).estimate, rtol=1e-10)
    assert res.pretest().df_num == 3
    assert res.plot().axes


def test_no_never_treated_uses_last_cohort(mpdta):
    treated = mpdta.subset(units=mpdta.treated_units, reason="treated only")
    res = did.sun_abraham(treated)
    assert any("last-treated" in reason for _, reason in res.spec.excluded)
    assert max(res.label) < 3  # cohort 2007's periods from 2007 on are dropped
    single = mpdta.subset(
        units=[u for u, gg in zip(mpdta.units, mpdta.unit_cohort.to_numpy()) if gg == 4], reason="one cohort"
    )
    with pytest.raises(DesignError):
        did.sun_abraham(single)


def test_always_treated_units_are_excluded(mpdta_frame):
    f = mpdta_frame.assign(**{"first.treat": mpdta_frame["first.treat"].replace(2004, 2003)})
    p = Panel.from_frame(f, unit="countyreal", time="year", outcome="lemp", cohort="first.treat")
    res = did.sun_abraham(p)
    assert any("always-treated" in reason for _, reason in res.spec.excluded)
    assert isinstance(res.cohort_effects, pd.DataFrame) and 2003 not in set(res.cohort_effects["cohort"])
