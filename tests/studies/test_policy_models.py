"""Study-level tests of the four-policy-models study (the registry loader itself is tested in test_datasets)."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import study_runs
from decrimkit.datasets import load_dataset, policy_registry
from decrimkit.errors import ConvergenceWarning
from decrimkit.studies import policy_models as study
from decrimkit.studies.policy_models import data, pooling, power

pytestmark = pytest.mark.xdist_group("studies")


@pytest.fixture(scope="module")
def rates() -> pd.DataFrame:
    return data.state_overdose_rates()


def test_annual_cohort_half_year_rule():
    start = pd.Series(pd.to_datetime(["2021-02-01", "2021-07-01", "2021-07-02", "2022-12-27"]))
    assert data.annual_cohort(start).tolist() == [2021, 2021, 2022, 2023]


def test_rules_applied_to_the_registry():
    rows = data.qualifying_rows(data.Rules())
    reg = policy_registry()
    # R1 and R2: no cannabis-only or low-confidence row is used in the main analysis
    used = rows[rows["qualifies"]]
    assert not used["cannabis_only"].any()
    assert (used["confidence"].astype("string") != "low").all()
    assert len(rows) == len(reg)  # every row is reported, with a status
    # R4: Washtenaw's two dated office rows (same model) make one cohort, from the first of them
    coh = data.jurisdiction_cohorts(rows)
    wash = coh[(coh["unit"] == "26161") & (coh["model"] == "substance_specific_declination")]
    assert len(wash) == 1 and int(wash["n_rows"].iloc[0]) == 2
    q = used[(used["unit"] == "26161") & (used["model"] == "substance_specific_declination")]
    assert wash["start"].iloc[0] == q["start"].min() and q["start"].nunique() == 2
    # the sensitivity rule set uses strictly more rows
    assert data.qualifying_rows(data.Rules(min_confidence="low"))["qualifies"].sum() > used.shape[0]


def test_state_panel_rules(rates):
    sp = data.state_panel_frame(data.Rules(), rates)
    reasons = dict(zip(sp.excluded["state"], sp.excluded["reason"]))
    assert "R6" in reasons["WA"]  # State v. Blake: under six months in force
    assert "R7" in reasons["MD"] and "R7" in reasons["MA"]  # county policies only
    treated = dict(zip(sp.treated["state"], sp.treated["cohort"]))
    assert set(treated) == {"OR", "VT", "CO"} and treated["CO"] == 2023
    assert not set(sp.controls) & (set(policy_registry()["state"]) - {"NY", "MO"})
    itt = data.state_panel_frame(data.Rules(reversal_itt=True), rates)
    assert "WA" in set(itt.treated["state"])


def test_state_rates_sum_new_york_and_match_the_source(rates):
    assert rates.groupby("state").size().eq(10).all() and rates["state"].nunique() == 48
    od = load_dataset("cdc_vsrr_overdose")
    dec = od[(od["indicator"] == "Number of Drug Overdose Deaths") & (od["month"] == 12) & (od["year"] == 2021)]
    ny = int(dec.loc[dec["state"].isin(["NY", "YC"]), "data_value"].sum())
    row = rates[(rates["state"] == "NY") & (rates["year"] == 2021)].iloc[0]
    assert row["deaths"] == ny
    assert row["rate"] == pytest.approx(ny / row["population"] * 1e5, rel=1e-12)


def test_injected_effect_shifts_estimates_exactly_and_seeds_repeat(rates):
    coh = data.jurisdiction_cohorts(data.qualifying_rows())
    designs, _ = power.power_designs(coh, rates, data.never_registry_states(rates), ["case_by_case_declination"])
    kw = {"seed": 7, "deltas": (0.0, 0.3), "estimators": ("att_gt", "imputation")}
    a = pd.DataFrame(power.simulate_rep(designs[0], 0, **kw))
    b = pd.DataFrame(power.simulate_rep(designs[0], 0, **kw))
    pd.testing.assert_frame_equal(a, b)  # same seed, same placebo states and numbers
    for est, g in a.groupby("estimator"):
        g = g.set_index("delta")
        # a constant added to treated post-periods moves both linear estimators by exactly that constant
        # and leaves their SEs unchanged (1e-9: floating-point noise only)
        assert g.loc[0.3, "estimate"] - g.loc[0.0, "estimate"] == pytest.approx(0.3, abs=1e-9), est
        assert g.loc[0.3, "se"] == pytest.approx(g.loc[0.0, "se"], rel=1e-9), est
    other = pd.DataFrame(power.simulate_rep(designs[0], 1, **kw))
    assert not np.allclose(other["estimate"], a["estimate"])  # another replicate draws other states


def test_mde_interpolation_and_invalid_size():
    d = np.array([0.0, 0.1, 0.2, 0.4])
    assert power._mde(d, np.array([0.05, 0.4, 0.9, 1.0])) == pytest.approx(0.1 + 0.4 / 0.5 * 0.1)
    assert math.isnan(power._mde(d, np.array([0.05, 0.2, 0.5, 0.7])))  # never reaches 80%
    assert math.isnan(power._mde(d, np.array([0.9, 0.95, 1.0, 1.0])))  # rejects 90% of nulls: no valid MDE


def test_study_estimates_conversion_and_status(tmp_path):
    # a study output written in the Report layout; the numbers are test inputs for the conversion only
    (tmp_path / "baltimore").mkdir()
    res = {"results": [{"name": "rate_ratio", "estimate": 0.5, "conf_int": [0.25, 1.0], "se": None}]}
    (tmp_path / "baltimore" / "results.json").write_text(json.dumps(res))
    (tmp_path / "suffolk").mkdir()
    (tmp_path / "suffolk" / "results.json").write_text(json.dumps({"results": []}))
    est, status = pooling.study_estimates(tmp_path)
    assert est["site"].tolist() == ["Baltimore City"]
    assert est["estimate"].iloc[0] == pytest.approx(math.log(0.5), rel=1e-12)
    assert est["se"].iloc[0] == pytest.approx(math.log(4.0) / (2 * 1.959963984540054), rel=1e-12)
    st = dict(zip(status["study"], status["status"]))
    assert st["oregon"].startswith("missing") and "simulated" in st["suffolk"]


def test_oregon_excess_rate_is_converted_against_oregons_observed_rate(tmp_path):
    # Oregon offers an excess rate (deaths per 100,000 per year); the pooling turns it into a log rate ratio
    # against Oregon's observed mean rate over the January windows 2022-2024 (populations of the year before)
    (tmp_path / "oregon").mkdir()
    res = {"results": [{"name": "scm_rate", "estimate": 6.0, "conf_int": [2.0, 10.0], "se": None},
                       {"name": "sdid_rate", "estimate": None, "conf_int": None, "se": None}]}
    (tmp_path / "oregon" / "results.json").write_text(json.dumps(res))
    od = load_dataset("cdc_vsrr_overdose")
    od = od[(od["indicator"] == "Number of Drug Overdose Deaths") & (od["state"] == "OR") & (od["month"] == 1)]
    deaths = od.set_index("year")["predicted_value"]
    pop = load_dataset("state_population").query("state == 'OR'").set_index("year")["population"]
    observed = 1e5 * np.mean([deaths[y] / pop[y - 1] for y in (2022, 2023, 2024)])
    est, status = pooling.study_estimates(tmp_path)
    row = est.set_index("site").loc["Oregon"]
    assert row["source_result"] == "oregon/scm_rate" and row["policy_model"] == "de_jure"  # sdid_rate has no estimate
    assert row["estimate"] == pytest.approx(math.log(observed / (observed - 6.0)), rel=1e-12)
    width = math.log(observed / (observed - 10.0)) - math.log(observed / (observed - 2.0))
    assert row["se"] == pytest.approx(width / (2 * 1.959963984540054), rel=1e-12)
    assert dict(zip(status["study"], status["status"]))["oregon"] == "pooled (oregon/scm_rate)"


def test_quick_run_writes_every_output(tmp_path_factory):
    out = study_runs.quick_run("policy-models", 0, study_runs.shared_base(tmp_path_factory))
    for f in (
        "results.json",
        "provenance.json",
        "report.md",
        "report.html",
        "figures/timeline.png",
        "figures/mde_by_model.png",
        "figures/forest_by_model.png",
        "tables/mde.csv",
        "tables/power_grid.csv",
        "tables/cohorts.csv",
        "tables/study_status.csv",
    ):
        assert (out / f).is_file(), f
    results = {r["name"]: r for r in json.loads((out / "results.json").read_text())["results"]}
    for key in ("dejure_att_gt", "dejure_imputation", "dejure_sdid", "dejure_bayes_att"):
        assert math.isfinite(results[key]["estimate"]) and math.isfinite(results[key]["se"]), key
    # the headline p-values come from the method that gives the interval: randomization inference for
    # Callaway-Sant'Anna and imputation (the interval is the hull of the nulls the test does not reject at 5%,
    # so it excludes 0 only where p <= 0.05),
    # the normal approximation with the jackknife SE for SDID
    for key in ("dejure_att_gt", "dejure_imputation"):
        r = results[key]
        assert 0 < r["p_value"] <= 1 and "randomization" in r["method"], key
        assert r["p_value"] <= 0.05 or r["conf_int"][0] <= 0 <= r["conf_int"][1], key
    # a state posterior that fails the convergence gate (the quick run's 2 x 100 draws do) prints no HDI and no
    # P(effect < 0), and says why; one that passes prints both
    bayes = [results["dejure_bayes_att"]] + [r for k, r in results.items() if k.startswith("pooled_state_")]
    for r in bayes:
        assert (r["conf_int"] is None) == r["note"].startswith("NOT CONVERGED"), r["name"]
    for k, r in results.items():
        if k.startswith("pooled_state_"):
            assert (k.replace("pooled_", "p_negative_") in results) == (r["conf_int"] is not None), k
    sdid = results["dejure_sdid"]
    assert sdid["p_value"] == pytest.approx(2 * stats.norm.sf(abs(sdid["estimate"] / sdid["se"])), rel=1e-9)
    grid = pd.read_csv(out / "tables" / "power_grid.csv")
    cfg = study.SETTINGS[True]
    freq = grid[grid["estimator"] != "hierarchical_did"]
    assert set(freq["delta"]) == set(cfg.deltas) and (freq["reps_run"] == cfg.n_reps).all()
    assert set(grid["model"]) == set(data.MODEL_LABELS)
    assert f"{cfg.n_reps} per model" in (out / "report.md").read_text()


def test_summarise_reports_monte_carlo_standard_errors():
    # four replicates of one cell, numbers chosen so every statistic is checkable by hand
    rec = pd.DataFrame(
        {
            "model": "de_jure",
            "estimator": "imputation",
            "delta": 0.2,
            "rep": [0, 1, 2, 3],
            "estimate": [0.1, 0.2, 0.3, 0.6],
            "se": [0.1, 0.1, 0.1, 0.1],
        }
    ).assign(conf_low=lambda d: d["estimate"] - power.Z * d["se"], conf_high=lambda d: d["estimate"] + power.Z * d["se"])
    s = power.summarise(rec).iloc[0]
    err = np.array([-0.1, 0.0, 0.1, 0.4])
    assert s["reps_used"] == 4 and s["bias"] == pytest.approx(err.mean(), abs=1e-12)
    assert s["bias_mcse"] == pytest.approx(err.std(ddof=1) / 2, rel=1e-12)
    # intervals +-0.196: the first three cover 0.2, the last does not; all but the first reject 0
    assert s["coverage"] == pytest.approx(0.75) and s["coverage_mcse"] == pytest.approx(math.sqrt(0.75 * 0.25 / 4))
    assert s["power"] == pytest.approx(0.75) and s["power_mcse"] == pytest.approx(math.sqrt(0.75 * 0.25 / 4))


def test_grid_gives_the_same_records_in_process_and_on_a_dask_cluster(rates):
    coh = data.jurisdiction_cohorts(data.qualifying_rows())
    designs, _ = power.power_designs(coh, rates, data.never_registry_states(rates), ["case_by_case_declination"])
    parts = [power.GridPart(designs[0], 3, (0.0, 0.2), ("imputation",), 2)]
    local = power.run_grid(parts, seed=3, scheduler="synchronous")
    dask = power.run_grid(parts, seed=3, scheduler="local", n_workers=1)  # a Dask LocalCluster, one worker process
    pd.testing.assert_frame_equal(local, dask)
    assert len(local) == 6 and (local["error"] == "").all()


def test_compiled_bayes_power_matches_hierarchical_did(tmp_path_factory, rates):
    """The vmapped power sampler fits bayes.hierarchical_did's model: same posterior on the same replicate."""
    from decrimkit import Panel
    from decrimkit.estimators import bayes

    out = study_runs.quick_run("policy-models", 0, study_runs.shared_base(tmp_path_factory))
    cfg = study.SETTINGS[True]
    grid = pd.read_csv(out / "tables" / "power_grid.csv")
    row = grid[(grid["estimator"] == "hierarchical_did") & (grid["model"] == "de_jure")]
    assert len(row) == len(cfg.bayes_deltas) and (row["reps_used"] == cfg.bayes_reps).all()
    delta = float(row["delta"].iloc[0])
    engine_mean = delta + float(row["bias"].iloc[0])  # one replicate: the mean of its posterior
    coh = data.jurisdiction_cohorts(data.qualifying_rows())
    designs, _ = power.power_designs(coh, rates, data.never_registry_states(rates), list(data.MODEL_LABELS))
    design = next(d for d in designs if d.model == "de_jure")
    treated, _ = power.placebo_draw(design, 0, 0)
    frame = power.injected_frame(design, treated, delta)  # original state labels: the relabelling must not matter
    panel = Panel.from_frame(
        frame, unit="state", time="year", outcome="deaths", cohort="cohort", population="population"
    )
    with warnings.catch_warnings():  # short chains may fail the convergence gate; the comparison below is the check
        warnings.simplefilter("ignore", ConvergenceWarning)
        post = bayes.hierarchical_did(
            panel, policy_model={u: "de_jure" for u in panel.treated_units}, seed=1, chains=2, draws=300, tune=300
        )
    att = post.effect("overall").set_index("term").loc["att"]
    # two independent MCMC runs of one posterior: means agree to well within a posterior sd (MC error of
    # the means is about sd / sqrt(ESS) ~ 0.1 sd with ESS >= 100)
    assert abs(engine_mean - att["mean"]) < 0.5 * att["sd"], (engine_mean, att["mean"], att["sd"])


def test_bayes_calibration_note_quotes_the_validation_run():
    # the note printed beside every state-level posterior quotes the real-data placebo cell; it must say what the
    # committed validation run measured (it said 96 of 100 after an earlier run of the cell)
    from decrimkit.studies.policy_models.study import BAYES_CALIBRATION

    table = json.loads((Path(__file__).resolve().parents[2] / "validation" / "results.json").read_text())["table"]
    rows = {t["estimator"]: t for t in table if t["cell"] == "placebo_state_annual_4_bayes"}
    ar1, none = rows["bayes_hdid/ar1"], rows["bayes_hdid/none"]
    assert f"on {ar1['n']} placebo laws" in BAYES_CALIBRATION
    assert (f"covered 0 in {round(ar1['coverage'] * ar1['n'])} (MC SE {100 * ar1['coverage_mcse']:.1f} points"
            in BAYES_CALIBRATION)
    assert f"without the AR(1) deviations, {round(none['coverage'] * none['n'])})" in BAYES_CALIBRATION


def test_forest_figure_withholds_the_intervals_of_a_source_that_did_not_converge():
    from decrimkit.studies.policy_models import figures

    eff = pd.DataFrame({
        "source": ["state hierarchical DiD"] * 2 + ["studies pooled"] * 2,
        "model": ["de_jure", "de_jure", "de_jure", "de_jure"],
        "label": ["de_jure", "OR", "de_jure", "Oregon"],
        "level": ["model", "jurisdiction", "model", "jurisdiction"],
        "mean": [0.1, 0.2, 0.15, 0.25], "hdi_low": [-0.1, 0.0, -0.05, 0.05], "hdi_high": [0.3, 0.4, 0.35, 0.45],
        "p_negative": [0.2, 0.1, 0.15, 0.05],
    })
    fig = figures.forest_figure(eff, not_converged={"state hierarchical DiD"})
    ax = fig.axes[0]
    # one interval line per row of the converged source only (the zero line is an axvline, two points in y)
    intervals = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == 2 and ln.get_xdata()[0] != ln.get_xdata()[1]]
    assert sorted(tuple(ln.get_xdata()) for ln in intervals) == [(-0.05, 0.35), (0.05, 0.45)]
    notes = [t.get_text() for t in ax.texts]
    assert notes.count("not converged: HDI withheld") == 2 and "P(<0)=0.15" in notes and "P(<0)=0.05" in notes
