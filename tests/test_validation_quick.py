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
    assert "poisson_mean0.2" in readme and "Quick run" in readme
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
