"""Named errors of the synthetic-control design checks."""

from __future__ import annotations

import numpy as np
import pytest

from decrimkit import Panel
from decrimkit.errors import DesignError, SpecificationError
from decrimkit.estimators.synth._design import synth_design


def test_treated_unit_missing(prop99):
    with pytest.raises(DesignError, match="not in the panel"):
        synth_design(prop99, treated="Atlantis", start=1989)


@pytest.mark.parametrize("start", [1960, 2010, 1970])
def test_start_outside_range_or_without_pre_periods(prop99, start):
    with pytest.raises(DesignError, match="start="):
        synth_design(prop99, treated="California", start=start)


def test_predictors_need_more_pre_periods(prop99):
    with pytest.raises(DesignError, match="fewer pre-periods than the predictors need"):
        synth_design(prop99, treated="California", start=1989, predictors=[("PacksPerCapita", 1980, 1990)])


def test_predictor_column_unknown(prop99):
    with pytest.raises(SpecificationError, match="neither the outcome"):
        synth_design(prop99, treated="California", start=1989, predictors=[("income", 1980, 1985)])


def test_donors_with_missing_outcomes(prop99_frame):
    df = prop99_frame.loc[~((prop99_frame["State"] == "Utah") & (prop99_frame["Year"] == 1975))]
    panel = Panel.from_frame(df, unit="State", time="Year", outcome="PacksPerCapita", treated="treated")
    with pytest.raises(DesignError, match="missing outcomes"):
        synth_design(panel, treated="California", start=1989)


def test_treated_unit_among_donors(prop99):
    with pytest.raises(DesignError, match="among the donors"):
        synth_design(prop99, treated="Utah", start=1989, donors=["California", "Nevada"])
    with pytest.raises(DesignError, match="among the donors"):
        synth_design(prop99, treated="California", start=1989, donors=["California", "Nevada"])


def test_only_one_donor(prop99):
    with pytest.raises(DesignError, match="only 1 donor"):
        synth_design(prop99, treated="California", start=1989, donors=["Nevada"])


def test_default_donors_are_never_treated(prop99):
    d = synth_design(prop99, treated="California", start=1989)
    assert d.n_donors == 38 and "California" not in d.donors
    assert d.n_pre == 19 and d.y_donors.shape == (31, 38)
    np.testing.assert_array_equal(d.x_donors, d.y_donors[:19])
