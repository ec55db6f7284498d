"""Two-way fixed effects difference-in-differences.

Estimand
--------
The coefficient ``beta`` in ``y_it = alpha_i + lambda_t + beta * D_it + X_it' gamma + e_it`` with
``D_it = 1{t >= g_i}``. With one adoption date (a 2x2 or block design) and parallel trends, ``beta`` is
the ATT. With staggered adoption it is a weighted average of all 2x2 comparisons (Goodman-Bacon 2021;
see :func:`did.bacon`), some of which use already-treated units as controls, so it is biased when
effects change over time; prefer ``att_gt``, ``sun_abraham`` or ``imputation`` there.

Inference: CR1 cluster-robust variance with fixest's small-sample factor (t with G-1 degrees of
freedom), HC1 when ``cluster=None``, or the restricted wild cluster bootstrap (``se_method="wild"``:
p-value and test-inversion interval; the reported SE stays CR1).

References
----------
Goodman-Bacon, A. (2021). Difference-in-differences with variation in treatment timing. *Journal of
Econometrics* 225(2), 254-277.
Cameron, A. C., Gelbach, J. B. and Miller, D. L. (2008). Bootstrap-based improvements for inference
with clustered errors. *REStat* 90(3), 414-427.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from decrimkit.errors import SpecificationError
from decrimkit.estimators.did._ols import FEFit, fe_ols
from decrimkit.estimators.did._reg_design import (
    check_alpha,
    check_covariates,
    cluster_labels,
    no_groups,
    options,
    require_variation,
    row_weights,
)
from decrimkit.inference.cluster import WildBootstrap, wild_cluster_bootstrap
from decrimkit.limits import check_replications
from decrimkit.options import SEMethod, WildWeights, check_option
from decrimkit.panel import Panel
from decrimkit.results import Effect, Spec

__all__ = ["TWFEResult", "twfe"]


@dataclass(frozen=True, repr=False)
class TWFEResult(Effect):
    """TWFE coefficients (``treated`` first, then covariates), with the fit behind them.

    ``wild`` holds the wild cluster bootstrap of the ``treated`` coefficient when requested; then its
    ``p_value`` and ``conf_int`` replace the CR1 ones for that row.
    """

    wild: WildBootstrap | None = None
    alpha_wild: float = 0.05
    title: str = "Two-way fixed effects DiD"

    @property
    def att(self) -> float:
        """The coefficient on the treatment indicator."""
        return float(self.estimate[0])

    @property
    def p_value(self) -> np.ndarray:
        p = np.array(Effect.p_value.fget(self), dtype="float64")  # type: ignore[attr-defined]
        if self.wild is not None:
            p[0] = self.wild.p_value
        return p

    def conf_int(self, alpha: float = 0.05, *, uniform: bool = False) -> np.ndarray:
        ci = Effect.conf_int(self, alpha, uniform=uniform)
        if self.wild is not None and np.isclose(alpha, self.alpha_wild):
            ci[0] = self.wild.conf_int
        return ci


def twfe(
    panel: Panel,
    *,
    covariates: Sequence[str] = (),
    cluster: str | None = "unit",
    weights: str | None = None,
    se_method: SEMethod = "cluster",
    n_boot: int = 9999,
    weights_dist: WildWeights = "rademacher",
    alpha: float = 0.05,
    seed: int = 0,
) -> TWFEResult:
    """Two-way fixed effects DiD: regress the outcome on the treatment indicator with unit and period effects.

    Parameters
    ----------
    panel : Panel
        One row per unit and period; ``d`` (treated from the cohort's first period on) is the regressor.
    covariates : sequence of str
        Time-varying covariates declared on the panel.
    cluster : {"unit", "time"} or None
        Cluster level of the CR1 variance; None gives HC1.
    weights : {None, "weights", "population"}
        Analytic weights: none, the panel's ``weights=`` column, or its population.
    se_method : {"cluster", "wild"}
        ``"wild"`` adds the restricted wild cluster bootstrap for the treatment coefficient.
    n_boot, weights_dist, alpha, seed
        Bootstrap draws, weight distribution (``"rademacher"`` or ``"webb"``), interval level and seed.

    Returns
    -------
    TWFEResult
        ``estimate``/``se`` per term (``treated`` first), ``att``, ``vcov``, ``df`` (G-1), ``wild``.

    Raises
    ------
    SpecificationError
        Unknown options, undeclared or collinear covariates, a grouped panel.
    DesignError
        No treated or untreated observations, no comparison units, a single cluster.

    Notes
    -----
    Estimand: ``beta`` in ``y_it = alpha_i + lambda_t + beta D_it + X_it' gamma + e_it``. With a single
    adoption date and parallel trends (and no anticipation) ``beta`` is the ATT; with staggered adoption it
    is a weighted average of 2x2 comparisons, some using already-treated units as controls, and is biased
    when effects change over time (see :func:`bacon`; prefer ``att_gt``, ``sun_abraham`` or ``imputation``).

    References
    ----------
    Goodman-Bacon, A. (2021). Difference-in-differences with variation in treatment timing. *Journal of
    Econometrics* 225(2), 254-277.
    Cameron, A. C., Gelbach, J. B. and Miller, D. L. (2008). Bootstrap-based improvements for inference
    with clustered errors. *REStat* 90(3), 414-427.

    Examples
    --------
    >>> from decrimkit import Panel
    >>> from decrimkit.datasets import load_dataset
    >>> from decrimkit.estimators import did
    >>> df = load_dataset("castle_doctrine")
    >>> panel = Panel.from_frame(df, unit="state", time="year", outcome="l_homicide", cohort="effyear")
    >>> round(did.twfe(panel).att, 4)
    0.0818
    """
    alpha = check_alpha(alpha)
    check_option("se_method", se_method, SEMethod)
    check_option("weights_dist", weights_dist, WildWeights)
    check_replications("n_boot", n_boot)
    no_groups(panel, "twfe")
    covariates = check_covariates(panel, covariates)
    require_variation(panel, "twfe")
    if se_method == "wild" and cluster is None:
        raise SpecificationError("se_method='wild' needs a cluster level (cluster='unit' or 'time').")
    fit = _fit(panel, covariates, cluster, weights)
    wild = None
    if se_method == "wild":
        wild = wild_cluster_bootstrap(
            fit.x,
            fit.y,
            cluster_labels(panel, cluster),
            coef=0,
            weights=fit.weights,
            n_params=fit.n_params,
            n_boot=n_boot,
            weights_dist=weights_dist,
            seed=seed,
            alpha=alpha,
        )
    spec = Spec(
        estimator="did.twfe",
        options=options(
            covariates=covariates,
            cluster=cluster,
            weights=weights,
            se_method=se_method,
            n_boot=n_boot if se_method == "wild" else None,
            weights_dist=weights_dist if se_method == "wild" else None,
        ),
        seed=seed if se_method == "wild" else None,
        n_units=panel.n_units,
        n_periods=panel.n_periods,
        n_obs=panel.n_obs,
        excluded=panel.excluded,
        notes=_notes(fit, cluster),
    )
    return TWFEResult(
        label=fit.names,
        estimate=fit.coef,
        se=np.sqrt(np.diag(fit.vcov)),
        spec=spec,
        vcov=fit.vcov,
        df=fit.df,
        wild=wild,
        alpha_wild=alpha,
    )


def _fit(panel: Panel, covariates: tuple[str, ...], cluster: str | None, weights: str | None) -> FEFit:
    frame = panel.frame
    x = np.column_stack([frame["d"].to_numpy(dtype="float64")] + [frame[c].to_numpy() for c in covariates])
    return fe_ols(
        panel.y,
        x,
        [panel.unit_index, panel.time_index],
        names=("treated", *covariates),
        weights=row_weights(panel, weights),
        cluster=cluster_labels(panel, cluster),
        vcov="cluster" if cluster is not None else "hetero",
    )


def _notes(fit: FEFit, cluster: str | None) -> tuple[str, ...]:
    if cluster is None:
        return (f"HC1 variance, K={fit.n_params}",)
    return (f"CR1 variance clustered by {cluster}: G={fit.n_clusters}, K={fit.n_params}, t({fit.df:g})",)
