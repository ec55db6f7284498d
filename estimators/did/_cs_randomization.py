"""Randomization inference for ATT(g,t) without refitting from a panel: every reassignment in one batch.

A reassignment of the adoption dates keeps the multiset of cohorts, so every cell (g, t) of the design
keeps its periods, its base period and its size (cohort g and its comparison units): only which units
sit in it changes. :func:`cell_draws` therefore reuses the observed :class:`~._cs_design.CellDesign`
with the units' cohorts replaced (``g_unit``), gathers each reassignment's cells with
:func:`~._cs_design.compact_cells`, and evaluates a chunk of reassignments in one call of the jitted
cell kernel: the ATT(g,t) of the outcome (``stat``) and of the observed treatment indicator used as
the outcome (``dose``, the same propensity scores: the cell estimators are linear in the outcome given
them). This is what refitting ``att_gt`` on permuted panels computes (tests check it against such
refits), without rebuilding a panel and a design twice per reassignment.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ._aggte import cohort_basis, cohort_shares
from ._cs_design import CellDesign, check_cells, compact_cells, logit_groups

__all__ = ["cell_draws"]

_CHUNK_VALUES = 4_000_000  # cell-by-unit values per kernel call (stat and dose together)


def cell_draws(
    design: CellDesign,
    g_rows: np.ndarray,
    *,
    kernel: Callable[..., Any],
    method_index: int,
    check_fit: Callable[[Any, CellDesign], None],
    covariates: tuple[str, ...],
    method: str,
) -> tuple[np.ndarray, np.ndarray]:
    """(stat, dose), each (P, K + G): the K ATT(g,t) and the G cohort shares under each row of ``g_rows``.

    ``g_rows`` (P, n): cohort positions per unit (inf = never treated), one reassignment per row.
    ``kernel`` is the cell kernel of ``att_gt`` (same arguments), ``check_fit(fit, design)`` turns its
    flags into the named errors ``att_gt`` raises; ``check_cells`` is applied to every reassignment.
    """
    n, k = design.n_units, len(design.gpos)
    groups = np.unique(design.gpos)
    rep, group = logit_groups(design)  # signatures (cohort, comparison rule, covariate period): unchanged
    d_wide = (np.arange(design.y.shape[1])[None, :] >= design.g_unit[:, None]).astype("float64")
    width = compact_cells(design)[0].shape[1]
    batch = int(max(1, min(len(g_rows), _CHUNK_VALUES // (2 * k * width))))
    tiled = design._replace(gpos=np.tile(design.gpos, 2 * batch), tpos=np.tile(design.tpos, 2 * batch),
                            is_base=np.tile(design.is_base, 2 * batch))
    rep_all = np.concatenate([rep + b * k for b in range(batch)])
    group_all = np.tile(np.concatenate([group + b * rep.size for b in range(batch)]), 2)  # dose: same logits
    stat, dose = [], []
    for start in range(0, len(g_rows), batch):
        rows = g_rows[start : start + batch]
        rows = np.vstack([rows, np.repeat(rows[-1:], batch - len(rows), axis=0)])  # one shape: one compilation
        parts, shares = [], []
        for g in rows:
            d_p = design._replace(g_unit=np.asarray(g, dtype="float64"))
            check_cells(d_p, covariates, method)
            idx, live, cells = compact_cells(d_p)
            if idx.shape[1] != width:  # cannot happen: reassignments keep every cell's size
                raise AssertionError("a reassignment changed the size of a cell")
            y_post = np.where(live, d_wide[idx, design.tpos[:, None]], 0.0)
            y_pre = np.where(live, d_wide[idx, design.base[:, None]], 0.0)
            parts.append((cells, (y_post, y_pre, *cells[2:])))
            shares.append(cohort_shares(cohort_basis(d_p.g_unit, d_p.w_unit, groups)))
        stacked = [np.concatenate([p[0][j] for p in parts] + [p[1][j] for p in parts]) for j in range(6)]
        fit = kernel(*stacked, method_index, rep_all, group_all, float(n))
        check_fit(fit, tiled)
        att = np.where(tiled.is_base, 0.0, np.asarray(fit.att)).reshape(2, batch, k)
        keep = len(g_rows[start : start + batch])
        stat.append(np.hstack([att[0, :keep], np.array(shares[:keep])]))
        dose.append(np.hstack([att[1, :keep], np.array(shares[:keep])]))
    return np.vstack(stat), np.vstack(dose)
