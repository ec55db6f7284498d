"""Disclosure audit: can a hidden count be recovered from everything a report publishes?

The attacker is assumed to know

* every published cell of every table (hidden cells read as unknown),
* every linear relation among cells that the report declares or implies: margins (row and column
  totals of a table's count columns), subtotal and total tables (a cell of one table is the sum of
  cells of another), derived columns (``averted = counterfactual - observed``, possibly rounded),
  and the data behind each figure (a figure of counts is drawn from a published table);
* that a hidden count is a non-negative number (derived cells may be any real number).

For each hidden count cell the auditor computes, by linear programming
(:func:`scipy.optimize.linprog`, HiGHS), the smallest and largest values consistent with all of
that: the cell's *feasibility interval* ``[low, high]`` (rounded inward to integers, since counts
are integers; for two-way tables with margins the constraint matrix is totally unimodular and the
LP bounds are the exact integer bounds, in general they are outer bounds of the integer ones).

**Protection rule.** With threshold ``T`` (default 11) a hidden count cell is *exposed* when

1. it is pinned: ``high - low < 1`` (its value is known), or
2. it is bounded below the threshold: ``high < T``. The attacker would learn that the cell is a
   count from 0 to ``T-1``; since zeros are not suppressed, that is a small count disclosed (this
   includes every interval lying inside ``[1, T-1]``).

A cell passes only if the published set is consistent with it being ``>= T`` and it is not known
exactly. The rule needs no true values, so a reader can check it from the written files
(:func:`audit_folder`). Inside :class:`~decrimkit.reporting.Report`, where the true values are
known, a hidden cell pinned at 0 or at ``>= T`` is not a disclosure of a small count: it is shown
instead (the published set already determines it).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import linprog

__all__ = ["CellRef", "Relation", "CellBound", "audit", "audit_folder", "exposed"]

CellRef = tuple[str, int, str]  # (table name, row position, column)


@dataclass(frozen=True)
class Relation:
    """``sum(coef * cell for cell, coef in terms) = constant`` up to ``+- tolerance``.

    ``terms`` are ``((table, row, column), coefficient)`` pairs; ``row`` is the 0-based position of
    the row in the published table. A ``tolerance`` of 0.5 states that one term is rounded to an
    integer (e.g. a rounded derived column).
    """

    terms: tuple[tuple[CellRef, float], ...]
    constant: float = 0.0
    tolerance: float = 0.0
    label: str = ""

    def to_json(self) -> dict:
        return {
            "terms": [[t, int(r), c, float(k)] for (t, r, c), k in self.terms],
            "constant": float(self.constant),
            "tolerance": float(self.tolerance),
            "label": self.label,
        }

    @classmethod
    def from_json(cls, d: Mapping) -> Relation:
        terms = tuple(((str(t), int(r), str(c)), float(k)) for t, r, c, k in d["terms"])
        return cls(terms, float(d.get("constant", 0.0)), float(d.get("tolerance", 0.0)), str(d.get("label", "")))


@dataclass(frozen=True)
class CellBound:
    """The feasibility interval of one hidden count cell and whether it is exposed."""

    cell: CellRef
    low: float
    high: float
    value: float | None = None  # true value, when known
    reasons: tuple[str, ...] = field(default=())

    @property
    def exposed(self) -> bool:
        return bool(self.reasons)


def _integer_bounds(lo: float, hi: float) -> tuple[float, float]:
    lo_i = math.ceil(lo - 1e-6) if np.isfinite(lo) else -math.inf
    hi_i = math.floor(hi + 1e-6) if np.isfinite(hi) else math.inf
    return float(lo_i), float(hi_i)


def audit(
    published: Mapping[str, pd.DataFrame],
    hidden: Mapping[str, pd.DataFrame],
    count_cells: Mapping[str, Sequence[str]],
    relations: Iterable[Relation],
    threshold: int = 11,
    truth: Mapping[str, pd.DataFrame] | None = None,
) -> list[CellBound]:
    """Feasibility interval of every hidden count cell, with the protection rule applied.

    Parameters
    ----------
    published : mapping name -> DataFrame
        Published values as numbers; hidden cells may hold anything (they are not read).
    hidden : mapping name -> boolean DataFrame
        ``True`` where a cell is hidden (same row positions as ``published``; any columns).
    count_cells : mapping name -> column names
        The count columns of each table: their hidden cells are non-negative and are audited.
        Other hidden cells (derived columns) are free real numbers.
    relations : iterable of Relation
        Linear relations the attacker knows.
    threshold : int
        ``T``: counts 1..T-1 must not be recoverable.
    truth : mapping name -> DataFrame, optional
        True values (inside :class:`~decrimkit.reporting.Report`), recorded in each bound's ``value``.
    """
    var: dict[CellRef, int] = {}
    cells: list[CellRef] = []

    def is_hidden(ref: CellRef) -> bool:
        t, r, c = ref
        h = hidden.get(t)
        return h is not None and c in h.columns and bool(h[c].iloc[r])

    def value(ref: CellRef) -> float:
        t, r, c = ref
        v = pd.to_numeric(pd.Series([published[t][c].iloc[r]]), errors="coerce").iloc[0]
        return float(v) if pd.notna(v) else math.nan

    def index(ref: CellRef) -> int:
        if ref not in var:
            var[ref] = len(cells)
            cells.append(ref)
        return var[ref]

    rows: list[tuple[dict[int, float], float, float]] = []
    for rel in relations:
        coefs: dict[int, float] = {}
        rhs = float(rel.constant)
        for ref, k in rel.terms:
            v = math.nan if is_hidden(ref) else value(ref)
            if math.isfinite(v):
                rhs -= k * v
            else:  # hidden, or a published cell that is missing: unknown to the attacker
                j = index(ref)
                coefs[j] = coefs.get(j, 0.0) + k
        coefs = {j: k for j, k in coefs.items() if k != 0.0}
        if coefs:
            rows.append((coefs, rhs, float(rel.tolerance)))

    # every hidden count cell is reported, also those in no relation (unbounded above)
    for name, h in hidden.items():
        for c in count_cells.get(name, ()):
            if c in h.columns:
                for r in np.flatnonzero(h[c].to_numpy(dtype=bool)):
                    index((name, int(r), c))

    n = len(cells)
    nonneg = [c in set(count_cells.get(t, ())) and is_hidden((t, r, c)) for t, r, c in cells]
    bounds_lp = [(0.0, None) if nn else (None, None) for nn in nonneg]

    # connected components of the relation graph: each LP only sees the variables it involves
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for coefs, _, _ in rows:
        js = list(coefs)
        for j in js[1:]:
            parent[find(j)] = find(js[0])
    comps: dict[int, list[int]] = {}
    for j in range(n):
        comps.setdefault(find(j), []).append(j)
    comp_rows: dict[int, list[int]] = {}
    for i, (coefs, _, _) in enumerate(rows):
        comp_rows.setdefault(find(next(iter(coefs))), []).append(i)

    low = np.full(n, -math.inf)
    high = np.full(n, math.inf)
    for j in range(n):
        if nonneg[j]:
            low[j] = 0.0
    for root, members in comps.items():
        rs = comp_rows.get(root, [])
        if not rs:
            continue
        pos = {j: i for i, j in enumerate(members)}
        m = len(members)
        a_eq, b_eq, a_ub, b_ub = [], [], [], []
        for i in rs:
            coefs, rhs, tol = rows[i]
            line = np.zeros(m)
            for j, k in coefs.items():
                line[pos[j]] = k
            if tol > 0:
                a_ub += [line, -line]
                b_ub += [rhs + tol, -(rhs - tol)]
            else:
                a_eq.append(line)
                b_eq.append(rhs)
        kw = {
            "A_eq": np.array(a_eq) if a_eq else None,
            "b_eq": np.array(b_eq) if b_eq else None,
            "A_ub": np.array(a_ub) if a_ub else None,
            "b_ub": np.array(b_ub) if b_ub else None,
            "bounds": [bounds_lp[j] for j in members],
            "method": "highs",
        }
        for jj, j in enumerate(members):
            if not (cells[j][2] in set(count_cells.get(cells[j][0], ())) and is_hidden(cells[j])):
                continue
            cvec = np.zeros(m)
            cvec[jj] = 1.0
            lo = linprog(cvec, **kw)
            hi = linprog(-cvec, **kw)
            if lo.status == 2 or hi.status == 2:  # infeasible: the published numbers contradict a relation
                raise ValueError(f"the declared relations are inconsistent with the published values around {cells[j]}")
            low[j] = lo.fun if lo.status == 0 else -math.inf
            high[j] = -hi.fun if hi.status == 0 else math.inf

    out = []
    t_ = int(threshold)
    for j, ref in enumerate(cells):
        t, r, c = ref
        if c not in set(count_cells.get(t, ())) or not is_hidden(ref):
            continue
        lo, hi = _integer_bounds(max(low[j], 0.0), high[j])
        true = None
        if truth is not None and t in truth:
            tv = pd.to_numeric(pd.Series([truth[t][c].iloc[r]]), errors="coerce").iloc[0]
            true = float(tv) if pd.notna(tv) else None
        reasons = []
        if hi - lo < 1:
            reasons.append("pinned")
        if hi < t_:
            reasons.append(f"bounded below {t_}")
        out.append(CellBound(ref, lo, hi, true, tuple(reasons)))
    return out


def exposed(bounds: Iterable[CellBound]) -> list[CellBound]:
    """The cells of ``bounds`` that break the protection rule."""
    return [b for b in bounds if b.exposed]


def published_text(folder: str | Path, table: Mapping[str, Any]) -> pd.DataFrame:
    """A table recorded in provenance.json as a reader sees it (text cells): ``tables/<name>.csv``, or for
    the entry with ``"file": "results.json"`` the column ``n`` of the results that have one, in order."""
    folder = Path(folder)
    if table.get("file") == "results.json":
        doc = json.loads((folder / "results.json").read_text(encoding="utf-8"))
        ns = [r["n"] for r in doc.get("results", []) if r.get("n") is not None]
        return pd.DataFrame({"n": [str(v) for v in ns]}, dtype=object)
    return pd.read_csv(folder / "tables" / f"{table['name']}.csv", dtype=str, keep_default_na=False)


def audit_folder(folder: str | Path) -> list[CellBound]:
    """Audit a written report folder from its files alone (what a reader has).

    Reads every table recorded in ``provenance.json`` (``tables/<name>.csv``; cells reading the
    marker are hidden) and the relations recorded there (declared cross-table sums and derived
    columns), and returns the interval of every hidden count cell under rules 1 and 2 (the true
    values are not in the folder, so rule 3 cannot be checked here).
    """
    folder = Path(folder)
    prov = json.loads((folder / "provenance.json").read_text(encoding="utf-8"))
    published, hidden, counts = {}, {}, {}
    threshold = 11
    for t in prov.get("tables", []):
        text = published_text(folder, t)
        mark = str(t.get("marker", "(S)"))
        hidden[t["name"]] = text == mark
        published[t["name"]] = text.apply(
            lambda c, m=mark: pd.to_numeric(c.replace({"": None, m: None}), errors="coerce")
        )
        counts[t["name"]] = list(t.get("count_columns", []))
        threshold = int(t.get("threshold", threshold))
    relations = [Relation.from_json(r) for r in prov.get("relations", [])]
    return audit(published, hidden, counts, relations, threshold=threshold)
