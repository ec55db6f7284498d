"""``synth.scm(..., v="cv")``: V by cross-validation (Abadie, Diamond and Hainmueller 2015, West Germany).

Reference values: tests/references/west_germany_scm_cv.json (pysyncon 1.7 running ADH's two steps, and
ADH 2015's published weights; tests/references/make_west_germany_scm_cv.py). The V search is nonconvex
in both packages, so the validation MSPE is compared too: ours must be at most pysyncon's (plus a
relative 1e-3).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from decrimkit import Panel
from decrimkit.datasets import dataset_info, load_dataset
from decrimkit.errors import DataError, DesignError, SpecificationError
from decrimkit.estimators import synth
from decrimkit.estimators.synth._design import synth_design
from decrimkit.estimators.synth._scm_cv import cv_plan

REF = json.loads((Path(__file__).parents[2] / "references" / "west_germany_scm_cv.json").read_text())
TOL = REF["tolerance"]
TRAIN = [tuple(p) for p in REF["train_predictors"]]
FINAL = [tuple(p) for p in REF["final_predictors"]]
WG = "West Germany"
ADH = {"cv_predictors": TRAIN, "cv_train": (1971, 1980), "cv_validate": (1981, 1990)}


@pytest.fixture(scope="module")
def germany():
    # the bundled copy is checked against its catalogued sha256 on load (decrimkit.datasets)
    assert dataset_info("west_germany")["files"][0]["source_sha256"] == (
        "c59ff635faaf43729eaefdf5e9a4584fc3112a56fdab84b9ac5f78e1b6302e83"
    )
    df = load_dataset("west_germany")
    return Panel.from_frame(
        df, unit="country", time="year", outcome="gdp",
        covariates=["trade", "infrate", "industry", "schooling", "invest70", "invest80"], missing_covariates="keep",
    )


@pytest.fixture(scope="module")
def adh_fit(germany):
    # ADH's windows use 1990 (predictors and validation 1981-1990), so the first period left out of the fit is 1991
    return synth.scm(germany, treated=WG, start=1991, predictors=FINAL, v="cv", **ADH)


def test_cv_validation_mspe_at_most_pysyncons(adh_fit):
    cv = adh_fit.spec.options["cv"]
    assert cv["validation_mspe"] <= REF["pysyncon"]["validation_mspe"] * (1 + TOL["validation_mspe_rel"])
    assert cv["validation_mspe"] == pytest.approx(min(cv["search_losses"].values()), rel=1e-6)


def test_cv_weights_match_pysyncon_and_adh_published(adh_fit):
    w = adh_fit.weights
    for unit, ref in REF["pysyncon"]["weights"].items():
        assert w[unit] == pytest.approx(ref, abs=TOL["cv_weights_vs_pysyncon"]), unit
    published = REF["adh2015_published"]["weights"]
    for unit in w.index:
        assert w[unit] == pytest.approx(published.get(unit, 0.0), abs=TOL["weights_vs_published"]), unit
    assert adh_fit.estimate == pytest.approx(REF["pysyncon"]["mean_gap_1991_2003"], abs=TOL["mean_gap_abs"])
    assert adh_fit.gap.loc[1991:].mean() == pytest.approx(adh_fit.estimate)


def test_same_v_gives_pysyncons_final_weights(germany):
    """Step 2 alone: pysyncon's V as a custom V on the final predictors reproduces its weights."""
    res = synth.scm(germany, treated=WG, start=1991, predictors=FINAL, v=REF["pysyncon"]["v"])
    for unit, ref in REF["pysyncon"]["weights"].items():
        assert res.weights[unit] == pytest.approx(ref, abs=TOL["weights_vs_pysyncon_same_v"]), unit


def test_cv_result_records_v_and_windows(adh_fit):
    v = adh_fit.v
    assert list(v.index) == ["gdp 1981-1990", "trade 1981-1990", "infrate 1981-1990", "industry 1981-1990",
                             "schooling 1980-1985", "invest80 1980"]
    assert v.sum() == pytest.approx(1.0) and (v >= 0).all()
    opts = adh_fit.spec.options
    assert opts["v"] == "cv" and opts["custom_v"] is None and opts["v_search"] is not None
    cv = opts["cv"]
    assert cv["train"] == [1971, 1980] and cv["validate"] == [1981, 1990]
    assert cv["predictors"] == [list(p) for p in TRAIN] and cv["defaulted"] == []
    assert cv["v_rule"] in cv["search_losses"]
    json.dumps(cv)  # plain numbers and labels
    assert "V by cross-validation" in adh_fit.summary() and "training 1971-1980, validation 1981-1990" in repr(adh_fit)


def test_cv_default_windows_and_predictors(germany):
    """Defaults: validation = later half of the pre-period, training = as many periods just before it,
    training predictors = the final ones moved back by the gap between the two windows' starts."""
    preds = [("gdp", 1981, 1990), ("schooling", 1980, 1985)]
    design = synth_design(germany, treated=WG, start=1991, predictors=preds)
    plan = cv_plan(germany, design, preds, None, None, (1981, 1990))
    times = list(germany.times)
    assert [times[i] for i in plan.train] == [1971, 1980]
    assert list(plan.predictors) == [("gdp", 1971, 1980), ("schooling", 1970, 1975)]
    assert set(plan.defaults) == {"cv_train", "cv_predictors"}
    plan = cv_plan(germany, design, preds, None, None, None)  # 31 pre-periods 1960-1990
    assert [times[i] for i in plan.validate] == [1976, 1990] and [times[i] for i in plan.train] == [1961, 1975]
    # a default training predictor that would leave the panel is refused, naming cv_predictors=
    with pytest.raises(DesignError, match="cv_predictors"):
        cv_plan(germany, design, [("gdp", 1960, 1965)], None, None, (1981, 1990))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"cv_validate": (1985, 1991)}, DesignError, "must lie in the pre-period"),
        ({"cv_validate": (1990, 1981)}, DesignError, "is empty"),
        ({"cv_train": (1980, 1971), "cv_validate": (1981, 1990)}, DesignError, "is empty"),
        ({"cv_train": (1975, 1982), "cv_validate": (1981, 1990)}, DesignError, "overlaps"),
        ({"cv_validate": (1950, 1960)}, DesignError, "outside the panel"),
        ({**ADH, "cv_predictors": [*TRAIN[:5], ("invest70", 1950, 1950)]}, DesignError, "outside the panel"),
        ({**ADH, "cv_predictors": [*TRAIN[:5], ("gdp", 1975, 1985)]}, DesignError, "after the training window"),
        ({**ADH, "cv_predictors": [*TRAIN[:5], ("invest80", 1970, 1970)]}, DataError, "missing in every period"),
        ({**ADH, "cv_predictors": TRAIN[:5]}, SpecificationError, "one weight each"),
        ({"cv_validate": (1981, 1990), "cv_train": 1975}, SpecificationError, "pair of periods"),
    ],
)
def test_cv_bad_windows_are_named_errors(germany, kwargs, error, match):
    with pytest.raises(error, match=match):
        synth.scm(germany, treated=WG, start=1991, predictors=FINAL, v="cv", **kwargs)


def test_cv_needs_predictors_and_cv_keywords_need_cv(germany):
    with pytest.raises(SpecificationError, match="needs predictors="):
        synth.scm(germany, treated=WG, start=1991, v="cv")
    with pytest.raises(SpecificationError, match="apply only with v='cv'"):
        synth.scm(germany, treated=WG, start=1991, predictors=FINAL, v="equal", cv_train=(1971, 1980))


def test_cv_placebo_in_space_reruns_cv_per_placebo(germany):
    """refit_v=True repeats the cross-validation for each placebo: each placebo's gap equals a separate
    v='cv' fit with that donor treated and the other donors as its pool."""
    donors = ["Austria", "USA", "Japan", "Switzerland", "Netherlands", "UK"]
    res = synth.scm(germany, treated=WG, start=1991, predictors=FINAL, v="cv", donors=donors, **ADH)
    pl = res.placebo("space", refit_v=True)
    assert (pl.tidy()["v_rule"] == "refit").all() and "v='cv'" in " ".join(pl.spec.notes)
    for donor in ["Austria", "Japan"]:
        alone = synth.scm(germany, treated=donor, start=1991, predictors=FINAL, v="cv",
                          donors=[d for d in donors if d != donor], **ADH)
        np.testing.assert_allclose(pl.gaps[donor].to_numpy(), alone.gap.to_numpy(), atol=0.05)
    with pytest.raises(SpecificationError, match="in-time placebo does not support v='cv'"):
        res.placebo("time")
