"""Rambachan-Roth sensitivity analysis ("HonestDiD") for event-study estimates.

Setting
-------
The event-study coefficients are ``beta = tau + delta`` where ``tau`` are the treatment effects
(zero before adoption) and ``delta`` the difference in trends, with ``delta = 0`` at the reference
period -1. The pre-period coefficients estimate ``delta_pre``; the target is ``theta = l' tau_post``
(default: the effect at event time 0). Parallel trends are relaxed to ``delta`` in a set ``Delta(M)``:

- ``method="smoothness"``, ``Delta^SD(M)``: the slope of ``delta`` changes by at most ``M`` between
  consecutive periods, ``|delta_{t+1} - 2 delta_t + delta_{t-1}| <= M``. ``M = 0`` allows exactly linear
  trends: the identified set is a point (the post-period estimate less the linear extrapolation of the
  pre-trend). Intervals: the optimal fixed-length confidence interval (FLCI; Armstrong and Kolesar 2018,
  as in HonestDiD's default for this set): among affine estimators ``l' beta_post - w' beta_pre`` that
  are unbiased under linear trends, choose ``w`` minimising the half-length
  ``cv_alpha(bias(w) / sd(w)) * sd(w)``, with the worst-case bias ``bias(w) = M * ||K' c(w)||_1`` in
  closed form (``K`` maps second differences to trend levels) and ``cv_alpha(b)`` the 1-alpha quantile
  of ``|N(b, 1)|``. The minimisation over ``w`` is numerical (Nelder-Mead from the linear-extrapolation
  estimator; exact at ``M = 0``).
- ``method="relative_magnitude"``, ``Delta^RM(Mbar)``: every post-period change of ``delta`` is at most
  ``Mbar`` times the largest pre-period change. The set is a union of polyhedra (which pre-period change
  is largest, and its sign). For each polyhedron we invert the moment-inequality test of Andrews, Roth and
  Pakes (2023) with its *least-favourable* critical value (HonestDiD's ``"LF"`` option): ``theta`` is
  accepted when ``min_nu max_j (A (beta_hat - tau(theta, nu)))_j / sigma_j <= c_LF``, with ``c_LF`` the
  1-alpha quantile of ``max_j (A xi)_j / sigma_j``, ``xi ~ N(0, Sigma)`` (simulated with ``seed``). The
  accepted set of each polyhedron is an interval found exactly by two linear programs; the robust set is
  their union (reported by its hull). This test controls size but is more conservative than HonestDiD's
  default conditional-hybrid test, so our intervals are (weakly) wider than HonestDiD's.

The breakdown value is the largest ``M`` on the given grid such that the robust intervals of it and of
every smaller ``M`` exclude zero (None when even the smallest does not).

References
----------
Rambachan, A. and Roth, J. (2023). A more credible approach to parallel trends. *Review of Economic
Studies* 90(5), 2555-2591.
Armstrong, T. B. and Kolesar, M. (2018). Optimal inference in a class of regression models.
*Econometrica* 86(2), 655-683.
Andrews, I., Roth, J. and Pakes, A. (2023). Inference for linear conditional moment inequalities.
*Review of Economic Studies* 90(6), 2763-2791.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd
from scipy import optimize, stats

from decrimkit.errors import DesignError, SpecificationError
from decrimkit.limits import check_replications
from decrimkit.numerics.keys import numpy_rng
from decrimkit.options import check_option
from decrimkit.results import Effect, Spec, Summarised

__all__ = ["HonestResult", "honest", "identified_set"]

HonestMethod = Literal["relative_magnitude", "smoothness"]


class _Design(NamedTuple):
    """Event times ``t`` (pre then post, reference -1 excluded), beta (k,), sigma (k, k), l_vec (n_post,)."""

    times: np.ndarray
    beta: np.ndarray
    sigma: np.ndarray
    n_pre: int
    n_post: int
    l_vec: np.ndarray


@dataclass(frozen=True, repr=False)
class HonestResult(Summarised):
    """Robust confidence sets by sensitivity parameter M (``table``: m, lb, ub, method)."""

    table: pd.DataFrame
    estimate: float
    se: float
    original: tuple[float, float]
    breakdown: float | None
    method: str
    spec: Spec
    title: str = "Rambachan-Roth sensitivity analysis"

    def conf_int(self, alpha: float | None = None) -> np.ndarray:
        """(len(m), 2) robust intervals, one per M (alpha fixed when the result was made)."""
        return self.table[["lb", "ub"]].to_numpy()

    def tidy(self) -> pd.DataFrame:
        orig = pd.DataFrame({"m": [np.nan], "lb": [self.original[0]], "ub": [self.original[1]], "method": ["original"]})
        return pd.concat([orig, self.table], ignore_index=True)

    def summary(self) -> str:
        text = super().summary()
        bd = "none on the grid" if self.breakdown is None else f"{self.breakdown:g}"
        return text + f"\n\ntheta = {self.estimate:.6g} (se {self.se:.6g}); breakdown value: {bd}"

    def plot_data(self, kind: str = "sensitivity") -> pd.DataFrame:
        return self.tidy()

    def plot(self, kind: str = "sensitivity", ax: Any = None) -> Any:
        from decrimkit.plotting.did import sensitivity_plot

        xlabel = "M (smoothness)" if self.method == "smoothness" else "Mbar (relative magnitude)"
        return sensitivity_plot(self.plot_data(kind), ax=ax, title=self.title, xlabel=xlabel)


def _design(result: Effect, l_vec: Sequence[float] | None) -> _Design:
    how = (
        "Pass the result of did.event_study(panel) or did.sun_abraham(panel), e.g. did.honest(did.event_study(panel))."
    )
    if getattr(result, "vcov", None) is None or getattr(result, "label", None) is None:
        raise SpecificationError(
            f"honest() needs an event-study result with a variance matrix (vcov), got {type(result).__name__}. {how}"
        )
    try:
        times = np.asarray(
            [int(k) if float(k) == int(k) else np.nan for k in np.asarray(result.label).reshape(-1)], dtype="int64"
        )
    except (TypeError, ValueError):
        times = None
    if times is None or times.size != np.asarray(result.estimate).size:
        raise SpecificationError(
            f"honest() needs an event-study result (one coefficient per integer event time), but "
            f"{type(result).__name__} has labels {np.asarray(result.label).reshape(-1)[:5].tolist()}. {how}"
        )
    if getattr(result, "reference", -1) != -1 or (times == -1).any():
        raise SpecificationError("honest needs event-study coefficients with reference period -1 left out.")
    if getattr(result, "binned", ()):
        raise SpecificationError(
            "honest needs one coefficient per event time, but the endpoints are binned; rerun event_study "
            "with leads/lags covering the observed window (or None)."
        )
    order = np.argsort(times)
    times = times[order]
    pre, post = times[times < 0], times[times >= 0]
    if len(pre) == 0 or len(post) == 0:
        raise DesignError("honest needs at least one pre-period (besides -1) and one post-period coefficient.")
    full = np.arange(times.min(), times.max() + 1)
    if len(full) != len(times) + 1:
        raise DesignError("honest needs consecutive event times (no gaps besides the reference -1).")
    beta = np.asarray(result.estimate)[order]
    sigma = np.asarray(result.vcov)[np.ix_(order, order)]
    lv = np.zeros(len(post))
    if l_vec is None:
        lv[0] = 1.0
    else:
        lv = np.asarray(l_vec, dtype="float64")
        if lv.shape != (len(post),):
            raise SpecificationError(f"l_vec must have one weight per post period ({len(post)}), got {lv.shape}.")
    return _Design(times, beta, sigma, len(pre), len(post), lv)


def _grid(d: _Design) -> np.ndarray:
    """All event times including the reference: positions of delta."""
    return np.arange(d.times.min(), d.times.max() + 1)


def _target(d: _Design) -> np.ndarray:
    """c with theta_hat = c' beta for the plain estimate l' beta_post."""
    return np.concatenate([np.zeros(d.n_pre), d.l_vec])


# ------------------------------------------------------------------------------------------- smoothness
def _sd_kernel(d: _Design) -> np.ndarray:
    """K (k, n_eta): delta at the estimated event times per unit second difference (slope 0, delta_-1 = 0)."""
    grid = _grid(d)
    n = len(grid)
    ref = int(np.flatnonzero(grid == -1)[0])
    cols = []
    for u in range(1, n - 1):  # second difference centred at grid position u
        delta = np.zeros(n)
        # forward from the reference: delta_{t+1} = 2 delta_t - delta_{t-1} + eta_t (delta_ref = delta_ref+1 = 0)
        for t in range(ref + 1, n - 1):
            delta[t + 1] = 2 * delta[t] - delta[t - 1] + (1.0 if t == u else 0.0)
        for t in range(ref, 0, -1):  # backward: delta_{t-1} = 2 delta_t - delta_{t+1} + eta_t
            delta[t - 1] = 2 * delta[t] - delta[t + 1] + (1.0 if t == u else 0.0)
        cols.append(np.delete(delta, ref))
    return np.array(cols).T if cols else np.zeros((n - 1, 0))


def _cv(bias_over_sd: float, alpha: float) -> float:
    """1-alpha quantile of |N(b, 1)|."""
    return (
        float(np.sqrt(stats.ncx2.ppf(1 - alpha, 1, bias_over_sd**2)))
        if bias_over_sd > 0
        else float(stats.norm.ppf(1 - alpha / 2))
    )


def _flci(d: _Design, m: float, alpha: float) -> tuple[float, float]:
    """Optimal FLCI for theta under Delta^SD(m)."""
    kern = _sd_kernel(d)
    t = d.times.astype("float64") + 1.0  # linear trends through delta_-1 = 0
    c_post = np.concatenate([np.zeros(d.n_pre), d.l_vec])
    # affine estimators c(w) = c_post - (w, 0): unbiased under linear trends iff w' t_pre = l' t_post
    a = t[: d.n_pre]
    target = float(d.l_vec @ t[d.n_pre :])
    w0 = a * target / (a @ a)
    null = np.linalg.svd(a[None, :])[2][1:].T  # (n_pre, n_pre - 1) basis of {w: a'w = 0}

    def parts(z: np.ndarray) -> tuple[np.ndarray, float, float]:
        w = w0 + null @ z
        c = c_post - np.concatenate([w, np.zeros(d.n_post)])
        sd = float(np.sqrt(c @ d.sigma @ c))
        return c, sd, m * float(np.abs(kern.T @ c).sum())

    def half(z: np.ndarray) -> float:
        _, sd, bias = parts(z)
        return _cv(bias / sd, alpha) * sd if sd > 0 else np.inf

    if null.shape[1] == 0:
        z = np.zeros(0)
    else:
        # start from the minimum-variance (GLS) estimator, the optimum at m = 0
        base = c_post - np.concatenate([w0, np.zeros(d.n_post)])
        sp = d.sigma[: d.n_pre, : d.n_pre]
        z = np.linalg.solve(null.T @ sp @ null, null.T @ (d.sigma[: d.n_pre] @ base))
        if m > 0:
            # The half-length has kinks (|.| in the worst-case bias) where Nelder-Mead
            # stalls, so it starts from two estimators and restarts from its own optimum until the
            # length stops falling: the GLS estimator (the optimum at m = 0) and the last pre-period alone
            # (w on that coordinate alone, scaled to stay unbiased under linear trends).
            opts = {"xatol": 1e-10, "fatol": 1e-12, "maxiter": 4000}
            starts = [z]
            if a[-1] != 0:
                w_last = np.zeros(d.n_pre)
                w_last[-1] = target / a[-1]
                starts.append(null.T @ (w_last - w0))  # exact: w_last - w0 lies in the span of null
            best_z, best_f = z, half(z)
            for start in starts:
                x, f = start, half(start)
                for _ in range(3):  # restarts from the optimum found
                    res = optimize.minimize(half, x, method="Nelder-Mead", options=opts)
                    if res.fun >= f - 1e-13:
                        break
                    x, f = res.x, res.fun
                if f < best_f:
                    best_z, best_f = x, f
            z = best_z
    c, sd, _ = parts(z)
    est, hl = float(c @ d.beta), half(z)
    return est - hl, est + hl


# --------------------------------------------------------------------------------- relative magnitudes
def _rm_pieces(d: _Design, mbar: float) -> list[np.ndarray]:
    """Constraint matrices A (rows: A delta_full <= 0, delta over the estimated times) per polyhedron."""
    grid = _grid(d)
    n = len(grid)
    ref = int(np.flatnonzero(grid == -1)[0])
    diff = np.zeros((n - 1, n))
    for i in range(n - 1):
        diff[i, i], diff[i, i + 1] = -1.0, 1.0
    diff = np.delete(diff, ref, axis=1)  # delta_ref = 0 drops out
    pre_rows = [i for i in range(n - 1) if grid[i + 1] <= -1]  # changes ending at or before the reference
    post_rows = [i for i in range(n - 1) if grid[i + 1] >= 0]
    pieces = []
    for s in pre_rows:
        for sign in (1.0, -1.0):
            top = sign * diff[s]  # the largest pre-period change, with its sign: top >= |other pre changes|
            rows = []
            for r in pre_rows:
                rows += [diff[r] - top, -diff[r] - top]
            for r in post_rows:
                rows += [diff[r] - mbar * top, -diff[r] - mbar * top]
            pieces.append(np.array(rows))
    return pieces


def _rm_interval(d: _Design, a_mat: np.ndarray, crit: float) -> tuple[float, float] | None:
    """Accepted theta values for one polyhedron: min/max theta s.t. A (beta_hat - tau) <= crit * sigma_A."""
    sig_a = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", a_mat, d.sigma, a_mat), 0.0))
    # variables: tau_post (n_post); theta = l' tau_post; delta = beta_hat - (0, tau_post)
    emb = np.vstack([np.zeros((d.n_pre, d.n_post)), np.eye(d.n_post)])  # (k, n_post)
    a_ub = -a_mat @ emb
    b_ub = crit * sig_a - a_mat @ d.beta
    out = []
    for sense in (1.0, -1.0):
        res = optimize.linprog(sense * d.l_vec, A_ub=a_ub, b_ub=b_ub, bounds=[(None, None)] * d.n_post, method="highs")
        if res.status == 2:
            return None
        if res.status == 3:
            out.append(-sense * np.inf)
            continue
        out.append(float(d.l_vec @ res.x))
    return out[0], out[1]


def _rm_crit(d: _Design, a_mat: np.ndarray, alpha: float, rng: np.random.Generator, n_draws: int) -> float:
    sig_a = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", a_mat, d.sigma, a_mat), 0.0))
    sig_a = np.where(sig_a > 0, sig_a, np.inf)
    vals, vecs = np.linalg.eigh(d.sigma)
    xi = rng.standard_normal((n_draws, len(d.beta))) @ (vecs * np.sqrt(np.clip(vals, 0, None))).T
    return float(np.quantile(((xi @ a_mat.T) / sig_a).max(axis=1), 1 - alpha))


def _rm_ci(d: _Design, mbar: float, alpha: float, seed: int, n_draws: int) -> tuple[float, float]:
    lows, highs = [], []
    for i, a_mat in enumerate(_rm_pieces(d, mbar)):
        crit = _rm_crit(d, a_mat, alpha, numpy_rng(seed + i), n_draws)
        iv = _rm_interval(d, a_mat, crit)
        if iv is not None:
            lows.append(iv[0])
            highs.append(iv[1])
    if not lows:
        return np.nan, np.nan
    return min(lows), max(highs)


def identified_set(
    result: Effect, *, method: HonestMethod = "smoothness", m: float = 0.0, l_vec: Sequence[float] | None = None
) -> tuple[float, float]:
    """Identified set of theta when the event-study coefficients are the true ``beta`` (no sampling noise).

    Empty sets (the pre-trend itself violates the restriction) are returned as (nan, nan).
    """
    check_option("method", method, HonestMethod)
    d = _design(result, l_vec)
    if method == "smoothness":
        pieces = [_sd_constraints(d, m)]
    else:
        pieces = [(a, np.zeros(len(a))) for a in _rm_pieces(d, m)]
    lows, highs = [], []
    emb = np.vstack([np.zeros((d.n_pre, d.n_post)), np.eye(d.n_post)])
    for a_mat, rhs in pieces:
        out = []
        for sense in (1.0, -1.0):
            res = optimize.linprog(
                sense * d.l_vec,
                A_ub=-a_mat @ emb,
                b_ub=rhs - a_mat @ d.beta,
                bounds=[(None, None)] * d.n_post,
                method="highs",
            )
            if res.status == 2:
                break
            out.append(-sense * np.inf if res.status == 3 else float(d.l_vec @ res.x))
        if len(out) == 2:
            lows.append(out[0])
            highs.append(out[1])
    return (min(lows), max(highs)) if lows else (np.nan, np.nan)


def _sd_constraints(d: _Design, m: float) -> tuple[np.ndarray, np.ndarray]:
    """|second differences of delta| <= m as A delta <= rhs (delta over the estimated event times)."""
    grid = _grid(d)
    n = len(grid)
    ref = int(np.flatnonzero(grid == -1)[0])
    rows = []
    for u in range(1, n - 1):
        r = np.zeros(n)
        r[u - 1], r[u], r[u + 1] = 1.0, -2.0, 1.0
        rows.append(np.delete(r, ref))
    a = np.array(rows)
    a = np.vstack([a, -a])
    return a, np.full(len(a), float(m))


def honest(
    event_study_result: Effect,
    *,
    method: HonestMethod = "relative_magnitude",
    m: Sequence[float] = (0.0, 0.5, 1.0, 1.5, 2.0),
    alpha: float = 0.05,
    l_vec: Sequence[float] | None = None,
    seed: int = 0,
    n_draws: int = 20_000,
) -> HonestResult:
    """Robust confidence sets for a post-period effect when parallel trends may fail by up to M.

    Parameters
    ----------
    event_study_result : EventStudyResult
        From :func:`did.event_study` or :func:`did.sun_abraham`: consecutive event times, reference -1
        left out, no binned endpoints, with ``vcov``.
    method : {"relative_magnitude", "smoothness"}
        The restriction on the trend difference (see the module docstring).
    m : sequence of float
        Sensitivity parameters (``Mbar`` or ``M``), non-negative.
    alpha : float
        1 - coverage.
    l_vec : sequence of float, optional
        Weights of the post-period effects in ``theta`` (default: event time 0 only).
    seed, n_draws
        Simulation of the least-favourable critical value (relative magnitudes).

    Returns
    -------
    HonestResult
        ``table`` (m, lb, ub, method), ``original`` interval, ``breakdown`` value, ``plot()``.

    Raises
    ------
    SpecificationError
        Bad method, negative M, binned endpoints, a result without vcov.
    DesignError
        No pre-period or post-period coefficient, gaps in event time.

    Notes
    -----
    Target: ``theta = l' tau_post`` (default the effect at event time 0), with event-study coefficients
    ``beta = tau + delta``. Parallel trends is relaxed to ``delta`` in ``Delta^SD(M)`` (bounded changes in
    slope; FLCI intervals) or ``Delta^RM(Mbar)`` (post-period changes at most ``Mbar`` times the largest
    pre-period change; least-favourable ARP test, weakly wider than HonestDiD's default). Assumptions: the
    event-study coefficients are asymptotically normal with the given covariance, and the restriction on
    ``delta`` holds. See the module docstring for the algorithms.

    References
    ----------
    Rambachan, A. and Roth, J. (2023). A more credible approach to parallel trends. *Review of Economic
    Studies* 90(5), 2555-2591.
    Armstrong, T. B. and Kolesar, M. (2018). Optimal inference in a class of regression models.
    *Econometrica* 86(2), 655-683.
    Andrews, I., Roth, J. and Pakes, A. (2023). Inference for linear conditional moment inequalities.
    *Review of Economic Studies* 90(6), 2763-2791.

    Examples
    --------
    >>> from decrimkit import Panel
    >>> from decrimkit.datasets import load_dataset
    >>> from decrimkit.estimators import did
    >>> df = load_dataset("mpdta")
    >>> panel = Panel.from_frame(df, unit="countyreal", time="year", outcome="lemp", cohort="first.treat")
    >>> sens = did.honest(did.event_study(panel), method="smoothness", m=[0.0, 0.01, 0.02])
    >>> sens.table.shape[0]
    3
    """
    check_option("method", method, HonestMethod)
    ms = np.asarray(list(m), dtype="float64")
    if ms.size == 0 or (ms < 0).any() or not np.isfinite(ms).all():
        raise SpecificationError(f"m must be non-negative finite numbers, got {list(m)}.")
    if not 0 < alpha < 1:
        raise SpecificationError(f"alpha must be in (0, 1), got {alpha}.")
    check_replications("n_draws", n_draws)
    d = _design(event_study_result, l_vec)
    c = _target(d)
    est, se = float(c @ d.beta), float(np.sqrt(c @ d.sigma @ c))
    z = stats.norm.ppf(1 - alpha / 2)
    rows = []
    for mv in np.sort(ms):
        lb, ub = _flci(d, mv, alpha) if method == "smoothness" else _rm_ci(d, mv, alpha, seed, n_draws)
        rows.append((mv, lb, ub, "FLCI" if method == "smoothness" else "ARP-LF"))
    table = pd.DataFrame(rows, columns=["m", "lb", "ub", "method"])
    excludes = ((table["lb"] > 0) | (table["ub"] < 0)).to_numpy()
    first_in = int(np.argmin(excludes)) if not excludes.all() else len(excludes)
    breakdown = float(table["m"].iloc[first_in - 1]) if first_in > 0 else None
    spec = Spec(
        estimator="honest",
        options={"method": method, "m": tuple(float(x) for x in ms), "alpha": alpha, "l_vec": tuple(d.l_vec.tolist())},
        seed=seed if method == "relative_magnitude" else None,
        notes=(f"theta = l'tau_post over event times {d.times[d.n_pre :].tolist()}",),
    )
    return HonestResult(
        table=table,
        estimate=est,
        se=se,
        original=(est - z * se, est + z * se),
        breakdown=breakdown,
        method=method,
        spec=spec,
    )
