"""Gardner two-stage DiD: GMM standard errors against diff-diff and pyfixest's did2s."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from decrimkit import Panel
from decrimkit.datasets import load_dataset
from decrimkit.estimators import did

RTOL = 1e-6  # same closed-form GMM sandwich


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    # cohort 2004 has a single untreated year: pyfixest drops such singleton units in its first stage
    # (and then fails), so the cross-checks use the 2006 and 2007 cohorts and the never treated
    data = load_dataset("mpdta")
    return data[data["first.treat"] != 2004].reset_index(drop=True)


@pytest.fixture(scope="module")
def result(frame: pd.DataFrame):
    panel = Panel.from_frame(frame, unit="countyreal", time="year", outcome="lemp", cohort="first.treat")
    return did.two_stage(panel)


def test_two_stage_matches_diff_diff(result, frame) -> None:
    from diff_diff import TwoStageDiD

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # diff-diff's own deprecation notices
        fit = TwoStageDiD().fit(frame, outcome="lemp", unit="countyreal", time="year", first_treat="first.treat")
        es = fit.aggregate("event_study")
    post = es.event_time >= 0
    np.testing.assert_allclose(result.estimate, es.att[post], rtol=RTOL)
    np.testing.assert_allclose(result.se, es.se[post], rtol=RTOL)
    assert result.overall[0] == pytest.approx(fit.overall_att, rel=RTOL)
    assert result.overall[1] == pytest.approx(fit.overall_se, rel=RTOL)


def test_two_stage_matches_pyfixest_did2s(result, frame) -> None:
    import pyfixest as pf

    data = frame.assign(treat=(frame["year"] >= frame["first.treat"]) & (frame["first.treat"] > 0))
    data["rel"] = np.where(data["treat"], data["year"] - data["first.treat"], -1000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dyn = pf.did2s(
            data,
            yname="lemp",
            first_stage="~ 0 | countyreal + year",
            second_stage="~ i(rel, ref=-1000)",
            treatment="treat",
            cluster="countyreal",
        ).tidy()
        static = pf.did2s(
            data,
            yname="lemp",
            first_stage="~ 0 | countyreal + year",
            second_stage="~ treat",
            treatment="treat",
            cluster="countyreal",
        ).tidy()
    # pyfixest recovers the first-stage fixed effects iteratively and stops early: its points sit about
    # 1e-4 (relative) from the exact least-squares solution that ours and diff-diff's agree on to 1e-9;
    # its GMM sandwich agrees to the printed precision of that solution
    np.testing.assert_allclose(result.estimate, dyn["Estimate"].to_numpy(), rtol=5e-4)
    np.testing.assert_allclose(result.se, dyn["Std. Error"].to_numpy(), rtol=1e-4)
    assert result.overall[0] == pytest.approx(static["Estimate"].iloc[0], rel=5e-4)
    assert result.overall[1] == pytest.approx(static["Std. Error"].iloc[0], rel=1e-4)


def test_two_stage_vcov_and_clusters(result, frame) -> None:
    np.testing.assert_allclose(np.sqrt(np.diag(result.vcov)), result.se, rtol=1e-12)
    panel = Panel.from_frame(
        frame.assign(state=frame["countyreal"] // 1000),
        unit="countyreal",
        time="year",
        outcome="lemp",
        cohort="first.treat",
        covariates=["state"],
    )  # carried along for clustering
    by_state = did.two_stage(panel, cluster="state")
    np.testing.assert_allclose(by_state.estimate, result.estimate, rtol=1e-12)  # clustering changes SEs only
    assert not np.allclose(by_state.se, result.se)
    assert result.spec.options["cluster"] is None and by_state.spec.options["cluster"] == "state"


def test_gmm_variance_is_bjs_variance_centred_by_horizon(result, frame) -> None:
    # the GMM sandwich equals BJS's sum_c (sum v e)^2 when treated residuals are centred at horizon
    # means (one auxiliary cell per event time) instead of cohort x event-time means
    from decrimkit.estimators.did._event_result import horizon_weights
    from decrimkit.estimators.did._first_stage import first_stage
    from decrimkit.estimators.did._imputation import imputation_variance

    panel = Panel.from_frame(frame, unit="countyreal", time="year", outcome="lemp", cohort="first.treat")
    fs = first_stage(panel, covariates=(), anticipation=0, weights=None, cluster=None)
    _, wmat = horizon_weights(fs, None, 0)
    by_horizon = imputation_variance(fs, wmat[:, :-1], np.zeros(panel.n_obs), leave_out=False)
    np.testing.assert_allclose(by_horizon, result.se, rtol=1e-9)
    by_cell = did.imputation(panel).se
    assert not np.allclose(by_cell, result.se, rtol=1e-6)
