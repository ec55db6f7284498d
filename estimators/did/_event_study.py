"""Dynamic two-way fixed effects (event study) with binned endpoints and a joint pre-trend test.

Estimand
--------
``y_it = alpha_i + lambda_t + sum_{e != r} beta_e 1{t - g_i = e} + X_it' gamma + e_it`` for treated
units (never-treated units have every indicator zero), with the reference event time ``r`` (default -1)
left out. Event times beyond the window are binned into the endpoints: ``e <= -leads`` into
``-leads`` and ``e >= lags`` into ``lags``. Under parallel trends, no anticipation and effects that do
not differ across cohorts, ``beta_e`` is the average effect ``e`` periods after adoption and the leads
are zero. With heterogeneous effects across cohorts the coefficients mix other periods' effects (Sun and
Abraham 2021); use :func:`did.sun_abraham` then.

Inference: CR1 (or HC1) variance; the pre-trend test is the Wald test that all lead coefficients are
zero, reported as F = W/q against F(q, G-1) as in fixest's ``wald()``; the simultaneous band uses the
sup-t critical value of the estimated correlation (Montiel Olea and Plagborg-Moller 2019), simulated
with ``seed``.

References
----------
Sun, L. and Abraham, S. (2021). Estimating dynamic treatment effects in event studies with
heterogeneous treatment effects. *Journal of Econometrics* 225(2), 175-199.
Freyaldenhoven, S., Hansen, C., Perez, J. P. and Shapiro, J. M. (2021). Visualization, identification,
and estimation in the linear panel event-study design. NBER WP 29170.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

from decrimkit.errors import DesignError, SpecificationError
from decrimkit.estimators.did._event_perm import permutation_batch
from decrimkit.estimators.did._inference import check_inference, randomization, residual, warn_if_few
from decrimkit.estimators.did._ols import fe_ols, linear_map
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
from decrimkit.inference.randomization import MAX_EXACT
from decrimkit.inference.wild import WildInferenceSet, wild_cluster_test
from decrimkit.numerics.keys import numpy_rng
from decrimkit.options import Inference, WildWeights, check_option
from decrimkit.panel import Panel
from decrimkit.results import Effect, Spec

__all__ = ["EventStudyResult", "PreTest", "event_study", "sup_t_critical", "relative_time"]


class PreTest(NamedTuple):
    """Joint Wald test that all lead (pre-treatment) coefficients are zero."""

    statistic: float  # F = W / q
    df_num: int  # q, number of leads tested
    df_den: float  # G-1 (clustered) or N-K
    p_value: float
    chi2: float  # W
    chi2_p_value: float


@dataclass(frozen=True, repr=False)
class EventStudyResult(Effect):
    """Event-time coefficients (``label`` are event times, ``reference`` left out)."""

    reference: int = -1
    binned: tuple[int, ...] = ()
    label_name: str = "event_time"
    title: str = "Event study (dynamic TWFE)"

    @property
    def event_time(self) -> np.ndarray:
        return np.asarray(self.label, dtype="int64")

    def pretest(self) -> PreTest:
        """Joint test that the lead coefficients (event time < 0) are all zero."""
        lead = self.event_time < 0
        if not lead.any():
            raise DesignError("the event study has no lead coefficients to test; use leads >= 2.")
        b = self.estimate[lead]
        v = self.vcov[np.ix_(lead, lead)]  # type: ignore[index]
        w = float(b @ np.linalg.solve(v, b))
        q = int(lead.sum())
        den = float(self.df) if self.df is not None else np.inf
        return PreTest(w / q, q, den, float(stats.f.sf(w / q, q, den)), w, float(stats.chi2.sf(w, q)))

    def plot_data(self, kind: str = "coef", alpha: float = 0.05) -> pd.DataFrame:
        """Coefficients with intervals and band, plus the reference period at zero."""
        out = self.tidy(alpha)
        ref = pd.DataFrame({"term": [self.reference], "event_time": [self.reference], "estimate": [0.0], "se": [0.0]})
        for c in out.columns:
            if c not in ref:
                ref[c] = 0.0 if c in ("conf_low", "conf_high", "band_low", "band_high") else np.nan
        out = pd.concat([out, ref[out.columns]], ignore_index=True).sort_values("event_time")
        return out.reset_index(drop=True)

    def plot(self, kind: str = "coef", ax: Any = None, alpha: float = 0.05) -> Any:
        from decrimkit.plotting.did import event_study_plot

        return event_study_plot(self.plot_data(kind, alpha), ax=ax, title=self.title)


def relative_time(panel: Panel) -> np.ndarray:
    """Event time t - g per row (NaN for never-treated units)."""
    g = panel.g_index
    return np.where(np.isfinite(g), panel.time_index - np.where(np.isfinite(g), g, 0), np.nan)


def sup_t_critical(vcov: np.ndarray, alpha: float, seed: int, n_draws: int = 10_000) -> float:
    """Sup-t critical value: the 1-alpha quantile of max_k |Z_k| with Z ~ N(0, corr(vcov))."""
    sd = np.sqrt(np.diag(vcov))
    corr = vcov / np.outer(sd, sd)
    vals, vecs = np.linalg.eigh(corr)
    root = vecs * np.sqrt(np.clip(vals, 0, None))
    z = numpy_rng(seed).standard_normal((n_draws, len(sd))) @ root.T
    return float(np.quantile(np.abs(z).max(axis=1), 1 - alpha))


def event_study(
    panel: Panel,
    *,
    leads: int | None = None,
    lags: int | None = None,
    reference: int = -1,
    covariates: Sequence[str] = (),
    cluster: str | None = "unit",
    weights: str | None = None,
    alpha: float = 0.05,
    seed: int = 0,
    inference: Inference = "cluster",
    n_perm: int = 999,
    max_exact: int = MAX_EXACT,
    n_boot: int = 9999,
    weights_dist: WildWeights = "rademacher",
    bootcluster: str | None = None,
) -> EventStudyResult:
    """Event-study regression with unit and period effects and binned endpoints.

    Parameters
    ----------
    panel : Panel
        One row per unit and period, with cohorts.
    leads : int, optional
        Pre-treatment window: event times ``-leads..-1``; earlier ones are binned into ``-leads``.
        None keeps every observed lead unbinned.
    lags : int, optional
        Post-treatment window ``0..lags``; later event times are binned into ``lags``. None: no binning.
    reference : int
        Omitted event time (default -1, the period before adoption).
    covariates, cluster, weights
        As in :func:`did.twfe`.
    alpha, seed
        Level of the intervals and seed of the simulated sup-t band (and of Monte Carlo draws).
    inference : {"cluster", "wild", "randomization", "conley_taber", "ferman_pinto"}
        Where the p-values and pointwise intervals of the event-time coefficients come from (default CR1);
        see :func:`did.twfe` and docs/estimators/did/inference.md. ``"wild"``: the restricted wild cluster
        bootstrap of each coefficient on its own (its null imposed, the other coefficients free; needs
        ``cluster``). The sup-t band stays CR1-based.
    n_perm, max_exact
        Monte Carlo draws when there are more than ``max_exact`` assignments (or control tuples).
    n_boot, weights_dist, bootcluster
        Wild bootstrap draws, weights (``"rademacher"`` or ``"webb"``) and ``bootcluster="obs"`` for the
        MacKinnon-Webb subcluster variant, as in :func:`did.twfe`.

    Returns
    -------
    EventStudyResult
        ``estimate``/``se`` per event time, ``vcov``, ``crit`` (sup-t), ``pretest()``, ``plot()``.

    Raises
    ------
    SpecificationError
        A window or reference that does not fit, undeclared or collinear covariates.
    DesignError
        No never-treated or later-treated comparisons, a single cluster.

    Notes
    -----
    Estimand: ``beta_e`` in ``y_it = alpha_i + lambda_t + sum_{e != r} beta_e 1{t - g_i = e} + X_it' gamma
    + e_it``, endpoints binned. Assumptions: parallel trends, no anticipation, and effects that do not differ
    across cohorts; then ``beta_e`` is the average effect ``e`` periods after adoption and the leads are zero.
    With cohort-heterogeneous effects the coefficients are contaminated (Sun and Abraham 2021): use
    :func:`sun_abraham`.

    References
    ----------
    Sun, L. and Abraham, S. (2021). Estimating dynamic treatment effects in event studies with
    heterogeneous treatment effects. *Journal of Econometrics* 225(2), 175-199.
    Freyaldenhoven, S., Hansen, C., Perez, J. P. and Shapiro, J. M. (2021). Visualization, identification,
    and estimation in the linear panel event-study design. NBER WP 29170.

    Examples
    --------
    >>> from decrimkit import Panel
    >>> from decrimkit.datasets import load_dataset
    >>> from decrimkit.estimators import did
    >>> df = load_dataset("mpdta")
    >>> panel = Panel.from_frame(df, unit="countyreal", time="year", outcome="lemp", cohort="first.treat")
    >>> es = did.event_study(panel)
    >>> es.pretest().p_value > 0.05
    True
    """
    alpha = check_alpha(alpha)
    method = check_inference(inference, "event_study",
                             ("cluster", "wild", "randomization", "conley_taber", "ferman_pinto"))
    check_option("weights_dist", weights_dist, WildWeights)
    check_option("bootcluster", bootcluster, (None, "obs"))
    if method == "wild" and cluster is None:
        raise SpecificationError("inference='wild' needs a cluster level (cluster='unit' or 'time').")
    no_groups(panel, "event_study")
    covariates = check_covariates(panel, covariates)
    require_variation(panel, "event_study")
    e = relative_time(panel)
    binned, times = _bins(e, leads, lags, reference)
    keep = [k for k in times if k != reference]
    ebin = e.copy()
    if leads is not None:
        ebin = np.where(ebin <= -leads, -leads, ebin)
    if lags is not None:
        ebin = np.where(ebin >= lags, lags, ebin)
    dummies = np.column_stack([(ebin == k).astype("float64") for k in keep])
    frame = panel.frame
    x = np.column_stack([dummies] + [frame[c].to_numpy() for c in covariates]) if covariates else dummies
    names = tuple(f"event_time={k}" for k in keep) + covariates
    fit = fe_ols(
        panel.y,
        x,
        [panel.unit_index, panel.time_index],
        names=names,
        weights=row_weights(panel, weights),
        cluster=cluster_labels(panel, cluster),
        vcov="cluster" if cluster is not None else "hetero",
    )
    m = len(keep)
    vcov = fit.vcov[:m, :m]
    require_unit_cluster_sides(panel, cluster, method)
    warn_if_few(panel, "event_study", method)
    inf = None
    if method == "wild":
        labels = cluster_labels(panel, cluster)
        sub = None if bootcluster is None else np.arange(panel.n_obs)
        inf = WildInferenceSet(tuple(
            wild_cluster_test(fit.x, fit.y, labels, coef=j, weights=fit.weights, n_params=fit.n_params,
                              n_boot=n_boot, weights_dist=weights_dist, seed=seed, bootcluster=sub, row=j)
            for j in range(m)), rows=tuple(range(m)))
    elif method != "cluster":

        def refit(p: Panel) -> np.ndarray:
            e_p = relative_time(p)
            e_p = np.where(e_p <= -leads, -leads, e_p) if leads is not None else e_p
            e_p = np.where(e_p >= lags, lags, e_p) if lags is not None else e_p
            dm = np.column_stack([(e_p == k).astype("float64") for k in keep])
            xp = np.column_stack([dm] + [p.frame[c].to_numpy() for c in covariates]) if covariates else dm
            return fe_ols(p.y, xp, [p.unit_index, p.time_index], names=names, weights=row_weights(p, weights),
                          vcov="hetero").coef[:m]

        if method == "randomization":
            inf = randomization(panel, refit, n_perm=n_perm, max_exact=max_exact, seed=seed,
                                batch=permutation_batch(panel, fit, keep, leads, lags))
        else:
            inf = residual(panel, refit, method, fit.coef[:m], covariates=covariates, n_draws=n_perm,
                           max_exact=max_exact, seed=seed, linear=linear_map(fit)[:, :m])
    spec = Spec(
        estimator="did.event_study",
        options=options(
            leads=leads, lags=lags, reference=reference, covariates=covariates, cluster=cluster, weights=weights,
            inference=method,
            **({"n_boot": n_boot, "weights_dist": weights_dist, "bootcluster": bootcluster} if method == "wild"
               else {}),
        ),
        seed=seed,
        n_units=panel.n_units,
        n_periods=panel.n_periods,
        n_obs=panel.n_obs,
        excluded=panel.excluded,
        notes=(f"K={fit.n_params}, t({fit.df:g})",) + ((f"binned endpoints: {list(binned)}",) if binned else ()),
    )
    return EventStudyResult(
        label=tuple(int(k) for k in keep),
        estimate=fit.coef[:m],
        se=np.sqrt(np.diag(vcov)),
        spec=spec,
        vcov=vcov,
        df=fit.df,
        crit=sup_t_critical(vcov, alpha, seed),
        reference=reference,
        binned=binned,
        inference=inf,
    )


def _bins(e: np.ndarray, leads: int | None, lags: int | None, reference: int) -> tuple[tuple[int, ...], list[int]]:
    """Binned endpoints and the sorted event times of the design."""
    for name, v in (("leads", leads), ("lags", lags)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0):
            raise SpecificationError(f"{name} must be a non-negative integer or None, got {v!r}.")
    obs = np.unique(e[np.isfinite(e)]).astype(int)
    lo = int(obs.min()) if leads is None else -int(leads)
    hi = int(obs.max()) if lags is None else int(lags)
    if leads is not None and leads < 1:
        raise SpecificationError("leads must be at least 1 (the reference period -1 is a lead).")
    if reference < 0 and reference not in obs:
        raise DesignError(
            f"no treated unit is observed at the reference event time {reference}: the treated units have no "
            f"pre-treatment period there. Extend the data back in time or choose another reference."
        )
    if not lo <= reference <= hi or reference >= 0:
        raise SpecificationError(
            f"reference={reference} must be a pre-treatment event time inside the window {lo}..{hi}."
        )
    if leads is not None and reference == lo and (obs < lo).any():
        raise SpecificationError(
            f"reference={reference} is the binned endpoint; widen leads so the reference is a single period."
        )
    times = [
        k
        for k in range(lo, hi + 1)
        if (obs == k).any() or (k == lo and (obs <= lo).any()) or (k == hi and (obs >= hi).any())
    ]
    binned = tuple(
        k
        for k, cond in ((lo, leads is not None and (obs < lo).any()), (hi, lags is not None and (obs > hi).any()))
        if cond
    )
    return binned, times
