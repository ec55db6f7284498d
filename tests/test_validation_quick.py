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
    import validation.run

    return validation


# distributed's own sockets and event loop can emit ResourceWarning / unraisable-exception warnings while a
# LocalCluster starts or stops on a saturated machine; they are Dask internals, not decrimkit's.
@pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning")
def test_quick_pipeline_on_dask(validation, tmp_path):
    path = validation.run.run(tmp_path, quick=True, reps=4, cells=["poisson_mean1", "poisson_mean0.2"], sbc=False,
                              workers=1)
    res = json.loads(path.read_text(encoding="utf-8"))
    assert res["quick"] is True and res["seed"] == validation.run.DEFAULT_SEED
    rows = {(r["cell"], r["estimator"], r["target"]): r for r in res["table"]}
    assert set(rows) == {("poisson_mean1", "poisson", "log_rr"), ("poisson_mean0.2", "poisson", "log_rr")}
    for r in rows.values():
        assert r["n"] == 4 and r["failures"] == 0
        assert 0.0 <= r["coverage"] <= 1.0 and r["rmse"] >= abs(r["bias"])
    assert rows[("poisson_mean1", "poisson", "log_rr")]["truth"] == pytest.approx(np.log(1.25), rel=1e-12)
    readme = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert "poisson_mean0.2" in readme and "Quick run" in readme and "## Run cost" in readme
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
    groups = [{name for name, _ in task} for task in quick]
    assert {"did_homogeneous", "did_dynamic", "did_ar1_null", "did_few_treated"} in groups
    assert {"synth_one_treated_null", "synth_one_treated_effect"} in groups  # both run ascm_conformal
    assert {"poisson_mean1", "poisson_mean0.2"} in groups and len(quick) == 5
    for task in quick:
        for name, reps in task:
            assert reps == list(range(grid.CELL_BY_NAME[name].quick_reps))
    full = run._tasks(names, quick=False, reps=None)
    assert all(len(task) == 1 for task in full)
    covered: dict[str, list[int]] = {}
    for (name, reps), in full:
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
