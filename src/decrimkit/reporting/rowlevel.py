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
   not a summary. Raise the limit for a genuinely large aggregate (e.g. county x year counts).

Names such as ``arrest_count``, ``arrests`` or ``county_fips`` pass.
"""

from __future__ import annotations

import re

import pandas as pd

from decrimkit.errors import DataError

__all__ = ["check_aggregate", "identifier_columns", "MAX_TABLE_ROWS"]

MAX_TABLE_ROWS = 1000
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


def check_aggregate(df: pd.DataFrame, name: str, max_rows: int = MAX_TABLE_ROWS) -> None:
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
