"""Randomization (permutation) inference: reassign treatment across units, invert the test for an interval.

Public pieces (NumPy in and out, float64):

``count_assignments(cohorts) -> int``
    How many distinct ways the multiset of adoption dates ``cohorts`` (one per unit; ``inf`` = never
    treated) can be reassigned across the units: ``n! / prod_g n_g!``.

``assignments(cohorts, *, n_perm=999, max_exact=MAX_EXACT, seed=0) -> (draws, exact)``
    (P, n) reassigned adoption dates, the observed assignment first. All distinct assignments when there
    are at most ``max_exact`` of them (``exact=True``); otherwise the observed one and ``n_perm`` uniform
    random permutations drawn from ``seed`` (seeded Monte Carlo, ``exact=False``).

``RandomizationInference``
    Frozen result of a randomization test for k coefficients: ``stat`` (P, k), the estimator under every
    assignment (row 0: the observed one), and ``dose`` (P, k), the same estimator applied to the observed
    treatment indicator as if it were the outcome. ``p_value(null)`` and ``conf_int(alpha)``.

Method
------
Sharp null of a constant additive effect ``tau``: ``Y_it(0) = Y_it - tau D_it`` for every unit and period.
Under it the outcome that would be seen under another assignment is known, and the test statistic
``|beta_hat_pi(Y - tau D)|`` is compared across assignments ``pi``. For the DiD estimators of decrimkit
that are linear in the outcome (TWFE, event study, Callaway-Sant'Anna, imputation) ``beta_hat_pi(Y - tau
D) = stat_pi - tau dose_pi``, so one pass over the assignments gives the p-value at every ``tau``:
``p(tau) = #{pi : |stat_pi - tau dose_pi| >= |stat_0 - tau dose_0|} / P`` (the observed assignment counts
itself, so ``p >= 1/P``; with Monte Carlo draws this is ``(1 + #exceed) / (1 + n_perm)``). The interval is
``{tau : p(tau) > alpha}``, found exactly: ``p`` only changes where ``|stat_pi - tau dose_pi| = |stat_0 -
tau dose_0|``, at ``tau = (stat_pi -+ stat_0) / (dose_pi -+ dose_0)``, and the interval is the hull of
the accepted breakpoints and the points between them. Terms the constant effect does not move
(``dose_0 = 0``, e.g. pre-treatment event times) get the p-value of the sharp null of no effect and no
interval (NaN).

Assumptions: treatment (for staggered designs, the adoption dates) was as good as randomly assigned
across units, i.e. units are exchangeable under the null. With few treated units whose sizes or
variances differ from the controls' this fails and the coefficient-based test can over-reject (MacKinnon
and Webb 2020); Ferman-Pinto or the wild bootstrap address that case.

References
----------
Fisher, R. A. (1935). *The Design of Experiments*. Oliver and Boyd.
Imbens, G. W. and Rubin, D. B. (2015). *Causal Inference for Statistics, Social, and Biomedical
Sciences*, ch. 5. Cambridge University Press.
MacKinnon, J. G. and Webb, M. D. (2020). Randomization inference for difference-in-differences with few
treated clusters. *Journal of Econometrics* 218(2), 435-450.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from decrimkit.errors import DesignError, SpecificationError
from decrimkit.limits import MAX_REFITS, check_replications
from decrimkit.numerics.keys import numpy_rng

__all__ = ["MAX_EXACT", "RandomizationInference", "assignments", "count_assignments", "p_values"]

MAX_EXACT = 2000
"""Designs with at most this many distinct assignments are enumerated exactly."""

_REL_TOL = 1e-9  # |stat| ties within this relative tolerance count as "at least as extreme"


def count_assignments(cohorts: np.ndarray) -> int:
    """Distinct reassignments of the adoption dates across units: ``n! / prod_g n_g!``."""
    c = np.asarray(cohorts, dtype="float64")
    _, counts = np.unique(c, return_counts=True)
    total = math.factorial(c.size)
    for k in counts:
        total //= math.factorial(int(k))
    return total


def _enumerate(c: np.ndarray) -> np.ndarray:
    values, counts = np.unique(c, return_counts=True)
    order = np.argsort(counts, kind="stable")  # the most common value (usually never-treated) fills the rest
    values, counts = values[order], counts[order]
    n = c.size
    rows: list[np.ndarray] = []

    def place(row: np.ndarray, free: tuple[int, ...], j: int) -> None:
        if j == len(values) - 1:
            out = row.copy()
            out[list(free)] = values[j]
            rows.append(out)
            return
        for chosen in itertools.combinations(free, int(counts[j])):
            nxt = row.copy()
            nxt[list(chosen)] = values[j]
            rest = tuple(i for i in free if i not in set(chosen))
            place(nxt, rest, j + 1)

    place(np.full(n, np.nan), tuple(range(n)), 0)
    return np.array(rows)


def assignments(
    cohorts: np.ndarray, *, n_perm: int = 999, max_exact: int = MAX_EXACT, seed: int = 0
) -> tuple[np.ndarray, bool]:
    """(P, n) reassigned adoption dates (observed first) and whether they are all of them."""
    c = np.asarray(cohorts, dtype="float64").reshape(-1)
    if isinstance(n_perm, bool) or not isinstance(n_perm, (int, np.integer)) or n_perm < 19:
        raise SpecificationError(f"n_perm must be an integer of at least 19, got {n_perm!r}.")
    if isinstance(max_exact, bool) or not isinstance(max_exact, (int, np.integer)) or max_exact < 0:
        raise SpecificationError(f"max_exact must be a non-negative integer, got {max_exact!r}.")
    # every assignment refits the estimator (twice): the refit bound applies to both
    check_replications("n_perm", n_perm, maximum=MAX_REFITS, per_replication=c.size)
    check_replications("max_exact", max_exact, maximum=MAX_REFITS, per_replication=c.size)
    n_assign = count_assignments(c)
    if n_assign < 2:
        raise DesignError("every unit has the same adoption date; there is no other assignment to compare with.")
    if n_assign <= max_exact:
        rows = _enumerate(c)
        same = np.all((rows == c[None, :]) | (np.isinf(rows) & np.isinf(c[None, :])), axis=1)
        return np.vstack([c[None, :], rows[~same]]), True
    rng = numpy_rng(seed)
    draws = np.array([rng.permutation(c) for _ in range(int(n_perm))])
    return np.vstack([c[None, :], draws]), False


def p_values(stat: np.ndarray, dose: np.ndarray, null: np.ndarray) -> np.ndarray:
    """(m,) p-values of one term at the nulls ``null`` (m,) from ``stat``, ``dose`` (P,), row 0 observed."""
    t = np.abs(stat[:, None] - np.asarray(null)[None, :] * dose[:, None])  # (P, m)
    t0 = t[0]
    tol = _REL_TOL * np.maximum(np.abs(t0), np.max(np.abs(stat)) * 1e-3 + 1e-300)
    return np.mean(t >= (t0 - tol)[None, :], axis=0)


def _interval(stat: np.ndarray, dose: np.ndarray, alpha: float) -> np.ndarray:
    """Hull of ``{tau : p(tau) > alpha}`` for one term, exactly (see the module docstring)."""
    a0, b0 = stat[0], dose[0]
    if abs(b0) <= 1e-12 * max(1.0, float(np.max(np.abs(dose)))):
        return np.array([np.nan, np.nan])
    a, b = stat[1:], dose[1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        roots = np.concatenate([(a - a0) / (b - b0), (a + a0) / (b + b0)])
    roots = np.unique(roots[np.isfinite(roots)])
    centre = a0 / b0
    if roots.size == 0:
        roots = np.array([centre])
    span = max(float(roots.max() - roots.min()), abs(centre), 1.0)
    mids = (roots[:-1] + roots[1:]) / 2
    ends = np.array([roots.min() - span, roots.max() + span])
    cand = np.concatenate([roots, mids, ends])
    cand.sort()
    accept = np.zeros(cand.size, dtype=bool)
    step = max(1, 2_000_000 // max(stat.size, 1))
    for i in range(0, cand.size, step):
        accept[i : i + step] = p_values(stat, dose, cand[i : i + step]) > alpha
    if not accept.any():
        return np.array([np.nan, np.nan])
    lo = -np.inf if accept[0] else float(cand[np.argmax(accept)])
    hi = np.inf if accept[-1] else float(cand[cand.size - 1 - np.argmax(accept[::-1])])
    return np.array([lo, hi])


@dataclass(frozen=True)
class RandomizationInference:
    """A randomization test for k coefficients (see the module docstring).

    ``stat``, ``dose``: (P, k), row 0 the observed assignment; ``exact``: whether the P rows are every
    distinct assignment; ``n_assignments``: how many distinct assignments the design has; ``seed``.
    ``rows``: which coefficients of the result the test covers (None = all); ``overall``: whether the
    last column is the result's overall effect.
    """

    stat: np.ndarray
    dose: np.ndarray
    exact: bool
    n_assignments: int
    seed: int | None = None
    rows: tuple[int, ...] | None = None
    overall: bool = False
    method: str = "randomization"

    def __post_init__(self) -> None:
        for name in ("stat", "dose"):
            a = np.array(getattr(self, name), dtype="float64", copy=True)
            a = a[:, None] if a.ndim == 1 else a
            a.setflags(write=False)
            object.__setattr__(self, name, a)
        if self.stat.shape != self.dose.shape:
            raise ValueError("stat and dose must have the same shape")

    @property
    def n_draws(self) -> int:
        return int(self.stat.shape[0])

    def p_value(self, null: float = 0.0) -> np.ndarray:
        """(k,) p-values of the sharp null of a constant effect ``null`` (0: no effect at all)."""
        return np.array([p_values(self.stat[:, j], self.dose[:, j], np.array([null]))[0]
                         for j in range(self.stat.shape[1])])

    def conf_int(self, alpha: float = 0.05) -> np.ndarray:
        """(k, 2) test-inversion intervals under a constant additive effect (NaN: not defined)."""
        return np.array([_interval(self.stat[:, j], self.dose[:, j], alpha) for j in range(self.stat.shape[1])])

    @property
    def null(self) -> str:
        return "sharp null: the effect is the same constant (0 for the p-value) for every unit and period"

    @property
    def assumes(self) -> str:
        return "adoption dates as good as randomly assigned across units (units exchangeable)"

    def describe(self) -> str:
        how = (f"exact, all {self.n_draws} assignments" if self.exact
               else f"Monte Carlo, {self.n_draws - 1} of {self.n_assignments:,} assignments, seed {self.seed}")
        return f"randomization inference ({how})"
