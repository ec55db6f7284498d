"""What a study records for one method and one treated unit, read from a result through the result contract.

:class:`UnitEstimate` holds one method's average post-period effect on one treated unit with the interval
and p-value that method supports, the pre-period fit and the observed and counterfactual paths. Studies
extend it with their own fields (Oregon's :class:`~decrimkit.studies.oregon.methods.MethodEstimate`, the
county study's :class:`~decrimkit.studies.prosecutors.methods.CountyEstimate`).
:meth:`UnitEstimate.from_result` takes the numbers from ``result.tidy(alpha)``, so a study copies no
estimator's inference by hand; :func:`conley_taber` is the placebo interval both studies use for
synthetic control (a study-level method: the result itself gives only the rank p-value).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["NO_INTERVAL", "UnitEstimate", "conley_taber", "pre_rmspe"]

#: Why a :class:`UnitEstimate` has no finite interval (``why_no_interval``; ``""``: it has one).
NO_INTERVAL: dict[str, str] = {
    "withheld_poor_prefit": "withheld: the pre-period fit is poor, so the donors' placebo gaps (noise) do not "
                            "measure the bias of a counterfactual that misses the unit before the policy",
    "unbounded_set": "the confidence set is unbounded within the search grid: no finite interval",
}


@dataclass(frozen=True, kw_only=True)
class UnitEstimate:
    """One method's estimate of the average post-period effect on one treated unit."""

    method: str
    estimate: float
    conf_low: float
    conf_high: float
    p_value: float
    se: float
    inference: str
    pre_rmspe: float
    path: pd.DataFrame
    extra: dict[str, Any] = field(default_factory=dict)
    why_no_interval: str = ""  # a key of NO_INTERVAL where the method gives no finite interval, else ""

    def __post_init__(self) -> None:
        if self.why_no_interval and self.why_no_interval not in NO_INTERVAL:
            raise ValueError(f"why_no_interval {self.why_no_interval!r} is not one of {sorted(NO_INTERVAL)}")
        if self.why_no_interval and np.isfinite([self.conf_low, self.conf_high]).all():
            raise ValueError(f"{self.method}: a finite interval with why_no_interval={self.why_no_interval!r}")

    @property
    def has_interval(self) -> bool:
        """True when the method gives a finite interval (``why_no_interval`` empty and both ends finite)."""
        return not self.why_no_interval and bool(np.isfinite([self.conf_low, self.conf_high]).all())

    @classmethod
    def from_result(cls, result: Any, *, alpha: float = 0.05, term: Any = None, **fields: Any) -> Any:
        """``estimate``, ``se``, the ``1 - alpha`` interval and the p-value of ``term`` (default: the first
        row) from ``result.tidy(alpha)``; every other field by keyword. An interval with an infinite end
        (a test-inversion set unbounded within its grid) gets ``why_no_interval="unbounded_set"``."""
        tidy = result.tidy(alpha)
        row = tidy.iloc[0] if term is None else tidy.set_index("term").loc[term]
        numbers = {k: float(row[k]) for k in ("estimate", "se", "conf_low", "conf_high", "p_value")}
        if np.isinf([numbers["conf_low"], numbers["conf_high"]]).any():
            fields.setdefault("why_no_interval", "unbounded_set")
        return cls(**{**numbers, **fields})


def conley_taber(estimate: float, placebo_effects: np.ndarray, alpha: float = 0.05) -> tuple[float, float, float]:
    """Placebo interval and two-sided p-value for one treated unit (Conley and Taber 2011).

    Under exchangeable unit-level noise, the donors' placebo effects estimate the distribution of the
    treated unit's estimation error, so ``[estimate - q(1 - a/2), estimate - q(a/2)]`` covers the effect
    with probability about ``1 - alpha``; the p-value is the share of runs (placebos and the treated unit)
    with an absolute effect at least the treated unit's.
    """
    e = np.asarray(placebo_effects, dtype="float64")
    lo_q, hi_q = np.quantile(e, [alpha / 2, 1 - alpha / 2])
    p = (1 + np.sum(np.abs(e) >= abs(estimate))) / (1 + len(e))
    return float(estimate - hi_q), float(estimate - lo_q), float(p)


def pre_rmspe(gap: pd.Series, start: Any) -> float:
    """Root mean squared gap over the periods before ``start``."""
    g = gap.to_numpy(dtype="float64")[np.asarray(gap.index) < start]
    return float(np.sqrt(np.mean(g**2)))
