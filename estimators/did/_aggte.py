"""Aggregation of group-time ATTs into summary effects from stored influence functions (R ``did::aggte``).

Pure NumPy on small arrays: ``att`` (K,) group-time effects, ``inf`` (n, K) their per-unit influence
functions, the group and period position of each cell, each unit's cohort position and sampling
weight. Nothing is refitted. Weights that are estimated (cohort shares) contribute their own
influence function (``_weights_if``, R's ``wif``), exactly as in Callaway and Sant'Anna (2021, sec. 4).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Aggregated", "aggregate_cells", "analytic_se"]


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


def _weights_if(
    keep: np.ndarray, pg: np.ndarray, w_unit: np.ndarray, g_unit: np.ndarray, group: np.ndarray
) -> np.ndarray:
    """(n, len(keep)) influence function of the weights pg[keep] / sum(pg[keep]) (R ``wif``)."""
    ind = (g_unit[:, None] == group[keep][None, :]) * w_unit[:, None] - pg[keep][None, :]
    total = pg[keep].sum()
    if1 = ind / total
    if2 = ind.sum(axis=1, keepdims=True) * (pg[keep] / total**2)[None, :]
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
    g_unit: np.ndarray,
    w_unit: np.ndarray,
    *,
    kind: str,
    last_period: int,
    min_e: float = -np.inf,
    max_e: float = np.inf,
    balance_e: int | None = None,
) -> Aggregated:
    """Aggregate ATT(g,t) cells as R ``did::aggte`` does (``type = kind``); positions throughout.

    ``last_period`` is the position of the last period; event time is ``t - g`` in periods.
    Raises ValueError when nothing is left to aggregate (the caller turns it into a named error).
    """
    groups = np.unique(gpos)
    pg_group = np.array([np.mean(w_unit * (g_unit == g)) for g in groups])
    pg = pg_group[np.searchsorted(groups, gpos)]
    post = (gpos <= tpos) & (tpos <= gpos + max_e)
    if kind == "simple":
        keep = np.flatnonzero(post)
        if keep.size == 0:
            raise ValueError("no post-treatment cells to aggregate")
        est, psi = _combine(att, inf, keep, pg[keep] / pg[keep].sum(), _weights_if(keep, pg, w_unit, g_unit, gpos))
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
        wif = _weights_if(allg, pg_group, w_unit, g_unit, groups)
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
            est_e, psi_e = _combine(att, inf, keep, wts, _weights_if(keep, pg, w_unit, g_unit, gpos))
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
            e, p = _combine(att, inf, keep, wts, _weights_if(keep, pg, w_unit, g_unit, gpos))
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
