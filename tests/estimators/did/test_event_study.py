"""Dynamic TWFE event study against pyfixest (coefficients, CR1 SEs, Wald pre-test)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from decrimkit import Panel
from decrimkit.errors import DesignError, SpecificationError
from decrimkit.estimators import did
from decrimkit.estimators.did._event_study import relative_time


def _pyfixest(frame: pd.DataFrame, keep: list[int], k_ours: int):
    """pyfixest fit on explicit event-time dummies (k_fixef='none'; SEs rescaled to our K, see test_twfe)."""
    import pyfixest as pf

    names = [f"e_{'m' if k < 0 else 'p'}{abs(k)}" for k in keep]
    f = frame.assign(**{n: (frame["ebin"] == k).astype(float) for n, k in zip(names, keep)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = pf.feols(
            f"y ~ {' + '.join(names)} | unit + time", data=f, vcov={"CRV1": "unit"}, ssc=pf.ssc(k_fixef="none")
        )
        n, k = m._N, m._k
        leads = [n_ for n_, kk in zip(names, keep) if kk < 0]
        r = np.zeros((len(leads), len(names)))
        for i, n_ in enumerate(leads):
            r[i, names.index(n_)] = 1.0
        wald = m.wald_test(R=r)
    return m.coef().to_numpy(), m.se().to_numpy() * np.sqrt((n - k) / (n - k_ours)), wald, (n - k) / (n - k_ours)


def test_event_study_matches_pyfixest(mpdta):
    es = did.event_study(mpdta)
    f = mpdta.frame.assign(ebin=np.nan_to_num(relative_time(mpdta), nan=-99))
    coef, se, wald, ratio = _pyfixest(f, list(es.label), k_ours=len(es.label) + mpdta.n_periods)
    np.testing.assert_allclose(es.estimate, coef, rtol=1e-6)
    np.testing.assert_allclose(es.se, se, rtol=1e-6)
    pre = es.pretest()
    # pyfixest reports the Wald statistic W with its own (K = k) variance, which is ours divided by `ratio`
    assert pre.chi2 == pytest.approx(float(wald["statistic"]) / ratio, rel=1e-6)
    assert pre.statistic == pytest.approx(pre.chi2 / 3, rel=1e-12)
    assert pre.df_num == 3 and pre.df_den == 499


def test_binned_endpoints_match_pyfixest(mpdta):
    es = did.event_study(mpdta, leads=2, lags=1)
    assert es.label == (-2, 0, 1) and es.binned == (-2, 1)
    e = relative_time(mpdta)
    ebin = np.clip(np.nan_to_num(e, nan=-99), -2, 1)
    ebin = np.where(np.isnan(e), -99, ebin)
    coef, se, _, _ = _pyfixest(mpdta.frame.assign(ebin=ebin), [-2, 0, 1], k_ours=3 + mpdta.n_periods)
    np.testing.assert_allclose(es.estimate, coef, rtol=1e-6)
    np.testing.assert_allclose(es.se, se, rtol=1e-6)


def test_band_plot_and_reproducibility(mpdta):
    es = did.event_study(mpdta, seed=3)
    assert es.crit > 1.96  # sup-t over 7 coefficients exceeds the pointwise value
    assert es.crit == did.event_study(mpdta, seed=3).crit
    band = es.conf_int(uniform=True).to_numpy()
    assert (band[:, 0] <= es.conf_int().to_numpy()[:, 0]).all()
    data = es.plot_data()
    assert -1 in data["event_time"].tolist() and data.loc[data["event_time"] == -1, "estimate"].item() == 0.0
    fig = es.plot()
    assert fig.axes and fig.axes[0].get_xlabel() == "periods since adoption"


def test_event_study_errors(mpdta, mpdta_frame):
    with pytest.raises(SpecificationError, match="reference"):
        did.event_study(mpdta, reference=0)
    with pytest.raises(SpecificationError, match="binned endpoint"):
        did.event_study(mpdta, leads=1)
    with pytest.raises(SpecificationError, match="leads"):
        did.event_study(mpdta, leads=-2)
    only_late = Panel.from_frame(
        mpdta_frame.assign(**{"first.treat": 2007}),
        unit="countyreal",
        time="year",
        outcome="lemp",
        cohort="first.treat",
    )
    with pytest.raises(DesignError, match="same time"):
        did.event_study(only_late)
    no_pre = mpdta.frame[["unit", "time", "y"]].assign(g=2003)
    no_pre.loc[no_pre["unit"] < 20000, "g"] = 0
    p = Panel.from_frame(no_pre, unit="unit", time="time", outcome="y", cohort="g")
    with pytest.raises(DesignError, match="reference event time"):
        did.event_study(p)
    with pytest.raises(DesignError, match="no lead"):
        _no_leads(mpdta)


def _no_leads(mpdta):
    es = did.event_study(mpdta)
    from dataclasses import replace

    return replace(es, label=(0, 1), estimate=es.estimate[3:5], se=es.se[3:5], vcov=es.vcov[3:5, 3:5]).pretest()
