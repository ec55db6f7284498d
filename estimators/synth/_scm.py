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

Code map: this module holds the public ``scm`` and ``placebo`` and the result; the W/V numerics are in
``_scm_fit.py``, the placebo runs in ``_scm_placebo.py``.

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

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from decrimkit.errors import DesignError, SpecificationError
from decrimkit.options import VMethod, check_option
from decrimkit.panel import Panel
from decrimkit.results import Spec

from ._design import Predictor, SynthDesign, synth_design
from ._scm_cv import cv_plan, cv_v
from ._scm_fit import SCMFit, _custom_v, _fit, _normalise, solve_w
from ._scm_placebo import _placebo_space, _placebo_time, _placebo_w
from ._simplex import donor_bucket, pad_donors, valid_donors
from ._vsearch import VSearch
from .results import PlaceboResult, SynthResult

__all__ = ["SCMResult", "scm", "placebo", "solve_w", "donor_bucket"]
# kept importable from here (tests and benchmarks read them as decrimkit.estimators.synth._scm.<name>)
_REEXPORTED = (SCMFit, _normalise, _placebo_w, pad_donors, valid_donors)


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

    def summary(self) -> str:
        text = super().summary()
        cv = self.spec.options.get("cv")
        if cv:
            (a, b), (c, d) = cv["train"], cv["validate"]
            text += (
                f"\n\nV by cross-validation (Abadie, Diamond and Hainmueller 2015): training {a}-{b}, validation "
                f"{c}-{d}, validation MSPE {cv['validation_mspe']:.6g} ({cv['v_rule']})"
            )
        return text

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
    cv_predictors: Sequence[Predictor] | None = None,
    cv_train: tuple[Any, Any] | None = None,
    cv_validate: tuple[Any, Any] | None = None,
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
    v : {"nested", "nested-local", "equal", "regression", "cv"} or array-like of float
        How V is chosen: nested minimisation of the pre-period outcome MSPE by a global search
        (default; see :mod:`._vsearch`), the same by R Synth's local searches (``"nested-local"``:
        Nelder-Mead and BFGS from equal and regression-based V, best of four, which reproduces R
        Synth's published fits and can stop at a local optimum), equal weights, or regression-based
        weights. An array (or Series) gives V itself (R Synth's
        ``custom.v``): one non-negative weight per predictor in the order of ``predictors`` (a
        Series whose index holds the predictor labels is matched by label), rescaled to sum to one
        and applied to the SD-normalised predictors as the other methods are. ``"cv"``: V chosen by
        cross-validation over a training and a validation window (Abadie, Diamond and Hainmueller
        2015; see ``cv_predictors``, ``cv_train``, ``cv_validate`` and Notes), then held fixed in the
        final fit on ``predictors``. ``result.v`` is the V used in every case.
    donors : labels, optional
        The donor pool (default: every never-treated unit other than ``treated``).
    mspe_window : (first, last), optional
        Pre-periods whose outcome MSPE the nested optimisation minimises (default: all pre-periods;
        R Synth's ``time.optimize.ssr``).
    seed : int
        Seed of the global V search (``v="nested"``; differential evolution). The search converges to
        the same optimum from any seed on well-posed problems; the seed makes the run reproducible.
    cv_predictors : list of (column, first, last), optional
        ``v="cv"`` only: the training-stage predictors, one per entry of ``predictors`` and in the same
        order (V is chosen on these and applied to those). Every window must end by the last period of
        the training window. Default: each predictor of ``predictors`` moved back by the number of
        periods from the start of the training window to the start of the validation window (gdp
        1981-1990 becomes gdp 1971-1980 when training is 1971-1980 and validation 1981-1990).
    cv_train : (first, last), optional
        ``v="cv"`` only: the training window; it must end before the validation window starts.
        Default: as many periods as the validation window, just before it (from the first period at most).
    cv_validate : (first, last), optional
        ``v="cv"`` only: the validation window, whose outcome MSPE chooses V; it must lie in the
        pre-period. Default: the later half of the pre-period.

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

    ``v="cv"`` (Abadie, Diamond and Hainmueller 2015, section 4 and their R replication code for West
    Germany): (1) training: V is chosen so that the synthetic control fitted on the training predictors
    (ADH: gdp, trade, inflation averaged 1971-1980, industry 1971-1980, schooling 1970 and 1975,
    invest70) minimises the outcome MSPE over the validation window (1981-1990); (2) final fit: the
    predictors measured over 1981-1990 (industry to 1989, schooling 1980 and 1985, invest80) with that V
    (R Synth's ``custom.v``). ADH's windows use 1990, the reunification year, so in decrimkit's terms the
    first treated period of their fit is ``start=1991``. The validation MSPE is flat in V over sets of
    tied V that give different final weights; decrimkit takes the V of a local search from equal
    weights (R Synth's and pysyncon's start, which reproduces ADH's weights) when it reaches the global
    search's minimum, else the global search's (see ``_scm_cv.py``); ``spec.options["cv"]`` records the
    windows, the training predictors, the validation MSPE and that rule. ``placebo("space",
    refit_v=True)`` re-runs the cross-validation for every placebo; the in-time placebo refuses ``v="cv"``.

    References
    ----------
    Abadie, A., Diamond, A. and Hainmueller, J. (2010). Synthetic control methods for comparative case
    studies. *JASA* 105(490), 493-505.
    Abadie, A. and Gardeazabal, J. (2003). The economic costs of conflict: a case study of the Basque
    Country. *AER* 93(1), 113-132.
    Abadie, A., Diamond, A. and Hainmueller, J. (2015). Comparative politics and the synthetic control
    method. *AJPS* 59(2), 495-510.

    Examples
    --------
    >>> from decrimkit.datasets import load_dataset
    >>> df = load_dataset("prop99", file="california_prop99_long.csv")
    >>> panel = Panel.from_frame(df, unit="State", time="Year", outcome="PacksPerCapita", treated="treated")
    >>> res = scm(panel, treated="California", start=1989, v="equal")
    """
    if isinstance(v, str):
        check_option("v", v, VMethod)
    is_cv = isinstance(v, str) and v == "cv"
    given = {"cv_predictors": cv_predictors, "cv_train": cv_train, "cv_validate": cv_validate}
    if not is_cv and any(a is not None for a in given.values()):
        named = [k for k, a in given.items() if a is not None]
        raise SpecificationError(f"{', '.join(named)} apply only with v='cv' (here v={v!r}); drop them or pass v='cv'.")
    design = synth_design(panel, treated=treated, start=start, donors=donors, predictors=predictors)
    window = _window(design, panel, mspe_window)
    cv = None
    if is_cv:
        plan = cv_plan(panel, design, predictors, cv_predictors, cv_train, cv_validate)
        choice = cv_v(panel, design, plan, seed)
        cv = {**plan.labels(design.times), "validation_mspe": choice.loss, "v_rule": choice.v_rule,
              "search_losses": choice.losses, "v_search": VSearch().as_dict(), "x_train_donors": choice.x_donors,
              "validate_positions": plan.validate}
        fit = _fit(design, choice.v, window, seed)
    else:
        v_used = v if isinstance(v, str) else _custom_v(v, design)
        fit = _fit(design, v_used, window, seed)
    if not fit.kkt <= 1e-8:
        raise RuntimeError(f"simplex solver KKT violation {fit.kkt:.2e}; please report this data set.")
    return _result(design, fit, v if is_cv else v_used, window, panel, predictors, mspe_window, seed, cv)


_CV_INTERNAL = ("x_train_donors", "validate_positions")  # kept in extra for the refit-V placebo, not in the Spec


def _result(design, fit, v, window, panel, predictors, mspe_window, seed=0, cv=None) -> SCMResult:
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
            "v_search": VSearch().as_dict() if isinstance(v, str) and v in ("nested", "cv") else None,
            "cv": None if cv is None else {k: a for k, a in cv.items() if k not in _CV_INTERNAL},
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
            "cv": cv,
        },
    )


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

    With ``v="cv"`` and ``refit_v=True`` each placebo repeats the cross-validation: V chosen on the
    training predictors (normalised over the donors) by that donor's validation-window MSPE, with the
    same rule and seed as the treated fit, then W on the final predictors at that V.

    ``kind="time"``: the start is moved back to each of ``fake_starts`` (default: every pre-period
    from the middle of the pre-period on), using only data before the real start, and the SCM is
    refitted (predictor windows clipped before the fake start). The p-value is the share of runs
    (the actual start included) whose post/pre RMSPE ratio is at least the actual one. It refuses a
    ``v="cv"`` fit (SpecificationError): pass the V found as a custom V instead.
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
    if result.spec.options["v"] == "cv":
        raise SpecificationError(
            "the in-time placebo does not support v='cv': its training and validation windows would have to move "
            "with each fake start. Refit with the V found, scm(..., v=result.v), for an in-time placebo at that V."
        )
    return _placebo_time(result, design, fake_starts, refit=scm)
