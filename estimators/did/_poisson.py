"""Poisson pseudo-maximum likelihood (PPML) difference-in-differences for counts.

Estimand
--------
``E[y_it | ...] = N_it exp(alpha_i + lambda_t + tau D_it + X_it' gamma)`` with exposure ``N_it``
(population by default). ``exp(tau)`` is the ratio of the treated units' post-period event rate to the
rate they would have had without treatment, under parallel trends in *log* rates (ratio parallel
trends). PPML needs only the conditional mean to be right (no equidispersion; Santos Silva and
Tenreyro 2006), and keeps zero counts.

``staggered=True`` is Wooldridge's (2023) extended TWFE: one coefficient ``tau_gt`` per cohort ``g``
and period ``t >= g`` (treated cells), unit and period effects, never-treated and not-yet-treated
observations as the comparison. The aggregated ATT is the average of ``tau_gt`` over treated
observations (weights = treated observations per cell), a log rate ratio, with a delta-method SE.

Fitting: iteratively reweighted least squares with the fixed effects absorbed at each step (weighted
alternating projections), fixest's stopping rule ``|dev - dev_old| / (0.1 + |dev|) < tol``. Units and
periods whose outcome is zero throughout carry no information (their fixed effect is -inf) and are
dropped, as fixest does; the count is recorded on the result's Spec. Variance: CR1 sandwich
``bread = (X~'W X~)^{-1}``, scores ``X~ (y - mu)``, fixest's small-sample factor.

References
----------
Santos Silva, J. M. C. and Tenreyro, S. (2006). The log of gravity. *REStat* 88(4), 641-658.
Wooldridge, J. M. (2023). Simple approaches to nonlinear difference-in-differences with panel data.
*The Econometrics Journal* 26(3), C31-C66.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from decrimkit.errors import ConvergenceError, DataError, DesignError, SpecificationError
from decrimkit.estimators.did._inference import check_inference, randomization, warn_if_few
from decrimkit.estimators.did._ols import collinear_columns
from decrimkit.estimators.did._reg_design import (
    check_covariates,
    cluster_labels,
    no_groups,
    options,
    require_unit_cluster_sides,
    require_variation,
)
from decrimkit.inference.cluster import cluster_adjustment, fixef_dof, sandwich
from decrimkit.inference.randomization import MAX_EXACT
from decrimkit.numerics.demean import demean
from decrimkit.options import Inference
from decrimkit.panel import Panel
from decrimkit.results import Effect, Spec

__all__ = ["PoissonFit", "PoissonResult", "poisson", "ppml"]


class PoissonFit(NamedTuple):
    """coef (p,), vcov (p, p), mu (n,) fitted means, n_params K, n_clusters G, df, iterations, deviance."""

    coef: np.ndarray
    vcov: np.ndarray
    mu: np.ndarray
    n_params: int
    n_clusters: int | None
    df: float
    n_iter: int
    deviance: float


def _deviance(y: np.ndarray, mu: np.ndarray) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(y > 0, y * np.log(y / mu), 0.0)
    return float(2 * np.sum(term - (y - mu)))


def ppml(
    y: np.ndarray,
    x: np.ndarray,
    fixef: Sequence[np.ndarray],
    *,
    names: Sequence[str],
    offset: np.ndarray | None = None,
    cluster: np.ndarray | None = None,
    tol: float = 1e-10,
    max_iter: int = 100,
) -> PoissonFit:
    """Poisson PML of ``y`` on ``x`` (n, p) with absorbed fixed effects and an optional log ``offset``.

    Raises
    ------
    SpecificationError
        Collinear regressors (or regressors absorbed by the fixed effects).
    ConvergenceError
        IRLS did not converge in ``max_iter`` iterations.
    """
    n = len(y)
    off = np.zeros(n) if offset is None else np.asarray(offset, dtype="float64")
    mu = (y + y.mean()) / 2  # fixest's starting values
    eta = np.log(mu)
    last = _deviance(y, mu)
    coef = np.zeros(x.shape[1])
    for it in range(1, max_iter + 1):
        z = eta - off + (y - mu) / mu
        dm = demean(np.column_stack([z, x]), list(fixef), mu, tol=1e-13)
        if not dm.converged:
            raise ConvergenceError(
                "demeaning inside the Poisson IRLS did not converge; check the panel's connectivity."
            )
        zd, xd = dm.values[:, 0], dm.values[:, 1:]
        if it == 1:
            bad = collinear_columns(xd * np.sqrt(mu)[:, None], scale=np.linalg.norm(x * np.sqrt(mu)[:, None], axis=0))
            if bad:
                raise SpecificationError(
                    f"regressor(s) {', '.join(repr(names[j]) for j in bad)} are collinear with other regressors "
                    f"or the fixed effects; the coefficient is not identified. Drop them."
                )
        xw = xd * mu[:, None]
        coef = np.linalg.solve(xw.T @ xd, xw.T @ zd)
        resid = zd - xd @ coef
        eta = z - resid + off
        mu = np.exp(eta)
        dev = _deviance(y, mu)
        crit = abs(dev - last) / (0.1 + abs(dev))
        last = dev
        if crit < tol:
            break
    else:
        raise ConvergenceError(f"Poisson IRLS did not converge in {max_iter} iterations (last change {crit:.2e}).")
    # final weighted demeaning at the converged means for the variance
    xd = demean(x, list(fixef), mu, tol=1e-13).values.reshape(n, -1)
    bread = np.linalg.inv(xd.T @ (xd * mu[:, None]))
    scores = xd * (y - mu)[:, None]
    if cluster is not None:
        k = fixef_dof(x.shape[1], list(fixef), cluster)
        g = len(np.unique(cluster))
        v = sandwich(bread, scores, cluster, cluster_adjustment(n, k, g))
        df = float(g - 1)
    else:
        k = fixef_dof(x.shape[1], list(fixef), None)
        g = None
        v = sandwich(bread, scores, None, n / (n - k))
        df = float(n - k)
    return PoissonFit(coef, v, mu, k, g, df, it, last)


@dataclass(frozen=True, repr=False)
class PoissonResult(Effect):
    """Log rate ratios per term; ``rate_ratio``, ``rate_ratio_se`` (delta method) and their intervals.

    With ``staggered=True`` the labels are ``ATT`` (aggregated) then ``g=<cohort>,t=<period>`` cells.
    """

    scale: str = "log rate ratio"
    title: str = "Poisson (PPML) DiD"

    @property
    def rate_ratio(self) -> np.ndarray:
        return np.exp(self.estimate)

    @property
    def rate_ratio_se(self) -> np.ndarray:
        """Delta-method SE of exp(coef): exp(coef) * se."""
        return np.exp(self.estimate) * self.se

    def rate_ratio_conf_int(self, alpha: float = 0.05) -> np.ndarray:
        """exp() of the log-scale interval (not symmetric around the rate ratio)."""
        return np.exp(self._interval(alpha))

    def tidy(self, alpha: float = 0.05) -> pd.DataFrame:
        out = super().tidy(alpha)
        ci = self.rate_ratio_conf_int(alpha)
        out["rate_ratio"], out["rate_ratio_se"] = self.rate_ratio, self.rate_ratio_se
        out["rr_conf_low"], out["rr_conf_high"] = ci[:, 0], ci[:, 1]
        return out


def _drop_all_zero(panel: Panel, y: np.ndarray) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Boolean row mask keeping units and periods with some positive count, and what was dropped."""
    keep = np.ones(len(y), dtype=bool)
    excluded = []
    for codes, what in ((panel.unit_index, "units"), (panel.time_index, "periods")):
        totals = np.bincount(codes[keep], weights=y[keep], minlength=codes.max() + 1)
        zero = (totals == 0) & (np.bincount(codes[keep], minlength=codes.max() + 1) > 0)
        if zero.any():
            drop = keep & zero[codes]
            excluded.append(
                (int(drop.sum()), f"{int(zero.sum())} {what} with zero counts in every row (PPML separation)")
            )
            keep &= ~zero[codes]
    return keep, excluded


def poisson(
    panel: Panel,
    *,
    exposure: str | None = "population",
    covariates: Sequence[str] = (),
    cluster: str | None = "unit",
    staggered: bool = False,
    tol: float = 1e-10,
    inference: Inference = "cluster",
    n_perm: int = 999,
    max_exact: int = MAX_EXACT,
    seed: int = 0,
) -> PoissonResult:
    """PPML DiD for counts with unit and period effects, reported as log rate ratios and rate ratios.

    Parameters
    ----------
    panel : Panel
        Counts as the outcome, one row per unit and period.
    exposure : {"population", None}
        Offset ``log(population)`` (rates per person); None models counts without exposure.
    covariates : sequence of str
        Time-varying covariates declared on the panel.
    cluster : {"unit", "time"} or None
        CR1 cluster level (None: heteroskedasticity-robust).
    staggered : bool
        Wooldridge's extended TWFE with cohort-by-period effects and an aggregated ATT.
    tol : float
        IRLS convergence tolerance on the relative deviance change.
    inference : {"cluster", "randomization"}
        ``"randomization"``: p-value of the first row (``treated`` or the aggregated ``ATT``) from
        reassigning the adoption dates across units (exact when at most ``max_exact`` assignments, else
        ``n_perm`` draws from ``seed``), testing the sharp null of no effect. PPML is not linear in the
        outcome, so no interval is inverted (NaN); Conley-Taber, Ferman-Pinto and the wild bootstrap are
        not available for it.

    Returns
    -------
    PoissonResult
        ``estimate`` and ``se`` on the log scale, ``rate_ratio`` etc.; first label ``treated`` (or ``ATT``).

    Raises
    ------
    DataError
        Negative counts, every count zero, or exposure requested without population.
    SpecificationError, DesignError, ConvergenceError
        Collinear covariates, no comparison units, a single cluster, non-convergence.

    Notes
    -----
    Estimand: ``tau`` in ``E[y_it] = N_it exp(alpha_i + lambda_t + tau D_it + X_it' gamma)``; ``exp(tau)`` is
    the ratio of the treated units' post-period rate to their untreated counterfactual rate
    (``staggered=True``: Wooldridge's cohort-by-period ``tau_gt``, averaged over treated observations).
    Assumptions: parallel trends in log rates, no anticipation, a correctly specified conditional mean
    (no equidispersion needed).

    References
    ----------
    Santos Silva, J. M. C. and Tenreyro, S. (2006). The log of gravity. *REStat* 88(4), 641-658.
    Wooldridge, J. M. (2023). Simple approaches to nonlinear difference-in-differences with panel data.
    *The Econometrics Journal* 26(3), C31-C66.

    Examples
    --------
    >>> from decrimkit import Panel
    >>> from decrimkit.datasets import load_dataset
    >>> from decrimkit.estimators import did
    >>> df = load_dataset("castle_doctrine")
    >>> panel = Panel.from_frame(df, unit="state", time="year", outcome="homicide_c", cohort="effyear",
    ...                          population="population")
    >>> res = did.poisson(panel)
    >>> bool(res.rate_ratio[0] > 1)
    True
    """
    how = check_inference(inference, "poisson", ("cluster", "randomization"))
    no_groups(panel, "poisson")
    covariates = check_covariates(panel, covariates)
    require_variation(panel, "poisson")
    if exposure not in ("population", None):
        raise SpecificationError(f"exposure={exposure!r} is not allowed; use 'population' or None.")
    y = panel.y
    if (y < 0).any():
        raise DataError("poisson needs non-negative counts; the outcome has negative values.")
    if exposure == "population" and not panel.has_population:
        raise DataError("exposure='population' needs a panel built with population=; or pass exposure=None.")
    frame = panel.frame
    if staggered:
        x, names, cells = _etwfe_design(panel)
    else:
        x, names, cells = frame["d"].to_numpy(dtype="float64")[:, None], ["treated"], None
    if covariates:
        x = np.column_stack([x] + [frame[c].to_numpy() for c in covariates])
        names = list(names) + list(covariates)
    keep, excluded = _drop_all_zero(panel, y)
    if not keep.any():
        raise DataError(
            "poisson: every count in the outcome is zero, so every unit and period would be dropped (PPML "
            "separation) and nothing can be estimated. Check that the outcome column holds the counts."
        )
    ever_treated = np.isfinite(frame["g"].to_numpy(dtype="float64"))
    if ever_treated.any() and not (keep & ever_treated).any():
        raise DesignError(
            "poisson: every treated unit has a zero count in every period, and PPML drops such units (their fixed "
            "effect is -inf: separation), so no treated unit is left and the rate ratio is not identified. A "
            "log-linear count model cannot estimate an effect for units without events; use a linear model of "
            "the rate (did.twfe, did.att_gt) or a larger area."
        )
    offset = np.log(frame["population"].to_numpy()) if exposure == "population" else None
    clus = cluster_labels(panel, cluster)
    fit = ppml(
        y[keep],
        x[keep],
        [panel.unit_index[keep], panel.time_index[keep]],
        names=names,
        offset=None if offset is None else offset[keep],
        cluster=None if clus is None else clus[keep],
        tol=tol,
    )
    labels, est, vcov = list(names), fit.coef, fit.vcov
    if staggered:
        n_cells = len(cells)
        w = np.zeros(len(est))
        w[:n_cells] = cells / cells.sum()
        att = float(w @ est)
        full = np.vstack([w, np.eye(len(est))])
        vcov = full @ fit.vcov @ full.T
        labels, est = ["ATT"] + labels, np.concatenate([[att], est])
    require_unit_cluster_sides(panel, cluster, how)
    warn_if_few(panel, "poisson", how)
    few = None
    if how == "randomization":

        # the reassigned panels' estimates only: cluster=None (no cluster-robust variance, so the few-clusters
        # rule that would refuse every one-treated-unit refit does not apply; the estimate does not depend on it)
        def refit(p: Panel) -> np.ndarray:
            return poisson(p, exposure=exposure, covariates=covariates, cluster=None, staggered=staggered,
                           tol=tol).estimate[:1]

        # units with a zero count in every period are dropped by PPML under any assignment (separation): they are
        # outside the estimator's sample, so the reassignments run over the units it keeps
        zero = np.bincount(panel.unit_index, weights=y, minlength=panel.n_units) == 0
        pool = panel if not zero.any() else panel.subset(
            [u for u, z in zip(panel.units, zero) if not z],
            reason="units with zero counts in every row (PPML separation), left out of the reassignments")
        few = randomization(pool, refit, n_perm=n_perm, max_exact=max_exact, seed=seed, rows=(0,), linear=False)
    spec = Spec(
        estimator="did.poisson",
        seed=None if few is None or few.exact else int(seed),
        options=options(exposure=exposure, covariates=covariates, cluster=cluster, staggered=staggered, tol=tol,
                        inference=how),
        n_units=panel.n_units,
        n_periods=panel.n_periods,
        n_obs=int(keep.sum()),
        excluded=panel.excluded + tuple(excluded),
        notes=(f"IRLS converged in {fit.n_iter} iterations; K={fit.n_params}",),
    )
    return PoissonResult(label=tuple(labels), estimate=est, se=np.sqrt(np.diag(vcov)), spec=spec, vcov=vcov, df=fit.df,
                         inference=few)


def _etwfe_design(panel: Panel) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Cohort-by-period indicators for treated cells (t >= g), names, and treated rows per cell."""
    g, t = panel.g_index, panel.time_index
    treated = np.isfinite(g) & (t >= np.where(np.isfinite(g), g, 0))
    if not treated.any():
        raise DesignError("poisson(staggered=True): no treated cells.")
    cells = sorted({(int(a), int(b)) for a, b in zip(g[treated], t[treated])})
    x = np.column_stack([(treated & (g == a) & (t == b)).astype("float64") for a, b in cells])
    names = [f"g={panel.time_label(a)},t={panel.time_label(b)}" for a, b in cells]
    return x, names, x.sum(axis=0)
