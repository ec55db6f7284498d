"""Borusyak, Jaravel and Spiess (2024) imputation estimator for staggered adoption.

Estimand
--------
Weighted averages of unit-period effects ``tau_it = Y_it - Y_it(0)`` over treated observations:
one per event time ``e = t - g`` (``tau_e``, observations weighted equally or by sampling weights)
and the overall post-treatment ATT (every observation with ``t >= g``).

Method: fit ``Y_it(0) = alpha_i + lambda_t + X_it' delta`` on untreated observations (never treated,
or before ``g - anticipation``), impute ``Y_it(0)`` for the treated, and average
``tau_it_hat = Y_it - Y_it(0)_hat``. Assumptions: parallel trends in untreated potential outcomes
(the two-way model holds for ``Y(0)``), no anticipation beyond ``anticipation`` periods, and
homogeneous covariate coefficients.

Standard errors: the conservative variance of BJS Theorem 3, ``sum_c (sum_{it in c} v_it e_it)^2``
over clusters ``c`` (default: units), with the imputation weights ``v_it`` (the treated weights
``w_it`` on treated observations, ``-W Z0 (Z0' W Z0)^{-1} Z1' w1`` on untreated ones) and residuals
``e_it`` that are first-stage residuals on untreated observations and ``tau_it_hat - tau_bar`` on treated
ones, where ``tau_bar`` is the ``v^2``-weighted mean of ``tau_it_hat`` within the observation's cohort
and event time (BJS eq. 10, the auxiliary model of R ``didimputation``). ``leave_out=True`` computes
``tau_bar`` without the observation's own cluster (the leave-one-out refinement of BJS Supplementary Appendix A.9,
Stata ``did_imputation, leaveout``), which removes the downward bias of the plain version in small
cells; it needs at least two clusters in every cohort-by-event-time cell. The default
(``leave_out=False``) reproduces R ``didimputation``.

References
----------
Borusyak, K., Jaravel, X. and Spiess, J. (2024). Revisiting event-study designs: robust and efficient
estimation. *Review of Economic Studies* 91(6), 3253-3285.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd

from decrimkit.errors import DesignError, SpecificationError
from decrimkit.estimators.did._event_result import EventTimeEffect, horizon_weights, pretrend_regression
from decrimkit.estimators.did._first_stage import FirstStage, first_stage
from decrimkit.estimators.did._imputation_perm import permutation_batch
from decrimkit.estimators.did._inference import check_inference, randomization, residual, warn_if_few
from decrimkit.inference.randomization import MAX_EXACT
from decrimkit.options import Inference
from decrimkit.panel import Panel
from decrimkit.results import Spec

__all__ = ["imputation"]


def _tau_bar(v: np.ndarray, tau: np.ndarray, cell: np.ndarray, cluster: np.ndarray, leave_out: bool) -> np.ndarray:
    """``v^2``-weighted mean of ``tau`` by cell (cohort x event time), optionally leaving out own cluster."""
    v2 = v**2
    n_cells = int(cell.max()) + 1
    num = np.bincount(cell, weights=v2 * tau, minlength=n_cells)
    den = np.bincount(cell, weights=v2, minlength=n_cells)
    if not leave_out:
        with np.errstate(invalid="ignore", divide="ignore"):
            bar = np.where(den > 0, num / den, 0.0)
        return bar[cell]
    key = pd.factorize(pd.MultiIndex.from_arrays([cell, cluster]))[0]
    own_num = np.bincount(key, weights=v2 * tau)[key]
    own_den = np.bincount(key, weights=v2)[key]
    rest = den[cell] - own_den
    if np.any((rest <= 0) & (v2 > 0)):
        raise DesignError(
            "leave_out=True needs at least two clusters with weight in every cohort-by-event-time cell; some "
            "cell has one. Use leave_out=False (the didimputation variance) or coarser horizons."
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(rest > 0, (num[cell] - own_num) / rest, 0.0)


def imputation_weights(fs: FirstStage, wmat: np.ndarray) -> np.ndarray:
    """BJS's implied weights ``v*`` (N, k): every estimate is ``v[:, j] @ y``, whatever the outcome ``y``.

    ``est_j = wmat_T' (y_T - Z_T beta)`` with ``beta = (Z0'W Z0)^{-1} Z0'W y``: the target rows weigh
    ``wmat``, each untreated row ``-w_r z_r' (Z0'W Z0)^{-1} Z_T' wmat_T``.
    """
    target, untreated = fs.target, fs.untreated
    z1w = fs.z[target].T @ wmat[target]  # (q, k)
    b = np.column_stack([fs.solve(z1w[:, j]) for j in range(wmat.shape[1])])
    return np.where(untreated[:, None], -(fs.weight * untreated)[:, None] * (fs.z @ b), wmat)


def imputation_variance(fs: FirstStage, wmat: np.ndarray, g: np.ndarray, *, leave_out: bool,
                        v: np.ndarray | None = None) -> np.ndarray:
    """BJS conservative standard errors, one per column of ``wmat`` (``v``: its imputation weights, if known)."""
    target = fs.target
    v = imputation_weights(fs, wmat) if v is None else v
    cell = pd.factorize(pd.MultiIndex.from_arrays([np.where(target, g, -1.0), np.nan_to_num(fs.event, nan=-1e9)]))[0]
    se = np.empty(wmat.shape[1])
    for j in range(wmat.shape[1]):
        eps = fs.resid.copy()
        eps[target] = fs.resid[target] - _tau_bar(
            v[target, j], fs.resid[target], cell[target], fs.cluster[target], leave_out
        )
        score = np.bincount(fs.cluster, weights=v[:, j] * eps, minlength=fs.n_clusters)
        se[j] = np.sqrt(np.sum(score**2))
    return se


def imputation(
    panel: Panel,
    *,
    covariates: Sequence[str] = (),
    anticipation: int = 0,
    horizons: Sequence[int] | None = None,
    pretrends: int = 0,
    weights: str | None = None,
    cluster: str | None = None,
    leave_out: bool = False,
    inference: Inference = "cluster",
    n_perm: int = 999,
    max_exact: int = MAX_EXACT,
    seed: int = 0,
    se: bool = True,
) -> EventTimeEffect:
    """Event-time and overall ATTs by imputation (Borusyak, Jaravel and Spiess 2024).

    Parameters
    ----------
    panel : Panel
        Panel with cohorts; it may be unbalanced.
    covariates : sequence of str
        Time-varying panel covariates in the ``Y(0)`` model (time-invariant ones are absorbed by the
        unit effects and raise).
    anticipation : int
        Periods before ``g`` already affected; those observations are excluded from the first stage
        and estimated as effects at ``e = -anticipation, ..., -1``.
    horizons : sequence of int, optional
        Event times to report (default: all with treated observations).
    pretrends : int
        Number of pre-treatment event-time coefficients to test (BJS Test 1; 0 = none).
    weights : str, optional
        Observation weights column (default: the panel's declared weights, else equal).
    cluster : str, optional
        Cluster column for the variance (default: units).
    leave_out : bool
        Use the leave-out auxiliary averages in the variance (see the module docstring).
    inference : {"cluster", "randomization", "conley_taber", "ferman_pinto"}
        Where the p-values and intervals of the event-time and overall ATTs come from (default: the BJS
        variance); see docs/estimators/did/inference.md.
    n_perm, max_exact, seed
        Monte Carlo draws (seeded) when there are more than ``max_exact`` assignments or control tuples.
    se : bool
        ``False``: point estimates only, for callers that do their own design-based inference (e.g. a
        placebo reassignment with a Conley-Taber interval); ``se``, p-values and intervals are NaN and
        the result's notes say so. Only then may the design have a single treated (or comparison)
        cluster, whose standard error would be far too small (see ``docs/design_checks.md``).

    Returns
    -------
    EventTimeEffect
        ``label`` = event times, ``overall`` = (ATT, SE) over all post-treatment observations,
        ``pre`` the pre-trend coefficients when ``pretrends > 0``; ``pretest()`` their Wald test.

    Raises
    ------
    DesignError
        Treated units without untreated periods (cohort treated in the first period, or anticipation
        too long), periods without untreated observations, no treated units.
    SpecificationError
        Covariates constant within unit or collinear; unknown horizons.

    Notes
    -----
    Estimand: weighted averages of ``tau_it = Y_it - Y_it(0)`` over treated observations, one per event
    time and one overall. ``Y_it(0)`` is imputed from a two-way fixed-effects model fitted to untreated
    observations. Assumptions: parallel trends in ``Y(0)`` (the two-way model holds for untreated outcomes),
    no anticipation beyond ``anticipation`` periods, homogeneous covariate coefficients. Standard errors:
    the conservative variance of BJS Theorem 3 (see the module docstring).

    References
    ----------
    Borusyak, K., Jaravel, X. and Spiess, J. (2024). Revisiting event-study designs: robust and efficient
    estimation. *Review of Economic Studies* 91(6), 3253-3285.

    Examples
    --------
    >>> from decrimkit import Panel
    >>> from decrimkit.datasets import load_dataset
    >>> from decrimkit.estimators import did
    >>> mpdta = Panel.from_frame(load_dataset("mpdta"), unit="countyreal", time="year",
    ...                          outcome="lemp", cohort="first.treat")
    >>> res = did.imputation(mpdta, pretrends=3)
    >>> res.tidy()[["event_time", "estimate", "se"]]  # doctest: +SKIP
    """
    covariates = tuple(covariates)
    method = check_inference(inference, "imputation", ("cluster", "randomization", "conley_taber", "ferman_pinto"))
    if not isinstance(se, bool):
        raise SpecificationError(f"se must be True or False, got {se!r}.")
    if not se and pretrends:
        raise SpecificationError("pretrends needs standard errors; pass se=True (the default) or pretrends=0.")
    if not se and method != "cluster":
        raise SpecificationError(f"se=False gives point estimates only; inference={method!r} computes its own "
                                 f"intervals, so leave se=True.")
    # the few-clusters rule guards the BJS standard error only (the other methods do not use it)
    fs = first_stage(panel, covariates=covariates, anticipation=anticipation, weights=weights, cluster=cluster,
                     check_clusters=se and method == "cluster")
    hs, wmat = horizon_weights(fs, None if horizons is None else tuple(horizons), anticipation)
    est = wmat[fs.target].T @ fs.resid[fs.target]
    v = imputation_weights(fs, wmat) if se else None
    if se:
        ses = imputation_variance(fs, wmat, panel.frame["g"].to_numpy(), leave_out=bool(leave_out), v=v)
        warn_if_few(panel, "imputation", method)
    else:
        ses = np.full(len(est), np.nan)
    inf = None
    if method != "cluster":

        def refit(p: Panel) -> np.ndarray:
            f = first_stage(p, covariates=covariates, anticipation=anticipation, weights=weights, cluster=cluster)
            w = horizon_weights(f, hs, anticipation)[1]
            return w[f.target].T @ f.resid[f.target]

        if method == "randomization":
            batch = permutation_batch(panel, covariates=covariates, anticipation=anticipation, weights=weights,
                                      horizons=hs)  # every reassignment in batched solves, no refits
            inf = randomization(panel, refit, n_perm=n_perm, max_exact=max_exact, seed=seed, overall=True,
                                batch=batch)
        else:
            inf = residual(panel, refit, method, est, covariates=covariates, n_draws=n_perm, max_exact=max_exact,
                           seed=seed, overall=True, linear=v)  # linear in y through v*: no refits
        inf = dataclasses.replace(inf, rows=tuple(range(len(hs))))
    spec = Spec(
        estimator="did.imputation",
        options={
            "covariates": covariates,
            "anticipation": int(anticipation),
            "horizons": hs,
            "pretrends": int(pretrends),
            "weights": weights,
            "cluster": cluster,
            "leave_out": bool(leave_out),
            "inference": method,
        },
        seed=None if inf is None or getattr(inf, "exact", True) else int(seed),
        n_units=panel.n_units,
        n_periods=panel.n_periods,
        n_obs=panel.n_obs,
        excluded=panel.excluded,
        notes=(f"first stage on {int(fs.untreated.sum())} untreated observations",)
        + (() if se else ("point estimates only (se=False): no standard error, p-value or interval",)),
    )
    pre = None
    if pretrends:
        pre = pretrend_regression(
            fs, panel.unit_index, panel.time_index, panel.y, int(pretrends), int(anticipation), spec
        )
    return EventTimeEffect(
        label=hs,
        estimate=est[:-1],
        se=ses[:-1],
        spec=spec,
        label_name="event_time",
        overall=(float(est[-1]), float(ses[-1])),
        pre=pre,
        title="Event-time ATT by imputation (Borusyak, Jaravel & Spiess)",
        inference=inf,
    )
