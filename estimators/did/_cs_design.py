"""The cells of a Callaway-Sant'Anna design: which units, periods and covariates each ATT(g,t) uses.

Built once, in NumPy, from a validated :class:`~decrimkit.panel.Panel`; every check that can raise
runs here, on concrete data, before the jitted kernel. Positions (0..T-1) are used throughout;
labels are looked up in ``times`` only for messages and results.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from decrimkit.errors import DataError, DesignError, SpecificationError
from decrimkit.panel import Panel

from ._reg_design import require_cluster_sides, require_clusters

__all__ = ["CellDesign", "cell_design", "check_cells", "compact_cells", "logit_groups", "unit_column"]


class CellDesign(NamedTuple):
    """The K cells over unit-level arrays, and what aggregation needs.

    times: (T,) period labels; gpos, tpos, base: (K,) cohort, period and base-period positions;
    is_base: (K,) cells fixed at zero (the universal base period); y: (n, T) outcomes; xw: (n, T, p)
    intercept and covariates; early: (K,) the period whose covariates each cell uses; threshold: (K,)
    with ``notyet``, units first treated after ``threshold[k]`` are comparison units of cell k (besides
    the never treated); w_unit: (n,) sampling weights; g_unit: (n,) cohort positions (inf = never
    treated); cluster: (n,) codes or None; last_period: position of the last period used; n_units;
    excluded, notes: for the result's Spec; ps_group: (K,) codes of the cells' propensity-score inputs
    (cohort, comparison units, covariate period): cells with equal codes have identical logit fits, so
    the kernel fits one per code. The stacked (K, n) cell inputs (``y_post``, ``y_pre``, ``treat``,
    ``mask``, ``x``) are properties built on demand; :func:`compact_cells` gathers each cell's own units
    without them. A fitted :class:`AttGt` keeps a copy without ``y`` and ``xw`` (None).
    """

    times: np.ndarray
    gpos: np.ndarray
    tpos: np.ndarray
    base: np.ndarray
    is_base: np.ndarray
    y: np.ndarray | None
    xw: np.ndarray | None
    early: np.ndarray
    threshold: np.ndarray
    notyet: bool
    w_unit: np.ndarray
    g_unit: np.ndarray
    cluster: np.ndarray | None
    last_period: int
    n_units: int
    excluded: tuple[tuple[int, str], ...]
    notes: tuple[str, ...]
    ps_group: np.ndarray | None = None

    def members(self, k: int) -> np.ndarray:
        """(n,) bool: the units of cell ``k`` (its cohort and its comparison units)."""
        g = self.g_unit
        out = (g == self.gpos[k]) | ~np.isfinite(g)
        if self.notyet:
            out |= g > self.threshold[k]
        return out

    @property
    def treat(self) -> np.ndarray:
        """(K, n) 1 for the units of each cell's cohort."""
        return (self.g_unit[None, :] == self.gpos[:, None]).astype("float64")

    @property
    def mask(self) -> np.ndarray:
        """(K, n) 1 for the units of each cell."""
        return np.array([self.members(k) for k in range(len(self.gpos))], dtype="float64").reshape(-1, self.n_units)

    @property
    def y_post(self) -> np.ndarray:
        return self.y[:, self.tpos].T.copy()

    @property
    def y_pre(self) -> np.ndarray:
        return self.y[:, self.base].T.copy()

    @property
    def x(self) -> np.ndarray:
        """(K, n, p) intercept and covariates at the earlier period of each cell."""
        return np.ascontiguousarray(self.xw[:, self.early, :].transpose(1, 0, 2))


def unit_column(panel: Panel, column: str, role: str) -> np.ndarray:
    """Per-unit values of a time-invariant column of ``panel.frame`` (in ``panel.units`` order)."""
    if column not in panel.frame.columns:
        raise SpecificationError(
            f"{role}={column!r} is not a column of the panel; available: {', '.join(map(str, panel.frame.columns))}."
        )
    per_unit = panel.frame.groupby("unit", sort=False)[column]
    varies = per_unit.nunique(dropna=False) > 1
    if varies.any():
        raise DataError(
            f"{role} column {column!r} varies over time within {int(varies.sum())} units "
            f"(e.g. {varies.index[varies][:3].tolist()}); it must be constant within unit. "
            f"Use each unit's value in one period, e.g. its first."
        )
    return per_unit.first().reindex(panel.units).to_numpy()


def _weights(panel: Panel, weights: str | None) -> np.ndarray:
    if weights is None and "weight" not in panel.frame.columns:
        return np.ones(panel.n_units)
    w = unit_column(panel, weights or "weight", "weights").astype("float64")
    if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise DataError("sampling weights must be finite, non-negative and not all zero.")
    return w


def _cohort_checks(times: np.ndarray, g_unit: np.ndarray, anticipation: int) -> None:
    treated = np.isfinite(g_unit)
    if not treated.any():
        raise DesignError("no unit is ever treated; check the cohort column of the panel.")
    first = treated & (g_unit <= 0)
    if first.any():
        raise DesignError(
            f"{int(first.sum())} units are treated in the first period ({times[0]}) or before, so they have "
            f"no pre-treatment period. Drop them explicitly, e.g. panel.subset(units=...), or extend the data "
            f"back in time."
        )
    early = treated & (g_unit - anticipation <= 0)
    if early.any():
        cohort = times[int(np.min(g_unit[early]))]
        raise DesignError(
            f"anticipation={anticipation} is longer than the pre-treatment period of cohort {cohort} "
            f"({int(np.min(g_unit[early]))} period(s) before it): its base period would precede the data. "
            f"Lower anticipation or drop that cohort explicitly."
        )


def _check_covariates(
    xk: np.ndarray, treat: np.ndarray, mask: np.ndarray, names: tuple[str, ...], method: str, where: str
) -> None:
    cell = xk[mask > 0]
    for j, name in enumerate(names, start=1):
        if np.ptp(cell[:, j]) == 0:
            raise SpecificationError(
                f"covariate {name!r} takes one value for all units in cell {where}, so it is collinear with "
                f"the intercept. Drop it (a covariate must vary across units)."
            )
    if np.linalg.matrix_rank(cell) < cell.shape[1]:
        raise SpecificationError(
            f"the covariates {list(names)} are perfectly collinear among the units of cell {where}. "
            f"Drop redundant covariates."
        )
    if method in ("dr", "reg"):
        ctrl = xk[(mask > 0) & (treat == 0)]
        gram = ctrl.T @ ctrl
        if ctrl.shape[0] == 0 or 1 / np.linalg.cond(gram) < np.finfo(float).eps:
            raise SpecificationError(
                f"the covariates {list(names)} are collinear (or lack variation) among the comparison units "
                f"of cell {where}, so the outcome regression is singular. Drop or recode covariates."
            )


def cell_design(
    panel: Panel,
    *,
    control: str,
    method: str,
    covariates: tuple[str, ...],
    anticipation: int,
    base_period: str,
    weights: str | None,
    cluster: str | None,
    check_clusters: bool = False,
) -> CellDesign:
    """Validate the design and stack the K cells (see :class:`CellDesign`).

    ``check_clusters=True`` applies the few-clusters rule (callers that report the influence-function SE).
    """
    if isinstance(anticipation, bool) or not isinstance(anticipation, (int, np.integer)) or anticipation < 0:
        raise SpecificationError(f"anticipation must be a non-negative integer, got {anticipation!r}.")
    if panel.has_group:
        raise SpecificationError("att_gt needs one row per unit and period; this panel has a group dimension.")
    panel.require_balanced("att_gt")
    for c in covariates:
        if c not in panel.frame.columns or c in ("unit", "time", "t", "y", "cohort", "g", "d"):
            raise SpecificationError(
                f"covariate {c!r} is not a covariate of the panel; declare it with "
                f"Panel.from_frame(..., covariates=[{c!r}])."
            )
    times = panel.times
    n, T = panel.n_units, panel.n_periods
    # the panel is balanced (checked above): scatter rows into (unit, period) arrays, as to_wide() would
    rows, cols = panel.unit_index, panel.time_index
    g_unit = np.empty(n)
    g_unit[rows] = panel.frame["g"].to_numpy(dtype="float64")  # constant within unit (Panel validates it)
    _cohort_checks(times, g_unit, anticipation)

    def wide(column: str) -> np.ndarray:
        out = np.empty((n, T))
        out[rows, cols] = panel.frame[column].to_numpy(dtype="float64")
        return out

    y = wide("y")
    xs = [wide(c) for c in covariates]
    w_unit = _weights(panel, weights)
    codes = None
    if cluster is not None:
        codes = pd.factorize(unit_column(panel, cluster, "cluster"), sort=True)[0]
        require_clusters(int(codes.max()) + 1 if codes.size else 0, cluster)
    if check_clusters:
        require_cluster_sides(np.arange(n) if codes is None else codes, g_unit, cluster or "unit")
    excluded: tuple[tuple[int, str], ...] = ()
    notes: tuple[str, ...] = ()
    never = ~np.isfinite(g_unit)
    cohorts = np.unique(g_unit[~never]).astype(int)
    last = T - 1
    if not never.any():
        if control == "never":
            raise DesignError(
                "there are no never-treated units to compare with. Use control='notyet' (not-yet-treated "
                "units as controls) or add comparison units."
            )
        cutoff = int(cohorts.max()) - anticipation
        comparison_only = cohorts[cohorts - anticipation >= cutoff]
        cohorts = cohorts[cohorts - anticipation < cutoff]
        if cohorts.size == 0:
            raise DesignError(
                "every unit is treated at the same time and none is never treated: there are no comparison "
                "units. Add never-treated or later-treated units."
            )
        last = cutoff - 1
        if last < T - 1:
            excluded = (
                (
                    n * (T - 1 - last),
                    f"periods from {times[cutoff]} on: no not-yet-treated comparison "
                    f"units remain once the last cohort is treated",
                ),
            )
        notes = (
            f"no never-treated units: cohort(s) {', '.join(str(times[c]) for c in comparison_only)} "
            f"serve only as not-yet-treated comparison units",
        )

    rows: list[tuple[int, int, int, bool]] = []
    for g in cohorts:
        base_g = int(g) - anticipation - 1
        first_t = 1 if base_period == "varying" else 0
        for t in range(first_t, last + 1):
            base = base_g if (t >= g or base_period == "universal") else t - 1
            rows.append((int(g), t, base, base_period == "universal" and t == base))
    gpos = np.array([r[0] for r in rows])
    tpos = np.array([r[1] for r in rows])
    base = np.array([r[2] for r in rows])
    is_base = np.array([r[3] for r in rows], dtype=bool)
    K = len(rows)
    threshold = np.zeros(K, dtype=int)  # never-treated comparison units: the same for every cell
    notyet = control != "never"
    if notyet:
        threshold = np.maximum(tpos, base) + anticipation
    early = np.minimum(tpos, base)
    # covariates constant within unit make the covariate period irrelevant to the propensity score
    varying = any(not (xv == xv[:, :1]).all() for xv in xs)
    ps_group = np.unique(np.column_stack([gpos, threshold, early if varying else np.zeros(K, dtype=int)]),
                         axis=0, return_inverse=True)[1].reshape(-1)
    xw = np.ones((n, T, len(covariates) + 1))
    for j, xv in enumerate(xs, start=1):
        xw[:, :, j] = xv
    design = CellDesign(
        times=times, gpos=gpos, tpos=tpos, base=base, is_base=is_base, y=y, xw=xw, early=early,
        threshold=threshold, notyet=notyet, w_unit=w_unit, g_unit=g_unit, cluster=codes, last_period=last,
        n_units=n, excluded=excluded, notes=notes, ps_group=ps_group,
    )
    check_cells(design, covariates, method)
    return design


def check_cells(design: CellDesign, covariates: tuple[str, ...], method: str) -> None:
    """Every cell has comparison units and, with covariates, a full-rank design (one check per logit signature)."""
    times, gpos, g_unit = design.times, design.gpos, design.g_unit
    never = ~np.isfinite(g_unit)
    checked: set[int] = set()
    for k in range(len(gpos)):
        where = f"(group {times[gpos[k]]}, period {times[design.tpos[k]]})"
        if design.notyet and not (never | ((g_unit > design.threshold[k]) & (g_unit != gpos[k]))).any():
            raise DesignError(f"cell {where} has no comparison units; use control='notyet' or add comparison units.")
        if covariates and not design.is_base[k] and int(design.ps_group[k]) not in checked:
            # cells with one ps_group share cohort, comparison units and covariate values: one check each
            treat_k = (g_unit == gpos[k]).astype("float64")
            _check_covariates(design.xw[:, design.early[k], :], treat_k, design.members(k).astype("float64"),
                              covariates, method, where)
            checked.add(int(design.ps_group[k]))


def logit_groups(design: CellDesign) -> tuple[np.ndarray, np.ndarray]:
    """(rep, group): one representative cell per propensity-score signature and each cell's signature.

    Cells with the same cohort, comparison units and covariate values (``design.ps_group``) have the
    same logit; with never-treated comparison units and time-invariant covariates that is one fit per
    cohort instead of one per cell.
    """
    _, rep, group = np.unique(design.ps_group, return_index=True, return_inverse=True)
    return rep.astype(np.int64), group.reshape(-1).astype(np.int64)


def compact_cells(design: CellDesign) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, ...]]:
    """The cells' inputs restricted to their own units: (idx, live, (y_post, y_pre, treat, mask, x, w)).

    Row ``k`` of ``idx`` (K, m) lists the units of cell ``k`` in unit order, padded to the largest
    cell with unit 0 and ``live = False`` (mask 0, so padding adds exact zeros to every sum). A cell
    holds only its cohort and comparison units, so the kernel touches m instead of n units per cell.
    """
    gpos = design.gpos
    # cells with one (cohort, threshold) have the same units: find them once per signature
    _, first, which = np.unique(np.column_stack([gpos, design.threshold]), axis=0, return_index=True,
                                  return_inverse=True)
    units = [np.flatnonzero(design.members(int(k))) for k in first]
    counts = np.array([units[j].size for j in which.reshape(-1)])
    idx = np.zeros((gpos.size, int(counts.max())), dtype=np.int64)
    live = np.zeros(idx.shape, dtype=bool)
    for k, j in enumerate(which.reshape(-1)):
        idx[k, : counts[k]] = units[j]
        live[k, : counts[k]] = True
    y = design.y
    y_post = np.where(live, y[idx, design.tpos[:, None]], 0.0)
    y_pre = np.where(live, y[idx, design.base[:, None]], 0.0)
    treat = np.where(live, design.g_unit[idx] == gpos[:, None], False).astype("float64")
    x = design.xw[idx, design.early[:, None], :]  # padding repeats unit 0 (masked out in the kernel)
    inputs = (y_post, y_pre, treat, live.astype("float64"), x, design.w_unit[idx])
    return idx, live, inputs
