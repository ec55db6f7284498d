"""Goodman-Bacon decomposition: castle doctrine reference values (REFERENCES section 2) and properties."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from decrimkit import Panel
from decrimkit.datasets import load_dataset
from decrimkit.errors import DesignError
from decrimkit.estimators import did


@pytest.fixture(scope="module")
def castle() -> Panel:
    df = load_dataset("castle_doctrine")[["state", "year", "effyear", "l_homicide"]]
    return Panel.from_frame(df, unit="state", time="year", outcome="l_homicide", cohort="effyear")


# bacondecomp vignette (CRAN mirror), tag V: (weight, average estimate) per type, tolerance 5e-6
CASTLE_TYPES = [
    ("Earlier vs Later Treated", 0.05976, -0.00554),
    ("Later vs Earlier Treated", 0.03190, 0.07032),
    ("Treated vs Untreated", 0.90834, 0.08796),
]


@pytest.mark.parametrize(("kind", "weight", "estimate"), CASTLE_TYPES)
def test_castle_types_match_bacondecomp(castle, kind, weight, estimate):
    row = did.bacon(castle).by_type().set_index("type").loc[kind]
    # printed to 5 decimals: half a unit in the last digit (5e-6)
    assert row["weight"] == pytest.approx(weight, abs=5e-6)
    assert row["estimate"] == pytest.approx(estimate, abs=5e-6)


def test_castle_weighted_sum_reproduces_twfe(castle):
    res = did.bacon(castle)
    assert res.comparisons["weight"].sum() == pytest.approx(1.0, abs=1e-12)
    assert res.estimate == pytest.approx(0.0818, abs=5e-5)  # vignette value printed to 4 decimals
    assert res.estimate == pytest.approx(res.twfe_estimate, rel=1e-10)  # exact identity, float error only
    assert res.twfe_estimate == pytest.approx(0.0818116169306475, rel=1e-6)
    assert len(res.comparisons) == 25 and (res.comparisons["weight"] > 0).all()


def test_always_treated_group_and_mpdta_identity(mpdta_frame):
    # cohort 2004 moved to 2003 (the first period) becomes an always-treated group
    f = mpdta_frame.assign(**{"first.treat": mpdta_frame["first.treat"].replace(2004, 2003)})
    p = Panel.from_frame(f, unit="countyreal", time="year", outcome="lemp", cohort="first.treat")
    res = did.bacon(p)
    assert "Later vs Always Treated" in set(res.comparisons["type"])
    assert res.estimate == pytest.approx(res.twfe_estimate, rel=1e-10)
    assert res.comparisons["weight"].sum() == pytest.approx(1.0, abs=1e-12)


def test_invariant_to_outcome_shift_and_plot(castle):
    base = did.bacon(castle)
    shifted = Panel.from_frame(
        castle.frame.assign(y=castle.frame["y"] + 7.0), unit="unit", time="time", outcome="y", cohort="cohort"
    )
    np.testing.assert_allclose(did.bacon(shifted).comparisons["estimate"], base.comparisons["estimate"], atol=1e-12)
    fig = base.plot()
    assert fig.axes[0].get_xlabel() == "weight"
    assert "TWFE coefficient" in str(base)


def test_bacon_errors(castle):
    with pytest.raises(DesignError, match="balanced"):
        did.bacon(Panel.from_frame(castle.frame.iloc[1:], unit="unit", time="time", outcome="y", cohort="cohort"))
    none = Panel.from_frame(castle.frame.assign(cohort=np.nan), unit="unit", time="time", outcome="y", cohort="cohort")
    with pytest.raises(DesignError, match="no observation is treated"):
        did.bacon(none)
    frame = pd.DataFrame(
        {"u": np.repeat([1, 2], 4), "t": np.tile(range(4), 2), "y": np.arange(8.0), "g": np.repeat([2, 2], 4)}
    )
    with pytest.raises(DesignError, match="same time"):
        did.bacon(Panel.from_frame(frame, unit="u", time="t", outcome="y", cohort="g"))
