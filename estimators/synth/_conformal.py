"""Conformal inference for augmented synthetic control (Chernozhukov, Wuthrich and Zhu 2021).

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
Chernozhukov, V., Wuthrich, K. and Zhu, Y. (2021). An exact and robust conformal inference method for
counterfactual and synthetic controls. JASA 116(536), 1849-1864. Ben-Michael, E., Feller, A. and
Rothstein, J. (2021). The augmented synthetic control method. JASA 116(536), 1789-1803.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from math import comb
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from decrimkit.errors import SpecificationError
from decrimkit.limits import MAX_GRID, check_replications
from decrimkit.numerics.keys import numpy_rng
from decrimkit.options import check_option
from decrimkit.results import Spec, Summarised, tidy_frame

from ._ascm import fit_rows
from .results import ConformalResult

if TYPE_CHECKING:  # the result class lives beside its estimator, which imports this module
    from ._augmented import AugmentedResult

__all__ = ["conformal", "conformal_average", "ConformalAverage", "ConformalResult"]

Permutations = Literal["iid", "block"]


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
    check_replications("grid_size", grid_size, maximum=MAX_GRID)
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
    tried = pd.DataFrame({
        "time": np.repeat(np.asarray(design.times[n_pre:], dtype=object), grids.shape[1]),
        "null": grids.reshape(-1),
        "p_value": p.reshape(-1),
    })
    return ConformalResult(table=pd.DataFrame(rows), p_value_joint=p_joint, alpha=alpha, spec=spec, grid=tried)


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

    @property
    def se(self) -> float:
        """NaN: the interval inverts a permutation test; there is no standard error."""
        return float("nan")

    def _bounds(self, alpha: float) -> tuple[float, float]:
        """The interval at ``alpha``: the stored one at the level of the fit; at another level the hull of the
        grid values tried with p-value >= alpha (``-inf``/``inf`` when ``alpha <= p_floor``), a side NaN when
        the accepted values reach the end of the grid tried (it was widened for the fit's level only)."""
        if not 0 < alpha < 1:
            raise SpecificationError(f"alpha={alpha!r} must lie in (0, 1).")
        if np.isclose(alpha, self.alpha, rtol=0, atol=1e-12):
            return self.conf_low, self.conf_high
        if alpha <= self.p_floor:
            return -np.inf, np.inf
        nulls, p = self.grid["null"].to_numpy(), self.grid["p_value"].to_numpy()
        acc = np.flatnonzero(p >= alpha)
        if not len(acc):
            return float("nan"), float("nan")
        low = float("nan") if acc[0] == 0 else float(nulls[acc[0]])
        high = float("nan") if acc[-1] == len(nulls) - 1 else float(nulls[acc[-1]])
        return low, high

    def tidy(self, alpha: float = 0.05) -> pd.DataFrame:
        """One row, term ``average``: the mean post-period gap, the test-inversion interval and the p-value
        of no effect; extra columns ``alpha`` (the fit's level), ``p_floor``, ``permutations``, ``contiguous``."""
        low, high = self._bounds(alpha)
        return tidy_frame(["average"], self.estimate, np.nan, low, high, self.p_value,
                          f"conformal constant-effect test inversion ({self.permutations} permutations)",
                          alpha=[self.alpha], p_floor=[self.p_floor], permutations=[self.permutations],
                          contiguous=[self.contiguous])

    def plot(self, kind: str = "pvalues", ax: Any = None) -> Any:
        """The p-value of each constant effect tried, with alpha and the interval's ends (returns the Figure)."""
        from decrimkit.plotting.synth import pvalue_curve_plot

        return pvalue_curve_plot(self.grid, alpha=self.alpha, low=self.conf_low, high=self.conf_high, ax=ax,
                                 title=self.title)

    def summary(self) -> str:
        text = super().summary() + (
            f"\n\ninference: conformal test of a constant post-period effect ({self.permutations} permutations of "
            f"the residuals); the {100 * (1 - self.alpha):g}% interval holds the effects not rejected on the grid; "
            "no standard error")
        if not self.contiguous:
            text += "\nnote: the accepted grid values are not contiguous; the interval is their hull"
        return text


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
    check_replications("grid_size", grid_size, maximum=MAX_GRID)
    if n_perm < 1 or max_exact < 1:
        raise SpecificationError(f"n_perm={n_perm!r} and max_exact={max_exact!r} must be positive.")
    check_replications("n_perm", n_perm)
    check_replications("max_exact", max_exact)
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
