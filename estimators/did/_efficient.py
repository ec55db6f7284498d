"""Efficient estimation under randomized staggered treatment timing (Roth and Sant'Anna 2023).

Estimand
--------
With the timing of adoption randomly assigned across units (for instance a training rolled out to
randomly chosen cohorts), every average effect of interest is a contrast of cohort means,
``theta = sum_g A_theta[g] . Ybar_g`` (``estimand``: ``"simple"``, ``"cohort"``, ``"calendar"``,
``"eventstudy"``; see :mod:`._staggered_weights`). Roth and Sant'Anna adjust the plug-in estimator
``theta_0`` with the pre-treatment cohort differences ``Xhat = sum_g A_0[g] . Ybar_g``, which have mean
zero under random timing:

    theta_beta = theta_0 - beta * Xhat,

and choose ``beta`` to minimise the design variance. ``beta = 1`` gives the Callaway-Sant'Anna
estimator with not-yet-treated comparisons (``estimator="cs"``, R's ``staggered_cs``), ``beta = 1`` with
the last-treated cohort as the only comparison gives Sun and Abraham's (``estimator="sa"``,
``staggered_sa``), and the plug-in optimum ``beta* = Cov(Xhat, theta_0) / Var(Xhat)`` the efficient
estimator (``estimator="efficient"``, R's ``staggered``).

Inference (design-based: the potential outcomes are fixed, the randomness is the assignment of dates)
------------------------------------------------------------------------------------------------------
The exact variance is ``sum_g (1/N_g) a_g' S_g a_g - S_theta / N`` with ``a_g = A_theta[g] - beta A_0[g]``,
``S_g`` the finite-population covariance of cohort ``g``'s potential-outcome path and ``S_theta`` the
(unidentified) variance of the unit-level effects. ``se_neyman`` drops the last term (Neyman's
conservative variance, estimated with the within-cohort sample covariances). ``se`` (the default, R's
``se``) subtracts the part of ``S_theta`` that is identified: the variance of the unit effects explained
by the outcomes in the periods before the first cohort whose cells enter ``theta``, where every potential
outcome path coincides; it remains conservative. Both are valid for the design (random timing), not for
a design where only parallel trends hold. The Fisher randomization test (``fisher=True``) redraws the
adoption dates across units (cohort sizes fixed), recomputes the studentized estimate and reports the
share of draws at least as extreme; it tests the sharp null of no effect for any unit in any period
and is exact for that null whatever the sample size.

References
----------
Roth, J. and Sant'Anna, P. H. C. (2023). Efficient estimation for staggered rollout designs.
*Journal of Political Economy Microeconomics* 1(4), 669-709.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd
from scipy import sparse

from decrimkit.errors import DataError, DataWarning, DesignError, SpecificationError
from decrimkit.estimators.did._reg_design import no_groups, options
from decrimkit.estimators.did._staggered_weights import Contrast, estimand_contrasts, identified_event_times
from decrimkit.limits import check_replications
from decrimkit.options import check_option
from decrimkit.panel import Panel
from decrimkit.results import Effect, Spec, frozen_array

__all__ = ["EfficientResult", "efficient"]

Estimand = Literal["simple", "cohort", "calendar", "eventstudy"]
StaggeredEstimator = Literal["efficient", "cs", "sa"]
_TITLES = {
    "efficient": "Efficient estimator under random treatment timing (Roth & Sant'Anna 2023)",
    "cs": "Callaway-Sant'Anna estimator under random treatment timing (staggered_cs)",
    "sa": "Sun-Abraham estimator under random treatment timing (staggered_sa)",
}
_RTOL_PINV = float(np.sqrt(np.finfo(float).eps))  # the usual generalized-inverse cut-off (as MASS::ginv)


class _Design(NamedTuple):
    """Arrays of one fit. y: (N, T) centred outcomes; code: (N,) cohort index; n_g: (G,) cohort sizes;
    proj_theta, proj_0: (N, K, G) outcome paths times each A_theta / A_0 row; g_min: (K,) first cohort
    with a non-zero weight; cohorts: (G,) cohort time positions."""

    y: np.ndarray
    code: np.ndarray
    n_g: np.ndarray
    proj_theta: np.ndarray
    proj_0: np.ndarray
    g_min: np.ndarray
    cohorts: np.ndarray


class _Fit(NamedTuple):
    """estimate, se, se_neyman, beta: (K,); vcv, vcv_neyman: (K, K) (None in permutation draws)."""

    estimate: np.ndarray
    se: np.ndarray
    se_neyman: np.ndarray
    beta: np.ndarray
    vcv: np.ndarray | None
    vcv_neyman: np.ndarray | None


def _indicator(code: np.ndarray, n_groups: int) -> sparse.csr_matrix:
    n = len(code)
    return sparse.csr_matrix((np.ones(n), (code, np.arange(n))), shape=(n_groups, n))


def _pre_moments(y_pre: np.ndarray, dev: np.ndarray, ind: sparse.csr_matrix, code: np.ndarray, n_g: np.ndarray):
    """Within-cohort covariances: S (G, p, p) of the pre-period outcomes, C (G, p, K) with ``dev`` (N, K)."""
    mean = (ind @ y_pre) / n_g[:, None]
    d = y_pre - mean[code]
    p = d.shape[1]
    s = (ind @ (d[:, :, None] * d[:, None, :]).reshape(len(d), p * p)).reshape(-1, p, p)
    c = (ind @ (d[:, :, None] * dev[:, None, :]).reshape(len(d), -1)).reshape(len(n_g), p, -1)
    return s / (n_g - 1)[:, None, None], c / (n_g - 1)[:, None, None]


def _fit(design: _Design, code: np.ndarray, *, beta_fixed: float | None, full: bool) -> _Fit:
    """Estimates and design-based standard errors for one assignment of cohorts to units (``code``)."""
    n_g, g_count = design.n_g, len(design.n_g)
    n = len(code)
    ind = _indicator(code, g_count)
    rows = np.arange(n)
    u = design.proj_theta[rows, :, code]  # (N, K): unit path times its cohort's A_theta row
    v = design.proj_0[rows, :, code]
    k = u.shape[1]
    uv = np.concatenate([u, v], axis=1)
    mean = (ind @ uv) / n_g[:, None]  # (G, 2K) cohort means
    dev = uv - mean[code]
    scale = 1.0 / (n_g * (n_g - 1))[code]  # sum_g (1/N_g) Cov_g(a, b) = sum_i dev_a dev_b / (N_g (N_g - 1))
    theta0, xhat = mean[:, :k].sum(axis=0), mean[:, k:].sum(axis=0)
    du, dv = dev[:, :k], dev[:, k:]
    var_u = np.einsum("ik,ik,i->k", du, du, scale)
    var_v = np.einsum("ik,ik,i->k", dv, dv, scale)
    cov_uv = np.einsum("ik,ik,i->k", du, dv, scale)
    if beta_fixed is None:
        beta = np.divide(cov_uv, var_v, out=np.zeros(k), where=var_v > 0)
    else:
        beta = np.full(k, float(beta_fixed))
    estimate = theta0 - beta * xhat
    var_neyman = np.maximum(var_u + beta**2 * var_v - 2 * beta * cov_uv, 0.0)
    adjust = np.zeros(k)
    for gm in np.unique(design.g_min):
        if gm <= 0:
            continue
        sel = np.flatnonzero(design.g_min == gm)
        adjust[sel] = _explained(design, ind, code, du[:, sel], gm, n)
    se = np.sqrt(np.maximum(var_neyman - adjust, 0.0))
    vcv = vcv_neyman = None
    if full:
        w = du - beta * dv
        vcv_neyman = (w * scale[:, None]).T @ w
        vcv = vcv_neyman - _explained(design, ind, code, du, float(design.g_min.min()), n, matrix=True)
        neg = np.diag(vcv) < 0
        vcv[np.ix_(neg, neg)] = 0.0
    return _Fit(estimate, se, np.sqrt(var_neyman), beta, vcv, vcv_neyman)


def _explained(design, ind, code, du, g_min, n, matrix=False):
    """Identified part of S_theta / N: unit effects projected on the outcomes before ``g_min``.

    For the cohorts first treated at or after ``g_min``, ``b = sum_g S_pre,g^+ Cov_g(Y_pre, a_g . Y)``; the
    explained variance is ``b' Sbar_pre b / N`` with ``Sbar_pre`` the average of those cohorts' ``S_pre,g``.
    """
    if g_min <= 0:
        k = du.shape[1]
        return np.zeros((k, k)) if matrix else np.zeros(k)
    p = int(min(g_min, design.y.shape[1]))
    s, c = _pre_moments(design.y[:, :p], du, ind, code, design.n_g)
    later = design.cohorts >= g_min
    b = np.einsum("gpq,gqk->pk", np.linalg.pinv(s[later], rtol=_RTOL_PINV), c[later])  # (p, K)
    s_bar = s[later].mean(axis=0)
    if matrix:
        return b.T @ s_bar @ b / n
    return np.einsum("pk,pq,qk->k", b, s_bar, b) / n


@dataclass(frozen=True, repr=False)
class EfficientResult(Effect):
    """Staggered-rollout estimates under random timing.

    ``se`` is the refined design-based SE (intervals and ``p_value`` use it), ``se_neyman`` the Neyman
    conservative SE, ``beta`` the adjustment coefficient per parameter; with ``fisher=True``,
    ``fisher_p`` / ``fisher_p_neyman`` are the randomization p-values of the sharp null of no effect
    (estimate studentized by ``se`` / ``se_neyman``) from ``n_perm`` seeded redraws of the adoption dates.
    ``vcv`` (event studies) is the design-based covariance of the event-time estimates.
    """

    se_neyman: np.ndarray | None = None
    beta: np.ndarray | None = None
    fisher_p: np.ndarray | None = None
    fisher_p_neyman: np.ndarray | None = None
    n_perm: int | None = None
    title: str = _TITLES["efficient"]

    def tidy(self, alpha: float = 0.05) -> pd.DataFrame:
        out = super().tidy(alpha)
        out.insert(out.columns.get_loc("inference") + 1, "se_neyman", self.se_neyman)
        out["beta"] = self.beta
        if self.fisher_p is not None:
            out["fisher_p"] = self.fisher_p
            out["fisher_p_neyman"] = self.fisher_p_neyman
        return out

    def summary(self) -> str:
        lines = [
            super().summary(),
            "",
            "se, p_value, conf_low/high: design-based SE (random adoption dates; refined conservative variance, "
            "Roth & Sant'Anna 2023) with normal critical values.",
            "se_neyman: Neyman conservative design-based SE (shown for comparison; not used in the intervals).",
        ]
        if self.fisher_p is not None:
            lines.append(
                f"fisher_p (fisher_p_neyman): Fisher randomization test of the sharp null of no effect, estimate "
                f"studentized by se (se_neyman), {self.n_perm} seeded redraws of the adoption dates, "
                f"p = (1 + #draws at least as extreme) / (1 + draws)."
            )
        return "\n".join(lines)


def _outcome_matrix(panel: Panel) -> np.ndarray:
    y = np.full((panel.n_units, panel.n_periods), np.nan)
    y[panel.unit_index, panel.time_index.astype(np.int64)] = panel.y
    if not np.isfinite(y).all():
        raise DataError("efficient: the outcome has missing or non-finite values; impute or drop those units first.")
    return y


def efficient(
    panel: Panel,
    *,
    estimand: Estimand = "simple",
    fisher: bool = False,
    n_perm: int = 500,
    seed: int = 0,
    estimator: StaggeredEstimator = "efficient",
    event_times: Sequence[int] | None = None,
) -> EfficientResult:
    """Roth-Sant'Anna efficient estimator (or its Callaway-Sant'Anna / Sun-Abraham variants) under random timing.

    Parameters
    ----------
    panel : Panel
        Balanced, one row per unit and period, with a cohort (first treated period; never-treated units
        form the last comparison cohort).
    estimand : {"simple", "cohort", "calendar", "eventstudy"}
        ``simple``: average over identified post-treatment (cohort, period) cells weighted by cohort size;
        ``cohort``: cohort averages, then size-weighted; ``calendar``: period averages, then equal-weighted;
        ``eventstudy``: one effect per event time in ``event_times``.
    fisher : bool
        Also run the Fisher randomization test (``n_perm`` redraws of the adoption dates, seeded by ``seed``).
    n_perm, seed : int
        Number of randomization draws and their seed.
    estimator : {"efficient", "cs", "sa"}
        ``efficient``: plug-in optimal ``beta`` (R ``staggered``); ``cs``: ``beta = 1``, not-yet-treated
        comparisons (``staggered_cs``); ``sa``: ``beta = 1``, last-treated cohort as comparison (``staggered_sa``).
    event_times : sequence of int, optional
        Event times for ``estimand="eventstudy"`` (0 = adoption period); default: every identified
        non-negative event time.

    Returns
    -------
    EfficientResult
        ``estimate``, ``se`` (design-based), ``se_neyman``, ``beta``, optional ``fisher_p``; ``tidy()``, ``summary()``.

    Raises
    ------
    DesignError
        Unbalanced panel, fewer than two cohorts, an estimand with no identified cell.
    DataError
        Missing outcome values.
    SpecificationError
        Unknown estimand or estimator, ``n_perm < 1``.

    Notes
    -----
    Assumption: the adoption dates are randomly assigned across units (all permutations of the observed
    cohort sizes equally likely) and there is no anticipation. Under parallel trends alone the ``cs`` and
    ``sa`` point estimates stay unbiased but these design-based SEs are not the right ones. Cohorts with
    a single unit are dropped (their covariance is undefined), as are, for ``cs``/``sa``, units treated in
    the first period; both are warned about and recorded in ``spec.excluded``.

    References
    ----------
    Roth, J. and Sant'Anna, P. H. C. (2023). Efficient estimation for staggered rollout designs.
    *Journal of Political Economy Microeconomics* 1(4), 669-709.

    Examples
    --------
    >>> from decrimkit import Panel
    >>> from decrimkit.datasets import load_dataset
    >>> from decrimkit.estimators import did
    >>> df = load_dataset("pj_officer_level_balanced")
    >>> panel = Panel.from_frame(df, unit="uid", time="period", outcome="complaints", cohort="first_trained")
    >>> res = did.efficient(panel, estimand="simple")
    >>> round(float(res.estimate[0]), 6)
    -0.001127
    """
    check_option("estimand", estimand, Estimand)
    check_option("estimator", estimator, StaggeredEstimator)
    if isinstance(n_perm, bool) or not isinstance(n_perm, (int, np.integer)) or n_perm < 1:
        raise SpecificationError(f"n_perm={n_perm!r} is not allowed; give a positive number of randomization draws.")
    check_replications("n_perm", n_perm)
    if event_times is not None and estimand != "eventstudy":
        raise SpecificationError("event_times= applies only to estimand='eventstudy'.")
    no_groups(panel, "efficient")
    panel.require_balanced("efficient")
    y = _outcome_matrix(panel)
    g_unit = panel.unit_cohort.to_numpy(dtype="float64")
    keep = np.ones(panel.n_units, dtype=bool)
    excluded: list[tuple[int, str]] = []
    if estimator in ("cs", "sa"):
        early = np.isfinite(g_unit) & (g_unit <= 0)
        if early.any():
            _warn(
                f"efficient(estimator={estimator!r}): dropping {int(early.sum())} units treated in the first "
                "period (ATE(t, g) is not identified for them)."
            )
            excluded.append((int(early.sum()) * panel.n_periods, "units treated in the first period"))
            keep &= ~early
    cohorts, counts = np.unique(g_unit[keep], return_counts=True)
    single = cohorts[counts == 1]
    if len(single):
        labels = [str(panel.time_label(g)) for g in single]
        _warn(f"efficient: dropping cohort(s) {', '.join(labels)} with a single unit (no within-cohort variance).")
        keep &= ~np.isin(g_unit, single)
        excluded.append((len(single) * panel.n_periods, f"single-unit cohorts {', '.join(labels)}"))
    cohorts, code, n_g = np.unique(g_unit[keep], return_inverse=True, return_counts=True)
    if len(cohorts) < 2 or not np.isfinite(cohorts).any():
        raise DesignError(
            "efficient needs at least two treatment cohorts (never-treated units count as one), with some unit "
            f"treated; this panel has cohorts {[str(panel.time_label(g)) for g in cohorts]}."
        )
    y = y[keep]
    n_periods = panel.n_periods
    if estimand == "eventstudy":
        event_times = (
            [e for e in identified_event_times(cohorts, n_periods) if e >= 0]
            if event_times is None
            else list(event_times)
        )
    contrasts = estimand_contrasts(
        estimand, cohorts, n_g.astype(float), n_periods, event_times=event_times or (), last_only=estimator == "sa"
    )
    design = _design(y, code, n_g.astype(float), contrasts, cohorts)
    beta_fixed = None if estimator == "efficient" else 1.0
    fit = _fit(design, code, beta_fixed=beta_fixed, full=estimand == "eventstudy")
    fisher_p = fisher_p_neyman = None
    if fisher:
        fisher_p, fisher_p_neyman = _fisher(design, code, fit, beta_fixed, n_perm, seed)
    spec = Spec(
        estimator="did.efficient",
        options=options(
            estimand=estimand,
            estimator=estimator,
            fisher=fisher,
            n_perm=n_perm if fisher else None,
            event_times=tuple(event_times) if event_times else None,
        ),
        seed=seed if fisher else None,
        n_units=int(keep.sum()),
        n_periods=n_periods,
        n_obs=int(keep.sum()) * n_periods,
        excluded=panel.excluded + tuple(excluded),
        notes=(
            f"{len(cohorts)} cohorts (never treated counted as one); design-based inference assumes randomly "
            "assigned adoption dates",
        ),
    )
    return EfficientResult(
        label=tuple(c.label for c in contrasts),
        estimate=fit.estimate,
        se=fit.se,
        spec=spec,
        label_name="event_time" if estimand == "eventstudy" else "term",
        vcov=fit.vcv,
        se_neyman=frozen_array(fit.se_neyman),
        beta=frozen_array(fit.beta),
        fisher_p=None if fisher_p is None else frozen_array(fisher_p),
        fisher_p_neyman=None if fisher_p_neyman is None else frozen_array(fisher_p_neyman),
        n_perm=n_perm if fisher else None,
        title=_TITLES[estimator],
    )


def _warn(message: str) -> None:
    warnings.warn(message, DataWarning, stacklevel=3)


def _design(
    y: np.ndarray, code: np.ndarray, n_g: np.ndarray, contrasts: list[Contrast], cohorts: np.ndarray
) -> _Design:
    yc = y - y.mean(axis=0)  # contrasts sum to zero over cohorts: centring changes no estimate, only rounding
    a_theta = np.stack([c.a_theta for c in contrasts])  # (K, G, T)
    a_0 = np.stack([c.a_0 for c in contrasts])
    k, g, t = a_theta.shape
    proj_theta = (yc @ a_theta.reshape(k * g, t).T).reshape(len(y), k, g)
    proj_0 = (yc @ a_0.reshape(k * g, t).T).reshape(len(y), k, g)
    nonzero = np.abs(a_theta).max(axis=2) > 0  # (K, G)
    g_min = np.array([cohorts[np.flatnonzero(row)[0]] if row.any() else cohorts[0] for row in nonzero])
    return _Design(yc, code, n_g, proj_theta, proj_0, g_min, cohorts)


def _fisher(design: _Design, code: np.ndarray, fit: _Fit, beta_fixed, n_perm: int, seed: int):
    """Randomization p-values: redraw the cohort of each unit (sizes fixed), studentize, count as extreme."""
    rng = np.random.default_rng(seed)
    t_obs = np.abs(fit.estimate / fit.se)
    t_obs_n = np.abs(fit.estimate / fit.se_neyman)
    hits = np.zeros_like(t_obs)
    hits_n = np.zeros_like(t_obs)
    for _ in range(n_perm):
        draw = _fit(design, rng.permutation(code), beta_fixed=beta_fixed, full=False)
        with np.errstate(divide="ignore", invalid="ignore"):
            hits += np.abs(draw.estimate / draw.se) >= t_obs
            hits_n += np.abs(draw.estimate / draw.se_neyman) >= t_obs_n
    return (1 + hits) / (1 + n_perm), (1 + hits_n) / (1 + n_perm)
