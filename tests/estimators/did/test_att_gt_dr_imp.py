"""Improved doubly robust ATT(g,t) (``method="dr_imp"``, DRDID::drdid_imp_panel).

Cross-checks: (1) without covariates the improved and the traditional DR estimators are the same
difference in mean changes, so ``dr_imp`` must reproduce ``dr`` (itself matched to R ``did`` in
test_att_gt.py). (2) With covariates, each 2x2 cell is recomputed with the improved panel estimator
of the ``differences`` package (0.3), which implements drdid_imp_panel: its tilting loss, gradient and
Hessian, its odds-weighted outcome regression and its ATT/influence-function formula. Neither the
installed ``drdid`` nor ``csdid`` package offers the improved estimator. The peer's own optimiser
(scipy trust-exact at its default tolerance) stops with a first-order condition of about 1e-5, so its
tilting coefficients are solved here (scipy root on the peer's gradient and Hessian) until the
first-order condition is within 1e-10 of the size of its terms, before the peer's formulas are
applied; the peer's unmodified end-to-end output is also compared, loosely. The peer follows DRDID before 1.2.2 (scores capped at 1 - 1e-16, no trimming),
decrimkit follows DRDID 1.2.3 (cap 1 - 1e-6, comparison units with scores >= 0.995 trimmed, as for
"dr"); the two agree whenever no score reaches the cap or the trimming level, which each comparison
checks first. (3) Named errors when the tilting fit has no solution.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from differences.models.did.att_if import dr_improved_panel_att_if
from differences.models.did.did_cal import drdid_panel_improved
from differences.models.did.pscore_cal import loss_ps_ipt_grad, loss_ps_ipt_hess
from differences.models.did.utility import wols_out_reg
from scipy import optimize

from decrimkit import Panel
from decrimkit.datasets import load_dataset
from decrimkit.errors import ConvergenceError
from decrimkit.estimators import did
from decrimkit.estimators.did._cs_design import cell_design

RTOL = 1e-6  # same closed form once the tilting fit is solved: only floating-point order differs
FOC_RTOL = 1e-10  # tilting first-order condition, relative to the mean size of its summands


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return load_dataset("mpdta")


@pytest.fixture(scope="module")
def panel(frame: pd.DataFrame) -> Panel:
    return Panel.from_frame(frame, unit="countyreal", time="year", outcome="lemp", cohort="first.treat",
                            covariates=["lpop"])


@pytest.fixture(scope="module")
def imp_lpop(panel: Panel):
    return did.att_gt(panel, method="dr_imp", covariates=("lpop",), n_boot=0)


def _peer_cell(dy: np.ndarray, d: np.ndarray, x: np.ndarray, w: np.ndarray) -> tuple[float, np.ndarray]:
    """The peer's improved DR on one 2x2 cell, with its tilting first-order condition solved tightly."""
    gamma = optimize.root(loss_ps_ipt_grad, np.zeros(x.shape[1]), args=(d, x, w),
                          jac=lambda g, *a: loss_ps_ipt_hess(g, *a), tol=1e-12).x
    # What matters is the first-order condition at the returned point, not the solver's flag (whose
    # step-size test at a tight tol depends on the CPU's rounding). The peer's gradient is a mean of n
    # per-unit terms; rounding alone leaves about n * eps (~1e-13) of their mean magnitude.
    summands = np.abs(np.where(d == 0, np.exp(x @ gamma), 1.0) * w)[:, None] * np.abs(x)
    foc = np.abs(loss_ps_ipt_grad(gamma, d, x, w))
    assert np.all(foc <= FOC_RTOL * summands.mean(axis=0)), (foc, summands.mean(axis=0))
    ps = np.minimum(1 / (1 + np.exp(-x @ gamma)), 1 - 1e-16)
    assert ps.max() < 0.995  # neither DRDID >= 1.2.2's cap nor its trimming is active in this cell
    out = wols_out_reg(endog=dy, exog=x, weights=w, mask=d == 0, pscore_fit=ps)
    att, inf = dr_improved_panel_att_if(endog=dy[:, None], treated=d[:, None], weights=w[:, None],
                                        out_delta=out[:, None], ps_fit=ps[:, None])
    return float(att), np.ravel(inf)


def test_without_covariates_equals_traditional_dr(panel: Panel) -> None:
    dr = did.att_gt(panel, method="dr", n_boot=199, seed=3)
    imp = did.att_gt(panel, method="dr_imp", n_boot=199, seed=3)
    np.testing.assert_allclose(imp.estimate, dr.estimate, rtol=0, atol=1e-8)  # all 12 ATT(g,t)
    np.testing.assert_allclose(imp.se, dr.se, rtol=1e-8)
    # the same influence functions feed the aggregations and the multiplier bootstrap
    np.testing.assert_allclose(imp.boot_se, dr.boot_se, rtol=1e-8)
    for kind in ("simple", "dynamic", "group", "calendar"):
        a, b = imp.aggregate(kind), dr.aggregate(kind)
        np.testing.assert_allclose(a.estimate, b.estimate, rtol=0, atol=1e-8)
        assert a.overall[1] == pytest.approx(b.overall[1], rel=1e-8)
    assert imp.spec.options["method"] == "dr_imp"


def test_lpop_cells_match_peer_improved_dr(frame: pd.DataFrame, imp_lpop) -> None:
    # every cell rebuilt from the raw data: cohort g against never-treated units, change from the base
    # period (g - 1 after treatment, t - 1 before), lpop (time-invariant) as covariate
    wide = frame.pivot(index="countyreal", columns="year", values="lemp")
    unit = frame.groupby("countyreal")
    lpop, first = unit["lpop"].first(), unit["first.treat"].first()
    n = len(first)
    assert imp_lpop.influence.shape == (n, 12)
    for k, (g, t) in enumerate(zip(imp_lpop.group, imp_lpop.time)):
        base = g - 1 if t >= g else t - 1
        cell = ((first == g) | (first == 0)).to_numpy()
        d = (first[cell] == g).to_numpy(dtype=float)
        dy = (wide.loc[cell, t] - wide.loc[cell, base]).to_numpy()
        x = np.column_stack([np.ones(cell.sum()), lpop[cell].to_numpy()])
        att, inf = _peer_cell(dy, d, x, np.ones(cell.sum()))
        inf_full = inf * n / cell.sum()  # R did rescales a cell's influence function to the whole sample
        assert imp_lpop.estimate[k] == pytest.approx(att, rel=RTOL)
        np.testing.assert_allclose(imp_lpop.influence[cell, k], inf_full, rtol=RTOL, atol=1e-10)
        assert np.all(imp_lpop.influence[~cell, k] == 0)
        assert imp_lpop.se[k] == pytest.approx(np.sqrt(np.mean(inf_full**2) * cell.sum() / n) / np.sqrt(n), rel=RTOL)
        if k in (0, 11):
            # the peer end to end (its own optimiser): the ATT is first-order insensitive to the loose
            # tilting solution, the influence function is not (its stopping rule leaves ~1e-5 in the FOC)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                peer = drdid_panel_improved(endog=dy, exog=x, treated=d, weights=np.ones(cell.sum()))
            assert imp_lpop.estimate[k] == pytest.approx(float(peer["att"]), rel=1e-8)
            peer_se = np.sqrt(np.mean((np.ravel(peer["influence_func"]) * n / cell.sum()) ** 2) * cell.sum() / n)
            assert imp_lpop.se[k] == pytest.approx(peer_se / np.sqrt(n), rel=1e-3)


def test_weighted_notyet_varying_covariate_matches_peer(frame: pd.DataFrame) -> None:
    # cells as att_gt builds them (validated against R did and csdid in test_att_gt.py), estimator from the peer
    data = frame.copy()
    rng = np.random.default_rng(5)
    data["x"] = data["lpop"] + 0.3 * rng.standard_normal(len(data))  # time-varying: earlier period of each cell
    data["w"] = np.exp(0.5 * (data["lpop"] - data["lpop"].mean()))
    panel = Panel.from_frame(data, unit="countyreal", time="year", outcome="lemp", cohort="first.treat",
                             covariates=["x"], weights="w")
    opts = dict(control="notyet", covariates=("x",), anticipation=0, base_period="varying")
    res = did.att_gt(panel, method="dr_imp", n_boot=0, **opts)
    design = cell_design(panel, method="dr", weights=None, cluster=None, **opts)
    n = design.n_units
    for k in range(len(res.estimate)):
        cell = design.mask[k] > 0
        d, w = design.treat[k, cell], design.w_unit[cell]
        dy = design.y_post[k, cell] - design.y_pre[k, cell]
        att, inf = _peer_cell(dy, d, design.x[k, cell], w / w.mean())
        assert res.estimate[k] == pytest.approx(att, rel=RTOL)
        np.testing.assert_allclose(res.influence[cell, k], inf * n / cell.sum(), rtol=RTOL, atol=1e-10)


def test_aggregation_and_bootstrap_work_for_dr_imp(imp_lpop, panel: Panel) -> None:
    dyn = imp_lpop.aggregate("dynamic")
    # an aggregation is a fixed linear combination of the cells (plus the cohort-share influence terms)
    post = imp_lpop.att.query("event_time == 0")
    sizes = panel.frame.groupby("cohort")["unit"].nunique()
    w = sizes.loc[post["group"].to_numpy()].to_numpy(dtype=float)
    assert dyn[0] == pytest.approx(np.sum(w * post["estimate"].to_numpy()) / w.sum(), rel=1e-10)
    a = did.att_gt(panel, method="dr_imp", covariates=("lpop",), n_boot=299, seed=11)
    b = did.att_gt(panel, method="dr_imp", covariates=("lpop",), n_boot=299, seed=11)
    np.testing.assert_array_equal(a.boot_se, b.boot_se)
    np.testing.assert_allclose(a.boot_se, a.se, rtol=0.3)  # bootstrap SEs track the analytic ones
    np.testing.assert_array_equal(a.estimate, imp_lpop.estimate)


def _no_tilt_solution(seed: int = 0) -> pd.DataFrame:
    """Cohort 3's mean of ``s`` lies beyond every never-treated unit's ``s``: no odds reweighting of the
    comparison units can match it, so the tilting loss is unbounded below, although the logit
    (which only needs overlap, not a reachable mean) converges."""
    rng = np.random.default_rng(seed)
    n, periods = 60, 5
    unit = np.repeat(np.arange(n), periods)
    first = np.array([0, 3, 4])[np.arange(n) % 3]
    s = np.where(first == 3, rng.uniform(0.1, 1.9, n), rng.uniform(0.0, 0.9, n))
    return pd.DataFrame({"id": unit, "year": np.tile(np.arange(1, periods + 1), n), "first": first[unit],
                         "s": s[unit], "y": rng.standard_normal(n * periods) + 0.1 * np.tile(np.arange(periods), n)})


def test_error_tilting_does_not_converge() -> None:
    frame = _no_tilt_solution()
    units = frame.groupby("id")[["first", "s"]].first()
    assert units.loc[units["first"] == 3, "s"].mean() > units.loc[units["first"] == 0, "s"].max()
    panel = Panel.from_frame(frame, unit="id", time="year", outcome="y", cohort="first", covariates=["s"])
    # the logit propensity score of the traditional DR has a solution on these data (no separation)
    cell = units["first"].isin([0, 3]).to_numpy()
    x = np.column_stack([np.ones(cell.sum()), units["s"].to_numpy()[cell]])
    d = (units["first"].to_numpy()[cell] == 3).astype(float)
    assert sm.Logit(d, x).fit(disp=0).mle_retvals["converged"]
    with pytest.raises(ConvergenceError, match=r"tilting.*4 cells, first \(group 3, period 2\)"):
        did.att_gt(panel, covariates=("s",), method="dr_imp", n_boot=0)
    # the peer fails on the same cell too
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="did not converge"):
            drdid_panel_improved(endog=np.zeros(cell.sum()), exog=x, treated=d, weights=np.ones(cell.sum()))
