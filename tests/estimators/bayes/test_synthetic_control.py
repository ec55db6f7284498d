"""bayes.synthetic_control: a known effect and known donor weights on a simulated panel."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from decrimkit import Panel
from decrimkit.errors import DesignError
from decrimkit.estimators import bayes


@pytest.fixture(scope="module")
def synth_panel() -> Panel:
    """8 donors x 20 periods of smooth series; the treated unit is 0.5 d0 + 0.3 d1 + 0.2 d2 plus noise
    (sd 0.1) and drops by 2 from period 15 (year 2014)."""
    rng = np.random.default_rng(3)
    t = np.arange(20)
    donors = np.array([10 + 0.3 * k + np.sin(t / (2 + k)) * (1 + 0.2 * k) + 0.05 * k * t for k in range(8)])
    treated = 0.5 * donors[0] + 0.3 * donors[1] + 0.2 * donors[2] + rng.normal(0, 0.1, 20) - 2.0 * (t >= 15)
    rows = [{"unit": f"d{k}", "year": 2000 + s, "y": donors[k, s], "adopt": 0} for k in range(8) for s in range(20)]
    rows += [{"unit": "T", "year": 2000 + s, "y": treated[s], "adopt": 2015} for s in range(20)]
    return Panel.from_frame(pd.DataFrame(rows), unit="unit", time="year", outcome="y", cohort="adopt")


def test_synthetic_control_recovers_effect(synth_panel):
    res = bayes.synthetic_control(synth_panel, treated="T", start=2015, chains=2, draws=800, tune=800, seed=8)
    assert res.converged, res.diagnostics()
    lo, hi = res.hdi()
    assert lo <= -2.0 <= hi
    assert res.estimate == pytest.approx(-2.0, abs=0.3)
    w = res.effect("weights").set_index("donor")["mean"]
    assert w.sum() == pytest.approx(1.0, abs=1e-9)  # posterior mean of simplex weights stays on the simplex
    assert w[["d0", "d1", "d2"]].sum() > 0.6
    cf = res.counterfactual()
    assert cf["post"].sum() == 5 and len(cf) == 20
    import matplotlib.figure

    assert isinstance(res.plot(), matplotlib.figure.Figure)


def test_synthetic_control_checks(synth_panel):
    with pytest.raises(DesignError, match="not a unit"):
        bayes.synthetic_control(synth_panel, treated="Z", start=2015)
    with pytest.raises(DesignError, match="pre-periods"):
        bayes.synthetic_control(synth_panel, treated="T", start=2001)


@pytest.fixture(scope="module")
def factor_panel() -> Panel:
    """30 donors, 6 pre- and 3 post-periods from a two-factor model: y_it = a_i + l_i'f_t + e_it (sd 0.2).
    The treated unit's level and loadings are the average of donors 0-2's, so its untreated path is
    close to theirs but not an exact combination (noise); from period 6 (2006) it drops by 3."""
    rng = np.random.default_rng(11)
    n_donors, n_periods = 30, 9
    t = np.arange(n_periods)
    f = np.stack([0.8 * t, 2.0 * np.sin(t / 1.5)])                      # (2, T) common factors
    load = rng.normal(1.0, 0.6, (n_donors, 2))
    level = rng.normal(10.0, 2.0, n_donors)
    donors = level[:, None] + load @ f + rng.normal(0, 0.2, (n_donors, n_periods))
    treated = level[:3].mean() + load[:3].mean(axis=0) @ f + rng.normal(0, 0.2, n_periods) - 3.0 * (t >= 6)
    rows = [{"unit": f"d{k}", "year": 2000 + s, "y": donors[k, s], "adopt": 0}
            for k in range(n_donors) for s in range(n_periods)]
    rows += [{"unit": "T", "year": 2000 + s, "y": treated[s], "adopt": 2006} for s in range(n_periods)]
    return Panel.from_frame(pd.DataFrame(rows), unit="unit", time="year", outcome="y", cohort="adopt")


def test_regularised_horseshoe_converges_with_many_donors(factor_panel):
    """J = 30 donors and T0 = 6 pre-periods: exact pre-period fits abound, which made the plain horseshoe
    (uncentred, half-normal sigma) diverge and split its chains. The regularised horseshoe must pass the
    convergence gate (r-hat < 1.01, bulk ESS >= 400, no divergences; a failure would raise here because
    tests turn the ConvergenceWarning into an error, and strict=True raises ConvergenceError) and its 95%
    HDI must cover the true effect of -3."""
    res = bayes.synthetic_control(factor_panel, treated="T", start=2006, weights="horseshoe", chains=4,
                                  draws=500, tune=500, seed=2, strict=True)
    diag = res.diagnostics_
    assert res.converged and diag.divergences == 0, diag.problems
    assert diag.table["r_hat"].max() < 1.01
    lo, hi = res.hdi()
    assert lo <= -3.0 <= hi
    assert hi < 0  # informative: the interval excludes no effect
    assert res.spec.options["p0_used"] == 3.0
    w = res.effect("weights").set_index("donor")["mean"]
    assert len(w) == 30 and np.isfinite(w).all()
