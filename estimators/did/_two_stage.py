"""Gardner (2022) two-stage difference-in-differences (R ``did2s``).

Estimand
--------
Event-time ATTs ``tau_e`` (average of ``Y_it - Y_it(0)`` over treated observations at ``e = t - g``)
and the overall post-treatment ATT, under the same assumptions as the imputation estimator:
parallel trends in ``Y(0)`` with unit and period effects, no anticipation beyond ``anticipation``.

Method: stage 1 fits ``Y_it = alpha_i + lambda_t + X_it' delta`` on untreated observations; stage 2
regresses the residualised outcome ``Y_it - alpha_i_hat - lambda_t_hat - X_it' delta_hat`` on event-time
indicators of the treated observations (or on the treatment indicator for the overall ATT) over all
observations. With this first stage, the point estimates equal those of
:func:`~decrimkit.estimators.did.imputation` exactly (the second stage is a mean of the imputed
effects); they are the same estimator.

Standard errors differ from the imputation estimator's only in how treated residuals are centred:
written out, ``psi_c = sum_{it in c} v_it e_it`` with BJS's imputation weights ``v_it`` and first-stage
residuals on untreated rows, but ``e_it = tau_it_hat - tau_bar_e`` (the stage-2 fit: the mean at that
horizon over all cohorts) on treated rows, where BJS centre at cohort-by-event-time means. The GMM form
is that of Gardner (2022, eq. 7), R ``did2s`` and ``pyfixest.did2s``: clustered by unit by default,
no small-sample factor,
``V = (X2'WX2)^{-1} sum_c psi_c psi_c' (X2'WX2)^{-1}``,
``psi_c = X2_c' W_c u2_c - (X2'WX1)(X10'WX10)^{-1} X10_c' W_c u1_c``,
with ``u1`` the first-stage residuals (untreated rows, zero elsewhere) and ``u2`` the stage-2 residuals.

References
----------
Gardner, J. (2022). Two-stage differences in differences. arXiv:2207.05943.
Butts, K. and Gardner, J. (2022). did2s: Two-stage difference-in-differences. *The R Journal* 14(3).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from decrimkit.estimators.did._event_result import EventTimeEffect, horizon_weights, pretrend_regression
from decrimkit.estimators.did._first_stage import FirstStage, first_stage
from decrimkit.estimators.did._inference import warn_if_few
from decrimkit.panel import Panel
from decrimkit.results import Spec

__all__ = ["two_stage", "gmm_vcov"]


def gmm_vcov(fs: FirstStage, x2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Second-stage coefficients and their GMM (first-stage corrected) variance for regressors ``x2`` (N, k)."""
    w = fs.weight
    x2w = x2 * w[:, None]
    xtx = x2.T @ x2w
    coef = np.linalg.solve(xtx, x2w.T @ fs.resid)
    u2 = fs.resid - x2 @ coef
    u1 = np.where(fs.untreated, fs.resid, 0.0)
    x1tx2 = fs.z.T @ x2w  # (q, k): X1' W X2 over all rows
    b = np.column_stack([fs.solve(x1tx2[:, j]) for j in range(x2.shape[1])])  # (X10'WX10)^{-1} X1'WX2
    correction = (fs.z @ b) * (w * u1)[:, None]  # rows of X10 W u1 mapped through b
    rows = x2w * u2[:, None] - correction
    psi = np.zeros((fs.n_clusters, x2.shape[1]))
    np.add.at(psi, fs.cluster, rows)
    bread = np.linalg.inv(xtx)
    vcov = bread @ (psi.T @ psi) @ bread
    return coef, (vcov + vcov.T) / 2


def two_stage(
    panel: Panel,
    *,
    covariates: Sequence[str] = (),
    anticipation: int = 0,
    horizons: Sequence[int] | None = None,
    pretrends: int = 0,
    weights: str | None = None,
    cluster: str | None = None,
) -> EventTimeEffect:
    """Event-time and overall ATTs by Gardner's two-stage DiD with GMM standard errors.

    Parameters
    ----------
    panel : Panel
        Panel with cohorts; it may be unbalanced.
    covariates : sequence of str
        Time-varying covariates in the first stage (time-invariant ones are absorbed and raise).
    anticipation : int
        Periods before ``g`` already affected (excluded from the first stage).
    horizons : sequence of int, optional
        Event times in the second stage (default: all with treated observations).
    pretrends : int
        Number of pre-treatment event-time coefficients to test on untreated observations (0 = none).
    weights : str, optional
        Observation weights column (default: the panel's declared weights, else equal).
    cluster : str, optional
        Cluster column (default: units).

    Returns
    -------
    EventTimeEffect
        ``label`` = event times with ``vcov``; ``overall`` = (ATT, SE) of the treatment-indicator regression.

    Raises
    ------
    DesignError, SpecificationError
        As :func:`~decrimkit.estimators.did.imputation`.

    Notes
    -----
    Estimand: event-time ATTs ``tau_e`` and the overall post-treatment ATT (averages of ``Y_it - Y_it(0)``
    over treated observations). Assumptions: parallel trends in ``Y(0)`` with unit and period effects, no
    anticipation beyond ``anticipation``. Point estimates equal :func:`imputation`'s; the GMM standard errors
    centre treated residuals at event-time means (Gardner 2022, eq. 7).

    References
    ----------
    Gardner, J. (2022). Two-stage differences in differences. arXiv:2207.05943.
    Butts, K. and Gardner, J. (2022). did2s: Two-stage difference-in-differences. *The R Journal* 14(3).

    Examples
    --------
    >>> from decrimkit import Panel
    >>> from decrimkit.datasets import load_dataset
    >>> from decrimkit.estimators import did
    >>> mpdta = Panel.from_frame(load_dataset("mpdta"), unit="countyreal", time="year",
    ...                          outcome="lemp", cohort="first.treat")
    >>> res = did.two_stage(mpdta)
    >>> res.tidy()[["event_time", "estimate", "se"]]  # doctest: +SKIP
    """
    covariates = tuple(covariates)
    fs = first_stage(panel, covariates=covariates, anticipation=anticipation, weights=weights, cluster=cluster,
                     check_clusters=True)
    hs, wmat = horizon_weights(fs, None if horizons is None else tuple(horizons), anticipation)
    indicators = (wmat > 0).astype("float64")
    coef, vcov = gmm_vcov(fs, indicators[:, :-1])
    overall, overall_v = gmm_vcov(fs, indicators[:, -1:])
    spec = Spec(
        estimator="did.two_stage",
        options={
            "covariates": covariates,
            "anticipation": int(anticipation),
            "horizons": hs,
            "pretrends": int(pretrends),
            "weights": weights,
            "cluster": cluster,
        },
        n_units=panel.n_units,
        n_periods=panel.n_periods,
        n_obs=panel.n_obs,
        excluded=panel.excluded,
        notes=(f"first stage on {int(fs.untreated.sum())} untreated observations",),
    )
    pre = None
    if pretrends:
        pre = pretrend_regression(
            fs, panel.unit_index, panel.time_index, panel.y, int(pretrends), int(anticipation), spec
        )
    warn_if_few(panel, "two_stage", "cluster")
    return EventTimeEffect(
        label=hs,
        estimate=coef,
        se=np.sqrt(np.diag(vcov)),
        spec=spec,
        label_name="event_time",
        vcov=vcov,
        overall=(float(overall[0]), float(np.sqrt(overall_v[0, 0]))),
        pre=pre,
        title="Event-time ATT by two-stage DiD (Gardner)",
    )
