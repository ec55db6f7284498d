"""A report table's declarations, checked when it is added: which columns count people or events, and how.

Count columns are declared, never guessed (see :meth:`decrimkit.Report.add_table`); :func:`build_table`
checks the declarations against the frame, refuses row-level records and undeclared integer-like
columns, validates the counts, and returns the table record that the report keeps until it is finalised.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import pandas as pd

from decrimkit.errors import DataError, SpecificationError
from decrimkit.reporting.items import Table
from decrimkit.reporting.rowlevel import check_aggregate
from decrimkit.reporting.suppression import integer_like_columns, suppression_mask


def build_table(
    name: str,
    df: pd.DataFrame,
    caption: str,
    count_columns: Sequence[str] | None,
    not_counts: Sequence[str] | Literal["all"],
    derived: Mapping[str, Mapping[str, float]] | None,
    depends: Mapping[str, Sequence[str]] | None,
    index: bool | None,
    *,
    threshold: int,
    max_rows: int,
) -> Table:
    """The table record of ``df`` with its declarations (a copy; ``df`` is not modified).

    Raises
    ------
    DataError
        If the table looks like row-level records, holds an undeclared integer-like column, or its
        counts are invalid.
    SpecificationError
        If a declared column is not in the table or is declared twice.
    """
    frame = df.copy()
    keep_index = index if index is not None else not isinstance(frame.index, pd.RangeIndex)
    frame = frame.reset_index() if keep_index else frame.reset_index(drop=True)
    frame.columns = [str(c) for c in frame.columns]
    counts = tuple(dict.fromkeys(str(c) for c in (count_columns or ())))
    if isinstance(not_counts, str):
        if not_counts != "all":
            raise SpecificationError(f"table {name!r}: not_counts must be column names or 'all', got {not_counts!r}.")
        if counts:
            raise SpecificationError(f"table {name!r}: not_counts='all' contradicts count_columns={list(counts)}.")
        not_counts = [c for c in frame.columns if c not in {k for k, _ in (derived or {}).items()}]
    others = tuple(dict.fromkeys(str(c) for c in not_counts))
    deriv = tuple(
        (str(k), tuple((str(c), float(v)) for c, v in dict(parts).items())) for k, parts in (derived or {}).items()
    )
    deps = tuple((str(k), tuple(str(c) for c in v)) for k, v in (depends or {}).items())
    declared = [*counts, *others, *(k for k, _ in deriv), *(k for k, _ in deps)]
    inputs = [c for _, parts in deriv for c, _ in parts] + [c for _, v in deps for c in v]
    missing = [c for c in dict.fromkeys([*declared, *inputs]) if c not in frame.columns]
    if missing:
        raise SpecificationError(
            f"table {name!r}: declared column(s) {missing} are not in it; its columns are {list(frame.columns)}."
        )
    twice = sorted(set(counts) & (set(others) | {k for k, _ in deriv}))
    if twice:
        raise SpecificationError(f"table {name!r}: column(s) {twice} are declared both as counts and as something else.")
    check_aggregate(frame, name, max_rows, count_columns=counts)
    undeclared = [c for c in integer_like_columns(frame) if c not in set(declared)]
    if undeclared:
        raise DataError(
            f"table {name!r}: column(s) {undeclared} hold non-negative integers but are not declared. Pass "
            f"count_columns=[...] for counts of people or events (they are suppressed below "
            f"{threshold}) or not_counts=[...] for other integers (years, months, model sizes)."
        )
    if counts:
        suppression_mask(frame, counts, threshold=threshold, totals="none")  # validates the counts now
    return Table(name, frame, caption, counts, 0, others, deriv, deps)
