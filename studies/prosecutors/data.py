"""County overdose panel, registry rules, donor-pool rules and the New York arrest panel.

Outcome: drug overdose deaths per 100,000 residents per calendar year, 2010-2022, from the bundled
CDC WONDER county export (``cdc_wonder_county_overdose``), rate = deaths / WONDER population x 1e5.
CDC suppresses counts of 1-9; they load as ``<NA>`` with ``deaths_status == "suppressed"`` and are
never used as numbers here: a county enters a donor pool only when it is reported in every year.

Registry rules (those of the policy-models study, ``studies/policy_models/data.py``, applied to
counties): R1 cannabis-only rows out of scope; R3 undated rows not used; R5 a policy's cohort is the
first calendar year with at least six months in force; R6 a policy in force under six months in
every year is not used; R4 a county is evaluated once, under its first qualifying policy (earliest
start; ties go to the earlier registry row) and that model; later policies are noted. R2 differs:
the policy-models main analysis keeps confidence >= medium; the county analysis keeps every
confidence level (low-confidence rows flagged) and reports the pooled effects with medium+ rows
only as a sensitivity check. R7 (geography) is what county outcomes solve. A county needs at least
two pre-years (2010 onwards) and one post-year (to 2022).

Donor-pool rules (applied in order, the number each removes reported):
D1 no registry row of any model, confidence or scope (cannabis-only and municipal rows included);
D2 not in a state with a statewide registry policy (Oregon, Washington, Vermont, Colorado);
D3 fully reported: a reported count (0 included) and a positive population in all 13 years, so no
   suppressed cell is imputed (this selects on the outcome: small, low-mortality counties fail it);
D4 similar size: a 2010 population of at least 250,000.
The main pool (D1-D4) is the same for every treated county and every method (SCM, augmented SCM,
SDID, the staggered DiD and the design-based power), so the placebo distributions, the pooled
county effects and the MDEs all refer to one set of comparison counties. Why a size floor rather than
every D1-D3 county: (i) the treated counties are large (15 of 16 have 300,000 people or more;
Chittenden, 157,000, is the smallest), and a synthetic control should be built from similar units
(Abadie 2021, section 6: a large pool of dissimilar units invites interpolation bias and
overfitting, and SCM with 2-11 pre-years and hundreds of noisy small counties fits noise); (ii) a
small county's rate rests on counts near the suppression threshold (a county of 50,000 with 10 deaths
has a rate of 20 with a Poisson SD of 6), so small donors add noise and, through D3, selection on the
outcome; (iii) within the size band D3 removes only 5 of 224 counties (2%), against 2,407 of 2,978
without it, so the main analysis barely depends on the suppression rule by construction. Quick runs keep, for each treated county, the 40
main-pool counties nearest in log 2010 population.
Sensitivity (suppression rule): every D1-D3 county with no size rule (571), which adds the smaller
counties D3 admits only where their count never fell to 1-9; SDID and the pooling are rerun on it.
And a censored-likelihood negative-binomial DiD (``censored.py``) on every county of a 50,000+ band, in
which a suppressed count is known only to lie in 1-9.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from decrimkit.datasets import load_dataset, policy_registry
from decrimkit.errors import DataError
from decrimkit.panel import Panel
from decrimkit.studies.policy_models.data import Rules, qualifying_rows

FIRST, LAST = 2010, 2022
N_YEARS = LAST - FIRST + 1
LARGE_COUNTY = 250_000
MIN_PRE = 2
MODELS = ("expanded_diversion", "substance_specific_declination", "case_by_case_declination",
          "unconditional_declination")


def wonder() -> pd.DataFrame:
    """The WONDER county file with ``rate`` (NaN wherever the count is not reported)."""
    df = load_dataset("cdc_wonder_county_overdose")
    df = df[(df["year"] >= FIRST) & (df["year"] <= LAST)].copy()
    deaths = df["deaths"].astype("Float64")
    pop = df["population"].astype("Float64")
    ok = (df["deaths_status"] == "reported") & pop.gt(0).fillna(False)
    df["rate"] = (deaths / pop * 1e5).where(ok).astype("float64")
    return df


def fully_reported(df: pd.DataFrame) -> pd.Series:
    """Per FIPS: True when every year 2010-2022 has a reported count and a positive population (D3)."""
    ok = (df["deaths_status"] == "reported") & df["population"].astype("Float64").gt(0).fillna(False)
    g = ok.groupby(df["fips"])
    return (g.sum() == N_YEARS) & (g.size() == N_YEARS)


# ----------------------------------------------------------------------------- treated counties
def registry_status(include_low: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(every registry row with its status, one row per evaluated county).

    ``status`` is "used" or why not; a county's later policies get "used: later policy of an
    evaluated county (ITT)" and are not separate evaluations.
    """
    rows = qualifying_rows(Rules(min_confidence="low"))
    rows = rows.copy()
    rows["status"] = rows["status"].astype("object")
    rows.loc[rows["statewide"], "status"] = rows.loc[rows["statewide"], "status"].where(
        rows.loc[rows["statewide"], "status"] != "used", "statewide (de jure): not a county policy; its state's counties leave the donor pool (D2)")
    county = rows[~rows["statewide"] & (rows["status"] == "used")]
    if not include_low:
        low = county["confidence"].astype("string") == "low"
        rows.loc[low[low].index, "status"] = "confidence low (R2, sensitivity excludes)"
        county = county[~low]
    first = county.sort_values(["start"], kind="stable").groupby("county_fips", sort=False).head(1)
    later = county.index.difference(first.index)
    rows.loc[later, "status"] = "later policy of a county evaluated under its first policy (R4)"
    ev = []
    for i, r in first.iterrows():
        cohort = int(r["cohort"])
        if cohort - FIRST < MIN_PRE:
            rows.loc[i, "status"] = f"cohort {cohort}: fewer than {MIN_PRE} pre-years in {FIRST}-{LAST}"
            continue
        if cohort > LAST:
            rows.loc[i, "status"] = f"cohort {cohort}: no post-year by {LAST}"
            continue
        others = county[(county["county_fips"] == r["county_fips"]) & (county.index != i)]
        ev.append({"fips": r["county_fips"], "county": r["jurisdiction"], "state": r["state"],
                   "model": str(r["model"]), "start": r["start"].date().isoformat(), "cohort": cohort,
                   "confidence": str(r["confidence"]), "n_pre": cohort - FIRST, "n_post": LAST - cohort + 1,
                   "later_policies": "; ".join(f"{m} {s.date()}" for m, s in zip(others["model"].astype(str),
                                                                               others["start"]))})
    return rows, pd.DataFrame(ev)


# ----------------------------------------------------------------------------- donors
@dataclass(frozen=True)
class Pools:
    """Donor eligibility: ``eligible`` FIPS after D1-D3, the counts each rule removed (D1-D4), ``large``
    the main pool (D1-D4: 2010 population >= 250,000), ``large_not_reported`` the D1-D2 counties of that
    size that D3 removes."""

    eligible: tuple[str, ...]
    removed: pd.DataFrame  # rule, removed, remaining
    large: tuple[str, ...]
    large_not_reported: tuple[str, ...]
    pop2010: pd.Series


def pools(df: pd.DataFrame) -> Pools:
    reg = policy_registry()
    registry_fips = set(reg["county_fips"].dropna())
    statewide = set(reg.loc[reg["statewide"], "state"].astype(str))
    counties = df.drop_duplicates("fips").set_index("fips")
    pop2010 = df[df["year"] == FIRST].set_index("fips")["population"].astype("Float64")
    full = fully_reported(df)
    steps, keep = [], set(counties.index)
    steps.append({"rule": "all county codes in the WONDER file", "removed": 0, "remaining": len(keep)})
    for rule, drop in [
        ("D1 any registry row (any model or confidence)", registry_fips),
        (f"D2 state with a statewide registry policy ({', '.join(sorted(statewide))})",
         set(counties.index[counties["state_abbr"].isin(statewide)])),
        ("D3 not fully reported 2010-2022 (a suppressed or missing count or population)", set(full.index[~full])),
    ]:
        gone = keep & drop
        keep -= gone
        steps.append({"rule": rule, "removed": len(gone), "remaining": len(keep)})
    d12 = set(counties.index) - registry_fips - set(counties.index[counties["state_abbr"].isin(statewide)])
    big = {f for f in d12 if pd.notna(pop2010.get(f)) and pop2010[f] >= LARGE_COUNTY}
    not_rep = sorted(f for f in big if not full.get(f, False))
    small = keep - big
    steps.append({"rule": f"D4 2010 population below {LARGE_COUNTY:,}", "removed": len(small),
                  "remaining": len(keep - small)})
    return Pools(tuple(sorted(keep)), pd.DataFrame(steps), tuple(sorted(big - set(not_rep))), tuple(not_rep),
                 pop2010)


def nearest_by_size(pools: Pools, fips: str, n: int) -> list[str]:
    """Quick runs: the ``n`` main-pool (D1-D4) counties nearest ``fips`` in log 2010 population (ties by FIPS)."""
    lp = np.log(pools.pop2010.reindex(list(pools.large)).astype(float))
    d = (lp - np.log(float(pools.pop2010[fips]))).abs()
    order = pd.DataFrame({"d": d.to_numpy(), "fips": d.index}).sort_values(["d", "fips"])
    return order["fips"].head(n).tolist()


def county_panel(df: pd.DataFrame, treated: pd.DataFrame, donors: list[str]) -> Panel:
    """Panel of the given treated counties (cohorts) and donors; outcome: deaths per 100,000."""
    units = list(treated["fips"]) + list(donors)
    sub = df[df["fips"].isin(units)][["fips", "year", "deaths", "deaths_status", "rate"]].copy()
    if (sub["deaths_status"] != "reported").any() or sub["rate"].isna().any():
        # never: treated counties and donors are fully reported (D3); a guard, not a filter
        bad = sorted(set(sub.loc[(sub["deaths_status"] != "reported") | sub["rate"].isna(), "fips"]))
        raise DataError(f"counties {bad[:5]} have a suppressed or missing count: they cannot enter an analysis "
                        f"panel (rule D3); no suppressed cell is imputed.")
    if sub["fips"].nunique() != len(units) or len(sub) != len(units) * N_YEARS:
        raise DataError(f"an analysis county lacks a year of {FIRST}-{LAST} (rule D3).")
    cohort = dict(zip(treated["fips"], treated["cohort"]))
    sub["cohort"] = sub["fips"].map(cohort).fillna(0).astype("int64")
    return Panel.from_frame(sub[["fips", "year", "rate", "cohort"]], unit="fips", time="year", outcome="rate",
                            cohort="cohort")


# ----------------------------------------------------------------------------- New York arrests
NY_TREATED = {"36047": ("Kings (Brooklyn)", "2014-07-08", 2015), "36061": ("New York (Manhattan)", "2018-08-01", 2019)}
NY_YEARS = (1990, 2019)


def ny_arrests() -> pd.DataFrame:
    """Drug misdemeanor arrests per 100,000 residents (SEER population), NY counties, 1990-2019."""
    a = load_dataset("ny_dcjs_county_arrests").dropna(subset=["fips"])
    pop = load_dataset("seer_county_population")
    a = a[(a["year"] >= NY_YEARS[0]) & (a["year"] <= NY_YEARS[1])]
    m = a.merge(pop[["fips", "year", "population"]], on=["fips", "year"], how="left", validate="one_to_one")
    if m["population"].isna().any():
        raise DataError("a New York county-year lacks a SEER population.")
    return m[["fips", "county", "year", "drug_misdemeanor", "drug_felony", "population"]].reset_index(drop=True)


def ny_panel(frame: pd.DataFrame, fips: str, outcome: str = "drug_misdemeanor") -> Panel:
    """One treated NY county against every other NY county except the other treated one."""
    other = [f for f in NY_TREATED if f != fips]
    sub = frame[~frame["fips"].isin(other)].copy()
    sub["cohort"] = np.where(sub["fips"] == fips, NY_TREATED[fips][2], 0)
    sub[outcome] = sub[outcome].astype("float64")
    sub["population"] = sub["population"].astype("float64")
    return Panel.from_frame(sub, unit="fips", time="year", outcome=outcome, population="population", cohort="cohort")
