"""The Monte Carlo validation pipeline (validation/run.py) on a tiny grid, and its DGPs.

The full grid is ``make validate``; here two cells run a few replications on a one-worker local Dask
cluster, which exercises the same code path (tasks, seeding, aggregation, outputs) in well under a
minute. The coverage numbers of so few replications are not judged; the checks are structural and
on the DGPs' stated truths.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def validation(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    import validation.cells
    import validation.dgp
    import validation.realdata
    import validation.run

    return validation


# distributed's own sockets and event loop can emit ResourceWarning / unraisable-exception warnings while a
# LocalCluster starts or stops on a saturated machine; they are Dask internals, not decrimkit's.
@pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning")
def test_quick_pipeline_on_dask(validation, tmp_path):
    # one worker: the SBC task (submitted first) finishes before the chunks and is gathered inside their loop
    path = validation.run.run(tmp_path, quick=True, reps=4, cells=["poisson_mean1", "poisson_mean0.2"], sbc=True,
                              sbc_reps=2, workers=1)
    res = json.loads(path.read_text(encoding="utf-8"))
    assert res["quick"] is True and res["seed"] == validation.run.DEFAULT_SEED
    assert res["sbc"]["n_reps"] == 2 and res["sbc"]["table"]
    rows = {(r["cell"], r["estimator"], r["target"]): r for r in res["table"]}
    assert set(rows) == {("poisson_mean1", "poisson", "log_rr"), ("poisson_mean0.2", "poisson", "log_rr")}
    for r in rows.values():
        assert r["n"] == 4 and r["failures"] == 0
        assert 0.0 <= r["coverage"] <= 1.0 and r["rmse"] >= abs(r["bias"])
    assert rows[("poisson_mean1", "poisson", "log_rr")]["truth"] == pytest.approx(np.log(1.25), rel=1e-12)
    readme = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert "poisson_mean0.2" in readme and "Quick run" in readme and "## Run cost" in readme
    assert "simulation-based calibration" in readme
    for fig in ("coverage.png", "coverage.svg", "bias.png", "bias.svg"):
        assert (tmp_path / "figures" / fig).stat().st_size > 0


def test_did_replications_do_not_depend_on_chunking(validation):
    """The four DiD adapters run in-process; a replication's records depend only on (seed, cell, rep)."""
    run_chunk = validation.cells.run_chunk
    whole = run_chunk("did_few_treated", [0, 1, 2], 7)
    parts = run_chunk("did_few_treated", [2], 7)["records"] + run_chunk("did_few_treated", [0, 1], 7)["records"]
    assert sorted(whole["records"]) == sorted(parts)
    assert not whole["failures"]
    assert {(r[1], r[2]) for r in whole["records"]} == {("twfe", "att"), ("att_gt", "att"), ("imputation", "att"),
                                                        ("event_study", "e-2"), ("event_study", "e0"),
                                                        ("event_study", "e2")}
    whole = whole["records"]
    other_seed = run_chunk("did_few_treated", [0], 8)["records"]
    assert other_seed[0][3] != whole[0][3]  # a different seed draws different data


def test_a_cell_split_by_estimator_gives_the_records_of_the_whole(validation):
    """The quick run splits the Bayesian cell into one task per estimator (run_group's ``only``): the split
    chunks hold exactly the whole chunk's records, and the run's own estimator filter still applies."""
    grid = validation.cells
    whole = grid.run_group([("did_few_treated", [0, 1], None)], 7)
    split = [ch for est in ("twfe", "att_gt", "imputation", "event_study")
             for ch in grid.run_group([("did_few_treated", [0, 1], (est,))], 7)]
    assert sorted(r for ch in split for r in ch["records"]) == sorted(whole[0]["records"])
    assert [set(ch["cpu"]) - {"dgp"} for ch in split] == [{"twfe"}, {"att_gt"}, {"imputation"}, {"event_study"}]
    items = [("did_few_treated", [0], ("twfe",)), ("did_few_treated", [0], ("att_gt",))]
    only_twfe = grid.run_group(items, 7, estimators=["twfe", "imputation"])
    assert len(only_twfe) == 1 and {r[1] for r in only_twfe[0]["records"]} == {"twfe"}

def test_staggered_dgp_truths(validation):
    dgp = validation.dgp
    draw = dgp.staggered(np.random.default_rng(0), effect="dynamic", n_periods=8, cohorts=(3, 5), n_treated=(10, 10))
    # cohort 3 is treated at e = 0..4 (tau 1, 1.5, 2, 2.5, 3), cohort 5 at e = 0..2 (1, 1.5, 2): 8 cells x 10 units
    assert draw.truth["att"] == pytest.approx((1 + 1.5 + 2 + 2.5 + 3 + 1 + 1.5 + 2) / 8, rel=1e-12)
    assert draw.truth["e0"] == 1.0 and draw.truth["e2"] == 2.0 and draw.truth["e-2"] == 0.0
    f = draw.frame
    assert len(f) == 40 * 8 and set(f["cohort"].unique()) == {0, 2003, 2005}


def test_ar1_errors_are_stationary(validation):
    e = validation.dgp.ar1(np.random.default_rng(1), (20_000, 6), 0.7)
    # stationary variance 1 / (1 - rho^2) = 1.96 in every period; lag-1 correlation rho. 20,000 draws give
    # a sampling sd of about 0.02 for the variance and 0.005 for the correlation: tolerances are ~4 sd.
    np.testing.assert_allclose(e.var(axis=0), 1 / (1 - 0.49), atol=0.08)
    assert np.corrcoef(e[:, 2], e[:, 3])[0, 1] == pytest.approx(0.7, abs=0.02)


def test_counts_dgp_has_small_means(validation):
    draw = validation.dgp.counts(np.random.default_rng(2), mean=0.2)
    y = draw.frame["y"].to_numpy()
    assert (y >= 0).all() and (y == np.round(y)).all()
    assert 0.1 < y.mean() < 0.4 and (y == 0).mean() > 0.6
    assert draw.truth["log_rr"] == pytest.approx(np.log(1.25), rel=1e-12)


def test_quick_tasks_group_cells_that_share_estimators(validation):
    """Quick run: one task per group of cells sharing an estimator (each kernel compiled by one worker);
    full run: every replication of every cell in exactly one chunk, expensive (small-chunk) cells first."""
    grid, run = validation.cells, validation.run
    names = [c.name for c in grid.CELLS]
    quick = run._tasks(names, quick=True, reps=None)
    groups = [{name for name, _, _ in task} for task in quick]
    assert {"did_homogeneous", "did_dynamic", "did_ar1_null", "did_few_treated"} in groups
    assert {"synth_one_treated_null", "synth_one_treated_effect"} in groups  # both run ascm_conformal
    assert {"poisson_mean1", "poisson_mean0.2"} in groups
    placebo = {c.name for c in grid.CELLS if c.dgp == "placebo"}
    few = placebo - {"placebo_state_annual_4_bayes", "placebo_state_annual_1_sdid", "placebo_county_1_sdid"}
    assert few | {"did_few_treated_methods"} in groups  # the cells scoring the inference methods share kernels
    # the Bayesian cell's two fits (minutes each) are split, one task per estimator, submitted first
    bayes = grid.CELL_BY_NAME["placebo_state_annual_4_bayes"]
    assert [task[0][2] for task in quick[:2]] == [(e,) for e in bayes.estimators] and len(bayes.estimators) == 2
    assert groups[:2] == [{bayes.name}] * 2 and len(quick) == 9
    for task in quick:
        for name, reps, only in task:
            assert reps == list(range(grid.CELL_BY_NAME[name].quick_reps))
            assert only is None or name == bayes.name
    full = run._tasks(names, quick=False, reps=None)
    assert all(len(task) == 1 and task[0][2] is None for task in full)
    covered: dict[str, list[int]] = {}
    for (name, reps, _), in full:
        assert len(reps) <= grid.CELL_BY_NAME[name].chunk
        covered.setdefault(name, []).extend(reps)
    assert {n: sorted(r) for n, r in covered.items()} == {c.name: list(range(c.reps)) for c in grid.CELLS}
    assert grid.CELL_BY_NAME[full[0][0][0]].chunk == min(c.chunk for c in grid.CELLS)


def _chunk(cell, estimator, truth, estimates, lows, highs, ps):
    recs = [(r, estimator, "att", est, 1.0, lo, hi, p, truth)
            for r, (est, lo, hi, p) in enumerate(zip(estimates, lows, highs, ps))]
    return {"cell": cell, "records": recs, "failures": {}, "warnings": {}, "cpu": {estimator: [0.1] * len(recs)},
            "pid": 1}


def test_summary_flags_misses_with_reasons(validation):
    """Coverage outside 93-97% is flagged with a diagnosis and listed; a missing interval counts as a miss;
    a test without an interval is judged on its size (3-7%); SBC coverage is judged against 85-95%."""
    from validation.summarise import _markdown, summarise

    n = 100
    rng = np.random.default_rng(0)
    est = rng.normal(1.0, 0.1, n)
    lo, hi = est - 0.05, est + 0.05  # half-width 0.5 SD: covers about 38%
    lo[0] = np.nan  # one replication without an interval
    twfe = _chunk("did_homogeneous", "twfe", 1.0, est, lo, hi, np.full(n, 0.5))
    p = np.where(np.arange(n) < 20, 0.01, 0.5)  # rejects 20% of true nulls
    scm = _chunk("synth_one_treated_null", "scm_placebo", 0.0, rng.normal(0, 1, n), np.full(n, np.nan),
                 np.full(n, np.nan), p)
    sbc = {"table": [{"parameter": "mu_0", "n_reps": 100, "coverage": 0.9, "rank_chi2_p": 0.5,
                      "mean_divergences": 0.0},
                     {"parameter": "mu_model[m0]", "n_reps": 100, "coverage": 0.8, "rank_chi2_p": 0.5,
                      "mean_divergences": 0.0}],
           "prob": 0.9, "options": {"tune": 500, "draws": 500}, "model_coverage": 0.8, "passes": False,
           "cpu": 12.0, "pid": 3}
    res = summarise([twfe, scm], ["did_homogeneous", "synth_one_treated_null"], sbc, quick=False, seed=1, reps=n,
                    sbc_reps=100)
    rows = {r["estimator"]: r for r in res["table"]}
    t = rows["twfe"]
    assert t["ci_missing"] == 1 and t["coverage"] < 0.5 and "mean SE / Monte Carlo SD" in t["flag"]
    assert "1 replications gave no interval" in t["flag"]
    s = rows["scm_placebo"]
    assert s["coverage"] is None and s["size_5pct"] == pytest.approx(0.2) and "size 0.200" in s["flag"]
    assert "cpu" not in res["sbc"] and "pid" not in res["sbc"]
    assert res["sbc"]["flags"] == ["mu_model[m0]: coverage 0.800 outside 0.85-0.95"]
    md = _markdown(res, 60.0, 2)
    assert "**did_homogeneous / twfe / att**: coverage" in md and "**synth_one_treated_null / scm_placebo / att**: size 0.200" in md
    assert "**Pooled model-level coverage outside the band.**" in md and "- mu_model[m0]: coverage 0.800" in md
    # a coverage inside the band is not flagged
    ok = _chunk("did_homogeneous", "twfe", 1.0, est, est - 0.196, est + 0.196, np.full(n, 0.5))
    res = summarise([ok], ["did_homogeneous"], None, quick=False, seed=1, reps=n, sbc_reps=0)
    assert res["table"][0]["flag"] is None and res["table"][0]["coverage"] == pytest.approx(np.mean(np.abs(est - 1) <= 0.196))


# ------------------------------------------------------------------ real-data placebo cells (issue 21 part 6)
def test_placebo_designs_use_untreated_real_series(validation):
    """Placebo laws go to units without a policy; counties are fully reported (no suppressed count enters)."""
    from decrimkit.datasets import load_dataset

    real = validation.realdata
    annual = real.source("state_annual")
    assert len(annual.units) == 37 and not {"OR", "VT", "CO"} & set(annual.units)
    assert annual.deaths.shape == (37, 10) and (annual.deaths > 0).all()
    draw = real.placebo(np.random.default_rng(3), source_name="state_annual", n_treated=4)
    f = draw.frame
    cohorts = f.groupby("unit")["cohort"].first()
    assert (cohorts > 0).sum() == 4 and cohorts[cohorts > 0].between(2018, 2022).all()
    assert draw.truth == {"att": 0.0, "e0": 0.0, "log_rr": 0.0}
    np.testing.assert_allclose(np.exp(f["y"]), f["deaths"] / f["population"] * 1e5, rtol=1e-12)
    again = real.placebo(np.random.default_rng(3), source_name="state_annual", n_treated=4).frame
    assert again.equals(f)  # a replication depends only on its generator
    # the Oregon-scale outcome is the rate itself; Oregon itself never appears
    assert "OR" not in set(real.placebo(np.random.default_rng(0), source_name="state_annual", outcome="rate").frame["unit"])

    county = real.source("county_annual")
    raw = load_dataset("cdc_wonder_county_overdose")
    raw = raw[raw["fips"].isin(county.units)]
    assert len(county.units) == 571 and (raw["deaths_status"] == "reported").all()  # every year reported
    c = real.placebo(np.random.default_rng(1), source_name="county_annual", outcome="rate").frame
    assert c["unit"].nunique() == 101 and (c.groupby("unit")["cohort"].first() > 0).sum() == 1
    merged = c.merge(raw.rename(columns={"fips": "unit", "year": "time"}), on=["unit", "time"], validate="one_to_one")
    assert (merged["deaths_x"] == merged["deaths_y"].astype("int64")).all()  # the published counts, unaltered

    # one treated state: the cell enumerates every (state, year) law once instead of sampling with repeats
    assert real.n_designs("state_annual") == validation.cells.N_STATE_YEAR_LAWS == 185
    laws = set()
    for r in range(185):
        fr = real.placebo(np.random.default_rng(r), source_name="state_annual", exhaustive=True, rep=r).frame
        laws.add(tuple(fr.loc[fr["cohort"] > 0, ["unit", "cohort"]].drop_duplicates().itertuples(index=False)))
    assert len(laws) == 185 and all(len(law) == 1 for law in laws)
    with pytest.raises(ValueError):
        real.placebo(np.random.default_rng(0), source_name="state_annual", exhaustive=True, rep=185)

    monthly = real.source("state_monthly")
    assert monthly.deaths.shape == (37, 120) and monthly.units == annual.units
    # December's 12-month-ending window is the calendar year's count
    np.testing.assert_array_equal(monthly.deaths[:, 11::12], annual.deaths)


def test_placebo_chunk_scores_methods_and_counts_refusals(validation, monkeypatch):
    """One placebo replication through run_chunk: the few-treated methods give p-values and intervals; with
    one treated state the cluster-robust variance is refused (a DesignError per replication, never a p-value)."""
    grid = validation.cells
    one = grid.Cell("t_one", "placebo", {"source_name": "state_annual", "n_treated": 1, "outcome": "rate"},
                    ("twfe/cluster", "twfe/conley_taber", "twfe/randomization"), 2, 2, "test")
    monkeypatch.setitem(grid.CELL_BY_NAME, "t_one", one)
    out = grid.run_chunk("t_one", [0, 1], 5)
    assert len(out["failures"]["twfe/cluster"]) == 2 and "DesignError" in out["failures"]["twfe/cluster"][0]
    recs = {(r[0], r[1]): r for r in out["records"]}
    assert set(recs) == {(k, m) for k in (0, 1) for m in ("twfe/conley_taber", "twfe/randomization")}
    for r in recs.values():
        _, _, target, est, _, lo, hi, p, truth = r
        assert target == "att" and truth == 0.0 and lo <= est <= hi and 0 < p <= 1
    # with one treated state among 37 the randomization test enumerates all 37 assignments exactly
    assert recs[(0, "twfe/randomization")][7] * 37 == pytest.approx(round(recs[(0, "twfe/randomization")][7] * 37))


def test_cell_inference_keywords_reach_the_estimator(validation, monkeypatch):
    """A cell's ``inference_kw`` overrides the adapters' defaults for that cell only: the monthly cells cap
    exact enumeration (two states: random reassignments), the annual ones do not."""
    grid = validation.cells
    from decrimkit.errors import DesignError
    from decrimkit.estimators import did

    seen: list[dict] = []

    def fake_twfe(panel, **kw):
        seen.append(kw)
        raise DesignError("stop after the call")  # a refusal, counted by run_chunk as the replication's failure

    monkeypatch.setattr(did, "twfe", fake_twfe)
    for name in ("placebo_state_monthly_2", "placebo_state_annual_2"):
        out = grid.run_chunk(name, [0], 5, ["twfe/randomization"])
        assert "stop after the call" in out["failures"]["twfe/randomization"][0]
    monthly, annual = seen
    assert monthly == {"inference": "randomization", "seed": 5, "n_perm": grid.PLACEBO_PERM,
                       "max_exact": grid.PLACEBO_EXACT_MONTHLY, "cluster": "unit"}
    assert "max_exact" not in annual and annual["n_perm"] == grid.PLACEBO_PERM
    # two states: 37 * 36 = 1,332 reassignments (666 if both adopt in one month), above the monthly cap;
    # one state: 37, below it, so the one-state monthly rows stay exact
    assert grid.PLACEBO_EXACT_MONTHLY < 666 and grid.PLACEBO_EXACT_MONTHLY >= 37



def test_batched_bayes_chunk_bookkeeping(validation, monkeypatch):
    """The Bayesian placebo cell fits a chunk's replications in one batched call: each replication's draw and
    seed (seed + rep) reach the batch, records come back under their replication, every warning (one
    ConvergenceWarning per fit that fails the gate) is counted, CPU is shared by the replications, and a batch
    that raises counts every replication of the chunk as failed (none dropped)."""
    import warnings

    from decrimkit.errors import ConvergenceWarning, DesignError

    grid = validation.cells
    seen = {}

    def fake(deviations):
        def run(reps, seeds):
            seen[deviations] = ([sorted(rep.frame.loc[rep.frame["cohort"] > 0, "unit"].unique()) for rep in reps],
                                seeds)
            for _ in reps:
                warnings.warn("not converged", ConvergenceWarning, stacklevel=1)
            return [[(f"bayes_hdid/{deviations}", "att", 0.1 * k, 0.2, -0.3, 0.5, float("nan"), rep.truth["att"])]
                    for k, rep in enumerate(reps)]
        return run

    monkeypatch.setitem(grid.BATCHED, "bayes_hdid/none", fake("none"))
    monkeypatch.setitem(grid.BATCHED, "bayes_hdid/ar1", fake("ar1"))
    name = "placebo_state_annual_4_bayes"
    out = grid.run_chunk(name, [3, 4, 5], 7)
    cell = grid.CELL_BY_NAME[name]
    want = [sorted(validation.realdata.placebo(np.random.default_rng([7, grid.cell_key(name), r]), **cell.params)
                   .frame.query("cohort > 0")["unit"].unique()) for r in (3, 4, 5)]
    assert seen["none"] == (want, [10, 11, 12]) and seen["ar1"] == (want, [10, 11, 12])
    assert all(len(w) == 4 for w in want)
    assert sorted((r[0], r[1], r[3]) for r in out["records"]) == sorted(
        (r, f"bayes_hdid/{d}", 0.1 * k) for k, r in enumerate((3, 4, 5)) for d in ("none", "ar1"))
    assert out["warnings"] == {"bayes_hdid/none": 3, "bayes_hdid/ar1": 3} and not out["failures"]
    assert {k: len(v) for k, v in out["cpu"].items()} == {"dgp": 3, "bayes_hdid/none": 3, "bayes_hdid/ar1": 3}

    def broken(reps, seeds):
        raise DesignError("no")

    monkeypatch.setitem(grid.BATCHED, "bayes_hdid/ar1", broken)
    out = grid.run_chunk(name, [0, 1], 7)
    assert out["failures"]["bayes_hdid/ar1"] == ["rep 0: DesignError: no", "rep 1: DesignError: no"]
    assert {r[1] for r in out["records"]} == {"bayes_hdid/none"} and len(out["records"]) == 2

def test_placebo_verdicts_and_merge(validation):
    from validation.summarise import merge, verdict

    assert verdict({"n": 0}) == "refused"
    assert verdict({"n": 500, "size_5pct": 0.05, "coverage": 0.95}) == "valid"
    assert verdict({"n": 500, "size_5pct": 0.012, "coverage": 0.99}) == "conservative"
    assert verdict({"n": 500, "size_5pct": 0.21, "coverage": 0.79}) == "over-rejects"
    assert verdict({"n": 100, "size_5pct": None, "coverage": 0.65}) == "under-covers"
    assert verdict({"n": 100, "size_5pct": None, "coverage": 0.93}) == "calibrated"
    cell = {"dgp": "placebo", "params": {}, "estimators": [], "description": "", "notes": []}
    old = {"seed": 1, "quick": False, "band": [0.93, 0.97], "reps_override": None, "sbc": {"x": 1},
           "cells": [dict(cell, name="did_homogeneous", reps=1000), dict(cell, name="placebo_county_1", reps=10)],
           "table": [{"cell": "did_homogeneous", "estimator": "twfe", "target": "att", "n": 1000},
                     {"cell": "placebo_county_1", "estimator": "twfe/cluster", "target": "att", "n": 10}],
           "failures": {"placebo_county_1/twfe/cluster": ["rep 0: old"]}}
    new = {"seed": 1, "quick": False, "reps_override": 300, "sbc": None,
           "cells": [dict(cell, name="placebo_county_1", reps=300), dict(cell, name="placebo_state_annual_1", reps=5)],
           "table": [{"cell": "placebo_state_annual_1", "estimator": "twfe/cluster", "target": "att", "n": 5},
                     {"cell": "placebo_county_1", "estimator": "twfe/cluster", "target": "att", "n": 300}],
           "failures": {}}
    m = merge(old, new)
    assert [c["name"] for c in m["cells"]] == ["did_homogeneous", "placebo_state_annual_1", "placebo_county_1"]
    assert [(r["cell"], r["n"]) for r in m["table"]] == [("did_homogeneous", 1000), ("placebo_state_annual_1", 5),
                                                         ("placebo_county_1", 300)]
    assert m["failures"] == {} and m["sbc"] == {"x": 1}
    with pytest.raises(SystemExit):
        merge(old, dict(new, seed=2))
    # a partial rerun (--estimators) replaces only those methods' rows; the cell keeps its largest reps
    grid = validation.cells
    ests = grid.CELL_BY_NAME["placebo_county_1"].estimators
    old["table"] = [{"cell": "placebo_county_1", "estimator": e, "target": "att", "n": 10} for e in ests[:3]]
    old["failures"] = {f"placebo_county_1/{ests[0]}": ["rep 0: x"], f"placebo_county_1/{ests[1]}": ["rep 0: y"]}
    part = dict(new, cells=[dict(cell, name="placebo_county_1", reps=5)],
                table=[{"cell": "placebo_county_1", "estimator": ests[1], "target": "att", "n": 5}])
    m = merge(old, part, estimators=[ests[1]])
    assert [(r["estimator"], r["n"]) for r in m["table"] if r["cell"] == "placebo_county_1"] == [
        (ests[0], 10), (ests[1], 5), (ests[2], 10)]
    assert {c["name"]: c["reps"] for c in m["cells"]}["placebo_county_1"] == 10
    assert list(m["failures"]) == [f"placebo_county_1/{ests[0]}"]


def test_study_headlines_name_scored_methods(validation):
    """Every inference a study reports is scored in its matching placebo cell, and the README says whether the
    row rests on enough replications (500, or every distinct law) and flags an over-rejecting headline."""
    from validation.summarise import _headline_lines

    grid = validation.cells
    for _, _, cell, method in grid.HEADLINES:
        assert method in grid.CELL_BY_NAME[cell].estimators
    assert "att_gt/randomization" in grid.CELL_BY_NAME["placebo_state_annual_4"].estimators
    cell = {"dgp": "placebo", "estimators": [], "description": "", "notes": []}
    results = {"cells": [dict(cell, name="placebo_state_annual_1", params={"exhaustive": True}, reps=185),
                         dict(cell, name="placebo_state_annual_4", params={}, reps=500)],
               "table": [{"cell": "placebo_state_annual_1", "estimator": "twfe/conley_taber", "reps": 185, "n": 185,
                          "size_5pct": 0.054, "size_mcse": 0.016, "coverage": 0.946, "coverage_mcse": 0.017},
                         {"cell": "placebo_state_annual_4", "estimator": "att_gt/randomization", "reps": 300, "n": 300,
                          "size_5pct": 0.09, "size_mcse": 0.013, "coverage": 0.91, "coverage_mcse": 0.017}]}
    text = "\n".join(_headline_lines(results))
    assert "| twfe/conley_taber | 185 | 0.054 (0.016) | 0.946 (0.017) | valid | yes (all laws) |" in text
    assert "| att_gt/randomization | 300 | 0.090 (0.013) | 0.910 (0.017) | **over-rejects** | no |" in text
    assert "| imputation/randomization | 0 | | | not run | no |" in text
