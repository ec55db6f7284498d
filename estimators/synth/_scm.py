"""Synthetic control (Abadie and Gardeazabal 2003; Abadie, Diamond and Hainmueller 2010, 2015).

Estimand: the effect on one treated unit, period by period, ``Y_1t - sum_j w_j Y_jt`` after the
start, summarised by its post-period mean (``estimate``). The donor weights ``w`` lie on the simplex
and minimise ``(x1 - X0 w)' V (x1 - X0 w)`` for normalised predictors (each divided by its standard
deviation across units, as R ``Synth``); ``V`` is diagonal with weights on the simplex, chosen by
nested optimisation of the pre-period outcome MSPE ``mean((Z1 - Z0 w(V))^2)``: a global search
(differential evolution over log V, Becker and Kloessner 2018's MSCMT approach; ``_vsearch.py``) whose population includes the predictor corners, equal weights
and the regression-based V. R ``Synth``'s local Nelder-Mead/BFGS searches can stop at a local
optimum (Prop 99 with the ADH predictors: MSPE 3.20 against 3.077 at the global one).

Assumptions: untreated outcomes follow a factor model that the donors' convex hull reproduces; no
interference or anticipation; the donors are untreated. There is no sampling-based standard error:
inference is by placebo runs (``result.placebo``).

Placebo in space re-solves W with each donor playing the treated unit and the other donors as its
pool, by default **keeping V from the treated fit** so that all solves run as one vmapped batch;
``placebo("space", refit_v=True)`` re-optimises V for each placebo (what R ``Synth`` users,
pysyncon's ``PlaceboTest`` and mlsynth do), then solves every placebo's W as one vmapped batch.
The result names the rule it used. Placebo in time backdates the start and refits (V re-optimised) one fake date at a
time, with a progress bar.

References
----------
Abadie, A., Diamond, A. and Hainmueller, J. (2010). Synthetic control methods for comparative case
studies. JASA 105(490), 493-505. Abadie, A. and Gardeazabal, J. (2003). AER 93(1), 113-132.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from scipy import optimize

from decrimkit.errors import DesignError, SpecificationError
from decrimkit.options import VMethod, check_option
from decrimkit.panel import Panel
from decrimkit.progress import track
from decrimkit.results import Spec

from ._design import Predictor, SynthDesign, synth_design
from ._simplex import donor_bucket, pad_donors, simplex_ls, valid_donors
from ._vsearch import VSearch, search_v
from .results import PlaceboResult, SynthResult

__all__ = ["SCMResult", "scm", "placebo", "solve_w", "donor_bucket"]


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    """One BLAS/LAPACK thread while the simplex kernels run (and their results are read back).

    The kernels' small batched LAPACK calls (SVD least squares in the active-set phase) go to the
    process's OpenBLAS; its worker threads only contend on such small problems. Measured on a loaded
    2-core machine: the Prop 99 placebo batch took 4-26 s with OpenBLAS's default threads and
    0.17-0.3 s with one.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        yield
        return
    with threadpool_limits(1):
        yield


@dataclass(frozen=True, repr=False)
class SCMResult(SynthResult):
    """ADH synthetic control. ``extra`` holds ``v`` (predictor weights), ``balance`` and the design."""

    title: str = "Synthetic control (Abadie-Diamond-Hainmueller)"

    @property
    def v(self) -> pd.Series:
        """Diagonal of V, the predictor importance weights (sum to one, on normalised predictors)."""
        return self.extra["v"].copy()

    @property
    def balance(self) -> pd.DataFrame:
        """Predictor values: treated, synthetic and donor mean."""
        return self.extra["balance"].copy()

    def placebo(
        self,
        kind: str = "space",
        exclude_mspe_ratio: float | None = None,
        *,
        fake_starts: Any = None,
        refit_v: bool = False,
    ) -> PlaceboResult:
        """Placebo inference; see :func:`placebo`."""
        return placebo(
            self, kind=kind, exclude_mspe_ratio=exclude_mspe_ratio, fake_starts=fake_starts, refit_v=refit_v
        )


class SCMFit(NamedTuple):
    """w: (J,) donor weights; v: (k,) predictor weights; loss: pre-period outcome MSPE; kkt: solver check."""

    w: np.ndarray
    v: np.ndarray
    loss: float
    kkt: float


def _w_loss_one(v, x0, x1, z0, z1, valid, init=None):
    root = jnp.sqrt(v)[:, None]  # the QP with Q = X0'VX0, c = X0'Vx1 in factor form
    sol = simplex_ls(root * x0, root[:, 0] * x1, valid, max_iter=100, init=init)
    err = z1 - z0 @ sol.w
    return sol.w, jnp.mean(err * err), sol.kkt


_w_and_loss = jax.jit(_w_loss_one)
# many candidate V matrices at once: the finite-difference gradient of the local search
_w_and_loss_batch = jax.jit(jax.vmap(_w_loss_one, in_axes=(0, None, None, None, None, None)))


@jax.jit
def _placebo_w(v, x0, valid):
    """W for every donor j as the treated unit, the other donors as its pool (vmapped over j)."""
    a = jnp.sqrt(v)[:, None] * x0  # column j: the treated vector of placebo j
    masks = ~jnp.eye(x0.shape[1], dtype=bool) & valid[None, :]
    sols = jax.vmap(lambda bj, mj: simplex_ls(a, bj, mj, max_iter=100))(a.T, masks)
    return sols.w, sols.kkt


@jax.jit
def _placebo_w_refit(v_all, x0, valid, starts):
    """W for every donor j as the treated unit with its own V (row j of ``v_all``) and warm start, vmapped."""

    def one(v, xj, mj, w0):
        root = jnp.sqrt(v)
        return simplex_ls(root[:, None] * x0, root * xj, mj, max_iter=100, init=w0)

    masks = ~jnp.eye(x0.shape[1], dtype=bool) & valid[None, :]
    sols = jax.vmap(one)(v_all, x0.T, masks, starts)
    return sols.w, sols.kkt


EXACT_FIT = 1e-9  # pre-period RMSPE below this, relative to the outcome scale, is an exact fit


def solve_w(v: np.ndarray, x_donors: np.ndarray, x_treated: np.ndarray) -> np.ndarray:
    """Simplex weights for a given diagonal V on (already normalised) predictors."""
    j = x_donors.shape[1]
    width = donor_bucket(j)
    with _one_blas_thread():
        w, _, _ = _w_and_loss(
            jnp.asarray(v), jnp.asarray(pad_donors(x_donors, width)), jnp.asarray(x_treated), jnp.zeros((1, width)),
            jnp.zeros(1), valid_donors(j),
        )
        return np.asarray(w)[:j]


def _normalise(design: SynthDesign) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    allx = np.column_stack([design.x_treated, design.x_donors])
    divisor = np.std(allx, axis=1, ddof=1)
    divisor = np.where(divisor > 0, divisor, 1.0)
    return design.x_donors / divisor[:, None], design.x_treated / divisor, divisor


def _regression_v(x0, x1, z0, z1) -> np.ndarray:
    """Regression-based V: squared coefficients of window outcomes on normalised predictors, summed."""
    xs = np.column_stack([np.ones(x0.shape[1] + 1), np.column_stack([x1, x0]).T])
    zs = np.column_stack([z1, z0]).T
    beta = np.linalg.lstsq(xs, zs, rcond=None)[0][1:]
    v = (beta**2).sum(axis=1)
    return v / v.sum() if v.sum() > 0 and np.isfinite(v).all() else np.full(len(v), 1.0 / len(v))


def _custom_v(v: Any, design: SynthDesign) -> np.ndarray:
    """A user-given V (R Synth's ``custom.v``): one non-negative weight per predictor, scaled to sum 1.

    A Series is matched to the predictors by label when its index holds the predictor labels, else
    taken in order; an array is taken in the order of ``predictors``.
    """
    labels = list(design.predictor_labels)
    if isinstance(v, pd.Series):
        if set(map(str, v.index)) == set(labels) and len(v) == len(labels):
            v = v.rename(index=str).reindex(labels)
        v = v.to_numpy()
    try:
        arr = np.asarray(v, dtype="float64").ravel()
    except (TypeError, ValueError):
        raise SpecificationError(
            f"v={v!r} is neither a method name ('nested', 'nested-local', 'equal', 'regression') nor numeric predictor weights."
        ) from None
    if arr.shape != (len(labels),):
        raise SpecificationError(
            f"v has {arr.size} weight(s) but there are {len(labels)} predictors ({labels[:4]}...); give one "
            f"weight per predictor, in the order of predictors= (every pre-period outcome when predictors=None)."
        )
    if not np.isfinite(arr).all() or (arr < 0).any() or not arr.sum() > 0:
        raise SpecificationError(
            f"v must hold finite, non-negative predictor weights with a positive sum; got {arr.tolist()[:6]}."
        )
    return arr / arr.sum()


def _choose_v(
    v_method: Any, x0: np.ndarray, x1: np.ndarray, z0: np.ndarray, z1: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """(V on the simplex, approximate W or None) for normalised predictors.

    V is given (custom), equal, regression-based or nested; the global search also returns its
    approximate W at that V, a warm start for the exact solve.
    """
    k = x0.shape[0]
    if not isinstance(v_method, str):
        return np.asarray(v_method, dtype="float64"), None
    if v_method == "equal" or k == 1:
        return np.full(k, 1.0 / k), None
    reg = _regression_v(x0, x1, z0, z1)
    if v_method == "regression":
        return reg, None
    if v_method == "nested-local":
        with _one_blas_thread():
            return _local_v(x0, x1, z0, z1, reg), None
    return search_v(x0, x1, z0, z1, seed=seed, starts=(reg,))


def _local_v(x0: np.ndarray, x1: np.ndarray, z0: np.ndarray, z1: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """R Synth's local V search: Nelder-Mead and BFGS from equal and regression-based V, best of four.

    Kept as ``v="nested-local"`` to reproduce R Synth's published fits; it can stop at a local optimum
    (Basque: pre-period MSPE 0.0078 against 0.0041 at the global search's V).
    """
    k, j = x0.shape
    width = donor_bucket(j)
    args = (*(jnp.asarray(a) for a in (pad_donors(x0, width), x1, pad_donors(z0, width), z1)), valid_donors(j))

    def objective(p: np.ndarray) -> float:
        a = np.abs(p)
        return float(_w_and_loss(jnp.asarray(a / a.sum()), *args)[1]) if a.sum() > 0 else np.inf

    def gradient(p: np.ndarray) -> np.ndarray:
        # forward differences (scipy's default step), all k+1 evaluations in one vmapped batch
        h = np.sqrt(np.finfo(float).eps) * np.where(p >= 0, 1.0, -1.0) * np.maximum(1.0, np.abs(p))
        pts = np.abs(np.vstack([p, p + np.diag(h)]))
        losses = np.asarray(_w_and_loss_batch(jnp.asarray(pts / pts.sum(axis=1, keepdims=True)), *args)[1])
        return (losses[1:] - losses[0]) / h

    best = None
    runs = [(s, m) for s in (np.full(k, 1.0 / k), reg) for m in ("Nelder-Mead", "BFGS")]
    for start, method in track(runs, "SCM fit (local V search)"):
        if method == "Nelder-Mead":
            res = optimize.minimize(
                objective, start, method=method, options={"maxiter": 100 * k, "xatol": 1e-7, "fatol": 1e-12}
            )
        else:
            res = optimize.minimize(objective, start, jac=gradient, method=method)
        if best is None or res.fun < best.fun:
            best = res
    return np.abs(best.x) / np.abs(best.x).sum()


def _fit(design: SynthDesign, v_method: Any, window: tuple[int, int], seed: int = 0) -> SCMFit:
    x0, x1, _ = _normalise(design)
    lo, hi = window
    z0, z1 = design.y_donors[lo : hi + 1], design.y_treated[lo : hi + 1]
    j, width = x0.shape[1], donor_bucket(x0.shape[1])
    args = (*(jnp.asarray(a) for a in (pad_donors(x0, width), x1, pad_donors(z0, width), z1)), valid_donors(j))

    def evaluate(v: np.ndarray, init: np.ndarray | None = None) -> tuple[np.ndarray, float, float]:
        start = None if init is None else jnp.asarray(pad_donors(init, width))
        with _one_blas_thread():
            w, loss, kkt = _w_and_loss(jnp.asarray(v), *args, start)
            return np.asarray(w)[:j], float(loss), float(kkt)

    v, init = _choose_v(v_method, x0, x1, z0, z1, seed)
    w, loss, kkt = evaluate(v, init)
    return SCMFit(w=w, v=v, loss=loss, kkt=kkt)


def _window(design: SynthDesign, panel: Panel, mspe_window: tuple[Any, Any] | None) -> tuple[int, int]:
    if mspe_window is None:
        return 0, design.n_pre - 1
    lo, hi = (panel.time_position(t) for t in mspe_window)
    if not 0 <= lo <= hi < design.n_pre:
        raise DesignError(f"mspe_window={mspe_window!r} must lie before the start ({design.start}) with first <= last.")
    return lo, hi


def scm(
    panel: Panel,
    *,
    treated: Any,
    start: Any,
    predictors: Sequence[Predictor] | None = None,
    v: VMethod | Sequence[float] | np.ndarray | pd.Series = "nested",
    donors: Sequence[Any] | None = None,
    mspe_window: tuple[Any, Any] | None = None,
    seed: int = 0,
) -> SCMResult:
    """Abadie-Diamond-Hainmueller synthetic control for one treated unit.

    Parameters
    ----------
    panel : Panel
        Balanced in the outcome for the treated unit and donors. Rates per 100,000 when the panel
        has ``population`` (said in the result's notes).
    treated : unit label; start : first treated period label.
    predictors : list of (column, first, last), optional
        Each predictor is the mean of ``column`` (the outcome or a panel covariate) over periods
        first..last inclusive, ignoring missing values (R Synth's ``predictors`` and
        ``special.predictors`` in one form). ``None``: every pre-period outcome.
    v : {"nested", "nested-local", "equal", "regression"} or array-like of float
        How V is chosen: nested minimisation of the pre-period outcome MSPE by a global search
        (default; see :mod:`._vsearch`), the same by R Synth's local searches (``"nested-local"``:
        Nelder-Mead and BFGS from equal and regression-based V, best of four, which reproduces R
        Synth's published fits and can stop at a local optimum), equal weights, or regression-based
        weights. An array (or Series) gives V itself (R Synth's
        ``custom.v``): one non-negative weight per predictor in the order of ``predictors`` (a
        Series whose index holds the predictor labels is matched by label), rescaled to sum to one
        and applied to the SD-normalised predictors as the other methods are. ``result.v`` is the V
        used in every case.
    donors : labels, optional
        The donor pool (default: every never-treated unit other than ``treated``).
    mspe_window : (first, last), optional
        Pre-periods whose outcome MSPE the nested optimisation minimises (default: all pre-periods;
        R Synth's ``time.optimize.ssr``).
    seed : int
        Seed of the global V search (``v="nested"``; differential evolution). The search converges to
        the same optimum from any seed on well-posed problems; the seed makes the run reproducible.

    Returns
    -------
    SCMResult
        ``estimate`` (mean post-period gap), ``weights``, ``gap``, ``v``, ``balance``, ``placebo()``.

    Raises
    ------
    DesignError, SpecificationError, DataError
        See :func:`synth_design`.

    Notes
    -----
    Estimand: the effect on the one treated unit, ``Y_1t - sum_j w_j Y_jt`` in each post-period, and its
    post-period mean (``estimate``); ``w`` on the simplex, ``V`` chosen by nested optimisation of the
    pre-period MSPE. Assumptions: untreated outcomes follow a factor model the donors' convex hull
    reproduces; no interference or anticipation; donors untreated. Inference is by placebo runs, not a
    sampling standard error.

    References
    ----------
    Abadie, A., Diamond, A. and Hainmueller, J. (2010). Synthetic control methods for comparative case
    studies. *JASA* 105(490), 493-505.
    Abadie, A. and Gardeazabal, J. (2003). The economic costs of conflict: a case study of the Basque
    Country. *AER* 93(1), 113-132.

    Examples
    --------
    >>> from decrimkit.datasets import load_dataset
    >>> df = load_dataset("prop99", file="california_prop99_long.csv")
    >>> panel = Panel.from_frame(df, unit="State", time="Year", outcome="PacksPerCapita", treated="treated")
    >>> res = scm(panel, treated="California", start=1989, v="equal")
    """
    if isinstance(v, str):
        check_option("v", v, VMethod)
    design = synth_design(panel, treated=treated, start=start, donors=donors, predictors=predictors)
    v_used = v if isinstance(v, str) else _custom_v(v, design)
    window = _window(design, panel, mspe_window)
    fit = _fit(design, v_used, window, seed)
    if not fit.kkt <= 1e-8:
        raise RuntimeError(f"simplex solver KKT violation {fit.kkt:.2e}; please report this data set.")
    return _result(design, fit, v_used, window, panel, predictors, mspe_window, seed)


def _result(design, fit, v, window, panel, predictors, mspe_window, seed=0) -> SCMResult:
    synthetic = design.y_donors @ fit.w
    gap = design.y_treated - synthetic
    times = pd.Index(list(design.times), name="time")
    est = float(gap[design.n_pre :].mean())
    balance = pd.DataFrame(
        {
            "predictor": list(design.predictor_labels),
            "treated": design.x_treated,
            "synthetic": design.x_donors @ fit.w,
            "donor_mean": design.x_donors.mean(axis=1),
            "v": fit.v,
        }
    )
    notes = design.notes + ("no sampling standard error: use .placebo() for inference",)
    spec = Spec(
        estimator="synth.scm",
        options={
            "treated": design.treated,
            "start": design.start,
            "v": v if isinstance(v, str) else "custom",
            "custom_v": None if isinstance(v, str) else [float(a) for a in v],
            "predictors": [list(p) for p in predictors] if predictors is not None else None,
            "mspe_window": [design.times[window[0]], design.times[window[1]]],
            "n_donors": design.n_donors,
            "scale": design.scale,
            "pre_mspe": fit.loss,
            "seed": seed,
            "v_search": VSearch().as_dict() if isinstance(v, str) and v == "nested" else None,
        },
        n_units=design.n_donors + 1,
        n_periods=len(design.times),
        n_obs=(design.n_donors + 1) * len(design.times),
        excluded=design.excluded,
        notes=notes,
    )
    return SCMResult(
        estimate=est,
        se=float("nan"),
        weights=pd.Series(fit.w, index=pd.Index(list(design.donors), name="unit"), name="weight"),
        gap=pd.Series(gap, index=times, name="gap"),
        observed=pd.Series(design.y_treated, index=times, name="treated"),
        synthetic=pd.Series(synthetic, index=times, name="synthetic"),
        start=design.start,
        spec=spec,
        se_method=None,
        extra={
            "v": pd.Series(fit.v, index=pd.Index(list(design.predictor_labels), name="predictor"), name="v"),
            "balance": balance,
            "design": design,
            "panel": panel,
            "window": window,
            "call": {"predictors": predictors, "v": v, "mspe_window": mspe_window, "seed": seed},
        },
    )


# ---------------------------------------------------------------------------------------------- placebo
def _rmspe(gap: np.ndarray, n_pre: int) -> tuple[np.ndarray, np.ndarray]:
    pre = np.sqrt(np.mean(gap[:n_pre] ** 2, axis=0))
    post = np.sqrt(np.mean(gap[n_pre:] ** 2, axis=0))
    return pre, post


def placebo(
    result: SCMResult,
    kind: str = "space",
    exclude_mspe_ratio: float | None = None,
    *,
    fake_starts: Sequence[Any] | None = None,
    refit_v: bool = False,
) -> PlaceboResult:
    """Placebo runs for an SCM fit.

    ``kind="space"``: each donor in turn is treated as if treated at the same start, its pool the
    other donors. ``refit_v=False`` (default): V fixed at the treated fit's, one vmapped batch of W
    solves. ``refit_v=True``: V chosen again for each placebo by the treated fit's rule (``"nested"``:
    the global search with the same seed; ``"regression"``: its own regression V; equal or custom V:
    the same weights) on predictors normalised over that placebo's own units (the donors), as a
    separate ``scm(panel, treated=donor, donors=other donors)`` fit would; then every placebo's W in
    one vmapped batch. The table's ``v_rule`` column and the Spec name the rule used. The rank p-value is
    the share of runs (treated included) whose post/pre RMSPE ratio is at least the treated unit's.
    ``exclude_mspe_ratio`` drops placebos whose pre-period MSPE exceeds that multiple of the
    treated unit's (Abadie et al. 2010 use 20, 5 and 2).

    ``kind="time"``: the start is moved back to each of ``fake_starts`` (default: every pre-period
    from the middle of the pre-period on), using only data before the real start, and the SCM is
    refitted (predictor windows clipped before the fake start). The p-value is the share of runs
    (the actual start included) whose post/pre RMSPE ratio is at least the actual one.
    """
    check_option("kind", kind, ("space", "time"))
    if exclude_mspe_ratio is not None and not exclude_mspe_ratio > 0:
        raise SpecificationError(f"exclude_mspe_ratio={exclude_mspe_ratio!r} must be positive (e.g. 5).")
    design: SynthDesign = result.extra["design"]
    if not isinstance(refit_v, bool):
        raise SpecificationError(f"refit_v={refit_v!r} must be True or False.")
    if kind == "space":
        return _placebo_space(result, design, exclude_mspe_ratio, refit_v)
    if refit_v:
        raise SpecificationError("refit_v applies to kind='space'; the in-time placebo always re-optimises V.")
    return _placebo_time(result, design, fake_starts)


def _placebo_v(result: SCMResult, design: SynthDesign) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(normalised donor predictors, (J, k) V and (J, J) warm-start W of each placebo), V re-chosen per placebo.

    Each placebo's units are the donors (the treated unit is in no placebo's pool), so the predictors
    are normalised by their SD across the donors, as a separate fit on that pool would be.
    """
    divisor = np.std(design.x_donors, axis=1, ddof=1)
    x0 = design.x_donors / np.where(divisor > 0, divisor, 1.0)[:, None]
    lo, hi = result.extra["window"]
    z = design.y_donors[lo : hi + 1]
    call = result.extra["call"]
    v_method = call["v"] if isinstance(call["v"], str) else result.v.to_numpy()
    j = x0.shape[1]
    v_all = np.empty((j, x0.shape[0]))
    starts = np.zeros((j, j))
    for d in track(range(j), "SCM placebo in space (V re-optimised)", total=j):
        others = np.arange(j) != d
        v_all[d], w = _choose_v(v_method, x0[:, others], x0[:, d], z[:, others], z[:, d], call.get("seed", 0))
        starts[d, others] = 1.0 / (j - 1) if w is None else w
    return x0, v_all, starts


def _placebo_solves(result, x0, j, width, v_all, starts) -> tuple[np.ndarray, np.ndarray]:
    """((J, J) placebo weights, (width,) KKT violations): V fixed (``v_all`` None) or one V per placebo."""
    if v_all is None:
        w_all, kkt = _placebo_w(jnp.asarray(result.v.to_numpy()), jnp.asarray(pad_donors(x0, width)), valid_donors(j))
    else:
        pad = width - j  # padded placebo rows reuse the first one; their results are dropped
        w_all, kkt = _placebo_w_refit(
            jnp.asarray(np.vstack([v_all, np.tile(v_all[:1], (pad, 1))])),
            jnp.asarray(pad_donors(x0, width)),
            valid_donors(j),
            jnp.asarray(np.vstack([pad_donors(starts, width), np.tile(pad_donors(starts[:1], width), (pad, 1))])),
        )
    return np.asarray(w_all)[:j, :j], np.asarray(kkt)  # row j = weights of placebo j


def _placebo_space(result: SCMResult, design: SynthDesign, ratio_cut: float | None, refit_v: bool) -> PlaceboResult:
    j = design.n_donors
    width = donor_bucket(j)
    if refit_v:
        x0, v_all, starts = _placebo_v(result, design)
    else:
        (x0, _, _), v_all, starts = _normalise(design), None, None
    with _one_blas_thread():
        w_all, kkt = _placebo_solves(result, x0, j, width, v_all, starts)
    if not float(np.max(kkt[:j])) <= 1e-8:
        raise RuntimeError("simplex solver did not reach the KKT conditions in a placebo run.")
    gaps_p = design.y_donors - design.y_donors @ w_all.T  # (T, J)
    gaps = np.column_stack([result.gap.to_numpy(), gaps_p])
    pre, post = _rmspe(gaps, design.n_pre)
    # a run that fits its pre-period exactly (RMSPE at rounding level) has a post/pre ratio of rounding
    # noise, which would rank it at random: such runs tie at +inf instead
    scale = np.sqrt(np.mean(np.column_stack([design.y_treated, design.y_donors])[: design.n_pre] ** 2))
    exact = pre <= EXACT_FIT * (1.0 + scale)
    ratio = np.where(exact, np.inf, post / np.where(exact, 1.0, pre))
    keep = np.ones(len(ratio), dtype=bool)
    if ratio_cut is not None:
        keep = pre**2 <= ratio_cut * pre[0] ** 2
    p = float(np.mean(ratio[keep] >= ratio[0]))
    runs = [design.treated, *design.donors]
    table = pd.DataFrame(
        {
            "run": runs,
            "treated": [True] + [False] * design.n_donors,
            "pre_rmspe": pre,
            "post_rmspe": post,
            "ratio": ratio,
            "included": keep,
            "mean_post_gap": gaps[design.n_pre :].mean(axis=0),
        }
    )
    frame = pd.DataFrame(gaps, index=pd.Index(list(design.times), name="time"), columns=runs)
    v_rule = "refit" if refit_v else "fixed"
    table["v_rule"] = [v_rule] * len(runs)
    if refit_v:
        notes = (
            f"V re-optimised for each placebo (v={result.spec.options['v']!r}, predictors normalised over the "
            f"donors); W of every placebo solved in one vmapped batch",
        )
    else:
        notes = ("V fixed at the treated unit's fit; W re-solved for each placebo (one vmapped batch)",)
    spec = Spec(
        "synth.scm.placebo",
        options={"kind": "space", "exclude_mspe_ratio": ratio_cut, "refit_v": refit_v, "v_rule": v_rule},
        n_units=len(runs),
        n_periods=len(design.times),
        notes=notes,
    )
    return PlaceboResult(
        kind="space",
        table=table,
        gaps=frame,
        p_value=p,
        treated=design.treated,
        start=design.start,
        spec=spec,
        title="SCM placebo in space",
    )


def _placebo_time(result: SCMResult, design: SynthDesign, fake_starts: Sequence[Any] | None) -> PlaceboResult:
    panel: Panel = result.extra["panel"]
    call = result.extra["call"]
    n_pre = design.n_pre
    times = list(design.times)
    if fake_starts is None:
        fake_pos = list(range(max(2, n_pre // 2), n_pre))
    else:
        fake_pos = [panel.time_position(t) for t in fake_starts]
        if any(not 2 <= p < n_pre for p in fake_pos):
            raise DesignError(
                f"fake_starts must be pre-periods with at least two periods before them "
                f"({times[2]} .. {times[n_pre - 1]})."
            )
    if not fake_pos:
        raise DesignError("too few pre-periods for an in-time placebo (need at least three).")
    frame = panel.frame.loc[panel.frame["t"] < n_pre].reset_index(drop=True)
    early = Panel(
        frame=frame,
        roles=panel.roles,
        times=panel.times[:n_pre],
        units=panel.units,
        time_kind=panel.time_kind,
        covariates=panel.covariates,
        excluded=panel.excluded,
    )
    runs, cols, pre_r, post_r, means = [], [], [], [], []
    pre0, post0 = _rmspe(result.gap.to_numpy()[:, None], n_pre)
    for pos in track(fake_pos, description="SCM placebo in time", total=len(fake_pos)):
        preds, kept = _clip_predictors(call["predictors"], panel, pos)
        v_run = call["v"]
        if not isinstance(v_run, str):
            v_run = np.asarray(v_run)[kept] if kept is not None else np.asarray(v_run)[:pos]
            if not v_run.sum() > 0:
                raise DesignError(
                    f"the custom V puts no weight on predictors observed before the fake start {times[pos]}; "
                    f"choose later fake_starts."
                )
        win = call["mspe_window"]
        if win is not None:
            lo, hi = panel.time_position(win[0]), min(panel.time_position(win[1]), pos - 1)
            win = (times[min(lo, hi)], times[hi])
        fit = scm(
            early,
            treated=design.treated,
            start=times[pos],
            predictors=preds,
            v=v_run,
            donors=list(design.donors),
            mspe_window=win,
            seed=call.get("seed", 0),
        )
        g = fit.gap.to_numpy()
        pre, post = _rmspe(g[:, None], pos)
        runs.append(times[pos])
        cols.append(np.concatenate([g, np.full(len(times) - n_pre, np.nan)]))
        pre_r.append(pre[0])
        post_r.append(post[0])
        means.append(g[pos:].mean())
    pre = np.array([pre0[0], *pre_r])
    post = np.array([post0[0], *post_r])
    ratio = post / pre
    table = pd.DataFrame(
        {
            "run": [f"actual {design.start}", *[f"fake {r}" for r in runs]],
            "start": [design.start, *runs],
            "pre_rmspe": pre,
            "post_rmspe": post,
            "ratio": ratio,
            "included": True,
            "mean_post_gap": [result.estimate, *means],
        }
    )
    gaps = pd.DataFrame(
        np.column_stack([result.gap.to_numpy(), *cols]),
        index=pd.Index(times, name="time"),
        columns=table["run"].tolist(),
    )
    spec = Spec(
        "synth.scm.placebo",
        options={"kind": "time", "fake_starts": runs},
        n_units=design.n_donors + 1,
        n_periods=n_pre,
        notes=("fake starts use only data before the real start; V re-optimised",),
    )
    return PlaceboResult(
        kind="time",
        table=table,
        gaps=gaps,
        p_value=float(np.mean(ratio >= ratio[0])),
        treated=design.treated,
        start=design.start,
        spec=spec,
        title="SCM placebo in time",
    )


def _clip_predictors(predictors, panel: Panel, pos: int):
    """Predictor windows clipped before position ``pos`` and the positions of those kept (None: all outcomes)."""
    if predictors is None:
        return None, None
    out, kept = [], []
    for i, (col, lo, hi) in enumerate(predictors):
        a, b = panel.time_position(lo), min(panel.time_position(hi), pos - 1)
        if a <= b:
            out.append((col, panel.times[a], panel.times[b]))
            kept.append(i)
    if not out:
        raise DesignError("no predictor window starts before the fake start; choose later fake_starts.")
    return [(c, _plain(a), _plain(b)) for c, a, b in out], np.asarray(kept)


def _plain(x: Any) -> Any:
    return x.item() if isinstance(x, np.generic) else x
