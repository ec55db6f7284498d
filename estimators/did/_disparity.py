"""Disparity DiD: the change in a between-group rate ratio (e.g. Black vs white arrest rates).

Estimand
--------
For a focal group ``f`` and a reference group ``r`` observed in every unit and period, the
triple difference on the log scale

``delta = [log RR_post - log RR_pre]_treated - [log RR_post - log RR_pre]_comparison``,

with ``RR = rate_f / rate_r``: the proportional change in the rate ratio that the policy caused.
``exp(delta)`` multiplies the disparity (``< 1``: the gap narrowed). It is estimated jointly as the
difference of the two group-specific DiD effects,

``E[y_igt] = N_igt exp(alpha_ig + lambda_gt + beta_g D_it)`` (``method="ppml"``, counts with
population exposure; Poisson pseudo-likelihood), or
``log(rate_igt) = alpha_ig + lambda_gt + beta_g D_it + e_igt`` (``method="ols"``, positive rates),

with unit-by-group and period-by-group fixed effects, ``delta = beta_f - beta_r`` and its standard error
from the joint CR1 variance clustered by unit (so the groups' correlation within a unit is kept).
In the log-linear model on a balanced panel this equals the DiD of the log rate ratio itself.

Assumptions: parallel trends in the log rate ratio between treated and comparison units (the trend of
the disparity would have been the same); no anticipation; exposure measured without error.

References
----------
Olden, A. and Moen, J. (2022). The triple difference estimator. *The Econometrics Journal* 25(3),
531-553.
Wooldridge, J. M. (2023). Simple approaches to nonlinear difference-in-differences with panel data.
*The Econometrics Journal* 26(3), C31-C66.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from decrimkit.errors import DataError, DesignError, SpecificationError
from decrimkit.estimators.did._inference import warn_if_few
from decrimkit.estimators.did._ols import fe_ols
from decrimkit.estimators.did._poisson import PoissonResult, ppml
from decrimkit.estimators.did._reg_design import check_covariates, options
from decrimkit.numerics.demean import factor_codes
from decrimkit.options import check_option
from decrimkit.panel import Panel
from decrimkit.results import Spec

__all__ = ["DisparityResult", "disparity"]

DisparityMethod = Literal["ppml", "ols"]


@dataclass(frozen=True, repr=False)
class DisparityResult(PoissonResult):
    """Group-specific DiD effects (log scale) and the disparity contrasts ``disparity: f vs r``.

    ``rate_ratio`` of a disparity row is the factor by which the policy changed the rate ratio.
    """

    focal: tuple[Any, ...] = ()
    reference: Any = None
    title: str = "Disparity DiD (change in the log rate ratio)"

    @property
    def disparity(self) -> float:
        """Change in the log rate ratio of the first focal group vs the reference."""
        return float(self.estimate[len(self.focal) + 1])

    def plot(self, kind: str = "coef", ax: Any = None, alpha: float = 0.05) -> Any:
        from decrimkit.plotting.did import disparity_plot

        return disparity_plot(self.plot_data(kind, alpha), ax=ax, title=self.title)


def disparity(
    panel: Panel,
    *,
    group: Any | Sequence[Any],
    reference: Any,
    method: DisparityMethod = "ppml",
    exposure: str | None = "population",
    covariates: Sequence[str] = (),
    cluster: str = "unit",
) -> DisparityResult:
    """Triple-difference estimate of how a policy changed the rate ratio of ``group`` to ``reference``.

    Parameters
    ----------
    panel : Panel
        Built with ``group=``: one row per unit, period and group (counts and population per group).
    group : label or sequence of labels
        Focal group(s), e.g. ``"Black"``.
    reference : label
        Reference group, e.g. ``"white"``. Rows of other groups are left out (recorded on the Spec).
    method : {"ppml", "ols"}
        Poisson pseudo-likelihood on counts (with ``exposure``), or least squares on log rates.
    exposure : {"population", None}
        PPML offset log(population); for OLS the outcome is log(rate per 100,000) when the panel has
        population, else log(outcome).
    covariates : sequence of str
        Time-varying covariates (their coefficients vary by group).
    cluster : {"unit", "time"}
        CR1 cluster level; "unit" keeps the correlation between groups within a unit.

    Returns
    -------
    DisparityResult
        Rows ``<group>`` (each group's DiD, log rate ratio) then ``disparity: <group> vs <reference>``;
        ``rate_ratio`` columns give the multiplicative scale.

    Raises
    ------
    SpecificationError
        A panel without groups, unknown group labels, a bad method.
    DataError
        Zero or negative rates under ``method="ols"``, missing population for exposure.
    DesignError
        A group missing from some unit-periods, no comparison units.

    Notes
    -----
    Estimand: the triple difference of the log rate ratio ``RR = rate_group / rate_reference``,
    ``delta = [log RR_post - log RR_pre]_treated - [log RR_post - log RR_pre]_comparison``, estimated as
    ``beta_group - beta_reference`` from group-specific DiD effects with unit-by-group and period-by-group
    fixed effects; ``exp(delta)`` multiplies the disparity. Assumptions: parallel trends in the log rate
    ratio, no anticipation, exposure measured without error.

    References
    ----------
    Olden, A. and Moen, J. (2022). The triple difference estimator. *The Econometrics Journal* 25(3),
    531-553.
    Wooldridge, J. M. (2023). Simple approaches to nonlinear difference-in-differences with panel data.
    *The Econometrics Journal* 26(3), C31-C66.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from decrimkit import Panel
    >>> from decrimkit.estimators import did
    >>> rng = np.random.default_rng(1)
    >>> rows = [(u, t, g, rng.poisson(50 * (2 if g == "B" else 1) * (0.8 if (g == "B" and u < 10 and t >= 5) else 1)),
    ...          1000, 5 if u < 10 else 0) for u in range(20) for t in range(10) for g in ("A", "B")]
    >>> df = pd.DataFrame(rows, columns=["unit", "year", "race", "arrests", "pop", "first"])
    >>> panel = Panel.from_frame(df, unit="unit", time="year", outcome="arrests", cohort="first",
    ...                          population="pop", group="race")
    >>> res = did.disparity(panel, group="B", reference="A")
    >>> bool(abs(res.disparity - np.log(0.8)) < 0.1)
    True
    """
    check_option("method", method, ("ppml", "ols"))
    if not panel.has_group:
        raise SpecificationError("disparity needs a panel built with group= (one row per unit, period and group).")
    focal = tuple(group) if isinstance(group, (list, tuple)) else (group,)
    covariates = check_covariates(panel, covariates)
    frame = panel.frame
    labels = pd.unique(frame["group"])
    unknown = [g for g in (*focal, reference) if g not in set(labels)]
    if unknown:
        raise SpecificationError(f"group label(s) {unknown} are not in the panel's groups {list(labels)}.")
    if reference in focal:
        raise SpecificationError("reference must differ from the focal group(s).")
    used = (*focal, reference)
    keep = frame["group"].isin(used).to_numpy()
    excluded = [(int((~keep).sum()), f"rows of groups other than {list(used)}")] if (~keep).any() else []
    sub = frame.loc[keep].reset_index(drop=True)
    per_cell = sub.groupby(["unit", "t"]).size()
    if (per_cell != len(used)).any():
        raise DesignError(
            f"every unit and period needs one row per group {list(used)}; {int((per_cell != len(used)).sum())} "
            f"unit-periods lack some group. Fill structural zeros (count 0 with the group's population)."
        )
    d = sub["d"].to_numpy(dtype="float64")
    if d.max() == 0 or d.min() == 1:
        raise DesignError("disparity: treatment does not vary (no treated or no untreated unit-periods).")
    grp = sub["group"].to_numpy()
    x_cols = [d * (grp == g) for g in used]
    names = [str(g) for g in used]
    for c in covariates:
        for g in used:
            x_cols.append(sub[c].to_numpy() * (grp == g))
            names.append(f"{c}:{g}")
    x = np.column_stack(x_cols)
    unit_codes = factor_codes(sub["unit"].to_numpy())
    fixef = [factor_codes(unit_codes, grp), factor_codes(sub["t"].to_numpy(), grp)]
    if cluster not in ("unit", "time"):
        raise SpecificationError(f"cluster={cluster!r} is not allowed; use 'unit' or 'time'.")
    clus = unit_codes if cluster == "unit" else sub["t"].to_numpy()
    has_pop = "population" in sub.columns
    if method == "ppml":
        if exposure == "population" and not has_pop:
            raise DataError("exposure='population' needs a panel built with population=; or pass exposure=None.")
        offset = np.log(sub["population"].to_numpy()) if exposure == "population" else None
        fit = ppml(sub["y"].to_numpy(), x, fixef, names=names, offset=offset, cluster=clus)
        coef, vcov, df, k = fit.coef, fit.vcov, fit.df, fit.n_params
    else:
        level = sub["rate"].to_numpy() if has_pop else sub["y"].to_numpy()
        if (level <= 0).any():
            raise DataError(
                f"method='ols' takes logs, but {int((level <= 0).sum())} rows have zero or negative "
                f"{'rates' if has_pop else 'outcomes'}. Use method='ppml', which keeps zeros."
            )
        ols = fe_ols(np.log(level), x, fixef, names=names, cluster=clus, vcov="cluster")
        coef, vcov, df, k = ols.coef, ols.vcov, ols.df, ols.n_params
    n_f = len(focal)
    contrast = np.zeros((n_f, len(coef)))
    for i in range(n_f):
        contrast[i, i], contrast[i, n_f] = 1.0, -1.0
    full = np.vstack([np.eye(len(used), len(coef)), contrast])
    est = full @ coef
    v = full @ vcov @ full.T
    labels_out = tuple(names[: len(used)]) + tuple(f"disparity: {g} vs {reference}" for g in focal)
    spec = Spec(
        estimator="did.disparity",
        options=options(
            group=[str(g) for g in focal],
            reference=str(reference),
            method=method,
            exposure=exposure,
            covariates=covariates,
            cluster=cluster,
        ),
        n_units=panel.n_units,
        n_periods=panel.n_periods,
        n_obs=len(sub),
        excluded=panel.excluded + tuple(excluded),
        notes=(f"fixed effects: unit x group, period x group; K={k}",),
    )
    warn_if_few(panel, "disparity", "cluster")
    return DisparityResult(
        label=labels_out,
        estimate=est,
        se=np.sqrt(np.diag(v)),
        spec=spec,
        vcov=v,
        df=df,
        focal=focal,
        reference=reference,
    )
