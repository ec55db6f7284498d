"""Shared pieces of the regression-based DiD estimators (twfe, event_study, sun_abraham, poisson,
disparity): option checks and panel views."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from decrimkit.errors import DesignError, SpecificationError
from decrimkit.panel import Panel

__all__ = [
    "cluster_labels",
    "row_weights",
    "check_covariates",
    "require_variation",
    "no_groups",
    "options",
    "check_alpha",
    "require_clusters",
    "require_cluster_sides",
    "require_unit_cluster_sides",
]


def cluster_labels(panel: Panel, cluster: str | None) -> np.ndarray | None:
    """Cluster label per row: ``"unit"``, ``"time"``, or None (heteroskedasticity-robust)."""
    if cluster is None:
        return None
    if cluster == "unit":
        return panel.unit_index
    if cluster == "time":
        return panel.time_index
    raise SpecificationError(
        f"cluster={cluster!r} is not allowed; use 'unit', 'time' or None (heteroskedasticity-robust HC1). "
        f"To cluster at a coarser level, build the panel with that level as the unit."
    )


def row_weights(panel: Panel, weights: str | None) -> np.ndarray | None:
    """Analytic weights per row: None (unweighted), ``"weights"`` (the panel's weights=) or ``"population"``."""
    if weights is None:
        return None
    column = {"weights": "weight", "population": "population"}.get(weights)
    if column is None:
        raise SpecificationError(f"weights={weights!r} is not allowed; use None, 'weights' or 'population'.")
    if column not in panel.frame.columns:
        raise SpecificationError(
            f"weights={weights!r} needs a panel built with {'weights' if column == 'weight' else 'population'}=."
        )
    return panel.frame[column].to_numpy(dtype="float64")


def check_covariates(panel: Panel, covariates: Sequence[str]) -> tuple[str, ...]:
    """The covariates as a tuple; each must have been declared on the panel."""
    covariates = (covariates,) if isinstance(covariates, str) else tuple(covariates)
    missing = [c for c in covariates if c not in panel.covariates]
    if missing:
        raise SpecificationError(
            f"covariates {missing} were not declared on the panel (declared: {list(panel.covariates)}). "
            f"Build the panel with covariates=[...]."
        )
    return covariates


def require_variation(panel: Panel, estimator: str) -> None:
    """A treated and an untreated observation must exist, and treatment timing must vary across units."""
    d = panel.frame["d"].to_numpy()
    if d.max() == 0:
        raise DesignError(f"{estimator}: no observation is treated; check the panel's cohort/treated column.")
    if d.min() == 1:
        raise DesignError(f"{estimator}: every observation is treated; there is no comparison period or unit.")
    g = panel.unit_cohort.to_numpy()
    if np.isfinite(g).all() and len(np.unique(g)) < 2:
        raise DesignError(
            f"{estimator}: every unit is treated at the same time, so there are no comparison units "
            f"(treatment is collinear with the period effects). Add never-treated or later-treated units."
        )


def no_groups(panel: Panel, estimator: str) -> None:
    """Refuse a panel with a group dimension (several rows per unit and period)."""
    if panel.has_group:
        raise SpecificationError(
            f"{estimator} needs one row per unit and period, but this panel has a group dimension "
            f"({panel.roles['group']!r}). Use did.disparity for group contrasts, or build the panel without group=."
        )


def options(**kwargs: Any) -> dict[str, Any]:
    """Spec options with tuples for sequences (hashable, JSON-friendly)."""
    return {k: (tuple(v) if isinstance(v, (list, tuple)) else v) for k, v in kwargs.items()}


def check_alpha(alpha: Any, name: str = "alpha") -> float:
    """``alpha`` as a float strictly between 0 and 1 (the test size behind every interval), else raise."""
    try:
        value = float(alpha)
    except (TypeError, ValueError):
        value = float("nan")
    if isinstance(alpha, bool) or not 0.0 < value < 1.0:
        raise SpecificationError(
            f"{name}={alpha!r} is not allowed; it is the test size and must lie strictly between 0 and 1 "
            f"(e.g. {name}=0.05 for 95% intervals)."
        )
    return value


def require_clusters(n_clusters: int, cluster: str) -> None:
    """Cluster-robust inference needs at least two clusters."""
    if n_clusters < 2:
        raise DesignError(
            f"cluster={cluster!r} has {n_clusters} distinct value(s), but clustered standard errors "
            f"need at least 2 clusters. Cluster at a finer level (e.g. cluster=None for units)."
        )


def require_cluster_sides(codes: np.ndarray, g: np.ndarray, cluster: str) -> None:
    """Refuse a cluster-robust or influence-function variance with fewer than 2 clusters on either side.

    ``codes`` is the cluster of each row (or unit) and ``g`` its cohort position (inf = never treated).
    Treated clusters hold an ever-treated unit; comparison clusters hold a never-treated unit or one
    treated after the earliest cohort (a not-yet-treated comparison). The rule: at least two of each.

    Why: a cluster-robust variance estimates each side's sampling noise from that side's clusters. With
    one treated cluster, that cluster's own fixed effects and cohort means absorb its shocks, so its
    contribution to the variance is (nearly) zero and the standard error reflects the comparison
    units alone: it is inconsistent and far too small (Conley and Taber 2011; MacKinnon and Webb
    2017, 2018, who show that the wild cluster bootstrap fails there as well); with one treated and one
    comparison cluster it is exactly zero up to rounding. The same holds for one comparison cluster;
    R's did refuses a too-small never-treated group ("never treated group is too small").

    Conley, T. G. and Taber, C. R. (2011). Inference with "difference in differences" with a small
    number of policy changes. *REStat* 93(1), 113-125.
    MacKinnon, J. G. and Webb, M. D. (2017). Wild bootstrap inference for wildly different cluster
    sizes. *Journal of Applied Econometrics* 32(2), 233-254.
    MacKinnon, J. G. and Webb, M. D. (2018). The wild bootstrap for few (treated) clusters. *The
    Econometrics Journal* 21(2), 114-135.
    """
    codes = np.asarray(codes).reshape(-1)
    g = np.asarray(g, dtype="float64").reshape(-1)
    treated = np.isfinite(g)
    if not treated.any():
        return  # "no treated unit" is reported by the design checks
    comparison = ~treated | (g > np.min(g[treated]))
    if codes.dtype.kind in "iu" and codes.size and codes.min() >= 0:  # integer codes: count without sorting
        n_t = int(np.count_nonzero(np.bincount(codes[treated])))
        n_c = int(np.count_nonzero(np.bincount(codes[comparison]))) if comparison.any() else 0
    else:
        n_t, n_c = np.unique(codes[treated]).size, np.unique(codes[comparison]).size
    if (n_t >= 2 and n_c >= 2) or n_c == 0:
        return  # enough clusters, or no comparison at all (the estimator's design checks say so)
    raise DesignError(
        f"the standard errors are clustered by {cluster!r}, and the design has {n_t} treated and {n_c} "
        f"comparison cluster(s); a cluster-robust variance needs at least 2 of each. With one cluster on "
        f"a side its shocks are absorbed by its own fixed effects and means, so the standard error is far "
        f"too small (zero with one of each) and its p-values and intervals are invalid (Conley and Taber "
        f"2011; MacKinnon and Webb 2017, 2018). Use inference built for few treated units "
        f"(inference='randomization', 'conley_taber' or 'ferman_pinto'; or synth.scm with placebo "
        f"inference), or add units to the smaller side."
    )


def require_unit_cluster_sides(panel: Panel, cluster: str | None, inference: str) -> None:
    """:func:`require_cluster_sides` for unit clusters, when the reported inference is cluster-robust
    (``"cluster"`` or ``"wild"``); the few-treated methods (randomization, Conley-Taber, Ferman-Pinto)
    are built for one treated unit and are not restricted."""
    if inference in ("cluster", "wild") and cluster == "unit":
        require_cluster_sides(panel.unit_index, panel.g_index, "unit")
