"""Aggregation of group-time ATTs into summary effects from stored influence functions (R ``did::aggte``).

Pure NumPy on small arrays: ``att`` (K,) group-time effects, ``inf`` (m, K) their influence
functions, the group and period position of each cell, and a (m, G + 1) ``basis``: per row, the
sampling weight times the indicator of each of the G cohorts, then a one (:func:`cohort_basis`).
Nothing is refitted. Weights that are estimated (cohort shares) contribute their own influence
function (``_weights_if``, R's ``wif``), exactly as in Callaway and Sant'Anna (2021, sec. 4).

Every aggregated influence function is linear in the columns of ``inf`` and ``basis``, so the same
code aggregates multiplier-bootstrap replicates: with ``inf`` and ``basis`` replaced by their
(n_boot, .) draws (rows = replicates instead of units) it returns the draws of the aggregated
influence functions, without touching the n units again. :func:`bootstrap_cells` makes those draws
once per fit (one pass of the multipliers over the units, :mod:`decrimkit.inference.bootstrap`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from decrimkit.inference.bootstrap import multiplier_draws
from decrimkit.results import frozen_array

if TYPE_CHECKING:
    from ._cs_design import CellDesign

__all__ = ["Aggregated", "BootDraws", "aggregate_cells", "analytic_se", "bootstrap_cells", "cohort_basis", "cohort_shares"]


class Aggregated(NamedTuple):
    """labels: k component labels (positions: event time, cohort or period); estimate, (k,);
    inf: (n, k) influence functions; overall: () estimate; overall_inf: (n,)."""

    labels: np.ndarray
    estimate: np.ndarray
    inf: np.ndarray
    overall: float
    overall_inf: np.ndarray


def analytic_se(inf: np.ndarray) -> np.ndarray:
    """``sqrt(mean(psi**2) / n)`` per column (R ``did``'s ``getSE`` without bootstrap)."""
    inf = np.asarray(inf, dtype="float64")
    n = inf.shape[0]
    return np.sqrt(np.mean(inf**2, axis=0) / n)


def cohort_basis(g_unit: np.ndarray, w_unit: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """(n, G + 1): ``w_unit * 1[g_unit == groups[j]]`` for each cohort position, then a column of ones."""
    out = np.empty((g_unit.shape[0], groups.shape[0] + 1))
    out[:, :-1] = (g_unit[:, None] == groups[None, :]) * w_unit[:, None]
    out[:, -1] = 1.0
    return out


def cohort_shares(basis: np.ndarray) -> np.ndarray:
    """(G,) weighted cohort shares ``mean(w_unit * 1[g_unit == g])`` from a unit-level :func:`cohort_basis`."""
    return np.array([np.mean(np.ascontiguousarray(basis[:, j])) for j in range(basis.shape[1] - 1)])


def _weights_if(cols: np.ndarray, pg: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """(m, len(cols)) influence function of the weights pg / sum(pg) (R ``wif``); ``cols`` index the basis."""
    ind = basis[:, cols] - basis[:, -1:] * pg[None, :]
    total = pg.sum()
    if1 = ind / total
    if2 = ind.sum(axis=1, keepdims=True) * (pg / total**2)[None, :]
    return if1 - if2


def _combine(
    att: np.ndarray, inf: np.ndarray, keep: np.ndarray, weights: np.ndarray, wif: np.ndarray | None
) -> tuple[float, np.ndarray]:
    est = float(np.sum(att[keep] * weights))
    psi = inf[:, keep] @ weights
    if wif is not None:
        psi = psi + wif @ att[keep]
    return est, psi


def aggregate_cells(
    att: np.ndarray,
    inf: np.ndarray,
    gpos: np.ndarray,
    tpos: np.ndarray,
    basis: np.ndarray,
    shares: np.ndarray,
    *,
    kind: str,
    last_period: int,
    min_e: float = -np.inf,
    max_e: float = np.inf,
    balance_e: int | None = None,
) -> Aggregated:
    """Aggregate ATT(g,t) cells as R ``did::aggte`` does (``type = kind``); positions throughout.

    ``basis`` (m, G + 1) has one column per cohort in ``np.unique(gpos)`` (:func:`cohort_basis`) and
    ``shares`` (G,) their weighted shares in the sample (:func:`cohort_shares` of the unit-level basis).
    ``last_period`` is the position of the last period; event time is ``t - g`` in periods.
    Raises ValueError when nothing is left to aggregate (the caller turns it into a named error).
    """
    groups = np.unique(gpos)
    pg_group = np.asarray(shares, dtype="float64")
    gcol = np.searchsorted(groups, gpos)
    pg = pg_group[gcol]
    post = (gpos <= tpos) & (tpos <= gpos + max_e)
    if kind == "simple":
        keep = np.flatnonzero(post)
        if keep.size == 0:
            raise ValueError("no post-treatment cells to aggregate")
        est, psi = _combine(att, inf, keep, pg[keep] / pg[keep].sum(), _weights_if(gcol[keep], pg[keep], basis))
        return Aggregated(np.array([]), np.array([]), np.zeros((inf.shape[0], 0)), est, psi)
    if kind == "group":
        ests, psis = [], []
        for g in groups:
            keep = np.flatnonzero(post & (gpos == g))
            if keep.size == 0:
                raise ValueError(f"cohort at position {g} has no post-treatment cells")
            e, p = _combine(att, inf, keep, pg[keep] / pg[keep].sum(), None)
            ests.append(e)
            psis.append(p)
        est_g, inf_g = np.array(ests), np.column_stack(psis)
        allg = np.arange(len(groups))
        wif = _weights_if(allg, pg_group, basis)
        est, psi = _combine(est_g, inf_g, allg, pg_group / pg_group.sum(), wif)
        return Aggregated(groups, est_g, inf_g, est, psi)
    if kind == "dynamic":
        event = tpos - gpos
        include = np.ones_like(att, dtype=bool)
        eseq = np.unique(event)
        if balance_e is not None:
            include = (last_period - gpos) >= balance_e
            eseq = np.unique(event[include])
            eseq = eseq[(eseq <= balance_e) & (eseq >= balance_e - last_period)]
        eseq = eseq[(eseq >= min_e) & (eseq <= max_e)]
        if eseq.size == 0:
            raise ValueError("no event times left")
        ests, psis = [], []
        for e in eseq:
            keep = np.flatnonzero((event == e) & include)
            wts = pg[keep] / pg[keep].sum()
            est_e, psi_e = _combine(att, inf, keep, wts, _weights_if(gcol[keep], pg[keep], basis))
            ests.append(est_e)
            psis.append(psi_e)
        est_e, inf_e = np.array(ests), np.column_stack(psis)
        epos = np.flatnonzero(eseq >= 0)
        if epos.size == 0:
            raise ValueError("no event times at or after treatment")
        est, psi = _combine(est_e, inf_e, epos, np.full(epos.size, 1 / epos.size), None)
        return Aggregated(eseq, est_e, inf_e, est, psi)
    if kind == "calendar":
        periods = np.unique(tpos)
        periods = periods[periods >= gpos.min()]
        ests, psis, labels = [], [], []
        for t1 in periods:
            keep = np.flatnonzero((tpos == t1) & post)
            if keep.size == 0:
                continue
            wts = pg[keep] / pg[keep].sum()
            e, p = _combine(att, inf, keep, wts, _weights_if(gcol[keep], pg[keep], basis))
            ests.append(e)
            psis.append(p)
            labels.append(t1)
        if not ests:
            raise ValueError("no calendar periods with treated cohorts")
        est_t, inf_t = np.array(ests), np.column_stack(psis)
        allt = np.arange(len(ests))
        est, psi = _combine(est_t, inf_t, allt, np.full(len(ests), 1 / len(ests)), None)
        return Aggregated(np.array(labels), est_t, inf_t, est, psi)
    raise ValueError(f"unknown aggregation {kind!r}")


class BootDraws(NamedTuple):
    """Multiplier-bootstrap replicates of one fit, shared by every aggregation (one set of multipliers).

    cells: (n_boot, K) draws of the ATT(g,t) influence functions; basis: (n_boot, G + 1) draws of the
    cohort basis (:func:`cohort_basis`) that the influence functions of estimated aggregation weights
    are built from. Aggregated draws are linear in both (pass them to :func:`aggregate_cells`).
    """

    cells: np.ndarray
    basis: np.ndarray


def bootstrap_cells(inf: np.ndarray, design: CellDesign, key: Any, n_boot: int, dist: str) -> BootDraws:
    """One multiplier bootstrap of the K cell influence functions and the cohort basis together.

    Without clusters the rows are ordered by cohort first, so that each tile of units touches only the
    cells of its cohort (the influence function of cell (g, t) is zero outside cohort g and its
    comparison units); the multiplier of a unit is then fixed by its rank in that order.
    """
    basis = cohort_basis(design.g_unit, design.w_unit, np.unique(design.gpos))
    if design.cluster is None:  # gathered straight into cohort order (one copy of the n x K matrix)
        order = np.argsort(design.g_unit, kind="stable")
        z = np.empty((inf.shape[0], inf.shape[1] + basis.shape[1]))
        z[:, : inf.shape[1]] = inf[order]
        z[:, inf.shape[1] :] = basis[order]
    else:
        z = np.concatenate([inf, basis], axis=1)
        g = int(design.cluster.max()) + 1
        sums = np.zeros((g, z.shape[1]))
        np.add.at(sums, design.cluster, z)
        z = sums / np.bincount(design.cluster, minlength=g)[:, None]
    draws = multiplier_draws(key, z, n_boot=n_boot, dist=dist)
    k = inf.shape[1]
    return BootDraws(cells=frozen_array(draws[:, :k]), basis=frozen_array(draws[:, k:]))
