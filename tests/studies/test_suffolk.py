"""The Suffolk simulator (calibration, determinism, truth) and the quick study run."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

import study_runs
from decrimkit.errors import SpecificationError
from decrimkit.studies.suffolk import SuffolkConfig, calibrate, memo_cells, simulate, simulate_memo

pytestmark = pytest.mark.xdist_group("studies")


@pytest.fixture(scope="module")
def cal():
    return calibrate()


def test_simulator_hits_the_published_design(cal):
    sim = simulate(seed=3, calibration=cal)
    cases, cfg = sim.cases, sim.config
    assert len(cases) == 67_553  # the paper's N
    # non-prosecution share 20.5%: sampling SD about 0.002 (cases) plus ADA-roster variation; 0.01 is > 4 SD
    assert cases["not_prosecuted"].mean() == pytest.approx(0.205, abs=0.01)
    # the relative effects are exact by construction; the complier means are calibrated on pooled ADA
    # weights and differ slightly with the realised rosters
    assert sim.truth["relative_any"] == cfg.relative_effect_any == -0.53
    assert sim.truth["relative_count"] == cfg.relative_effect_count == -0.60
    assert sim.truth["late_any"] == pytest.approx(-0.53 * sim.truth["complier_mean_any"], rel=1e-12)
    assert sim.truth["complier_mean_any"] == pytest.approx(cfg.complier_mean_any, abs=0.01)
    assert sim.truth["complier_mean_count"] == pytest.approx(cfg.complier_mean_count, abs=0.05)
    assert set(cases.columns) >= {"ada", "court", "month", "not_prosecuted", "any_new_complaint", "n_new_complaints"}
    assert ((cases["n_new_complaints"] > 0) == (cases["any_new_complaint"] == 1)).all()


def test_simulator_is_deterministic(cal):
    a = simulate(n_cases=5000, seed=7, calibration=cal)
    b = simulate(n_cases=5000, seed=7, calibration=cal)
    c = simulate(n_cases=5000, seed=8, calibration=cal)
    pd.testing.assert_frame_equal(a.cases, b.cases)
    assert a.truth == b.truth
    assert not a.cases["not_prosecuted"].equals(c.cases["not_prosecuted"])


def test_config_lists_targets_and_assumptions():
    table = SuffolkConfig().as_table()
    kinds = table.set_index("parameter")["kind"]
    for target in ("n_cases", "nonprosecution_share", "relative_effect_any", "relative_effect_count", "memo_date"):
        assert kinds[target] == "calibration target"
    for assumption in ("leniency_sd", "adas_per_session", "memo_shift", "selection_on_risk"):
        assert kinds[assumption] == "assumption"
    with pytest.raises(SpecificationError, match="court_shares"):
        calibrate(SuffolkConfig(n_courts=3))
    with pytest.raises(SpecificationError, match="too small"):
        simulate(n_cases=100)


def test_memo_cells_form_a_balanced_panel(cal):
    cases, truth = simulate_memo(seed=0, calibration=cal)
    cells, dropped = memo_cells(cases)
    assert dropped == int((cases["month"] == pd.Period("2019-03", "M")).sum()) > 0
    assert len(cells) == 30 * (38 - 1)  # 30 charges x 38 months, the memo's month dropped
    assert cells.groupby("charge").size().nunique() == 1
    post = cells[cells["treated"] == 1]
    assert set(post["charge"].str[0]) == {"L"} and post["month"].min() == pd.Period("2019-04", "M")
    assert 0 < truth["att_nonpros"] < 0.40  # a share memo_shift of the prosecuted listed cases is declined
    assert truth["att_any"] < 0


def test_quick_study_writes_finite_results(tmp_path_factory):
    out = study_runs.quick_run("suffolk", 0, study_runs.shared_base(tmp_path_factory))
    for name in (
        "results.json",
        "provenance.json",
        "report.md",
        "report.html",
        "figures/first_stage.png",
        "figures/relative_effects.svg",
        "figures/memo_event_study.png",
        "tables/iv_estimates.csv",
        "tables/balance.csv",
        "tables/monte_carlo.csv",
        "tables/calibration.csv",
        "tables/memo_did.csv",
    ):
        assert (out / name).is_file(), name
    results = {r["name"]: r for r in json.loads((out / "results.json").read_text())["results"]}
    for key in (
        "late_any",
        "relative_any",
        "late_count",
        "relative_count",
        "memo_nonpros_rate",
        "memo_new_complaint_rate",
    ):
        assert math.isfinite(results[key]["estimate"]) and results[key]["se"] > 0
    assert (
        results["relative_any"]["conf_int"][0]
        < results["relative_any"]["estimate"]
        < results["relative_any"]["conf_int"][1]
    )
    # the headline estimates recover the simulator's truth (the published -53% and -60%, Agan, Doleac and
    # Harvey 2023) within 3 SE: a recovery property, not a number typed in from our own output
    assert results["truth_relative_any"]["estimate"] == -0.53
    assert results["truth_relative_count"]["estimate"] == -0.60
    for key in ("any", "count"):
        est, truth = results[f"relative_{key}"], results[f"truth_relative_{key}"]["estimate"]
        assert abs(est["estimate"] - truth) < 3 * est["se"], key
    # 20 replications: coverage is a binomial(20, ~0.9) draw; anything below 0.6 would mean broken SEs
    mc = pd.read_csv(out / "tables" / "monte_carlo.csv")
    assert (mc["n_reps"] == 20).all()
    assert mc["coverage"].between(0.6, 1.0).all()
    assert (mc["bias"].abs() < 2 * mc["sd_estimate"]).all()
    memo = pd.read_csv(out / "tables" / "memo_did.csv")
    assert (np.abs(memo["estimate"] - memo["truth"]) < 3 * memo["se"]).all()
    # secondary outcome, real data: Suffolk County's overdose death rate (first treated year 2019, rule R5)
    od = pd.read_csv(out / "tables" / "county_overdose.csv")
    assert list(od["method"]) == ["SCM", "SDID"] and (od["first_treated_year"] == 2019).all()
    for key in ("county_overdose_scm", "county_overdose_sdid"):
        lo, hi = results[key]["conf_int"]
        assert lo <= results[key]["estimate"] <= hi and 0 < results[key]["p_value"] <= 1
    report = (out / "report.md").read_text()
    assert "Secondary outcome: county overdose deaths" in report and "What it adds" in report
    assert "simulated data" in report and "not** evidence about Suffolk County" in report
    assert "-53%" in report and "67,553" in report


def test_partner_plan_runs_on_case_level_csv(tmp_path, monkeypatch, cal):
    """docs/examples/plan_suffolk.toml, pointed at a simulated CSV, runs through `decrimkit run`."""
    import shutil
    from pathlib import Path

    from decrimkit.plan import load_plan

    example = Path(__file__).resolve().parents[2] / "docs" / "examples" / "plan_suffolk.toml"
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)
    simulate(n_cases=40_000, seed=4, calibration=cal).cases.to_csv(tmp_path / "data" / "suffolk_cases.csv", index=False)
    shutil.copy(example, tmp_path / "plan_suffolk.toml")
    out = load_plan(tmp_path / "plan_suffolk.toml").run()
    results = {r["name"]: r for r in json.loads((out / "results.json").read_text())["results"]}
    rel = results["any_new_complaint.relative_effect"]
    assert math.isfinite(rel["estimate"]) and rel["se"] > 0
    assert (out / "tables" / "n_new_complaints.csv").is_file()
    assert (out / "tables" / "any_new_complaint_cr1.csv").is_file()
