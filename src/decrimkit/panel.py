"""The ``Panel``: a validated, immutable unit-by-period data set with declared column roles.

A panel is built once from a long data frame, ``Panel.from_frame(df, unit=, time=, outcome=, ...)``,
and every estimator takes it. It is the only place where pandas meets arrays: estimators read
the NumPy views (``unit_index``, ``time_index``, ``y``, ``g_index`` ...) and never the caller's frame.

Times may be integer years, dates, or monthly (or other) periods. They are normalised to one
sorted time index: ``times`` holds the labels, ``time_index`` the position of each row's period.
The cohort of a unit is its first treated period (0, NaN or inf mean never treated).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from decrimkit._panel_build import (
    cohort_columns,
    factorize_units,
    integer_time_codes,
    normalise_times,
    plain,
    require_columns,
    rows_excerpt,
)
from decrimkit.errors import DataError, DesignError, PanelError

__all__ = ["Panel"]

NEVER = np.inf  # cohort value of never-treated units (in ``g_index`` and ``cohort`` columns)


@dataclass(frozen=True, eq=False)
class Panel:
    """A validated long panel with declared roles. Build it with :meth:`Panel.from_frame`.

    Attributes
    ----------
    frame : DataFrame
        A copy with canonical columns: ``unit``, ``time`` (normalised labels), ``t`` (time position),
        ``y`` (outcome as given), ``cohort`` (first treated period label, NaN if never),
        ``g`` (first treated time position, inf if never), ``d`` (0/1 treated indicator), and, when
        declared, ``weight``, ``population``, ``rate`` (y per 100,000 population), ``group`` and
        the covariates under their own names. Sorted by unit then time.
    roles : dict
        The original column name behind each role.
    """

    frame: pd.DataFrame
    roles: dict[str, Any]
    times: np.ndarray
    units: np.ndarray
    time_kind: str
    covariates: tuple[str, ...] = ()
    excluded: tuple[tuple[int, str], ...] = field(default=())

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_frame(
        cls,
        df: pd.DataFrame,
        *,
        unit: str,
        time: str,
        outcome: str,
        cohort: str | None = None,
        treated: str | None = None,
        covariates: Sequence[str] = (),
        weights: str | None = None,
        population: str | None = None,
        group: str | None = None,
        allow_reversal: bool = False,
        freq: str | None = None,
        count: bool | None = None,
        missing_covariates: str = "raise",
    ) -> Panel:
        """Validate ``df`` and build a panel.

        Parameters
        ----------
        df : DataFrame
            Long data: one row per unit and period (per unit, period and group when ``group`` is set).
        unit, time, outcome : str
            Column names. ``time`` may hold integers, dates, date strings or pandas Periods.
        cohort : str, optional
            First treated period per unit (constant within unit); 0, NaN or inf = never treated (R's
            ``did`` codes never-treated as 0). A cohort must be one of the panel's periods, or later
            than the last one (treated after the window: not treated within it). Negative, fractional
            or True/False cohorts, and cohorts before the first period or between two observed periods,
            are refused with a DataError naming the rows: none is rounded or moved to another period.
        treated : str, optional
            A 0/1 treatment indicator; the cohort is derived as the first period with 1.
        covariates : sequence of str
            Numeric covariates, kept under their own names.
        weights : str, optional
            Non-negative analytic weights (constant within unit for most estimators).
        population : str, optional
            Population at risk; adds ``rate`` = outcome per 100,000 and is used as exposure by count models.
        group : str, optional
            A grouping within unit and period (e.g. race) for disparity estimands.
        allow_reversal : bool
            With ``treated``, allow treatment to switch off (policy rescinded); the cohort is the first on-period.
        freq : str, optional
            Period frequency for date-like times (default monthly, "M").
        count : bool, optional
            Declare the outcome a count (must be non-negative). Defaults to True when ``population`` is set.
        missing_covariates : {"raise", "keep"}
            ``"keep"`` allows missing (NaN) covariate values, e.g. covariates observed only in some
            years as in the Basque data; infinite values are still refused. Estimators that use
            covariates then say how they treat the gaps (synthetic control averages what is observed).

        Raises
        ------
        PanelError, DataError
            With the column, the first offending rows and the fix.
        """
        if missing_covariates not in ("raise", "keep"):
            raise PanelError(f"missing_covariates={missing_covariates!r}; use 'raise' or 'keep'.")
        if not isinstance(df, pd.DataFrame):
            raise PanelError(f"expected a pandas DataFrame, got {type(df).__name__}. Build one with pd.DataFrame(...).")
        if cohort is not None and treated is not None:
            raise PanelError("give either cohort= or treated=, not both.")
        covariates = tuple(covariates)
        roles = {
            "unit": unit,
            "time": time,
            "outcome": outcome,
            "cohort": cohort,
            "treated": treated,
            "covariates": covariates,
            "weights": weights,
            "population": population,
            "group": group,
        }
        require_columns(df, roles)
        if len(df) == 0:
            raise PanelError("the frame is empty (0 rows). Load the data before building a panel.")

        keep = [
            c
            for c in dict.fromkeys([unit, time, outcome, cohort, treated, weights, population, group, *covariates])
            if c is not None
        ]
        # positional row labels (messages name rows by position); copy-on-write: the caller's frame is never written
        raw = df.loc[:, keep].set_axis(pd.RangeIndex(len(df)), axis=0)

        out = pd.DataFrame({"unit": raw[unit].to_numpy()})
        if out["unit"].isna().any():
            raise PanelError(f"unit column {unit!r} is missing at rows {rows_excerpt(out.index[out['unit'].isna()])}.")
        tvals, kind = normalise_times(raw[time], freq)
        out["time"] = tvals.to_numpy() if kind == "int" else tvals.array

        y = raw[outcome]
        if not (pd.api.types.is_numeric_dtype(y.dtype) and not pd.api.types.is_bool_dtype(y.dtype)):
            raise DataError(
                f"outcome column {outcome!r} is not numeric (dtype {y.dtype}); first value {plain(y.iloc[0])!r}. "
                f"Convert it with pd.to_numeric(df[{outcome!r}]) and check the rows that fail."
            )
        yv = y.to_numpy(dtype="float64")
        bad = ~np.isfinite(yv)
        if bad.any():
            raise DataError(
                f"outcome column {outcome!r} has {int(bad.sum())} missing or infinite values at rows "
                f"{rows_excerpt(np.flatnonzero(bad))}. Impute or exclude them explicitly (and report how many)."
            )
        is_count = (population is not None) if count is None else bool(count)
        if is_count and (yv < 0).any():
            neg = np.flatnonzero(yv < 0)
            raise DataError(
                f"count outcome {outcome!r} is negative at rows {rows_excerpt(neg)} (first {plain(yv[neg[0]])!r}). "
                f"Counts must be >= 0; check the data or declare count=False."
            )
        out["y"] = yv

        for role, col in (("weights", weights), ("population", population)):
            if col is None:
                continue
            v = pd.to_numeric(raw[col], errors="coerce").to_numpy(dtype="float64")
            badv = ~np.isfinite(v) | (v < 0) | ((v == 0) if role == "population" else False)
            if badv.any():
                what = "positive" if role == "population" else "non-negative"
                raise DataError(
                    f"{role} column {col!r} must be finite and {what}; bad at rows {rows_excerpt(np.flatnonzero(badv))} "
                    f"(first {plain(raw[col].iloc[np.flatnonzero(badv)[0]])!r})."
                )
            out["weight" if role == "weights" else "population"] = v
        if population is not None:
            out["rate"] = out["y"] / out["population"] * 1e5
        if group is not None:
            if raw[group].isna().any():
                raise DataError(
                    f"group column {group!r} is missing at rows {rows_excerpt(np.flatnonzero(raw[group].isna()))}."
                )
            out["group"] = raw[group].to_numpy()
        for c in covariates:
            col = raw[c]
            if not pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
                raise DataError(f"covariate {c!r} is not numeric (dtype {col.dtype}); encode it as numbers first.")
            v = col.to_numpy(dtype="float64")
            allowed_nan = np.isnan(v) if missing_covariates == "keep" else np.zeros(len(v), dtype=bool)
            if (~np.isfinite(v) & ~allowed_nan).any():
                raise DataError(
                    f"covariate {c!r} has missing or infinite values at rows {rows_excerpt(np.flatnonzero(~np.isfinite(v)))}. "
                    f"Impute or drop them, or pass missing_covariates='keep' if the estimator handles gaps."
                )
            out[c] = v

        keys = ["unit", "time"] + (["group"] if group is not None else [])
        unit_codes, unit_firsts, unit_sorted = factorize_units(out["unit"])
        if kind == "int":
            times, tcodes = integer_time_codes(out["time"].to_numpy(dtype="int64"))
        else:
            times = np.array(sorted(pd.unique(out["time"])), dtype=object)
            tcodes = out["time"].map({t: i for i, t in enumerate(times)}).to_numpy(dtype="int64")
        # rows already sorted by unit then strictly by time (most files) can repeat no (unit, time) key
        in_order = group is None and unit_sorted and bool((np.diff(tcodes)[np.diff(unit_codes) == 0] > 0).all())
        if in_order:
            repeated = False
        elif group is None:  # one (unit, time) code per row: repeats are counted without hashing rows
            repeated = bool((np.bincount(unit_codes * len(times) + tcodes) > 1).any())
        else:
            repeated = True  # checked below by pandas
        dup = out.duplicated(keys, keep=False) if repeated else None
        if dup is not None and dup.any():
            first = out.loc[dup].iloc[0]
            label = ", ".join(f"{roles[k] if k != 'group' else group}={plain(first[k])!r}" for k in keys)
            raise PanelError(
                f"{int(dup.sum())} rows repeat a ({', '.join(str(roles.get(k, k)) for k in keys)}) key; first at rows "
                f"{rows_excerpt(out.index[dup][:2])} ({label}). Keep one row per key, e.g. "
                f"df.groupby([{unit!r}, {time!r}], as_index=False)[{outcome!r}].sum()."
            )

        out["t"] = tcodes

        out["cohort"], out["g"], out["d"] = cohort_columns(raw, out, times, kind, cohort, treated, unit, allow_reversal,
                                                           unit_codes=unit_codes)

        if len(unit_firsts) < 2:
            raise PanelError(
                f"the panel has a single unit ({out['unit'].iloc[0]!r}); causal panel estimators need treated and "
                f"comparison units. Add comparison units, or use an interrupted time series (bayes.its)."
            )
        if not in_order:  # already sorted by unit then time (most files are): skip the sort
            out = out.sort_values(["unit", "t"] + (["group"] if group is not None else []), kind="mergesort")
            out = out.reset_index(drop=True)
            units = np.array(pd.unique(out["unit"]), dtype=object)
        elif out["unit"].dtype.kind in "iufbO":  # in order: the factorised units are in order of appearance
            units = np.array(unit_firsts, dtype=object)
        else:  # dates as units: pd.unique gives the datetime objects earlier versions gave
            units = np.array(pd.unique(out["unit"]), dtype=object)
        return cls(frame=out, roles=roles, times=times, units=units, time_kind=kind, covariates=covariates)

    # ------------------------------------------------------------------ views
    @property
    def n_units(self) -> int:
        return len(self.units)

    @property
    def n_periods(self) -> int:
        return len(self.times)

    @property
    def n_obs(self) -> int:
        return len(self.frame)

    @property
    def unit_index(self) -> np.ndarray:
        """Integer code (0..n_units-1) of each row's unit, in ``units`` order."""
        return pd.Categorical(self.frame["unit"], categories=self.units).codes.astype("int64")

    @property
    def time_index(self) -> np.ndarray:
        return self.frame["t"].to_numpy()

    @property
    def y(self) -> np.ndarray:
        return self.frame["y"].to_numpy()

    @property
    def g_index(self) -> np.ndarray:
        """First treated time position per row (inf = never treated)."""
        return self.frame["g"].to_numpy()

    @property
    def has_population(self) -> bool:
        return "population" in self.frame.columns

    @property
    def has_group(self) -> bool:
        return "group" in self.frame.columns

    @property
    def cohorts(self) -> np.ndarray:
        """Sorted labels of the treated cohorts (first treated periods)."""
        g = self.frame.drop_duplicates("unit")["g"]
        pos = np.sort(g[np.isfinite(g)].unique()).astype(int)
        return self.times[pos]

    @property
    def unit_cohort(self) -> pd.Series:
        """First treated time position per unit (inf = never), indexed by unit label."""
        first = self.frame.drop_duplicates("unit").set_index("unit")["g"]
        return first.reindex(self.units)

    @property
    def treated_units(self) -> np.ndarray:
        uc = self.unit_cohort
        return uc.index[np.isfinite(uc.to_numpy())].to_numpy()

    @property
    def never_treated_units(self) -> np.ndarray:
        uc = self.unit_cohort
        return uc.index[~np.isfinite(uc.to_numpy())].to_numpy()

    @property
    def is_balanced(self) -> bool:
        per_unit = self.frame.groupby("unit", sort=False).size()
        expected = self.n_periods * (self.frame["group"].nunique() if self.has_group else 1)
        return bool((per_unit == expected).all())

    def outcome(self, scale: str = "auto") -> np.ndarray:
        """Outcome values per row: ``"raw"``, ``"rate"`` (per 100,000), or ``"auto"`` (rate if population)."""
        if scale == "rate" or (scale == "auto" and self.has_population):
            if not self.has_population:
                raise DataError("scale='rate' needs a panel built with population=.")
            return self.frame["rate"].to_numpy()
        return self.y

    def time_label(self, pos: float) -> Any:
        """Label of a time position (inf -> None)."""
        return None if not np.isfinite(pos) else self.times[int(pos)]

    def time_position(self, label: Any) -> int:
        """Position of a time label; raises DesignError if it is not in the panel."""
        if self.time_kind == "period" and not isinstance(label, pd.Period):
            label = pd.Period(label, freq=self.times[0].freq)
        hits = np.flatnonzero(self.times == label)
        if len(hits) == 0:
            raise DesignError(
                f"period {label!r} is not in the panel, which runs from {self.times[0]} to {self.times[-1]}."
            )
        return int(hits[0])

    def to_wide(self, value: str = "y") -> pd.DataFrame:
        """Units in rows, periods in columns (``value``: ``"y"``, ``"rate"``, ``"d"`` or a covariate)."""
        if self.has_group:
            raise PanelError("to_wide() needs one row per unit and period; this panel has a group dimension.")
        wide = self.frame.pivot(index="unit", columns="t", values=value)
        wide = wide.reindex(index=self.units, columns=range(self.n_periods))
        wide.columns = pd.Index(self.times, name="time")
        return wide

    # ------------------------------------------------------------------ derived panels
    def subset(self, units: Sequence[Any] | None = None, reason: str = "subset") -> Panel:
        """A new panel restricted to ``units``; the excluded count and reason are recorded."""
        frame = self.frame
        if units is not None:
            mask = frame["unit"].isin(list(units))
            n_out = int((~mask).sum())
            frame = frame.loc[mask].reset_index(drop=True)
        else:
            n_out = 0
        kept_units = np.array(pd.unique(frame["unit"]), dtype=object)
        excluded = self.excluded + (((n_out, reason),) if n_out else ())
        return Panel(
            frame=frame,
            roles=self.roles,
            times=self.times,
            units=kept_units,
            time_kind=self.time_kind,
            covariates=self.covariates,
            excluded=excluded,
        )

    # ------------------------------------------------------------------ design checks
    def require_balanced(self, estimator: str) -> None:
        if not self.is_balanced:
            per_unit = self.frame.groupby("unit", sort=False).size()
            short = per_unit[per_unit != per_unit.max()].index[:5].tolist()
            raise DesignError(
                f"{estimator} needs a balanced panel, but {int((per_unit != per_unit.max()).sum())} units lack "
                f"some periods (e.g. {short}). Balance it (keep units observed in every period) or use an "
                f"estimator that allows unbalanced panels."
            )

    def require_controls(self, control: str = "never", anticipation: int = 0) -> None:
        """Raise DesignError unless there are never-treated (or, for 'notyet', not-yet-treated) units."""
        uc = self.unit_cohort.to_numpy()
        if np.isfinite(uc).all() and control == "never":
            raise DesignError(
                "there are no never-treated units to compare with. Use control='notyet' (not-yet-treated "
                "units as controls) or add comparison units."
            )
        if np.isfinite(uc).all():
            if len(np.unique(uc)) < 2:
                raise DesignError(
                    "every unit is treated at the same time: there are no never-treated and no not-yet-treated "
                    "units. Add comparison units."
                )
        if not np.isfinite(uc).any():
            raise DesignError("no unit is ever treated; check the cohort/treated column.")

    def require_pre_periods(self, n: int = 2, anticipation: int = 0) -> None:
        """Raise DesignError if a treated unit has no pre-period, or fewer than ``n`` overall."""
        uc = self.unit_cohort
        g = uc.to_numpy()
        first_obs = self.frame.groupby("unit", sort=False)["t"].min().reindex(self.units).to_numpy()
        no_pre = np.isfinite(g) & (g - anticipation <= first_obs)
        if no_pre.any():
            bad = uc.index[no_pre][:5].tolist()
            raise DesignError(
                f"{int(no_pre.sum())} treated units have no pre-treatment period (e.g. {bad}, treated from their "
                f"first observed period{' allowing for anticipation' if anticipation else ''}). Drop them "
                f"explicitly with panel.subset(...) or extend the data back in time."
            )
        gmin = np.nanmin(np.where(np.isfinite(g), g, np.nan)) if np.isfinite(g).any() else math.inf
        if np.isfinite(gmin) and gmin - anticipation < n:
            raise DesignError(
                f"the earliest cohort ({self.times[int(gmin)]}) has {int(gmin - anticipation)} pre-period(s); "
                f"at least {n} are needed. Extend the data back in time or drop that cohort explicitly."
            )

    # ------------------------------------------------------------------ display
    def describe(self) -> dict[str, Any]:
        cohorts = self.cohorts
        return {
            "rows": self.n_obs,
            "units": self.n_units,
            "periods": self.n_periods,
            "first": str(self.times[0]),
            "last": str(self.times[-1]),
            "treated_units": int(len(self.treated_units)),
            "never_treated_units": int(len(self.never_treated_units)),
            "cohorts": [str(c) for c in cohorts],
            "balanced": self.is_balanced,
            "excluded": [{"rows": n, "reason": r} for n, r in self.excluded],
        }

    def __repr__(self) -> str:
        d = self.describe()
        coh = ", ".join(d["cohorts"][:6]) + (" ..." if len(d["cohorts"]) > 6 else "")
        extra = []
        if self.has_population:
            extra.append("population")
        if self.has_group:
            extra.append(f"group={self.roles['group']}")
        if self.covariates:
            extra.append("covariates=" + ",".join(self.covariates))
        lines = [
            f"Panel: {d['rows']} rows, {d['units']} units x {d['periods']} periods ({d['first']} .. {d['last']}), "
            f"{'balanced' if d['balanced'] else 'unbalanced'}",
            f"  outcome={self.roles['outcome']!r}  unit={self.roles['unit']!r}  time={self.roles['time']!r}"
            + (f"  [{'; '.join(extra)}]" if extra else ""),
            f"  treated units: {d['treated_units']} in {len(d['cohorts'])} cohorts ({coh}); "
            f"never treated: {d['never_treated_units']}",
        ]
        for n, r in self.excluded:
            lines.append(f"  excluded: {n} rows ({r})")
        return "\n".join(lines)
