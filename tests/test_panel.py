"""Panel construction and validation: every named error of issue 3, item 4, with a real bad frame."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from decrimkit import DataError, DecrimkitError, DesignError, Panel, PanelError


def frame(n_units: int = 3, years: tuple[int, ...] = (2000, 2001, 2002, 2003), cohorts=(2002, 0, 2003)) -> pd.DataFrame:
    """A small balanced panel: unit u0..u{n-1}, integer years, outcome y, cohort g (0 = never), pop."""
    rows = []
    for i in range(n_units):
        for j, yr in enumerate(years):
            rows.append(
                {"unit": f"u{i}", "year": yr, "y": float(10 * i + j), "g": cohorts[i % len(cohorts)], "pop": 1000.0 + i}
            )
    return pd.DataFrame(rows)


def build(df: pd.DataFrame, **kw) -> Panel:
    args = {"unit": "unit", "time": "year", "outcome": "y", "cohort": "g"}
    args.update(kw)
    return Panel.from_frame(df, **{k: v for k, v in args.items() if v is not None})


# ---------------------------------------------------------------------------------------- errors
def test_missing_column_names_it():
    with pytest.raises(PanelError, match=r"column 'deaths' \(given as outcome=\) is not in the frame"):
        build(frame(), outcome="deaths")


def test_duplicated_unit_time_rows():
    df = pd.concat([frame(), frame().iloc[[5]]], ignore_index=True)
    with pytest.raises(PanelError, match=r"2 rows repeat a \(unit, year\) key.*unit='u1', year=2001"):
        build(df)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_missing_or_infinite_outcome(bad):
    df = frame()
    df.loc[4, "y"] = bad
    with pytest.raises(DataError, match=r"outcome column 'y' has 1 missing or infinite values at rows 4"):
        build(df)


def test_non_numeric_outcome():
    df = frame().assign(y=lambda d: d["y"].astype(str))
    with pytest.raises(DataError, match=r"outcome column 'y' is not numeric"):
        build(df)


def test_negative_count_outcome():
    df = frame()
    df.loc[2, "y"] = -1.0
    with pytest.raises(DataError, match=r"count outcome 'y' is negative at rows 2"):
        build(df, count=True)


def test_negative_population():
    df = frame()
    df.loc[7, "pop"] = -5.0
    with pytest.raises(DataError, match=r"population column 'pop' must be finite and positive; bad at rows 7"):
        build(df, population="pop")


def test_unparseable_times():
    df = frame().assign(year=["2000-01", "2000-02", "not a date", "2000-04"] * 3)
    with pytest.raises(PanelError, match=r"time column 'year' could not be parsed at rows 2, 6, 10"):
        build(df, cohort=None)


def test_treatment_switching_off_needs_allow_reversal():
    df = frame().drop(columns="g")
    df["d"] = [0, 1, 0, 0] + [0, 0, 0, 0] + [0, 0, 1, 1]
    with pytest.raises(DataError, match=r"treatment 'd' switches off for 1 units \(first: unit='u0' at 2002\)"):
        build(df, cohort=None, treated="d")
    panel = build(df, cohort=None, treated="d", allow_reversal=True)
    assert panel.frame.loc[panel.frame["unit"] == "u0", "d"].tolist() == [0, 1, 0, 0]


def test_no_never_and_no_not_yet_treated():
    panel = build(frame(cohorts=(2002,)))
    with pytest.raises(DesignError, match="no never-treated units"):
        panel.require_controls("never")
    with pytest.raises(DesignError, match="no never-treated and no not-yet-treated units"):
        panel.require_controls("notyet")


def test_fewer_than_two_pre_periods():
    panel = build(frame(cohorts=(2001, 0)))
    with pytest.raises(DesignError, match=r"earliest cohort \(2001\) has 1 pre-period\(s\); at least 2 are needed"):
        panel.require_pre_periods(2)


def test_treated_unit_without_pre_period():
    panel = build(frame(cohorts=(2000, 0, 2003)))
    with pytest.raises(DesignError, match=r"1 treated units have no pre-treatment period \(e.g. \['u0'\]"):
        panel.require_pre_periods(1)


def test_unbalanced_where_balance_needed():
    panel = build(frame().drop(index=[5]))
    assert not panel.is_balanced
    with pytest.raises(DesignError, match=r"did\.test needs a balanced panel, but 1 units lack some periods"):
        panel.require_balanced("did.test")


def test_empty_frame():
    with pytest.raises(PanelError, match=r"the frame is empty \(0 rows\)"):
        build(frame().iloc[0:0])


def test_single_unit():
    with pytest.raises(PanelError, match=r"the panel has a single unit \('u0'\)"):
        build(frame().query("unit == 'u0'"))


def test_numeric_year_cohorts_with_period_times_are_refused():
    df = frame().assign(year=lambda d: pd.to_datetime(d["year"].astype(str) + "-01-01"))
    with pytest.raises(DataError, match="look like calendar years"):
        build(df)


def test_all_errors_are_value_errors():
    with pytest.raises(ValueError):
        build(frame().iloc[0:0])
    assert issubclass(PanelError, DecrimkitError) and issubclass(DataError, DecrimkitError)


# ---------------------------------------------------------------------------------------- time kinds
def test_integer_years():
    panel = build(frame())
    assert panel.time_kind == "int"
    assert panel.times.tolist() == [2000, 2001, 2002, 2003]
    assert panel.cohorts.tolist() == [2002, 2003]
    assert panel.never_treated_units.tolist() == ["u1"]
    assert panel.frame.loc[panel.frame["unit"] == "u0", "d"].tolist() == [0, 0, 1, 1]


def test_year_strings_are_integer_years():
    panel = build(frame().assign(year=lambda d: d["year"].astype(str)))
    assert panel.time_kind == "int" and panel.cohorts.tolist() == [2002, 2003]


def test_monthly_strings_and_cohorts():
    months = {2000: "2020-01", 2001: "2020-02", 2002: "2020-03", 2003: "2020-04"}
    df = frame().assign(
        year=lambda d: d["year"].map(months), g=lambda d: d["g"].map({2002: "2020-03", 2003: "2020-04"})
    )
    panel = build(df)
    assert panel.time_kind == "period"
    assert [str(t) for t in panel.times] == ["2020-01", "2020-02", "2020-03", "2020-04"]
    assert [str(c) for c in panel.cohorts] == ["2020-03", "2020-04"]
    assert panel.time_position("2020-03") == 2


def test_datetimes_become_periods():
    df = frame().assign(year=lambda d: pd.to_datetime(d["year"].astype(str) + "-06-15"))
    panel = build(df, cohort=None, freq="Y")
    assert [str(t) for t in panel.times] == ["2000", "2001", "2002", "2003"]


def test_period_dtype_times_with_ordinal_cohorts():
    per = pd.PeriodIndex(["2021-01", "2021-02", "2021-03", "2021-04"] * 3, freq="M")
    g = np.where(frame()["g"] == 2002, pd.Period("2021-03", "M").ordinal, 0)
    panel = build(frame().assign(year=per, g=g))
    assert [str(c) for c in panel.cohorts] == ["2021-03"]


def test_population_gives_rates_per_100k():
    panel = build(frame(), population="pop")
    row = panel.frame.iloc[1]
    assert row["rate"] == pytest.approx(row["y"] / row["population"] * 1e5, rel=1e-12)


# ---------------------------------------------------------------------------------------- repr, immutability
def test_repr_reports_what_it_did():
    text = repr(build(frame(), population="pop"))
    assert "Panel: 12 rows, 3 units x 4 periods (2000 .. 2003), balanced" in text
    assert "treated units: 2 in 2 cohorts (2002, 2003); never treated: 1" in text
    assert "population" in text


def test_subset_records_excluded_rows():
    panel = build(frame()).subset(["u0", "u1"], reason="drop late cohort")
    assert panel.excluded == ((4, "drop late cohort"),)
    assert "excluded: 4 rows (drop late cohort)" in repr(panel)


def test_caller_frame_untouched_and_panel_frozen():
    df = frame()
    before = df.copy(deep=True)
    panel = build(df, population="pop")
    pd.testing.assert_frame_equal(df, before)
    df.loc[0, "y"] = 999.0  # later edits of the caller's frame do not reach the panel
    assert panel.y[0] == 0.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        panel.frame = df  # type: ignore[misc]


def test_mpdta_panel(mpdta):
    assert (mpdta.n_units, mpdta.n_periods, mpdta.is_balanced) == (500, 5, True)
    assert mpdta.cohorts.tolist() == [2004, 2006, 2007]
    assert len(mpdta.never_treated_units) == 309  # R did: table(mpdta$first.treat[mpdta$year == 2003])["0"]


# ---------------------------------------------------------------------------------------- properties
@st.composite
def panels(draw):
    n_units = draw(st.integers(2, 6))
    n_years = draw(st.integers(3, 6))
    years = list(range(2000, 2000 + n_years))
    cohorts = draw(st.lists(st.sampled_from([0, *years[1:]]), min_size=n_units, max_size=n_units))
    ys = draw(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=n_units * n_years, max_size=n_units * n_years))
    rows = [{"unit": f"unit{i}", "year": yr, "g": cohorts[i]} for i in range(n_units) for yr in years]
    df = pd.DataFrame(rows).assign(y=ys)
    perm = draw(st.permutations(range(len(df))))
    return df, df.iloc[list(perm)].reset_index(drop=True)


@settings(max_examples=25)
@given(panels())
def test_row_order_does_not_matter(pair):
    ordered, shuffled = pair
    a, b = build(ordered), build(shuffled)
    pd.testing.assert_frame_equal(a.frame, b.frame)
    assert a.units.tolist() == b.units.tolist() and a.times.tolist() == b.times.tolist()


@settings(max_examples=25)
@given(panels())
def test_cohort_and_treated_indicator_agree(pair):
    df, _ = pair
    via_cohort = build(df)
    d = ((df["g"] > 0) & (df["year"] >= df["g"])).astype(int)
    via_treated = build(df.assign(d=d), cohort=None, treated="d")
    np.testing.assert_array_equal(via_cohort.frame["g"], via_treated.frame["g"])
    np.testing.assert_array_equal(via_cohort.frame["d"], via_treated.frame["d"])


def test_fast_codes_equal_hashing_and_binary_search() -> None:
    """The change-point and lookup-table codes behind from_frame equal pandas' factorize and searchsorted."""
    from decrimkit._panel_build import _grid_positions, factorize_units, integer_time_codes

    rng = np.random.default_rng(0)
    for units in (np.sort(rng.integers(-50, 50, 400)), rng.integers(0, 30, 400), np.sort(rng.normal(size=50)).repeat(3)):
        codes, firsts, is_sorted = factorize_units(pd.Series(units))
        ref_codes, ref_firsts = pd.factorize(units)
        np.testing.assert_array_equal(codes, ref_codes)
        np.testing.assert_array_equal(np.asarray(firsts), np.asarray(ref_firsts))
        assert is_sorted == bool((np.diff(units) >= 0).all())
    for t in (rng.integers(1990, 2030, 300), rng.integers(-5, 5, 300) * 10**8):  # small span; a span past the table
        times, tcodes = integer_time_codes(t)
        np.testing.assert_array_equal(times, np.unique(t))
        np.testing.assert_array_equal(tcodes, np.searchsorted(np.unique(t), t))
    grid = np.array([2001, 2003, 2004, 2010])
    values = np.array([1999, 2001, 2002, 2003, 2010, 2011, 2050])
    pos, off = _grid_positions(values, grid)
    np.testing.assert_array_equal(off, [True, False, True, False, False, False, False])
    np.testing.assert_array_equal(pos[~off], [0, 1, 3, 4, 4])  # an off-grid value has no position (it is refused)
