"""The county overdose death rate as a secondary outcome of a single-county study (Baltimore, Suffolk).

One treated county against the prosecutors study's main donor pool (rules D1-D4: no registry policy, no
statewide-policy state, reported in all 13 years so that no suppressed CDC count is used, a 2010 population
of at least 250,000; quick runs: the 24 of them nearest in 2010 population), by synthetic control (placebo in space: RMSPE-ratio rank p, Conley-Taber
interval) and SDID (placebo SE), exactly as the prosecutors study (``decrimkit.studies.prosecutors``) estimates every
registry county. The WONDER data are annual, so the first treated year follows rule R5 of the registry
rules: the first calendar year with at least six months of the policy in force.
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from decrimkit.reporting import Report
from decrimkit.studies.policy_models.data import annual_cohort

from . import data as D
from . import methods as M
from .figures import trajectory

UNIT = "overdose deaths per 100,000 per year"


def first_treated_year(start: date) -> int:
    """R5 (``policy_models.data.annual_cohort``): first calendar year with six months in force (start on/before 1 July)."""
    return int(annual_cohort(pd.Series(pd.to_datetime([start])))[0])


def estimate(fips: str, start: date, *, seed: int, quick: bool) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """(SCM and SDID rows for ``fips``, their observed/counterfactual paths), deaths per 100,000."""
    cohort = first_treated_year(start)
    df = D.wonder()
    pools = D.pools(df)
    donors = D.nearest_by_size(pools, fips, 24) if quick else list(pools.large)
    panel = D.county_panel(df, pd.DataFrame({"fips": [fips], "cohort": [cohort]}), donors)
    est = [M.scm(panel, fips, donors, cohort), M.sdid(panel, fips, donors, cohort, n_reps=20 if quick else 200,
                                                     seed=seed)]
    rows = pd.DataFrame([e.row() for e in est]).assign(first_treated_year=cohort)
    return rows, {e.method: e.path for e in est}


def add_to_report(rep: Report, *, fips: str, name: str, start: date, seed: int, quick: bool, adds: str) -> pd.DataFrame:
    """Estimate and add the secondary outcome (results ``county_overdose_scm``/``_sdid``, a table, a figure, a section).

    ``adds``: the study's sentence on what the secondary outcome adds to its primary one.
    """
    rep.use_dataset("cdc_wonder_county_overdose")
    rows, paths = estimate(fips, start, seed=seed, quick=quick)
    cohort = int(rows["first_treated_year"].iloc[0])
    for r in rows.itertuples():
        why = f"; interval {M.NO_INTERVAL[r.why_no_interval]}" if r.why_no_interval else ""
        rep.add_result(f"county_overdose_{r.method.lower()}", estimate=r.estimate,
                       conf_int=None if r.why_no_interval else (r.conf_low, r.conf_high),
                       p_value=r.p_value, method=r.method, unit=UNIT,
                       note=f"{name}, first treated year {cohort} (R5); {r.inference}{why}; pre-RMSPE {r.pre_rmspe:.2f}; "
                            f"{r.donors} donor counties" + (f"; {r.flags}" if r.flags else ""))
    lines = [f"{name}: policy from {start.isoformat()}, first treated year {cohort} (the first calendar year with at "
             f"least six months in force; WONDER's data run to 2022). {' '.join(__doc__.split(chr(10) * 2, 1)[1].split())}", ""]
    for r in rows.itertuples():
        interval = (f"no interval: {M.NO_INTERVAL[r.why_no_interval]}" if r.why_no_interval
                    else f"95% interval {r.conf_low:+.1f} to {r.conf_high:+.1f}")
        lines.append(f"- {r.method}: {r.estimate:+.1f} {UNIT} ({interval}, p = {r.p_value:.3f}); "
                     f"pre-RMSPE {r.pre_rmspe:.1f}" + (f" [{r.flags}]" if r.flags else ""))
    lines += ["", adds]
    rep.add_section("Secondary outcome: county overdose deaths", "\n".join(lines))
    rep.add_table("county_overdose", rows.drop(columns=["fips"]), not_counts="all",
                  caption=f"{name}: effect on the county overdose death rate ({UNIT}), SCM and SDID")
    rep.add_figure("county_overdose", trajectory(paths, title=f"{name}: overdose deaths per 100,000", start=cohort,
                                                 ylabel="overdose deaths per 100,000"),
                   caption=f"{name}: observed and counterfactual overdose death rates (CDC WONDER)")
    return rows
