"""The synthetic-control design: treated and donor outcome paths and predictor matrices from a Panel.

``synth_design`` is the single place where the synthetic-control family turns a :class:`Panel`
into arrays, and where every design check raises a named error before anything is compiled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from decrimkit.errors import DataError, DesignError, SpecificationError
from decrimkit.panel import Panel

__all__ = ["SynthDesign", "synth_design", "Predictor"]

Predictor = tuple[str, Any, Any]  # (column, first period, last period), mean over the window inclusive


@dataclass(frozen=True)
class SynthDesign:
    """Arrays of one synthetic-control problem (one treated unit, J donors, T periods).

    y_treated : (T,) outcome of the treated unit; y_donors : (T, J) outcomes of the donors.
    x_treated : (k,) predictors of the treated unit; x_donors : (k, J) predictors of the donors.
    n_pre : number of periods before ``start`` (positions 0..n_pre-1 are pre-treatment).
    scale : "rate" (per 100,000) or "raw".
    """

    treated: Any
    donors: tuple[Any, ...]
    times: np.ndarray
    n_pre: int
    y_treated: np.ndarray
    y_donors: np.ndarray
    x_treated: np.ndarray
    x_donors: np.ndarray
    predictor_labels: tuple[str, ...]
    scale: str
    notes: tuple[str, ...]
    excluded: tuple[tuple[int, str], ...]
    outcome_name: str

    @property
    def n_donors(self) -> int:
        return len(self.donors)

    @property
    def n_post(self) -> int:
        return len(self.times) - self.n_pre

    @property
    def start(self) -> Any:
        return self.times[self.n_pre]


def _label(x: Any) -> Any:
    return x.item() if isinstance(x, np.generic) else x


MAX_OUTCOME = 1e100
"""Largest outcome magnitude the synthetic-control family accepts. The fits square outcomes (Gram
matrices, ridge systems, noise levels); float64 overflows at 1.8e308, so squares and their sums over
units and periods need |y| far below 1e154 (beyond it ``augmented`` hung and ``scm``/``sdid`` gave a
wrong number or NaN). 1e100 leaves room for any realistic count, rate or money amount."""


def outcome_wide(panel: Panel) -> tuple[pd.DataFrame, str, tuple[str, ...]]:
    """Units x periods outcome table (rates per 100,000 when the panel has population).

    Raises
    ------
    DataError
        Outcomes beyond :data:`MAX_OUTCOME` in magnitude, or an outcome that is the same number in
        every unit and period (nothing to fit: weights and noise levels are undefined).
    """
    if panel.has_population:
        wide, scale, notes = (
            panel.to_wide("rate"),
            "rate",
            ("outcome analysed as a rate per 100,000 population (the panel has population=)",),
        )
    else:
        wide, scale, notes = panel.to_wide("y"), "raw", ()
    values = wide.to_numpy(dtype="float64")
    seen = values[np.isfinite(values)]
    name = panel.roles["outcome"] + (" (as a rate per 100,000)" if scale == "rate" else "")
    if seen.size and np.max(np.abs(seen)) > MAX_OUTCOME:
        big = wide.stack().abs().idxmax()
        raise DataError(
            f"outcome {name!r} reaches {float(wide.loc[big]):.3g} (unit {_label(big[0])!r}, {big[1]}): "
            f"synthetic-control fits square the outcomes, which overflows float64 for magnitudes near "
            f"1e154, so values beyond {MAX_OUTCOME:g} are refused. Rescale the outcome first (e.g. divide "
            f"it by a power of ten): synthetic-control estimates scale with it."
        )
    if seen.size and np.ptp(seen) == 0:
        raise DataError(
            f"outcome {name!r} is {float(seen[0]):g} in every unit and period: there is no variation to "
            f"fit, so donor weights and noise levels are undefined. Check that the right column was "
            f"given as outcome=."
        )
    return wide, scale, notes


def start_position(panel: Panel, start: Any, *, min_pre: int = 1) -> int:
    """Position of the first treated period; DesignError when outside the time range."""
    if start is None:
        raise SpecificationError("start= is required: the first treated period, e.g. start=1989.")
    try:
        pos = panel.time_position(start)
    except DesignError:
        raise DesignError(
            f"start={start!r} is outside the panel's time range ({panel.times[0]} .. {panel.times[-1]}). "
            f"Give the first treated period as one of the panel's periods."
        ) from None
    if pos < min_pre:
        raise DesignError(
            f"start={start!r} leaves {pos} pre-treatment period(s); at least {min_pre} are needed. "
            f"Choose a later start or extend the data back in time."
        )
    return pos


def choose_donors(panel: Panel, treated: Any, donors: Sequence[Any] | None) -> tuple[tuple[Any, ...], tuple[str, ...]]:
    """Donor labels: given ones (checked) or every never-treated unit other than ``treated``."""
    units = [_label(u) for u in panel.units]
    if treated not in units:
        raise DesignError(
            f"treated unit {treated!r} is not in the panel (units include {units[:5]}). "
            f"Pass a label from the panel's unit column."
        )
    cohort = panel.unit_cohort
    notes: list[str] = []
    if donors is None:
        pool = [u for u in units if u != treated and not np.isfinite(cohort.loc[u])]
        others = [u for u in units if u != treated and np.isfinite(cohort.loc[u])]
        if others:
            notes.append(f"{len(others)} other treated unit(s) left out of the donor pool: {others[:5]}")
    else:
        pool = [_label(d) for d in donors]
        missing = [d for d in pool if d not in units]
        if missing:
            raise DesignError(f"donor(s) {missing[:5]} are not in the panel. Pass labels from the unit column.")
        if treated in pool:
            raise DesignError(f"the treated unit {treated!r} is among the donors. Remove it from donors=.")
        treated_donors = [d for d in pool if np.isfinite(cohort.loc[d])]
        if treated_donors:
            raise DesignError(
                f"{len(treated_donors)} donor(s) are treated units (e.g. {treated_donors[:3]}): a treated unit "
                f"among the donors biases the synthetic control. Drop them from donors=."
            )
        if len(set(pool)) != len(pool):
            raise DesignError("donors= repeats a unit; give each donor once.")
    if donors is None and not pool:
        raise DesignError(
            f"there is no never-treated unit other than the treated one to serve as a donor: all "
            f"{len(units)} units of the panel are treated (cohorts {[str(c) for c in panel.cohorts][:5]}). A "
            f"synthetic control needs untreated comparison units; add them to the panel."
        )
    if len(pool) < 2:
        raise DesignError(
            f"only {len(pool)} donor unit(s) {pool}: a synthetic control needs at least two donors "
            f"(with one the weights are fixed at 1). Add comparison units."
        )
    return tuple(pool), tuple(notes)


def _predictor_matrix(
    panel: Panel, wide_y: pd.DataFrame, units: list[Any], predictors: Sequence[Predictor], n_pre: int
) -> tuple[np.ndarray, tuple[str, ...]]:
    outcome = panel.roles["outcome"]
    rows, labels = [], []
    for item in predictors:
        if not (isinstance(item, (tuple, list)) and len(item) == 3):
            raise SpecificationError(
                f"predictor {item!r} is not a (column, start, end) tuple, e.g. ('gdpcap', 1960, 1969)."
            )
        col, lo, hi = item
        if col in (outcome, "y"):
            table = wide_y
        elif col in panel.covariates:
            table = panel.to_wide(col)
        else:
            raise SpecificationError(
                f"predictor column {col!r} is neither the outcome {outcome!r} nor a covariate of the panel "
                f"{list(panel.covariates)}. Declare it with Panel.from_frame(..., covariates=[...])."
            )
        for bound in (lo, hi):
            try:
                pos = panel.time_position(bound)
            except DesignError:
                raise DesignError(
                    f"predictor {item!r}: period {bound!r} is outside the panel ({panel.times[0]} .. "
                    f"{panel.times[-1]})."
                ) from None
            if pos >= n_pre:
                raise DesignError(
                    f"predictor {item!r} needs period {bound!r}, which is not before the start "
                    f"({panel.times[n_pre]}): there are fewer pre-periods than the predictors need. "
                    f"End predictor windows before the first treated period."
                )
        a, b = panel.time_position(lo), panel.time_position(hi)
        if a > b:
            raise SpecificationError(f"predictor {item!r}: the window's start is after its end.")
        block = table.loc[units].to_numpy(dtype="float64")[:, a : b + 1]
        observed = np.isfinite(block).any(axis=1)
        if not observed.all():
            bad = [units[i] for i in np.flatnonzero(~observed)]
            raise DataError(
                f"predictor {item!r} is missing in every period of its window for {bad[:5]}. "
                f"Choose a window where the column is observed."
            )
        rows.append(np.nanmean(block, axis=1))
        labels.append(f"{col} {lo}" if a == b else f"{col} {lo}-{hi}")
    return np.vstack(rows), tuple(labels)


def synth_design(
    panel: Panel,
    *,
    treated: Any,
    start: Any,
    donors: Sequence[Any] | None = None,
    predictors: Sequence[Predictor] | None = None,
) -> SynthDesign:
    """Build and check the arrays of a one-treated-unit synthetic-control problem.

    Shared by :func:`scm` and :func:`augmented`; it estimates nothing.

    Parameters
    ----------
    panel : Panel
        One row per unit and period (no group dimension).
    treated : unit label; start : first treated period label (at least two pre-periods before it).
    donors : labels, optional
        The donor pool (default: every never-treated unit other than ``treated``).
    predictors : list of (column, first, last), optional
        Means of ``column`` over periods first..last inclusive (see :func:`scm`); ``None``: every
        pre-period outcome.

    Returns
    -------
    SynthDesign
        Outcome and predictor arrays of the treated unit and the donors, the period labels and the
        number of pre-periods.

    Raises
    ------
    DesignError
        Treated unit missing; start outside the time range or without pre-periods; predictor windows
        reaching the start; donors with missing outcomes; the treated unit (or another treated unit)
        among the donors; fewer than two donors.
    SpecificationError, DataError
        Malformed predictors or predictors never observed in their window.
    """
    if panel.has_group:
        raise DesignError("synthetic control needs one row per unit and period; this panel has a group dimension.")
    treated = _label(treated)
    pool, notes = choose_donors(panel, treated, donors)
    n_pre = start_position(panel, start, min_pre=2)
    wide, scale, scale_notes = outcome_wide(panel)
    units = [treated, *pool]
    y = wide.loc[units].to_numpy(dtype="float64")
    holes = ~np.isfinite(y)
    if holes[0].any():
        raise DesignError(
            f"the treated unit {treated!r} has no outcome in {int(holes[0].sum())} period(s) "
            f"(e.g. {panel.times[np.flatnonzero(holes[0])[0]]}). Synthetic control needs its full path."
        )
    if holes[1:].any():
        bad = [pool[i] for i in np.flatnonzero(holes[1:].any(axis=1))]
        raise DesignError(
            f"{len(bad)} donor(s) have missing outcomes (e.g. {bad[:5]}). Drop them with donors= "
            f"or panel.subset(...) so every donor is observed in every period."
        )
    if predictors is None:
        x = y[:, :n_pre].T
        labels = tuple(f"{panel.roles['outcome']} {panel.times[t]}" for t in range(n_pre))
    else:
        if len(predictors) == 0:
            raise SpecificationError("predictors= is empty; pass None for every pre-period outcome.")
        x, labels = _predictor_matrix(panel, wide, units, predictors, n_pre)
    if np.all(np.ptp(x[:, 1:], axis=1) == 0) and np.any(np.ptp(y[1:], axis=0) > 0):
        raise DesignError(
            f"the {len(pool)} donors have identical predictors ({'pre-period outcomes' if predictors is None else 'every predictor'} "
            f"equal across donors): every set of donor weights fits the treated unit equally well, so the "
            f"synthetic control, which differs with the weights after the start, is not identified. Use "
            f"donors whose pre-treatment paths differ."
        )
    return SynthDesign(
        treated=treated,
        donors=pool,
        times=np.asarray(panel.times),
        n_pre=n_pre,
        y_treated=y[0].copy(),
        y_donors=y[1:].T.copy(),
        x_treated=x[:, 0].copy(),
        x_donors=x[:, 1:].copy(),
        predictor_labels=labels,
        scale=scale,
        notes=notes + scale_notes,
        excluded=tuple(panel.excluded),
        outcome_name=str(panel.roles["outcome"]),
    )
