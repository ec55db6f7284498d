"""Predictor weights V by cross-validation (Abadie, Diamond and Hainmueller 2015), for ``scm(..., v="cv")``.

ADH (2015, West Germany) split the pre-period into a training and a validation window:

1. **training**: predictors measured in the training window (``cv_predictors``); V chosen so that the
   synthetic control ``w(V)`` fitted on those predictors minimises the outcome MSPE over the
   validation window;
2. **final fit**: the predictors of the fit (``predictors``, usually measured in the validation window)
   with that V held fixed (R Synth's ``custom.v``).

The validation MSPE is flat in V wherever the training fit's donor support does not change, so a set
of V attains the minimum, and those V give different final weights (West Germany: Austria 0.41 to
0.58 across tied V). The rule here picks one V reproducibly:

* the global nested search of ``_vsearch.py`` (differential evolution over log V, seeded) finds the
  minimum validation MSPE;
* a local Nelder-Mead search from equal weights (the start of R Synth and pysyncon, whose V ADH
  report) and a Nelder-Mead polish of the global search's V are run on the exact loss;
* the V taken is the local search from equal weights when it reaches the smallest of the three losses
  (relative tolerance ``TIE``), else the best of the others. ``result.spec.options["cv"]["v_rule"]``
  says which.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jax.numpy as jnp
import numpy as np
from scipy import optimize

from decrimkit.errors import DesignError, SpecificationError
from decrimkit.panel import Panel
from decrimkit.progress import track

from ._design import Predictor, SynthDesign, synth_design
from ._scm_fit import _normalise, _one_blas_thread, _regression_v, _w_and_loss
from ._simplex import donor_bucket, pad_donors, valid_donors
from ._vsearch import search_v

__all__ = ["CVPlan", "CVChoice", "cv_plan", "cv_v", "choose_v_cv", "placebo_cv_v", "TIE"]

TIE = 1e-6  # relative tolerance within which two validation MSPEs count as the same minimum


@dataclass(frozen=True)
class CVPlan:
    """The cross-validation set-up: training predictors, windows (positions, inclusive) and labels."""

    predictors: tuple[Predictor, ...]
    train: tuple[int, int]
    validate: tuple[int, int]
    defaults: tuple[str, ...]  # which of cv_predictors, cv_train, cv_validate were defaulted

    def labels(self, times: Sequence[Any]) -> dict[str, Any]:
        return {
            "train": [_plain(times[self.train[0]]), _plain(times[self.train[1]])],
            "validate": [_plain(times[self.validate[0]]), _plain(times[self.validate[1]])],
            "predictors": [list(p) for p in self.predictors],
            "defaulted": list(self.defaults),
        }


@dataclass(frozen=True)
class CVChoice:
    """v: V on the simplex (one weight per predictor); loss: validation MSPE at v; v_rule: which search gave v.

    x_donors: (k, J) training predictors of the donors (raw), kept for the refit-V placebo.
    """

    v: np.ndarray
    loss: float
    v_rule: str
    losses: dict[str, float]
    x_donors: np.ndarray


def _plain(x: Any) -> Any:
    return x.item() if isinstance(x, np.generic) else x


def _window(panel: Panel, window: Any, name: str) -> tuple[int, int]:
    if not (isinstance(window, (tuple, list)) and len(window) == 2):
        raise SpecificationError(f"{name}={window!r} must be a (first, last) pair of periods, e.g. (1971, 1980).")
    try:
        lo, hi = (panel.time_position(t) for t in window)
    except DesignError:
        raise DesignError(
            f"{name}={window!r}: a period is outside the panel ({panel.times[0]} .. {panel.times[-1]})."
        ) from None
    if lo > hi:
        raise DesignError(f"{name}={window!r} is empty: its first period is after its last.")
    return lo, hi


def cv_plan(
    panel: Panel,
    design: SynthDesign,
    predictors: Sequence[Predictor] | None,
    cv_predictors: Sequence[Predictor] | None,
    cv_train: tuple[Any, Any] | None,
    cv_validate: tuple[Any, Any] | None,
) -> CVPlan:
    """Check the windows and build the training predictors (see :func:`scm` for the defaults).

    Raises
    ------
    SpecificationError
        ``predictors=None`` (every pre-period outcome has no training counterpart), training predictors
        not one per final predictor, malformed windows.
    DesignError
        A validation window not before the start; a training window empty, overlapping or after the
        validation window; training predictor windows that reach the validation window or leave the panel.
    """
    if predictors is None:
        raise SpecificationError(
            "v='cv' needs predictors= (ADH 2015's cross-validation gives each final predictor a training "
            "counterpart measured before the validation window); with every pre-period outcome as a predictor "
            "there is none. Pass predictors=[(column, first, last), ...]."
        )
    times = list(panel.times)
    n_pre = design.n_pre
    defaults = []
    if cv_validate is None:
        v_lo, v_hi = n_pre - n_pre // 2, n_pre - 1
        defaults.append("cv_validate")
    else:
        v_lo, v_hi = _window(panel, cv_validate, "cv_validate")
    if v_hi >= n_pre:
        raise DesignError(
            f"cv_validate={cv_validate!r} reaches {times[v_hi]}, not before the start ({design.start}): the "
            f"validation window must lie in the pre-period. End it at {times[n_pre - 1]} or earlier."
        )
    if cv_train is None:
        t_lo, t_hi = max(0, v_lo - (v_hi - v_lo + 1)), v_lo - 1
        defaults.append("cv_train")
        if t_hi < 0:
            raise DesignError(
                f"cv_validate={cv_validate!r} starts at the panel's first period: no period is left for "
                f"the training window. Start the validation window later."
            )
    else:
        t_lo, t_hi = _window(panel, cv_train, "cv_train")
        if t_hi >= v_lo:
            raise DesignError(
                f"cv_train={cv_train!r} overlaps or follows the validation window ({times[v_lo]} .. "
                f"{times[v_hi]}): V would be chosen on outcomes its own predictors measured. End the "
                f"training window before {times[v_lo]}."
            )
    if cv_predictors is None:
        shift = v_lo - t_lo
        defaults.append("cv_predictors")
        train_preds = []
        for col, lo, hi in predictors:
            a, b = panel.time_position(lo) - shift, panel.time_position(hi) - shift
            if a < 0 or b > t_hi:
                raise DesignError(
                    f"the default training counterpart of predictor {(col, lo, hi)!r} (moved back {shift} "
                    f"periods, from the validation to the training window) falls outside the panel or "
                    f"after the training window. Pass cv_predictors= explicitly."
                )
            train_preds.append((col, _plain(times[a]), _plain(times[b])))
    else:
        train_preds = [tuple(p) for p in cv_predictors]
        if len(train_preds) != len(predictors):
            raise SpecificationError(
                f"cv_predictors has {len(train_preds)} predictor(s) but predictors= has {len(predictors)}: "
                f"V is chosen on the training predictors and applied to the final ones, one weight each, "
                f"in the same order."
            )
        for p in train_preds:
            if not len(p) == 3:
                raise SpecificationError(f"cv_predictors item {p!r} is not a (column, first, last) tuple.")
            lo, hi = _window(panel, (p[1], p[2]), f"cv_predictors item {p!r}")
            if hi > t_hi:
                raise DesignError(
                    f"cv_predictors item {p!r} uses {times[hi]}, after the training window's last period "
                    f"({times[t_hi]}): training predictors must end before the validation window "
                    f"({times[v_lo]} .. {times[v_hi]})."
                )
    if v_lo < 2:
        raise DesignError(f"the validation window starts at {times[v_lo]}: at least two earlier periods are needed.")
    return CVPlan(predictors=tuple(train_preds), train=(t_lo, t_hi), validate=(v_lo, v_hi), defaults=tuple(defaults))


def cv_v(panel: Panel, design: SynthDesign, plan: CVPlan, seed: int) -> CVChoice:
    """Choose V on the training predictors by the validation-window outcome MSPE (module docstring)."""
    train = synth_design(
        panel,
        treated=design.treated,
        start=panel.times[plan.validate[0]],
        donors=list(design.donors),
        predictors=list(plan.predictors),
    )
    x0, x1, _ = _normalise(train)
    lo, hi = plan.validate
    v, loss, rule, losses = choose_v_cv(
        x0, x1, train.y_donors[lo : hi + 1], train.y_treated[lo : hi + 1], seed
    )
    return CVChoice(v=v, loss=loss, v_rule=rule, losses=losses, x_donors=train.x_donors)


def choose_v_cv(
    x0: np.ndarray, x1: np.ndarray, z0: np.ndarray, z1: np.ndarray, seed: int
) -> tuple[np.ndarray, float, str, dict[str, float]]:
    """(V, validation MSPE, rule, loss of each search) for normalised training predictors x, validation outcomes z."""
    k, j = x0.shape
    width = donor_bucket(j)
    args = (*(jnp.asarray(a) for a in (pad_donors(x0, width), x1, pad_donors(z0, width), z1)), valid_donors(j))
    scale = float(np.mean(z1 * z1)) or 1.0

    def loss(v: np.ndarray) -> float:  # called inside _one_blas_thread (entered once: it costs a library scan)
        return float(_w_and_loss(jnp.asarray(v), *args)[1])

    def objective(p: np.ndarray) -> float:
        a = np.abs(p)
        return loss(a / a.sum()) / scale if a.sum() > 0 else np.inf

    def polish(start: np.ndarray) -> np.ndarray:
        res = optimize.minimize(
            objective, start, method="Nelder-Mead", options={"maxiter": 100 * k, "xatol": 1e-6, "fatol": 1e-10}
        )
        best = res.x if res.fun <= objective(start) else start
        return np.abs(best) / np.abs(best).sum()

    if k == 1:
        with _one_blas_thread():
            return np.ones(1), loss(np.ones(1)), "one predictor", {}
    v_global, _ = search_v(x0, x1, z0, z1, seed=seed, starts=(_regression_v(x0, x1, z0, z1),))
    with _one_blas_thread():
        cands = {
            "local search from equal V": polish(np.full(k, 1.0 / k)),
            "global search, polished": polish(v_global),
            "global search": v_global,
        }
        losses = {name: loss(v) for name, v in cands.items()}
    best = min(losses.values())
    rule = next(name for name, lv in losses.items() if lv <= best * (1.0 + TIE) + 1e-12 * scale)
    return cands[rule], losses[rule], rule, losses


def placebo_cv_v(design: SynthDesign, cv: dict, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """((J, k) V and (J, J) uniform warm-start W) of every placebo, each V chosen by the cross-validation rule.

    Placebo d: donor d is the treated unit, the other donors its pool; the training predictors are
    normalised over the donors (the treated unit is in no placebo's pool) and the validation window is
    the treated fit's.
    """
    xt = cv["x_train_donors"]
    divisor = np.std(xt, axis=1, ddof=1)
    x0 = xt / np.where(divisor > 0, divisor, 1.0)[:, None]
    lo, hi = cv["validate_positions"]
    z = design.y_donors[lo : hi + 1]
    j = x0.shape[1]
    v_all = np.empty((j, x0.shape[0]))
    starts = np.zeros((j, j))
    for d in track(range(j), "SCM placebo in space (V by cross-validation)", total=j):
        others = np.arange(j) != d
        v_all[d] = choose_v_cv(x0[:, others], x0[:, d], z[:, others], z[:, d], seed)[0]
        starts[d, others] = 1.0 / (j - 1)
    return v_all, starts
