"""The ``inference=`` keyword of the DiD estimators: one place that turns it into a few-treated test.

``check_inference(inference, estimator, allowed)``: validate the keyword for one estimator.
``permuted(panel, g_unit)``: the panel with other adoption dates (positions per unit, ``inf`` = never).
``with_outcome(panel, y)``: the panel with another outcome column.
``randomization(panel, refit, ...)``: :class:`~decrimkit.inference.randomization.RandomizationInference`
    by re-estimating under every (or randomly drawn) reassignment of the adoption dates across units.
``residual(panel, refit, method, ...)``: Conley-Taber / Ferman-Pinto
    :class:`~decrimkit.inference.few_treated.ResidualInference` from control-unit residuals.

``refit(panel) -> (k,)`` is the estimator's point estimates on another panel with every other option
unchanged (it must be linear in the outcome for the interval of ``randomization`` and for
``residual``; the estimators that are not say so and refuse).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable

import numpy as np

from decrimkit.errors import DesignError, FewTreatedWarning, SpecificationError
from decrimkit.estimators.did._ols import fe_ols
from decrimkit.inference.few_treated import (
    ResidualInference,
    ferman_pinto_scale,
    residual_draws,
    warn_few_treated,
)
from decrimkit.inference.randomization import MAX_EXACT, RandomizationInference, assignments, count_assignments
from decrimkit.options import Inference, check_option
from decrimkit.panel import Panel

__all__ = ["check_inference", "permuted", "with_outcome", "randomization", "residual", "warn_if_few", "sum_by"]

Refit = Callable[[Panel], np.ndarray]

MIN_CONTROLS = 5  # fewer never-treated units cannot stand in for the treated units' errors


def check_inference(inference: str, estimator: str, allowed: tuple[str, ...]) -> str:
    """Validate ``inference`` for ``estimator`` (``allowed``: the methods it supports)."""
    check_option("inference", inference, Inference)
    if inference not in allowed:
        listed = ", ".join(repr(a) for a in allowed)
        raise SpecificationError(f"{estimator} does not support inference={inference!r}; use one of {listed} "
                                 f"(see docs/estimators/did/inference.md for what each assumes).")
    return inference


def warn_if_few(panel: Panel, estimator: str, inference: str, n_treated: int | None = None) -> None:
    """Warn (FewTreatedWarning) when fewer than 5 units are ever treated and inference is large-sample.

    ``n_treated``: the count when the caller already has it (else it is read from ``panel``).
    """
    warn_few_treated(len(panel.treated_units) if n_treated is None else int(n_treated), estimator, inference)


def _unit_codes(panel: Panel) -> np.ndarray:
    return panel.unit_index


def permuted(panel: Panel, g_unit: np.ndarray) -> Panel:
    """``panel`` with adoption positions ``g_unit`` (one per unit in ``panel.units`` order; inf = never)."""
    frame = panel.frame.copy()
    g = np.asarray(g_unit, dtype="float64")[_unit_codes(panel)]
    t = frame["t"].to_numpy()
    frame["g"] = g
    labels = np.empty(len(g), dtype=object)
    fin = np.isfinite(g)
    labels[fin] = panel.times[g[fin].astype(int)]
    labels[~fin] = np.nan
    frame["cohort"] = labels if frame["cohort"].dtype == object else labels.astype("float64")
    frame["d"] = (t >= g).astype(frame["d"].dtype)
    return dataclasses.replace(panel, frame=frame)


def with_outcome(panel: Panel, y: np.ndarray) -> Panel:
    """``panel`` whose outcome ``y`` (and ``rate``, when declared) is replaced by ``y`` (n_obs,)."""
    frame = panel.frame.copy()
    frame["y"] = np.asarray(y, dtype="float64")
    if "rate" in frame.columns:
        frame["rate"] = frame["y"] / frame["population"] * 1e5
    return dataclasses.replace(panel, frame=frame)


def _quiet(refit: Refit, panel: Panel) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewTreatedWarning)
        return np.asarray(refit(panel), dtype="float64").reshape(-1)


def _no_reversal(panel: Panel, method: str) -> None:
    d = panel.frame["d"].to_numpy()
    if not np.array_equal(d.astype(bool), panel.frame["t"].to_numpy() >= panel.frame["g"].to_numpy()):
        raise SpecificationError(f"inference={method!r} reassigns adoption dates; it does not support panels "
                                 f"where treatment switches off (allow_reversal=True).")



def sum_by(codes: np.ndarray, n_codes: int, values: np.ndarray) -> np.ndarray:
    """(P, n_codes) sums of ``values`` (P, n) over rows with the same code; ``codes`` (n,) shared by every
    reassignment, or (P, n) one row per reassignment (the batched randomization kernels' group sums)."""
    p = values.shape[0]
    keys = (np.arange(p)[:, None] * n_codes + codes).ravel()
    return np.bincount(keys, weights=values.ravel(), minlength=p * n_codes).reshape(p, n_codes)

def randomization(
    panel: Panel,
    refit: Refit,
    *,
    n_perm: int = 999,
    max_exact: int = MAX_EXACT,
    seed: int = 0,
    overall: bool = False,
    rows: tuple[int, ...] | None = None,
    linear: bool = True,
    batch: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None,
) -> RandomizationInference:
    """Randomization inference over reassignments of the adoption dates (see the kernel's docstring).

    ``linear=False`` (estimators not linear in the outcome): p-values of the sharp null of no effect only;
    the interval is not computed (NaN). ``batch(g_rows) -> (stat, dose)``: an estimator's own way of
    computing what ``refit`` gives on every reassignment at once (``g_rows`` (P, n_units), adoption
    positions in ``panel.units`` order); ``refit`` is then not called.
    """
    _no_reversal(panel, "randomization")
    g_unit = panel.unit_cohort.to_numpy(dtype="float64")
    draws, exact = assignments(g_unit, n_perm=n_perm, max_exact=max_exact, seed=seed)
    if batch is not None:
        stat_a, dose_a = batch(draws)
    else:
        d_obs = panel.frame["d"].to_numpy(dtype="float64")
        stat, dose = [], []
        for row in draws:
            p = permuted(panel, row)
            stat.append(_quiet(refit, p))
            dose.append(_quiet(refit, with_outcome(p, d_obs)) if linear else np.zeros_like(stat[-1]))
        stat_a, dose_a = np.array(stat), np.array(dose)
    return RandomizationInference(
        stat=stat_a, dose=dose_a, exact=exact, n_assignments=count_assignments(g_unit),
        seed=None if exact else int(seed), rows=rows, overall=overall,
    )


def control_residuals(panel: Panel, covariates: tuple[str, ...] = ()) -> np.ndarray:
    """(N0, T) residuals of the never-treated units from the TWFE regression of y on D (and covariates).

    Covariates constant within every unit (``att_gt``'s usual ones) are absorbed by the unit effects: they
    leave the residuals unchanged and are left out of the regression.
    """
    frame = panel.frame
    varies = frame.groupby("unit", sort=False)[list(covariates)].nunique().max() > 1 if covariates else None
    covariates = tuple(c for c in covariates if varies[c])
    x = np.column_stack([frame["d"].to_numpy(dtype="float64")] + [frame[c].to_numpy() for c in covariates])
    fit = fe_ols(panel.y, x, [panel.unit_index, panel.time_index], names=("d", *covariates), vcov="hetero")
    units = panel.unit_index
    never = ~np.isfinite(panel.unit_cohort.to_numpy(dtype="float64"))
    out = np.zeros((panel.n_units, panel.n_periods))
    out[units, panel.time_index] = fit.resid
    return out[never]


def residual(
    panel: Panel,
    refit: Refit,
    method: str,
    estimate: np.ndarray,
    *,
    covariates: tuple[str, ...] = (),
    n_draws: int = 999,
    max_exact: int = MAX_EXACT,
    seed: int = 0,
    overall: bool = False,
    rows: tuple[int, ...] | None = None,
    linear: np.ndarray | None = None,
) -> ResidualInference:
    """Conley-Taber (``method="conley_taber"``) or Ferman-Pinto (``"ferman_pinto"``) inference.

    ``linear`` (n_obs, k): the estimator's coefficients as ``linear.T @ y`` (least-squares estimators,
    :func:`~decrimkit.estimators.did._ols.linear_map`); each treated unit's contribution of each control's
    residuals is then a product instead of a refit (same numbers, up to rounding).
    """
    panel.require_balanced(method)
    _no_reversal(panel, method)
    g_unit = panel.unit_cohort.to_numpy(dtype="float64")
    treated = np.flatnonzero(np.isfinite(g_unit))
    never = np.flatnonzero(~np.isfinite(g_unit))
    if never.size < MIN_CONTROLS:
        raise DesignError(f"inference={method!r} estimates the treated units' error distribution from the "
                          f"never-treated units; the panel has {never.size} (needs at least {MIN_CONTROLS}, and "
                          f"many more for accuracy). Use inference='randomization' or 'wild'.")
    eta = control_residuals(panel, covariates)  # (N0, T)
    codes, tpos = panel.unit_index, panel.time_index
    contrib = []
    for j in treated:
        rows_j = codes == j
        if linear is not None:  # (N0, k): control l's residuals on unit j's rows, through the linear map
            contrib.append(eta[:, tpos[rows_j]] @ np.asarray(linear)[rows_j])
            continue
        per_l = []
        for l_ in range(eta.shape[0]):
            y = np.zeros(panel.n_obs)
            y[rows_j] = eta[l_, tpos[rows_j]]
            per_l.append(_quiet(refit, with_outcome(panel, y)))
        contrib.append(per_l)
    c = np.array(contrib)  # (N1, N0, k)
    if method == "ferman_pinto":
        size = _unit_sizes(panel)
        c = ferman_pinto_scale(c, size[treated], size[never])
    draws, exact = residual_draws(c, max_exact=max_exact, n_draws=n_draws, seed=seed)
    return ResidualInference(
        estimate=np.asarray(estimate, dtype="float64"), draws=draws, method=method, exact=exact,
        n_treated=int(treated.size), n_controls=int(never.size), seed=None if exact else int(seed),
        rows=rows, overall=overall,
    )


def _unit_sizes(panel: Panel) -> np.ndarray:
    """Mean population (else analytic weight) per unit: the M of Ferman-Pinto's ``A + B / M``."""
    col = "population" if panel.has_population else ("weight" if "weight" in panel.frame.columns else None)
    if col is None:
        raise SpecificationError("inference='ferman_pinto' needs group sizes: build the panel with population= "
                                 "(or weights=). Without sizes use inference='conley_taber'.")
    sizes = panel.frame.groupby("unit", sort=False)[col].mean().reindex(panel.units)
    return sizes.to_numpy(dtype="float64")
