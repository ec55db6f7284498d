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
   and must be declared with ``add_sum``. As a safety net, relations the writer did not declare
   are also looked for in the true values (:func:`infer_sums`: column totals, row totals and
   group subtotals of one table published in another; :func:`infer_derived`: a column equal to
   ``+-count`` or ``X +- count`` of its row) and audited as if declared;
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
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from decrimkit.errors import DisclosureError
from decrimkit.reporting.audit import CellRef, Relation, audit, exposed
from decrimkit.reporting.suppression import Totals, suppression_mask

__all__ = ["TableSpec", "protect", "derived_relations", "infer_derived", "infer_sums"]


@dataclass(frozen=True)
class TableSpec:
    """A table to publish: its true values and what its columns are."""

    name: str
    frame: pd.DataFrame  # true values, row positions as published
    count_columns: tuple[str, ...] = ()
    derived: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # column -> {column: coef}
    depends: Mapping[str, Sequence[str]] = field(default_factory=dict)  # non-linear: column -> input columns
    margins: bool = True  # False: the table's row and column totals are not public (e.g. results.json's n)

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


def _close(a: np.ndarray, b: np.ndarray, tol: float = 0.5) -> bool:
    ok = np.isfinite(a) & np.isfinite(b)
    return bool(ok.any() and (ok == (np.isfinite(a) | np.isfinite(b))).all() and (np.abs(a - b)[ok] <= tol).all())


def infer_derived(spec: TableSpec) -> dict[str, dict[str, float]]:
    """Undeclared columns that are ``+-count``, ``X +- count`` of the same row (within 0.5): a safety net.

    A column computed from a count (``averted = counterfactual - observed``) that the writer did not
    declare would pin a hidden count; such columns are found from the true values and treated as
    declared derived columns.
    """
    counts = list(spec.count_columns)
    if not counts or len(spec.frame) == 0:
        return {}
    inputs = {c for parts in spec.derived.values() for c in parts}
    skip = set(counts) | set(spec.derived) | set(spec.depends) | inputs
    numeric = [
        str(c)
        for c in spec.frame.columns
        if pd.api.types.is_numeric_dtype(spec.frame[c].dtype) and not pd.api.types.is_bool_dtype(spec.frame[c].dtype)
    ]
    out: dict[str, dict[str, float]] = {}
    for d in reversed(numeric):  # a derived column usually follows its inputs
        if d in skip:
            continue
        dv = _num(spec.frame, d)
        found = None
        for c in counts:
            cv = _num(spec.frame, c)
            for sign in (1.0, -1.0):
                if _close(dv, sign * cv):
                    found = {c: sign}
                    break
                for x in numeric:
                    if x in (d, c) or x in set(counts) or x in set(spec.derived) or x in out:
                        continue
                    xv = _num(spec.frame, x)
                    if _close(dv, xv + sign * cv):
                        found = {x: 1.0, c: sign}
                        break
                if found:
                    break
            if found:
                break
        if found:
            out[d] = found
            skip.update(found)  # an input is not itself derived from its output
    return out


def infer_sums(specs: Sequence[TableSpec]) -> list[Relation]:
    """Undeclared totals between tables, found from the true values: a safety net for ``add_sum``.

    For every pair of tables (A, B) and count columns ``ca`` of A and ``cb`` of B it adds, when the
    true values satisfy them exactly (and the total is non-zero):

    * column totals: a cell of B equals the sum of column ``ca`` of A (A with two or more rows);
    * row totals: a cell of B equals the sum of a row of A's count columns (two or more of them);
    * group subtotals: B has a key column K (unique in B) that A also has, and each B cell equals
      the sum of A's ``ca`` over the rows of A with the same K (A with more rows than B).
    """
    out: list[Relation] = []
    for a in specs:
        ca_list = list(a.count_columns)
        if not ca_list:
            continue
        col_sums = {c: _num(a.frame, c) for c in ca_list}
        row_vals = np.column_stack([col_sums[c] for c in ca_list]) if len(ca_list) > 1 else None
        for b in specs:
            for cb in b.count_columns:
                bv = _num(b.frame, cb)
                for r, v in enumerate(bv):
                    if not np.isfinite(v) or v == 0:
                        continue
                    for ca in ca_list:
                        x = col_sums[ca]
                        if a.name == b.name and ca == cb or len(x) < 2 or not np.isfinite(x).all():
                            continue
                        if x.sum() == v:
                            terms = [((b.name, r, cb), 1.0)] + [((a.name, i, ca), -1.0) for i in range(len(x))]
                            out.append(
                                Relation(tuple(terms), 0.0, 0.0, f"inferred: {b.name}.{cb}[{r}] = sum {a.name}.{ca}")
                            )
                    if row_vals is not None and not (a.name == b.name and cb in ca_list):
                        for i in np.flatnonzero(np.isfinite(row_vals).all(axis=1) & (row_vals.sum(axis=1) == v)):
                            terms = [((b.name, r, cb), 1.0)] + [((a.name, int(i), c), -1.0) for c in ca_list]
                            out.append(
                                Relation(tuple(terms), 0.0, 0.0, f"inferred: {b.name}.{cb}[{r}] = row {i} of {a.name}")
                            )
            if a.name == b.name or len(a.frame) <= len(b.frame):
                continue
            keys = [
                k
                for k in b.frame.columns
                if k in a.frame.columns
                and k not in set(b.hideable) | set(a.hideable)
                and b.frame[k].notna().all()
                and b.frame[k].is_unique
            ]
            for k in keys:
                groups = {key: np.flatnonzero((a.frame[k] == key).to_numpy()) for key in b.frame[k]}
                if sum(len(g) for g in groups.values()) == 0:
                    continue
                for ca in ca_list:
                    x = col_sums[ca]
                    for cb in b.count_columns:
                        bv = _num(b.frame, cb)
                        sums = np.array([x[g].sum() if len(g) else np.nan for g in groups.values()])
                        if _close(sums, bv, 0.0) and np.nanmax(np.abs(bv)) > 0:
                            for r, g in enumerate(groups.values()):
                                terms = [((b.name, r, cb), 1.0)] + [((a.name, int(i), ca), -1.0) for i in g]
                                out.append(
                                    Relation(
                                        tuple(terms),
                                        0.0,
                                        0.0,
                                        f"inferred: {b.name}.{cb} subtotal of {a.name}.{ca} by {k}",
                                    )
                                )
    return out


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
    specs = [replace(s, derived={**s.derived, **infer_derived(s)}) for s in specs]
    by_name = {s.name: s for s in specs}
    masks: dict[str, pd.DataFrame] = {}
    for s in specs:
        m = pd.DataFrame(False, index=pd.RangeIndex(len(s.frame)), columns=list(s.hideable))
        if s.count_columns:
            cm = suppression_mask(s.frame, s.count_columns, threshold=threshold, totals=totals if s.margins else "none")
            for c in s.count_columns:
                m[c] = cm[c].to_numpy()
        masks[s.name] = m
    rels = list(relations) + infer_sums(specs)
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
