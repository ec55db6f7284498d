"""Report prose of the Oregon study: design choices stated up front, and the published comparisons.

The published values below are typed in from ``REFERENCES.md`` with their source; the study never
asserts agreement with them (they come from other data). Conversions to our unit, deaths per
100,000 per year, are computed in :func:`published_table` from Oregon's population in our data.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from . import data as oregon_data


@dataclass(frozen=True)
class Published:
    """One published Oregon estimate in its own unit, and how to convert it to per 100,000 per year."""

    label: str
    source: str
    value: float
    unit: str
    per_year_factor: float | None  # multiply a rate to get per 100,000 per year; None for counts
    months: int | None = None  # months a count covers (counts only)
    p_or_se: str = ""
    window: str = ""


PUBLISHED = (
    Published("Spencer (2023)", "Spencer, U Toronto WP tecipa-745 (2022); J Health Econ 2023", 181.0,
              "excess deaths, Feb-Dec 2021 (+23%)", None, months=11, p_or_se="placebo p not reported",
              window="Feb-Dec 2021, unintentional deaths in the published version"),
    Published("Joshi et al. (2023)", "Joshi et al., JAMA Psychiatry 2023, doi:10.1001/jamapsychiatry.2023.3416",
              0.268, "per 100,000 per month", 12.0, p_or_se="probability 0.26 (n.s.)",
              window="Feb 2021 - Mar 2022, all intents (NVSS)"),
    Published("Zoorob et al. (2024), crude", "Zoorob et al., JAMA Netw Open 2024, doi:10.1001/jamanetworkopen.2024.31612",
              1.83, "per 100,000 per half-year", 2.0, p_or_se="SE 0.39, p < 0.001",
              window="2021-2022 half-years, MC-NNM"),
    Published("Zoorob et al. (2024), fentanyl-adjusted",
              "Zoorob et al., JAMA Netw Open 2024, doi:10.1001/jamanetworkopen.2024.31612",
              -0.51, "per 100,000 per half-year", 2.0, p_or_se="SE 0.36, n.s.",
              window="2021-2022 half-years, MC-NNM + NFLIS fentanyl escalation"),
)


def published_table(population_2021: float) -> pd.DataFrame:
    """Published estimates converted to deaths per 100,000 per year and deaths per year for Oregon.

    Spencer's count covers the 11 months February-December 2021: divided by Oregon's population and
    scaled by 12/11 to a year. Joshi's monthly rate is multiplied by 12, Zoorob's half-year rates by 2.
    """
    rows = []
    for p in PUBLISHED:
        if p.per_year_factor is None:
            per_year = p.value / population_2021 * 1e5 * 12 / p.months
        else:
            per_year = p.value * p.per_year_factor
        rows.append({"label": p.label, "published": p.value, "published_unit": p.unit,
                     "per_100k_per_year": per_year, "deaths_per_year": per_year * population_2021 / 1e5,
                     "uncertainty": p.p_or_se, "window": p.window, "source": p.source})
    return pd.DataFrame(rows)


def design_section(data: oregon_data.StudyData, n_months: int) -> str:
    rules = data.rules
    excl = "; ".join(f"{s}: {why}" for s, why in rules.excluded.items()) or "none"
    onset = data.onset
    return f"""\
**Treated unit.** Oregon; Measure 110 (de jure decriminalization of possession of all drugs) in force
2021-02-01; recriminalized by HB 4002 from 2024-09-01.

**Outcome.** All-intent drug-overdose deaths by place of occurrence (CDC/NCHS VSRR provisional,
NCHS delay-adjusted `predicted_value` throughout; the reported `data_value` is a robustness row),
per 100,000 residents.

**Why not monthly.** The file holds 12-month-ending sums ({n_months} windows per state). Differencing
two consecutive windows gives Y_t - Y_(t-12), never Y_t: monthly counts are pinned down only up to
their first twelve values, and any 12-periodic pattern summing to zero (seasonality) can be added
without changing one rolling sum. They could be recovered exactly only if the first twelve monthly
counts were known; this file does not hold them, so monthly counts are **not** reconstructed. What
is exact is any set of non-overlapping windows: the December rows are calendar-year counts, the
January rows are February-January counts.

**Analysis frequency: February-January years.** The main panel takes the windows ending in January
and labels each by the year it starts ("2021" = Feb 2021 - Jan 2022). Measure 110 began on
2021-02-01, so the policy date falls exactly on a window boundary: 2014-2020 (seven windows) are
entirely pre-policy, 2021-2023 (three windows) entirely under Measure 110 and before HB 4002 was
signed. The 2024 window (Feb 2024 - Jan 2025) mixes 7 decriminalized and 5 recriminalized months and
serves as the reversal window. Calendar years (December windows; 2021 then contains one pre-policy
month) are a robustness panel and match Spencer's calendar-year framing. Sampling overlapping monthly
windows would add no information and would make the series autocorrelated by construction.

**Population.** Census July-1 estimates, linearly interpolated to months (each July value at July),
July 2024 carried forward to 2025 (no 2025 estimate is bundled); a window's population is the mean of
its twelve monthly values. The 2019/2020 seam between Vintage 2019 and Vintage 2024 (Oregon +0.6 %,
median state +1.0 %) is therefore spread over July 2019 - July 2020 instead of a jump, and lies in
the pre-period; the "constant denominator" robustness row removes it entirely.

**Donor pool (fixed before estimation).** All states in the extract except Oregon, minus states with
a statewide de jure decriminalization of all drugs in the post window (from the policy registry):
{excl}. Washington's State v. Blake (2021-02-25) voided its possession statute for eleven weeks and
was followed by a misdemeanour with mandatory treatment referral, so Washington is partly treated;
it is shown *included* as a robustness row. PA, RI and SC are missing from the bundled extract.
Sub-state non-prosecution policies (e.g. Los Angeles County, Baltimore City) stay in the main pool;
the "strict" robustness pool also drops every state with any non-cannabis registry policy in force
in the post window. Main pool: {len(rules.donors)} donors ({", ".join(rules.donors)}).

**Fentanyl proxy.** No synthetic-opioid (T40.4) series is bundled, so Zoorob et al.'s NFLIS
rapid-fentanyl-escalation indicator cannot be rebuilt. The proxy used instead is the **timing of each
state's overdose-surge onset**: the first 12-month window (from 2016-01) in which the state's rate is
at least {int(oregon_data.SURGE_THRESHOLD * 100)} % above the same window a year earlier; the covariate is the share of a window's months
at or after that onset (0 to 1). Oregon's onset is dated {onset[oregon_data.TREATED]}, before Measure 110, so the
proxy for Oregon cannot respond to the policy itself. It is weaker than the NFLIS indicator because
(i) it is read off the outcome, so any cause of a death surge (the 2020 pandemic, methamphetamine,
reporting) is taken for fentanyl, and the pandemic surge dates most western states to 2020, earlier
than NFLIS dates Oregon's escalation (H1 2021); (ii) for donor states whose surge began after
Measure 110 it partly encodes the post-period outcome; (iii) the 12-month windows blur timing by up to
a year and the threshold is arbitrary (20 % and 30 % are shown); (iv) seizure-lab data measure the
drug supply directly, deaths only its consequence, with a lag.
"""


def why_differ_section() -> str:
    return """\
Our estimates are per 100,000 per year, averaged over the three February-January windows under
Measure 110 (Feb 2021 - Jan 2024); published values are converted to that unit in the table below.
Four choices separate the studies:

1. **Outcome.** We count all intents by place of occurrence (VSRR provisional, delay-adjusted);
   Spencer's published version counts unintentional deaths; Joshi et al. and Zoorob et al. use NVSS
   all-intent counts.
2. **Window.** Spencer: Feb-Dec 2021; Joshi et al.: to March 2022; Zoorob et al.: half-years to 2022;
   ours: Feb 2021 - Jan 2024. Oregon's gap widens every year, so a longer window gives a larger
   average effect; our first window (2021) is the closest analogue of Spencer and Joshi et al.
3. **Donors and data.** PA, RI and SC are missing here; Washington is out of our main pool (Joshi
   et al. treat it as a second treated state; others keep it as a donor).
4. **Fentanyl timing.** Zoorob et al.'s adjustment uses NFLIS seizure-lab data; ours uses the
   surge-onset proxy described under Design, a weaker stand-in read off the outcome. Our crude
   estimates are the analogue of Zoorob et al.'s crude estimate (REFERENCES.md: his adjustment cannot
   be reproduced here); the proxy-adjusted rows show whether the same qualitative pattern (adjustment
   shrinks the estimate) appears on our data.

Conversions: Spencer's 181 deaths over the 11 months Feb-Dec 2021 are divided by Oregon's 2021
population and scaled by 12/11; Joshi et al.'s monthly rate is multiplied by 12; Zoorob et al.'s
half-year rates by 2. Joshi et al.'s "probability 0.26" is a placebo-based probability, not a
classical p-value.
"""
