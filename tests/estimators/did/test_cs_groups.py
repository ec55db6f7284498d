"""att_gt's grouped NumPy cell fits against the jitted per-cell kernel of ``_drdid`` (the reference).

``fit_groups`` rearranges the DRDID formulas so that cells sharing units, covariates and weights are
fitted together (``dy`` as a matrix); the jitted ``cell_estimate_given_ps``, vmapped over padded cells,
computes them one cell at a time. The two must agree to rounding (rtol 1e-10, atol 1e-12 times the
scale of the values), for every method, comparison group, base period, with weights and a time-varying
covariate (several propensity-score groups per cohort).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from decrimkit import Panel
from decrimkit.datasets import load_dataset
from decrimkit.estimators.did import _cs_cells
from decrimkit.estimators.did._cs_design import cell_design, compact_cells, logit_groups
from decrimkit.estimators.did._cs_groups import fit_groups
from decrimkit.estimators.did._drdid import METHODS


def _kernel_fit(design, method: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The per-cell jitted kernel on compacted cells, scattered back to (n_units, K)."""
    idx, live, cells = compact_cells(design)
    fit = _cs_cells.att_gt_kernel(*cells, METHODS.index(method), *logit_groups(design), float(design.n_units))
    full = np.zeros((idx.shape[0], design.n_units + 1))
    full[np.arange(idx.shape[0])[:, None], np.where(live, idx, design.n_units)] = np.asarray(fit.inf)
    return np.asarray(fit.att), full[:, : design.n_units].T, np.asarray(fit.ps_max), np.asarray(fit.converged)


@pytest.fixture(scope="module")
def panel() -> Panel:
    data = load_dataset("mpdta").copy()
    rng = np.random.default_rng(11)
    data["x"] = data["lpop"] + 0.3 * rng.standard_normal(len(data))  # time-varying
    data["w"] = np.exp(0.5 * (data["lpop"] - data["lpop"].mean()))
    return Panel.from_frame(data, unit="countyreal", time="year", outcome="lemp", cohort="first.treat",
                            covariates=["lpop", "x"], weights="w")


@pytest.mark.parametrize("method", ["dr", "ipw", "reg"])
@pytest.mark.parametrize(("control", "base_period", "covariates", "weights"), [
    ("never", "varying", ("lpop",), None),
    ("notyet", "universal", ("lpop",), "weight"),
    ("never", "universal", ("x",), "weight"),
    ("notyet", "varying", ("lpop", "x"), None),
    ("never", "varying", (), None),
])
def test_grouped_fit_equals_per_cell_kernel(panel, method, control, base_period, covariates, weights) -> None:
    design = cell_design(panel, control=control, method=method, covariates=covariates, anticipation=0,
                         base_period=base_period, weights=weights, cluster=None)
    att0, inf0, ps0, conv0 = _kernel_fit(design, method)
    got = fit_groups(design, method)
    live = ~design.is_base
    assert got.inf.shape == (design.n_units, design.gpos.size)
    np.testing.assert_allclose(got.att[live], att0[live], rtol=1e-10, atol=1e-12 * np.abs(att0).max())
    np.testing.assert_allclose(got.inf[:, live], inf0[:, live], rtol=1e-10, atol=1e-12 * np.abs(inf0).max())
    np.testing.assert_allclose(got.ps_max, ps0, rtol=1e-12, atol=0)
    assert np.array_equal(got.converged, conv0)
    # units outside a cell get exactly zero
    outside = np.array([~design.members(k) for k in range(design.gpos.size)]).T
    assert np.all(got.inf[outside] == 0.0)


def test_grouped_fit_reports_a_non_converging_logit() -> None:
    """A covariate that separates the cohort: the logit diverges, flagged as the kernel flags it."""
    rows = []
    for i in range(40):
        g = 3 if i < 20 else 0
        xv = float(i) if i < 20 else float(-i)  # treated have x >= 0, never treated x < 0: separation
        rows += [{"id": i, "t": t, "y": 0.1 * t + (0.5 if g and t >= g else 0.0) + 0.01 * ((i * 7 + t) % 5),
                  "g": g, "x": xv} for t in range(1, 5)]
    panel = Panel.from_frame(pd.DataFrame(rows), unit="id", time="t", outcome="y", cohort="g", covariates=["x"])
    design = cell_design(panel, control="never", method="dr", covariates=("x",), anticipation=0,
                         base_period="varying", weights=None, cluster=None)
    got = fit_groups(design, "dr")
    _, _, ps0, conv0 = _kernel_fit(design, "dr")
    assert not got.converged.any() and not conv0.any()
    assert (got.ps_max >= 0.999).all() and (ps0 >= 0.999).all()
