"""The report text of the Baltimore study, written from the computed results (no number is typed in)."""

from __future__ import annotations

import numpy as np

from decrimkit.results import p_clause
from decrimkit.studies.baltimore.analysis import (
    END,
    JHU_AVERTED,
    JHU_WINDOW,
    POLICY_DATE,
    POST_COVID,
    PUBLISHED_BLACK_SHARE,
    START,
    StudyResults,
)


def interval(s: dict[str, float], what: str = "", digits: int = 0) -> str:
    """'5,600 what (95% interval 3,533 to 8,602)'."""
    f = f"{{:,.{digits}f}}"
    return (
        f"{f.format(s['estimate'])}{' ' + what if what else ''} (95% interval {f.format(s['low'])} to "
        f"{f.format(s['high'])})"
    )


def _rr(s: dict[str, float]) -> str:
    return f"{s['estimate']:.2f} (95% interval {s['low']:.2f} to {s['high']:.2f})"


def _pct(x: float) -> str:
    return f"{100 * (x - 1):+.0f}%"


def question(r: StudyResults) -> str:
    return (
        f"On {POLICY_DATE} the Baltimore City State's Attorney stopped prosecuting drug possession (all substances), "
        "paraphernalia and several other low-level offences; the policy was made permanent in March 2021 and "
        "rescinded on 2023-01-03. **How many police drug arrests did it avert between "
        f"{START} and {END}, and whom would those arrests have touched?** The data end in {END}, so the "
        "rescission is not covered and its effect is not estimated here."
    )


def data_limits(r: StudyResults) -> str:
    m = r.micro
    f = r.frame
    return (
        f"- **Monthly series** ({f['month'].iloc[0]} .. {f['month'].iloc[-1]}, {len(f)} months): Baltimore Police "
        'Department arrests whose charge description contains "CDS" (controlled dangerous substance) and, as the '
        'comparison, arrests with a handgun charge ("HGV"/"handgun"). They are a **third-party aggregation** of '
        "the Open Baltimore arrest file (GitHub project erusin12/dataProject1); its cleaning and de-duplication are "
        "not fully documented, so treat the series as indicative, not as official counts.\n"
        "- The drug series counts **all CDS charges, distribution and possession with intent included**, not "
        "possession only, and no prostitution. The policy targeted possession; if distribution arrests did not "
        "fall, our effect on the targeted offences is diluted, and if they fell for other reasons (enforcement "
        "priorities), it is inflated.\n"
        f"- **Arrest-level extract** ({m.first} .. {m.last}; {m.n_raw:,} rows, {m.n_duplicates} exact duplicate rows "
        "removed): race, sex, age and charge text for each arrest, two years before the policy. No arrest-level "
        "data for 2019-2022 are bundled, so disparities after the policy cannot be measured directly.\n"
        "- **No population denominators** by race for Baltimore City are bundled with decrimkit, so we report "
        "shares of arrests, not arrest rates per resident."
    )


def design(r: StudyResults) -> str:
    return (
        f"**Main design: comparative interrupted time series.** Monthly drug and handgun arrests are modelled together "
        "by Poisson quasi-maximum likelihood (log link; the variance is left free, so overdispersion does not bias "
        "the estimates). Each series has its own intercept, linear trend and seasonality (two Fourier harmonics). "
        f"From {START}, the first full month of the policy, both series may change level and slope (a shift the "
        "handgun series identifies: handgun arrests were not targeted by the policy but were exposed to the same "
        "policing and pandemic shocks), and the drug series may change level and slope once more: that extra "
        "change is the policy effect. An indicator for 2020-03..2020-06, the acute COVID-19 lockdown, shared by "
        "both series, absorbs the pandemic shock that coincided with the policy; it is kept in the counterfactual. "
        "The counterfactual for each post-policy month is the model's drug arrests with the policy terms set to "
        "zero; **arrests averted** = counterfactual minus observed, summed over "
        f"{START}..{END}. Standard errors are Driscoll-Kraay (HAC, 3 lags, scores summed within month); the 95% "
        f"intervals of averted arrests come from {r.n_sim:,} seeded draws of the coefficients and reflect estimation "
        "uncertainty in the counterfactual mean.\n\n"
        "**COVID-19 sensitivity.** The same model without the COVID term, fitted with 2020-03..2020-06 left out, "
        f"and the effect summed over {POST_COVID[0]}..{POST_COVID[1]} (compared with the main model over the same "
        "months).\n\n"
        "**Alternatives.** (a) Single-series ITS: the drug series alone with the same trend, seasonality, COVID term "
        "and policy terms (Poisson QMLE, Newey-West SE), in the spirit of the JHU pre/post time-series models. "
        "(b) Poisson difference-in-differences (`decrimkit.estimators.did.poisson`): drug vs handgun arrests with "
        "series and month fixed effects; one rate ratio for the whole post period (SE clustered by month: with two "
        "series, clustering by series is impossible). (c) Bayesian comparative ITS (`decrimkit.estimators.bayes.its`): "
        "negative binomial, each series with its own trend and Fourier seasonality, month-to-month shocks shared by "
        "the two series, a COVID term, weakly informative priors; intervals are posterior-predictive (they include "
        f"count noise). MCMC: {r.bayes.settings['chains']} chains x {r.bayes.settings['draws']} draws after "
        f"{r.bayes.settings['tune']} tuning steps."
    )


def results(r: StudyResults) -> str:
    s = r.summaries
    params = r.fits["main"].params.set_index("term")["estimate"]
    lvl, slope = np.exp(params["effect_level"]), np.exp(params["effect_slope"])
    return (
        f"Under the main design the policy period {START}..{END} saw "
        f"**{interval(s['main_averted'], 'fewer CDS arrests')}** than the counterfactual, "
        f"{interval(s['main_monthly_averted'], 'per month')} on average. Observed CDS arrests were "
        f"{_rr(s['main_rate_ratio'])} times the counterfactual (rate ratio). The drug-specific level change at "
        f"{START} is a factor {lvl:.2f} and the slope change a factor {slope:.2f} per year, so the estimated gap "
        "varies over the window (see the monthly table). The counterfactual steps up at "
        f"{START} because the comparison series did: the level shift both series share is a factor "
        f"{np.exp(params['post']):.2f}, estimated from the rise in handgun arrests. Intervals are wide because the "
        "counterfactual extrapolates pre-policy trends for almost three years."
    )


def estimators(r: StudyResults) -> str:
    e = r.estimators.set_index("estimator")
    main, single = e.loc["comparative ITS (main)"], e.loc["single-series ITS"]
    dd, bay = e.loc["Poisson DiD"], e.loc["Bayesian comparative ITS"]
    below = [k for k, row in e.iterrows() if row["rate_ratio_high"] < 1]
    params = r.fits["main"].params.set_index("term")["estimate"]
    shared = np.exp(params["post"])
    p = r.pretrend
    agree = (
        f"All {len(e)} estimators find fewer drug arrests than expected (every 95% interval of the rate ratio "
        "lies below 1)."
        if len(below) == len(e)
        else f"{len(below)} of {len(e)} estimators find fewer drug arrests than expected with a 95% interval below 1 "
        f"({', '.join(below)})."
    )
    bayes_note = (
        ""
        if r.bayes.converged
        else " **The Bayesian fit did not pass the convergence gate** (r-hat <= 1.01, bulk ESS >= 400, no "
        f"divergences): {'; '.join(r.bayes.problems)}. Treat its numbers as indicative; the full run uses "
        "more draws."
    )
    return (
        f"{agree} They disagree on how large the fall is, from a rate ratio of {dd['rate_ratio']:.2f} "
        f"({dd['averted']:,.0f} arrests averted) for the Poisson DiD to {single['rate_ratio']:.2f} "
        f"({single['averted']:,.0f}) for the single-series ITS, because each builds the counterfactual differently:\n\n"
        f"- **Poisson DiD** assumes the drug-to-handgun ratio would have stayed at its pre-policy average. It did "
        f"not stay put before the policy: drug arrests fell relative to handgun arrests by "
        f"{100 * (1 - np.exp(p['estimate'])):.0f}% a year in 2018-01..2020-02 (log-slope difference {p['estimate']:.3f}, "
        f"95% CI {p['low']:.3f} to {p['high']:.3f}, {p_clause(p['p_value'])}). Projecting the pre-period average "
        "forward ignores that decline, so the DiD counterfactual is too high and its estimate the largest; its "
        "month-clustered SE also ignores autocorrelation.\n"
        f"- **Single-series ITS** extrapolates the drug series' own trend and ignores the comparison series. After "
        f"{START} handgun arrests rose (the shared level shift in the main model is {_pct(shared)}), and a design "
        "without a comparison cannot tell a city-wide change in arrest activity from the policy.\n"
        f"- **Comparative ITS (main)** extrapolates the drug trend and moves it by the comparison series' post-policy "
        f"change, giving {main['averted']:,.0f} averted (rate ratio {main['rate_ratio']:.2f}). Whether the rise in "
        "handgun arrests (amid the 2020-2022 rise in gun violence) is a valid proxy for what drug enforcement would "
        "have done is an assumption, not a fact.\n"
        f"- **Bayesian comparative ITS** shares only month-to-month shocks with the handgun series (random effects "
        f"with a half-normal scale), not a sustained post-policy level and slope shift, so the rise in handgun arrests "
        f"moves its counterfactual less than the main model's: {bay['averted']:,.0f} averted (rate ratio "
        f"{bay['rate_ratio']:.2f}), with posterior-predictive intervals that include count noise.{bayes_note}"
    )


def covid(r: StudyResults) -> str:
    s = r.summaries
    return (
        f"Excluding 2020-03..2020-06 from the fit, the policy averted {interval(s['covid_excluded_averted'], 'arrests')} "
        f"over {POST_COVID[0]}..{POST_COVID[1]} (rate ratio {_rr(s['covid_excluded_rate_ratio'])}); the main model gives "
        f"{interval(s['main_post_covid_averted'])} over the same months. Policy and pandemic started within days of "
        "each other, so no design separates them in the first months; the sensitivity analysis shows how much the "
        "estimate leans on the lockdown months. It cannot rule out a lasting pandemic change in drug enforcement "
        "that the handgun series does not share."
    )


def robustness(r: StudyResults) -> str:
    rob = r.robustness
    lines = []
    for _, row in rob.iterrows():
        crosses = row["rate_ratio_low"] <= 1 <= row["rate_ratio_high"]
        lines.append(
            f"- {row['run']}: rate ratio {row['rate_ratio']:.2f} ({row['rate_ratio_low']:.2f} to "
            f"{row['rate_ratio_high']:.2f}){'; interval includes 1' if crosses else ''}; "
            f"{row['averted']:,.0f} averted over {row['months']} months"
        )
    placebo = rob.loc[rob["kind"] == "placebo date"]
    failed = placebo.loc[(placebo["rate_ratio_high"] < 1) | (placebo["rate_ratio_low"] > 1), "run"].tolist()
    verdict = (
        "No placebo date produces an effect whose interval excludes 1."
        if not failed
        else f"Placebo dates with an 'effect' whose interval excludes 1: {'; '.join(failed)}. The pre-policy drug "
        "series had breaks of its own (e.g. the 2019-01-29 announcement that marijuana possession would not "
        "be prosecuted, and the decline in BPD arrests during 2019), which a linear trend does not capture; "
        "the main estimate carries that model uncertainty."
    )
    gun = rob.loc[rob["kind"] == "placebo outcome"].iloc[0]
    return (
        "Every run is reported, whatever it shows. Rate ratios below 1 mean fewer arrests than the counterfactual.\n\n"
        + "\n".join(lines)
        + "\n\n"
        + verdict
        + " "
        f"The placebo outcome (handgun arrests, which the policy did not target, in a single-series ITS) has a rate "
        f"ratio of {gun['rate_ratio']:.2f}: "
        + (
            "close to 1, as it should be."
            if gun["rate_ratio_low"] <= 1 <= gun["rate_ratio_high"]
            else "not 1, so the single-series design attributes real non-policy change to the policy date; this is "
            "why the main design uses a comparison series."
        )
    )


def disparities(r: StudyResults) -> str:
    counts = r.rule_counts.set_index("class")["arrests"]
    prim = r.black_share.iloc[0]
    blk = r.implied.iloc[0]
    inside = prim["share_low"] <= PUBLISHED_BLACK_SHARE <= prim["share_high"]
    compare = (
        "the published share lies inside our interval for explicit possession arrests"
        if inside
        else f"the published share lies {'below' if PUBLISHED_BLACK_SHARE < prim['share_low'] else 'above'} our "
        "interval for explicit possession arrests"
    )
    compare += "; the definitions differ (theirs includes prostitution and counts averted, not past, arrests)."
    shares = ", ".join(f"{row['definition']}: {row['black_share']:.1%}" for _, row in r.black_share.iterrows())
    return (
        "**Charge rule** (`classify_cds_charge`): a 2017-01..2018-02 arrest is a *drug* arrest when its charge "
        'description contains "CDS" (the rule of the monthly series). It is *possession* when the text spells out '
        "possession (POSS, POSSESSION and misspellings) or paraphernalia and has no intent/distribution marker (INT, "
        "PWI, W/I, DIS[T], MANUF, CONS[piracy], FIREARM, HGV/HANDGUN, LG AMT, FRAUD, ADMIN, NUIS); *distribution* when it "
        f"has such a marker; *unspecified* otherwise. Counts: {counts['possession']:,} possession, "
        f'{counts["distribution"]:,} distribution, {counts["unspecified"]:,} unspecified (mostly the bare "CDS" and '
        '"CDS VIOLATION", used by BPD for both possession and distribution).\n\n'
        f"**Composition.** {prim['black_share']:.1%} (95% CI {prim['share_low']:.1%} to {prim['share_high']:.1%}) of the "
        f"{int(prim['arrests']):,} explicit possession arrests were of Black arrestees ({shares}). The JHU report "
        f"found {PUBLISHED_BLACK_SHARE:.0%} of the averted possession and prostitution arrests in the Black community; "
        f"{compare}\n\n"
        "**Implied distribution of averted arrests.** *Assumption*: the arrests the policy averted had the racial "
        "composition of explicit possession arrests in 2017-18. Under it, "
        f"{interval({'estimate': blk['averted'], 'low': blk['averted_low'], 'high': blk['averted_high']})} of the "
        "averted CDS arrests would have been of Black residents. This is an accounting identity, not an estimate of "
        "a disparity effect: the averted arrests include distribution charges, the composition is two years older "
        "than the policy, and without population denominators we cannot express it as a rate per resident."
    )


def jhu(r: StudyResults) -> str:
    s = r.summaries
    counts = r.rule_counts.set_index("class")["arrests"]
    share_poss = counts["possession"] / counts.sum()
    return (
        f"The JHU report counted **{JHU_AVERTED} possession and prostitution arrests averted** in BPD data, "
        f"{JHU_WINDOW[0]}..{JHU_WINDOW[1]} (the report's design details are not verified here). Over the same months our "
        f"main model gives {interval(s['jhu_window_averted'], 'CDS arrests averted')}. The numbers measure different "
        "things: ours counts every CDS charge, distribution included, and no prostitution; theirs counts possession "
        f"arrests, the narrower target of the policy. Only {share_poss:.0%} of the 2017-18 CDS arrests were explicitly "
        "possession (most charge texts do not say), so a larger number here is expected and is not evidence against "
        "the JHU figure; their design also differs (other crimes as controls). We did not tune any choice towards "
        "their number."
    )


def threats(r: StudyResults) -> str:
    return (
        "- **Coincident shocks.** The pandemic began within days of the policy. The COVID term, the exclusion "
        "sensitivity and the comparison series address the acute shock, not a lasting change in how police worked.\n"
        "- **Comparison series validity.** Handgun arrests rose with gun violence in 2020-2022; if drug enforcement "
        "would not have followed, the comparative designs overstate the counterfactual (and the effect); the "
        "single-series ITS is the bound without that assumption.\n"
        "- **Pre-policy dynamics.** Drug arrests were already falling in 2019 (including after the 2019-01-29 "
        "marijuana non-prosecution announcement); linear trends extrapolated for 33 months carry most of the "
        "uncertainty, and placebo dates test them.\n"
        "- **Measurement.** A third-party monthly aggregation with undocumented cleaning; all CDS charges, not "
        "possession only; police arrests, not prosecutions (the policy acted on prosecution, so arrests respond "
        "through police anticipation of declination).\n"
        "- **Anticipation and spillover.** March 2020 is partly treated (policy from the 18th) and sits in the COVID "
        "window; arrests may have moved to other charges.\n"
        "- **Disparities.** Pre-policy composition from 2017-18 only, no post-policy microdata, no population "
        "denominators: the race split of averted arrests rests on an explicit, untestable assumption."
    )


def reproduce(r: StudyResults) -> str:
    return (
        "`decrimkit study baltimore` (or `python -m decrimkit.studies.baltimore --out outputs/baltimore --seed 0`; "
        "`--quick` for fewer draws). The same seed gives a byte-identical `results.json`. Tables in `tables/`, "
        "figures in `figures/`, data hashes and package versions in `provenance.json`."
    )


__all__ = [
    "interval",
    "question",
    "data_limits",
    "design",
    "results",
    "estimators",
    "covid",
    "robustness",
    "disparities",
    "jhu",
    "threats",
    "reproduce",
]
