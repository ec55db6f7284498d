"""Synthetic difference-in-differences (Arkhangelsky, Athey, Hirshberg, Imbens and Wager 2021).

Estimand: the average effect on the treated units over the post-treatment periods,

    tau = (1/N1 sum_tr - sum_co omega_i) Y (1/T1 sum_post - sum_pre lambda_t),

with unit weights omega (on the simplex, with an intercept, ridge ``zeta_omega``) that make the
controls' pre-period trends parallel to the treated units', and time weights lambda (simplex,
intercept, ``zeta_lambda``) that balance pre- against post-periods for the controls.
``estimator="sc"`` gives synthetic control (lambda = 0, no unit intercept, ridge 1e-6 sigma) and
``estimator="did"`` difference-in-differences (uniform weights), as R ``synthdid``'s
``sc_estimate`` and ``did_estimate``.

Assumptions: a latent factor model for untreated outcomes; treatment is not anticipated; the
controls never adopt. With staggered adoption each adoption cohort is estimated against the
never-treated units using all periods before its adoption as pre-periods, and the cohort effects
are averaged with weights proportional to the number of treated unit-periods (N_a * T_a), as in
the synthdid staggered-adoption example and Stata ``sdid`` (Clarke et al. 2023).

The weights are computed with synthdid's Frank-Wolfe solver reproduced step for step (see
``_sdid_solver``): exact line search, 100 iterations, sparsification (weights at or below a quarter
of the largest set to zero), then up to 10,000 iterations stopping once an iteration lowers the
penalised loss by less than ``(1e-5 sigma)^2``; sigma is the standard deviation of the controls'
first differences before adoption. This early stop is part of the estimator: the R reference values
depend on it.

References
----------
Arkhangelsky, D., Athey, S., Hirshberg, D. A., Imbens, G. W. and Wager, S. (2021). Synthetic
difference-in-differences. American Economic Review 111(12), 4088-4118.
Clarke, D., Pailanir, D., Athey, S. and Imbens, G. (2023). On synthetic difference-in-differences
and related estimation methods in Stata. Stata Journal.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from decrimkit.errors import DesignError
from decrimkit.limits import MAX_REFITS, check_replications
from decrimkit.numerics.keys import key_from_seed
from decrimkit.options import SDIDSE, check_option
from decrimkit.panel import Panel
from decrimkit.results import Spec

from ._design import outcome_wide
from ._sdid_solver import OPTIONS, SDIDFit, fit_problems, sdid_fit_batch
from .results import SDIDResult

__all__ = ["sdid"]

SDIDEstimator = Literal["sdid", "sc", "did"]


# ---------------------------------------------------------------------------------------------- cohorts
class _Cohort(NamedTuple):
    label: Any
    t0: int
    treated_rows: np.ndarray  # indices into the panel's units
    zeta_omega: float
    zeta_lambda: float
    min_dec: float
    fit: SDIDFit
    weight_cells: int  # N_a * T_a


def _sum_normalize(x: np.ndarray) -> np.ndarray:
    s = x.sum()
    return x / s if s != 0 else np.full(len(x), 1.0 / len(x))


def _noise(y_ctrl_pre: np.ndarray) -> float:
    return float(np.std(np.diff(y_ctrl_pre, axis=1).ravel(), ddof=1))


def _fit_cohort(y, ctrl_idx, tr_idx, t0, estimator, label) -> _Cohort:
    n0, n1, t1 = len(ctrl_idx), len(tr_idx), y.shape[1] - t0
    sigma = _noise(y[ctrl_idx, :t0])
    if not sigma > 0:
        raise DesignError(
            f"cohort {label}: the control units' pre-period outcomes do not change from one period to the "
            f"next (their first differences have standard deviation 0), so SDID's noise level, which sets "
            f"the regularisation and the solver's stopping rule (Arkhangelsky et al. 2021), is zero and the "
            f"weights are not identified. Check the outcome column, or use more pre-periods or controls."
        )
    opts = OPTIONS[estimator]
    eta_omega = (n1 * t1) ** 0.25 if estimator == "sdid" else 1e-6
    ctrl = np.zeros((1, y.shape[0]), dtype=bool)
    ctrl[0, ctrl_idx] = True
    treat = np.zeros_like(ctrl)
    treat[0, tr_idx] = True
    omega0 = np.where(ctrl, 1.0 / n0, 0.0)
    lam0 = np.zeros(t0) if estimator == "sc" else np.full(t0, 1.0 / t0)
    # all units, addressed by position (other cohorts' treated units are in neither mask)
    fit = fit_problems(y, ctrl, treat, omega0, lam0, eta_omega * sigma, 1e-6 * sigma, 1e-5 * sigma, t0=t0, opts=opts)
    fit = SDIDFit(*(f[0] for f in fit))
    fit = fit._replace(omega=fit.omega[ctrl_idx])  # omega over the controls, in ctrl_idx order
    return _Cohort(label, t0, tr_idx, eta_omega * sigma, 1e-6 * sigma, 1e-5 * sigma, fit, n1 * t1)


def _aggregate(estimates: np.ndarray, cells: np.ndarray) -> np.ndarray:
    return (estimates * cells).sum(axis=-1) / cells.sum(axis=-1)


# ---------------------------------------------------------------------------------------------- inference
def _placebo(y, ctrl_idx, cohorts, estimator, n_reps, key) -> np.ndarray:
    """Algorithm 4: controls play the treated units (cohort sizes kept); all reps in one vmapped batch per cohort."""
    n0 = len(ctrl_idx)
    n_tr = sum(len(c.treated_rows) for c in cohorts)
    if n0 <= n_tr:
        raise DesignError(
            f"placebo standard errors need more control units ({n0}) than treated units ({n_tr}). "
            f"Use se_method='bootstrap' or 'jackknife'."
        )
    perms = np.asarray(jax.vmap(lambda k: jax.random.permutation(k, n0))(jax.random.split(key, n_reps)))
    keep = perms[:, : n0 - n_tr]
    out = np.empty((n_reps, len(cohorts)))
    offset = n0 - n_tr
    for j, c in enumerate(cohorts):
        n_a = len(c.treated_rows)
        fake = perms[:, offset : offset + n_a]
        offset += n_a
        reps = np.arange(n_reps)[:, None]
        ctrl = np.zeros((n_reps, y.shape[0]), dtype=bool)  # masks over all units, by position
        ctrl[reps, ctrl_idx[keep]] = True
        treat = np.zeros_like(ctrl)
        treat[reps, ctrl_idx[fake]] = True
        omega_ctrl = c.fit.omega[:n0]  # fitted omega over the controls (ctrl_idx order)
        omega0 = np.zeros(ctrl.shape)
        omega0[reps, ctrl_idx[keep]] = np.stack([_sum_normalize(omega_ctrl[k]) for k in keep])
        fit = fit_problems(y, ctrl, treat, omega0, c.fit.lam, c.zeta_omega, c.zeta_lambda, c.min_dec,
                           t0=c.t0, opts=OPTIONS[estimator])
        out[:, j] = fit.estimate
    cells = np.array([c.weight_cells for c in cohorts], dtype=float)
    return _aggregate(out, cells)


def _bootstrap(y, ctrl_idx, cohorts, estimator, n_reps, key) -> np.ndarray:
    """Algorithm 2: resample units with replacement (draws without controls or treated are redrawn)."""
    n_tr = sum(len(c.treated_rows) for c in cohorts)
    if n_tr < 2:
        raise DesignError(
            "the bootstrap needs at least two treated units (with one, every draw that keeps it repeats the same "
            "treated path; synthdid returns NA). Use se_method='placebo'."
        )
    units = np.concatenate([ctrl_idx] + [c.treated_rows for c in cohorts])
    n0, n = len(ctrl_idx), len(units)
    cohort_of = np.concatenate([np.full(n0, -1)] + [np.full(len(c.treated_rows), j) for j, c in enumerate(cohorts)])
    draws = []
    rng_keys = jax.random.split(key, n_reps * 20)
    for k in rng_keys:  # redraw invalid samples, as synthdid's bootstrap_sample does
        ind = np.sort(np.asarray(jax.random.choice(k, n, (n,), replace=True)))
        if (ind < n0).all() or (ind >= n0).all():
            continue
        draws.append(ind)
        if len(draws) == n_reps:
            break
    ind = np.stack(draws)  # (R, N), sorted: controls first
    est = np.zeros((n_reps, len(cohorts)))
    cells = np.zeros((n_reps, len(cohorts)))
    for j, c in enumerate(cohorts):
        ctrl = ind < n0
        treat = cohort_of[ind] == j
        has = treat.any(axis=1)
        omega_ctrl = c.fit.omega[:n0]
        omega0 = np.zeros(ind.shape)
        for r in range(n_reps):
            sampled = _sum_normalize(omega_ctrl[ind[r][ctrl[r]]])
            omega0[r, : len(sampled)] = sampled
        fit = sdid_fit_batch(
            jnp.asarray(y),
            jnp.asarray(units[ind]),
            jnp.asarray(ctrl),
            jnp.asarray(treat),
            jnp.asarray(omega0),
            jnp.asarray(c.fit.lam),
            c.zeta_omega,
            c.zeta_lambda,
            c.min_dec,
            t0=c.t0,
            opts=OPTIONS[estimator],
        )
        est[:, j] = np.where(has, np.asarray(fit.estimate), 0.0)
        cells[:, j] = treat.sum(axis=1) * (y.shape[1] - c.t0)
    return _aggregate(est, cells)


def _jackknife(y, ctrl_idx, cohorts) -> np.ndarray:
    """Algorithm 3: fixed-weights jackknife, leaving out one unit at a time."""
    n_tr = sum(len(c.treated_rows) for c in cohorts)
    if n_tr < 2:
        raise DesignError(
            "the jackknife needs at least two treated units (synthdid returns NA). Use se_method='placebo'."
        )
    n0 = len(ctrl_idx)
    units = np.concatenate([ctrl_idx] + [c.treated_rows for c in cohorts])
    reps = []
    for leave in range(len(units)):
        est, cells = [], []
        for c in cohorts:
            omega = c.fit.omega[:n0].copy()
            tr = [u for u in c.treated_rows if u != units[leave]]
            if leave < n0:
                omega = np.delete(omega, leave)
                ctrl = np.delete(ctrl_idx, leave)
                if omega.sum() == 0:
                    raise DesignError("the fixed-weights jackknife needs at least two controls with positive weight.")
                omega = omega / omega.sum()
            else:
                ctrl = ctrl_idx
            if not tr:
                continue
            t1 = y.shape[1] - c.t0
            tw = np.concatenate([-c.fit.lam, np.full(t1, 1.0 / t1)])
            est.append((y[tr].mean(axis=0) - omega @ y[ctrl]) @ tw)
            cells.append(len(tr) * t1)
        reps.append(np.dot(est, cells) / np.sum(cells))
    return np.asarray(reps)


# ---------------------------------------------------------------------------------------------- public
def sdid(
    panel: Panel,
    *,
    estimator: SDIDEstimator = "sdid",
    se_method: SDIDSE | None = "placebo",
    n_reps: int = 200,
    seed: int = 0,
) -> SDIDResult:
    """Synthetic difference-in-differences (and its SC and DID special cases) with synthdid's solver.

    Parameters
    ----------
    panel : Panel
        Balanced panel; treated units adopt at their cohort and stay treated; never-treated units are
        the controls. Rates per 100,000 are used when the panel has ``population``.
    estimator : {"sdid", "sc", "did"}
        Synthetic DiD (default), synthetic control, or DiD, as R synthdid's three estimators.
    se_method : {"placebo", "bootstrap", "jackknife"}
        Algorithms 4, 2 and 3 of Arkhangelsky et al.; placebo is the only one with one treated unit.
        ``None`` skips the standard error (``se`` is NaN).
        Placebo and bootstrap weights are re-estimated per replicate (initialised at the fitted ones),
        all replicates of a cohort in one vmapped batch; the jackknife keeps the weights fixed.
    n_reps : int
        Placebo or bootstrap replications (SE uses synthdid's ``sqrt((R-1)/R) * sd``).
    seed : int
        Seed of the placebo permutations or bootstrap draws (JAX keys; numbers differ from R's RNG).

    Returns
    -------
    SDIDResult
        ``estimate``, ``se``, ``unit_weights`` (omega), ``time_weights`` (lambda), ``gap`` (synthdid's
        effect curve, with pre-periods net of the lambda-weighted pre-period difference).

    Raises
    ------
    DesignError
        No treated or fewer than two control units, an unbalanced panel, fewer than two pre-periods,
        or a variance method that the design does not allow.

    Notes
    -----
    Estimand: the average effect on the treated units over the post-periods,
    ``tau = (1/N1 sum_tr - sum_co omega_i) Y (1/T1 sum_post - sum_pre lambda_t)``, with simplex unit weights
    ``omega`` and time weights ``lambda`` (``estimator="sc"`` and ``"did"`` are the special cases). Staggered
    adoption: cohort effects against the never-treated, weighted by treated unit-periods. Assumptions: a
    latent factor model for untreated outcomes, no anticipation, controls never adopt.

    References
    ----------
    Arkhangelsky, D., Athey, S., Hirshberg, D. A., Imbens, G. W. and Wager, S. (2021). Synthetic
    difference-in-differences. *AER* 111(12), 4088-4118.
    Clarke, D., Pailanir, D., Athey, S. and Imbens, G. (2023). On synthetic difference-in-differences
    and related estimation methods in Stata. *Stata Journal*.

    Examples
    --------
    >>> from decrimkit.datasets import load_dataset
    >>> df = load_dataset("prop99", file="california_prop99_long.csv")
    >>> panel = Panel.from_frame(df, unit="State", time="Year", outcome="PacksPerCapita", treated="treated")
    >>> round(sdid(panel, n_reps=50).estimate, 5)
    -15.60383
    """
    check_option("estimator", estimator, SDIDEstimator)
    if se_method is not None:
        check_option("se_method", se_method, SDIDSE)
    check_replications("n_reps", n_reps, maximum=MAX_REFITS)
    if int(n_reps) < 2:
        raise DesignError(f"n_reps={n_reps}: at least 2 replications are needed for a standard error.")
    panel.require_balanced("sdid")
    if panel.has_group:
        raise DesignError("sdid needs one row per unit and period; this panel has a group dimension.")
    wide, scale, notes = outcome_wide(panel)
    y = wide.to_numpy(dtype="float64")
    g = panel.unit_cohort.to_numpy()
    ctrl_idx = np.flatnonzero(~np.isfinite(g))
    if not np.isfinite(g).any():
        raise DesignError("no unit is ever treated; build the panel with treated= or cohort=.")
    if len(ctrl_idx) < 2:
        raise DesignError(f"sdid needs at least two never-treated control units; the panel has {len(ctrl_idx)}.")
    cohorts = []
    for a in np.unique(g[np.isfinite(g)]).astype(int):
        if a < 2:
            raise DesignError(f"cohort {panel.times[a]} has {a} pre-period(s); sdid needs at least two.")
        cohorts.append(_fit_cohort(y, ctrl_idx, np.flatnonzero(g == a), a, estimator, panel.times[a]))
    cells = np.array([c.weight_cells for c in cohorts], dtype=float)
    estimate = float(_aggregate(np.array([float(c.fit.estimate) for c in cohorts]), cells))

    key = key_from_seed(seed)
    if se_method is None:
        reps = np.array([np.nan, np.nan])
    elif se_method == "placebo":
        reps = _placebo(y, ctrl_idx, cohorts, estimator, int(n_reps), key)
    elif se_method == "bootstrap":
        reps = _bootstrap(y, ctrl_idx, cohorts, estimator, int(n_reps), key)
    else:
        reps = _jackknife(y, ctrl_idx, cohorts)
    if se_method == "jackknife":
        n = len(reps)
        se = float(np.sqrt((n - 1) ** 2 / n * np.var(reps, ddof=1)))
    else:
        se = float(np.sqrt((len(reps) - 1) / len(reps)) * np.std(reps, ddof=1))

    return _result(panel, y, ctrl_idx, cohorts, cells, estimate, se, estimator, se_method, n_reps, seed, scale, notes)


def _result(panel, y, ctrl_idx, cohorts, cells, estimate, se, estimator, se_method, n_reps, seed, scale, notes):
    controls = [panel.units[i] for i in ctrl_idx]
    share = cells / cells.sum()
    omega = sum(s * c.fit.omega[: len(ctrl_idx)] for s, c in zip(share, cohorts))
    first = cohorts[0]
    t0 = first.t0
    omega1 = first.fit.omega[: len(ctrl_idx)]
    treated_path = y[first.treated_rows].mean(axis=0)
    ctrl_path = omega1 @ y[ctrl_idx]
    offset = (treated_path[:t0] - ctrl_path[:t0]) @ first.fit.lam
    synthetic = ctrl_path + offset
    times = list(panel.times)
    notes = list(notes)
    if len(cohorts) > 1:
        notes.append(
            f"staggered adoption: {len(cohorts)} cohorts estimated separately against never-treated units and "
            f"averaged with weights N_a*T_a; unit_weights are that weighted average of the cohorts' omegas; "
            f"gap, trajectory and time_weights are those of the first cohort ({first.label})"
        )
    labels = {"sdid": "synthetic DiD", "sc": "synthetic control (synthdid)", "did": "DiD (synthdid)"}
    spec = Spec(
        estimator="synth.sdid",  # the variant (sdid, sc, did) is options["estimator"]
        options={
            "estimator": estimator,
            "se_method": se_method,
            "n_reps": int(n_reps),
            "scale": scale,
            "zeta_omega": [c.zeta_omega for c in cohorts] if estimator == "sdid" else None,
            "zeta_lambda": [c.zeta_lambda for c in cohorts],
        },
        seed=seed,
        n_units=panel.n_units,
        n_periods=panel.n_periods,
        n_obs=panel.n_obs,
        excluded=tuple(panel.excluded),
        notes=tuple(notes),
    )
    cohort_table = pd.DataFrame(
        {
            "cohort": [c.label for c in cohorts],
            "n_treated": [len(c.treated_rows) for c in cohorts],
            "n_post": [y.shape[1] - c.t0 for c in cohorts],
            "weight": share,
            "estimate": [float(c.fit.estimate) for c in cohorts],
        }
    )
    return SDIDResult(
        estimate=estimate,
        se=se,
        weights=pd.Series(omega, index=pd.Index(controls, name="unit"), name="omega"),
        gap=pd.Series(treated_path - synthetic, index=pd.Index(times, name="time"), name="gap"),
        observed=pd.Series(treated_path, index=pd.Index(times, name="time"), name="treated"),
        synthetic=pd.Series(synthetic, index=pd.Index(times, name="time"), name="synthetic"),
        start=first.label,
        spec=spec,
        se_method=se_method,
        extra={"cohorts": cohort_table},
        title=f"Synthetic DiD family: {labels[estimator]}",
        time_weights=pd.Series(first.fit.lam, index=pd.Index(times[:t0], name="time"), name="lambda"),
    )
