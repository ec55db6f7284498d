"""Data layer of the Oregon Measure 110 study: overdose-death rates, donor rules, fentanyl proxy.

Inputs (bundled, read through :func:`decrimkit.datasets.load_dataset`):

- ``cdc_vsrr_overdose`` / ``vsrr_overdose_deaths_12mo_ending_full.csv``: CDC/NCHS VSRR provisional
  drug-overdose deaths (all intents, by place of occurrence), 12-month-ending sums, windows ending
  2015-01 .. 2025-04; PA, RI and SC are absent from the extract; no drug-specific series.
- ``state_population`` / ``state_population.csv``: Census July-1 resident population, 2010-2019 from
  Vintage 2019 and 2020-2024 from Vintage 2024 (level break at the seam).
- ``policy_registry``: statewide and county policies, used to set the donor-pool rules.

Why monthly counts cannot be recovered
--------------------------------------
A 12-month-ending sum is ``S_t = Y_t + Y_{t-1} + ... + Y_{t-11}``. Differencing gives
``S_t - S_{t-1} = Y_t - Y_{t-12}``, so every monthly count is determined by the one twelve months
earlier: the series is pinned down only up to its first twelve values, of which the first window
fixes the sum alone. Any 12-periodic pattern that sums to zero over a year (an 11-dimensional
family; seasonality, in other words) can be added to the monthly counts without changing a single
rolling sum (:func:`periodic_null_pattern` builds one). Without the first year's monthly counts,
which this file does not hold, monthly counts are not identified. What *is* exact is any
non-overlapping 12-month block: the December windows are calendar-year counts, and the January
windows are February-to-January counts.

Analysis frequency
------------------
The main panel uses the non-overlapping **February-January windows** (the rows ending in January),
labelled by the year in which they start: "2021" is February 2021 - January 2022. Measure 110 took
effect on 2021-02-01, so this year boundary coincides with the policy date: windows 2014-2020 are
entirely before it, 2021-2023 are entirely under it (and end before HB 4002 was even signed), and
2024 (February 2024 - January 2025) mixes seven decriminalized months with five recriminalized
ones. Calendar years (December windows) are a robustness panel; they put one pre-policy month
(January) into 2021.

Population
----------
July-1 estimates are placed at mid-July and linearly interpolated to months; months after July
2024 carry the July 2024 value forward (no 2025 estimate is bundled). A window's population is the
mean of its twelve monthly values (person-years at risk), and its rate is deaths per 100,000 of that
population. Interpolation spreads the Vintage-2019/Vintage-2024 level break (Oregon +0.6 %) evenly
over July 2019 - July 2020 instead of leaving a jump; all affected windows (2019, 2020) lie in the
pre-period, where every estimator's pre-fit sees them. The "constant denominator" robustness row
divides by one population per state (the 2020 value) and so has no seam at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from decrimkit.errors import DataError, DesignError, SpecificationError
from decrimkit.panel import Panel

TREATED = "OR"
POLICY_START = pd.Period("2021-02", "M")  # Measure 110 in force
POLICY_END = pd.Period("2024-09", "M")  # HB 4002 recriminalization in force
START_YEAR = 2021  # first February-January window under Measure 110
POST_YEARS = (2021, 2022, 2023)  # windows entirely under Measure 110
REVERSAL_YEAR = 2024  # Feb 2024 - Jan 2025: 7 months decriminalized, 5 recriminalized
MISSING_STATES = ("PA", "RI", "SC")  # absent from the bundled extract
OVERDOSE_FILE = "vsrr_overdose_deaths_12mo_ending_full.csv"
INDICATOR = "Number of Drug Overdose Deaths"
SURGE_THRESHOLD = 0.25  # year-over-year rise in the 12-month rate that dates a surge onset
SURGE_FIRST = pd.Period("2016-01", "M")  # first window with a year-earlier comparison

Frequency = Literal["feb_jan", "calendar"]
Pool = Literal["main", "with_wa", "strict"]
Count = Literal["predicted", "reported"]

Loader = Callable[..., pd.DataFrame]


def _default_loader(name: str, **kwargs: Any) -> pd.DataFrame:
    from decrimkit.datasets import load_dataset

    return load_dataset(name, **kwargs)


# ----------------------------------------------------------------------------- raw inputs
@dataclass(frozen=True)
class Inputs:
    """The three bundled tables, as loaded (never edited)."""

    overdose: pd.DataFrame
    population: pd.DataFrame
    registry: pd.DataFrame


def load_inputs(loader: Loader | None = None) -> Inputs:
    """Load the overdose, population and policy-registry tables through ``loader``.

    ``loader(name, file=...)`` defaults to :func:`decrimkit.datasets.load_dataset`.
    """
    load = loader or _default_loader
    return Inputs(
        overdose=load("cdc_vsrr_overdose", file=OVERDOSE_FILE),
        population=load("state_population"),
        registry=load("policy_registry"),
    )


def monthly_deaths(overdose: pd.DataFrame, *, count: Count = "predicted") -> pd.DataFrame:
    """12-month-ending death counts per state and window end (``month``, a monthly Period).

    New York is rebuilt as ``NY`` (state excluding New York City) + ``YC`` (New York City); the
    national ``US`` row is dropped. ``count`` picks NCHS's delay-adjusted ``predicted_value``
    (default, used throughout the study) or the reported ``data_value``.
    """
    need = {"state", "year", "month", "indicator", "data_value", "predicted_value"}
    if missing := need - set(overdose.columns):
        raise DataError(f"overdose table lacks columns {sorted(missing)}; load {OVERDOSE_FILE!r}.")
    col = {"predicted": "predicted_value", "reported": "data_value"}.get(count)
    if col is None:
        raise SpecificationError(f"count must be 'predicted' or 'reported', got {count!r}.")
    od = overdose.loc[overdose["indicator"] == INDICATOR, ["state", "year", "month", col]].copy()
    od["state"] = od["state"].astype(str).replace({"YC": "NY"})
    od = od.loc[od["state"] != "US"]
    od["month"] = pd.PeriodIndex.from_fields(year=od["year"], month=od["month"], freq="M")
    out = od.groupby(["state", "month"], as_index=False)[col].sum(min_count=1)
    out = out.rename(columns={col: "deaths"})
    if out["deaths"].isna().any() or (out["deaths"] < 0).any():
        bad = out.loc[out["deaths"].isna() | (out["deaths"] < 0)].iloc[0]
        raise DataError(f"overdose count {col} missing or negative for {bad['state']} {bad['month']}.")
    return out.sort_values(["state", "month"]).reset_index(drop=True)


def monthly_population(population: pd.DataFrame, months: pd.PeriodIndex) -> pd.DataFrame:
    """Population per state and month: July-1 values linearly interpolated, flat after the last July.

    Each July estimate sits at month position July; months before the first or after the last
    estimate take the nearest estimate (here only August 2024 - April 2025 are extrapolated).
    """
    pop = population.loc[:, ["state", "year", "population"]].copy()
    ords = np.array([p.ordinal for p in months])
    rows = []
    for state, g in pop.groupby("state", sort=True):
        g = g.sort_values("year")
        x = np.array([pd.Period(f"{y}-07", "M").ordinal for y in g["year"]])
        v = np.interp(ords, x, g["population"].to_numpy(dtype="float64"))
        rows.append(pd.DataFrame({"state": state, "month": months, "population": v}))
    return pd.concat(rows, ignore_index=True)


def window_population(monthly_pop: pd.DataFrame) -> pd.DataFrame:
    """Mean population over each 12-month window ending in ``month`` (person-years at risk)."""
    out = monthly_pop.sort_values(["state", "month"]).copy()
    out["population"] = out.groupby("state")["population"].transform(lambda s: s.rolling(12).mean())
    return out.dropna(subset=["population"]).reset_index(drop=True)


def periodic_null_pattern(amplitude: float = 1.0) -> np.ndarray:
    """A 12-periodic monthly pattern summing to zero over a year: invisible in 12-month sums.

    Adding ``np.resize(periodic_null_pattern(), n)`` to any monthly series leaves every
    12-month-ending sum unchanged, which is why monthly counts cannot be recovered from them.
    """
    p = amplitude * np.cos(2 * np.pi * np.arange(12) / 12)
    return p - p.mean()


def rolling_sums(monthly: np.ndarray) -> np.ndarray:
    """12-month-ending sums of a monthly series (defined from the 12th value on)."""
    c = np.concatenate([[0.0], np.cumsum(np.asarray(monthly, dtype="float64"))])
    return c[12:] - c[:-12]


# ----------------------------------------------------------------------------- fentanyl proxy
def surge_onset(rates: pd.DataFrame, *, threshold: float = SURGE_THRESHOLD) -> pd.Series:
    """First window end (from 2016-01) at which a state's 12-month rate is ``threshold`` above a year earlier.

    This is the study's fentanyl proxy (see the module notes of ``decrimkit.studies.oregon``):
    the timing of each state's overdose-surge onset, read off the death series itself. Returns one
    monthly Period per state (NaT if the rise never reaches the threshold by the end of the data).
    """
    wide = rates.pivot(index="month", columns="state", values="rate").sort_index()
    growth = wide / wide.shift(12) - 1.0
    growth = growth.loc[growth.index >= SURGE_FIRST]
    onset = {}
    for state in growth.columns:
        hit = growth.index[(growth[state] >= threshold).to_numpy()]
        onset[state] = hit[0] if len(hit) else pd.NaT
    return pd.Series(onset, name="surge_onset")


def surge_exposure(onset: pd.Series, window_end: pd.Period) -> pd.Series:
    """Share of the 12 months ending ``window_end`` that lie at or after each state's surge onset."""
    out = {}
    for state, on in onset.items():
        if pd.isna(on):
            out[state] = 0.0
            continue
        months_after = window_end.ordinal - on.ordinal + 1
        out[state] = float(np.clip(months_after, 0, 12)) / 12.0
    return pd.Series(out, name="surge")


# ----------------------------------------------------------------------------- donor rules
@dataclass(frozen=True)
class DonorRules:
    """Which states may serve as donors, and why the others may not."""

    pool: Pool
    donors: tuple[str, ...]
    excluded: dict[str, str] = field(default_factory=dict)


def _registry_window(row: pd.Series) -> tuple[pd.Period | None, pd.Period | None]:
    def period(v: Any) -> pd.Period | None:
        if v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() in ("", "nan", "<NA>"):
            return None
        return pd.Period(str(v)[:7], "M")

    start = period(row.get("effective")) or period(row.get("announced"))
    return start, period(row.get("ended"))


def donor_rules(states: list[str], registry: pd.DataFrame, pool: Pool = "main") -> DonorRules:
    """Apply the donor-pool rule ``pool`` to the candidate ``states`` (Oregon already removed).

    - ``"main"``: drop every state with a *statewide de jure* decriminalization of possession of
      all drugs in force during the post window (2021-02 .. 2024-01): Washington (State v. Blake,
      2021-02-25 to 2021-05-13, and a misdemeanour with mandatory treatment referral afterwards).
    - ``"with_wa"``: the main pool plus Washington, to show what including it does.
    - ``"strict"``: the main pool minus every state with any other non-cannabis registry policy
      (substance-specific de jure: CO psychedelics, VT buprenorphine; county non-prosecution or
      diversion: e.g. CA Los Angeles, MD Baltimore, MA Suffolk, TX counties) in force at any time
      in the post window, or with unknown dates.
    """
    if pool not in ("main", "with_wa", "strict"):
        raise SpecificationError(f"pool must be 'main', 'with_wa' or 'strict', got {pool!r}.")
    lo, hi = POLICY_START, pd.Period(f"{POST_YEARS[-1] + 1}-01", "M")
    excluded: dict[str, str] = {}
    for _, row in registry.iterrows():
        state = str(row["state"])
        if state == TREATED or state not in states:
            continue
        notes = str(row.get("notes", ""))
        if "[cannabis-only]" in notes or str(row.get("substances", "")).lower().startswith("marijuana"):
            continue
        start, end = _registry_window(row)
        overlaps = start is None or (start <= hi and (end is None or end >= lo))
        statewide = str(row.get("county_fips", "")).strip() in ("", "nan", "<NA>")
        all_drugs = "all controlled" in str(row.get("substances", "")).lower()
        if row["model"] == "de_jure" and statewide and all_drugs and overlaps:
            if pool != "with_wa":
                excluded[state] = f"statewide de jure decriminalization ({row['jurisdiction']}, from {start})"
        elif pool == "strict" and overlaps and state not in excluded:
            excluded[state] = f"{row['model']} in force in the post window ({row['jurisdiction']})"
    donors = tuple(s for s in sorted(states) if s not in excluded and s != TREATED)
    if len(donors) < 5:
        raise DesignError(f"donor pool {pool!r} keeps {len(donors)} states; at least 5 are needed.")
    return DonorRules(pool=pool, donors=donors, excluded=excluded)


# ----------------------------------------------------------------------------- the panel
@dataclass(frozen=True)
class StudyData:
    """Everything the methods need: the monthly and annual frames, the proxy and the donor rules."""

    monthly: pd.DataFrame  # state, month, deaths, population, rate (12-month-ending)
    annual: pd.DataFrame  # state, year, window_end, deaths, population, rate, surge, treated
    onset: pd.Series  # surge-onset Period per state (fentanyl proxy)
    rules: DonorRules
    frequency: Frequency
    count: Count
    excluded: tuple[tuple[int, str], ...]

    def panel(self, *, donors: tuple[str, ...] | None = None, years: tuple[int, int] | None = None,
              drop_years: tuple[int, ...] = (), start: int = START_YEAR, covariates: tuple[str, ...] = (),
              outcome: str = "rate", treated: str = TREATED, population: bool = False) -> Panel:
        """A balanced panel of ``treated`` (Oregon by default) and the donors, of ``outcome`` (rate per 100,000).

        A placebo panel names a donor as ``treated``; it is then removed from the donors and Oregon is left out.
        ``population=True`` declares each state's population (group sizes for Ferman-Pinto inference); the
        outcome stays the rate.
        """
        donors = self.rules.donors if donors is None else donors
        donors = tuple(d for d in donors if d != treated)
        df = self.annual.loc[self.annual["state"].isin((treated, *donors))]
        if years is not None:
            df = df.loc[df["year"].between(*years)]
        if drop_years:
            df = df.loc[~df["year"].isin(drop_years)]
        df = df.assign(cohort=np.where(df["state"] == treated, float(start), 0.0))
        return Panel.from_frame(df, unit="state", time="year", outcome=outcome, cohort="cohort",
                                covariates=covariates, count=False,
                                population="population" if population else None)


def build(inputs: Inputs, *, frequency: Frequency = "feb_jan", count: Count = "predicted",
          pool: Pool = "main", threshold: float = SURGE_THRESHOLD) -> StudyData:
    """Assemble the study data from the bundled tables (pure; the inputs are not modified)."""
    deaths = monthly_deaths(inputs.overdose, count=count)
    months = pd.period_range(deaths["month"].min() - 11, deaths["month"].max(), freq="M")
    pop = window_population(monthly_population(inputs.population, months))
    monthly = deaths.merge(pop, on=["state", "month"], how="left", validate="one_to_one")
    if monthly["population"].isna().any():
        miss = sorted(monthly.loc[monthly["population"].isna(), "state"].unique())
        raise DataError(f"no population for {miss}; the population table must cover every overdose state.")
    monthly["rate"] = monthly["deaths"] / monthly["population"] * 1e5

    onset = surge_onset(monthly, threshold=threshold)
    end_month = {"feb_jan": 1, "calendar": 12}.get(frequency)
    if end_month is None:
        raise SpecificationError(f"frequency must be 'feb_jan' or 'calendar', got {frequency!r}.")
    annual = monthly.loc[monthly["month"].dt.month == end_month].copy()
    annual["year"] = annual["month"].dt.year - (1 if frequency == "feb_jan" else 0)
    annual = annual.rename(columns={"month": "window_end"})
    # every state must have every window: drop incomplete states explicitly and record them
    n_years = annual["year"].nunique()
    per_state = annual.groupby("state")["year"].nunique()
    short = per_state.index[per_state < n_years].tolist()
    excluded = ((int(annual["state"].isin(short).sum()), f"incomplete windows: {short}"),) if short else ()
    annual = annual.loc[~annual["state"].isin(short)]
    annual["surge"] = [surge_exposure(onset.loc[[s]], w).iloc[0] for s, w in zip(annual["state"], annual["window_end"])]
    annual["constant_rate"] = annual["deaths"] / annual["state"].map(
        inputs.population.loc[inputs.population["year"] == 2020].set_index("state")["population"]) * 1e5
    annual = annual.sort_values(["state", "year"]).reset_index(drop=True)

    states = sorted(s for s in annual["state"].unique() if s != TREATED)
    if TREATED not in set(annual["state"]):
        raise DataError("Oregon (OR) is not in the overdose table; load the full VSRR extract.")
    rules = donor_rules(states, inputs.registry, pool)
    dropped = tuple((int((annual["state"] == s).sum()), f"donor rule {pool}: {s}, {why}")
                    for s, why in rules.excluded.items())
    return StudyData(monthly=monthly, annual=annual, onset=onset, rules=rules, frequency=frequency,
                     count=count, excluded=excluded + dropped)


def oregon_population(data: StudyData, years: tuple[int, ...] = POST_YEARS) -> float:
    """Oregon's mean window population over ``years`` (converts a rate effect into deaths per year)."""
    a = data.annual
    return float(a.loc[(a["state"] == TREATED) & a["year"].isin(years), "population"].mean())
