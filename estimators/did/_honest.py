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
  is largest, and its sign); the robust set is the union of each polyhedron's confidence set, reported
  by its hull. Within a polyhedron ``theta`` is tested with the moment inequalities of Andrews, Roth and
  Pakes (2023, "ARP"), the post-period effects other than ``theta`` being nuisance parameters
  (:mod:`._arp`). ``test`` picks the test:

  - ``"hybrid"`` (default; HonestDiD's ``"C-LF"``): the conditional-least-favourable hybrid on the
    moments that involve post periods (HonestDiD's ``postPeriodMomentsOnly``): an LF first stage at
    ``kappa = alpha / 10`` (critical value simulated with ``seed``, ``n_draws`` draws), then the test
    conditional on the binding dual vertex at level ``(alpha - kappa) / (1 - kappa)``. The accepted
    set is found on a grid of ``grid_points`` values of ``theta`` and its ends refined by bisection;
  - ``"conditional"`` (HonestDiD's ``"Conditional"``): the conditional test alone, on the same
    moments. It can accept values far from the estimate, so the grid spans the identified set at the
    estimates +- 20 standard errors of ``theta``; a set still open at an end of that window is
    reported as infinite there;
  - ``"lf"``: the least-favourable test on all moments, ``theta`` accepted when
    ``min_nu max_j (A (beta_hat - tau(theta, nu)))_j / sigma_j <= c_LF``; each polyhedron's accepted
    set is an interval found exactly by two linear programs. It controls size but is the most
    conservative (on ``ehec`` 1.24-1.39 times longer than the hybrid).

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
from decrimkit.estimators.did._honest_rm import id_bounds, rm_ci_arp, rm_ci_lf, rm_pieces
from decrimkit.limits import check_replications
from decrimkit.options import check_option
from decrimkit.results import Effect, Spec, Summarised, check_alpha, tidy_frame

__all__ = ["HonestResult", "honest", "identified_set"]

HonestMethod = Literal["relative_magnitude", "smoothness"]
RMTest = Literal["hybrid", "conditional", "lf"]
_RM_LABEL = {"hybrid": "C-LF", "conditional": "Conditional", "lf": "ARP-LF"}
_RM_NOTE = {
    "hybrid": "intervals: ARP conditional-least-favourable hybrid test (HonestDiD's default C-LF), inverted",
    "conditional": "intervals: ARP conditional test (HonestDiD's Conditional), inverted",
    "lf": "intervals: ARP least-favourable test (conservative), inverted exactly",
}


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

    @property
    def alpha(self) -> float:
        """The level the robust sets were computed at (``did.honest(..., alpha=)``)."""
        return float(self.spec.options.get("alpha", 0.05))

    def tidy(self, alpha: float = 0.05) -> pd.DataFrame:
        """The original (parallel trends) interval, then one robust set per M: ``term`` is ``original`` or
        ``M=<m>``; ``estimate``/``se`` are theta's; no p-value (the sets are inverted tests). Extra columns
        ``m`` and ``method``. Only at the ``alpha`` the sets were computed with (else SpecificationError)."""
        check_alpha(alpha, self.alpha, "did.honest(..., alpha=...)")
        m = np.r_[np.nan, self.table["m"].to_numpy(dtype="float64")]
        methods = ["original", *self.table["method"].astype(str)]
        terms = ["original", *(f"M={v:g}" for v in m[1:])]
        inference = ["normal (parallel trends)", *(f"Rambachan-Roth {self.method}: {x}" for x in methods[1:])]
        return tidy_frame(terms, self.estimate, self.se, np.r_[self.original[0], self.table["lb"].to_numpy()],
                          np.r_[self.original[1], self.table["ub"].to_numpy()], np.nan, inference, m=m, method=methods)

    def summary(self) -> str:
        text = super().summary()
        bd = "none on the grid" if self.breakdown is None else f"{self.breakdown:g}"
        return text + (f"\n\ntheta = {self.estimate:.6g} (se {self.se:.6g}); breakdown value: {bd}"
                       f"\nintervals: {100 * (1 - self.alpha):g}% confidence sets, the original from the normal "
                       f"approximation under parallel trends, the others Rambachan-Roth {self.method} robust sets; "
                       f"no p-values (the sets invert tests at this level only)")

    def plot_data(self, kind: str = "sensitivity") -> pd.DataFrame:
        """``m``, ``lb``, ``ub``, ``method``: the original interval (m NaN) then the robust sets."""
        orig = pd.DataFrame({"m": [np.nan], "lb": [self.original[0]], "ub": [self.original[1]], "method": ["original"]})
        return pd.concat([orig, self.table], ignore_index=True)

    def plot(self, kind: str = "sensitivity", ax: Any = None) -> Any:
        from decrimkit.plotting.did import sensitivity_plot

        xlabel = "M (smoothness)" if self.method == "smoothness" else "Mbar (relative magnitude)"
        return sensitivity_plot(self.plot_data(kind), ax=ax, title=self.title, xlabel=xlabel)


def _from_att_gt(result: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(event times, estimates, covariance) of a Callaway-Sant'Anna event study (``att_gt(...).aggregate
    ("dynamic")``) with the reference -1 removed, as R HonestDiD's ``honest_did.AGGTEobj`` does; None for
    other results. The covariance is ``psi' psi / n^2`` from the stored influence functions."""
    influence = getattr(result, "influence", None)
    if influence is None or getattr(result, "kind", None) is None:
        return None
    if result.kind != "dynamic":
        raise SpecificationError(
            f"honest() needs the event-study aggregate of att_gt, got the {result.kind!r} aggregate; use "
            "did.att_gt(panel, base_period='universal').aggregate('dynamic')."
        )
    if result.spec.options.get("base_period") != "universal":
        raise SpecificationError(
            "honest() needs an att_gt event study with a universal base period (every pre-period effect measured "
            "against event time -1); rerun did.att_gt(panel, base_period='universal').aggregate('dynamic')."
        )
    times = np.asarray(result.label, dtype="int64")
    psi = np.asarray(influence, dtype="float64")
    vcov = psi.T @ psi / psi.shape[0] ** 2
    keep = times != -1
    return times[keep], np.asarray(result.estimate)[keep], vcov[np.ix_(keep, keep)]


def _refuse_few_treated(result: Any) -> None:
    """Refuse an event study whose p-values and intervals came from a few-treated method (see the message)."""
    spec = getattr(result, "spec", None)
    method = spec.options.get("inference", "cluster") if spec is not None else "cluster"
    if getattr(result, "inference", None) is not None:
        method = getattr(result.inference, "method", method)
    if method in (None, "cluster"):
        return
    raise SpecificationError(
        f"honest() cannot use this event study: its inference is {method!r}, a few-treated method. The "
        f"Rambachan-Roth confidence sets treat the event-study coefficients as normal with a known covariance "
        f"matrix; a few-treated method is used precisely because, with so few treated units, the coefficients "
        f"are not close to normal and the cluster covariance understates their variance. Neither that covariance "
        f"nor one computed from the {method!r} draws (a non-normal distribution) gives honest() intervals a "
        f"coverage guarantee, so none is printed. With enough treated units rerun the event study with "
        f"inference='cluster'; otherwise report the {method!r} event study and a pre-trend check without honest()."
    )


def _design(result: Effect, l_vec: Sequence[float] | None) -> _Design:
    how = (
        "Pass the result of did.event_study(panel), did.sun_abraham(panel) or "
        "did.att_gt(panel, base_period='universal').aggregate('dynamic'), e.g. did.honest(did.event_study(panel))."
    )
    _refuse_few_treated(result)
    cs = _from_att_gt(result)
    if cs is not None:
        result = Effect(
            label=tuple(int(t) for t in cs[0]),
            estimate=cs[1],
            se=np.sqrt(np.diag(cs[2])),
            spec=result.spec,
            vcov=cs[2],
            label_name="event_time",
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
        pieces = [(a, np.zeros(len(a))) for a in rm_pieces(d, m)]
    lo, hi = id_bounds(d, pieces)
    return (lo, hi)


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
    test: RMTest = "hybrid",
    seed: int = 0,
    n_draws: int = 20_000,
    grid_points: int = 1001,
) -> HonestResult:
    """Robust confidence sets for a post-period effect when parallel trends may fail by up to M.

    Parameters
    ----------
    event_study_result : EventStudyResult or StaggeredEffect
        From :func:`did.event_study` or :func:`did.sun_abraham` (consecutive event times, reference -1
        left out, no binned endpoints, with ``vcov``), or the event-study aggregate of
        :func:`did.att_gt` with ``base_period="universal"`` (its -1 coefficient, zero by construction, is
        dropped and the covariance comes from the influence functions, as in R HonestDiD).
    method : {"relative_magnitude", "smoothness"}
        The restriction on the trend difference (see the module docstring).
    m : sequence of float
        Sensitivity parameters (``Mbar`` or ``M``), non-negative.
    alpha : float
        1 - coverage.
    l_vec : sequence of float, optional
        Weights of the post-period effects in ``theta`` (default: event time 0 only).
    test : {"hybrid", "conditional", "lf"}
        Relative magnitudes only: the ARP test inverted for the confidence set: the
        conditional-least-favourable hybrid (default, HonestDiD's ``"C-LF"``), the conditional test
        (``"Conditional"``), or the least-favourable test (``"ARP-LF"``, exact intervals, conservative).
    seed, n_draws
        Simulation of the least-favourable critical value (relative magnitudes, ``"hybrid"`` and ``"lf"``).
    grid_points : int
        Grid of ``theta`` values on which the hybrid and conditional tests are run before the ends of the
        accepted set are refined by bisection.

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
    check_option("test", test, RMTest)
    if isinstance(grid_points, bool) or not isinstance(grid_points, (int, np.integer)) or grid_points < 3:
        raise SpecificationError(f"grid_points must be an integer of at least 3, got {grid_points!r}.")
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
        if method == "smoothness":
            (lb, ub), label = _flci(d, mv, alpha), "FLCI"
        elif test == "lf":
            (lb, ub), label = rm_ci_lf(d, mv, alpha, seed, n_draws), _RM_LABEL[test]
        else:
            (lb, ub), label = rm_ci_arp(d, mv, alpha, test, seed, n_draws, grid_points), _RM_LABEL[test]
        rows.append((mv, lb, ub, label))
    table = pd.DataFrame(rows, columns=["m", "lb", "ub", "method"])
    excludes = ((table["lb"] > 0) | (table["ub"] < 0)).to_numpy()
    first_in = int(np.argmin(excludes)) if not excludes.all() else len(excludes)
    breakdown = float(table["m"].iloc[first_in - 1]) if first_in > 0 else None
    spec = Spec(
        estimator="did.honest",
        options={
            "method": method,
            "test": test if method == "relative_magnitude" else None,
            "m": tuple(float(x) for x in ms),
            "alpha": alpha,
            "l_vec": tuple(d.l_vec.tolist()),
        },
        seed=seed if method == "relative_magnitude" and test != "conditional" else None,
        notes=(f"theta = l'tau_post over event times {d.times[d.n_pre :].tolist()}",)
        + ((_RM_NOTE[test],) if method == "relative_magnitude" else ()),
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
