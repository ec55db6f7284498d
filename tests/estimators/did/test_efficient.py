"""did.efficient (Roth & Sant'Anna 2023) against the R ``staggered`` README on pj_officer_level_balanced.

Reference values: ``tests/references/staggered_pj.json`` (staggered 1.2.3 README, REFERENCES.md section 4).
Tolerances: estimates rtol 1e-6 (the README prints 7 significant digits), SEs rtol 1e-4.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from decrimkit import Panel
from decrimkit.datasets import load_dataset
from decrimkit.errors import DataWarning, DesignError, SpecificationError
from decrimkit.estimators import did

REF = json.loads((Path(__file__).resolve().parents[2] / "references" / "staggered_pj.json").read_text())


@pytest.fixture(scope="module")
def pj() -> Panel:
    df = load_dataset("pj_officer_level_balanced")
    return Panel.from_frame(df, unit="uid", time="period", outcome="complaints", cohort="first_trained")


@pytest.mark.parametrize("row", REF["rows"], ids=lambda r: f"{r['estimator']}-{r['estimand']}")
def test_matches_staggered_readme(pj, row):
    res = did.efficient(pj, estimand=row["estimand"], estimator=row["estimator"])
    assert res.estimate[0] == pytest.approx(row["estimate"], rel=1e-6)
    assert res.se[0] == pytest.approx(row["se"], rel=1e-4)
    assert res.se_neyman[0] == pytest.approx(row["se_neyman"], rel=1e-4)


def test_event_study_matches_staggered_readme(pj):
    es = REF["eventstudy"]
    res = did.efficient(pj, estimand="eventstudy", event_times=es["event_times"])
    assert res.label == tuple(es["event_times"])
    np.testing.assert_allclose(res.estimate, es["estimate"], rtol=1e-6)
    # one design-based covariance: its diagonal is se^2 here (every event time starts at the same cohort)
    np.testing.assert_allclose(np.sqrt(np.diag(res.vcov)), res.se, rtol=1e-10)
    assert (res.se <= res.se_neyman).all()


def test_fisher_randomization_p_is_close_to_staggered(pj):
    # R draws its 500 permutations with its own RNG, so only a loose check is possible: the Monte Carlo SE
    # of each p is about sqrt(0.64 * 0.36 / 500) = 0.021, of the difference about 0.03; allow 3 of those.
    res = did.efficient(pj, fisher=True, n_perm=REF["fisher"]["n_perm"], seed=0)
    assert abs(res.fisher_p[0] - REF["fisher"]["p"]) < 0.09
    assert abs(res.fisher_p_neyman[0] - REF["fisher"]["p_neyman"]) < 0.09
    text = res.summary()
    assert "Fisher randomization test" in text and "design-based SE" in text
    assert {"se_neyman", "fisher_p", "fisher_p_neyman", "beta"} <= set(res.tidy().columns)


def _small_design(seed: int = 3, n_units: int = 24, n_periods: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cohorts = np.repeat([3, 4, 5, 0], n_units // 4)  # 0 = never treated
    rng.shuffle(cohorts)
    unit = np.repeat(np.arange(n_units), n_periods)
    period = np.tile(np.arange(1, n_periods + 1), n_units)
    g = np.repeat(cohorts, n_periods)
    y = rng.normal(size=n_units)[unit] + 0.3 * period + rng.normal(size=len(unit)) + 0.5 * ((g > 0) & (period >= g))
    return pd.DataFrame({"unit": unit, "period": period, "g": g, "y": y})


def test_fisher_p_equals_brute_force_recomputation():
    # the randomization p from the vectorised redraws equals refitting did.efficient on each redrawn panel
    df = _small_design()
    panel = Panel.from_frame(df, unit="unit", time="period", outcome="y", cohort="g")
    n_perm, seed = 30, 7
    res = did.efficient(panel, fisher=True, n_perm=n_perm, seed=seed)
    units = panel.units
    g_unit = df.drop_duplicates("unit").set_index("unit")["g"].reindex(units).to_numpy()
    cohorts, code = np.unique(np.where(g_unit == 0, np.inf, g_unit), return_inverse=True)
    labels = np.unique(g_unit[g_unit > 0]).tolist() + [0]  # cohort labels in the order of ``cohorts``
    rng = np.random.default_rng(seed)
    t_obs = abs(res.estimate[0] / res.se[0])
    hits = 0
    for _ in range(n_perm):
        new = np.asarray(labels)[rng.permutation(code)]
        redrawn = df.assign(g=df["unit"].map(dict(zip(units, new))))
        fit = did.efficient(Panel.from_frame(redrawn, unit="unit", time="period", outcome="y", cohort="g"))
        hits += abs(fit.estimate[0] / fit.se[0]) >= t_obs
    assert res.fisher_p[0] == pytest.approx((1 + hits) / (1 + n_perm), abs=1e-12)
    again = did.efficient(panel, fisher=True, n_perm=n_perm, seed=seed)
    np.testing.assert_array_equal(again.fisher_p, res.fisher_p)  # seeded


@pytest.mark.parametrize(("agg", "estimand"), [("simple", "simple"), ("group", "cohort"), ("calendar", "calendar")])
def test_cs_variant_equals_att_gt_not_yet_treated(mpdta, agg, estimand):
    # staggered_cs is Callaway-Sant'Anna with not-yet-treated comparisons and base period g - 1
    ref = did.att_gt(mpdta, control="notyet", method="reg").aggregate(agg).overall[0]
    res = did.efficient(mpdta, estimand=estimand, estimator="cs")
    assert res.estimate[0] == pytest.approx(ref, rel=1e-9)
    assert res.beta[0] == 1.0


def test_cs_event_study_equals_att_gt_dynamic_after_adoption(mpdta):
    dyn = did.att_gt(mpdta, control="notyet", method="reg").aggregate("dynamic").tidy().set_index("event_time")
    res = did.efficient(mpdta, estimand="eventstudy", estimator="cs", event_times=[0, 1, 2, 3])
    np.testing.assert_allclose(res.estimate, dyn.loc[[0, 1, 2, 3], "estimate"].to_numpy(), rtol=1e-9)


def test_efficient_beats_cs_on_variance_and_shift_invariance(pj):
    eff = did.efficient(pj, estimand="simple")
    cs = did.efficient(pj, estimand="simple", estimator="cs")
    assert eff.se_neyman[0] < cs.se_neyman[0]
    df = load_dataset("pj_officer_level_balanced").assign(complaints=lambda d: d["complaints"] + 5.0)
    shifted = did.efficient(
        Panel.from_frame(df, unit="uid", time="period", outcome="complaints", cohort="first_trained")
    )
    assert shifted.estimate[0] == pytest.approx(eff.estimate[0], rel=1e-9)
    assert shifted.se[0] == pytest.approx(eff.se[0], rel=1e-9)


def test_bad_inputs_raise_named_errors(pj):
    df = _small_design()
    panel = Panel.from_frame(df, unit="unit", time="period", outcome="y", cohort="g")
    with pytest.raises(SpecificationError, match="estimand"):
        did.efficient(panel, estimand="dynamic")
    with pytest.raises(SpecificationError, match="estimator"):
        did.efficient(panel, estimator="twfe")
    with pytest.raises(SpecificationError, match="n_perm"):
        did.efficient(panel, fisher=True, n_perm=0)
    with pytest.raises(SpecificationError, match="event_times"):
        did.efficient(panel, event_times=[0])
    with pytest.raises(DesignError, match="event time 9"):
        did.efficient(panel, estimand="eventstudy", event_times=[9])
    unbalanced = Panel.from_frame(df.iloc[1:], unit="unit", time="period", outcome="y", cohort="g")
    with pytest.raises(DesignError, match="balanced"):
        did.efficient(unbalanced)
    one = Panel.from_frame(df.assign(g=3), unit="unit", time="period", outcome="y", cohort="g")
    with pytest.raises(DesignError, match="two treatment cohorts"):
        did.efficient(one)


def test_single_unit_cohort_is_dropped_with_a_warning():
    df = _small_design()
    df.loc[df["unit"] == 0, "g"] = 2  # unit 0 alone in cohort 2
    panel = Panel.from_frame(df, unit="unit", time="period", outcome="y", cohort="g")
    with pytest.warns(DataWarning, match="single unit"):
        res = did.efficient(panel)
    assert res.spec.n_units == panel.n_units - 1
    assert any("single-unit" in reason for _, reason in res.spec.excluded)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        did.efficient(panel.subset([u for u in panel.units if u != 0]))
