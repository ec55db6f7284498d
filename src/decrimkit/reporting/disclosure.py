"""Suppression over a report's whole output set, audited across tables.

:class:`~decrimkit.reporting.Report` hands every table it will publish (true values, declared count
columns, derived columns) and every declared relation among them to :func:`protect`, which

1. hides primary cells (counts 1..T-1) and applies the per-table complementary heuristic of
   :func:`~decrimkit.reporting.suppression.suppression_mask`;
2. collects the linear relations an attacker knows from the report: derived columns (``derived=``
   of ``add_table``, e.g. ``averted = counterfactual - observed``) and the cross-table relations the
   writer declared (``Report.add_sum`` / ``Report.add_relation``: totals and subtotal tables,
   the same count shown twice). Margins that the report does not publish are protected by the
   per-table heuristic of step 1 (no row or column is left with a single hidden cell) but are not
   audited as known: assuming every unpublished margin known would also reveal every small
   margin (grand total minus the others). A margin published anywhere in the report is a table
   and must be declared with ``add_sum``;
3. hides every cell of a non-linear function of a hidden cell (``depends=`` of ``add_table``:
   shares, rates, intervals computed from counts), which the linear audit cannot model;
4. audits every hidden count cell by linear programming (:mod:`decrimkit.reporting.audit`) and,
   while a cell is exposed, hides one more cell from a relation that exposes it (the smallest
   visible non-zero count or derived cell of that relation) and audits again.

Hiding only adds cells, so the loop ends; if an exposed cell has no visible cell left to hide in
its relations, :class:`~decrimkit.errors.DisclosureError` is raised and nothing is written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from decrimkit.errors import DisclosureError
from decrimkit.reporting.audit import CellRef, Relation, audit, exposed
from decrimkit.reporting.suppression import Totals, suppression_mask

__all__ = ["TableSpec", "protect", "derived_relations"]


@dataclass(frozen=True)
class TableSpec:
    """A table to publish: its true values and what its columns are."""

    name: str
    frame: pd.DataFrame  # true values, row positions as published
    count_columns: tuple[str, ...] = ()
    derived: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # column -> {column: coef}
    depends: Mapping[str, Sequence[str]] = field(default_factory=dict)  # non-linear: column -> input columns

    @property
    def hideable(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([*self.count_columns, *self.derived, *self.depends]))


def _num(df: pd.DataFrame, col: str) -> np.ndarray:
    return pd.to_numeric(df[col], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def derived_relations(spec: TableSpec) -> list[Relation]:
    """``derived - sum(coef * input) = 0`` per row, within 0.5 (a derived column may be rounded)."""
    out = []
    for col, parts in spec.derived.items():
        for r in range(len(spec.frame)):
            terms = [((spec.name, r, col), 1.0)] + [((spec.name, r, c), -float(k)) for c, k in parts.items()]
            out.append(Relation(tuple(terms), 0.0, 0.5, f"{spec.name}.{col} row {r}"))
    return out


def _hidden_frames(specs: Sequence[TableSpec], masks: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    return {s.name: masks[s.name] for s in specs}


def protect(
    specs: Sequence[TableSpec],
    relations: Sequence[Relation] = (),
    threshold: int = 11,
    totals: Totals = "both",
    max_rounds: int = 10_000,
) -> tuple[dict[str, pd.DataFrame], list[Relation]]:
    """Masks (name -> boolean frame over each table's hideable columns) that pass the audit.

    Returns the masks and the full list of relations audited (declared, derived and margins).

    Raises
    ------
    DisclosureError
        If a hidden count stays recoverable and no visible cell is left to hide.
    """
    by_name = {s.name: s for s in specs}
    masks: dict[str, pd.DataFrame] = {}
    for s in specs:
        m = pd.DataFrame(False, index=pd.RangeIndex(len(s.frame)), columns=list(s.hideable))
        if s.count_columns:
            cm = suppression_mask(s.frame, s.count_columns, threshold=threshold, totals=totals)
            for c in s.count_columns:
                m[c] = cm[c].to_numpy()
        masks[s.name] = m
    rels = list(relations)
    for s in specs:
        rels += derived_relations(s)
    published = {s.name: s.frame for s in specs}
    truth = {s.name: s.frame for s in specs}
    counts = {s.name: s.count_columns for s in specs}
    # a derived cell whose inputs include a hidden count starts hidden (it would pin it otherwise)
    for s in specs:
        for col, parts in s.derived.items():
            for c in parts:
                if c in masks[s.name].columns:
                    masks[s.name][col] |= masks[s.name][c].to_numpy()
    known: set[CellRef] = set()
    for _ in range(max_rounds):
        bounds = audit(published, masks, counts, rels, threshold=threshold, truth=truth)
        # a hidden cell pinned at 0 or at >= T discloses no small count: it does not drive more hiding,
        # and at the end it is shown, since the published set already determines it
        harmless = {
            b.cell for b in bounds if b.reasons == ("pinned",) and b.value is not None and not 1 <= b.value < threshold
        }
        bad = [b for b in exposed(bounds) if b.cell not in harmless]
        if not bad:
            for t, r, c in harmless:
                masks[t].loc[r, c] = False
            for s in specs:  # a non-linear function of a hidden cell (a share, an interval) is hidden with it
                for col, inputs in s.depends.items():
                    for c in inputs:
                        if c in masks[s.name].columns:
                            masks[s.name][col] |= masks[s.name][c].to_numpy()
            return masks, rels
        cell = bad[0].cell
        pick = _complement_for(cell, rels, by_name, masks, known)
        if pick is None:
            t, r, c = cell
            raise DisclosureError(
                f"table {t!r}, row {r}, column {c!r}: a hidden count stays recoverable from the published tables "
                f"({', '.join(bad[0].reasons)}; interval [{bad[0].low:g}, {bad[0].high:g}]) and no visible cell "
                f"of its relations is left to hide. Publish fewer totals or coarser tables."
            )
        t, r, c = pick
        masks[t].loc[r, c] = True
    raise DisclosureError("suppression did not settle; publish fewer related tables")  # pragma: no cover


def _complement_for(
    cell: CellRef,
    rels: Sequence[Relation],
    specs: Mapping[str, TableSpec],
    masks: Mapping[str, pd.DataFrame],
    known: set[CellRef],
) -> CellRef | None:
    """The visible hideable cell, in a relation with ``cell``, with the smallest non-zero |value|.

    When the relations holding ``cell`` have no visible hideable cell left, the relations of the
    hidden cells linked to it are searched next (breadth first).
    """

    def hidden(ref: CellRef) -> bool:
        t, r, c = ref
        return t in masks and c in masks[t].columns and bool(masks[t].loc[r, c])

    seen = {cell}
    frontier = {cell}
    while frontier:
        group = [rel for rel in rels if any(ref in frontier for ref, _ in rel.terms)]
        pick = _smallest_visible(group, specs, masks, known)
        if pick is not None:
            return pick
        nxt = {ref for rel in group for ref, _ in rel.terms if hidden(ref)} - seen
        seen |= nxt
        frontier = nxt
    return None


def _smallest_visible(
    rels: Sequence[Relation], specs: Mapping[str, TableSpec], masks: Mapping[str, pd.DataFrame], known: set[CellRef]
) -> CellRef | None:
    best: tuple[float, CellRef] | None = None
    for rel in rels:
        for ref, _ in rel.terms:
            t, r, c = ref
            if t not in masks or c not in masks[t].columns or bool(masks[t].loc[r, c]) or ref in known:
                continue
            v = abs(_num(specs[t].frame.iloc[[r]], c)[0])
            if not np.isfinite(v):
                continue
            key = (v if v > 0 else np.inf, ref)
            if best is None or key < best:
                best = key
    return None if best is None else best[1]
