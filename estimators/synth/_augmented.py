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

Conformal inference (``conformal``, ``conformal_average``) lives in :mod:`._conformal` and is
re-exported here.

References
----------
Ben-Michael, E., Feller, A. and Rothstein, J. (2021). The augmented synthetic control method.
JASA 116(536), 1789-1803. Chernozhukov, V., Wuthrich, K. and Zhu, Y. (2021). An exact and robust
conformal inference method for counterfactual and synthetic controls. JASA 116(536), 1849-1864.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from decrimkit.errors import SpecificationError
from decrimkit.options import check_option
from decrimkit.panel import Panel
from decrimkit.results import Spec

from ._ascm import AugFit, choose_lambda, fit_rows
from ._conformal import ConformalAverage, ConformalResult, conformal, conformal_average
from ._design import synth_design
from .results import SynthResult

__all__ = ["AugmentedResult", "ConformalAverage", "augmented", "conformal", "conformal_average", "fit_rows"]

ProgFunc = Literal["ridge", "none"]


@dataclass(frozen=True, repr=False)
class AugmentedResult(SynthResult):
    """Augmented SCM (Ben-Michael, Feller and Rothstein 2021). ``conformal(alpha)`` gives CWZ inference."""

    title: str = "Augmented synthetic control"

    def conformal(
        self, alpha: float = 0.05, *, grid_size: int = 50, n_perm: int | None = None, seed: int = 0
    ) -> ConformalResult:
        """Conformal p-values and intervals per post-period; see :func:`.conformal.conformal`."""
        return conformal(self, alpha=alpha, grid_size=grid_size, n_perm=n_perm, seed=seed)



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
            lam, cv = choose_lambda(prec - centre[None, :], pre1 - centre)
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
