"""Sun and Abraham (2021) interaction-weighted event-study estimator.

Estimand
--------
The cohort-specific average treatment effects ``CATT(g, e)`` (cohort ``g``, ``e`` periods after
adoption), estimated in one regression saturated in cohort-by-event-time indicators with unit and period
effects, the reference event time ``-1`` left out for every cohort and the never-treated units as the
comparison (fixest's ``sunab()``; pyfixest's saturated event study). When there are no never-treated
units the last-treated cohort is the comparison and its periods from adoption on are dropped (recorded
on the Spec), as Sun and Abraham recommend.

The event-time effects are the interaction-weighted averages ``beta_e = sum_g w_{g,e} CATT(g, e)`` with
``w_{g,e}`` the share of cohort ``g`` among the observations at event time ``e``; the overall ATT is
the average of ``CATT(g, e)`` over post-adoption cells (``e >= 0``) weighted by their numbers of
observations (fixest's ``agg = "ATT"``). Standard errors by the delta method from the CR1 variance.

Assumptions: parallel trends between every cohort and the comparison group, no anticipation.
Unlike the dynamic TWFE coefficients, ``beta_e`` is not contaminated by other periods' effects when
effects differ across cohorts.

References
----------
Sun, L. and Abraham, S. (2021). Estimating dynamic treatment effects in event studies with
heterogeneous treatment effects. *Journal of Econometrics* 225(2), 175-199.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from decrimkit.errors import DesignError
from decrimkit.estimators.did._event_study import EventStudyResult, relative_time, sup_t_critical
from decrimkit.estimators.did._inference import warn_if_few
from decrimkit.estimators.did._ols import fe_ols
from decrimkit.estimators.did._reg_design import (
    check_alpha,
    check_covariates,
    cluster_labels,
    no_groups,
    options,
    require_unit_cluster_sides,
    require_variation,
    row_weights,
)
from decrimkit.panel import Panel
from decrimkit.results import Spec, frozen_array

__all__ = ["SunAbrahamResult", "sun_abraham"]


@dataclass(frozen=True, repr=False)
class SunAbrahamResult(EventStudyResult):
    """Interaction-weighted event-time effects; ``overall`` is (ATT, se); ``cohort_effects`` the CATT(g, e)."""

    cohort_effects: pd.DataFrame | None = None
    att_weights: np.ndarray | None = None
    title: str = "Sun-Abraham interaction-weighted event study"

    @property
    def att(self) -> float:
        return float(self.overall[0])  # type: ignore[index]

    @property
    def att_se(self) -> float:
        return float(self.overall[1])  # type: ignore[index]


def sun_abraham(
    panel: Panel,
    *,
    reference: int = -1,
    covariates: Sequence[str] = (),
    cluster: str | None = "unit",
    weights: str | None = None,
    alpha: float = 0.05,
    seed: int = 0,
) -> SunAbrahamResult:
    """Sun-Abraham event-study effects from a cohort-by-event-time saturated TWFE regression.

    Parameters
    ----------
    panel : Panel
        One row per unit and period, absorbing treatment (cohorts).
    reference : int
        Event time left out for every cohort (default -1).
    covariates, cluster, weights
        As in :func:`did.twfe`.
    alpha, seed
        Level and seed of the sup-t simultaneous band.

    Returns
    -------
    SunAbrahamResult
        Event-time ``estimate``/``se``, ``overall`` = (ATT, se), ``cohort_effects`` (cohort, event_time,
        estimate, se, n_obs, weight), ``pretest()`` and ``plot()``.

    Raises
    ------
    DesignError
        Only one cohort and no never-treated units; no pre-period at the reference.
    SpecificationError
        Collinear or undeclared covariates, unknown options.

    Notes
    -----
    Estimand: the cohort-specific effects ``CATT(g, e)`` from a regression saturated in cohort-by-event-time
    indicators, aggregated to ``beta_e = sum_g w_{g,e} CATT(g, e)`` (cohort shares at event time ``e``) and an
    overall ATT over post-adoption cells. Assumptions: parallel trends between every cohort and the
    comparison group (never treated, or the last-treated cohort), no anticipation.

    References
    ----------
    Sun, L. and Abraham, S. (2021). Estimating dynamic treatment effects in event studies with
    heterogeneous treatment effects. *Journal of Econometrics* 225(2), 175-199.

    Examples
    --------
    >>> from decrimkit import Panel
    >>> from decrimkit.datasets import load_dataset
    >>> from decrimkit.estimators import did
    >>> df = load_dataset("mpdta")
    >>> panel = Panel.from_frame(df, unit="countyreal", time="year", outcome="lemp", cohort="first.treat")
    >>> res = did.sun_abraham(panel)
    >>> res.att < 0
    True
    """
    alpha = check_alpha(alpha)
    no_groups(panel, "sun_abraham")
    covariates = check_covariates(panel, covariates)
    require_variation(panel, "sun_abraham")
    g_all = panel.g_index
    t = panel.time_index
    keep = ~(np.isfinite(g_all) & (g_all <= 0))  # always-treated units have no pre-period
    excluded = []
    if (~keep).any():
        excluded.append((int((~keep).sum()), "always-treated units (treated in the first period)"))
    notes = []
    if not (~np.isfinite(g_all)).any():
        g_last = float(np.max(g_all[keep]))
        drop = keep & (t >= g_last)
        if len(np.unique(g_all[keep])) < 2:
            raise DesignError("sun_abraham: one cohort and no never-treated units leave no comparison group.")
        keep &= ~drop
        excluded.append(
            (int(drop.sum()), f"periods from {panel.time_label(g_last)} on (last-treated cohort is the comparison)")
        )
        notes.append(f"no never-treated units: cohort {panel.time_label(g_last)} is the comparison group")
        control = np.isfinite(g_all) & (g_all == g_last)
    else:
        control = ~np.isfinite(g_all)
    e = relative_time(panel)
    treated_rows = keep & ~control
    cells = sorted({(int(a), int(b)) for a, b in zip(g_all[treated_rows], e[treated_rows]) if int(b) != reference})
    if not (treated_rows & (e == reference)).any():
        raise DesignError(f"sun_abraham: no treated unit is observed at the reference event time {reference}.")
    x = np.column_stack([(treated_rows & (g_all == a) & (e == b)).astype("float64") for a, b in cells])
    frame = panel.frame
    if covariates:
        x = np.column_stack([x] + [frame[c].to_numpy() for c in covariates])
    names = tuple(f"g={panel.time_label(a)},e={b}" for a, b in cells) + covariates
    w = row_weights(panel, weights)
    require_unit_cluster_sides(panel, cluster, "cluster")
    clus = cluster_labels(panel, cluster)
    fit = fe_ols(
        panel.y[keep],
        x[keep],
        [panel.unit_index[keep], t[keep]],
        names=names,
        weights=None if w is None else w[keep],
        cluster=None if clus is None else clus[keep],
        vcov="cluster" if cluster is not None else "hetero",
    )
    m = len(cells)
    coef, vcov = fit.coef[:m], fit.vcov[:m, :m]
    counts = x[keep][:, :m].sum(axis=0)
    cell_e = np.array([b for _, b in cells])
    times = np.unique(cell_e)
    agg = np.zeros((len(times), m))
    for i, k in enumerate(times):
        sel = cell_e == k
        agg[i, sel] = counts[sel] / counts[sel].sum()
    post = cell_e >= 0
    att_w = np.where(post, counts, 0.0) / counts[post].sum()
    est, v_es = agg @ coef, agg @ vcov @ agg.T
    att, att_se = float(att_w @ coef), float(np.sqrt(att_w @ vcov @ att_w))
    cohort_effects = pd.DataFrame(
        {
            "cohort": [panel.time_label(a) for a, _ in cells],
            "event_time": cell_e,
            "estimate": coef,
            "se": np.sqrt(np.diag(vcov)),
            "n_obs": counts.astype(int),
            "weight": agg.sum(axis=0),
        }
    )
    spec = Spec(
        estimator="did.sun_abraham",
        options=options(reference=reference, covariates=covariates, cluster=cluster, weights=weights),
        seed=seed,
        n_units=panel.n_units,
        n_periods=panel.n_periods,
        n_obs=int(keep.sum()),
        excluded=panel.excluded + tuple(excluded),
        notes=tuple(notes) + (f"{m} cohort x event-time cells",),
    )
    # the estimate rests on the units of the treated cohorts (the comparison cohort excluded)
    warn_if_few(panel, "sun_abraham", "cluster", n_treated=np.unique(panel.unit_index[treated_rows]).size)
    return SunAbrahamResult(
        label=tuple(int(k) for k in times),
        estimate=est,
        se=np.sqrt(np.diag(v_es)),
        spec=spec,
        vcov=v_es,
        df=fit.df,
        crit=sup_t_critical(v_es, alpha, seed),
        overall=(att, att_se),
        reference=reference,
        cohort_effects=cohort_effects,
        att_weights=frozen_array(att_w),
    )
