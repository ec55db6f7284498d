"""Two-way fixed effects difference-in-differences.

Estimand
--------
The coefficient ``beta`` in ``y_it = alpha_i + lambda_t + beta * D_it + X_it' gamma + e_it`` with
``D_it = 1{t >= g_i}``. With one adoption date (a 2x2 or block design) and parallel trends, ``beta`` is
the ATT. With staggered adoption it is a weighted average of all 2x2 comparisons (Goodman-Bacon 2021;
see :func:`did.bacon`), some of which use already-treated units as controls, so it is biased when
effects change over time; prefer ``att_gt``, ``sun_abraham`` or ``imputation`` there.

Inference (``inference=``, see docs/estimators/did/inference.md): CR1 cluster-robust variance with
fixest's small-sample factor (t with G-1 degrees of freedom), HC1 when ``cluster=None``; for few treated
units the restricted wild cluster bootstrap (``"wild"``, optionally per observation within clusters),
randomization inference (``"randomization"``), Conley-Taber (``"conley_taber"``) or Ferman-Pinto
(``"ferman_pinto"``): p-value and test-inversion interval of the treatment coefficient from the chosen
method at every ``alpha``; the reported SE stays CR1.

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
from decrimkit.estimators.did._inference import check_inference, randomization, residual, warn_if_few
from decrimkit.estimators.did._ols import FEFit, fe_ols, linear_map
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
from decrimkit.estimators.did._twfe_perm import permutation_batch
from decrimkit.inference.randomization import MAX_EXACT
from decrimkit.inference.wild import WildBootstrap, WildInference, wild_cluster_test
from decrimkit.limits import check_replications
from decrimkit.options import Inference, SEMethod, WildWeights, check_option
from decrimkit.panel import Panel
from decrimkit.results import Effect, Spec

__all__ = ["TWFEResult", "twfe"]


@dataclass(frozen=True, repr=False)
class TWFEResult(Effect):
    """TWFE coefficients (``treated`` first, then covariates), with the fit behind them.

    ``inference`` holds the few-treated test of the ``treated`` coefficient when one was chosen; its
    p-value and interval (at every ``alpha``) replace the CR1 ones for that row.
    """

    alpha_wild: float = 0.05
    title: str = "Two-way fixed effects DiD"

    @property
    def att(self) -> float:
        """The coefficient on the treatment indicator."""
        return float(self.estimate[0])

    @property
    def wild(self) -> WildBootstrap | None:
        """The wild cluster bootstrap of ``treated`` (``inference="wild"``), else None; its ``conf_int(alpha)``
        and ``tidy(alpha)`` invert the same draws at any level."""
        w = self.inference
        if not isinstance(w, WildInference):
            return None
        p, t_boot = w._pvals(np.array([0.0]))
        spec = Spec("inference.wild_cluster_bootstrap", options={"coef": "treated", "null": 0.0, "n_boot": w.n_boot,
                                                                  "weights_dist": w.weights_dist},
                    seed=w.seed, n_obs=self.spec.n_obs)
        return WildBootstrap(w.beta / w.se, float(p[0]), t_boot[0], w.n_clusters, w.weights_dist, w, 0.0, spec)


def twfe(
    panel: Panel,
    *,
    covariates: Sequence[str] = (),
    cluster: str | None = "unit",
    weights: str | None = None,
    inference: Inference | None = None,
    se_method: SEMethod | None = None,
    n_boot: int = 9999,
    weights_dist: WildWeights = "rademacher",
    bootcluster: str | None = None,
    n_perm: int = 999,
    max_exact: int = MAX_EXACT,
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
    inference : {"cluster", "wild", "randomization", "conley_taber", "ferman_pinto"}
        Where the p-value and interval of the treatment coefficient come from (default ``"cluster"``:
        CR1, t(G-1)). ``"wild"``: restricted wild cluster bootstrap (WCR); ``"randomization"``:
        reassigning the adoption dates across units, exact when there are at most ``max_exact``
        assignments; ``"conley_taber"``/``"ferman_pinto"``: from the never-treated units' residuals
        (Ferman-Pinto rescales them by population). See docs/estimators/did/inference.md.
    se_method : {"cluster", "wild"}, optional
        Alias of ``inference`` kept for existing code (same behaviour).
    n_boot, weights_dist, bootcluster
        Wild bootstrap draws, weight distribution (``"rademacher"`` or ``"webb"``, Webb's six points
        are advised with few clusters) and the level its weights are drawn at: None (per cluster) or
        ``"obs"`` (per observation within clusters: MacKinnon and Webb's subcluster bootstrap).
    n_perm, max_exact
        Monte Carlo reassignments (randomization) or control tuples (Conley-Taber, Ferman-Pinto) when
        there are more than ``max_exact`` of them; otherwise all are enumerated.
    alpha, seed
        Interval level used for the wild bootstrap's stored summary; seed of every random draw.

    Returns
    -------
    TWFEResult
        ``estimate``/``se`` per term (``treated`` first), ``att``, ``vcov``, ``df`` (G-1), ``inference``.

    Raises
    ------
    SpecificationError
        Unknown options, undeclared or collinear covariates, a grouped panel.
    DesignError
        No treated or untreated observations, no comparison units, a single cluster.

    Warns
    -----
    FewTreatedWarning
        Fewer than 5 treated units under ``inference="cluster"``.

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
    if se_method is not None:
        check_option("se_method", se_method, SEMethod)
        if inference is not None and inference != se_method:
            raise SpecificationError(f"se_method={se_method!r} and inference={inference!r} disagree; "
                                     f"give inference= only (se_method is its older name).")
    method = check_inference(inference or se_method or "cluster", "twfe",
                             ("cluster", "wild", "randomization", "conley_taber", "ferman_pinto"))
    check_option("weights_dist", weights_dist, WildWeights)
    check_replications("n_boot", n_boot)
    check_option("bootcluster", bootcluster, (None, "obs"))
    no_groups(panel, "twfe")
    covariates = check_covariates(panel, covariates)
    require_variation(panel, "twfe")
    if method == "wild" and cluster is None:
        raise SpecificationError("inference='wild' needs a cluster level (cluster='unit' or 'time').")
    fit = _fit(panel, covariates, cluster, weights)
    require_unit_cluster_sides(panel, cluster, method)
    warn_if_few(panel, "twfe", method)
    inf = None
    if method == "wild":
        inf = wild_cluster_test(
            fit.x,
            fit.y,
            cluster_labels(panel, cluster),
            coef=0,
            weights=fit.weights,
            n_params=fit.n_params,
            n_boot=n_boot,
            weights_dist=weights_dist,
            seed=seed,
            bootcluster=None if bootcluster is None else np.arange(panel.n_obs),
        )
    elif method in ("randomization", "conley_taber", "ferman_pinto"):

        def refit(p: Panel) -> np.ndarray:
            return _fit(p, covariates, cluster, weights).coef[:1]

        if method == "randomization":
            inf = randomization(panel, refit, n_perm=n_perm, max_exact=max_exact, seed=seed, rows=(0,),
                                batch=permutation_batch(panel, fit))
        else:
            inf = residual(panel, refit, method, fit.coef[:1], covariates=covariates, n_draws=n_perm,
                           max_exact=max_exact, seed=seed, rows=(0,), linear=linear_map(fit)[:, :1])
    random = method == "wild" or (method != "cluster" and not getattr(inf, "exact", True))
    spec = Spec(
        estimator="did.twfe",
        options=options(
            covariates=covariates,
            cluster=cluster,
            weights=weights,
            inference=method,
            n_boot=n_boot if method == "wild" else None,
            weights_dist=weights_dist if method == "wild" else None,
            bootcluster=bootcluster if method == "wild" else None,
            n_perm=n_perm if method in ("randomization", "conley_taber", "ferman_pinto") else None,
        ),
        seed=seed if random else None,
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
        inference=inf,
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
