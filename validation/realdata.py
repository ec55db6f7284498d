"""Real-data placebo designs (Bertrand, Duflo and Mullainathan 2004): fake laws on real overdose series.

A placebo replication takes a real panel of jurisdictions that adopted no decriminalization policy,
picks ``n_treated`` of them at random and gives each a random adoption date. The true effect is zero
by construction, so a 5% test should reject about 5% of the time and a 95% interval should cover zero
about 95% of the time, *with the real data's serial correlation, heteroskedasticity and common shocks*
(which the simulated cells of ``dgp.py`` do not have).

Sources (loaded once per worker process and reused by every replication)
-------------------------------------------------------------------------
``state_annual``
    Calendar-year drug overdose deaths per state, 2015-2024 (CDC VSRR, December 12-month-ending
    windows; the policy-models study's ``state_overdose_rates``), restricted to the 37 comparison
    states of the policy-models panel (no statewide policy: Oregon, Vermont and Colorado and the
    states the registry rules exclude are left out). Placebo adoption years 2018-2022 (at least three
    pre-years and two post-years), drawn per treated state (staggered when more than one).
``state_monthly``
    The same states by month, 2015-01 to 2024-12 (120 periods). CDC VSRR publishes *12-month-ending*
    counts by month, not counts of deaths in each month, and the single months cannot be recovered
    from the windows without the 11 months before January 2015; the monthly outcome is therefore the
    12-month-ending count per 100,000 (log), a moving sum that is serially correlated by construction
    (the design in which BDM found the largest over-rejection). Population: the window's end year.
    Placebo adoption months 2017-01 to 2022-12.
``county_annual``
    CDC WONDER county overdose deaths 2010-2022 (``cdc_wonder_county_overdose``), counties fully
    reported in all 13 years and outside the prosecutors study's registry counties and statewide-policy
    states (its rules D1-D3: 571 counties); **no suppressed count is used or imputed**. One placebo county
    per replication, with adoption year 2014-2020, compared with the 100 eligible counties nearest it in
    log 2010 population (the prosecutors study's donor rule D4).

Outcomes: ``log_rate`` (natural log of deaths per 100,000; the policy-models scale) or ``rate``
(deaths per 100,000; Oregon's and the prosecutors study's scale). Every frame also carries ``deaths``
and ``population`` for the count models (Poisson, the Bayesian DiD).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import dgp  # type: ignore[import-not-found]

__all__ = ["Source", "source", "placebo", "SOURCES"]


@dataclass(frozen=True)
class Source:
    """A real untreated panel: (units, periods) arrays and the window placebo adoptions are drawn from."""

    name: str
    units: tuple[str, ...]
    times: np.ndarray          # integer period labels
    deaths: np.ndarray         # (units, periods)
    population: np.ndarray     # (units, periods)
    cohort_range: tuple[int, int]  # first and last admissible placebo adoption period (labels)
    size_key: np.ndarray | None = None  # log population used for size-matched comparison groups
    n_matched: int | None = None        # compare each placebo unit with its n nearest in size (None: all)

    @property
    def rate(self) -> np.ndarray:
        return self.deaths / self.population * 1e5


def _state_pool() -> tuple[pd.DataFrame, list[str]]:
    from decrimkit.studies.policy_models.data import state_overdose_rates, state_panel_frame

    rates = state_overdose_rates()
    return rates, state_panel_frame(rates=rates).controls


def _wide(df: pd.DataFrame, index: str, columns: str, values: str, units: list[str], times: list[int]) -> np.ndarray:
    return df.pivot(index=index, columns=columns, values=values).loc[units, times].to_numpy("float64")


@functools.cache
def source(name: str) -> Source:
    """The named real panel (cached: built once per worker process)."""
    if name == "state_annual":
        rates, pool = _state_pool()
        years = sorted(int(y) for y in rates["year"].unique())
        return Source(name, tuple(pool), np.asarray(years), _wide(rates, "state", "year", "deaths", pool, years),
                      _wide(rates, "state", "year", "population", pool, years), (2018, 2022))
    if name == "state_monthly":
        from decrimkit.datasets import load_dataset

        _, pool = _state_pool()
        od = load_dataset("cdc_vsrr_overdose")
        od = od[(od["indicator"] == "Number of Drug Overdose Deaths") & od["year"].between(2015, 2024)]
        od = od.assign(state=od["state"].astype("string").replace({"YC": "NY"}))
        od = od[od["state"].isin(pool)]
        deaths = od.groupby(["state", "year", "month"], as_index=False)["data_value"].sum()
        deaths["t"] = (deaths["year"] - 2015) * 12 + deaths["month"]  # 1 = 2015-01 ... 120 = 2024-12
        pop = load_dataset("state_population")[["state", "year", "population"]]
        pop = pop.assign(state=pop["state"].astype("string"))
        deaths = deaths.merge(pop, on=["state", "year"], how="left", validate="many_to_one")
        times = list(range(1, 121))
        d = _wide(deaths, "state", "t", "data_value", pool, times)
        p = _wide(deaths, "state", "t", "population", pool, times)
        if not (np.isfinite(d).all() and np.isfinite(p).all() and (d > 0).all()):
            raise ValueError("state_monthly: a state-month of the comparison pool lacks deaths or population")
        return Source(name, tuple(pool), np.asarray(times), d, p, (25, 96))  # adoption 2017-01 ... 2022-12
    if name == "county_annual":
        from decrimkit.studies.prosecutors import data as county

        df = county.wonder()
        pools = county.pools(df)  # D1-D3: fully reported every year, no registry county, no statewide-policy state
        units = list(pools.eligible)
        sub = df[df["fips"].isin(units)]
        years = list(range(county.FIRST, county.LAST + 1))
        d = _wide(sub.assign(deaths=sub["deaths"].astype("float64")), "fips", "year", "deaths", units, years)
        p = _wide(sub.assign(population=sub["population"].astype("float64")), "fips", "year", "population", units, years)
        if not (np.isfinite(d).all() and (p > 0).all()):  # every count reported: none suppressed or imputed
            raise ValueError("county_annual: an eligible county has a suppressed or missing count")
        size = np.log(pools.pop2010.reindex(units).astype(float).to_numpy())
        return Source(name, tuple(units), np.asarray(years), d, p, (2014, 2020), size_key=size, n_matched=100)
    raise KeyError(f"unknown real-data source {name!r}; choose from {SOURCES}")


SOURCES = ("state_annual", "state_monthly", "county_annual")


def n_designs(source_name: str) -> int:
    """Distinct one-unit placebo laws of a source: units x admissible adoption periods."""
    src = source(source_name)
    return len(src.units) * (src.cohort_range[1] - src.cohort_range[0] + 1)


def placebo(rng: np.random.Generator, *, source_name: str, n_treated: int = 1, outcome: str = "log_rate",
            exhaustive: bool = False, rep: int | None = None) -> dgp.Draw:
    """One placebo-law replication on a real untreated panel (true effect zero on every scale).

    ``n_treated`` units are drawn without replacement, each with its own adoption period drawn uniformly
    from the source's window; the frame has ``unit, time, y, cohort, deaths, population`` (cohort 0 =
    never treated) with ``y`` the ``outcome`` (``"log_rate"`` or ``"rate"``). With a size-matched source
    (counties) only the placebo unit and its nearest comparison units in log population enter the panel.

    ``exhaustive`` (one treated unit): replication ``rep`` is the ``rep``-th of the :func:`n_designs` distinct
    (unit, adoption period) laws in a fixed order, so that ``n_designs`` replications enumerate the placebo
    distribution exactly instead of sampling it with repeats (37 states x 5 years = 185 laws).
    """
    src = source(source_name)
    n = len(src.units)
    lo, hi = src.cohort_range
    if exhaustive:
        if n_treated != 1 or rep is None or not 0 <= rep < n_designs(source_name):
            raise ValueError(f"exhaustive placebo designs: one treated unit and 0 <= rep < {n_designs(source_name)}")
        unit, k = divmod(rep, hi - lo + 1)
        treated, cohorts = np.array([unit]), np.array([lo + k])
    else:
        treated = rng.choice(n, size=n_treated, replace=False)
        cohorts = rng.integers(lo, hi + 1, size=n_treated)
    keep = np.arange(n)
    if src.n_matched is not None:
        dist = np.abs(src.size_key - src.size_key[treated].mean())
        dist[treated] = -1.0
        keep = np.sort(np.argsort(dist, kind="stable")[: n_treated + src.n_matched])
    cohort = np.zeros(n, dtype="int64")
    cohort[treated] = cohorts
    rate = src.rate[keep]
    y = np.log(rate) if outcome == "log_rate" else rate
    n_k, t = rate.shape
    frame = pd.DataFrame({
        "unit": np.repeat(np.asarray(src.units, dtype=object)[keep], t),
        "time": np.tile(src.times, n_k),
        "y": y.reshape(-1),
        "cohort": np.repeat(cohort[keep], t),
        "deaths": src.deaths[keep].reshape(-1).round().astype("int64"),
        "population": src.population[keep].reshape(-1),
    })
    return dgp.Draw(frame, {"att": 0.0, "e0": 0.0, "log_rr": 0.0})
