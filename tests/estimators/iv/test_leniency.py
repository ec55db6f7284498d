"""iv.leniency: the examiner design against linearmodels, the simulator's truth, and bad input."""

from __future__ import annotations

import matplotlib.figure
import numpy as np
import pandas as pd
import pytest
from linearmodels.iv import IV2SLS

from decrimkit.errors import DataError, DesignError, SpecificationError, WeakInstrumentWarning
from decrimkit.estimators import iv
from decrimkit.estimators.iv._leniency import fit_core
from decrimkit.estimators.iv.design import demean, jackknife_fe_iv, leniency_design
from decrimkit.studies.suffolk import SuffolkConfig, simulate

DESIGN = {"decision": "not_prosecuted", "assignee": "ada", "strata": ("court", "month")}
COVS = ("age", "male", "prior_complaints")
# A small design: 4 courts x 24 months = 96 strata, 24 ADAs with about 170 cases each.
SMALL = SuffolkConfig(
    start="2015-01", end="2016-12", n_courts=4, court_shares=(0.25,) * 4, adas_per_court=6, adas_per_session=3
)


@pytest.fixture(scope="module")
def small() -> pd.DataFrame:
    return simulate(n_cases=4000, seed=11, config=SMALL).cases


@pytest.fixture(scope="module")
def full():
    return simulate(seed=0)


def _brute_force_leniency(cases: pd.DataFrame) -> np.ndarray:
    """The definition, case by case: mean over the ADA's other cases of D minus its stratum mean,
    where case i is also left out of every stratum mean."""
    d = cases["not_prosecuted"].to_numpy()
    stratum = pd.factorize(cases["court"].astype(str) + "|" + cases["month"].astype(str))[0]
    ada = cases["ada"].to_numpy()
    z = np.empty(len(d))
    for i in range(len(d)):
        keep = np.arange(len(d)) != i
        sums = np.bincount(stratum[keep], d[keep], minlength=stratum.max() + 1)  # stratum sums without case i
        counts = np.bincount(stratum[keep], minlength=stratum.max() + 1)
        others = np.flatnonzero((ada == ada[i]) & keep)
        z[i] = np.mean(d[others] - sums[stratum[others]] / counts[stratum[others]])
    return z


def test_leave_out_leniency_matches_its_definition(small):
    sub = small[small["court"].eq("C1")].reset_index(drop=True)
    design = leniency_design(sub, outcome="any_new_complaint", min_cases=10, **DESIGN)
    expected = _brute_force_leniency(sub.iloc[design.row_index])
    np.testing.assert_allclose(design.z, expected, rtol=0, atol=1e-12)  # same arithmetic, summed differently


def test_2sls_equals_linearmodels_with_strata_dummies(small):
    """Coefficient and CR1 clustered SE equal IV2SLS on the full dummy-variable design matrix to 1e-8."""
    sub = small[small["court"].isin(["C1", "C2"])]  # 48 strata: keeps the dense dummy design small
    res = iv.leniency(sub, outcome="any_new_complaint", covariates=COVS, vcov="cr1", **DESIGN)
    design = leniency_design(sub, outcome="any_new_complaint", covariates=COVS, **DESIGN)
    cases = sub.iloc[design.row_index]
    dummies = pd.get_dummies(cases["court"].astype(str) + "|" + cases["month"].astype(str), dtype=float).to_numpy()
    exog = np.column_stack([dummies, cases[list(COVS)].to_numpy(dtype=float)])
    d = cases["not_prosecuted"].to_numpy(dtype=float)
    y = cases["any_new_complaint"].to_numpy(dtype=float)
    clusters = pd.factorize(cases["ada"])[0]
    fit = dict(cov_type="clustered", clusters=clusters, debiased=True)
    late = IV2SLS(y, exog, d, design.z).fit(**fit)
    mu0 = IV2SLS(y * (1 - d), exog, 1 - d, design.z).fit(**fit)
    first = IV2SLS(d, np.column_stack([design.z, exog]), None, None).fit(**fit)
    tidy = res.tidy().set_index("term")
    # tolerance 1e-8: the same estimator, with strata absorbed by demeaning instead of dummies
    assert res.estimate == pytest.approx(late.params.iloc[-1], rel=1e-8)
    assert res.se == pytest.approx(late.std_errors.iloc[-1], rel=1e-8)
    assert tidy.loc["complier_mean_untreated", "estimate"] == pytest.approx(mu0.params.iloc[-1], rel=1e-8)
    assert tidy.loc["complier_mean_untreated", "se"] == pytest.approx(mu0.std_errors.iloc[-1], rel=1e-8)
    assert tidy.loc["first_stage", "estimate"] == pytest.approx(first.params.iloc[0], rel=1e-8)
    assert tidy.loc["first_stage", "se"] == pytest.approx(first.std_errors.iloc[0], rel=1e-8)
    assert res.effective_f == pytest.approx((first.params.iloc[0] / first.std_errors.iloc[0]) ** 2, rel=1e-8)
    # the relative effect is the ratio of the two 2SLS coefficients
    assert res.relative == pytest.approx(late.params.iloc[-1] / mu0.params.iloc[-1], rel=1e-8)


def test_numpy_engine_equals_linearmodels_engine(small):
    design = leniency_design(small, outcome="n_new_complaints", covariates=COVS, **DESIGN)
    for vcov in ("cr1", "jackknife"):
        a = fit_core(design, vcov=vcov, engine="linearmodels")
        b = fit_core(design, vcov=vcov, engine="numpy")
        np.testing.assert_allclose(a.estimate, b.estimate, rtol=1e-8)
        np.testing.assert_allclose(a.se, b.se, rtol=1e-8)


def test_jackknife_deletions_equal_refits_without_the_cluster(small):
    """The bincount deletion formula equals re-running 2SLS with strata FE on the sample without ADA g."""
    design = leniency_design(small, outcome="any_new_complaint", **DESIGN)
    beta, deleted = jackknife_fe_iv(
        design.y, design.d, design.z, design.stratum, design.n_strata, design.cluster, design.n_clusters
    )
    for g in (0, 7, design.n_clusters - 1):
        keep = design.cluster != g
        s, labels = pd.factorize(design.stratum[keep])
        zt = demean(design.z[keep], s, len(labels))
        refit = (zt @ demean(design.y[keep], s, len(labels))) / (zt @ demean(design.d[keep], s, len(labels)))
        assert deleted[g] == pytest.approx(refit, rel=1e-10)  # same sums, accumulated in another order
    res = iv.leniency(small, outcome="any_new_complaint", **DESIGN)
    G = design.n_clusters
    assert res.estimate == pytest.approx(beta, rel=1e-10)
    assert res.se == pytest.approx(np.sqrt((G - 1) / G * np.sum((deleted - beta) ** 2)), rel=1e-10)


def test_full_size_estimates_within_two_se_of_truth(full):
    """Acceptance: at N = 67,553 the 2SLS LATE and relative effect are within 2 SEs of the simulator's truth."""
    cases, truth = full.cases, full.truth
    for outcome, key in (("any_new_complaint", "any"), ("n_new_complaints", "count")):
        res = iv.leniency(cases, outcome=outcome, covariates=COVS, **DESIGN)
        assert abs(res.estimate - truth[f"late_{key}"]) < 2 * res.se
        assert abs(res.relative - truth[f"relative_{key}"]) < 2 * res.relative_se
        assert res.n_cases == len(cases) - sum(n for n, _ in res.spec.excluded)
        assert res.effective_f > 100  # the simulated ADAs differ a lot; F is in the thousands


def test_diagnostics_on_a_valid_design(small):
    before = small.copy()
    res = iv.leniency(
        small, outcome="any_new_complaint", covariates=COVS, subgroups=("male", "listed_charge"), **DESIGN
    )
    pd.testing.assert_frame_equal(small, before)  # the caller's frame is untouched
    assert list(res.balance["term"]) == [*COVS, "predicted outcome index"]
    f, p, d1, d2 = res.balance_joint
    assert d1 == len(COVS) and d2 == res.n_assignees - 1 and 0 <= p <= 1
    mono = res.monotonicity
    assert len(mono) == 4 and set(mono["subgroup"]) == {"male", "listed_charge"}
    assert res.monotonicity_ok  # threshold model: monotone by construction
    assert (mono["reverse_first_stage"] > 0).all()


def test_complier_means_of_complementary_dummies_sum_to_one(small):
    cases = small.assign(female=1.0 - small["male"])
    male = iv.leniency(cases, outcome="any_new_complaint", covariates=("male", "age"), **DESIGN)
    female = iv.leniency(cases, outcome="any_new_complaint", covariates=("female",), **DESIGN)
    c_m = male.compliers.set_index("covariate")["complier_mean"]["male"]
    c_f = female.compliers.set_index("covariate")["complier_mean"]["female"]
    # 2SLS of X*D and (1-X)*D on D sum to 2SLS of D on D, which is exactly 1
    assert c_m + c_f == pytest.approx(1.0, abs=1e-10)
    assert 0 < c_m < 1


def test_result_vocabulary_and_plots(small):
    res = iv.leniency(small, outcome="n_new_complaints", covariates=COVS, subgroups=("male",), **DESIGN)
    lo, hi = res.conf_int().loc["late"]
    assert lo < res.estimate < hi
    assert hi - lo == pytest.approx(2 * 1.959963984540054 * res.se)
    tidy = res.tidy()
    assert list(tidy["term"]) == [
        "first_stage",
        "reduced_form",
        "ols",
        "late",
        "complier_mean_untreated",
        "relative_effect",
    ]
    assert np.isfinite(tidy[["estimate", "se"]].to_numpy()).all()
    # the reduced form is the first stage times the LATE (just-identified 2SLS, same controls)
    t = tidy.set_index("term")["estimate"]
    assert t["reduced_form"] == pytest.approx(t["first_stage"] * t["late"], rel=1e-10)
    text = str(res)
    assert "effective F" in text and "monotonicity" in text
    assert "<div>" in res._repr_html_()
    bins = res.plot_data("first_stage")
    assert bins["n_cases"].sum() == res.n_cases
    for kind in ("first_stage", "relative", "balance", "monotonicity"):
        assert isinstance(res.plot(kind), matplotlib.figure.Figure)
    with pytest.raises(SpecificationError, match="kind"):
        res.plot_data("histogram")


def test_single_assignee_strata_are_dropped_and_recorded(small):
    cases = small.copy()
    first = cases["court"].eq("C1") & cases["month"].eq(cases["month"].min())
    cases.loc[first, "ada"] = cases.loc[first, "ada"].iloc[0]  # one ADA serves that whole stratum
    res = iv.leniency(cases, outcome="any_new_complaint", **DESIGN)
    assert res.spec.excluded == ((int(first.sum()), "cases in 1 strata served by a single ada"),)
    assert res.n_cases == len(cases) - int(first.sum())


def test_too_few_cases_per_assignee(small):
    with pytest.raises(DesignError, match="fewer than min_cases=500"):
        iv.leniency(small, outcome="any_new_complaint", min_cases=500, **DESIGN)
    with pytest.raises(SpecificationError, match="min_cases"):
        iv.leniency(small, outcome="any_new_complaint", min_cases=1, **DESIGN)


def test_assignee_seen_in_one_stratum(small):
    cases = small.copy()
    block = cases.index[cases["court"].eq("C1") & cases["month"].eq(cases["month"].min())]
    extra = cases.loc[block].copy()
    extra = pd.concat([extra] * 10, ignore_index=True)  # 60+ cases, all in one stratum
    extra["ada"] = "ADA_NEW"
    with pytest.raises(DesignError, match="only one stratum"):
        iv.leniency(pd.concat([cases, extra], ignore_index=True), outcome="any_new_complaint", **DESIGN)


def test_no_variation_in_decision(small):
    with pytest.raises(DesignError, match="no variation"):
        iv.leniency(small.assign(not_prosecuted=0.0), outcome="any_new_complaint", **DESIGN)


def test_weak_instrument_warns_and_strict_refuses(small):
    # Shuffle decisions within strata: assignees no longer differ, so the first stage is pure noise.
    rng = np.random.default_rng(5)
    cases = small.copy()
    cases["not_prosecuted"] = cases.groupby(["court", "month"], observed=True)["not_prosecuted"].transform(
        lambda s: rng.permutation(s.to_numpy())
    )
    with pytest.warns(WeakInstrumentWarning, match="effective first-stage F"):
        res = iv.leniency(cases, outcome="any_new_complaint", **DESIGN)
    assert res.effective_f < 23.109
    assert any("weak instrument" in n for n in res.spec.notes)
    with pytest.raises(DesignError, match="weak instrument"):
        iv.leniency(cases, outcome="any_new_complaint", strict=True, **DESIGN)


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        (lambda c: c.drop(columns="ada"), DataError, "given as assignee"),
        (lambda c: c.assign(not_prosecuted=c["not_prosecuted"] * 2), DataError, "must be 0/1"),
        (lambda c: c.assign(age=np.where(np.arange(len(c)) == 3, np.nan, c["age"])), DataError, "missing values"),
        (lambda c: c.assign(age=c["age"].astype(str)), DataError, "must be numeric"),
    ],
)
def test_bad_input_is_named(small, change, error, match):
    with pytest.raises(error, match=match):
        iv.leniency(change(small), outcome="any_new_complaint", covariates=("age",), **DESIGN)


def test_subgroups_are_checked(small):
    with pytest.raises(SpecificationError, match="levels"):
        iv.leniency(small, outcome="any_new_complaint", subgroups=("age",), **DESIGN)
