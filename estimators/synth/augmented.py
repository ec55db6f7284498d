"""Augmented synthetic control (Ben-Michael, Feller and Rothstein 2021), ridge outcome model.

Estimand: the effect on one treated unit in each post-period, ``Y_1t - sum_j w_j Y_jt``, and its
post-period mean (``estimate``). The weights are the SCM weights (simplex, fitted to the pre-period
outcomes with V = I, as augsynth) plus a ridge correction that removes the remaining pre-period
imbalance: ``w = w_scm + X_c (X_c'X_c + lambda I)^{-1} (x_1 - X_c'w_scm)`` on control-centred
pre-period outcomes. The weights sum to one but may be negative (extrapolation).
``fixedeff=True`` first removes each unit's pre-period mean (an intercept shift, as augsynth).

lambda, when not given, follows augsynth's ``cv_lambda``: 21 values from ``sigma_max(X_c)^2`` down
by a factor 1e-8; each pre-period but the last is held out in turn (SCM and ridge refitted without
it), and the largest lambda whose mean held-out squared error is within one standard error of the
minimum is chosen. All held-out fits run as one vmapped batch.

Assumptions: untreated outcomes follow a (linear) factor or autoregressive model; no anticipation
or interference; donors untreated.

``conformal(alpha)`` is Chernozhukov, Wuthrich and Zhu's (2021) conformal inference as in augsynth's
``conformal_inf``: for each post-period and each null effect on a grid the period is appended to
the pre-period with the null imposed, the estimator refitted, and the p-value is the share of the
residuals' cyclic shifts whose statistic is at least the observed one. We use the moving-block
(cyclic shift) permutations, which for one period equal the limit of augsynth's default of 1,000
i.i.d. permutations, and keep lambda fixed at the fitted value in the refits (augsynth
re-cross-validates it unless lambda was given). All refits run as one vmapped batch.

``conformal_average(result, alpha)`` inverts CWZ's test of a *constant* effect over all post-periods
(their Section 2 null ``theta_t = theta_0`` for every post t): for each ``theta_0`` on a grid the
treated unit's post-period outcomes are shifted by ``-theta_0``, the estimator is refitted on every
period, and the statistic ``sum over post-periods of |residual|`` is compared with its value under
permutations of the residuals; the interval holds the ``theta_0`` not rejected at ``alpha``.
``permutations="iid"`` (augsynth's default ``type``) uses every assignment of the residuals to the
post-periods (enumerated exactly when there are at most ``max_exact`` of them, else ``n_perm``
random ones plus the observed one); ``"block"`` uses the T cyclic shifts, valid under weaker
(stationary, weakly dependent) errors but with p-values no smaller than 1 / T. With ``"block"`` the
p-value at ``theta_0 = 0`` is ``conformal(...).p_value_joint``. augsynth itself reports no
average-effect interval (its sliding-average code is disabled), so this part has no peer to match.
Power caveat: the ridge correction is linear in the imposed shift, so with more donors than periods a
small lambda can absorb any constant effect and far nulls are never rejected (an unbounded interval,
reported as -inf/inf); plain SCM weights (``progfunc="none"``) are bounded and do not have this problem.

References
----------
Ben-Michael, E., Feller, A. and Rothstein, J. (2021). The augmented synthetic control method.
JASA 116(536), 1789-1803. Chernozhukov, V., Wuthrich, K. and Zhu, Y. (2021). An exact and robust
conformal inference method for counterfactual and synthetic controls. JASA 116(536), 1849-1864.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from itertools import combinations
from math import comb
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from decrimkit.errors import SpecificationError
from decrimkit.numerics.keys import numpy_rng
from decrimkit.options import check_option
from decrimkit.panel import Panel
from decrimkit.results import Spec, Summarised

from ._design import synth_design
from ._simplex import simplex_qp
from .results import AugmentedResult, ConformalResult

__all__ = ["augmented", "conformal", "conformal_average", "ConformalAverage"]

ProgFunc = Literal["ridge", "none"]
Permutations = Literal["iid", "block"]


class AugFit(NamedTuple):
    """w: (J,) augmented weights; w_scm: (J,) SCM part; att: (T,) treated minus synthetic."""

    w: jax.Array
    w_scm: jax.Array
    att: jax.Array


def _weights(xc, x1, lam, ridge: bool, used):
    """SCM weights (V = I) plus the ridge correction. xc: (J, T) centred controls, zero in the columns
    not ``used`` for fitting; x1: (T,), likewise."""
    sol = simplex_qp(xc @ xc.T, xc @ x1)
    if not ridge:
        return sol.w, sol.w
    resid = x1 - xc.T @ sol.w
    # unused columns are zero in xc and resid: a unit diagonal there decouples them (solution 0) and
    # keeps the system regular whatever lambda is
    adj = xc @ jnp.linalg.solve(xc.T @ xc + jnp.diag(jnp.where(used, lam, 1.0)), resid)
    return sol.w + adj, sol.w


def _fit_one(y1, yc, t0_mask, lam, *, ridge: bool, fixedeff: bool) -> AugFit:
    """One fit on outcomes y1 (T,), yc (J, T); columns where ``t0_mask`` are the fitting periods."""
    if fixedeff:
        n = jnp.sum(t0_mask)
        y1 = y1 - jnp.sum(jnp.where(t0_mask, y1, 0.0)) / n
        yc = yc - (jnp.sum(jnp.where(t0_mask[None, :], yc, 0.0), axis=1) / n)[:, None]
    centre = jnp.mean(yc, axis=0)
    xc = jnp.where(t0_mask[None, :], yc - centre[None, :], 0.0)
    x1 = jnp.where(t0_mask, y1 - centre, 0.0)
    w, w_scm = _weights(xc, x1, lam, ridge, t0_mask)
    return AugFit(w=w, w_scm=w_scm, att=y1 - w @ yc)


@partial(jax.jit, static_argnames=("ridge", "fixedeff"))
def aug_fit(y1, yc, t0_mask, lam, *, ridge: bool, fixedeff: bool) -> AugFit:
    """Jitted single augmented-SCM fit."""
    return _fit_one(y1, yc, t0_mask, lam, ridge=ridge, fixedeff=fixedeff)


@partial(jax.jit, static_argnames=("ridge", "fixedeff"))
def aug_fit_batch(y1, yc, t0_mask, lam, *, ridge: bool, fixedeff: bool) -> AugFit:
    """A batch of fits: y1 (B, T), yc (J, T) shared, t0_mask (B, T), lam shared."""
    one = partial(_fit_one, ridge=ridge, fixedeff=fixedeff)
    return jax.vmap(one, in_axes=(0, None, 0, None))(y1, yc, t0_mask, lam)


ROWS = 32  # fits per aug_fit_batch call (fit_rows): one compiled kernel per panel shape


def fit_rows(y1, yc, masks, lam, *, ridge: bool, fixedeff: bool) -> AugFit:
    """Fits of treated rows ``y1`` (B, T) on the shared controls ``yc`` (J, T), fitting periods ``masks``
    (B, T), as numpy arrays.

    Every call of ``aug_fit_batch`` runs exactly :data:`ROWS` fits (the last chunk padded by repeating
    a row, dropped from the output), so the fit, the per-period conformal grid, the joint test and the
    average-effect grid of one panel share one compiled kernel instead of compiling once per batch
    size; 31 padded rows cost a few milliseconds at Oregon's size against ~2.5 s per compilation.
    """
    b = y1.shape[0]
    pad = -b % ROWS
    if pad:
        y1 = np.concatenate([y1, np.repeat(y1[-1:], pad, axis=0)])
        masks = np.concatenate([masks, np.repeat(masks[-1:], pad, axis=0)])
    ycj = jnp.asarray(yc)
    parts = [aug_fit_batch(jnp.asarray(y1[i : i + ROWS]), ycj, jnp.asarray(masks[i : i + ROWS]), lam,
                           ridge=ridge, fixedeff=fixedeff) for i in range(0, b + pad, ROWS)]
    return AugFit(*(np.concatenate([np.asarray(p[k]) for p in parts])[:b] for k in range(len(AugFit._fields))))


@jax.jit
def _cv_errors(xc, x1, lambdas):
    """Leave-one-period-out errors (T0 - 1, L), augsynth's get_lambda_errors with holdout 1."""
    t0 = xc.shape[1]

    def hold(i):
        keep = jnp.arange(t0) != i
        x0 = jnp.where(keep[None, :], xc, 0.0)
        x1k = jnp.where(keep, x1, 0.0)
        syn = simplex_qp(x0 @ x0.T, x0 @ x1k).w
        resid = x1k - x0.T @ syn
        gram = x0.T @ x0

        def err(lam):
            w = syn + x0 @ jnp.linalg.solve(gram + lam * jnp.eye(t0, dtype=xc.dtype), resid)
            e = x1[i] - xc[:, i] @ w
            return e * e

        return jax.vmap(err)(lambdas)

    return jax.vmap(hold)(jnp.arange(t0 - 1))


def _choose_lambda(xc: np.ndarray, x1: np.ndarray) -> tuple[float, pd.DataFrame]:
    lam_max = np.linalg.svd(xc, compute_uv=False)[0] ** 2
    lambdas = lam_max * (1e-8 ** (1 / 20)) ** np.arange(21)
    errors = np.asarray(_cv_errors(jnp.asarray(xc), jnp.asarray(x1), jnp.asarray(lambdas)))
    mean = errors.mean(axis=0)
    se = errors.std(axis=0, ddof=1) / np.sqrt(errors.shape[0])
    i = int(np.argmin(mean))
    lam = float(np.max(lambdas[mean <= mean[i] + se[i]]))
    return lam, pd.DataFrame({"lambda": lambdas, "cv_error": mean, "cv_se": se})


def augmented(
    panel: Panel,
    *,
    treated: Any,
    start: Any,
    progfunc: ProgFunc = "ridge",
    fixedeff: bool = False,
    lambda_: float | None = None,
    donors: Sequence[Any] | None = None,
) -> AugmentedResult:
    """Ridge-augmented synthetic control for one treated unit.

    Parameters
    ----------
    panel : Panel
        Rates per 100,000 when the panel has ``population``.
    treated, start : the treated unit's label and its first treated period.
    progfunc : {"ridge", "none"}
        Ridge outcome model (ASCM) or none (plain SCM on pre-period outcomes, V = I).
    fixedeff : bool
        Remove each unit's pre-period mean first (augsynth's ``fixedeff``).
    lambda_ : float, optional
        Ridge penalty; ``None`` chooses it by augsynth's leave-one-period-out rule (see module notes).
    donors : labels, optional
        The donor pool (default: every never-treated unit other than ``treated``).

    Returns
    -------
    AugmentedResult
        ``estimate`` (mean post-period gap), ``weights`` (may be negative under ridge), ``gap``,
        ``conformal(alpha)``; ``extra`` holds ``lambda``, the CV table and the SCM part of the weights.

    Raises
    ------
    DesignError
        Treated unit or start not in the panel, too few pre-periods or donors, donors with missing outcomes.
    SpecificationError
        ``progfunc`` not allowed, or ``lambda_`` not a positive number.

    Notes
    -----
    Estimand: the effect on the one treated unit in each post-period, ``Y_1t - sum_j w_j Y_jt``, and its
    post-period mean, with SCM weights plus a ridge correction of the remaining pre-period imbalance
    (weights sum to one, may be negative). Assumptions: untreated outcomes follow a linear factor or
    autoregressive model; no anticipation or interference; donors untreated. Inference: conformal
    (``result.conformal``).

    References
    ----------
    Ben-Michael, E., Feller, A. and Rothstein, J. (2021). The augmented synthetic control method.
    *JASA* 116(536), 1789-1803.
    Chernozhukov, V., Wuthrich, K. and Zhu, Y. (2021). An exact and robust conformal inference method for
    counterfactual and synthetic controls. *JASA* 116(536), 1849-1864.

    Examples
    --------
    >>> from decrimkit.datasets import load_dataset
    >>> df = load_dataset("prop99", file="california_prop99_long.csv")
    >>> panel = Panel.from_frame(df, unit="State", time="Year", outcome="PacksPerCapita", treated="treated")
    >>> res = augmented(panel, treated="California", start=1989)
    """
    check_option("progfunc", progfunc, ProgFunc)
    if lambda_ is not None and not (np.isfinite(lambda_) and lambda_ > 0):
        raise SpecificationError(f"lambda_={lambda_!r} must be a positive number (or None for cross-validation).")
    design = synth_design(panel, treated=treated, start=start, donors=donors)
    n_pre = design.n_pre
    y1, yc = design.y_treated, design.y_donors.T
    ridge = progfunc == "ridge"
    cv = None
    lam = 0.0
    if ridge:
        if lambda_ is None:
            pre1, prec = y1[:n_pre], yc[:, :n_pre]
            if fixedeff:
                pre1, prec = pre1 - pre1.mean(), prec - prec.mean(axis=1, keepdims=True)
            centre = prec.mean(axis=0)
            lam, cv = _choose_lambda(prec - centre[None, :], pre1 - centre)
        else:
            lam = float(lambda_)
    mask = np.arange(len(y1)) < n_pre
    fit = AugFit(*(a[0] for a in fit_rows(y1[None], yc, mask[None], lam, ridge=ridge, fixedeff=fixedeff)))
    att = fit.att
    times = pd.Index(list(design.times), name="time")
    notes = (
        design.notes + ("weights = SCM weights (V = I on pre-period outcomes) + ridge correction; may be negative",)
        if ridge
        else design.notes
    )
    spec = Spec(
        estimator="synth.augmented",
        options={
            "treated": design.treated,
            "start": design.start,
            "progfunc": progfunc,
            "fixedeff": fixedeff,
            "lambda": lam if ridge else None,
            "lambda_rule": "given" if lambda_ is not None else "cv_1se",
            "scale": design.scale,
        },
        n_units=design.n_donors + 1,
        n_periods=len(design.times),
        n_obs=(design.n_donors + 1) * len(design.times),
        excluded=design.excluded,
        notes=notes + ("no sampling standard error: use .conformal() for inference",),
    )
    return AugmentedResult(
        estimate=float(att[n_pre:].mean()),
        se=float("nan"),
        weights=pd.Series(np.asarray(fit.w), index=pd.Index(list(design.donors), name="unit"), name="weight"),
        gap=pd.Series(att, index=times, name="gap"),
        observed=pd.Series(y1, index=times, name="treated"),
        synthetic=pd.Series(y1 - att, index=times, name="synthetic"),
        start=design.start,
        spec=spec,
        extra={
            "lambda": lam,
            "cv": cv,
            "scm_weights": pd.Series(np.asarray(fit.w_scm), index=list(design.donors)),
            "design": design,
            "ridge": ridge,
            "fixedeff": fixedeff,
        },
        title="Augmented synthetic control" + (" (ridge)" if ridge else " (no outcome model)"),
    )


def _block_pvalue(resid: np.ndarray, n_post: int) -> np.ndarray:
    """p-values from all cyclic shifts: resid (..., T) with the last ``n_post`` entries the tested ones."""
    t = resid.shape[-1]
    stat = lambda r: np.sum(np.abs(r[..., t - n_post :]), axis=-1) / np.sqrt(n_post)  # noqa: E731  (q = 1)
    observed = stat(resid)
    shifted = np.stack([stat(np.roll(resid, -j, axis=-1)) for j in range(t)], axis=-1)
    return np.mean(observed[..., None] <= shifted + 1e-12 * np.abs(shifted), axis=-1)


def conformal(
    result: AugmentedResult, *, alpha: float = 0.05, grid_size: int = 50, n_perm: int | None = None, seed: int = 0
) -> ConformalResult:
    """Conformal p-values (null: no effect) and 1 - alpha intervals per post-period; see module notes.

    ``n_perm`` and ``seed`` are accepted for interface stability and unused: the block permutations
    are enumerated exactly, so the output is deterministic.
    """
    if not 0 < alpha < 1:
        raise SpecificationError(f"alpha={alpha!r} must lie in (0, 1).")
    if grid_size < 3:
        raise SpecificationError(f"grid_size={grid_size!r}: use at least 3 grid points.")
    design = result.extra["design"]
    n_pre, n_post = design.n_pre, design.n_post
    y1, yc = design.y_treated, design.y_donors.T
    att = result.gap.to_numpy()
    post_sd = np.sqrt(np.mean(att[n_pre:] ** 2))
    lam = result.extra["lambda"]
    ridge, fe = result.extra["ridge"], result.extra["fixedeff"]
    # one problem per (post period j, null h): columns = pre-periods + period j, treated outcome minus h there
    cols = [np.r_[np.arange(n_pre), n_pre + j] for j in range(n_post)]
    grids = np.stack(
        [
            np.r_[np.linspace(att[n_pre + j] - 2 * post_sd, att[n_pre + j] + 2 * post_sd, grid_size), 0.0]
            for j in range(n_post)
        ]
    )  # (T1, G + 1)
    g = grids.shape[1]
    # every problem on all T columns; the mask keeps the pre-periods and post period j for fitting
    y1b = np.repeat(y1[None, :], n_post * g, axis=0)
    masks = np.zeros_like(y1b, dtype=bool)
    masks[:, :n_pre] = True
    for j in range(n_post):
        y1b[j * g : (j + 1) * g, n_pre + j] -= grids[j]
        masks[j * g : (j + 1) * g, n_pre + j] = True
    att_b = fit_rows(y1b, yc, masks, lam, ridge=ridge, fixedeff=fe).att
    resid = np.stack([att_b[j * g : (j + 1) * g][:, cols[j]] for j in range(n_post)])  # (T1, G + 1, T0 + 1)
    p = _block_pvalue(resid, 1)
    rows = []
    for j in range(n_post):
        ok = grids[j][p[j] >= alpha]
        rows.append(
            {
                "time": design.times[n_pre + j],
                "estimate": att[n_pre + j],
                "p_value": p[j, -1],
                "conf_low": ok.min() if len(ok) else np.nan,
                "conf_high": ok.max() if len(ok) else np.nan,
            }
        )
    joint = fit_rows(y1[None], yc, np.ones((1, len(y1)), dtype=bool), lam, ridge=ridge, fixedeff=fe)
    p_joint = float(_block_pvalue(joint.att[0], n_post))
    spec = Spec(
        "synth.augmented.conformal",
        options={
            "alpha": alpha,
            "grid_size": grid_size,
            "permutations": "moving block (all cyclic shifts)",
            "statistic": "sum |residual| / sqrt(n_post) (q = 1)",
            "lambda": lam if ridge else None,
        },
        notes=(
            "interval = grid values not rejected at alpha; grid = estimate +- 2 x post-period RMS gap; "
            "intervals reaching a grid end may be wider than shown",
        ),
    )
    return ConformalResult(table=pd.DataFrame(rows), p_value_joint=p_joint, alpha=alpha, spec=spec)


# ----------------------------------------------------------------------------- average effect (additive)
@dataclass(frozen=True, repr=False)
class ConformalAverage(Summarised):
    """Conformal interval for a constant post-period effect (CWZ test inversion); see module notes.

    ``estimate``: the mean post-period gap; ``conf_low``/``conf_high``: the smallest and largest grid
    value not rejected at ``alpha`` (``-inf``/``inf`` when no grid, however wide, reaches a rejection,
    e.g. when ``alpha`` is at most ``p_floor``); ``p_value``: test of no effect in any post-period;
    ``p_floor``: the smallest p-value the permutations allow; ``grid``: every null tried and its p-value;
    ``contiguous``: whether the accepted grid values form one run (if not, the interval is their hull,
    as augsynth reports it, and some values inside it are rejected).
    """

    estimate: float
    conf_low: float
    conf_high: float
    p_value: float
    alpha: float
    p_floor: float
    permutations: str
    contiguous: bool
    grid: pd.DataFrame
    spec: Spec
    title: str = "Conformal inference for the average effect (constant-effect test inversion)"

    def conf_int(self) -> tuple[float, float]:
        """The (1 - alpha) interval ``(conf_low, conf_high)`` at the level it was computed with."""
        return (self.conf_low, self.conf_high)

    def tidy(self) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {
                    "estimate": self.estimate,
                    "conf_low": self.conf_low,
                    "conf_high": self.conf_high,
                    "p_value": self.p_value,
                    "alpha": self.alpha,
                    "p_floor": self.p_floor,
                    "permutations": self.permutations,
                    "contiguous": self.contiguous,
                }
            ]
        )


def _post_sets(n: int, n_post: int, permutations: str, n_perm: int, max_exact: int, seed: int) -> np.ndarray:
    """Index sets (S, n_post) of the positions a permutation puts into the post-period."""
    if permutations == "block":
        return (np.arange(n - n_post, n)[None, :] + np.arange(n)[:, None]) % n
    if comb(n, n_post) <= max_exact:
        return np.array(list(combinations(range(n), n_post)), dtype=np.int64)
    rng = numpy_rng(seed)
    drawn = np.stack([np.sort(rng.permutation(n)[:n_post]) for _ in range(n_perm)])
    return np.vstack([np.arange(n - n_post, n)[None, :], drawn])  # the observed assignment is one of them


def conformal_average(
    result: AugmentedResult,
    *,
    alpha: float = 0.05,
    grid_size: int = 101,
    permutations: Permutations = "iid",
    n_perm: int = 1000,
    max_exact: int = 20000,
    seed: int = 0,
) -> ConformalAverage:
    """Conformal 1 - alpha interval for the average post-period effect, by inverting the constant-effect test.

    Parameters
    ----------
    result : AugmentedResult
        A fit from :func:`augmented` (lambda is kept fixed in the refits, as in :func:`conformal`).
    alpha : float
        Test level; the interval holds the constant effects with p-value >= alpha.
    grid_size : int
        Grid points; the grid is the estimate +- 2 x the post-period RMS gap, doubled (up to four times)
        while the accepted set reaches a grid end.
    permutations : {"iid", "block"}
        All assignments of residuals to the post-periods (exchangeable errors; augsynth's default) or
        the cyclic shifts (moving blocks; p >= 1/T).
    n_perm, max_exact, seed
        Random assignments drawn (with ``seed``) when there are more than ``max_exact`` of them.

    Returns
    -------
    ConformalAverage

    Notes
    -----
    Estimand: a post-period effect constant over time, ``theta_t = theta_0`` (CWZ 2021, Section 2); under
    heterogeneous effects the interval is read as the set of constant shifts compatible with the data.
    Assumptions: the (refitted) residuals are exchangeable (``"iid"``) or stationary and weakly dependent
    (``"block"``) under the null. The interval is a grid set: its ends are accurate to the grid step.
    """
    check_option("permutations", permutations, Permutations)
    if not 0 < alpha < 1:
        raise SpecificationError(f"alpha={alpha!r} must lie in (0, 1).")
    if grid_size < 3:
        raise SpecificationError(f"grid_size={grid_size!r}: use at least 3 grid points.")
    if n_perm < 1 or max_exact < 1:
        raise SpecificationError(f"n_perm={n_perm!r} and max_exact={max_exact!r} must be positive.")
    design = result.extra["design"]
    n_pre, n_post = design.n_pre, design.n_post
    y1, yc = design.y_treated, design.y_donors.T
    n = len(y1)
    att = result.gap.to_numpy()
    est = float(att[n_pre:].mean())
    lam, ridge, fe = result.extra["lambda"], result.extra["ridge"], result.extra["fixedeff"]
    post = (np.arange(n) >= n_pre).astype("float64")
    sets = _post_sets(n, n_post, permutations, n_perm, max_exact, seed)
    p_floor = 1.0 / len(sets)  # the observed assignment is always among them
    mask = np.ones((grid_size + 1, n), dtype=bool)

    def pvalues(nulls: np.ndarray) -> np.ndarray:
        y1b = y1[None, :] - nulls[:, None] * post[None, :]
        resid = fit_rows(y1b, yc, mask, lam, ridge=ridge, fixedeff=fe).att
        if permutations == "block":
            return _block_pvalue(resid, n_post)
        u = np.abs(resid)
        observed = u[:, n_pre:].sum(axis=-1)
        permuted = u[:, sets].sum(axis=-1)  # (G, S)
        return np.mean(observed[:, None] <= permuted + 1e-12 * np.abs(permuted), axis=-1)

    half = 2.0 * max(float(np.sqrt(np.mean(att[n_pre:] ** 2))), 1e-8 * (1.0 + abs(est)))
    tried: list[pd.DataFrame] = []
    low = high = float("nan")  # nothing accepted on the grid: an empty set, reported as missing
    for _ in range(5):
        grid = np.r_[np.linspace(est - half, est + half, grid_size), 0.0]  # one batch shape: one compile
        p = pvalues(grid)
        tried.append(pd.DataFrame({"null": grid, "p_value": p}))
        if alpha <= p_floor:  # every null is accepted, however far
            low, high = -np.inf, np.inf
            break
        ok = grid[:-1][p[:-1] >= alpha]
        if not len(ok):
            break
        low, high = float(ok.min()), float(ok.max())
        if p[0] < alpha and p[grid_size - 1] < alpha:
            break
        half *= 2.0
    else:  # still accepted at a grid end after four doublings
        low = -np.inf if p[0] >= alpha else low
        high = np.inf if p[grid_size - 1] >= alpha else high
    p_zero = float(p[-1])
    table = pd.concat(tried, ignore_index=True).drop_duplicates("null").sort_values("null", ignore_index=True)
    acc = np.flatnonzero(table["p_value"].to_numpy() >= alpha)
    contiguous = bool(len(acc) == 0 or acc[-1] - acc[0] + 1 == len(acc))
    if len(acc):  # the hull of every accepted null tried (0 included, as augsynth's grid), ends kept open
        low = low if np.isneginf(low) else float(table["null"].iloc[acc[0]])
        high = high if np.isposinf(high) else float(table["null"].iloc[acc[-1]])
    spec = Spec(
        "synth.augmented.conformal_average",
        options={
            "alpha": alpha,
            "grid_size": grid_size,
            "permutations": permutations,
            "n_assignments": int(len(sets)),
            "lambda": lam if ridge else None,
        },
        seed=seed if permutations == "iid" and len(sets) != comb(n, n_post) else None,
        notes=(
            "null: the same effect theta_0 in every post-period; statistic sum |residual| over post-periods",
            f"smallest attainable p-value {p_floor:.4g}"
            + ("; alpha is at or below it, so no null can be rejected" if alpha <= p_floor else ""),
        ),
    )
    return ConformalAverage(
        estimate=est,
        conf_low=low,
        conf_high=high,
        p_value=p_zero,
        alpha=alpha,
        p_floor=p_floor,
        permutations=permutations,
        contiguous=contiguous,
        grid=table,
        spec=spec,
    )
