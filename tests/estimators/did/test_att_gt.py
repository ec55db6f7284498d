"""Callaway-Sant'Anna ATT(g,t): R did reference values, csdid cross-checks, bootstrap, named errors.

Reference values: REFERENCES.md section 3 (R did 2.5.0 output stored by d2cml-ai/csdid@ca91c1f,
csdid/test_csdid/r_ref/ref_attgt.csv; README values V in bcallaway11/did@71ba8a5). Closed-form
results of the same algorithm are compared at rtol=1e-6; bootstrap numbers only loosely (25%),
because they depend on the random multipliers.
"""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from decrimkit import Panel
from decrimkit.datasets import load_dataset
from decrimkit.errors import DataError, DesignError, FewTreatedWarning, SpecificationError
from decrimkit.estimators import did

RTOL = 1e-6  # closed form, same algorithm as R did: only floating-point order differs

# (group, time, ATT, SE): R did, att_gt(lemp ~ 1, never treated, varying base, bstrap = FALSE)
MPDTA_ATT_GT = [
    (2004, 2004, -0.0105032462209624, 0.0232510363681664),
    (2004, 2005, -0.0704231581031467, 0.0309847667572767),
    (2004, 2006, -0.137258738889403, 0.0364356642876865),
    (2004, 2007, -0.100811363085404, 0.0343592258346732),
    (2006, 2004, 0.00652011242423301, 0.0233268051418047),
    (2006, 2005, -0.00275081875051882, 0.0195585610358817),
    (2006, 2006, -0.00459460695286304, 0.0177551966592763),
    (2006, 2007, -0.0412244715462175, 0.0202291807041068),
    (2007, 2004, 0.0305066555832928, 0.01503356028013),
    (2007, 2005, -0.00272589288611625, 0.0163958328955344),
    (2007, 2006, -0.0310871193896889, 0.0178775113133435),
    (2007, 2007, -0.0260544107191966, 0.0166554353492522),
]
# aggte(type, bstrap = FALSE): overall, SE, components
MPDTA_AGG = {
    "simple": (-0.0399512751551763, 0.0120340127701854, {}),
    "group": (-0.0310182822287484, 0.0124460593209979,
              {2004: -0.0797491265747291, 2006: -0.0229095392495403, 2007: -0.0260544107191966}),
    "dynamic": (-0.0772398214573151, 0.0199649890618494,
                {-3: 0.0305066555832928, -2: -0.000563084626385429, -1: -0.0244587449711696,
                 0: -0.0199318167892593, 1: -0.0509573670651939, 2: -0.137258738889403, 3: -0.100811363085404}),
    "calendar": (-0.0417004321312822, 0.01597185188456,
                 {2004: -0.0105032462209624, 2005: -0.0704231581031467, 2006: -0.0488159842650431,
                  2007: -0.0370593399359766}),
}
# "Other settings" rows (S): overall values of simple, group, dynamic, calendar; then W and p
NOTYET = (-0.0397636256230437, -0.030462228112565, -0.0773993139705847, -0.0442670834758837, 7.79092771882739, 0.16814)
REG_LPOP = (-0.0419686124215432, -0.0329292402290042, -0.0807817453337615, -0.0445323313531745, 6.8612749537136, 0.23116)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return load_dataset("mpdta")


@pytest.fixture(scope="module")
def panel(frame: pd.DataFrame) -> Panel:
    return Panel.from_frame(frame, unit="countyreal", time="year", outcome="lemp", cohort="first.treat",
                            covariates=["lpop"])


@pytest.fixture(scope="module")
def fit(panel: Panel) -> did.att_gt:
    return did.att_gt(panel, n_boot=999, seed=7)


def test_att_gt_cells_match_r_did(fit) -> None:
    att = fit.att
    assert list(zip(att["group"], att["time"])) == [(g, t) for g, t, _, _ in MPDTA_ATT_GT]
    np.testing.assert_allclose(att["estimate"], [r[2] for r in MPDTA_ATT_GT], rtol=RTOL)
    np.testing.assert_allclose(att["se"], [r[3] for r in MPDTA_ATT_GT], rtol=RTOL)


def test_wald_pretest_matches_r_did(fit) -> None:
    w, df, p = fit.pretest()
    assert w == pytest.approx(7.79123662720035, rel=RTOL)
    assert df == 5
    assert p == pytest.approx(0.16812, abs=5e-6)  # R prints p rounded to 5 digits


@pytest.mark.parametrize("kind", list(MPDTA_AGG))
def test_aggregations_match_r_did(fit, kind: str) -> None:
    overall, se, parts = MPDTA_AGG[kind]
    eff = fit.aggregate(kind)
    assert eff.overall[0] == pytest.approx(overall, rel=RTOL)
    assert eff.overall[1] == pytest.approx(se, rel=RTOL)
    for label, value in parts.items():
        assert eff[label] == pytest.approx(value, rel=RTOL)


def test_not_yet_treated_controls_match_r_did(panel) -> None:
    res = did.att_gt(panel, control="notyet", n_boot=0)
    got = [res.aggregate(k).overall[0] for k in ("simple", "group", "dynamic", "calendar")]
    np.testing.assert_allclose(got, NOTYET[:4], rtol=RTOL)
    assert res.estimate[0] == pytest.approx(-0.0193723636759221, rel=RTOL)
    w, _, p = res.pretest()
    assert w == pytest.approx(NOTYET[4], rel=RTOL)
    assert p == pytest.approx(NOTYET[5], abs=5e-6)


def test_outcome_regression_with_covariate_matches_r_did(panel) -> None:
    res = did.att_gt(panel, method="reg", covariates=("lpop",), n_boot=0)
    got = [res.aggregate(k).overall[0] for k in ("simple", "group", "dynamic", "calendar")]
    np.testing.assert_allclose(got, REG_LPOP[:4], rtol=RTOL)
    w, _, p = res.pretest()
    assert w == pytest.approx(REG_LPOP[4], rel=RTOL)
    assert p == pytest.approx(REG_LPOP[5], abs=5e-6)


def test_dr_ipw_reg_agree_without_covariates(panel, fit) -> None:
    # with an intercept only, all three 2x2 estimators reduce to the same difference in mean changes
    for method in ("ipw", "reg"):
        other = did.att_gt(panel, method=method, n_boot=0)
        np.testing.assert_allclose(other.estimate, fit.estimate, rtol=1e-10)
        np.testing.assert_allclose(other.se, fit.se, rtol=1e-8)


def test_bootstrap_is_close_to_r_did_readme(fit, panel) -> None:
    # README values (V) come from R's multiplier bootstrap: check within 25% (different random draws)
    dyn, grp = fit.aggregate("dynamic"), fit.aggregate("group")
    assert dyn.overall_boot_se == pytest.approx(0.0219, rel=0.25)
    assert grp.overall_boot_se == pytest.approx(0.0126, rel=0.25)
    bal = fit.aggregate("dynamic", balance_e=1)
    assert bal.overall[0] == pytest.approx(-0.0288, abs=5e-5)
    assert bal.overall_boot_se == pytest.approx(0.0135, rel=0.25)
    assert bal[0] == pytest.approx(-0.0066, abs=5e-5) and bal[1] == pytest.approx(-0.0510, abs=5e-5)
    # bootstrap SEs track the analytic ones; the sup-t band is wider than pointwise intervals
    np.testing.assert_allclose(fit.boot_se, fit.se, rtol=0.25)
    assert fit.crit > 1.96 and dyn.crit > 1.96
    band, point = dyn.conf_int(uniform=True).to_numpy(), dyn.conf_int().to_numpy()
    assert np.all(band[:, 0] < dyn.estimate) and np.all(band[:, 1] > dyn.estimate)
    assert np.mean(band[:, 1] - band[:, 0] > point[:, 1] - point[:, 0]) > 0.5
    again = did.att_gt(panel, n_boot=999, seed=7)
    np.testing.assert_array_equal(again.boot_se, fit.boot_se)
    assert again.aggregate("dynamic").crit == dyn.crit
    other = did.att_gt(panel, n_boot=999, seed=8, multipliers="rademacher")
    assert not np.array_equal(other.boot_se, fit.boot_se)
    np.testing.assert_allclose(other.boot_se, fit.se, rtol=0.25)


def _csdid(data: pd.DataFrame, **kw) -> tuple[np.ndarray, np.ndarray, dict]:
    from csdid.att_gt import ATTgt

    fit_kw = {k: kw.pop(k) for k in ("est_method", "base_period") if k in kw}
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # csdid warns about its own internals (e.g. dropped units)
        res = ATTgt(yname="lemp", gname="first.treat", idname="countyreal", tname="year", data=data, **kw)
        res.fit(bstrap=False, **fit_kw)
        res.aggte(typec="dynamic", bstrap=False)
    return np.asarray(res.results["att"], float), np.asarray(res.results["se"], float), res.atte


@pytest.mark.parametrize(("cs_kw", "ours"), [
    ({"xformla": "lemp~lpop", "est_method": "dr"}, {"covariates": ("lpop",)}),
    ({"xformla": "lemp~x", "est_method": "ipw", "control_group": "notyettreated", "weights_name": "w"},
     {"covariates": ("x",), "method": "ipw", "control": "notyet", "weights": "weight"}),
    ({"xformla": "lemp~lpop", "est_method": "reg", "base_period": "universal"},
     {"covariates": ("lpop",), "method": "reg", "base_period": "universal"}),
])
def test_matches_csdid(frame, cs_kw, ours) -> None:
    data = frame.copy()
    rng = np.random.default_rng(3)
    data["x"] = data["lpop"] + 0.3 * rng.standard_normal(len(data))  # time-varying: base-period values used
    data["w"] = np.exp(data["lpop"] - data["lpop"].mean())
    cs_att, cs_se, cs_dyn = _csdid(data, **cs_kw)
    panel = Panel.from_frame(data, unit="countyreal", time="year", outcome="lemp", cohort="first.treat",
                             covariates=["lpop", "x"], weights="w")
    if "weights" not in ours:
        ours = {**ours, "weights": None}
        panel = Panel.from_frame(data, unit="countyreal", time="year", outcome="lemp", cohort="first.treat",
                                 covariates=["lpop", "x"])
    res = did.att_gt(panel, n_boot=0, **ours)
    np.testing.assert_allclose(res.estimate, cs_att, rtol=RTOL, atol=1e-12)
    live = res.se > 0
    np.testing.assert_allclose(res.se[live], cs_se[live], rtol=RTOL)
    dyn = res.aggregate("dynamic")
    np.testing.assert_allclose(dyn.estimate, np.asarray(cs_dyn["att_egt"], float), rtol=RTOL, atol=1e-12)
    assert dyn.overall[0] == pytest.approx(cs_dyn["overall_att"], rel=RTOL)
    assert dyn.overall[1] == pytest.approx(cs_dyn["overall_se"], rel=RTOL)


def test_notyet_without_never_treated_matches_csdid(frame) -> None:
    # R did / csdid: drop periods from the last cohort's start, that cohort serves only as comparison
    data = frame[frame["first.treat"] > 0]
    cs_att, cs_se, _ = _csdid(data, control_group="notyettreated", est_method="dr")
    panel = Panel.from_frame(data, unit="countyreal", time="year", outcome="lemp", cohort="first.treat")
    res = did.att_gt(panel, control="notyet", n_boot=0)
    np.testing.assert_allclose(res.estimate, cs_att, rtol=RTOL)
    np.testing.assert_allclose(res.se, cs_se, rtol=RTOL)
    assert res.spec.excluded and "2007" in res.spec.excluded[0][1] and res.spec.excluded[0][0] == data["countyreal"].nunique()
    with pytest.raises(DesignError, match="never-treated"):
        did.att_gt(panel, control="never", n_boot=0)


def test_anticipation_matches_csdid(frame) -> None:
    data = frame[frame["first.treat"] != 2004]
    cs_att, cs_se, _ = _csdid(data, xformla="lemp~lpop", anticipation=1, control_group="notyettreated",
                              est_method="dr")
    panel = Panel.from_frame(data, unit="countyreal", time="year", outcome="lemp", cohort="first.treat",
                             covariates=["lpop"])
    res = did.att_gt(panel, covariates=("lpop",), anticipation=1, control="notyet", n_boot=0)
    np.testing.assert_allclose(res.estimate, cs_att, rtol=RTOL)
    np.testing.assert_allclose(res.se, cs_se, rtol=RTOL)


def test_invariances_and_no_mutation(frame, fit) -> None:
    before = frame.copy()
    shuffled = frame.sample(frac=1.0, random_state=1)
    shuffled = shuffled.assign(lemp=shuffled["lemp"] + 3.5)  # a constant shift leaves every ATT unchanged
    panel = Panel.from_frame(shuffled, unit="countyreal", time="year", outcome="lemp", cohort="first.treat")
    res = did.att_gt(panel, n_boot=0)
    np.testing.assert_allclose(res.estimate, fit.estimate, rtol=1e-9, atol=1e-12)
    pd.testing.assert_frame_equal(frame, before)
    with pytest.raises(ValueError):
        fit.influence[0, 0] = 1.0  # results are read-only


def test_result_vocabulary_and_plot(fit) -> None:
    import matplotlib.figure

    tidy = fit.tidy()
    assert {"group", "time", "estimate", "se", "conf_low", "conf_high", "band_low", "band_high"} <= set(tidy)
    assert "Callaway" in str(fit) and "2007" in fit._repr_html_()
    dyn = fit.aggregate("dynamic", min_e=-2, max_e=2)
    assert list(dyn.label) == [-2, -1, 0, 1, 2]
    assert "boot_se" in dyn.tidy() and "overall" in str(dyn)
    assert isinstance(fit.plot(), matplotlib.figure.Figure)
    assert isinstance(dyn.plot(), matplotlib.figure.Figure)
    assert fit.influence.shape == (500, 12) and fit.spec.seed == 7


# ----------------------------------------------------------------------------- named errors
def _toy(n_units: int = 40, cohorts=(0, 3, 4), periods: int = 5, seed: int = 0, **cols) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    unit = np.repeat(np.arange(n_units), periods)
    time = np.tile(np.arange(1, periods + 1), n_units)
    first = np.asarray(cohorts)[np.arange(n_units) % len(cohorts)][unit]
    y = rng.standard_normal(n_units * periods) + 0.1 * time
    frame = pd.DataFrame({"id": unit, "year": time, "y": y, "first": first,
                          "z": rng.standard_normal(n_units)[unit]})
    return frame.assign(**{k: v(frame) for k, v in cols.items()})


def _panel(frame: pd.DataFrame, covariates=("z",), **kw) -> Panel:
    return Panel.from_frame(frame, unit="id", time="year", outcome="y", cohort="first", covariates=list(covariates), **kw)


def test_error_no_comparison_units() -> None:
    with pytest.raises(DesignError, match="never-treated"):
        did.att_gt(_panel(_toy(cohorts=(3, 4))), n_boot=0)
    with pytest.raises(DesignError, match="no comparison"):
        did.att_gt(_panel(_toy(cohorts=(3,))), control="notyet", n_boot=0)


def test_error_cohort_treated_in_first_period() -> None:
    with pytest.raises(DesignError, match="first period"):
        did.att_gt(_panel(_toy(cohorts=(0, 1, 3))), n_boot=0)


def test_error_anticipation_longer_than_pre_period() -> None:
    with pytest.raises(DesignError, match="anticipation=2"):
        did.att_gt(_panel(_toy(cohorts=(0, 3, 4))), anticipation=2, n_boot=0)


def test_covariate_rules() -> None:
    # time-invariant covariates are fine (R did uses them at the base period)
    assert np.isfinite(did.att_gt(_panel(_toy()), covariates=("z",), n_boot=0).estimate).all()
    # a covariate with no variation across units is collinear with the intercept
    const = _toy(c=lambda f: np.ones(len(f)))
    with pytest.raises(SpecificationError, match="'c' takes one value"):
        did.att_gt(_panel(const, covariates=("z", "c")), covariates=("z", "c"), n_boot=0)
    # perfectly collinear covariates
    coll = _toy(z2=lambda f: 2 * f["z"] + 1)
    with pytest.raises(SpecificationError, match="collinear"):
        did.att_gt(_panel(coll, covariates=("z", "z2")), covariates=("z", "z2"), method="ipw", n_boot=0)
    with pytest.raises(SpecificationError, match="declare it"):
        did.att_gt(_panel(_toy(), covariates=()), covariates=("z",), n_boot=0)


def test_error_propensity_score_without_overlap() -> None:
    # a covariate that separates the cohort-3 units from the never-treated units: the logit diverges
    sep = _toy(s=lambda f: np.where(f["first"] == 3, 5.0, 0.0) + 0.01 * f["z"])
    with pytest.raises(DesignError, match="overlap"):
        did.att_gt(_panel(sep, covariates=("s",)), covariates=("s",), n_boot=0)
    # outcome regression needs no propensity score
    assert np.isfinite(did.att_gt(_panel(sep, covariates=("s",)), covariates=("s",), method="reg", n_boot=0).estimate).all()


def test_error_bad_options_and_data() -> None:
    p = _panel(_toy())
    with pytest.raises(SpecificationError, match="control"):
        did.att_gt(p, control="later")
    with pytest.raises(SpecificationError, match="n_boot"):
        did.att_gt(p, n_boot=1)
    with pytest.raises(SpecificationError, match="kind"):
        did.att_gt(p, n_boot=0).aggregate("weird")
    unbalanced = _toy().iloc[1:]
    with pytest.raises(DesignError, match="balanced"):
        did.att_gt(_panel(unbalanced), n_boot=0)
    varying = _toy(w=lambda f: 1.0 + f["year"])
    with pytest.raises(DataError, match="varies over time"):
        did.att_gt(_panel(varying, weights="w"), n_boot=0)


@settings(max_examples=12)
@given(st.lists(st.floats(-5, 5), min_size=40, max_size=40), st.lists(st.floats(-5, 5), min_size=5, max_size=5))
def test_att_unchanged_by_unit_and_period_shifts(unit_shift, period_shift) -> None:
    # property: adding alpha_i + lambda_t to the outcome leaves every ATT(g,t) unchanged
    frame = _toy()
    base = did.att_gt(_panel(frame), n_boot=0).estimate
    shifted = frame.assign(y=frame["y"] + np.asarray(unit_shift)[frame["id"]] + np.asarray(period_shift)[frame["year"] - 1])
    np.testing.assert_allclose(did.att_gt(_panel(shifted), n_boot=0).estimate, base, rtol=1e-9, atol=1e-9)


def test_pretest_refuses_more_cells_than_units() -> None:
    """With at least as many pre-treatment cells as units the cells' covariance (from mean-zero unit influence
    functions) has rank below the cell count: W is not defined, whatever rounding does to the condition
    number. 8 units, 12 periods, cohorts 7 and 9: 5 + 7 = 12 pre-treatment cells (varying base)."""
    rng = np.random.default_rng(3)
    cohort = {0: 7, 1: 7, 2: 9, 3: 9, 4: 0, 5: 0, 6: 0, 7: 0}
    rows = [{"unit": u, "t": t, "y": rng.normal() + 0.1 * t, "g": g} for u, g in cohort.items() for t in range(1, 13)]
    panel = Panel.from_frame(pd.DataFrame(rows), unit="unit", time="t", outcome="y", cohort="g")
    with pytest.warns(FewTreatedWarning):  # four treated units
        res = did.att_gt(panel, control="never", n_boot=0)
    n_pre = int(np.sum(res.design.gpos > res.design.tpos))
    assert n_pre >= 8
    with pytest.raises(DesignError, match=rf"would test {n_pre} pre-treatment ATT\(g,t\) cells with 8 units"):
        res.pretest()
