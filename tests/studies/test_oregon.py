"""Oregon Measure 110 study: data layer facts and a quick end-to-end run.

Published Oregon estimates come from other data (NVSS final counts, other windows), so no test here
asserts agreement with them (see REFERENCES.md); the tests check the construction of the panel and
that the study runs, writes its outputs and gives finite, reproducible numbers.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import study_runs
from decrimkit.errors import DataError, DesignError, FewTreatedWarning, SpecificationError
from decrimkit.studies.oregon import data as oregon_data

pytestmark = pytest.mark.xdist_group("studies")


@pytest.fixture(scope="module")
def inputs():
    return oregon_data.load_inputs()


@pytest.fixture(scope="module")
def study(inputs):
    return oregon_data.build(inputs)


def test_rolling_sums_cannot_identify_monthly_counts():
    # Two monthly series differing by a 12-periodic zero-sum pattern have identical 12-month sums,
    # so monthly counts are identified only up to 11 free values: exact up to float rounding.
    rng = np.random.default_rng(3)
    monthly = rng.poisson(50, size=60).astype(float)
    other = monthly + np.resize(oregon_data.periodic_null_pattern(7.0), 60)
    assert not np.allclose(monthly, other)
    np.testing.assert_allclose(oregon_data.rolling_sums(monthly), oregon_data.rolling_sums(other), rtol=0, atol=1e-9)
    # differences of rolling sums are Y_t - Y_{t-12}
    s = oregon_data.rolling_sums(monthly)
    np.testing.assert_allclose(np.diff(s), monthly[12:] - monthly[:-12], atol=1e-9)


def test_population_interpolates_july_values(inputs):
    months = pd.period_range("2019-01", "2025-04", freq="M")
    mp = oregon_data.monthly_population(inputs.population, months).set_index(["state", "month"])["population"]
    pop = inputs.population.set_index(["state", "year"])["population"]
    # July values are the Census estimates exactly; January is halfway between two Julys
    assert mp[("OR", pd.Period("2020-07", "M"))] == pop[("OR", 2020)]
    assert mp[("OR", pd.Period("2021-01", "M"))] == pytest.approx((pop[("OR", 2020)] + pop[("OR", 2021)]) / 2,
                                                                  rel=1e-12)
    # no 2025 estimate: carried forward from July 2024
    assert mp[("OR", pd.Period("2025-04", "M"))] == pop[("OR", 2024)]


def test_feb_jan_windows_align_with_measure_110(study):
    a = study.annual
    o = a.loc[a["state"] == "OR"].set_index("year")
    # the 2021 window is February 2021 - January 2022: it ends in January 2022
    assert o.loc[oregon_data.START_YEAR, "window_end"] == pd.Period("2022-01", "M")
    assert o.loc[oregon_data.START_YEAR - 1, "window_end"] < oregon_data.POLICY_START
    # rate = deaths / mean population over the window * 1e5
    assert o.loc[2021, "rate"] == pytest.approx(o.loc[2021, "deaths"] / o.loc[2021, "population"] * 1e5, rel=1e-12)


def test_donor_rules(inputs, study):
    donors = set(study.rules.donors)
    assert "OR" not in donors and "WA" not in donors
    assert not donors & set(oregon_data.MISSING_STATES)
    assert "WA" in study.rules.excluded
    with_wa = oregon_data.build(inputs, pool="with_wa")
    assert set(with_wa.rules.donors) == donors | {"WA"}
    strict = oregon_data.build(inputs, pool="strict")
    assert set(strict.rules.donors) < donors
    # every excluded state is recorded on the panel with its reason
    panel = study.panel()
    assert any("WA" in reason for _, reason in study.excluded)
    assert panel.n_units == len(donors) + 1


def test_fentanyl_proxy_is_dated_before_the_policy(study):
    # the proxy for Oregon must not be able to respond to Measure 110 itself
    assert study.onset["OR"] < oregon_data.POLICY_START
    s = study.annual.set_index(["state", "year"])["surge"]
    assert s.between(0, 1).all()
    assert s[("OR", oregon_data.START_YEAR)] == 1.0


def test_bad_inputs_raise_named_errors(inputs):
    with pytest.raises(DataError, match="lacks columns"):
        oregon_data.monthly_deaths(inputs.overdose.drop(columns="predicted_value"))
    with pytest.raises(SpecificationError, match="pool"):
        oregon_data.build(inputs, pool="everyone")
    with pytest.raises(SpecificationError, match="frequency"):
        oregon_data.build(inputs, frequency="weekly")


def test_did_path_matches_twfe(study):
    # with one treated unit, a balanced panel and no covariates, TWFE is the 2x2 difference in means,
    # which is the mean post gap of the parallel-trends path: exact up to rounding
    from decrimkit.estimators import did
    from decrimkit.studies.oregon import methods

    panel = study.panel(years=(2014, 2023))
    path = methods.did_path(panel).set_index("year")
    with pytest.warns(FewTreatedWarning, match="1 treated unit"):  # Oregon alone: the point estimate only
        att = did.twfe(panel, cluster=None).att
    assert path.loc[2021:, "gap"].mean() == pytest.approx(att, rel=1e-9)
    # the default cluster-robust SE with one treated state would be far too small: refused
    with pytest.raises(DesignError, match=r"1 treated and \d+ comparison cluster"):
        did.twfe(panel)


def test_conley_taber_interval():
    from decrimkit.studies.oregon.methods import conley_taber

    placebo = np.arange(-9.5, 10.5, 1.0)  # 20 placebo effects, symmetric about 0
    lo, hi, p = conley_taber(12.0, placebo)
    q = np.quantile(placebo, [0.025, 0.975])
    assert (lo, hi) == pytest.approx((12.0 - q[1], 12.0 - q[0]))
    assert p == pytest.approx(1 / 21)  # Oregon is the most extreme of 21 runs


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    import warnings


    with warnings.catch_warnings():  # an environment notice from PyTensor, not about the study
        warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS installation", category=UserWarning)
        return study_runs.quick_run("oregon", 0, study_runs.shared_base(tmp_path_factory))


def test_quick_run_writes_outputs(quick_run):
    out = quick_run
    for name in ("results.json", "provenance.json", "report.md", "report.html"):
        assert (out / name).is_file()
    figs = {p.stem for p in (out / "figures").glob("*.png")}
    assert {"forest", "placebo_spaghetti", "trajectory_scm", "gap_scm", "raw_series", "reversal"} <= figs
    assert {"estimates", "donor_weights", "robustness", "fentanyl_contrast", "published"} <= {
        p.stem for p in (out / "tables").glob("*.csv")}
    results = {r["name"]: r for r in json.loads((out / "results.json").read_text())["results"]}
    for key in ("scm", "ascm", "sdid", "mcnnm", "mcnnm_adj", "bayes_scm", "did", "did_adj", "scm_late"):
        assert np.isfinite(results[f"{key}_rate"]["estimate"])
        assert np.isfinite(results[f"{key}_excess_deaths"]["estimate"])
    for key in ("sdid", "mcnnm", "mcnnm_adj", "bayes_scm"):
        assert np.isfinite(results[f"{key}_rate"]["se"]) and results[f"{key}_rate"]["se"] > 0
    assert 0 < results["scm_rate"]["p_value"] <= 1
    # every method: uncertainty (interval, SE or p-value) for the rate and for excess deaths per year
    for key in ("scm", "ascm", "sdid", "mcnnm", "mcnnm_adj", "bayes_scm", "did", "did_adj", "scm_late"):
        for kind in ("rate", "excess_deaths"):
            r = results[f"{key}_{kind}"]
            assert r["conf_int"] is not None or r["se"] is not None or r["p_value"] is not None, (key, kind)
    # ASCM: a conformal interval for the average effect, converted to deaths with the same factor
    lo, hi = results["ascm_rate"]["conf_int"]
    assert lo < hi and 0 < results["ascm_rate"]["p_value"] <= 1
    k = results["ascm_excess_deaths"]["estimate"] / results["ascm_rate"]["estimate"]
    assert results["ascm_excess_deaths"]["conf_int"] == pytest.approx([lo * k, hi * k], rel=1e-9)
    # the MCMC row carries its convergence gate; a failed gate is flagged wherever its number appears
    assert results["bayes_scm_converged"]["estimate"] in (0.0, 1.0)
    if results["bayes_scm_converged"]["estimate"] == 0.0:
        assert results["bayes_scm_rate"]["note"].startswith("NOT CONVERGED")
        assert results["bayes_scm_excess_deaths"]["note"].startswith("NOT CONVERGED")
        assert "NOT CONVERGED" in (out / "report.md").read_text()
    assert any(k.startswith("fentanyl_contrast_") for k in results)
    weights = pd.read_csv(out / "tables" / "donor_weights.csv").set_index("donor")
    # simplex weights; the table drops weights below 0.001, so allow for a few of those
    assert 0.95 <= weights["ADH SCM"].sum() <= 1.0 + 1e-9
    assert "WA" not in weights.index or weights.loc["WA", "ADH SCM"] == 0
