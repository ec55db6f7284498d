"""Refuse to publish tables that look like row-level records.

A report publishes aggregates only. :func:`check_aggregate` rejects a table when

1. a column name looks like a record identifier or a personal attribute: after lower-casing and
   splitting on non-alphanumerics, a token is one of ``id``, ``ids``, ``uuid``, ``ssn``, ``dob``;
   or the name is one of ``arrest``, ``name``, ``first_name``, ``last_name``, ``full_name``,
   ``address``, ``street``, ``latitude``, ``longitude``, ``lat``, ``lon``, ``lng``,
   ``date_of_birth``, ``birth_date``, ``arrest_time``; or it joins a record word (``arrest``,
   ``case``, ``booking``, ``incident``, ``record``, ``person``, ``defendant``, ``docket``,
   ``charge``, ``citation``) with a number word (``no``, ``num``, ``number``, ``nbr``, ``key``),
   e.g. ``arrest_number``, ``CaseNo``, ``booking_num``; or
2. it has more rows than ``max_rows`` (default 1000): a published table that long is a data dump,
   not a summary. Raise the limit for a genuinely large aggregate (e.g. county x year counts); or
3. it has at least ``MIN_RECORD_ROWS`` (20) rows and its rows look like people rather than groups:

   a. its count columns hold mostly ones (at least half of its non-zero count cells are 1), as when
      a count of 1 is attached to each record; or
   b. it has no count column and a demographic column (a name token ``age``, ``sex``, ``gender``,
      ``race``, ``ethnicity``, ``hispanic``, ``zip``, ``zipcode``, ``postcode``, ``birth``,
      ``born``) together with a second demographic column, a day-level date/time column (a
      datetime column, or text ``YYYY-MM-DD``, with several distinct days) or repeated rows (a table
      of groups has one row per group). A summary of people always carries a count; a table of
      policies with start and end dates (no demographics) passes.

Names such as ``arrest_count``, ``arrests`` or ``county_fips`` pass; so do monthly series
(``YYYY-MM``) and tables of estimates by state.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from decrimkit.errors import DataError

__all__ = [
    "check_aggregate",
    "identifier_columns",
    "demographic_columns",
    "day_columns",
    "MAX_TABLE_ROWS",
    "MIN_RECORD_ROWS",
]

MAX_TABLE_ROWS = 1000
MIN_RECORD_ROWS = 20
_DEMOGRAPHIC = {"age", "sex", "gender", "race", "ethnicity", "hispanic", "zip", "zipcode", "postcode", "birth", "born"}
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2})?)?")
_ID_TOKENS = {"id", "ids", "uuid", "ssn", "dob"}
_PERSONAL = {
    "arrest",
    "name",
    "firstname",
    "lastname",
    "fullname",
    "address",
    "street",
    "latitude",
    "longitude",
    "lat",
    "lon",
    "lng",
    "dateofbirth",
    "birthdate",
    "arresttime",
}
_RECORD = r"(arrest|case|booking|incident|record|person|defendant|docket|charge|citation)"
_NUMBER = r"(no|num|number|nbr|key)"
_RECORD_NUMBER = re.compile(rf"^{_RECORD}s?{_NUMBER}$")


def _tokens(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)  # camelCase -> camel Case
    return [t for t in re.split(r"[^0-9a-zA-Z]+", spaced.lower()) if t]


def identifier_columns(df: pd.DataFrame) -> list[str]:
    """Columns of ``df`` whose names look like record identifiers or personal attributes."""
    hits = []
    for col in df.columns:
        tokens = _tokens(str(col))
        joined = "".join(tokens)
        if _ID_TOKENS.intersection(tokens) or joined in _PERSONAL or _RECORD_NUMBER.match(joined):
            hits.append(str(col))
    return hits


def _day_level(s: pd.Series) -> bool:
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        days = pd.to_datetime(s.dropna()).dt.normalize()
        return days.nunique() > 1 and (days.dt.day != 1).any()
    if s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
        text = s.dropna().astype(str)
        hits = text[text.str.match(_DAY)]
        return len(hits) > 0.5 * max(len(text), 1) and hits.str[:10].nunique() > 1
    return False


def demographic_columns(df: pd.DataFrame) -> list[str]:
    """Columns whose names describe a person (``age``, ``sex``, ``race``, ``zip``, ...)."""
    return [str(c) for c in df.columns if set(_tokens(str(c))) & _DEMOGRAPHIC]


def day_columns(df: pd.DataFrame) -> list[str]:
    """Columns of day-level dates or times (several distinct days)."""
    return [str(c) for c in df.columns if _day_level(df[c])]


def check_aggregate(
    df: pd.DataFrame, name: str, max_rows: int = MAX_TABLE_ROWS, count_columns: Sequence[str] = ()
) -> None:
    """Raise :class:`DataError` if ``df`` looks like row-level records (see the module docstring)."""
    ids = identifier_columns(df) + [
        str(n) for n in df.index.names if n is not None and identifier_columns(pd.DataFrame(columns=[n]))
    ]
    if ids:
        raise DataError(
            f"table {name!r} has identifier-like column(s) {ids}; reports publish aggregates, never row-level "
            f"records. Aggregate first (e.g. df.groupby(...).size()) and drop identifier columns."
        )
    if len(df) > max_rows:
        raise DataError(
            f"table {name!r} has {len(df)} rows, more than the {max_rows} allowed for a published table; it looks "
            f"like row-level data. Aggregate it, or raise the limit with Report(max_table_rows=...) if it is a "
            f"genuine aggregate."
        )
    if len(df) < MIN_RECORD_ROWS:
        return
    counts = [c for c in count_columns if c in df.columns]
    if counts:
        v = np.concatenate([pd.to_numeric(df[c], errors="coerce").to_numpy(dtype="float64") for c in counts])
        v = v[np.isfinite(v) & (v != 0)]
        if len(v) >= MIN_RECORD_ROWS and (v == 1).mean() >= 0.5:
            raise DataError(
                f"table {name!r}: {int((v == 1).sum())} of its {len(v)} non-zero counts are 1; it looks like one row "
                f"per person with a count of 1 attached. Aggregate to groups before publishing."
            )
        return
    demo, days = demographic_columns(df), day_columns(df)
    if len(demo) >= 2 or (demo and days) or (demo and df.duplicated().any()):
        raise DataError(
            f"table {name!r} has {len(df)} rows, no count column and person-describing columns {demo + days}; it "
            f"looks like person-level records. Publish counts by group (df.groupby([...]).size()) instead."
        )
