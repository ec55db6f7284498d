"""Callaway and Sant'Anna (2021) group-time average treatment effects, ATT(g,t).

Estimand
--------
For the cohort first treated in period ``g`` and a period ``t``,
``ATT(g,t) = E[Y_t(g) - Y_t(0) | G = g]``. Each is identified by one 2x2 comparison of the change in
the outcome from a base period to ``t`` between cohort ``g`` and a comparison group: never-treated
units (``control="never"``) or units not yet treated by ``max(t, base) + anticipation``
(``control="notyet"``). Post-treatment cells (``t >= g``) use the base period ``g - anticipation - 1``;
pre-treatment cells use ``t - 1`` (``base_period="varying"``, placebo effects of short differences)
or ``g - anticipation - 1`` too (``"universal"``, where the base cell is normalised to zero).

Assumptions: staggered adoption (treatment stays on), no anticipation beyond ``anticipation`` periods,
parallel trends conditional on the covariates (measured at the earlier of the two periods of a cell),
overlap, and a balanced panel.

Inference: every cell keeps its per-unit influence function (``influence``, (n_units, K)), from which
analytic standard errors, the Wald pre-test, aggregations (:meth:`AttGt.aggregate`, like R's ``aggte``)
and a Mammen multiplier bootstrap with sup-t simultaneous bands follow without refitting.

This reproduces R ``did`` 2.5 (``att_gt`` with ``panel = TRUE``) on balanced panels; the 2x2 estimators
are those of ``DRDID`` (see :mod:`decrimkit.estimators.did._drdid`). Where R drops data with a warning
(units treated in the first period, cells that fail overlap) decrimkit raises a named error instead.

References
----------
Callaway, B. and Sant'Anna, P. H. C. (2021). Difference-in-differences with multiple time periods.
*Journal of Econometrics* 225(2), 200-230.
Sant'Anna, P. H. C. and Zhao, J. (2020). Doubly robust difference-in-differences estimators.
*Journal of Econometrics* 219(1), 101-122.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

from decrimkit.errors import DesignError, SpecificationError
from decrimkit.estimators.did._aggte import (
    Aggregated,
    BootDraws,
    aggregate_cells,
    analytic_se,
    bootstrap_cells,
    cohort_basis,
    cohort_shares,
)
from decrimkit.estimators.did._cs_cells import att_gt_point_kernel, cell_estimates, check_fit, treated_linear_map
from decrimkit.estimators.did._cs_design import CellDesign, cell_design
from decrimkit.estimators.did._cs_randomization import cell_draws
from decrimkit.estimators.did._drdid import METHODS
from decrimkit.estimators.did._inference import check_inference, randomization, residual, warn_if_few, with_outcome
from decrimkit.inference.bootstrap import Multipliers, summarise_draws
from decrimkit.inference.randomization import MAX_EXACT, RandomizationInference
from decrimkit.limits import check_replications
from decrimkit.numerics.keys import key_from_seed
from decrimkit.options import Aggregation, BasePeriod, Control, DRMethod, Inference, check_option
from decrimkit.panel import Panel
from decrimkit.results import TIDY_COLUMNS, Effect, Spec, Summarised, frozen_array, p_clause, stack_labels, tidy_frame

__all__ = ["att_gt", "AttGt", "StaggeredEffect", "WaldTest"]

_DEGENERATE = np.sqrt(np.finfo(float).eps) * 10


class WaldTest(NamedTuple):
    """Wald pre-test of ATT(g,t) = 0 for all pre-treatment cells: statistic W, df, p_value."""

    statistic: float
    df: int
    p_value: float


@dataclass(frozen=True, repr=False)
class StaggeredEffect(Effect):
    """Aggregated effects (event time, cohort, calendar period or overall) from an :class:`AttGt`.

    Adds to :class:`~decrimkit.results.Effect`: ``influence`` (n_units, k) per-unit influence functions,
    ``boot_se`` (k,) multiplier-bootstrap standard errors (NaN when ``n_boot=0``), ``overall_influence``
    (n_units,) and ``overall_boot_se``. ``crit`` is the sup-t critical value; simultaneous bands are
    ``estimate +- crit * boot_se`` as in R ``did``.
    """

    influence: np.ndarray | None = None
    boot_se: np.ndarray | None = None
    overall_influence: np.ndarray | None = None
    overall_boot_se: float = float("nan")
    kind: str = "dynamic"

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("influence", "boot_se", "overall_influence"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, frozen_array(value))

    def _interval(self, alpha: float = 0.05, *, uniform: bool = False) -> np.ndarray:
        """(k, 2) pointwise intervals, or the sup-t simultaneous band (``uniform=True``)."""
        if uniform and self.crit is not None and self.boot_se is not None:
            half = self.crit * self.boot_se
            return np.column_stack([self.estimate - half, self.estimate + half])
        return super()._interval(alpha, uniform=uniform)

    def tidy(self, alpha: float = 0.05) -> pd.DataFrame:
        out = super().tidy(alpha)
        if self.boot_se is not None:
            out.insert(len(TIDY_COLUMNS), "boot_se", self.boot_se)
        return out


@dataclass(frozen=True, repr=False)
class AttGt(Summarised):
    """Group-time ATTs with per-unit influence functions. Build with :func:`att_gt`.

    Arrays (read-only): ``estimate``, ``se`` (analytic), ``boot_se`` (multiplier bootstrap; NaN if
    ``n_boot=0``), (K,); ``influence`` (n_units, K). ``group`` and ``time`` are the cohort and period
    labels of each cell; ``crit`` the sup-t critical value for simultaneous bands over all cells.
    """

    group: tuple[Any, ...]
    time: tuple[Any, ...]
    estimate: np.ndarray
    se: np.ndarray
    boot_se: np.ndarray
    influence: np.ndarray
    crit: float | None
    spec: Spec
    design: CellDesign = field(repr=False)
    title: str = "Group-time average treatment effects (Callaway & Sant'Anna)"
    boot: BootDraws | None = field(default=None, repr=False)
    # few-treated inference over the cells: K cell columns, then the G cohort shares of each draw
    inference: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for name in ("estimate", "se", "boot_se", "influence"):
            object.__setattr__(self, name, frozen_array(getattr(self, name)))

    @property
    def n_units(self) -> int:
        return int(self.influence.shape[0])

    @property
    def vcov(self) -> np.ndarray:
        """(K, K) analytic variance of the ATT(g,t) estimates, ``psi' psi / n**2``."""
        return self.influence.T @ self.influence / self.n_units**2

    @property
    def att(self) -> pd.DataFrame:
        """One row per cell: group, time, event_time, estimate, se [, boot_se, band_low, band_high]."""
        out = pd.DataFrame({
            "group": list(self.group),
            "time": list(self.time),
            "event_time": self.design.tpos - self.design.gpos,
            "estimate": self.estimate,
            "se": self.se,
        })
        if self.crit is not None:
            out["boot_se"] = self.boot_se
            out["band_low"] = self.estimate - self.crit * self.boot_se
            out["band_high"] = self.estimate + self.crit * self.boot_se
        return out

    @property
    def terms(self) -> tuple[str, ...]:
        """One label per cell, ``"g=<cohort>,t=<period>"``."""
        return tuple(f"g={g},t={t}" for g, t in zip(self.group, self.time))

    def tidy(self, alpha: float = 0.05) -> pd.DataFrame:
        """:data:`~decrimkit.results.TIDY_COLUMNS` per cell (term ``g=<cohort>,t=<period>``), then group, time,
        event_time [, boot_se, band_low, band_high] and post. Pointwise normal intervals and p-values from
        the analytic standard errors, or the few-treated method's when ``inference=`` chose one."""
        cells = self.att
        k = len(self.estimate)
        if self.inference is not None:
            ci = self.inference.conf_int(alpha)[:k]
            p, method = self.inference.p_value()[:k], self.inference.method
        else:
            q = stats.norm.ppf(1 - alpha / 2)
            ci = np.column_stack([self.estimate - q * self.se, self.estimate + q * self.se])
            with np.errstate(divide="ignore", invalid="ignore"):
                p = np.where(self.se > 0, 2 * stats.norm.sf(np.abs(self.estimate / self.se)), np.nan)
            method = "normal"
        out = tidy_frame(self.terms, self.estimate, self.se, ci[:, 0], ci[:, 1], p, method)
        for c in cells.columns.drop(["estimate", "se"]):
            out[c] = cells[c].to_numpy()
        out["post"] = self.design.tpos >= self.design.gpos
        return out

    def pretest(self) -> WaldTest:
        """Wald test that every pre-treatment ATT(g,t) is zero (R ``did``'s ``W``, ``Wpval``).

        Raises
        ------
        DesignError
            When there are no pre-treatment cells, when there are at least as many cells as units (or
            clusters), or when their covariance matrix is singular.
        """
        pre = np.flatnonzero((self.design.gpos > self.design.tpos) & (self.se > _DEGENERATE))
        if pre.size == 0:
            raise DesignError("there are no pre-treatment ATT(g,t) cells to test; the pre-test needs periods "
                              "before the earliest cohort's base period.")
        # the covariance is estimated from mean-zero unit (cluster) influence functions, so its rank is at most
        # G - 1: with df >= G it is singular, and rounding can hide that from the condition number below,
        # leaving an arbitrarily large W (R's did reports it)
        cluster = self.design.cluster
        n_groups = self.design.n_units if cluster is None else len(np.unique(cluster))
        if pre.size >= n_groups:
            what = "units" if cluster is None else "clusters"
            raise DesignError(f"the Wald pre-test would test {pre.size} pre-treatment ATT(g,t) cells with {n_groups} "
                              f"{what}: their covariance, estimated from the {what}' influence functions, has rank "
                              f"below {pre.size}, so W is not defined. Test fewer cells, e.g. the event-study "
                              f"aggregate's pre-periods (aggregate('dynamic') and honest()), or inspect .att.")
        v = self.vcov[np.ix_(pre, pre)]
        if 1 / np.linalg.cond(v) <= np.finfo(float).eps:
            raise DesignError("the covariance matrix of the pre-treatment ATT(g,t) is singular; the Wald pre-test "
                              "is not defined. Inspect the pre-treatment cells with .att.")
        a = self.estimate[pre]
        w = float(a @ np.linalg.solve(v, a))
        return WaldTest(statistic=w, df=int(pre.size), p_value=float(stats.chi2.sf(w, pre.size)))

    def aggregate(
        self,
        kind: Aggregation = "dynamic",
        *,
        min_e: float = -np.inf,
        max_e: float = np.inf,
        balance_e: int | None = None,
    ) -> StaggeredEffect:
        """Aggregate the ATT(g,t) into event-time, cohort, calendar or overall effects (R ``aggte``).

        Parameters
        ----------
        kind : {"simple", "dynamic", "group", "calendar"}
            ``"simple"``: post-treatment cells weighted by cohort size; ``"dynamic"``: by event time
            ``e = t - g`` (overall = mean over ``e >= 0``); ``"group"``: by cohort (overall weighted by
            cohort size); ``"calendar"``: by period (overall = mean over periods).
        min_e, max_e : float
            Event-time window (``max_e`` also limits the other aggregations, as in R).
        balance_e : int, optional
            Keep only cohorts observed for at least ``balance_e`` periods after treatment (dynamic).

        Returns
        -------
        StaggeredEffect
            Components with analytic (and bootstrap) standard errors and the overall effect in ``overall``.
        """
        check_option("kind", kind, Aggregation)
        d = self.design
        if balance_e is not None and (isinstance(balance_e, bool) or not isinstance(balance_e, (int, np.integer))
                                      or balance_e < 0):
            raise SpecificationError(f"balance_e must be a non-negative integer, got {balance_e!r}.")
        basis = cohort_basis(d.g_unit, d.w_unit, np.unique(d.gpos))
        shares = cohort_shares(basis)
        opts = {"kind": kind, "last_period": d.last_period, "min_e": min_e, "max_e": max_e, "balance_e": balance_e}
        try:
            agg: Aggregated = aggregate_cells(self.estimate, self.influence, d.gpos, d.tpos, basis, shares, **opts)
        except ValueError as exc:
            raise DesignError(f"cannot aggregate ({kind}): {exc}. Widen min_e/max_e or drop balance_e.") from exc
        se = analytic_se(agg.inf)
        se = np.where(se > _DEGENERATE, se, np.nan)
        overall_se = float(analytic_se(agg.overall_inf[:, None])[0])
        label_name, labels = {
            "simple": ("term", ()),
            "dynamic": ("event_time", tuple(int(e) for e in agg.labels)),
            "group": ("group", stack_labels(d.times[agg.labels.astype(int)]) if agg.labels.size else ()),
            "calendar": ("time", stack_labels(d.times[agg.labels.astype(int)]) if agg.labels.size else ()),
        }[kind]
        boot_se, crit, overall_boot = None, None, float("nan")
        n_boot = self.spec.options["n_boot"]
        if n_boot and self.boot is not None:
            # the fit's draws, aggregated like the influence functions: no new multipliers, no pass over units
            alpha = self.spec.options["alpha"]
            draws = aggregate_cells(self.estimate, self.boot.cells, d.gpos, d.tpos, self.boot.basis, shares, **opts)
            if agg.inf.shape[1]:
                boot_se, boot_crit = summarise_draws(draws.inf, self.n_units, alpha)
                crit = _usable_crit(boot_crit, alpha)
            overall_boot = float(summarise_draws(draws.overall_inf, self.n_units, alpha)[0][0])
        if kind == "simple":
            labels, est, se_c = ("overall",), np.array([agg.overall]), np.array([overall_se])
            inf = agg.overall_inf[:, None]
            boot_se = np.array([overall_boot]) if n_boot else None
        else:
            est, se_c, inf = agg.estimate, se, agg.inf
        few = None if self.inference is None else self._aggregate_inference(len(est), opts)
        return StaggeredEffect(
            label=labels, estimate=est, se=se_c, spec=self.spec, label_name=label_name, crit=crit,
            overall=(agg.overall, overall_se), influence=inf, boot_se=boot_se,
            overall_influence=agg.overall_inf, overall_boot_se=overall_boot, kind=kind,
            title=f"Aggregated ATT ({kind}), Callaway & Sant'Anna", inference=few,
        )

    def _aggregate_inference(self, k: int, opts: dict[str, Any]) -> Any:
        """The cells' few-treated inference carried through the same aggregation (k components + overall)."""
        d, n_cells = self.design, len(self.estimate)
        groups = np.unique(d.gpos)
        dummy_inf, dummy_basis = np.zeros((1, n_cells)), np.ones((1, groups.size + 1))

        def point(cells: np.ndarray, shares: np.ndarray) -> np.ndarray:
            a = aggregate_cells(cells, dummy_inf, d.gpos, d.tpos, dummy_basis, shares, **opts)
            return np.append(a.estimate, a.overall) if a.estimate.size else np.array([a.overall])

        few = self.inference
        if isinstance(few, RandomizationInference):
            stat = np.array([point(r[:n_cells], r[n_cells:]) for r in few.stat])
            dose = np.array([point(r[:n_cells], s[n_cells:]) for r, s in zip(few.dose, few.stat)])
            return dataclasses.replace(few, stat=stat, dose=dose, rows=tuple(range(k)), overall=True)
        shares = few.estimate[n_cells:]
        draws = np.array([point(r[:n_cells], shares) for r in few.draws])
        return dataclasses.replace(few, estimate=point(few.estimate[:n_cells], shares), draws=draws,
                                   rows=tuple(range(k)), overall=True)

    def summary(self) -> str:
        text = super().summary()
        if self.inference is not None:
            text += (f"\n\np-values and intervals: {self.inference.describe()}\n  null tested: {self.inference.null}"
                     f"\n  assumes: {self.inference.assumes}")
        else:
            text += "\n\np-values and intervals: normal with the (analytic) standard errors shown"
        try:
            w = self.pretest()
        except DesignError:
            return text
        return text + f"\n\npre-test of parallel trends: W = {w.statistic:.4f}, df = {w.df}, {p_clause(w.p_value)}"

    def plot_data(self, kind: str = "att", alpha: float = 0.05) -> pd.DataFrame:
        return self.tidy(alpha)

    def plot(self, kind: str = "att", ax: Any = None, alpha: float = 0.05) -> Any:
        """ATT(g,t) by period, one panel per cohort, with intervals and bands (returns the Figure)."""
        from decrimkit.plotting.staggered import att_gt_plot

        return att_gt_plot(self.plot_data(kind, alpha), ax=ax, title=self.title)


def _usable_crit(crit: float, alpha: float) -> float | None:
    """R ``did``: fall back to pointwise intervals when the sup-t value is missing or below the normal one."""
    if not np.isfinite(crit) or crit < stats.norm.ppf(1 - alpha / 2):
        return None
    return float(crit)


def att_gt(
    panel: Panel,
    *,
    control: Control = "never",
    method: DRMethod = "dr",
    covariates: Sequence[str] = (),
    anticipation: int = 0,
    base_period: BasePeriod = "varying",
    n_boot: int = 999,
    seed: int = 0,
    weights: str | None = None,
    alpha: float = 0.05,
    multipliers: Multipliers = "mammen",
    cluster: str | None = None,
    inference: Inference = "cluster",
    n_perm: int = 999,
    max_exact: int = MAX_EXACT,
) -> AttGt:
    """Group-time average treatment effects of Callaway and Sant'Anna (2021).

    Parameters
    ----------
    panel : Panel
        A balanced panel with a cohort (first treated period) per unit.
    control : {"never", "notyet"}
        Comparison units: never treated, or never treated plus not yet treated (by ``max(t, base)``
        plus ``anticipation``). With ``"notyet"`` and no never-treated unit, periods from the last
        cohort's start (minus anticipation) on are dropped and that cohort serves only as comparison,
        as in R ``did``; the dropped rows are recorded on the result's ``spec``.
    method : {"dr", "ipw", "reg", "dr_imp"}
        Doubly robust (default; ``DRDID::drdid_panel``, what R ``did`` uses), normalised inverse
        probability weighting, outcome regression, or the improved doubly robust estimator of
        Sant'Anna and Zhao (2020, section 3.1; ``DRDID::drdid_imp_panel``: propensity score by inverse
        probability tilting, outcome regression weighted by the fitted odds). Without covariates all
        four coincide.
    covariates : sequence of str
        Panel covariates for conditional parallel trends; time-varying covariates are taken at the
        earlier period of each 2x2 cell (the base period for post-treatment cells), as in R ``did``.
    anticipation : int
        Number of periods before ``g`` in which units may already react.
    base_period : {"varying", "universal"}
        Base period for pre-treatment cells (see the module docstring).
    n_boot : int
        Multiplier bootstrap replicates for bootstrap standard errors and simultaneous bands (0: none).
    seed : int
        Seed of the multipliers; the same seed repeats every bootstrap number.
    weights : str, optional
        A column of ``panel.frame`` with time-invariant sampling weights (default: the panel's
        declared weights, if any, else equal weights).
    alpha : float
        One minus the coverage of intervals and bands.
    multipliers : {"mammen", "rademacher"}
        Multiplier distribution of the bootstrap.
    cluster : str, optional
        A time-invariant column of ``panel.frame`` to cluster the bootstrap at (default: units).
    inference : {"cluster", "randomization", "conley_taber", "ferman_pinto"}
        Where the p-values and pointwise intervals of the cells and of every ``aggregate()`` come from
        (default: the influence-function SEs, normal); see docs/estimators/did/inference.md.
        ``"randomization"`` reassigns the adoption dates across units (exact when at most ``max_exact``
        assignments, else ``n_perm`` seeded draws); ``"conley_taber"``/``"ferman_pinto"`` use the
        never-treated units' residuals. Bootstrap SEs and sup-t bands stay as they are.
    n_perm, max_exact
        Monte Carlo draws and the enumeration limit of the few-treated methods.

    Returns
    -------
    AttGt
        ``.att`` (group, time, estimate, se, ...), ``.aggregate()``, ``.pretest()``, ``.tidy()``, ``.plot()``.

    Raises
    ------
    DesignError
        No usable comparison units, a cohort treated in the first period (or within ``anticipation``
        periods of it), an unbalanced panel, propensity scores without overlap.
    SpecificationError
        Bad option values; covariates without variation or perfectly collinear in a cell.
    ConvergenceError
        The propensity-score logit (or, for ``"dr_imp"``, the inverse-probability-tilting fit) did not
        converge.

    Examples
    --------
    >>> from decrimkit import Panel
    >>> from decrimkit.datasets import load_dataset
    >>> from decrimkit.estimators import did
    >>> mpdta = Panel.from_frame(load_dataset("mpdta"), unit="countyreal", time="year",
    ...                          outcome="lemp", cohort="first.treat")
    >>> gt = did.att_gt(mpdta, n_boot=999, seed=1)
    >>> round(gt.aggregate("simple").overall[0], 4)
    -0.04
    """
    check_option("control", control, Control)
    check_option("method", method, DRMethod)
    how = check_inference(inference, "att_gt", ("cluster", "randomization", "conley_taber", "ferman_pinto"))
    check_option("base_period", base_period, BasePeriod)
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 0 or n_boot == 1:
        raise SpecificationError(f"n_boot must be 0 (no bootstrap) or an integer >= 2, got {n_boot!r}.")
    check_replications("n_boot", n_boot)  # and its memory, in multiplier_draws
    if not 0 < alpha < 1:
        raise SpecificationError(f"alpha must lie strictly between 0 and 1, got {alpha!r}.")
    key = key_from_seed(seed) if n_boot else None
    # dr_imp also fits an outcome regression on the comparison units: same covariate checks as dr

    def design_of(p: Panel, check_clusters: bool) -> CellDesign:
        return cell_design(p, control=control, method="dr" if method == "dr_imp" else method,
                           covariates=tuple(covariates), anticipation=anticipation, base_period=base_period,
                           weights=weights, cluster=cluster, check_clusters=check_clusters)

    design = design_of(panel, how == "cluster")
    att, inf = cell_estimates(design, method)
    se = analytic_se(inf)
    se = np.where(se > _DEGENERATE, se, np.nan)  # R did: a zero SE (the universal base cell) is NA
    boot_se, crit, boot = np.full(att.shape, np.nan), None, None
    if n_boot:
        boot = bootstrap_cells(inf, design, key, int(n_boot), multipliers)
        boot_se, boot_crit = summarise_draws(boot.cells, design.n_units, alpha)
        crit = _usable_crit(boot_crit, alpha)
    spec = Spec(
        estimator="did.att_gt",
        options={"control": control, "method": method, "covariates": tuple(covariates),
                 "anticipation": int(anticipation), "base_period": base_period, "n_boot": int(n_boot),
                 "weights": weights, "alpha": alpha, "multipliers": multipliers, "cluster": cluster,
                 "inference": how},
        seed=seed,
        n_units=design.n_units,
        n_periods=int(design.last_period + 1),
        n_obs=design.n_units * int(design.last_period + 1),
        excluded=panel.excluded + design.excluded,
        notes=design.notes,
    )
    times = design.times
    # keep only what aggregation needs, read-only (the stacked cell inputs are dropped)
    slim = design._replace(**{k: frozen_array(getattr(design, k), dtype=getattr(design, k).dtype)
                              for k in ("gpos", "tpos", "base", "is_base", "w_unit", "g_unit")},
                           y=None, xw=None)
    warn_if_few(panel, "att_gt", how, n_treated=int(np.isfinite(design.g_unit).sum()))
    few = None
    if how != "cluster":
        groups = np.unique(design.gpos)

        # a reassigned or residual-filled panel's fit gives estimates only, no cluster-robust variance, so
        # the few-clusters rule does not apply to it (with one treated unit it would refuse every refit)
        def estimates_of(p: Panel) -> np.ndarray:
            return cell_estimates(design_of(p, False), method)[0]

        def refit(p: Panel) -> np.ndarray:
            design_p = design_of(p, False)
            shares = cohort_shares(cohort_basis(design_p.g_unit, design_p.w_unit, groups))
            return np.concatenate([cell_estimates(design_p, method)[0], shares])

        if how == "randomization":
            batch = None
            if method != "dr_imp":  # every reassignment through the observed design, in batches
                def batch(g_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
                    return cell_draws(design, g_rows, kernel=att_gt_point_kernel, method_index=METHODS.index(method),
                                      check_fit=lambda f, d: check_fit(f, d, method),
                                      covariates=tuple(covariates), method=method)
            few = randomization(panel, refit, n_perm=n_perm, max_exact=max_exact, seed=seed, batch=batch)
        else:
            linear = None
            if design.n_units == panel.n_units and not design.excluded and len(design.times) == panel.n_periods:
                linear = treated_linear_map(  # one fit per treated unit instead of one per (treated, control)
                    design, panel.unit_index, panel.time_index, np.flatnonzero(np.isfinite(design.g_unit)),
                    lambda y: estimates_of(with_outcome(panel, y)))
            few = residual(panel, estimates_of, how, att, covariates=tuple(covariates),
                           n_draws=n_perm, max_exact=max_exact, seed=seed, linear=linear)
            shares = cohort_shares(cohort_basis(design.g_unit, design.w_unit, groups))
            few = dataclasses.replace(few, estimate=np.concatenate([att, shares]),
                                      draws=np.hstack([few.draws, np.zeros((few.draws.shape[0], shares.size))]))
    return AttGt(
        group=stack_labels(times[design.gpos]), time=stack_labels(times[design.tpos]), estimate=att, se=se,
        boot_se=boot_se, influence=inf, crit=crit, spec=spec, design=slim, boot=boot, inference=few,
    )
