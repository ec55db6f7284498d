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


ROLES = {"unit": "State", "time": "Year", "outcome": "PacksPerCapita", "treated": "treated"}


def _scm_part_kkt(res):
    """KKT violation of the SCM part of an ASCM fit, recomputed here from the panel (V = I on the demeaned
    pre-period outcomes), relative to max|Q| + max|c|: the same number in any units."""
    design = res.extra["design"]
    pre1, prec = design.y_treated[: design.n_pre], design.y_donors.T[:, : design.n_pre]
    if res.extra["fixedeff"]:
        pre1, prec = pre1 - pre1.mean(), prec - prec.mean(axis=1, keepdims=True)
    centre = prec.mean(axis=0)
    xc, x1 = prec - centre, pre1 - centre
    q, c, w = xc @ xc.T, xc @ x1, res.extra["scm_weights"].to_numpy()
    g = q @ w - c
    supp = w > 0
    mu = -g[supp].mean()
    dual = np.maximum(-(g[~supp] + mu), 0).max() if (~supp).any() else 0.0
    return max(np.abs(g[supp] + mu).max(), dual) / (np.abs(q).max() + np.abs(c).max())


@pytest.mark.parametrize("fixedeff", [False, True])
@pytest.mark.parametrize(("factor", "shift"), [(1e4, 0.0), (1e-3, 0.0), (1.0, 5000.0), (30.0, 2000.0)])
def test_weights_and_estimate_follow_the_outcome_units(prop99_frame, factor, shift, fixedeff):
    # packs per capita times a factor plus a common shift (values in the thousands or millions): the same
    # weights and the estimate times the factor. Before the simplex solver worked at unit scale, x 100
    # moved the SCM part of the weights to a non-optimal point and the estimate from -19.5 to -22.9
    from decrimkit import Panel

    kw = {"treated": "California", "start": 1989, "fixedeff": fixedeff, "lambda_": 50.0}
    base = synth.augmented(Panel.from_frame(prop99_frame, **ROLES), **kw)
    frame = prop99_frame.assign(PacksPerCapita=prop99_frame["PacksPerCapita"] * factor + shift)
    res = synth.augmented(Panel.from_frame(frame, **ROLES), **{**kw, "lambda_": 50.0 * factor**2})
    assert _scm_part_kkt(res) < 1e-8 and _scm_part_kkt(base) < 1e-8  # rounding alone leaves ~1e-14
    np.testing.assert_allclose(res.extra["scm_weights"].to_numpy(), base.extra["scm_weights"].to_numpy(), atol=1e-7)
    np.testing.assert_allclose(res.weights.to_numpy(), base.weights.to_numpy(), atol=1e-7)
    assert res.estimate / factor == pytest.approx(base.estimate, rel=1e-7)


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
    # two pre-periods leave one held-out period: the one-SE rule is undefined (was a raw numpy ValueError)
    from decrimkit.errors import DesignError

    with pytest.raises(DesignError, match="at least 3 pre-periods"):
        synth.augmented(prop99, treated="California", start=1972)
    assert np.isfinite(synth.augmented(prop99, treated="California", start=1972, lambda_=1.0).estimate)


# ----------------------------------------------------------------------------- conformal average effect
def test_conformal_average_block_matches_joint_test(ascm):
    from decrimkit.estimators.synth import conformal_average

    # same refit (all periods, no effect imposed), same cyclic shifts: the p-value of theta_0 = 0 is the
    # joint p-value of conformal(), exactly
    avg = conformal_average(ascm, alpha=0.1, permutations="block", grid_size=11)
    assert avg.p_value == ascm.conformal(alpha=0.1, grid_size=5).p_value_joint
    assert avg.p_floor == pytest.approx(1 / 31)  # 31 periods, 31 shifts
    assert avg.estimate == pytest.approx(ascm.estimate, rel=1e-12)


def test_conformal_average_iid_exact_enumeration(prop99_frame):
    from itertools import combinations

    from decrimkit import Panel
    from decrimkit.estimators.synth import conformal_average

    df = prop99_frame.loc[prop99_frame["Year"].between(1980, 1992)]  # 9 pre + 4 post years: C(13, 4) = 715
    panel = Panel.from_frame(df, unit="State", time="Year", outcome="PacksPerCapita", treated="treated")
    res = synth.augmented(panel, treated="California", start=1989)
    avg = conformal_average(res, alpha=0.1, permutations="iid", grid_size=11)
    assert avg.p_floor == pytest.approx(1 / 715)
    p = avg.grid["p_value"].to_numpy()
    np.testing.assert_allclose(p * 715, np.round(p * 715), atol=1e-9)  # exact enumeration: multiples of 1/715
    # the p-value of no effect recomputed by hand from the all-period refit
    import jax.numpy as jnp

    from decrimkit.estimators.synth._ascm import aug_fit

    design = res.extra["design"]
    fit = aug_fit(jnp.asarray(design.y_treated), jnp.asarray(design.y_donors.T), jnp.ones(13, dtype=bool),
                  res.extra["lambda"], ridge=True, fixedeff=False)
    u = np.abs(np.asarray(fit.att))
    stats = np.array([u[list(c)].sum() for c in combinations(range(13), 4)])
    assert avg.p_value == pytest.approx(np.mean(u[9:].sum() <= stats + 1e-12 * stats), abs=1e-12)
    # the reported interval is the hull of the accepted grid values
    ok = avg.grid.loc[avg.grid["p_value"] >= 0.1, "null"]
    assert (avg.conf_low, avg.conf_high) == (ok.min(), ok.max())


def test_conformal_average_tracks_an_added_effect(prop99_frame):
    from decrimkit import Panel
    from decrimkit.estimators.synth import conformal_average

    # add a constant 40 packs per capita to California from 1989: the refits see the same data once the null
    # is shifted by 40, so the interval moves by 40, up to one grid step per end (each grid is rebuilt around
    # its own estimate). Plain SCM weights (progfunc="none"): a ridge refit with more donors than periods
    # can absorb any constant shift (its correction is linear in it), so far nulls are never rejected there.
    df = prop99_frame.copy()
    hit = (df["State"] == "California") & (df["Year"] >= 1989)
    df.loc[hit, "PacksPerCapita"] = df.loc[hit, "PacksPerCapita"] + 40.0
    kw = dict(unit="State", time="Year", outcome="PacksPerCapita", treated="treated")
    base = synth.augmented(Panel.from_frame(prop99_frame, **kw), treated="California", start=1989, progfunc="none")
    moved = synth.augmented(Panel.from_frame(df, **kw), treated="California", start=1989, progfunc="none")
    a = conformal_average(base, alpha=0.1, grid_size=11, n_perm=500, seed=1)
    b = conformal_average(moved, alpha=0.1, grid_size=11, n_perm=500, seed=1)
    assert b.estimate == pytest.approx(a.estimate + 40.0, abs=1e-6)
    assert np.isfinite([a.conf_low, a.conf_high, b.conf_low, b.conf_high]).all()
    step = lambda r: np.diff(np.sort(r.grid["null"].unique())).max()  # noqa: E731  coarsest grid step
    tol = step(a) + step(b)
    assert b.conf_low == pytest.approx(a.conf_low + 40.0, abs=tol)
    assert b.conf_high == pytest.approx(a.conf_high + 40.0, abs=tol)
    # seeded random assignments (C(31, 12) is too many to enumerate): same seed, same numbers
    again = conformal_average(moved, alpha=0.1, grid_size=11, n_perm=500, seed=1)
    assert (again.conf_low, again.conf_high, again.p_value) == (b.conf_low, b.conf_high, b.p_value)
    assert tuple(b.conf_int().iloc[0]) == (b.conf_low, b.conf_high)


def test_conformal_average_unattainable_level_and_errors(ascm):
    from decrimkit.estimators.synth import conformal_average

    # with 31 cyclic shifts no p-value falls below 1/31 > 0.02: nothing can be rejected at 2%
    avg = conformal_average(ascm, alpha=0.02, permutations="block", grid_size=11)
    assert (avg.conf_low, avg.conf_high) == (-np.inf, np.inf)
    with pytest.raises(SpecificationError):
        conformal_average(ascm, permutations="bootstrap")
    with pytest.raises(SpecificationError):
        conformal_average(ascm, alpha=1.5)


def test_cross_validated_lambda_follows_the_outcome_units(prop99_frame, ascm):
    # lambda chosen by cross-validation scales with the squared units; weights and estimate follow
    from decrimkit import Panel

    frame = prop99_frame.assign(PacksPerCapita=prop99_frame["PacksPerCapita"] * 100.0 + 1000.0)
    res = synth.augmented(Panel.from_frame(frame, **ROLES), treated="California", start=1989)
    assert res.extra["lambda"] == pytest.approx(ascm.extra["lambda"] * 1e4, rel=1e-7)
    np.testing.assert_allclose(res.weights.to_numpy(), ascm.weights.to_numpy(), atol=1e-7)
    assert res.estimate / 100.0 == pytest.approx(ascm.estimate, rel=1e-7)
