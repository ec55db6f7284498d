"""Tests of the Baltimore study: its pieces on synthetic and bundled data, then one ``--quick`` run end to end."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.tools.sm_exceptions import PerfectSeparationWarning

import study_runs
from decrimkit.errors import DesignError, SpecificationError
from decrimkit.studies.baltimore import data, models

pytestmark = pytest.mark.xdist_group("studies")


# ---------------------------------------------------------------------------- charge rule
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("CDS POSS", "possession"),
        ("CDS:POSSESS-NOT MARIJUANA", "possession"),
        ("POSSESION OF CDS NOT MARIJUNA", "possession"),
        ("CDS PARAPHERNALIA", "possession"),
        ("CDS POSS W/INT TO DIST", "distribution"),
        ("CDS:POSS W/INTENT DIST: NARC", "distribution"),
        ("CDS PWID", "distribution"),
        ("CDS DISTRIBUTION", "distribution"),
        ("HGV/CDS", "distribution"),
        ("CDS POSSESS - LG AMT", "distribution"),
        ("CDS", "unspecified"),
        ("CDS VIOLATION", "unspecified"),
        ("2ND DEG ASSAULT", "other"),
        (float("nan"), "other"),
    ],
)
def test_classify_cds_charge(text, expected):
    assert data.classify_cds_charge(text) == expected


def test_composition_counts_add_up_on_bundled_microdata():
    micro = data.microdata()
    # exact duplicate rows are removed and counted, never silently dropped
    assert len(micro.frame) + micro.n_duplicates == micro.n_raw
    comp = data.possession_composition(micro)
    rule = data.charge_rule_counts(micro).set_index("class")["arrests"]
    totals = comp.groupby("definition", sort=False)["arrests"].sum()
    assert totals["possession (explicit)"] == rule["possession"]
    assert totals["all CDS charges"] == rule.sum()
    cds = micro.frame["ChargeDescription"].astype("object").fillna("").str.upper().str.contains("CDS")
    assert totals["all CDS charges"] == int(cds.sum())  # the "CDS" rule of the monthly series
    for _, sub in comp.groupby("definition"):
        assert sub["share"].sum() == pytest.approx(1.0, abs=1e-12)


def test_monthly_series_shape():
    frame = data.monthly_series()
    assert len(frame) == 60
    assert str(frame["month"].iloc[0]) == "2018-01" and str(frame["month"].iloc[-1]) == "2022-12"
    assert (frame[["drug", "handgun"]].to_numpy() > 0).all()


# ---------------------------------------------------------------------------- ITS models
def _synthetic(level: float = np.log(0.4), slope: float = -0.1) -> tuple[pd.DataFrame, float]:
    """Noise-free means from the comparative-ITS model itself, and the true number averted."""
    months = pd.period_range("2018-01", "2022-12", freq="M")
    rel = np.asarray([(m - pd.Period("2020-04", "M")).n for m in months], float) / 12
    post = rel >= 0
    season = 0.1 * np.sin(2 * np.pi * np.asarray(months.month) / 12)
    shared = 0.2 * post + 0.05 * post * rel
    gun = np.exp(np.log(80) + 0.02 * rel + season + shared)
    cf = np.exp(np.log(250) - 0.2 * rel + season + shared)
    drug = cf * np.exp(post * (level + slope * rel))
    frame = pd.DataFrame({"month": months, "drug": drug, "handgun": gun})
    return frame, float((cf - drug)[post].sum())


def test_comparative_its_recovers_known_effect():
    frame, truth = _synthetic()
    with pytest.warns(PerfectSeparationWarning):  # statsmodels notices the noise-free fit, as it should
        fit = models.fit_its(frame, start="2020-04", covid="none", n_sim=200, seed=1)
    # the mean model is correctly specified and noise-free: the point estimate is exact up to IRLS tolerance
    assert fit.point_averted == pytest.approx(truth, rel=1e-6)
    lo, hi = np.quantile(fit.averted, [0.025, 0.975])
    assert lo <= fit.point_averted <= hi


def test_its_draws_repeat_with_seed():
    frame = data.monthly_series()
    a = models.fit_its(frame, start="2020-04", n_sim=300, seed=5)
    b = models.fit_its(frame, start="2020-04", n_sim=300, seed=5)
    c = models.fit_its(frame, start="2020-04", n_sim=300, seed=6)
    np.testing.assert_array_equal(a.averted, b.averted)
    assert not np.array_equal(a.averted, c.averted)


def test_covid_exclusion_drops_months_and_records_them():
    frame = data.monthly_series()
    fit = models.fit_its(frame, start="2020-04", covid="exclude", window=("2020-07", "2022-12"), n_sim=100)
    assert fit.n_obs == 120 - 8  # 4 months x 2 series
    assert fit.window.sum() == 30
    assert "COVID" in fit.excluded[0]


def test_its_rejects_bad_options():
    frame = data.monthly_series()
    with pytest.raises(SpecificationError, match="season"):
        models.fit_its(frame, start="2020-04", season="weekly")
    with pytest.raises(DesignError, match="months before"):
        models.fit_its(frame, start="2018-04")


def test_pretrend_matches_direct_glm():
    """The pre-trend contrast is the drug x trend interaction of a stacked Poisson GLM (point estimate)."""
    frame = data.monthly_series()
    est, se, n = models.pretrend(frame, season="none")
    pre = frame.loc[pd.PeriodIndex(frame["month"]) <= pd.Period("2020-02", "M")]
    t = np.arange(len(pre)) / 12
    y = np.concatenate([pre["drug"], pre["handgun"]])
    drug = np.repeat([1.0, 0.0], len(pre))
    x = np.column_stack([drug, 1 - drug, np.tile(t, 2), drug * np.tile(t, 2)])
    direct = sm.GLM(y, x, family=sm.families.Poisson()).fit()
    assert est == pytest.approx(direct.params[3], rel=1e-6)
    assert n == 2 * len(pre) and se > 0


def test_poisson_did_matches_statsmodels_glm():
    """did.poisson's rate ratio equals a Poisson GLM with series and month dummies (same estimator, 1e-6)."""
    from decrimkit.studies.baltimore import alternatives

    frame = data.monthly_series()
    row = alternatives.poisson_did(frame, start="2020-04")
    months = pd.PeriodIndex(frame["month"])
    long = pd.DataFrame(
        {
            "y": np.concatenate([frame["drug"], frame["handgun"]]),
            "drug": np.repeat([1.0, 0.0], len(frame)),
            "month": np.concatenate([months.astype(str)] * 2),
        }
    )
    long["d"] = long["drug"] * np.concatenate([np.asarray(months >= pd.Period("2020-04", "M"))] * 2)
    x = pd.get_dummies(long["month"], drop_first=True, dtype=float).assign(drug=long["drug"], d=long["d"])
    ref = sm.GLM(long["y"], sm.add_constant(x), family=sm.families.Poisson()).fit(tol=1e-12)
    assert math.log(row["rate_ratio"]) == pytest.approx(ref.params["d"], rel=1e-6)


def test_implied_by_race_splits_the_total():
    averted = np.linspace(100, 300, 1000)
    out = models.implied_by_race(averted, 200.0, pd.Series([75, 25], index=["Black", "other"]), seed=0)
    assert out["averted"].sum() == pytest.approx(200.0)
    assert out.loc[0, "averted"] == pytest.approx(150.0)
    assert (out["averted_low"] < out["averted"]).all() and (out["averted"] < out["averted_high"]).all()


# ---------------------------------------------------------------------------- the study, end to end
@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="PyTensor could not link to a BLAS installation", category=UserWarning
        )
        return study_runs.quick_run("baltimore", 0, study_runs.shared_base(tmp_path_factory))


def test_quick_run_writes_every_output(quick_run):
    for name in ("results.json", "provenance.json", "report.md", "report.html"):
        assert (quick_run / name).stat().st_size > 0
    for fig in ("trajectory", "comparison_series", "estimators", "robustness", "composition"):
        assert (quick_run / "figures" / f"{fig}.png").stat().st_size > 0
    for tab in ("estimators", "robustness", "monthly_effects", "arrests_by_race", "averted_by_race"):
        assert (quick_run / "tables" / f"{tab}.csv").stat().st_size > 0
    report = (quick_run / "report.md").read_text()
    for words in (
        "third-party aggregation",
        "distribution and possession with intent included",
        "rescission is not covered",
        "443",
        "78%",
        "Threats to validity",
    ):
        assert words in report


def test_quick_run_headline_is_finite_with_an_interval(quick_run):
    results = {r["name"]: r for r in json.loads((quick_run / "results.json").read_text())["results"]}
    needed = (
        "monthly_averted",
        "cumulative_averted",
        "covid_sensitivity_cumulative_averted",
        "its_single_series_cumulative_averted",
        "did_poisson_rate_ratio",
        "bayes_its_cumulative_averted",
        "county_overdose_sdid",  # secondary outcome: county overdose deaths (prosecutors study's design)
    )
    for name in needed:
        r = results[name]
        lo, hi = r["conf_int"]
        assert all(math.isfinite(v) for v in (r["estimate"], lo, hi)), name
        assert lo <= r["estimate"] <= hi, name
    # Baltimore City's overdose rate lies above every donor county's: SCM fits its pre-period poorly, so its
    # placebo-gap interval is withheld (the rank p stays) and the note says why
    scm = results["county_overdose_scm"]
    assert math.isfinite(scm["estimate"]) and 0 < scm["p_value"] <= 1
    assert scm["conf_int"] in (None, [None, None]) and "withheld: the pre-period fit is poor" in scm["note"]
    od = pd.read_csv(quick_run / "tables" / "county_overdose.csv").set_index("method")
    assert od.loc["SCM", "why_no_interval"] == "withheld_poor_prefit" and pd.isna(od.loc["SCM", "conf_low"])
    head = results["cumulative_averted"]
    assert head["conf_int"][1] > head["conf_int"][0]
    # the estimand: the monthly effect is the cumulative number averted over 2020-04..2022-12 (33 months)
    # divided by 33, for the point estimate and for every draw (so for the interval ends too);
    # rel 1e-10 because results.json keeps 12 significant digits
    monthly = results["monthly_averted"]
    assert monthly["estimate"] * 33 == pytest.approx(head["estimate"], rel=1e-10)
    assert np.asarray(monthly["conf_int"]) * 33 == pytest.approx(np.asarray(head["conf_int"]), rel=1e-10)


def test_quick_run_suppresses_small_counts(quick_run):
    """Every count column of every written table holds 0, a count >= 11, or the '(S)' marker."""
    from decrimkit.reporting.audit import published_text

    prov = json.loads((quick_run / "provenance.json").read_text())
    checked = 0
    for table in prov["tables"]:
        if not table["count_columns"]:
            continue
        csv = published_text(quick_run, table)  # tables/<name>.csv, or the headline n of results.json
        for col in table["count_columns"]:
            for cell in (c for c in csv[col].astype(str) if c not in ("", "nan")):  # empty = no count
                assert cell == "(S)" or int(cell) == 0 or int(cell) >= 11, (table["name"], col, cell)
                checked += 1
    assert checked > 0
    by_race = pd.read_csv(quick_run / "tables" / "arrests_by_race.csv", dtype=str).set_index("race")
    assert by_race.loc["Asian", "possession (explicit)"] == "(S)"  # 2 arrests in the extract
    assert "<11" not in by_race.to_numpy()  # complementary cells are not claimed to be small


def test_quick_run_totals_do_not_narrow_hidden_race_cells(quick_run):
    """Issue 18: black_share's totals minus arrests_by_race's visible cells bounded a hidden cell to 23-28.

    Now, in every definition, the hidden cells of arrests_by_race sum (total minus visible) to at least 11,
    so no hidden cell can be shown to be a small count, and the LP audit of the whole folder agrees.
    """
    from decrimkit.reporting.audit import audit_folder, exposed

    by_race = pd.read_csv(quick_run / "tables" / "arrests_by_race.csv", dtype=str).set_index("race")
    totals = pd.read_csv(quick_run / "tables" / "black_share.csv", dtype=str).set_index("definition")
    for d in by_race.columns:
        col = by_race[d]
        if (col == "(S)").any():
            hidden_sum = int(totals.loc[d, "arrests"]) - pd.to_numeric(col[col != "(S)"]).sum()
            assert (col == "(S)").sum() >= 2 and hidden_sum >= 11, (d, hidden_sum)
    bounds = audit_folder(quick_run)
    assert bounds and not exposed(bounds)
    assert all(b.high >= 11 for b in bounds if b.cell[0] == "arrests_by_race")


def test_module_entry_point_parses_arguments():
    proc = subprocess.run(
        [sys.executable, "-m", "decrimkit.studies.baltimore", "--help"], capture_output=True, text=True, check=True
    )
    assert "--quick" in proc.stdout and "--seed" in proc.stdout
