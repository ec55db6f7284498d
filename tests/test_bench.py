"""Each benchmark workload module runs one tiny decrimkit cell through the harness and agrees with a peer.

Nothing is timed here: ``run_cell`` returns timings, but the test checks only the estimate, against one
peer where the peer is cheap, with the workload's own ``agree`` (the tolerances the estimator tests use).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _harness():
    spec = importlib.util.spec_from_file_location("bench_harness", BENCH / "harness.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _cell(workload: str, size: str, peer: str | None):
    harness = _harness()
    row = harness.run_cell(workload, "decrimkit", size, repeats=1)
    mod = harness.load(workload)
    assert row["workload"] == workload and row["n"] == mod.SIZES[size]
    if peer is not None:
        theirs = mod.TOOLS[peer](mod.make_data(size, 0))
        assert mod.agree(row["estimate"], theirs, peer), (row["estimate"], theirs)
    return row


@pytest.mark.parametrize(("workload", "size", "peer"), [
    ("att_gt", "mpdta", "csdid"),          # closed form: rtol 1e-6
    ("twfe", "1k", "pyfixest"),            # same normal equations: rtol 1e-6
    ("scm_placebo", "fit", "mlsynth"),     # same unweighted simplex least squares: abs 0.5 (stated in agree)
    ("scm_adh", "fit", "mlsynth"),         # nested V, same optimum: mean gap within 0.2
    ("sdid", "prop99", "diff-diff"),       # same Frank-Wolfe solver: atol 1e-5
])
def test_workload_cell(workload, size, peer):
    row = _cell(workload, size, peer)
    assert row["repeats"] == 1


def test_scm_loop_equals_batch():
    harness = _harness()
    mod = harness.load("scm_placebo")
    data = mod.make_data("placebo-10", 0)
    batch, loop = mod.TOOLS["decrimkit"](data), mod.TOOLS["decrimkit-loop"](data)
    assert mod.agree(batch, loop, "decrimkit-loop")
    # the fit's mean post-period gap: Abadie et al. (2010) report about -19 packs per capita
    fit = harness.run_cell("scm_placebo", "decrimkit", "fit", repeats=1)
    assert -25 < fit["estimate"] < -15


def test_wild_and_bayes_modules_are_well_formed():
    # the wild bootstrap (9,999 draws) and 4 x 1000 NUTS draws are too slow for the test budget;
    # their estimators are tested in tests/inference and tests/estimators/bayes
    harness = _harness()
    for name in ("twfe_wild", "bayes_hier"):
        mod = harness.load(name)
        assert "decrimkit" in mod.TOOLS and set(mod.QUICK_SIZES) <= set(mod.SIZES)
        assert mod.agree(0.5, 0.5)
    sys.modules.pop("bayes_hier", None)
