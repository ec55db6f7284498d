"""Prosecutor (judge, examiner) leniency as an instrument: the LATE of a lenient decision.

Estimand
--------
Cases are assigned as-if randomly to assignees (assistant district attorneys, judges) within strata
(court by time). Each assignee's leniency shifts the probability of the lenient decision D (e.g. not
prosecuting, D = 1). With leniency as the instrument, 2SLS identifies a weighted average of the effects
of D on the outcome Y for *compliers*, the cases whose decision depends on which assignee they draw
(Imbens & Angrist 1994; with a many-valued instrument, a positively weighted average across the
margins between assignees). The relative effect divides that LATE by the compliers' mean outcome under
the non-lenient decision, E[Y(0) | complier], which is itself a 2SLS coefficient: of Y(1-D) on (1-D),
instrumented by leniency (Abadie 2003; the approach of Agan, Doleac & Harvey 2023).

Leniency
--------
As in the judge-design literature (Dobbie, Goldin & Yang 2018; Agan, Doleac & Harvey 2023), the
decision is first residualised on strata fixed effects, r_i = D_i - mean of D in the case's stratum,
and a case's leniency is the mean of r over *the other* cases of its assignee (leave-one-out). The
case is also left out of its stratum's mean when the assignee's other cases in that stratum are
residualised, so its own decision enters its instrument nowhere. (The usual shortcut keeps a term
of order D_i / (n_stratum * n_assignee) that biases 2SLS toward OLS in small strata: about 10% in the
Suffolk simulator, with about 47 cases and 4 ADAs per court-month; see
:func:`~decrimkit.estimators.iv.design.leave_out_leniency`.)

Assumptions
-----------
(i) As-if random assignment within strata (checked by the balance test), (ii) exclusion: the assignee
affects the outcome only through D, (iii) monotonicity: a more lenient assignee is at least as lenient
for every case (checked by subgroup and reverse-sample first stages), (iv) a strong first stage
(checked by the effective F).

References
----------
Agan, A., Doleac, J. L. & Harvey, A. (2023). Misdemeanor prosecution. QJE 138(3); NBER WP 28600.
Abadie, A. (2003). Semiparametric instrumental variable estimation of treatment response models. J. Econometrics.
Bhuller, M., Dahl, G. B., Loken, K. V. & Mogstad, M. (2020). Incarceration, recidivism, and employment. JPE.
Dahl, G. B., Kostol, A. R. & Mogstad, M. (2014). Family welfare cultures. QJE.
Montiel Olea, J. L. & Pflueger, C. (2013). A robust test for weak instruments. JBES.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd

from decrimkit.errors import DesignError, SpecificationError, WeakInstrumentWarning
from decrimkit.estimators.iv.design import (
    LeniencyDesign,
    demean,
    jackknife_fe_iv,
    jackknife_vcov,
    leniency_design,
    linear_cr1,
    linearmodels_2sls,
)
from decrimkit.estimators.iv.diagnostics import (
    balance_test,
    complier_characteristics,
    first_stage_bins,
    monotonicity_check,
)
from decrimkit.estimators.iv.results import LeniencyResult
from decrimkit.limits import MAX_GRID, check_replications
from decrimkit.options import check_option
from decrimkit.results import Effect, Spec, frozen_array

__all__ = ["leniency", "WEAK_F", "CoreFit", "fit_core", "Engine", "VCov"]

# Montiel Olea & Pflueger (2013) critical value of the effective F for one instrument, 5% test that the
# worst-case 2SLS bias exceeds 10% of the OLS benchmark (tau = 10%): 23.109.
WEAK_F = 23.109

Engine = Literal["linearmodels", "numpy"]
VCov = Literal["jackknife", "cr1"]

LABELS = ("first_stage", "reduced_form", "ols", "late", "complier_mean_untreated", "relative_effect")


class CoreFit(NamedTuple):
    """Headline estimates of one outcome. estimate, se: (6,) in the order of ``LABELS``.

    f_homoskedastic, f_effective: first-stage F statistics (the effective F uses the chosen vcov);
    cov_late_mu0: (2, 2) covariance of (late, complier_mean_untreated), which share the instrument.
    """

    estimate: np.ndarray
    se: np.ndarray
    f_homoskedastic: float
    f_effective: float
    cov_late_mu0: np.ndarray


def fit_core(
    design: LeniencyDesign, *, vcov: VCov = "jackknife", engine: Engine = "linearmodels", diagnostics: bool = True
) -> CoreFit:
    """First stage, reduced form, OLS, 2SLS, complier mean under D=0 and relative effect.

    ``vcov``: ``"jackknife"`` (CR3, delete-one-cluster with the strata means re-estimated; default) or
    ``"cr1"`` (linearmodels' clustered covariance with ``debiased=True``). ``engine`` picks who fits
    the headline 2SLS: linearmodels' IV2SLS (default) or :func:`linear_cr1`, the same estimator in
    NumPy (equal to 1e-8; the Monte Carlo uses it for speed). With ``diagnostics=False`` the reduced
    form and OLS are skipped (NaN).
    """
    check_option("vcov", vcov, VCov)
    check_option("engine", engine, Engine)
    s, n_s, cl, G = design.stratum, design.n_strata, design.cluster, design.n_clusters
    n, p = len(design.d), design.x.shape[1]
    yt, dt, zt = demean(design.y, s, n_s), demean(design.d, s, n_s), demean(design.z, s, n_s)
    y0 = demean(design.y * (1.0 - design.d), s, n_s)
    wt = demean(design.x, s, n_s) if p else np.zeros((n, 0))
    zw = np.column_stack([zt, wt])
    fs = linear_cr1(dt, zw, cl, G, extra_df=n_s)
    z_perp = zt - wt @ np.linalg.lstsq(wt, zt, rcond=None)[0] if p else zt
    sigma2 = float(fs.resid @ fs.resid) / (n - 1 - p - n_s)
    f_homo = float(fs.beta[0] ** 2 / (sigma2 / float(z_perp @ z_perp)))
    rf_pair = ols_pair = (np.nan, np.nan)
    if diagnostics:
        rf = linear_cr1(yt, zw, cl, G, extra_df=n_s)
        ols = linear_cr1(yt, np.column_stack([dt, wt]), cl, G, extra_df=n_s)
        rf_pair, ols_pair = (rf.beta[0], rf.se[0]), (ols.beta[0], ols.se[0])
    late = linear_cr1(yt, np.column_stack([dt, wt]), cl, G, instruments=zw, extra_df=n_s)
    mu0 = linear_cr1(y0, np.column_stack([-dt, wt]), cl, G, instruments=zw, extra_df=n_s)
    b, b_se = float(late.beta[0]), float(late.se[0])
    if engine == "linearmodels":
        lm = linearmodels_2sls(yt, dt, wt, zt, cl, extra_df=n_s)
        b, b_se = float(lm.beta[0]), float(lm.se[0])
    m = float(mu0.beta[0])
    est = np.array([fs.beta[0], rf_pair[0], ols_pair[0], b, m, b / m])
    if vcov == "cr1":
        cross = late.factor * float(late.scores[:, 0] @ mu0.scores[:, 0])
        cov = np.array([[b_se**2, cross], [cross, mu0.cov[0, 0]]])
        grad = np.array([1.0 / m, -b / m**2])
        se = np.array([fs.se[0], rf_pair[1], ols_pair[1], b_se, mu0.se[0], float(np.sqrt(grad @ cov @ grad))])
    else:
        se, cov = _jackknife_se(design, yt, dt, zt, y0, wt, diagnostics)
    f_eff = float((est[0] / se[0]) ** 2)
    return CoreFit(est, se, f_homo, f_eff, cov)


def _jackknife_se(
    design: LeniencyDesign,
    yt: np.ndarray,
    dt: np.ndarray,
    zt: np.ndarray,
    y0: np.ndarray,
    wt: np.ndarray,
    diagnostics: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """CR3 standard errors of the six headline terms and the (late, mu0) covariance.

    Covariates are partialled out on the full sample (their coefficients are held fixed across
    deletions); the strata means are re-estimated in every deletion.
    """
    if wt.shape[1]:
        proj = np.linalg.lstsq(wt, np.column_stack([yt, dt, zt, y0]), rcond=None)[0]
        yt, dt, zt, y0 = (np.column_stack([yt, dt, zt, y0]) - wt @ proj).T
    args = (design.stratum, design.n_strata, design.cluster, design.n_clusters)
    fits = {"first_stage": (dt, zt, zt), "late": (yt, dt, zt), "mu0": (y0, -dt, zt)}
    if diagnostics:
        fits |= {"reduced_form": (yt, zt, zt), "ols": (yt, dt, dt)}
    jk = {k: jackknife_fe_iv(*v, *args) for k, v in fits.items()}
    rel = (jk["late"][0] / jk["mu0"][0], jk["late"][1] / jk["mu0"][1])
    order = [jk["first_stage"], jk.get("reduced_form"), jk.get("ols"), jk["late"], jk["mu0"], rel]
    se = np.array(
        [np.nan if f is None else float(np.sqrt(jackknife_vcov(np.array([f[0]]), f[1][:, None])[0, 0])) for f in order]
    )
    pair = jackknife_vcov(np.array([jk["late"][0], jk["mu0"][0]]), np.column_stack([jk["late"][1], jk["mu0"][1]]))
    return se, pair


def _subgroups(cases: pd.DataFrame, design: LeniencyDesign, subgroups: Sequence[str] | None) -> dict[str, np.ndarray]:
    if subgroups is None:
        return {}
    cols = (subgroups,) if isinstance(subgroups, str) else tuple(subgroups)
    out = {}
    for c in cols:
        if c not in cases.columns:
            raise SpecificationError(f"subgroups column {c!r} is not in cases; name existing columns.")
        labels = cases[c].iloc[design.row_index]
        if labels.isna().any():
            raise SpecificationError(f"subgroups column {c!r} has missing values; fill them or use another column.")
        k = labels.nunique()
        if k < 2 or k > 20:
            raise SpecificationError(
                f"subgroups column {c!r} has {k} levels; monotonicity checks need 2 to 20 (bin a continuous column first)."
            )
        out[c] = labels.to_numpy()
    return out


def leniency(
    cases: pd.DataFrame,
    *,
    decision: str,
    outcome: str,
    assignee: str,
    strata: str | Sequence[str],
    covariates: Sequence[str] = (),
    cluster: str | None = None,
    min_cases: int = 50,
    strict: bool = False,
    subgroups: Sequence[str] | None = None,
    vcov: VCov = "jackknife",
    n_bins: int = 20,
) -> LeniencyResult:
    """Effect of a lenient decision (e.g. non-prosecution) instrumented by assignee leniency.

    Parameters
    ----------
    cases : DataFrame
        One row per case. Not modified.
    decision : str
        0/1 column, 1 = the lenient decision (not prosecuted).
    outcome : str
        Numeric outcome (e.g. any new complaint within 2 years, number of new complaints).
    assignee : str
        Who decides (ADA, judge). Assignment must be as-if random within ``strata``.
    strata : str or sequence of str
        Column(s) whose combination defines the randomisation strata (e.g. ``("court", "month")``).
        Absorbed as fixed effects; strata served by one assignee are dropped (recorded on ``spec``).
    covariates : sequence of str
        Numeric case characteristics: controls in every regression, tested for balance, described
        for compliers.
    cluster : str, optional
        Clustering column; default the assignee.
    min_cases : int
        Fewest cases an assignee may have (default 50).
    strict : bool
        Raise instead of warning when the instrument is weak.
    subgroups : sequence of str, optional
        Columns (2-20 levels each) for the monotonicity checks.
    vcov : {"jackknife", "cr1"}
        Standard errors of the headline terms: the cluster jackknife (CR3, default) or CR1, the
        clustered covariance of linearmodels' IV2SLS with the strata counted in the degrees of
        freedom. Diagnostics (balance, monotonicity, compliers) always use CR1.
    n_bins : int
        Leniency bins of the first-stage figure.

    Returns
    -------
    LeniencyResult
        ``estimate``/``se``/``conf_int()`` of the LATE; ``relative``; ``tidy()`` of every term;
        ``balance``, ``monotonicity``, ``compliers``; ``plot(kind=...)``.

    Raises
    ------
    DataError
        Missing columns or values, a decision that is not 0/1, non-numeric outcome or covariates.
    DesignError
        No variation in the decision; an assignee with fewer than ``min_cases`` cases; an assignee
        seen in only one stratum; a weak instrument under ``strict=True``.

    Warns
    -----
    WeakInstrumentWarning
        When the effective F is below 23.109 (Montiel Olea & Pflueger 2013, tau = 10%).

    Notes
    -----
    Strata fixed effects are absorbed by within-strata demeaning; by Frisch-Waugh-Lovell this gives the
    coefficients of the dummy-variable regression, and with the strata counted in the degrees of
    freedom the same CR1 clustered standard errors (linearmodels IV2SLS, ``debiased=True``).

    Why the jackknife is the default: when each assignee handles a large share of every stratum it
    works in (4 ADAs per court-month gives 1/4), the strata means absorb part of each assignee's own
    residuals, and CR1 computed from the demeaned residuals understates the variance by roughly that
    share. In the Suffolk simulator CR1 intervals cover 86-89% instead of 95%; the delete-one-cluster
    jackknife, which re-estimates the strata means without the deleted assignee, restores coverage
    (see the study's Monte Carlo). The jackknife holds the leniency instrument and the covariate
    coefficients at their full-sample values.

    For one instrument the Montiel Olea-Pflueger effective F equals the robust first-stage Wald F
    (with the chosen ``vcov``).

    Estimand: the 2SLS LATE of the decision for compliers (cases whose decision depends on the assignee
    drawn), a positively weighted average over the margins between assignees, and its ratio to the
    complier mean of ``Y(0)``. Assumptions: as-if random assignment within strata, exclusion, monotonicity
    and a strong first stage (module docstring).

    References
    ----------
    Imbens, G. W. and Angrist, J. D. (1994). Identification and estimation of local average treatment
    effects. *Econometrica* 62(2), 467-475.
    Agan, A., Doleac, J. L. and Harvey, A. (2023). Misdemeanor prosecution. *QJE* 138(3).
    Abadie, A. (2003). Semiparametric instrumental variable estimation of treatment response models.
    *Journal of Econometrics* 113(2), 231-263.
    Montiel Olea, J. L. and Pflueger, C. (2013). A robust test for weak instruments. *JBES* 31(3), 358-369.

    Examples
    --------
    >>> from decrimkit.estimators import iv
    >>> from decrimkit.studies.suffolk import simulate
    >>> sim = simulate(seed=1)  # 67,553 simulated cases; the true relative effect is -0.53
    >>> res = iv.leniency(sim.cases, decision="not_prosecuted", outcome="any_new_complaint",
    ...                   assignee="ada", strata=("court", "month"))
    >>> abs(res.relative - sim.truth["relative_any"]) < 2 * res.relative_se
    True
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 2:
        raise SpecificationError(f"n_bins must be an integer >= 2, got {n_bins!r}.")
    check_replications("n_bins", n_bins, maximum=MAX_GRID)
    design = leniency_design(
        cases,
        decision=decision,
        outcome=outcome,
        assignee=assignee,
        strata=strata,
        covariates=covariates,
        cluster=cluster,
        min_cases=min_cases,
    )
    core = fit_core(design, vcov=vcov)
    notes = []
    if core.f_effective < WEAK_F:
        msg = (
            f"weak instrument: effective first-stage F = {core.f_effective:.2f} < {WEAK_F} "
            "(Montiel Olea-Pflueger, tau=10%); 2SLS may be badly biased and its intervals too narrow. "
            "Use more cases per assignee or coarser strata, or report weak-IV-robust (Anderson-Rubin) inference."
        )
        if strict:
            raise DesignError(msg)
        warnings.warn(msg, WeakInstrumentWarning, stacklevel=2)
        notes.append(msg)
    balance = balance_test(design)
    mono = monotonicity_check(design, _subgroups(cases, design, subgroups))
    compliers, share = complier_characteristics(design, float(core.estimate[0]))
    bins = first_stage_bins(design, float(core.estimate[0]), n_bins)
    spec = Spec(
        estimator="iv.leniency",
        options={
            "decision": decision,
            "outcome": outcome,
            "assignee": assignee,
            "strata": (strata,) if isinstance(strata, str) else tuple(strata),
            "covariates": tuple(covariates),
            "cluster": cluster or assignee,
            "min_cases": min_cases,
            "strict": strict,
            "subgroups": tuple(subgroups or ()),
            "vcov": vcov,
            "leniency": "leave-one-out mean of the decision residualised on strata fixed effects "
            "(own case left out of the assignee mean and of its stratum mean)",
            "vcov_detail": "CR3 cluster jackknife, strata means re-estimated"
            if vcov == "jackknife"
            else "CR1 clustered, strata counted in the degrees of freedom",
        },
        n_obs=len(design.d),
        excluded=design.excluded,
        notes=(
            f"{design.n_assignees} {assignee} values, {design.n_clusters} clusters, {design.n_strata} strata",
            *notes,
        ),
    )
    effects = Effect(
        label=LABELS,
        estimate=core.estimate,
        se=core.se,
        spec=spec,
        label_name="term",
        title=f"Leniency IV: {decision} -> {outcome}",
    )
    return LeniencyResult(
        outcome=outcome,
        decision=decision,
        effects=effects,
        first_stage_f=core.f_homoskedastic,
        effective_f=core.f_effective,
        balance=balance.table,
        balance_joint=(balance.joint_f, balance.joint_p, *balance.joint_df),
        monotonicity=mono,
        compliers=compliers,
        complier_share=share,
        bins=bins,
        assignee_leniency=frozen_array(design.assignee_leniency),
        n_cases=len(design.d),
        n_assignees=design.n_assignees,
        n_strata=design.n_strata,
        spec=spec,
    )
