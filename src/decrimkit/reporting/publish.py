"""Finalising a report: suppression across its whole output set, the audit, then the figures of counts.

:func:`finalize` resolves the declared relations (:meth:`decrimkit.Report.add_sum`,
:meth:`decrimkit.Report.add_relation`) to cells, protects every table's counts together with the headline
``n`` of results.json (:func:`decrimkit.reporting.disclosure.protect`: complementary suppression audited by
linear programming), replaces each table by its published form (hidden cells read ``"(S)"``) and draws
each pending figure from its table as published (hidden cells NaN).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from decrimkit.errors import SpecificationError
from decrimkit.reporting.audit import Relation
from decrimkit.reporting.disclosure import TableSpec, protect
from decrimkit.reporting.items import RESULTS_TABLE, Cell, PendingFigure, render_figure
from decrimkit.reporting.suppression import MARKER, Totals, apply_mask

# a declared relation: ((cell, coefficient), ...), constant, tolerance
Declared = tuple[tuple[tuple[Cell, float], ...], float, float]


@dataclass(frozen=True)
class Published:
    items: list[tuple[str, Any]]  # the report's items, tables as published, every figure rendered
    audited: list[Relation]  # the relations the audit used (written to provenance.json)
    n_suppressed: int  # headline n hidden in results.json
    n_audited: bool  # whether results.json had an n to audit


def resolve_row(table: str, row: Any, frames: Mapping[str, pd.DataFrame]) -> int:
    """The 0-based position of a relation's ``row`` (a position or ``{key column: value}``) in ``table``."""
    if table not in frames:
        raise SpecificationError(f"a relation names table {table!r}, which was not added; tables: {sorted(frames)}.")
    f = frames[table]
    if isinstance(row, (int, np.integer)) and not isinstance(row, bool):
        if not 0 <= int(row) < len(f):
            raise SpecificationError(f"a relation names row {row} of table {table!r}, which has {len(f)} rows.")
        return int(row)
    if not isinstance(row, Mapping) or not row:
        raise SpecificationError(
            f"a relation's row must be a position or a mapping of key columns to values, got {row!r}."
        )
    hit = np.ones(len(f), dtype=bool)
    for k, v in row.items():
        if k not in f.columns:
            raise SpecificationError(f"a relation selects on column {k!r}, which table {table!r} does not have.")
        hit &= (f[k] == v).to_numpy(dtype=bool) | (f[k].astype(str) == str(v)).to_numpy(dtype=bool)
    if hit.sum() != 1:
        raise SpecificationError(
            f"a relation's row {dict(row)!r} matches {int(hit.sum())} rows of table {table!r}, not one."
        )
    return int(np.flatnonzero(hit)[0])


def finalize(
    items: Sequence[tuple[str, Any]],
    relations: Sequence[Declared],
    results: dict[str, dict[str, Any]],
    *,
    threshold: int,
    totals: Totals,
) -> Published:
    """Suppress across the whole output set, audit it, and draw the figures of counts.

    ``results`` (results.json's rows by name) is updated in place: a hidden headline ``n`` reads ``"(S)"``.
    """
    tables = {t.name: t for kind, t in items if kind == "table"}
    frames = {n: t.frame for n, t in tables.items()}
    rels = []
    for terms, const, tol in relations:
        refs = []
        for (table, row, col), k in terms:
            r = resolve_row(table, row, frames)
            if str(col) not in frames[table].columns:
                raise SpecificationError(f"a relation names column {col!r}, which table {table!r} does not have.")
            refs.append(((table, r, str(col)), float(k)))
        rels.append(Relation(tuple(refs), const, tol, "declared"))
    specs = [
        TableSpec(t.name, t.frame, t.count_columns, {k: dict(p) for k, p in t.derived}, dict(t.depends))
        for t in tables.values()
    ]
    # every headline n (a count of people or observations) is audited with the tables: a total published
    # in results.json can narrow hidden cells as a total table can (it has no public margins of its own)
    with_n = [r["name"] for r in results.values() if r["n"] is not None]
    if with_n:
        frame = pd.DataFrame({"n": [results[k]["n"] for k in with_n]}, dtype="float64")
        specs.append(TableSpec(RESULTS_TABLE, frame, ("n",), margins=False))
    masks, audited = protect(specs, rels, threshold=threshold, totals=totals)
    n_suppressed = 0
    if with_n:
        for k, hide in zip(with_n, masks[RESULTS_TABLE]["n"].to_numpy(dtype=bool)):
            if hide:
                results[k]["n"] = MARKER
        n_suppressed = int(masks[RESULTS_TABLE]["n"].sum())
    numeric: dict[str, pd.DataFrame] = {}
    out = []
    for kind, item in items:
        if kind == "table":
            m = masks[item.name]
            numeric[item.name] = item.frame.mask(m.reindex(columns=item.frame.columns, fill_value=False).to_numpy())
            shown = apply_mask(item.frame, m, item.count_columns)
            item = replace(item, frame=shown, n_suppressed=int(m.to_numpy().sum()), published=True)
        out.append((kind, item))
    for i, (kind, item) in enumerate(out):
        if kind == "figure" and isinstance(item, PendingFigure):
            if item.data not in numeric:
                raise SpecificationError(f"figure {item.name!r} draws from table {item.data!r}, which was not added.")
            out[i] = ("figure", render_figure(item.name, item.draw(numeric[item.data].copy()), item.caption))
    return Published(out, audited, n_suppressed, bool(with_n))
