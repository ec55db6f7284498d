"""From the policy registry to adoption cohorts and a state-year overdose panel.

The registry (``decrimkit.datasets.policy_registry()``) has one row per policy; several rows can
belong to one office or county, most rows are county policies, and the outcome bundled for every
state is a state-level series (CDC VSRR overdose deaths). This module states, in code, the rules
that turn the registry into analysis units:

R1. **Scope.** Rows tagged ``[cannabis-only]`` are out of scope (Rouhani et al.'s typology covers
    drugs other than cannabis) and are dropped unless ``include_cannabis=True``.
R2. **Confidence.** The main analysis uses ``medium`` and ``high`` rows; ``low`` rows (secondary
    reports only, unwritten practice, derived dates, loose fit) enter only the sensitivity analysis
    (``min_confidence="low"``), as PROVENANCE.md advises.
R3. **Undated rows** (no effective and no announced date) cannot be placed in time: listed, not used.
R4. **Several rows per jurisdiction.** Within a model, a jurisdiction's first qualifying policy (the
    earliest start) defines its cohort for that model; across models, its earliest qualifying policy
    of any model defines its "first policy" cohort.
R5. **Annual exposure.** Outcomes are calendar years. A policy's cohort is the first calendar year in
    which it was in force for at least half the year (start on or before 1 July: that year; later:
    the next year).
R6. **Reversals.** Staggered estimators assume treatment is absorbing. Adoption is coded as
    intention-to-treat: a jurisdiction stays treated after its policy ended (the estimand is the
    effect of having adopted). A policy that ended before it reached six months of exposure in any
    calendar year (Washington's State v. Blake spell, 2021-02-25 to 2021-05-13) has no annual cohort
    under R5; its state is excluded from the main state panel and enters an ITT sensitivity row.
R7. **Geography.** Only statewide rows treat a state. A county or city policy changes the state's
    aggregate only partly and by an unknown share, so its state is neither a clean treated nor a
    clean comparison unit: it is dropped from the state panel. County policies are shown on the
    timeline and in the cohort table but cannot be evaluated with state-level outcomes.
R8. **Comparison states** are those with no qualifying registry row. The registry is selective
    (14 states): absence from it is not proof that a state had no policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from decrimkit.datasets import load_dataset, policy_registry
from decrimkit.errors import DataError, SpecificationError
from decrimkit.options import POLICY_MODELS

__all__ = [
    "MODEL_LABELS",
    "Rules",
    "qualifying_rows",
    "jurisdiction_cohorts",
    "annual_cohort",
    "state_overdose_rates",
    "state_panel_frame",
    "StatePanel",
    "never_registry_states",
]

Confidence = Literal["low", "medium", "high"]
FIRST_YEAR, LAST_YEAR = 2015, 2024  # calendar years with a December 12-month-ending window for every state
MODEL_LABELS = {
    "expanded_diversion": "Expanded diversion",
    "substance_specific_declination": "Substance-specific declination",
    "case_by_case_declination": "Case-by-case declination",
    "unconditional_declination": "Unconditional declination",
    "de_jure": "De jure reform",
}
_CONF_RANK = {"low": 0, "medium": 1, "high": 2}


@dataclass(frozen=True)
class Rules:
    """Which registry rows qualify (R1-R2) and how reversals are treated (R6).

    Attributes
    ----------
    include_cannabis : bool
        Keep ``[cannabis-only]`` rows (default False).
    min_confidence : {"low", "medium", "high"}
        Lowest confidence kept (default "medium").
    reversal_itt : bool
        Give a sub-six-month reversed statewide policy its start year as cohort (ITT) instead of
        dropping its state (default False).
    last_year : int
        Last calendar year of the state panel (default 2024).
    """

    include_cannabis: bool = False
    min_confidence: Confidence = "medium"
    reversal_itt: bool = False
    last_year: int = LAST_YEAR

    def __post_init__(self) -> None:
        if self.min_confidence not in _CONF_RANK:
            raise SpecificationError(f"min_confidence={self.min_confidence!r}; use 'low', 'medium' or 'high'.")
        if not FIRST_YEAR + 3 <= self.last_year <= LAST_YEAR:
            raise SpecificationError(f"last_year={self.last_year!r} must lie in {FIRST_YEAR + 3}..{LAST_YEAR}.")

    def describe(self) -> str:
        return (
            f"{'with' if self.include_cannabis else 'without'} cannabis-only rows, confidence >= {self.min_confidence}, "
            f"{'ITT for sub-year reversals' if self.reversal_itt else 'sub-year reversals dropped'}, "
            f"{FIRST_YEAR}-{self.last_year}"
        )


def annual_cohort(start: pd.Series) -> pd.Series:
    """R5: first calendar year with at least six months in force (start on/before 1 July -> that year)."""
    year = start.dt.year
    late = start > pd.to_datetime(year.astype("Int64").astype("string") + "-07-01", errors="coerce")
    return (year + late.astype("Int64")).astype("Int64")


def _unit(reg: pd.DataFrame) -> pd.Series:
    """Jurisdiction key: the county FIPS, or ``"<state> (statewide)"`` for statewide rows."""
    return reg["county_fips"].fillna(reg["state"] + " (statewide)").astype("string")


def _exposed_half_year(start: pd.Timestamp, ended: pd.Timestamp) -> bool:
    """Whether a policy was in force at least six months in some calendar year (before its end)."""
    if pd.isna(ended):
        return True
    if pd.isna(start):
        return False
    year = start.year
    while year <= ended.year:
        lo = max(start, pd.Timestamp(year, 1, 1))
        hi = min(ended, pd.Timestamp(year + 1, 1, 1))
        if (hi - lo).days >= 182:
            return True
        year += 1
    return False


def qualifying_rows(rules: Rules = Rules(), registry: pd.DataFrame | None = None) -> pd.DataFrame:
    """The registry with a ``status`` column saying whether and why each row is used (R1-R3, R5-R6).

    Returns
    -------
    DataFrame
        Every registry row, in registry order, with ``unit`` (jurisdiction key), ``cohort`` (R5,
        nullable), ``status`` (``"used"`` or the reason it is not) and ``qualifies`` (bool).
    """
    reg = policy_registry() if registry is None else registry
    out = reg.copy()
    out["unit"] = _unit(reg)
    out["cohort"] = annual_cohort(reg["start"])
    rank = reg["confidence"].astype("string").map(_CONF_RANK).astype("int64")
    status = pd.Series("used", index=reg.index, dtype="string")
    exposed = np.array([_exposed_half_year(s, e) for s, e in zip(reg["start"], reg["ended"])])
    status = status.where(exposed | reg["start"].isna(), "in force under six months in every year (R6)")
    status = status.where(reg["start"].notna(), "undated (R3)")
    status = status.where(rank >= _CONF_RANK[rules.min_confidence], f"confidence below {rules.min_confidence} (R2)")
    if not rules.include_cannabis:
        status = status.where(~reg["cannabis_only"].to_numpy(dtype=bool), "cannabis-only (R1)")
    out["status"] = status
    out["qualifies"] = (status == "used").to_numpy(dtype=bool)
    if rules.reversal_itt:  # sub-year reversals keep their start year as an ITT cohort
        itt = (status == "in force under six months in every year (R6)").to_numpy(dtype=bool)
        out.loc[itt, "cohort"] = reg.loc[itt, "start"].dt.year.astype("Int64")
        out.loc[itt, "status"] = "used (ITT despite reversal, R6)"
        out["qualifies"] = out["qualifies"].to_numpy(dtype=bool) | itt
    return out


def jurisdiction_cohorts(rows: pd.DataFrame) -> pd.DataFrame:
    """R4: one row per (model, jurisdiction) among qualifying rows: its first policy and cohort year.

    Returns
    -------
    DataFrame
        ``model, unit, jurisdiction, state, statewide, start, cohort, ended, confidence, n_rows``
        sorted by model order and start date. ``n_rows`` counts the qualifying registry rows of that
        model for that jurisdiction (several rows -> the first defines the cohort).
    """
    q = rows[rows["qualifies"]].sort_values(["start", "jurisdiction"], kind="stable")
    groups = q.groupby(["model", "unit"], observed=True, sort=False)
    first = groups.head(1).set_index(["model", "unit"])
    first["n_rows"] = groups.size()
    first = first.reset_index()
    first["model"] = pd.Categorical(first["model"].astype("string"), categories=list(POLICY_MODELS))
    cols = ["model", "unit", "jurisdiction", "state", "statewide", "start", "cohort", "ended", "confidence", "n_rows"]
    return first.sort_values(["model", "start"], kind="stable")[cols].reset_index(drop=True)


def state_overdose_rates() -> pd.DataFrame:
    """Calendar-year overdose deaths and rates per 100,000 by state (47 states + DC), 2015-2024.

    Deaths are the December 12-month-ending windows of CDC VSRR ``data_value`` ("Number of Drug
    Overdose Deaths"), which are exact calendar-year counts; New York is the VSRR ``NY`` (state
    without New York City) plus ``YC`` (New York City). The national row ``US`` is dropped. Rates use
    Census July-1 populations (Vintage 2019 for 2015-2019, Vintage 2024 for 2020-2024; a level break
    common to all states at the seam). ``log_rate`` is the natural log of the rate.

    Raises
    ------
    DataError
        If a state-year lacks deaths or population, or a count is not positive.
    """
    od = load_dataset("cdc_vsrr_overdose")
    od = od[(od["indicator"] == "Number of Drug Overdose Deaths") & (od["month"] == 12)]
    od = od[od["year"].between(FIRST_YEAR, LAST_YEAR) & (od["state"] != "US")]
    od = od.assign(state=od["state"].astype("string").replace({"YC": "NY"}))
    deaths = od.groupby(["state", "year"], as_index=False)["data_value"].sum().rename(columns={"data_value": "deaths"})
    pop = load_dataset("state_population")[["state", "year", "population"]]
    pop = pop.assign(state=pop["state"].astype("string"))
    df = deaths.merge(pop, on=["state", "year"], how="left", validate="one_to_one")
    bad = df["population"].isna() | (df["deaths"] <= 0)
    if bad.any():
        first = df[bad].iloc[0]
        raise DataError(
            f"{int(bad.sum())} state-years lack a population or have no deaths (first: {first['state']} "
            f"{int(first['year'])}); check the bundled cdc_vsrr_overdose and state_population files."
        )
    counts = df.groupby("state")["year"].size()
    if (counts != LAST_YEAR - FIRST_YEAR + 1).any():
        raise DataError(f"unbalanced overdose panel: states with missing years {sorted(counts[counts != 10].index)}.")
    df["rate"] = df["deaths"] / df["population"] * 1e5
    df["log_rate"] = np.log(df["rate"])
    return df.sort_values(["state", "year"]).reset_index(drop=True)


@dataclass(frozen=True)
class StatePanel:
    """The state-year panel the registry implies for statewide (de jure) policies, with its bookkeeping.

    Attributes
    ----------
    frame : DataFrame
        ``state, year, deaths, population, rate, log_rate, cohort`` (0 = comparison state).
    treated : DataFrame
        Treated states with their cohort and the registry row that set it.
    excluded : DataFrame
        ``state, reason``: states dropped (R6, R7) with the reason.
    rules : Rules
    """

    frame: pd.DataFrame
    treated: pd.DataFrame
    excluded: pd.DataFrame
    rules: Rules

    @property
    def controls(self) -> list[str]:
        return sorted(self.frame.loc[self.frame["cohort"] == 0, "state"].unique())


def state_panel_frame(rules: Rules = Rules(), rates: pd.DataFrame | None = None) -> StatePanel:
    """Build the state-year panel of statewide policies (R1-R8) on the overdose-rate series."""
    rates = state_overdose_rates() if rates is None else rates
    rates = rates[rates["year"] <= rules.last_year]
    rows = qualifying_rows(rules)
    cohorts = jurisdiction_cohorts(rows)
    states = set(rates["state"].unique())
    first_statewide = cohorts[cohorts["statewide"]].sort_values("start", kind="stable").groupby("state").head(1)
    treated = first_statewide[first_statewide["cohort"] <= rules.last_year]
    excluded: list[dict[str, str]] = []
    for st in sorted(set(rows["state"]) & states):
        st_rows = rows[rows["state"] == st]
        if st in set(treated["state"]):
            continue
        if st_rows["statewide"].any() and (st_rows["status"] == "in force under six months in every year (R6)").any():
            excluded.append({"state": st, "reason": "statewide policy reversed within six months (R6)"})
        elif st_rows["qualifies"].any():
            excluded.append({"state": st, "reason": "county/city policies only: partially exposed (R7)"})
        elif (st_rows["statewide"] & ~st_rows["qualifies"]).any():
            excluded.append({"state": st, "reason": "statewide row not qualifying under these rules"})
    for st in sorted(set(rows["state"]) - states):
        excluded.append({"state": st, "reason": "not in the CDC VSRR extract"})
    drop = {e["state"] for e in excluded}
    cohort_of = dict(zip(treated["state"], treated["cohort"].astype(int)))
    frame = rates[~rates["state"].isin(drop)].copy()
    frame["cohort"] = frame["state"].map(cohort_of).fillna(0).astype("int64")
    tr = treated[["state", "jurisdiction", "model", "start", "cohort", "ended", "confidence"]].reset_index(drop=True)
    return StatePanel(frame.reset_index(drop=True), tr, pd.DataFrame(excluded, columns=["state", "reason"]), rules)


def never_registry_states(rates: pd.DataFrame) -> list[str]:
    """States with no registry row at all (any model, confidence or scope): the power analysis pool."""
    listed = set(policy_registry()["state"].astype("string"))
    return sorted(set(rates["state"]) - listed)
