"""Small-cell suppression of published counts, with complementary suppression.

Rule (applied to the ``count_columns`` of a table):

1. **Primary suppression**: a count ``c`` with ``1 <= c < threshold`` (default threshold 11, so
   1-10) is hidden. **Zeros are not suppressed**: a zero discloses no individual, and hiding zeros
   would hide most of a sparse table.
2. **Complementary suppression**: a hidden cell must not be recoverable by subtraction from a total.
   With ``totals="both"`` (the default) both the row totals (across the count columns of a row) and
   the column totals (down a count column) are treated as public. Whenever a row (or column) holds
   exactly one hidden cell, the smallest visible non-zero cell of that row (or column) is hidden too
   (a zero is used only when no non-zero cell is left; ties go to the first cell). This repeats until
   no row or column has exactly one hidden cell, since a complementary cell in a column can leave a
   single hidden cell in its row.

Missing values are neither counted nor suppressed. Every hidden cell, primary or complementary, is
written as the same marker ``"(S)"`` (:data:`MARKER`) in CSV, Markdown, HTML and LaTeX output: a
complementary cell is not small, so writing it as ``"<11"`` would be false, and writing primary
and complementary cells differently would tell a reader which hidden cells are small.

Inside a :class:`~decrimkit.reporting.Report` this per-table rule is only the first step: the
whole output set is then audited across tables (:mod:`decrimkit.reporting.disclosure`). Tables with subtotal rows inside the table
(hierarchies) are beyond this rule: publish the subtotals as separate tables.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from decrimkit.errors import DataError, SpecificationError
from decrimkit.options import check_option

__all__ = [
    "suppression_mask",
    "suppress",
    "apply_mask",
    "MARKER",
    "count_like_columns",
    "integer_like_columns",
    "Totals",
]

Totals = Literal["both", "rows", "columns", "none"]


_COUNT_WORDS = {
    "n",
    "count",
    "counts",
    "number",
    "arrest",
    "arrests",
    "death",
    "deaths",
    "case",
    "cases",
    "people",
    "persons",
    "events",
    "admissions",
    "overdoses",
    "bookings",
    "charges",
    "incidents",
    "stops",
    "visits",
}


def count_like_columns(df: pd.DataFrame) -> list[str]:
    """Columns that look like counts: integer-valued, non-negative, and a name with a count word.

    A count word is a name token (split on non-alphanumerics and camelCase) such as ``n``,
    ``count``, ``arrests``, ``deaths``, ``cases`` (see ``_COUNT_WORDS``). A heuristic for audits of
    files written outside :class:`~decrimkit.reporting.Report`; a report does not guess: it refuses
    every undeclared integer-like column (:func:`integer_like_columns`).
    """
    out = []
    for col in df.columns:
        spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(col))
        tokens = {t for t in re.split(r"[^0-9a-zA-Z]+", spaced.lower()) if t}
        if tokens & _COUNT_WORDS and _integer_like(df[col]):
            out.append(str(col))
    return out


MARKER = "(S)"
"""The text written in place of every suppressed cell."""


def _integer_like(s: pd.Series) -> bool:
    """A numeric (not boolean) column whose finite values are all non-negative integers."""
    if not pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
        return False
    v = s.to_numpy(dtype="float64", na_value=np.nan)
    v = v[np.isfinite(v)]
    return bool(len(v) and (v >= 0).all() and (v == np.round(v)).all())


def integer_like_columns(df: pd.DataFrame) -> list[str]:
    """Numeric (not boolean) columns whose values are all non-negative integers: they could be counts."""
    return [str(col) for col in df.columns if _integer_like(df[col])]


def _shown(x: float, integer: bool) -> object:
    if not np.isfinite(x):
        return ""
    return str(int(x)) if integer else x


def apply_mask(df: pd.DataFrame, mask: pd.DataFrame, count_columns: Sequence[str] = ()) -> pd.DataFrame:
    """A copy of ``df`` with the cells where ``mask`` is true replaced by :data:`MARKER`.

    Columns in ``count_columns`` are written as integers (text); other masked columns (derived
    columns) keep their values where they are not hidden.
    """
    out = df.copy()
    counts = set(count_columns)
    for c in mask.columns:
        m = mask[c].to_numpy(dtype=bool)
        if c in counts:
            v = df[c].to_numpy(dtype="float64", na_value=np.nan)
            shown = [MARKER if h else _shown(x, True) for x, h in zip(v, m)]
        elif m.any():
            shown = [MARKER if h else x for x, h in zip(df[c].tolist(), m)]
        else:
            continue
        out[c] = pd.Series(shown, index=df.index, dtype=object)
    return out


def _counts(df: pd.DataFrame, count_columns: Sequence[str]) -> np.ndarray:
    missing = [c for c in count_columns if c not in df.columns]
    if missing:
        raise SpecificationError(f"count column(s) {missing} are not in the table; its columns are {list(df.columns)}.")
    values = np.empty((len(df), len(count_columns)), dtype="float64")
    for j, c in enumerate(count_columns):
        col = df[c]
        if not pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
            raise DataError(f"count column {c!r} is not numeric (dtype {col.dtype}); pass numbers to suppress.")
        values[:, j] = col.to_numpy(dtype="float64", na_value=np.nan)
    finite = values[np.isfinite(values)]
    if (finite < 0).any():
        raise DataError("count columns hold negative values; counts must be >= 0 before suppression.")
    if (finite != np.round(finite)).any():
        raise DataError(
            "count columns hold non-integer values; suppression applies to counts. Pass rates and estimates "
            "as ordinary columns."
        )
    return values


def _complement(values: np.ndarray, mask: np.ndarray, axis: int) -> bool:
    """Hide one more cell in every line (row if axis=1, column if axis=0) with exactly one hidden cell."""
    changed = False
    lines = range(values.shape[0]) if axis == 1 else range(values.shape[1])
    for i in lines:
        v = values[i, :] if axis == 1 else values[:, i]
        m = mask[i, :] if axis == 1 else mask[:, i]
        if m.sum() != 1:
            continue
        visible = ~m & np.isfinite(v)
        if not visible.any():
            continue
        nonzero = visible & (v > 0)
        pool = nonzero if nonzero.any() else visible
        candidates = np.flatnonzero(pool)
        pick = candidates[int(np.argmin(v[candidates]))]  # first of ties
        if axis == 1:
            mask[i, pick] = True
        else:
            mask[pick, i] = True
        changed = True
    return changed


def suppression_mask(
    df: pd.DataFrame,
    count_columns: Sequence[str],
    threshold: int = 11,
    totals: Totals = "both",
) -> pd.DataFrame:
    """Boolean frame (same index, the count columns) marking the cells to hide.

    Parameters
    ----------
    df : DataFrame
        The table to publish (not modified).
    count_columns : sequence of str
        Columns holding counts of people or events.
    threshold : int
        Counts from 1 to ``threshold - 1`` are hidden (default 11: cells of 1-10).
    totals : {"both", "rows", "columns", "none"}
        Which margins are public and must not reveal a hidden cell.

    Raises
    ------
    SpecificationError
        Unknown count column, ``threshold < 1`` or an unknown ``totals``.
    DataError
        Non-numeric, negative or non-integer counts.
    """
    check_option("totals", totals, Totals)
    if int(threshold) < 1:
        raise SpecificationError(f"threshold={threshold!r} must be a positive integer (e.g. 11).")
    cols = list(dict.fromkeys(count_columns))
    values = _counts(df, cols)
    mask = np.isfinite(values) & (values >= 1) & (values < threshold)
    if mask.any() and totals != "none":
        for _ in range(values.size + 1):
            changed = False
            if totals in ("both", "rows") and values.shape[1] > 1:
                changed |= _complement(values, mask, axis=1)
            if totals in ("both", "columns") and values.shape[0] > 1:
                changed |= _complement(values, mask, axis=0)
            if not changed:
                break
    return pd.DataFrame(mask, index=df.index, columns=cols)


def suppress(
    df: pd.DataFrame,
    count_columns: Sequence[str],
    threshold: int = 11,
    totals: Totals = "both",
) -> pd.DataFrame:
    """A copy of ``df`` whose suppressed count cells read :data:`MARKER` (``"(S)"``).

    The count columns become object columns holding integers (or the marker); other columns are
    unchanged. See the module docstring for the rule and :func:`suppression_mask` for parameters.

    Examples
    --------
    >>> t = pd.DataFrame({"district": ["N", "S", "E", "W"], "arrests": [120, 4, 60, 35]})
    >>> suppress(t, ["arrests"])["arrests"].tolist()  # 4 is hidden, and 35 so the total cannot reveal it
    ['120', '(S)', '60', '(S)']
    """
    mask = suppression_mask(df, count_columns, threshold=threshold, totals=totals)
    return apply_mask(df, mask, mask.columns)
