"""Event-time results shared by the imputation and two-stage estimators, and their pre-trend test."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy import stats

from decrimkit.errors import DesignError, SpecificationError
from decrimkit.estimators.did._first_stage import FirstStage
from decrimkit.inference.cluster import cr1_vcov, fixef_dof
from decrimkit.numerics.demean import demean
from decrimkit.results import Effect, Spec

__all__ = ["EventTimeEffect", "PreTrends", "pretrend_regression", "horizon_weights"]


class PreTrends(NamedTuple):
    """Wald test that the pre-treatment coefficients are zero: statistic, df, p_value (chi-squared)."""

    statistic: float
    df: int
    p_value: float


@dataclass(frozen=True, repr=False)
class EventTimeEffect(Effect):
    """Event-time effects ``tau_e`` (``label`` = e) with the overall post-treatment ATT in ``overall``.

    ``pre`` holds the pre-trend coefficients (event times before treatment, estimated on untreated
    observations as in Borusyak, Jaravel and Spiess 2024, Test 1) when requested.
    """

    pre: Effect | None = None

    def pretest(self) -> PreTrends:
        """Joint Wald test of the pre-trend coefficients (cluster-robust, chi-squared)."""
        if self.pre is None or self.pre.vcov is None:
            raise SpecificationError("no pre-trend coefficients were estimated; pass pretrends=k (k > 0).")
        b = self.pre.estimate
        w = float(b @ np.linalg.solve(self.pre.vcov, b))
        return PreTrends(statistic=w, df=int(b.size), p_value=float(stats.chi2.sf(w, b.size)))


def _is_integer(value: object) -> bool:
    """An int (not a bool) or a float with an integer value."""
    if isinstance(value, (bool, np.bool_)):
        return False
    return isinstance(value, (int, np.integer)) or (
        isinstance(value, (float, np.floating)) and float(value).is_integer()
    )


def horizon_weights(
    fs: FirstStage, horizons: tuple[int, ...] | None, anticipation: int
) -> tuple[tuple[int, ...], np.ndarray]:
    """Horizons and the (N, H + 1) weight matrix: one column per horizon, the last for the overall ATT.

    Column weights are the observation weights normalised to sum to one over the target rows at
    that horizon (overall: every target row with ``e >= 0``).
    """
    target = fs.target
    present = tuple(int(e) for e in np.unique(fs.event[target]))
    if horizons is None:
        horizons = present
    else:
        values = [horizons] if isinstance(horizons, (str, bytes)) else list(horizons)
        if not all(_is_integer(e) for e in values):
            raise SpecificationError(
                f"horizons must be integers (event times, 0 = first treated period), got {values!r}; "
                f"e.g. horizons=[0, 1, 2], or None for every event time observed."
            )
        horizons = tuple(int(e) for e in values)
        missing = [e for e in horizons if e not in present]
        if missing:
            raise SpecificationError(
                f"horizons {missing} have no treated observations; available event times are {list(present)}."
            )
    if any(e < -anticipation for e in horizons):
        raise SpecificationError(
            f"horizons must be >= -anticipation (= {-anticipation}); pre-treatment event "
            f"times are tested with pretrends=k instead."
        )
    cols = [target & (fs.event == e) for e in horizons] + [target & (fs.event >= 0)]
    wmat = np.column_stack([c * fs.weight for c in cols]).astype("float64")
    sums = wmat.sum(axis=0)
    if (sums <= 0).any():
        raise DesignError("some horizon has no treated observation with positive weight.")
    return horizons, wmat / sums


def pretrend_regression(
    fs: FirstStage, unit: np.ndarray, time: np.ndarray, y: np.ndarray, k: int, anticipation: int, spec: Spec
) -> Effect:
    """Coefficients of event-time dummies ``e = -anticipation-1, ..., -anticipation-k`` added to the
    first stage on untreated observations, with CR1 cluster-robust errors (fixest's small-sample rule)."""
    rows = fs.untreated
    events = [-anticipation - j for j in range(k, 0, -1)]
    dummies = np.column_stack([(fs.event == e) for e in events]).astype("float64")[rows]
    empty = [e for e, col in zip(events, dummies.T) if col.sum() == 0]
    if empty:
        raise DesignError(f"pretrends={k}: no untreated observations at event times {empty}; lower pretrends.")
    cov_names = [c for c in spec.options.get("covariates", ())]
    x = dummies
    if cov_names:
        x = np.column_stack([dummies, fs.z[:, -len(cov_names) :].toarray()[rows]])
    w = fs.weight[rows]
    factors = [unit[rows], time[rows]]
    dm = demean(np.column_stack([y[rows], x]), factors, weights=w)
    if not dm.converged:
        raise DesignError("demeaning for the pre-trend regression did not converge.")
    yt, xt = dm.values[:, 0], dm.values[:, 1:]
    sw = np.sqrt(w)
    beta, *_ = np.linalg.lstsq(xt * sw[:, None], yt * sw, rcond=None)
    resid = yt - xt @ beta
    cluster = fs.cluster[rows]
    n_params = fixef_dof(x.shape[1], factors, cluster)
    vc = cr1_vcov(xt, resid, cluster, weights=w, n_params=n_params).vcov[:k, :k]
    return Effect(
        label=tuple(events),
        estimate=beta[:k],
        se=np.sqrt(np.diag(vc)),
        spec=spec,
        label_name="event_time",
        vcov=vc,
        title="Pre-trend coefficients (untreated observations)",
    )
