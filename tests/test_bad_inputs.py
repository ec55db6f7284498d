"""The bad-input catalogue: malformed inputs across Panel, the estimators, the registry, plans and the CLI.

Each case either raises a named :class:`DecrimkitError` subclass whose message names the problem, or
runs correctly (and the test checks the result). ``pytest.raises`` is given the *subclass*, and
``_raises`` additionally checks that the exception is a DecrimkitError and not a raw
numpy/JAX/pandas error that happens to share a base class (``DecrimkitError`` is a ``ValueError``).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from decrimkit import Panel
from decrimkit.errors import (
    DataError,
    DecrimkitError,
    DesignError,
    FewTreatedWarning,
    LimitError,
    PanelError,
    PlanError,
    RegistryError,
    SpecificationError,
)
from decrimkit.estimators import did, synth


def _raises(exc: type[DecrimkitError], match: str, fn, *args, **kwargs) -> DecrimkitError:
    """Call ``fn`` and require exactly a DecrimkitError subclass ``exc`` whose message matches ``match``."""
    with pytest.raises(DecrimkitError) as info:
        fn(*args, **kwargs)
    assert isinstance(info.value, exc), f"{type(info.value).__name__} raised, expected {exc.__name__}: {info.value}"
    assert re.search(match, str(info.value), flags=re.IGNORECASE), str(info.value)
    return info.value


def frame(n_units: int = 12, n_periods: int = 6, seed: int = 0, **extra) -> pd.DataFrame:
    """A small staggered panel: units 0-3 adopt in 2003, 4-7 in 2004, the rest never; effect 1."""
    rng = np.random.default_rng(seed)
    unit = np.repeat(np.arange(n_units), n_periods)
    year = np.tile(np.arange(n_periods), n_units) + 2000
    first = np.where(unit < 4, 2003, np.where(unit < 8, 2004, 0))
    d = (first > 0) & (year >= first)
    y = rng.normal(size=n_units)[unit] + 0.2 * (year - 2000) + d + rng.normal(scale=0.5, size=len(unit))
    df = pd.DataFrame({"unit": unit, "year": year, "y": y, "first": first, "d": d.astype(int),
                       "x": rng.normal(size=len(unit)), "pop": 10_000.0,
                       "deaths": rng.poisson(3.0, size=len(unit)).astype(float)})
    for k, v in extra.items():
        df[k] = v
    return df


def panel(df: pd.DataFrame | None = None, **kw) -> Panel:
    roles = {"unit": "unit", "time": "year", "outcome": "y", "cohort": "first"} | kw
    return Panel.from_frame(frame() if df is None else df, **roles)


# ------------------------------------------------------------------ Panel construction
def test_duplicate_unit_period():
    df = pd.concat([frame(), frame().iloc[[7]]], ignore_index=True)
    _raises(PanelError, r"repeat a \(unit, year\) key", panel, df)


def test_nan_outcome():
    df = frame()
    df.loc[5, "y"] = np.nan
    _raises(DataError, r"outcome column 'y' has 1 missing or infinite", panel, df)


def test_inf_outcome():
    df = frame()
    df.loc[3, "y"] = np.inf
    _raises(DataError, r"missing or infinite values at rows 3", panel, df)


def test_outcome_as_strings():
    df = frame()
    df["y"] = df["y"].map(lambda v: f"{v:.3f}")
    _raises(DataError, r"outcome column 'y' is not numeric", panel, df)


def test_boolean_outcome():
    df = frame()
    df["y"] = df["y"] > 0
    _raises(DataError, r"not numeric", panel, df)


def test_missing_column():
    _raises(PanelError, r"column 'county' .* is not in the frame", Panel.from_frame, frame(), unit="county",
            time="year", outcome="y")


def test_empty_frame():
    _raises(PanelError, r"empty", panel, frame().iloc[:0])


def test_not_a_frame():
    _raises(PanelError, r"expected a pandas DataFrame, got dict", panel, frame().to_dict("list"))


def test_dates_in_mixed_formats():
    df = frame()
    df["year"] = [f"{y}-01-01" if i % 2 else f"01/01/{y}" for i, y in enumerate(df["year"])]
    _raises(PanelError, r"mixes date formats", panel, df, cohort=None)


def test_unparseable_dates():
    df = frame()
    df["year"] = df["year"].astype(str).astype(object)
    df.loc[4, "year"] = "spring"
    _raises(PanelError, r"could not be parsed at rows 4 .*'spring'", panel, df)


def test_fractional_time():
    df = frame()
    df["year"] = df["year"].astype(float)
    df.loc[2, "year"] = 2001.5
    _raises(PanelError, r"non-integer or missing values at rows 2", panel, df)


def test_missing_unit_label():
    df = frame()
    df["unit"] = df["unit"].astype(object)
    df.loc[0, "unit"] = None
    _raises(PanelError, r"unit column 'unit' is missing at rows 0", panel, df)


def test_single_unit():
    _raises(PanelError, r"single unit", panel, frame().query("unit == 0"))


def test_cohort_varies_within_unit():
    df = frame()
    df.loc[1, "first"] = 2004
    _raises(DataError, r"cohort column 'first' varies within 1 units", panel, df)


def test_cohort_not_numeric():
    df = frame()
    df["first"] = df["first"].astype(str).astype(object)
    df.loc[df["unit"] == 2, "first"] = "soon"
    _raises(DataError, r"cohort column 'first' is not numeric", panel, df)


def test_treated_not_binary():
    df = frame()
    df.loc[10, "d"] = 2
    _raises(DataError, r"treated column 'd' must be 0/1; bad at rows 10", panel, df, cohort=None, treated="d")


def test_treatment_switches_off():
    df = frame()
    df.loc[(df["unit"] == 0) & (df["year"] == 2005), "d"] = 0
    _raises(DataError, r"switches off .* allow_reversal=True", panel, df, cohort=None, treated="d")


def test_cohort_and_treated_together():
    _raises(PanelError, r"either cohort= or treated=", panel, None, treated="d")


def test_negative_counts():
    df = frame()
    df.loc[6, "deaths"] = -1.0
    _raises(DataError, r"count outcome 'deaths' is negative at rows 6", panel, df, outcome="deaths",
            population="pop")


def test_zero_population_row():
    df = frame()
    df.loc[8, "pop"] = 0.0
    _raises(DataError, r"population column 'pop' must be finite and positive; bad at rows 8", panel, df,
            outcome="deaths", population="pop")


def test_negative_weights():
    df = frame()
    df["w"] = 1.0
    df.loc[9, "w"] = -2.0
    _raises(DataError, r"weights column 'w' must be finite and non-negative", panel, df, weights="w")


def test_covariate_wrong_dtype():
    df = frame()
    df["x"] = np.where(df["x"] > 0, "high", "low")
    _raises(DataError, r"covariate 'x' is not numeric", panel, df, covariates=("x",))


def test_covariate_nan():
    df = frame()
    df.loc[11, "x"] = np.nan
    _raises(DataError, r"covariate 'x' has missing or infinite values at rows 11", panel, df, covariates=("x",))


def test_group_with_missing_labels():
    df = frame()
    df["race"] = "a"
    df.loc[3, "race"] = None
    _raises(DataError, r"group column 'race' is missing at rows 3", panel, df, group="race")


def test_year_cohorts_with_monthly_times():
    df = frame()
    df["year"] = [f"{y}-{m:02d}" for y, m in zip([2020] * len(df), (df["year"] - 1999))]
    _raises(DataError, r"look like calendar years", panel, df)


def test_unicode_unit_names_work():
    df = frame()
    names = np.array(["Zürich", "Łódź", "São Paulo", "東京", "Ἀθῆναι", "Kraków", "Malmö", "Reykjavík", "Île-de-France",
                      "Córdoba", "Đà Nẵng", "Ålesund"], dtype=object)
    df["unit"] = names[df["unit"]]
    p = panel(df)
    assert set(p.units) == set(names)
    res = did.twfe(p)
    ref = did.twfe(panel())  # the same data under integer labels
    assert res.att == pytest.approx(ref.att, rel=1e-10)  # labels must not change the arithmetic
    gt = did.att_gt(p, n_boot=0).aggregate("simple")
    assert gt.estimate[0] == pytest.approx(did.att_gt(panel(), n_boot=0).aggregate("simple").estimate[0], rel=1e-10)
    assert "東京" in p.to_wide().index


def test_year_strings_and_iso_dates_work():
    df = frame()
    df["year"] = df["year"].astype(str)
    assert panel(df).time_kind == "int"
    df2 = frame()
    df2["year"] = [f"{y}-01-01" for y in df2["year"]]
    df2["first"] = np.where(df2["first"] > 0, df2["first"].astype(str) + "-01-01", "0")
    p = panel(df2, freq="Y")
    assert p.time_kind == "period" and len(p.cohorts) == 2


def test_ten_million_rows_with_a_duplicate_fail_fast():
    """10M rows (about 240 MB of int64/float64 columns) with one repeated key: PanelError, not a hang.

    The duplicate check is vectorised, so this runs in seconds; how fast is for bench/, not for a test.
    """
    n_units, n_periods = 100_000, 100
    unit = np.repeat(np.arange(n_units, dtype=np.int64), n_periods)
    year = np.tile(np.arange(n_periods, dtype=np.int64), n_units)
    year[-1] = year[-2]  # the last unit repeats its second-to-last period
    df = pd.DataFrame({"unit": unit, "year": year, "y": np.zeros(len(unit))})
    del unit
    _raises(PanelError, r"2 rows repeat a \(unit, year\) key", Panel.from_frame, df, unit="unit", time="year",
            outcome="y")


# ------------------------------------------------------------------ invalid cohorts (issue 18.7)
# A cohort is a unit's first treated period: a period of the panel, or later than the last one
# (treated after the window), or 0 / NaN / inf for never treated -- the coding of R's did, where
# gname is 0 for the never-treated group. Anything else is refused by name, row and unit; nothing is
# rounded or moved to a neighbouring period.
def _cohort_of_unit_0(value) -> pd.DataFrame:
    df = frame()
    df["first"] = df["first"].astype(object)
    df.loc[df["unit"] == 0, "first"] = value
    return df


def test_negative_cohort_is_refused():
    err = _raises(DataError, r"cohort column 'first' must hold each unit's first treated period", panel,
                  _cohort_of_unit_0(-1))
    assert "holds -1 at rows 0, 1, 2, 3, 4 (and 1 more) (unit=0)" in str(err)


def test_fractional_cohort_is_refused_not_rounded():
    err = _raises(DataError, r"holds 2002\.5 at rows 0, 1, 2, 3, 4 \(and 1 more\) \(unit=0\)", panel,
                  _cohort_of_unit_0(2002.5))
    assert "not rounded" in str(err)


def test_negative_infinite_cohort_is_refused():
    _raises(DataError, r"holds -inf at rows 0, 1", panel, _cohort_of_unit_0(-np.inf))


def test_boolean_cohort_value_is_refused():
    err = _raises(DataError, r"cohort column 'first' holds True/False values \(first True at rows 0, 1, 2", panel,
                  _cohort_of_unit_0(True))
    assert "treated=" in str(err)


def test_boolean_cohort_column_is_refused():
    df = frame()
    df["first"] = df["first"] > 0
    _raises(DataError, r"holds True/False values .*Pass a 0/1 indicator as treated=", panel, df)


def test_cohort_before_the_first_period_is_refused_not_relabelled():
    err = _raises(DataError, r"holds 1990 at rows 0, 1, 2, 3, 4 \(and 1 more\) \(unit=0\), which is before the "
                             r"first period \(2000\)", panel, _cohort_of_unit_0(1990))
    assert "would shift their event times" in str(err)


def test_cohort_between_observed_periods_is_refused():
    df = frame()
    df = df[df["year"] != 2003].copy()  # 2003 is not observed; a cohort of 2003 has no period
    _raises(DataError, r"holds 2003 at rows 0, 1, 2, 3, 4 .*not one of the panel's periods \(2000 \.\. 2005, "
                       r"5 periods\)", panel, df)


def test_date_cohort_before_the_first_month_is_refused():
    df = frame()
    df["year"] = [f"2020-{m:02d}" for m in df["year"] - 1999]
    df["first"] = np.where(df["unit"] == 0, "2019-06", np.where(df["first"] > 0, "2020-04", "0"))
    _raises(DataError, r"holds '2019-06' at rows 0, 1, 2, 3, 4 \(and 1 more\) \(unit=0\), which is before the "
                       r"first period \(2020-01\)", panel, df)


def test_valid_cohort_codings_still_work():
    df = frame()
    df["first"] = np.where(df["unit"] == 8, np.nan, np.where(df["unit"] == 9, np.inf, df["first"])).astype(float)
    df.loc[df["unit"] == 10, "first"] = 2030  # after the window: not treated within it
    p = panel(df)
    assert list(p.cohorts) == [2003, 2004]
    assert len(p.never_treated_units) == 4 and p.frame.loc[p.frame["unit"] == 10, "d"].sum() == 0


# ------------------------------------------------------------------ raw errors from odd frames (issue 18.8)
def test_nullable_integer_time_with_missing_value():
    df = frame()
    df["year"] = df["year"].astype("Int64")
    df.loc[3, "year"] = pd.NA
    _raises(PanelError, r"time column 'year' is missing at rows 3\. Fill or drop those rows", panel, df)


def test_nullable_integer_time_without_missing_values_works():
    df = frame()
    df["year"] = df["year"].astype("Int64")
    assert panel(df).time_kind == "int" and list(panel(df).times) == list(range(2000, 2006))


def test_duplicate_column_names():
    df = pd.concat([frame(), frame()[["y"]] * 2], axis=1)  # two columns called "y"
    _raises(PanelError, r"more than one column named 'y' at positions \[2, 8\]", panel, df)


def test_duplicate_unused_column_is_fine():
    df = pd.concat([frame(), frame()[["x"]]], axis=1)  # "x" twice, but not used
    assert panel(df).n_units == 12


def test_time_strings_with_mixed_utc_offsets():
    df = frame()
    df["year"] = [f"{y}-01-01T00:00:00{'+01:00' if i % 2 else '-05:00'}" for i, y in enumerate(df["year"])]
    _raises(PanelError, r"time column 'year' mixes time zones or UTC offsets", panel, df, cohort=None, freq="Y")


def test_time_zone_aware_dates_keep_their_local_calendar_date():
    df = frame()
    # midnight on 1 January in Tokyo is still 31 December in UTC: the period must be the local year
    df["year"] = pd.to_datetime(df["year"].astype(str) + "-01-01").dt.tz_localize("Asia/Tokyo")
    p = panel(df, cohort=None, freq="Y")
    assert [str(t) for t in p.times] == [str(y) for y in range(2000, 2006)]


@pytest.mark.parametrize("arrow_type", ["timestamp", "timestamp_tz", "date32"])
def test_pyarrow_time_columns(arrow_type):
    pa = pytest.importorskip("pyarrow")
    df = frame()
    stamps = pd.to_datetime(df["year"].astype(str) + "-01-01")
    if arrow_type == "timestamp":
        df["year"] = stamps.astype(pd.ArrowDtype(pa.timestamp("ns")))
    elif arrow_type == "timestamp_tz":
        df["year"] = stamps.dt.tz_localize("Asia/Tokyo").astype(pd.ArrowDtype(pa.timestamp("ns", tz="Asia/Tokyo")))
    else:
        df["year"] = pd.Series(stamps.dt.date).astype(pd.ArrowDtype(pa.date32()))
    df["first"] = np.where(df["first"] > 0, df["first"].astype(str) + "-01-01", "0")
    p = panel(df, freq="Y")
    ref = panel(frame())
    assert [str(t) for t in p.times] == [str(y) for y in range(2000, 2006)]
    assert [str(c) for c in p.cohorts] == ["2003", "2004"]
    assert did.twfe(p).att == pytest.approx(did.twfe(ref).att, rel=1e-12)


def test_pyarrow_time_column_with_a_missing_value():
    pa = pytest.importorskip("pyarrow")
    df = frame()
    df["year"] = df["year"].astype(pd.ArrowDtype(pa.int64()))
    df.loc[5, "year"] = None
    _raises(PanelError, r"time column 'year' is missing at rows 5", panel, df)


@pytest.mark.parametrize("seed", [2**63, 2**64, -1, 1.5, True])
@pytest.mark.parametrize("call", [
    lambda p, s: did.twfe(p, se_method="wild", n_boot=99, seed=s),
    lambda p, s: did.att_gt(p, n_boot=99, seed=s),
    lambda p, s: did.event_study(p, seed=s),
    lambda p, s: synth.mc_nnm(p, n_reps=5, seed=s),
    lambda p, s: synth.sdid(p.subset([0, 1, 2, 3, 8, 9, 10, 11]), n_reps=5, seed=s),
], ids=["twfe_wild", "att_gt", "event_study", "mc_nnm", "sdid"])
def test_seed_out_of_range(call, seed):
    _raises(SpecificationError, r"seed must be an integer from 0 to 2\*\*63 - 1 \(9223372036854775807\), got "
            + re.escape(repr(seed)), call, panel(), seed)


def test_largest_seed_works():
    res = did.twfe(panel(), se_method="wild", n_boot=99, seed=2**63 - 1)
    again = did.twfe(panel(), se_method="wild", n_boot=99, seed=2**63 - 1)
    ci = res.wild.conf_int().to_numpy()
    assert np.isfinite(ci).all() and 0 <= res.wild.p_value <= 1
    assert np.array_equal(ci, again.wild.conf_int().to_numpy())  # the same seed repeats the draws


# ------------------------------------------------------------------ synthetic control: magnitude, no variation (18.8)
def _one_treated(scale: float = 1.0) -> pd.DataFrame:
    """Unit 0 treated from 2003 among four never-treated donors (units 8-11)."""
    df = frame().query("unit in [0, 8, 9, 10, 11]").copy()
    df["y"] = df["y"] * scale
    return df


SYNTH_CALLS = pytest.mark.parametrize("call", [
    lambda p: synth.scm(p, treated=0, start=2003),
    lambda p: synth.augmented(p, treated=0, start=2003),
    lambda p: synth.sdid(p, n_reps=5, se_method="bootstrap"),
    lambda p: synth.mc_nnm(p, n_reps=5),
], ids=["scm", "augmented", "sdid", "mc_nnm"])  # every synthetic-control estimator on one-treated panels


@SYNTH_CALLS
@pytest.mark.parametrize("scale", [1e155, 1e300])
def test_synth_outcomes_too_large_to_square(call, scale):
    # 1e155: augmented hung; 1e300: scm returned a wrong estimate and sdid NaN
    _raises(DataError, r"outcome 'y' reaches .*e\+(155|300) \(unit .*synthetic-control fits square the outcomes.*"
                       r"values beyond 1e\+100 are refused", call, panel(_one_treated(scale)))


@SYNTH_CALLS
def test_synth_constant_outcome(call):
    # sdid returned NaN and augmented a raw "zero-size array" ValueError
    df = _one_treated()
    df["y"] = 3.0
    _raises(DataError, r"outcome 'y' is 3 in every unit and period: there is no variation to fit", call, panel(df))


def test_synth_large_but_finite_outcomes_scale_the_estimate():
    base = synth.scm(panel(_one_treated()), treated=0, start=2003).estimate
    big = synth.scm(panel(_one_treated(1e50)), treated=0, start=2003).estimate
    assert big / 1e50 == pytest.approx(base, rel=1e-6)  # solver tolerance 1e-10 on weights; equivariant


def test_scm_and_augmented_identical_donor_paths_before_the_start():
    df = _one_treated()
    df.loc[(df["unit"] > 0) & (df["year"] < 2003), "y"] = 1.0  # donors identical before 2003, different after
    for fn in (synth.scm, synth.augmented):
        _raises(DesignError, r"the 4 donors have identical predictors \(pre-period outcomes equal across donors\)",
                fn, panel(df), treated=0, start=2003)


def test_sdid_flat_control_pre_periods():
    df = _one_treated()
    df.loc[(df["unit"] > 0) & (df["year"] < 2003), "y"] = df["unit"]  # each control flat at its own level
    _raises(DesignError, r"cohort 2003: the control units' pre-period outcomes do not change from one period to the "
                         r"next", synth.sdid, panel(df), n_reps=5, se_method="bootstrap")


def test_mc_nnm_placebo_standard_error_of_constant_controls():
    df = _one_treated()
    df.loc[df["unit"] > 0, "y"] = 2.0  # controls constant: every placebo estimate is the same
    _raises(DesignError, r"every one of the 5 placebo estimates is the same .*would be 0\. Pass n_reps=0", synth.mc_nnm,
            panel(df), n_reps=5)


# ------------------------------------------------------------------ no untreated period (18.6, 19.8)
def test_mc_nnm_units_treated_in_every_period():
    # was an estimate (1.54, moving to 5.83 when 5 is added to the treated units' outcomes)
    df = frame()
    df["first"] = np.where(df["unit"] < 2, 2000, 0)
    _raises(DesignError, r"2 treated units \(e\.g\. \[0, 1\]\) are treated in every period from the first \(2000\): "
                         r"with no untreated period", synth.mc_nnm, panel(df), n_reps=5)
    _raises(DesignError, r"no untreated period", did.imputation, panel(df))  # as the imputation estimator says


def _everyone_from_the_start() -> Panel:
    df = frame()
    df["first"] = 2000  # no never-treated, no not-yet-treated, no pre-period
    return panel(df)


def test_panel_accepts_a_frame_treated_everywhere_but_describes_it():
    p = _everyone_from_the_start()  # the data are valid; the designs built on them are refused below
    assert p.describe()["never_treated_units"] == 0 and p.describe()["cohorts"] == ["2000"]
    assert p.frame["d"].all()


@pytest.mark.parametrize("name, call, match", [
    ("twfe", lambda p: did.twfe(p), r"every observation is treated; there is no comparison period or unit"),
    ("event_study", lambda p: did.event_study(p), r"every observation is treated"),
    ("sun_abraham", lambda p: did.sun_abraham(p), r"every observation is treated"),
    ("bacon", lambda p: did.bacon(p), r"every observation is treated"),
    ("poisson", lambda p: did.poisson(p, exposure=None), r"every observation is treated"),
    ("att_gt", lambda p: did.att_gt(p, n_boot=0), r"12 units are treated in the first period \(2000\) or before, so "
                                                   r"they have no pre-treatment period"),
    ("att_gt_notyet", lambda p: did.att_gt(p, n_boot=0, control="notyet"), r"no pre-treatment period"),
    ("imputation", lambda p: did.imputation(p), r"12 treated units \(earliest cohort 2000\) have no untreated period"),
    ("two_stage", lambda p: did.two_stage(p), r"have no untreated period"),
    ("scm", lambda p: synth.scm(p, treated=0, start=2003), r"no never-treated unit other than the treated one"),
    ("augmented", lambda p: synth.augmented(p, treated=0, start=2003), r"no never-treated unit other than"),
    ("sdid", lambda p: synth.sdid(p, n_reps=5), r"sdid needs at least two never-treated control units; the panel has 0"),
    ("mc_nnm", lambda p: synth.mc_nnm(p, n_reps=5), r"12 treated units .* are treated in every period from the first"),
])
def test_every_unit_treated_from_the_first_period(name, call, match):
    _raises(DesignError, match, call, _everyone_from_the_start())


# ------------------------------------------------------------------ too few clusters for the SE (issue 18.6)
# Rule (estimators/did/_reg_design.require_cluster_sides): a cluster-robust or influence-function
# variance needs at least 2 treated and 2 comparison clusters. With one treated unit the SEs were
# 1e-16 .. 1e-15 (p ~ 0) with one control, and imputation gave p = 8e-33 with two.
def _one_treated_unit(n_controls: int) -> Panel:
    df = frame(n_units=1 + n_controls, n_periods=8)
    df["first"] = np.where(df["unit"] == 0, 2004, 0)
    return panel(df)


_FEW = r"clustered by 'unit', and the design has 1 treated and {} comparison cluster\(s\); a cluster-robust " \
       r"variance needs at least 2 of each.*Conley and Taber 2011"


@pytest.mark.parametrize("n_controls", [1, 2])
@pytest.mark.parametrize("call", [
    lambda p: did.twfe(p),
    lambda p: did.twfe(p, se_method="wild", n_boot=99),
    lambda p: did.event_study(p),
    lambda p: did.sun_abraham(p),
    lambda p: did.att_gt(p, n_boot=0),
    lambda p: did.att_gt(p, n_boot=99),
    lambda p: did.imputation(p),
    lambda p: did.two_stage(p),
], ids=["twfe", "twfe_wild", "event_study", "sun_abraham", "att_gt", "att_gt_boot", "imputation", "two_stage"])
def test_one_treated_unit_has_no_cluster_robust_standard_error(call, n_controls):
    _raises(DesignError, _FEW.format(n_controls), call, _one_treated_unit(n_controls))


def test_poisson_one_treated_unit_has_no_cluster_robust_standard_error():
    df = frame(n_units=3, n_periods=8)
    df["first"] = np.where(df["unit"] == 0, 2004, 0)
    _raises(DesignError, _FEW.format(2), did.poisson, panel(df, outcome="deaths", population="pop"))


def test_one_comparison_cluster_is_refused_too():
    df = frame(n_units=3, n_periods=8)
    df["first"] = np.where(df["unit"] < 2, 2004, 0)  # two treated units, one never-treated
    _raises(DesignError, r"the design has 2 treated and 1 comparison cluster\(s\)", did.twfe, panel(df))


def test_one_treated_state_among_clustered_units_is_refused():
    df = frame()
    df["state"] = np.where(df["unit"] < 8, 1.0, df["unit"])  # every treated unit in state 1
    p = panel(df, covariates=("state",))
    _raises(DesignError, r"clustered by 'state', and the design has 1 treated and 5 comparison", did.att_gt, p,
            cluster="state", n_boot=0)
    _raises(DesignError, r"clustered by 'state', and the design has 1 treated and 5 comparison", did.imputation, p,
            cluster="state")


def test_two_treated_and_two_comparison_clusters_give_a_positive_standard_error():
    df = frame(n_units=4, n_periods=8)
    df["first"] = np.where(df["unit"] < 2, 2004, 0)
    with pytest.warns(FewTreatedWarning, match="rests on 2 treated units"):  # allowed, with a warning
        res = did.twfe(panel(df))
    assert res.se[0] > 1e-3 and np.isfinite(res.p_value[0])


def test_one_treated_unit_point_estimate_without_clustering():
    # the coefficient itself is identified; a study that does its own placebo inference (Oregon's
    # Conley-Taber interval) fits it with cluster=None, where the SE is HC1 by the caller's choice
    p = _one_treated_unit(3)
    wide = p.to_wide("y")
    post = np.asarray(wide.columns) >= 2004
    did_2x2 = (wide.loc[0, post].mean() - wide.loc[0, ~post].mean()) - (
        wide.loc[1:, post].to_numpy().mean() - wide.loc[1:, ~post].to_numpy().mean())
    with pytest.warns(FewTreatedWarning, match="rests on 1 treated unit"):
        assert did.twfe(p, cluster=None).att == pytest.approx(did_2x2, rel=1e-10)
    # the few-treated methods are built for one treated unit: not refused
    res = did.twfe(_one_treated_unit(6), inference="conley_taber")
    assert np.isfinite(res.conf_int().iloc[0]).all()


# ------------------------------------------------------------------ estimators
def test_twfe_all_units_treated_at_once():
    df = frame()
    df["first"] = 2003
    _raises(DesignError, r"", did.twfe, panel(df))


def test_twfe_no_treated_unit():
    df = frame()
    df["first"] = 0
    _raises(DesignError, r"", did.twfe, panel(df))


def test_twfe_covariate_absorbed_by_fixed_effects():
    df = frame()
    df["state"] = 1.0  # constant: absorbed by the unit effects
    _raises(SpecificationError, r"'state' are constant within the fixed effects", did.twfe,
            panel(df, covariates=("state",)), covariates=("state",))


def test_twfe_unknown_cluster_level():
    _raises(SpecificationError, r"cluster='state' is not allowed", did.twfe, panel(), cluster="state")


def _one_cluster() -> Panel:
    df = frame()
    df["state"] = 1.0  # every unit in one state: a single cluster
    return panel(df, covariates=("state",))


def test_att_gt_single_cluster():
    _raises(DesignError, r"cluster", did.att_gt, _one_cluster(), cluster="state", n_boot=99)


def test_imputation_single_cluster():
    _raises(DesignError, r"cluster", did.imputation, _one_cluster(), cluster="state")


def test_twfe_perfectly_collinear_covariates():
    df = frame()
    df["x2"] = 2.0 * df["x"]
    _raises(SpecificationError, r"collinear", did.twfe, panel(df, covariates=("x", "x2")), covariates=("x", "x2"))


def test_twfe_bad_option():
    _raises(SpecificationError, r"se_method", did.twfe, panel(), se_method="bogus")


def test_att_gt_without_never_treated():
    df = frame()
    df["first"] = np.where(df["unit"] < 6, 2003, 2004)
    _raises(DesignError, r"never-treated", did.att_gt, panel(df), control="never", n_boot=0)


def test_att_gt_unbalanced_panel():
    df = frame().drop(index=[13])
    _raises(DesignError, r"balanced", did.att_gt, panel(df), n_boot=0)


def test_att_gt_cohort_without_pre_period():
    df = frame()
    df.loc[df["unit"] < 4, "first"] = 2000
    _raises(DesignError, r"pre-treatment period|pre-period", did.att_gt, panel(df), n_boot=0)


def test_event_study_reference_after_treatment():
    _raises(SpecificationError, r"reference=0", did.event_study, panel(), reference=0)


def test_imputation_everyone_treated_at_once():
    df = frame()
    df["first"] = 2003
    _raises(DesignError, r"", did.imputation, panel(df))


def test_poisson_negative_outcome_without_population():
    df = frame()
    df.loc[0, "y"] = -3.0
    _raises(DataError, r"negative", did.poisson, panel(df), exposure=None)


def test_poisson_all_zero_counts():
    df = frame()
    df["deaths"] = 0.0
    _raises(DecrimkitError, r"zero", did.poisson, panel(df, outcome="deaths", population="pop"))


def test_bacon_unbalanced_panel():
    _raises(DesignError, r"balanced", did.bacon, panel(frame().drop(index=[20])))


def test_disparity_without_group():
    _raises(DecrimkitError, r"group", did.disparity, panel(), group="black", reference="white")


def test_scm_unknown_treated_unit():
    _raises(DesignError, r"99", synth.scm, panel(), treated=99, start=2003)


def test_scm_start_outside_panel():
    _raises(DesignError, r"1990", synth.scm, panel(), treated=0, start=1990)


def test_augmented_without_pre_periods():
    _raises(DesignError, r"pre", synth.augmented, panel(), treated=0, start=2000)


def test_sdid_without_treated_units():
    df = frame()
    df["first"] = 0
    _raises(DesignError, r"treated", synth.sdid, panel(df), n_reps=10)


def test_mc_nnm_unbalanced_panel():
    _raises(DesignError, r"balanced", synth.mc_nnm, panel(frame().drop(index=[30])), n_reps=5)


def _staggered_without_never() -> Panel:
    df = frame()
    df["first"] = np.where(df["unit"] < 6, 2003, 2004)
    return panel(df)


def _everyone_at_once() -> Panel:
    df = frame()
    df["first"] = 2003
    return panel(df)


def test_two_stage_everyone_treated_at_once():
    _raises(DesignError, r"no untreated observations", did.two_stage, _everyone_at_once())


def test_sdid_all_units_treated():
    _raises(DesignError, r"at least two never-treated control units", synth.sdid, _everyone_at_once(), n_reps=5)


def test_mc_nnm_without_treated_cells():
    df = frame()
    df["first"] = 0
    _raises(DesignError, r"no treated cells", synth.mc_nnm, panel(df), n_reps=5)


def test_scm_single_donor():
    _raises(DesignError, r"only 1 donor", synth.scm, panel(frame().query("unit in [0, 9]")), treated=0, start=2003)


def test_augmented_single_donor():
    _raises(DesignError, r"only 1 donor", synth.augmented, panel(frame().query("unit in [0, 9]")), treated=0,
            start=2003)


def test_event_study_negative_leads():
    _raises(SpecificationError, r"leads must be a non-negative integer", did.event_study, panel(), leads=-1)


def test_bacon_without_treated_units():
    df = frame()
    df["first"] = 0
    _raises(DesignError, r"no observation is treated", did.bacon, panel(df))


def test_att_gt_negative_bootstrap_draws():
    _raises(SpecificationError, r"n_boot must be 0", did.att_gt, panel(), n_boot=-5)


def test_poisson_staggered_without_never_treated():
    _raises(SpecificationError, r"collinear", did.poisson,
            panel(_staggered_without_never().frame.rename(columns={"unit": "u"}).assign(
                deaths=np.arange(72) % 7, pop=1e4), unit="u", time="time", outcome="deaths", cohort="cohort",
                population="pop"), staggered=True)


def test_twfe_alpha_outside_unit_interval():
    _raises(SpecificationError, r"alpha", did.twfe, panel(), alpha=2.0)


def test_imputation_non_integer_horizons():
    _raises(SpecificationError, r"horizons", did.imputation, panel(), horizons=["a"])


def test_honest_on_a_static_result():
    _raises(SpecificationError, r"event", did.honest, did.twfe(panel()))


def test_hierarchical_did_policy_model_not_a_mapping():
    from decrimkit.estimators import bayes

    _raises(SpecificationError, r"policy_model must be a mapping", bayes.hierarchical_did,
            panel(outcome="deaths", population="pop"), policy_model=["diversion"])


# ------------------------------------------------------------------ policy registry
@pytest.fixture
def registry_raw() -> pd.DataFrame:
    from decrimkit.datasets import load_dataset

    return load_dataset("policy_registry")


def test_registry_missing_column(registry_raw):
    from decrimkit.datasets import validate_registry

    _raises(RegistryError, r"model", validate_registry, registry_raw.drop(columns=["model"]))


def test_registry_impossible_date(registry_raw):
    from decrimkit.datasets import validate_registry

    raw = registry_raw.copy()
    raw.loc[0, "effective"] = "2020-13-45"
    _raises(RegistryError, r"2020-13-45", validate_registry, raw)


def test_registry_ended_before_effective(registry_raw):
    from decrimkit.datasets import validate_registry

    raw = registry_raw.copy()
    raw.loc[0, "effective"], raw.loc[0, "ended"] = "2021-05-01", "2020-01-01"
    _raises(RegistryError, r"ended", validate_registry, raw)


def test_registry_unknown_model(registry_raw):
    from decrimkit.datasets import validate_registry

    raw = registry_raw.copy()
    raw.loc[1, "model"] = "legalise_everything"
    _raises(RegistryError, r"legalise_everything", validate_registry, raw)


def test_registry_repeated_rows(registry_raw):
    from decrimkit.datasets import validate_registry

    _raises(RegistryError, r"repeat|duplicate", validate_registry, pd.concat([registry_raw, registry_raw.iloc[[2]]]))


# ------------------------------------------------------------------ analysis plans
PLAN = """
[data]
dataset = "mpdta"

[design]
unit = "countyreal"
time = "year"
outcome = "lemp"
cohort = "first.treat"

[[estimators]]
name = "did.twfe"
"""


@pytest.fixture
def plan_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    return tmp_path


def _plan(folder: Path, text: str) -> Path:
    path = folder / "plan.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_plan_unknown_key(plan_dir):
    from decrimkit.plan import load_plan

    _raises(PlanError, r"colour", load_plan, _plan(plan_dir, PLAN.replace('cohort = "first.treat"',
                                                                           'cohort = "first.treat"\ncolour = "red"')))


def test_plan_path_outside_data(plan_dir):
    from decrimkit.plan import load_plan

    text = PLAN.replace('dataset = "mpdta"', 'path = "/etc/passwd"')
    _raises(PlanError, r"data", load_plan, _plan(plan_dir, text))


def test_plan_estimator_not_allowed(plan_dir):
    from decrimkit.plan import load_plan

    _raises(PlanError, r"os\.system", load_plan, _plan(plan_dir, PLAN.replace("did.twfe", "os.system")))


def test_plan_invalid_toml(plan_dir):
    from decrimkit.plan import load_plan

    _raises(PlanError, r"", load_plan, _plan(plan_dir, "[data\ndataset = 1"))


# ------------------------------------------------------------------ CLI
def test_cli_missing_plan_file(tmp_path, capsys):
    from decrimkit.cli import main

    assert main(["run", str(tmp_path / "absent.toml")]) == 2
    err = capsys.readouterr().err
    assert "PlanError" in err and "Traceback" not in err


# ------------------------------------------------------------------ limits (issue 18: runs that never end)
# Each request below never finished, ran out of memory or aborted inside XLA before the limits; now
# it is refused in the estimator's own validation, before any work, with the limit in the message.
@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda p: did.twfe(p, se_method="wild", n_boot=10**12), r"n_boot=1,000,000,000,000 is above .* 1,000,000"),
        (lambda p: did.twfe(p, n_boot=10**7), r"n_boot=10,000,000 is above decrimkit's limit of 1,000,000"),
        (lambda p: did.att_gt(p, n_boot=10**12), r"n_boot=1,000,000,000,000 is above decrimkit's limit"),
        (lambda p: synth.sdid(p, n_reps=10**12), r"n_reps=1,000,000,000,000 is above decrimkit's limit of 100,000"),
        (lambda p: synth.mc_nnm(p, n_reps=10**12), r"n_reps=1,000,000,000,000 is above decrimkit's limit of 100,000"),
    ],
)
def test_replication_counts_above_the_limit(call, match):
    _raises(LimitError, match, call, panel())


def test_bootstrap_memory_limit_names_the_largest_allowed_count():
    from decrimkit.inference.wild import wild_cluster_bootstrap
    from decrimkit.limits import MAX_ELEMENTS

    n = 600
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(n, 2)), rng.normal(size=n)
    cluster = np.arange(n)  # 600 clusters: 6 x 600 numbers per replication
    err = _raises(LimitError, r"n_boot=900,000 with 3,600 numbers \(6 per cluster\) per replication needs about 24\.1 GiB",
                  wild_cluster_bootstrap, x, y, cluster, coef=0, n_boot=900_000)
    assert f"use n_boot <= {MAX_ELEMENTS // 3600:,}" in str(err)
    # the multiplier bootstrap (att_gt's) holds (n_boot, k) sums and (n_boot, 1024) tiles per worker
    from decrimkit.inference.bootstrap import multiplier_bootstrap
    from decrimkit.numerics.keys import key_from_seed

    psi = rng.normal(size=(50, 2000))
    _raises(LimitError, r"n_boot=999,999 with [0-9,]+ numbers per replication needs about [0-9.]+ GiB",
            multiplier_bootstrap, psi, key_from_seed(0), n_boot=999_999)


def test_sampler_limits():
    from decrimkit.estimators.bayes._sampling import validate_sampling

    _raises(LimitError, r"draws=10,000,000 is above decrimkit's limit of 100,000", validate_sampling,
            sampler="pymc", chains=4, draws=10**7, tune=100, seed=0)
    _raises(LimitError, r"chains=1,000 is above decrimkit's limit of 64", validate_sampling,
            sampler="pymc", chains=1000, draws=100, tune=100, seed=0)


def test_limit_error_exits_2_from_the_command_line(tmp_path, monkeypatch, capsys):
    from decrimkit.cli import main

    (tmp_path / "outputs").mkdir()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "plan.toml").write_text(PLAN.replace('name = "did.twfe"',
                                                     'name = "did.twfe"\noptions = { n_boot = 100000000000 }'))
    assert main(["run", "plan.toml"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: LimitError: plan key estimators[0].options.n_boot = 100,000,000,000 is above")
    assert "Traceback" not in err and list((tmp_path / "outputs").iterdir()) == []


def test_out_of_memory_exits_2_not_internal_error(tmp_path, monkeypatch, capsys):
    from decrimkit import studies
    from decrimkit.cli import main

    (tmp_path / "hungry_study.py").write_text("def run(out='outputs/h', *, seed=0, quick=False):\n    raise MemoryError\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(studies.STUDIES, "hungry", studies.Study("hungry", module="hungry_study"))
    assert main(["study", "hungry", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: MemoryError: this run needs more memory than the machine has")
    assert "internal error" not in err and not (tmp_path / "o").exists()  # the empty folder it locked is gone


def test_plan_with_an_empty_csv_exits_2(plan_dir, capsys):
    from decrimkit.cli import main

    (plan_dir / "data" / "empty.csv").write_text("")
    text = PLAN.replace('dataset = "mpdta"', 'path = "data/empty.csv"')
    assert main(["run", str(_plan(plan_dir, text))]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: PlanError: data.path") and "could not be read as CSV: No columns to parse" in err
    assert "internal error" not in err and not (plan_dir / "outputs").exists()  # no folder left behind


def test_plan_option_the_estimator_does_not_take_exits_2(plan_dir, capsys):
    from decrimkit.cli import main

    text = PLAN.replace('name = "did.twfe"', 'name = "did.twfe"\noptions = { frobnicate = 1 }')
    assert main(["run", str(_plan(plan_dir, text))]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: PlanError: plan key estimators[0].options.frobnicate: did.twfe has no option")
    assert "allowed: covariates, cluster" in err and "internal error" not in err
    assert not (plan_dir / "outputs").exists()


def test_grid_and_prior_draw_limits():
    from decrimkit.limits import check_options, check_sampler

    _raises(LimitError, r"^prior_draws=1,000,000 is above decrimkit's limit of 100,000; use at most 100,000\.$",
            check_sampler, prior_draws=10**6)
    _raises(LimitError, r"plan key estimators\[2\]\.options\.grid_size = 1,000,000,000 is above .* 100,000",
            check_options, {"grid_size": 10**9, "alpha": 0.1}, where="plan key estimators[2].options")


def test_imputation_point_estimate_only_for_placebo_inference():
    # a caller doing its own design-based inference (the prosecutors study: one county per model, placebo
    # reassignment) gets the point estimate with se=False, and no standard error at all
    p = _one_treated_unit(3)
    res = did.imputation(p, se=False)
    ref = did.imputation(_one_treated_unit(3).subset([0, 1, 2, 3]), se=False)
    assert np.isfinite(res.overall[0]) and np.isnan(res.overall[1]) and np.isnan(res.se).all()
    assert res.overall[0] == pytest.approx(ref.overall[0], rel=1e-12)
    assert "point estimates only (se=False)" in res.summary()
    _raises(SpecificationError, r"pretrends needs standard errors", did.imputation, p, se=False, pretrends=2)
    _raises(SpecificationError, r"se must be True or False, got 'no'", did.imputation, p, se="no")
    _raises(SpecificationError, r"se=False gives point estimates only; inference='randomization'", did.imputation,
            p, se=False, inference="randomization")
    # with enough clusters the point estimates are the same with and without standard errors
    full = did.imputation(panel())
    assert did.imputation(panel(), se=False).overall[0] == pytest.approx(full.overall[0], rel=1e-12)
