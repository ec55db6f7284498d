"""Contrast matrices of Roth and Sant'Anna's (2023) staggered-rollout estimators.

Every target parameter is a linear combination of cohort means: ``theta = sum_g A_theta[g] . Ybar_g``
with ``Ybar_g`` the (T,) vector of average outcomes of cohort ``g`` and ``A_theta`` a (G, T) matrix whose
columns each sum to zero over cohorts. It is built from the building blocks ``ATE(t, g)``: cohort ``g``
in period ``t`` against the cohorts not yet treated in ``max(t, g)`` (Callaway-Sant'Anna), or against the
last-treated cohort only (Sun-Abraham), each comparison cohort weighted by its size.

The companion matrix ``A_0`` places the same contrast in period ``g - 1``, the last period before cohort
``g`` is treated, so ``Xhat = sum_g A_0[g] . Ybar_g`` is the pre-treatment difference that the
Callaway-Sant'Anna estimator subtracts (``theta_0 - Xhat``); its expectation is zero when treatment
timing is random. Cohorts are time positions (``inf`` = never treated); periods are ``0 .. T-1``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import numpy as np

from decrimkit.errors import DesignError

__all__ = ["Contrast", "estimand_contrasts", "identified_event_times"]


class Contrast(NamedTuple):
    """One target parameter: ``label``; ``a_theta``, ``a_0``: (G, T) contrast matrices."""

    label: object
    a_theta: np.ndarray
    a_0: np.ndarray


def _ate_tg(t: float, gi: int, cohorts: np.ndarray, n_g: np.ndarray, last_only: bool) -> np.ndarray:
    """(G,) weights of ATE(t, g): +1 on cohort ``gi``, minus the size-weighted comparison cohorts."""
    g = cohorts[gi]
    if last_only:
        control = (cohorts > t) & (cohorts == cohorts.max())
    else:
        control = cohorts > max(t, g)
    out = np.zeros(len(cohorts))
    out[control] = -n_g[control] / n_g[control].sum()
    out[gi] += 1.0
    return out


def _place(
    pairs: Iterable[tuple[float, int, float]], cohorts, n_g, n_periods, last_only
) -> tuple[np.ndarray, np.ndarray]:
    """Sum ``w * ATE(t, g)`` into column ``t`` of A_theta and column ``g - 1`` of A_0 (where they exist)."""
    a_theta = np.zeros((len(cohorts), n_periods))
    a_0 = np.zeros_like(a_theta)
    for t, gi, w in pairs:
        c = w * _ate_tg(t, gi, cohorts, n_g, last_only)
        if 0 <= t < n_periods:
            a_theta[:, int(t)] += c
        pre = cohorts[gi] - 1
        if np.isfinite(pre) and 0 <= pre < n_periods:
            a_0[:, int(pre)] += c
    return a_theta, a_0


def _event_pairs(e: int, cohorts: np.ndarray, n_g: np.ndarray, n_periods: int) -> list[tuple[float, int, float]]:
    g_max = cohorts.max()
    last = np.maximum(cohorts + e, cohorts)
    eligible = np.flatnonzero((last < g_max) & (last <= n_periods - 1))
    if len(eligible) == 0:
        return []
    total = n_g[eligible].sum()
    return [(cohorts[gi] + e, int(gi), n_g[gi] / total) for gi in eligible]


def identified_event_times(cohorts: np.ndarray, n_periods: int) -> list[int]:
    """Event times ``e`` with at least one cohort observed at ``g + e`` while a comparison cohort is untreated."""
    n_g = np.ones(len(cohorts))
    out = []
    for e in range(-(n_periods - 1), n_periods):
        if any(0 <= t < n_periods for t, _, _ in _event_pairs(e, cohorts, n_g, n_periods)):
            out.append(e)
    return out


def estimand_contrasts(
    estimand: str,
    cohorts: np.ndarray,
    n_g: np.ndarray,
    n_periods: int,
    *,
    event_times: Iterable[int] = (),
    last_only: bool = False,
) -> list[Contrast]:
    """The (A_theta, A_0) pair of each parameter of ``estimand``.

    ``simple``: the ATE(t, g) of every identified post-treatment cell (``g <= t < max g``) weighted by
    cohort size; ``cohort``: the average over a cohort's identified post-treatment periods, then a
    size-weighted average over cohorts; ``calendar``: the size-weighted average over the cohorts treated by
    ``t``, then an equal-weighted average over periods; ``eventstudy``: for each event time ``e``, the
    size-weighted average of ATE(g + e, g) over the cohorts with a comparison cohort untreated at ``g + e``.
    """
    g_max = cohorts.max()
    t_all = np.arange(n_periods)
    finite = cohorts[np.isfinite(cohorts)]

    def build(label: object, pairs: list[tuple[float, int, float]]) -> Contrast:
        if not pairs:
            raise DesignError(
                f"efficient: the {estimand} parameter {label!r} has no identified cell (no cohort is treated while "
                f"a later cohort is still untreated). Check the cohorts, or choose another estimand."
            )
        a_theta, a_0 = _place(pairs, cohorts, n_g, n_periods, last_only)
        return Contrast(label, a_theta, a_0)

    if estimand == "simple":
        cells = [(t, gi) for gi, g in enumerate(cohorts) for t in t_all if g <= t < g_max]
        total = sum(n_g[gi] for _, gi in cells)
        return [build("ATT", [(t, gi, n_g[gi] / total) for t, gi in cells])]
    if estimand == "cohort":
        eligible = [gi for gi, g in enumerate(cohorts) if g < g_max and g <= n_periods - 1]
        total = n_g[eligible].sum() if eligible else 0.0
        pairs = []
        for gi in eligible:
            ts = [t for t in t_all if cohorts[gi] <= t < g_max]
            pairs += [(t, gi, n_g[gi] / total / len(ts)) for t in ts]
        return [build("ATT", pairs)]
    if estimand == "calendar":
        ts = [t for t in t_all if (len(finite) and t >= finite.min()) and t < g_max]
        pairs = []
        for t in ts:
            treated = np.flatnonzero(cohorts <= t)
            share = n_g[treated] / n_g[treated].sum()
            pairs += [(t, int(gi), s / len(ts)) for gi, s in zip(treated, share)]
        return [build("ATT", pairs)]
    if estimand == "eventstudy":
        out = []
        for e in event_times:
            pairs = _event_pairs(int(e), cohorts, n_g, n_periods)
            if not any(0 <= t < n_periods for t, _, _ in pairs):
                raise DesignError(
                    f"efficient: event time {int(e)} is not identified (no cohort is observed {int(e)} periods "
                    f"after adoption while a comparison cohort is untreated). Identified event times: "
                    f"{identified_event_times(cohorts, n_periods)}."
                )
            out.append(build(int(e), pairs))
        return out
    raise DesignError(f"efficient: unknown estimand {estimand!r}")  # pragma: no cover - checked by the caller
