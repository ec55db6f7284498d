"""bayes.its: recovery of a known level change on simulated counts, the counterfactual table, input checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from decrimkit.errors import DataError, DesignError, SpecificationError
from decrimkit.estimators import bayes


@pytest.fixture(scope="module")
def fitted(monthly_counts):
    y, _ = monthly_counts
    return bayes.its(y, start="2021-01", season="fourier", chains=2, draws=600, tune=600, seed=3)


def test_its_recovers_level_change(fitted, monthly_counts):
    _, level = monthly_counts
    assert fitted.converged, fitted.diagnostics()
    par = fitted.effect("parameters").set_index("term")
    lo, hi = par.loc["level_change", ["hdi_low", "hdi_high"]]
    assert lo <= level <= hi
    # sd of the level change is ~0.06 here: a posterior mean within 0.15 of the truth is 2.5 sd
    assert par.loc["level_change", "mean"] == pytest.approx(level, abs=0.15)


def test_its_counterfactual_and_totals_agree(fitted, monthly_counts):
    y, _ = monthly_counts
    cf = fitted.counterfactual()
    assert len(cf) == len(y) and cf["post"].sum() == 12
    np.testing.assert_array_equal(cf["observed"].to_numpy(), y.to_numpy())
    # the last running cumulative mean is the posterior mean of the total effect (same draws)
    assert cf["cumulative_mean"].iloc[-1] == pytest.approx(fitted.estimate, rel=1e-9)
    over = fitted.effect("overall").set_index("term")
    assert over.loc["averted", "mean"] == pytest.approx(-over.loc["total_effect", "mean"], rel=1e-12)
    assert fitted.estimate < 0 and fitted.hdi()[1] < 0
    assert fitted.effect("monthly").shape[0] == 12
    for group in ("prior", "posterior", "posterior_predictive", "log_likelihood", "sample_stats"):
        assert group in fitted.idata.groups()


def test_its_plots(fitted):
    import matplotlib.figure

    for kind in ("counterfactual", "cumulative", "ppc", "forest"):
        assert isinstance(fitted.plot(kind), matplotlib.figure.Figure)


def test_its_input_checks(monthly_counts):
    y, _ = monthly_counts
    with pytest.raises(DataError, match="consecutive months"):
        bayes.its(y.drop(y.index[5]), start="2021-01")
    with pytest.raises(DesignError, match="12 pre-period"):
        bayes.its(y, start="2018-06")
    with pytest.raises(SpecificationError, match="unknown prior"):
        bayes.its(y, start="2021-01", priors={"levl_sd": 1.0})
    with pytest.raises(SpecificationError, match="season"):
        bayes.its(y, start="2021-01", season="weekly")
    with pytest.raises(DataError, match="comparison covers"):
        bayes.its(y, start="2021-01", comparison=y.iloc[:-1])
    with pytest.raises(DataError, match="whole counts"):
        bayes.its(y - 1000.0, start="2021-01")
    with pytest.raises(SpecificationError, match="sampler"):
        bayes.its(y, start="2021-01", sampler="stan")


def test_its_does_not_mutate_input(monthly_counts):
    y, _ = monthly_counts
    before = y.copy()
    from decrimkit.estimators.bayes._its import its_design

    its_design(y, start="2021-01", comparison=None, family="negative_binomial", covid=("2020-03", "2020-06"),
               exclude=("2020-04", "2020-05"))
    pd.testing.assert_series_equal(y, before)
