"""Augmented SCM (ridge) and conformal inference on Prop 99: internal identities and augsynth's rules."""

from __future__ import annotations

import numpy as np
import pytest

from decrimkit.errors import SpecificationError
from decrimkit.estimators import synth


@pytest.fixture(scope="module")
def ascm(prop99):
    return synth.augmented(prop99, treated="California", start=1989)


def test_ridge_weights_sum_to_one_and_improve_pre_fit(ascm, prop99):
    plain = synth.augmented(prop99, treated="California", start=1989, progfunc="none")
    assert ascm.weights.sum() == pytest.approx(1.0, abs=1e-10)
    assert (plain.weights >= 0).all() and plain.weights.sum() == pytest.approx(1.0, abs=1e-12)
    pre = lambda r: np.sqrt(np.mean(r.gap.loc[:1988].to_numpy() ** 2))  # noqa: E731
    assert pre(ascm) < pre(plain)
    # the SCM part of the ridge fit is the plain SCM
    np.testing.assert_allclose(ascm.extra["scm_weights"].to_numpy(), plain.weights.to_numpy(), atol=1e-9)
    # huge penalty: the ridge correction vanishes
    big = synth.augmented(prop99, treated="California", start=1989, lambda_=1e12)
    np.testing.assert_allclose(big.weights.to_numpy(), plain.weights.to_numpy(), atol=1e-6)


def test_cv_lambda_follows_one_se_rule(ascm):
    cv = ascm.extra["cv"]
    assert len(cv) == 21
    np.testing.assert_allclose(cv["lambda"].iloc[-1] / cv["lambda"].iloc[0], 1e-8, rtol=1e-10)
    best = cv["cv_error"].idxmin()
    ok = cv["cv_error"] <= cv["cv_error"].iloc[best] + cv["cv_se"].iloc[best]
    assert ascm.extra["lambda"] == cv.loc[ok, "lambda"].max()


def test_fixedeff_invariant_to_unit_shifts(prop99_frame):
    from decrimkit import Panel

    df = prop99_frame.copy()
    shift = df["State"].map({s: 10.0 * i for i, s in enumerate(sorted(df["State"].unique()))})
    a = Panel.from_frame(df, unit="State", time="Year", outcome="PacksPerCapita", treated="treated")
    b = Panel.from_frame(
        df.assign(PacksPerCapita=df["PacksPerCapita"] + shift),
        unit="State",
        time="Year",
        outcome="PacksPerCapita",
        treated="treated",
    )
    ra = synth.augmented(a, treated="California", start=1989, fixedeff=True, lambda_=50.0)
    rb = synth.augmented(b, treated="California", start=1989, fixedeff=True, lambda_=50.0)
    assert ra.estimate == pytest.approx(rb.estimate, abs=1e-6)


def test_conformal(ascm):
    conf = ascm.conformal(alpha=0.1, grid_size=20)
    table = conf.tidy()
    assert list(table["time"]) == list(range(1989, 2001))
    assert ((table["p_value"] >= 0) & (table["p_value"] <= 1)).all()
    # 20 residuals per test: p-values are multiples of 1/20
    np.testing.assert_allclose(table["p_value"] * 20, np.round(table["p_value"] * 20), atol=1e-9)
    assert (table["conf_low"] <= table["estimate"]).all() and (table["estimate"] <= table["conf_high"]).all()
    assert 0 < conf.p_value_joint <= 1


def test_errors(prop99):
    with pytest.raises(SpecificationError):
        synth.augmented(prop99, treated="California", start=1989, progfunc="lasso")
    with pytest.raises(SpecificationError):
        synth.augmented(prop99, treated="California", start=1989, lambda_=-1.0)
