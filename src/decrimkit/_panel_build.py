"""Row-level checks behind ``Panel.from_frame``: column roles, time normalisation and cohorts.

Kept apart from ``panel.py`` so that the ``Panel`` class reads as the data model (views and design
checks) and this module as the validation of a caller's raw frame. Every failure is a named
``DecrimkitError`` that points at the first offending rows and says how to fix them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from decrimkit.errors import DataError, PanelError


def rows_excerpt(index: Iterable[Any], limit: int = 5) -> str:
    rows = list(index)
    shown = ", ".join(str(r) for r in rows[:limit])
    return shown + (f" (and {len(rows) - limit} more)" if len(rows) > limit else "")


def plain(value: Any) -> Any:
    """NumPy scalars as Python scalars, so messages read ``year=2001``, not ``np.int64(2001)``."""
    return value.item() if isinstance(value, np.generic) else value


def require_columns(df: pd.DataFrame, roles: dict[str, Any]) -> None:
    for role, col in roles.items():
        cols = col if isinstance(col, (tuple, list)) else (col,)
        for c in cols:
            if c is not None and c not in df.columns:
                avail = ", ".join(map(str, list(df.columns)[:12]))
                raise PanelError(
                    f"column {c!r} (given as {role}=) is not in the frame; available columns: {avail}. "
                    f"Pass the name of an existing column."
                )
    named = {c for col in roles.values() for c in (col if isinstance(col, (tuple, list)) else (col,)) if c is not None}
    repeated = [c for c in dict.fromkeys(df.columns[df.columns.duplicated(keep=False)]) if c in named]
    if repeated:
        where = ", ".join(
            f"{c!r} at positions {np.flatnonzero(df.columns == c).tolist()}" for c in repeated[:5]
        )
        raise PanelError(
            f"the frame has more than one column named {where}; decrimkit cannot tell which one to use. "
            f"Rename or drop the duplicates first (e.g. df.loc[:, ~df.columns.duplicated()])."
        )


def normalise_times(values: pd.Series, freq: str | None) -> tuple[pd.Series, str]:
    """Return times as integers (kind 'int') or pandas Periods (kind 'period')."""
    name = values.name
    missing = values.isna().to_numpy(dtype=bool)
    if missing.any() and not pd.api.types.is_float_dtype(values.dtype):
        raise PanelError(
            f"time column {name!r} is missing at rows {rows_excerpt(np.flatnonzero(missing))}. Fill or drop those rows."
        )
    values = _numpy_backed(values)
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        # the local calendar date is the period the caller means; converting to UTC could move it
        values = values.dt.tz_localize(None)
    if isinstance(values.dtype, pd.PeriodDtype):
        return values, "period"
    if pd.api.types.is_integer_dtype(values.dtype) and freq is None:
        return values.astype("int64"), "int"
    if pd.api.types.is_float_dtype(values.dtype) and freq is None:
        bad = values.isna() | ~np.isfinite(values) | (values != np.round(values))
        if bad.any():
            raise PanelError(
                f"time column {name!r} has non-integer or missing values at rows {rows_excerpt(values.index[bad])} "
                f"(first: {plain(values[bad].iloc[0])!r}). Use integer periods (e.g. years), dates or pandas Periods."
            )
        return values.astype("int64"), "int"
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        if values.isna().any():
            bad = values.index[values.isna()]
            raise PanelError(f"time column {name!r} is missing at rows {rows_excerpt(bad)}. Fill or drop those rows.")
        return values.dt.to_period(freq or "M"), "period"
    # strings or objects: integer labels (e.g. "2019") are years, anything else is parsed as dates, strictly
    text = values.astype("string")
    if freq is None and text.notna().all() and text.str.fullmatch(r"\s*-?\d+\s*").all():
        return text.astype("int64"), "int"
    try:
        parsed = pd.to_datetime(text, errors="coerce", format="mixed")
    except ValueError as exc:  # pandas refuses to mix UTC offsets / time zones in one column
        raise PanelError(
            f"time column {name!r} mixes time zones or UTC offsets (e.g. {text.iloc[0]!r}); decrimkit will not "
            f"choose one for you, since converting to UTC can move a date into another period. Convert it with "
            f"pd.to_datetime(..., utc=True) and then .dt.tz_convert(<the zone the periods are defined in>) first."
        ) from exc
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_localize(None)
    bad = parsed.isna()
    if bad.any():
        raise PanelError(
            f"time column {name!r} could not be parsed at rows {rows_excerpt(values.index[bad])} "
            f"(first value: {plain(values[bad].iloc[0])!r}). Use integers, ISO dates (YYYY-MM-DD) or pandas Periods."
        )
    shapes = text.str.strip().str.replace(r"\d", "9", regex=True)  # '2020-01-31' -> '9999-99-99'
    if shapes.nunique() > 1:
        raise PanelError(
            f"time column {name!r} mixes date formats (e.g. {text.iloc[0]!r} and "
            f"{text[shapes != shapes.iloc[0]].iloc[0]!r}); convert it with pd.to_datetime "
            f"and an explicit format first."
        )
    return parsed.dt.to_period(freq or "M"), "period"


def _numpy_backed(values: pd.Series) -> pd.Series:
    """Arrow-backed columns (``pd.ArrowDtype``: timestamps, dates, integers) as their NumPy equivalents."""
    if not isinstance(values.dtype, pd.ArrowDtype):
        return values
    if values.dtype.kind == "M":  # timestamp[...] and date32/date64
        tz = getattr(values.dtype.pyarrow_dtype, "tz", None)
        return values.astype(pd.DatetimeTZDtype("ns", tz) if tz else "datetime64[ns]")
    if values.dtype.kind in "iuf":
        return values.astype(values.dtype.numpy_dtype)
    return values.astype("string")


def cohort_columns(
    raw: pd.DataFrame,
    out: pd.DataFrame,
    times: np.ndarray,
    kind: str,
    cohort: str | None,
    treated: str | None,
    unit: str,
    allow_reversal: bool,
    unit_codes: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cohort labels, cohort positions (inf = never) and the treated indicator per row.

    ``unit_codes``: integer codes of ``out["unit"]`` when the caller has them (else factorised here).
    """
    n = len(out)
    t = out["t"].to_numpy()
    if treated is not None:
        d_raw = pd.to_numeric(raw[treated], errors="coerce")
        badd = ~d_raw.isin([0, 1])
        if badd.any():
            raise DataError(
                f"treated column {treated!r} must be 0/1; bad at rows {rows_excerpt(np.flatnonzero(badd))} "
                f"(first {plain(raw[treated].iloc[np.flatnonzero(badd)[0]])!r})."
            )
        d = d_raw.to_numpy(dtype="int64")
        tmp = pd.DataFrame({"u": out["unit"].to_numpy(), "t": t, "d": d}).sort_values(["u", "t"], kind="mergesort")
        first_on = tmp.loc[tmp["d"] == 1].groupby("u")["t"].min()
        g_unit = tmp["u"].map(first_on).astype("float64").fillna(np.inf)
        switched_off = (tmp["d"] == 0) & (tmp["t"] > g_unit)
        if switched_off.any() and not allow_reversal:
            first = tmp.loc[switched_off].iloc[0]
            raise DataError(
                f"treatment {treated!r} switches off for {tmp.loc[switched_off, 'u'].nunique()} units "
                f"(first: {unit}={plain(first['u'])!r} at {times[int(first['t'])]}). Staggered estimators assume "
                f"treatment stays on; pass allow_reversal=True to keep the first on-period as the cohort."
            )
        g = g_unit.reindex(out.index).to_numpy()
        dd = (t >= g).astype("int64") if not allow_reversal else d
    elif cohort is not None:
        c = raw[cohort]
        refuse_boolean_cohorts(c, cohort)
        if kind == "period" and not pd.api.types.is_numeric_dtype(c.dtype):
            parsed = pd.to_datetime(c.astype("string"), errors="coerce", format="mixed")
            never = (c.isna() | c.astype("string").isin(["0", "inf", ""])).to_numpy()
            if (parsed.isna().to_numpy() & ~never).any():
                bad = np.flatnonzero(parsed.isna().to_numpy() & ~never)
                raise DataError(f"cohort column {cohort!r} could not be parsed at rows {rows_excerpt(bad)}.")
            per = parsed.dt.to_period(times[0].freq)
            ordinals = np.array([p.ordinal if not nv else 0 for p, nv in zip(per.array, never)], dtype="int64")
            pos = cohort_positions(ordinals, never, np.array([p.ordinal for p in times]), times, raw, out, cohort, unit,
                                   shown=np.array([str(p) if not nv else "" for p, nv in zip(per.array, never)]))
        else:
            cv = pd.to_numeric(c, errors="coerce")
            if cv.isna().any() and not c.isna().equals(cv.isna()):
                bad = np.flatnonzero(cv.isna() & c.notna())
                raise DataError(f"cohort column {cohort!r} is not numeric at rows {rows_excerpt(bad)}.")
            cv = cv.to_numpy(dtype="float64")
            never = np.isnan(cv) | (cv == np.inf) | (cv == 0)
            invalid = ~never & (~np.isfinite(cv) | (cv < 0) | (cv != np.round(cv)))
            if invalid.any():
                rows = np.flatnonzero(invalid)
                raise DataError(
                    f"cohort column {cohort!r} must hold each unit's first treated period (a whole number such as "
                    f"a year) or 0, NaN or inf for never treated; it holds {plain(c.iloc[rows[0]])!r} at rows "
                    f"{rows_excerpt(rows)} ({unit}={plain(out['unit'].iloc[rows[0]])!r}). Negative and fractional "
                    f"cohorts are not rounded or reinterpreted: correct those rows."
                )
            if kind == "period":
                # numeric cohorts with period times are period ordinals of the same frequency
                yearlike = ~never & (cv >= 1000) & (cv < 3000)
                if yearlike.any():
                    raise DataError(
                        f"cohort column {cohort!r} holds numbers that look like calendar years (first "
                        f"{cv[yearlike][0]:g} at row {int(np.flatnonzero(yearlike)[0])}) but the time column holds "
                        f"periods ({times[0].freqstr}); numeric cohorts would be read as period ordinals. Give "
                        f"cohorts as dates or periods like the time column (e.g. '2020-03')."
                    )
                grid = np.array([p.ordinal for p in times])
            else:
                grid = np.asarray(times, dtype="int64")
            pos = cohort_positions(np.where(never, 0, cv).astype("int64"), never, grid, times, raw, out, cohort, unit)
        pos = pos.astype("float64")
        # cohort must be constant within unit
        codes = pd.factorize(out["unit"])[0] if unit_codes is None else unit_codes
        first_row = np.empty(int(codes.max()) + 1, dtype=np.int64)
        first_row[codes[::-1]] = np.arange(len(codes))[::-1]  # the last write per unit is its first row
        ref = pos[first_row[codes]]  # each unit's value on its first row
        if (pos != ref).any():  # (pos holds no NaN: never treated is inf)
            chk = pd.DataFrame({"u": out["unit"].to_numpy(), "g": pos})
            varies = chk.groupby("u")["g"].nunique(dropna=False) > 1
            raise DataError(
                f"cohort column {cohort!r} varies within {int(varies.sum())} units (e.g. {varies.index[varies][:3].tolist()}); "
                f"it must hold each unit's first treated period on every row."
            )
        # a cohort after the last period is not treated within the window
        pos = np.where(pos >= len(times), np.inf, pos)
        g = pos
        dd = (t >= g).astype("int64")
    else:
        g = np.full(n, np.inf)
        dd = np.zeros(n, dtype="int64")
    # label each period once, then gather by position (a per-row loop took seconds at 1e6 rows); never: NaN
    finite = np.isfinite(g)
    at = np.where(finite, g, 0).astype("int64")
    if kind == "int":
        labels = np.where(finite, np.asarray(times, dtype="float64")[at], np.nan)
    else:
        table = np.array([*times, np.nan], dtype=object)  # the last entry labels the never treated
        labels = table[np.where(finite, at, len(times))]
    return labels, g.astype("float64"), dd


def refuse_boolean_cohorts(c: pd.Series, cohort: str) -> None:
    """A True/False cohort is a treatment flag, not a first treated period: refuse it (True would read as 1)."""
    if pd.api.types.is_bool_dtype(c.dtype):
        rows = np.arange(len(c))
    elif c.dtype == object:
        rows = np.flatnonzero(c.map(lambda v: isinstance(v, (bool, np.bool_))).to_numpy(dtype=bool))
    else:
        return
    if len(rows):
        raise DataError(
            f"cohort column {cohort!r} holds True/False values (first {plain(c.iloc[rows[0]])!r} at rows "
            f"{rows_excerpt(rows)}); a cohort is each unit's first treated period. Pass a 0/1 indicator as "
            f"treated= instead, or give the first treated period (0 or NaN for never treated)."
        )


def cohort_positions(
    values: np.ndarray,
    never: np.ndarray,
    grid: np.ndarray,
    times: np.ndarray,
    raw: pd.DataFrame,
    out: pd.DataFrame,
    cohort: str,
    unit: str,
    shown: np.ndarray | None = None,
) -> np.ndarray:
    """Time position of each row's cohort (inf = never) on the sorted period ``grid`` (ints or ordinals).

    A cohort must be one of the panel's periods, or later than the last one (treated after the window,
    hence not treated within it). A cohort before the first period, or between two observed periods,
    has no position: it is refused rather than moved to a neighbouring period, which would shift every
    event time of that unit.
    """
    pos, off_grid = _grid_positions(values, grid)
    off_grid &= ~never
    if off_grid.any():
        rows = np.flatnonzero(off_grid)
        first = rows[0]
        label = str(shown[first]) if shown is not None else plain(raw[cohort].iloc[first])
        before = bool(values[first] < grid[0])
        why = (
            f"before the first period ({times[0]}): those units are treated throughout the data, and "
            f"relabelling the cohort as {times[0]} would shift their event times. Drop them explicitly (they "
            f"have no pre-treatment period) or extend the data back to the cohort"
            if before
            else f"not one of the panel's periods ({times[0]} .. {times[-1]}, {len(times)} periods); give the "
            f"first observed treated period or add the missing period"
        )
        raise DataError(
            f"cohort column {cohort!r} holds {label!r} at rows {rows_excerpt(rows)} "
            f"({unit}={plain(out['unit'].iloc[first])!r}), which is {why}."
        )
    return np.where(never, np.inf, pos)


# integer labels spanning at most this many values are coded through a lookup table (one gather per row)
# instead of a hash or a binary search per row
_TABLE_SPAN = 10_000_000


def _grid_positions(values: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position of each integer value on the sorted integer ``grid`` (``len(grid)`` past its end) and
    whether the value falls off the grid (before its start, or between two of its points: such a value
    has no position, and what ``pos`` holds for it is meaningless)."""
    lo, hi = int(grid[0]), int(grid[-1])
    if hi - lo < _TABLE_SPAN:
        table = np.full(hi - lo + 1, -1, dtype=np.int64)
        table[grid - lo] = np.arange(len(grid))
        at = table[np.clip(values, lo, hi) - lo]
        pos = np.where(values > hi, len(grid), at)
        return pos.astype("float64"), (values < lo) | (at < 0) & (values <= hi)
    pos = np.searchsorted(grid, values)
    inside = pos < len(grid)
    return pos.astype("float64"), inside & (grid[np.minimum(pos, len(grid) - 1)] != values)


def integer_time_codes(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct integer periods and each row's position among them."""
    lo, hi = int(t.min()), int(t.max())
    if hi - lo < _TABLE_SPAN:
        present = np.zeros(hi - lo + 1, dtype=bool)
        present[t - lo] = True
        rank = np.cumsum(present, dtype=np.int64) - 1
        return np.flatnonzero(present).astype(np.int64) + lo, rank[t - lo]
    times = np.sort(pd.unique(t))  # distinct values by hashing, then a sort of those only
    return times, np.searchsorted(times, t)


def factorize_units(units: pd.Series) -> tuple[np.ndarray, Any, bool]:
    """Integer code of each row's unit (in order of first appearance), the units in that order, and
    whether the rows are already sorted by unit (then the codes come from the change points)."""
    values = units.to_numpy()
    if values.dtype.kind in "iuf" and bool((values[1:] >= values[:-1]).all()):
        starts = np.empty(len(values), dtype=bool)
        starts[:1] = True
        np.not_equal(values[1:], values[:-1], out=starts[1:])
        return np.cumsum(starts, dtype=np.int64) - 1, values[starts], True
    codes, firsts = pd.factorize(units)
    return codes.astype(np.int64, copy=False), firsts, bool(pd.Index(units).is_monotonic_increasing)
