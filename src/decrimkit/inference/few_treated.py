"""Inference with few treated units: Conley-Taber, Ferman-Pinto, and the few-treated warning.

Public pieces (NumPy in and out, float64):

``FEW_TREATED = 5``
    Estimates resting on fewer treated units than this warn (:class:`~decrimkit.errors.FewTreatedWarning`)
    unless a few-treated method was chosen.

``warn_few_treated(n_treated, estimator, inference, threshold=FEW_TREATED)``
    Emit that warning, with the count and the methods to use instead.

``residual_draws(contrib, *, max_exact=MAX_EXACT, n_draws=999, seed=0) -> (draws, exact)``
    ``contrib`` (N1, N0, k): what the estimator would be if treated unit ``j`` had control ``l``'s
    residuals and every other unit had none. Returns (P, k) draws of ``sum_j contrib[j, l_j]`` over all
    ``N0 ** N1`` tuples ``(l_1, ..., l_N1)`` of controls when there are at most ``max_exact`` of them, else
    over ``n_draws`` tuples drawn uniformly (seeded).

``ferman_pinto_scale(contrib, size_treated, size_control) -> contrib``
    Ferman and Pinto's (2019) heteroskedasticity correction for aggregates of groups of different sizes:
    per treated unit and coefficient, regress ``contrib[j, l]**2`` on ``(1, 1/M_l)`` over the controls
    (``Var = A + B / M``; non-negative least squares when the unrestricted fit is negative somewhere) and
    rescale ``contrib[j, l] * sqrt(V(M_j) / V(M_l))``.

``ResidualInference``
    Frozen result for k coefficients: ``estimate`` (k,), ``draws`` (P, k) of the estimation error, method
    ``"conley_taber"`` or ``"ferman_pinto"``; ``p_value(null)``, ``conf_int(alpha)`` (equal-tailed).

Method
------
Conley and Taber (2011): with N1 treated units fixed and N0 controls growing, the DiD estimator converges
to ``alpha + W`` with ``W`` a linear function of the treated units' errors only. Under the assumption
that the treated units' errors are distributed as the controls' (identically distributed across units,
independent of treatment), the distribution of ``W`` is estimated by putting control residuals in the
place of the treated units' errors. For the DiD estimators of decrimkit, which are linear in the outcome,
``contrib[j, l]`` is the estimator applied to a panel whose only non-zero outcome is control ``l``'s
residual placed on treated unit ``j``; for TWFE with a common adoption date this is exactly Conley and
Taber's ``sum_t (d_jt - dbar_j) eta_lt / sum_j sum_t (d_jt - dbar_j)^2``. The interval is
``[a - W_(P+1-k), a - W_(k)]`` with ``W_(i)`` the sorted draws and ``k`` the smallest integer with
``k / P > alpha / 2``; the p-value of ``alpha = a0`` is ``min(1, 2 min(P(W <= a - a0), P(W >= a - a0)))``,
so the interval is exactly the set of values the test does not reject. With N0 controls and one treated
unit the smallest attainable p-value is 2/N0.

Ferman and Pinto (2019): when the units are aggregates of ``M_j`` people (state rates), their errors are
heteroskedastic, ``Var(W_j | M_j) = A + B / M_j``, so small treated states have noisier errors than the
large controls and Conley-Taber over-rejects. Rescaling each control's contribution to the treated unit's
variance restores the test under that model. Assumptions: the variance depends on the unit only through
``M`` (population) in that form, errors independent across units.

References
----------
Conley, T. G. and Taber, C. R. (2011). Inference with "difference in differences" with a small number of
policy changes. *Review of Economics and Statistics* 93(1), 113-125.
Ferman, B. and Pinto, C. (2019). Inference in differences-in-differences with few treated groups and
heteroskedasticity. *Review of Economics and Statistics* 101(3), 452-467.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls

from decrimkit.errors import DesignError, FewTreatedWarning, SpecificationError
from decrimkit.inference.randomization import MAX_EXACT
from decrimkit.limits import check_replications
from decrimkit.numerics.keys import numpy_rng

__all__ = [
    "FEW_TREATED",
    "FEW_TREATED_METHODS",
    "ResidualInference",
    "ferman_pinto_scale",
    "residual_draws",
    "warn_few_treated",
]

FEW_TREATED = 5
"""Default threshold of :func:`warn_few_treated`: fewer treated units than this warn."""

FEW_TREATED_METHODS = ("wild", "randomization", "conley_taber", "ferman_pinto")
"""Values of ``inference=`` meant for few treated units (no warning under them)."""


def _tie_tol(x: np.ndarray) -> np.ndarray:
    """Differences below this count as ties (rounding of sums of the same residuals in another order)."""
    return 1e-12 * np.maximum(np.abs(x), 1.0)


def warn_few_treated(n_treated: int, estimator: str, inference: str, threshold: int = FEW_TREATED) -> None:
    """Warn when an estimate rests on fewer than ``threshold`` treated units under large-sample inference."""
    if inference in FEW_TREATED_METHODS or n_treated >= threshold:
        return
    warnings.warn(
        f"{estimator}: the estimate rests on {n_treated} treated unit{'s' if n_treated != 1 else ''} (fewer "
        f"than {threshold}); cluster-robust standard errors, p-values and intervals are unreliable with so "
        f"few treated units (they over-reject). Use a few-treated method: inference='randomization', "
        f"'conley_taber', 'ferman_pinto' (population-weighted aggregates) or 'wild' (restricted wild "
        f"cluster bootstrap, conservative with very few treated units).",
        FewTreatedWarning,
        stacklevel=3,
    )


def residual_draws(
    contrib: np.ndarray, *, max_exact: int = MAX_EXACT, n_draws: int = 999, seed: int = 0
) -> tuple[np.ndarray, bool]:
    """(P, k) draws of ``sum_j contrib[j, l_j]`` over tuples of controls; exact when few enough."""
    c = np.asarray(contrib, dtype="float64")
    if c.ndim == 2:
        c = c[:, :, None]
    n1, n0, _ = c.shape
    if n0 < 2:
        raise DesignError(f"{n0} control units cannot estimate the error distribution; Conley-Taber and "
                          f"Ferman-Pinto need many never-treated units.")
    if isinstance(n_draws, bool) or not isinstance(n_draws, (int, np.integer)) or n_draws < 19:
        raise SpecificationError(f"n_draws must be an integer of at least 19, got {n_draws!r}.")
    check_replications("n_perm", n_draws, per_replication=n1 * c.shape[2])
    check_replications("max_exact", max_exact, per_replication=n1 * c.shape[2])
    if n0**n1 <= max_exact:
        tuples = np.array(list(itertools.product(range(n0), repeat=n1)))
        exact = True
    else:
        tuples = numpy_rng(seed).integers(0, n0, size=(int(n_draws), n1))
        exact = False
    draws = np.zeros((tuples.shape[0], c.shape[2]))
    for j in range(n1):
        draws += c[j, tuples[:, j], :]
    return draws, exact


def ferman_pinto_scale(contrib: np.ndarray, size_treated: np.ndarray, size_control: np.ndarray) -> np.ndarray:
    """Rescale ``contrib`` (N1, N0, k) to each treated unit's variance under ``Var = A + B / M``."""
    c = np.asarray(contrib, dtype="float64")
    c = c[:, :, None] if c.ndim == 2 else c
    m1 = np.asarray(size_treated, dtype="float64").reshape(-1)
    m0 = np.asarray(size_control, dtype="float64").reshape(-1)
    if (m0 <= 0).any() or (m1 <= 0).any() or not (np.isfinite(m0).all() and np.isfinite(m1).all()):
        raise SpecificationError("Ferman-Pinto needs positive, finite group sizes (population).")
    if np.ptp(m0) <= 1e-12 * m0.max():
        raise DesignError("every control has the same size; the Ferman-Pinto variance model A + B/M is not "
                          "identified. Use inference='conley_taber'.")
    scale = float(np.median(m0))  # 1/M in units of the median size: a well-conditioned design for (N)NLS
    z = np.column_stack([np.ones_like(m0), scale / m0])
    out = np.empty_like(c)
    for j in range(c.shape[0]):
        for k in range(c.shape[2]):
            target = c[j, :, k] ** 2
            if target.max() <= 1e-28 * max(1.0, float(np.max(c[:, :, k] ** 2))):
                out[j, :, k] = c[j, :, k]  # unit j does not enter this coefficient: nothing to rescale
                continue
            coef = np.linalg.lstsq(z, target, rcond=None)[0]
            v0, v1 = z @ coef, coef[0] + coef[1] * scale / m1[j]
            if (v0 <= 0).any() or v1 <= 0:
                coef = nnls(z, target)[0]
                v0, v1 = z @ coef, coef[0] + coef[1] * scale / m1[j]
            if (v0 <= 0).any() or v1 <= 0:
                raise DesignError("the fitted residual variance A + B/M is zero for some group; Ferman-Pinto "
                                  "cannot rescale. Use inference='conley_taber' or 'randomization'.")
            out[j, :, k] = c[j, :, k] * np.sqrt(v1 / v0)
    return out


@dataclass(frozen=True)
class ResidualInference:
    """Conley-Taber or Ferman-Pinto inference for k coefficients (see the module docstring).

    ``estimate`` (k,); ``draws`` (P, k) of the estimation error ``W``; ``exact``: the draws are every tuple
    of controls; ``n_treated``, ``n_controls``; ``rows``/``overall`` as in
    :class:`~decrimkit.inference.randomization.RandomizationInference`.
    """

    estimate: np.ndarray
    draws: np.ndarray
    method: str
    exact: bool
    n_treated: int
    n_controls: int
    seed: int | None = None
    rows: tuple[int, ...] | None = None
    overall: bool = False

    def __post_init__(self) -> None:
        if self.method not in ("conley_taber", "ferman_pinto"):
            raise ValueError(f"unknown method {self.method!r}")
        e = np.array(self.estimate, dtype="float64", copy=True).reshape(-1)
        d = np.array(self.draws, dtype="float64", copy=True)
        d = d[:, None] if d.ndim == 1 else d
        if d.shape[1] != e.size:
            raise ValueError("draws must have one column per estimate")
        e.setflags(write=False)
        d.setflags(write=False)
        object.__setattr__(self, "estimate", e)
        object.__setattr__(self, "draws", d)

    def p_value(self, null: float = 0.0) -> np.ndarray:
        """(k,) equal-tailed p-values of ``coefficient = null``."""
        x = self.estimate - null
        tol = _tie_tol(x)
        below = np.mean(self.draws <= (x + tol)[None, :], axis=0)
        above = np.mean(self.draws >= (x - tol)[None, :], axis=0)
        return np.minimum(1.0, 2 * np.minimum(below, above))

    def conf_int(self, alpha: float = 0.05) -> np.ndarray:
        """(k, 2) equal-tailed intervals: every value the test does not reject at ``alpha``."""
        w = np.sort(self.draws, axis=0)
        p = w.shape[0]
        k = int(np.floor(p * alpha / 2)) + 1  # smallest k with k / P > alpha / 2
        if k > p + 1 - k:
            return np.full((w.shape[1], 2), np.nan)
        # each end widened by the tie tolerance p_value uses, so that a draw equal to the estimate up to
        # rounding (exchangeable controls with identical residuals) never puts its end on the wrong side
        return np.column_stack([self.estimate - w[p - k] - _tie_tol(w[p - k]),
                                self.estimate - w[k - 1] + _tie_tol(w[k - 1])])

    @property
    def null(self) -> str:
        return "the coefficient equals the stated value (0 for the p-value); effects may vary"

    @property
    def assumes(self) -> str:
        if self.method == "conley_taber":
            return ("treated units' errors distributed as the controls' (identically distributed across units, "
                    "independent of treatment); many controls")
        return ("error variance of a unit = A + B / population (aggregates of different sizes), errors "
                "independent across units; many controls")

    def describe(self) -> str:
        name = "Conley-Taber" if self.method == "conley_taber" else "Ferman-Pinto (heteroskedasticity-corrected)"
        how = (f"exact over all {self.draws.shape[0]} tuples of {self.n_controls} controls" if self.exact
               else f"{self.draws.shape[0]} random tuples of {self.n_controls} controls, seed {self.seed}")
        return f"{name} residual inference, {self.n_treated} treated ({how})"
