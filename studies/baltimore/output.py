"""Write the Baltimore study's results, tables, figures and report text through :class:`Report`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from decrimkit.reporting import Report
from decrimkit.studies.baltimore import data, figures, narrative
from decrimkit.studies.baltimore.analysis import (
    END,
    JHU_AVERTED,
    JHU_WINDOW,
    POST_COVID,
    PUBLISHED_BLACK_SHARE,
    START,
    StudyResults,
    month_dates,
)

TITLE = "Baltimore 2020 non-prosecution of drug possession: police drug arrests averted"
MAIN = "comparative ITS (Poisson QMLE, drug vs handgun arrests, Fourier seasonality, COVID term, Driscoll-Kraay SE)"


def _add(rep: Report, name: str, s: dict[str, float], *, n: int, method: str, unit: str, note: str = "") -> None:
    rep.add_result(
        name,
        estimate=s["estimate"],
        se=s.get("se"),
        conf_int=(s["low"], s["high"]),
        n=n,
        method=method,
        unit=unit,
        note=note,
    )


def _results(rep: Report, r: StudyResults) -> None:
    s, f = r.summaries, r.fits
    n_main = f["main"].n_obs
    months = int(f["main"].window.sum())
    _add(
        rep,
        "monthly_averted",
        s["main_monthly_averted"],
        n=n_main,
        method=MAIN,
        unit="arrests per month",
        note=f"mean over the {months} months {START}..{END}; 95% interval from {r.n_sim} coefficient draws",
    )
    _add(
        rep,
        "cumulative_averted",
        s["main_averted"],
        n=n_main,
        method=MAIN,
        unit="arrests",
        note=f"sum of counterfactual minus observed CDS arrests, {START}..{END}",
    )
    _add(
        rep,
        "rate_ratio",
        s["main_rate_ratio"],
        n=n_main,
        method=MAIN,
        unit="ratio",
        note="observed / counterfactual CDS arrests over the window",
    )
    _add(
        rep,
        "covid_sensitivity_cumulative_averted",
        s["covid_excluded_averted"],
        n=f["covid_excluded"].n_obs,
        method=MAIN.replace("COVID term", "2020-03..06 excluded"),
        unit="arrests",
        note=f"window {POST_COVID[0]}..{POST_COVID[1]}; compare main model on the same window",
    )
    _add(
        rep,
        "covid_sensitivity_rate_ratio",
        s["covid_excluded_rate_ratio"],
        n=f["covid_excluded"].n_obs,
        method=MAIN.replace("COVID term", "2020-03..06 excluded"),
        unit="ratio",
    )
    _add(
        rep,
        "main_same_window_cumulative_averted",
        s["main_post_covid_averted"],
        n=n_main,
        method=MAIN,
        unit="arrests",
        note=f"main model summed over {POST_COVID[0]}..{POST_COVID[1]}",
    )
    _add(
        rep,
        "jhu_window_cumulative_averted",
        s["jhu_window_averted"],
        n=n_main,
        method=MAIN,
        unit="arrests",
        note=f"{JHU_WINDOW[0]}..{JHU_WINDOW[1]}, the JHU report's window; all CDS charges, not possession only",
    )
    _add(
        rep,
        "its_single_series_cumulative_averted",
        s["single_series_averted"],
        n=f["single_series"].n_obs,
        method="single-series ITS (Poisson QMLE, Newey-West SE)",
        unit="arrests",
    )
    _add(
        rep,
        "its_single_series_rate_ratio",
        s["single_series_rate_ratio"],
        n=f["single_series"].n_obs,
        method="single-series ITS (Poisson QMLE, Newey-West SE)",
        unit="ratio",
    )
    did_row = r.estimators.loc[r.estimators["estimator"] == "Poisson DiD"].iloc[0]
    _add(
        rep,
        "did_poisson_rate_ratio",
        s["did_rate_ratio"],
        n=int(did_row["n_obs"]),
        unit="ratio",
        method="decrimkit.estimators.did.poisson (drug vs handgun, series and month fixed effects)",
        note=str(did_row.get("inference_note", "") or ""),
    )
    _add(
        rep,
        "did_poisson_cumulative_averted",
        s["did_averted"],
        n=int(did_row["n_obs"]),
        unit="arrests",
        method="decrimkit.estimators.did._poisson",
        note="observed post-policy arrests x (1/rate ratio - 1)",
    )
    b = r.estimators.loc[r.estimators["estimator"] == "Bayesian comparative ITS"].iloc[0]
    _add(
        rep,
        "bayes_its_cumulative_averted",
        s["bayes_averted"],
        n=int(b["n_obs"]),
        unit="arrests",
        method="decrimkit.estimators.bayes._its",
        note="posterior median and 95% credible interval",
    )
    _add(
        rep,
        "bayes_its_rate_ratio",
        s["bayes_rate_ratio"],
        n=int(b["n_obs"]),
        unit="ratio",
        method="decrimkit.estimators.bayes._its",
    )
    p = r.pretrend
    rep.add_result(
        "pretrend_log_slope_difference",
        estimate=p["estimate"],
        se=p["se"],
        conf_int=(p["low"], p["high"]),
        p_value=p["p_value"],
        n=p["n"],
        unit="log points per year",
        method="Poisson QMLE, 2018-01..2020-02, drug minus handgun trend, Driscoll-Kraay SE",
    )
    prim = r.black_share.iloc[0]
    rep.add_result(
        "black_share_possession_arrests",
        estimate=prim["black_share"],
        conf_int=(prim["share_low"], prim["share_high"]),
        n=int(prim["arrests"]),
        unit="share",
        method="BPD arrest extract 2017-01..2018-02, explicit possession rule; Jeffreys interval",
    )
    blk = r.implied.iloc[0]
    rep.add_result(
        "implied_averted_black",
        estimate=blk["averted"],
        conf_int=(blk["averted_low"], blk["averted_high"]),
        n=int(prim["arrests"]),
        unit="arrests",
        method="main averted total x pre-policy Black share",
        note="assumes averted arrests share the 2017-18 possession-arrest racial composition",
    )


def _rounded(df: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    return df.assign(**{c: df[c].round().astype("int64") for c in cols})


def _tables(r: StudyResults) -> dict[str, tuple]:
    """Every table as ``name -> (frame, caption, declarations)``; declarations go to ``Report.add_table``."""
    main = r.fits["main"]
    series = r.frame.assign(month=r.frame["month"].astype(str))
    eff = pd.DataFrame(
        {
            "month": main.months.astype(str),
            "observed": main.observed,
            "counterfactual": main.counterfactual,
            "cf_low": main.cf_low,
            "cf_high": main.cf_high,
        }
    )
    eff = eff.loc[main.window].assign(averted=lambda d: d["counterfactual"] - d["observed"])
    cols = [
        "estimator",
        "months",
        "rate_ratio",
        "rate_ratio_low",
        "rate_ratio_high",
        "averted",
        "averted_low",
        "averted_high",
        "n_obs",
        "run",
    ]
    rob_cols = [
        "run",
        "kind",
        "months",
        "rate_ratio",
        "rate_ratio_low",
        "rate_ratio_high",
        "averted",
        "averted_low",
        "averted_high",
        "n_obs",
    ]
    wide = r.composition.pivot(index="race", columns="definition", values="arrests")
    wide = wide.reindex(index=list(dict.fromkeys(r.composition["race"])), columns=list(data.DEFINITIONS))
    model = {"not_counts": "all"}  # estimates, intervals, numbers of months and of model observations
    return {
        "monthly_series": (
            _rounded(series, ["drug", "handgun"]),
            "Monthly BPD arrests with a CDS (drug) charge and with a handgun charge (third-party aggregation)",
            {"count_columns": ("drug", "handgun")},
        ),
        "monthly_effects": (
            _rounded(eff, ["observed"]),
            "Observed and counterfactual CDS arrests (main model) with the 95% interval of the counterfactual mean",
            {"count_columns": ("observed",), "derived": {"averted": {"counterfactual": 1.0, "observed": -1.0}}},
        ),
        "estimators": (
            r.estimators[cols].rename(columns={"run": "specification"}),
            f"Effect of non-prosecution on CDS arrests, {START}..{END}, by estimator (95% intervals)",
            model,
        ),
        "robustness": (
            r.robustness[rob_cols],
            "Robustness and placebo runs (placebo windows end 2020-02; 'averted' is summed over each run's window)",
            model,
        ),
        "charge_rule": (
            r.rule_counts,
            "CDS arrests 2017-01..2018-02 by charge class (rule: "
            "data.classify_cds_charge); descriptions with fewer than 11 arrests are not named",
            {"count_columns": ("arrests",)},
        ),
        "arrests_by_race": (
            wide.reset_index(),
            "Pre-policy CDS arrests by race (BPD codes) and charge definition",
            {"count_columns": tuple(data.DEFINITIONS)},
        ),
        "black_share": (
            r.black_share,
            "Share of pre-policy CDS arrests of Black arrestees, Jeffreys 95% interval",
            {
                "count_columns": ("arrests", "black", "not_black"),
                "depends": {c: ("black", "arrests") for c in ("black_share", "share_low", "share_high")},
            },
        ),
        "averted_by_race": (
            _rounded(r.implied, ["averted", "averted_low", "averted_high"]),
            "Implied arrests averted by race, assuming the pre-policy explicit-possession composition",
            {"not_counts": ("averted", "averted_low", "averted_high")},  # model estimates, not counted people
        ),
    }


def _relations(rep: Report, r: StudyResults, tab: dict[str, tuple]) -> None:
    """Declare every count published twice or as a total of other tables' counts (for the cross-table audit)."""
    races = list(tab["arrests_by_race"][0]["race"])
    classes = set(tab["charge_rule"][0]["class"])
    for d, parts in data.DEFINITIONS.items():
        total = ("black_share", {"definition": d}, "arrests")
        rep.add_sum(total, [("arrests_by_race", {"race": race}, d) for race in races])
        if "Black" in races:
            rep.add_sum(("black_share", {"definition": d}, "black"), [("arrests_by_race", {"race": "Black"}, d)])
        rep.add_sum(
            total, [("black_share", {"definition": d}, "black"), ("black_share", {"definition": d}, "not_black")]
        )
        if set(parts) <= classes:
            rep.add_sum(total, [("charge_rule", {"class": c}, "arrests") for c in parts])
    for month in tab["monthly_effects"][0]["month"]:
        rep.add_sum(("monthly_effects", {"month": month}, "observed"), [("monthly_series", {"month": month}, "drug")])


def _trajectory(traj: pd.DataFrame, months: pd.Series) -> Callable[[pd.DataFrame], Any]:
    """Draw the trajectory figure with the observed counts as published in ``monthly_series``."""

    def draw(series: pd.DataFrame) -> Any:
        observed = series.set_index("month")["drug"].reindex(months.to_numpy()).to_numpy(dtype="float64")
        return figures.trajectory(traj.assign(observed=observed), title="CDS arrests: observed and without the policy")

    return draw


def _composition(published: pd.DataFrame) -> Any:
    """The composition figure drawn from ``black_share`` as published (a hidden share is not drawn)."""
    share = published.assign(race="Black", share=published["black_share"])
    other = published.assign(race="all other groups", share=1 - published["black_share"])
    return figures.composition(pd.concat([share, other], ignore_index=True), published_share=PUBLISHED_BLACK_SHARE)


def _figures(r: StudyResults) -> dict[str, tuple]:
    """Every figure as ``name -> (Figure or drawing function, caption, table it draws its counts from)``."""
    main = r.fits["main"]
    traj = pd.DataFrame(
        {
            "date": month_dates(main.months),
            "fitted": main.fitted,
            "counterfactual": main.counterfactual,
            "cf_low": main.cf_low,
            "cf_high": main.cf_high,
            "post": main.months >= pd.Period(START, "M"),
            "bayes_cf": r.bayes.counterfactual,
        }
    )

    def series(published: pd.DataFrame) -> Any:
        return figures.comparison_series(
            published.assign(date=month_dates(pd.PeriodIndex(published["month"], freq="M")))
        )

    return {
        "trajectory": (
            _trajectory(traj, pd.Series(main.months.astype(str))),
            "Observed monthly CDS arrests, the comparative-ITS fit before the policy and the counterfactual "
            "after it (95% interval of the counterfactual mean); dash-dot: Bayesian counterfactual.",
            "monthly_series",
        ),
        "comparison_series": (
            series,
            "Treated (CDS) and comparison (handgun) arrest series and their ratio.",
            "monthly_series",
        ),
        "estimators": (
            figures.estimator_comparison(r.estimators),
            "Rate ratio and cumulative arrests averted by estimator, 95% intervals.",
            None,
        ),
        "robustness": (
            figures.robustness(r.robustness),
            "Rate ratios of the robustness and placebo runs, 95% intervals.",
            None,
        ),
        "composition": (
            _composition,
            "Share of pre-policy CDS arrests of Black arrestees under three charge definitions.",
            "black_share",
        ),
    }


def write_report(r: StudyResults, *, out: str | Path, seed: int, quick: bool) -> Path:
    """Build the report of ``r`` and write it to ``out``; return the folder."""
    rep = Report(
        "baltimore",
        out=out,
        seed=seed,
        quick=quick,
        suppress_below=11,
        title=TITLE,
        command="decrimkit study baltimore" + (" --quick" if quick else "") + f" --seed {seed}",
    )
    rep.use_dataset(data.DATASET)
    _results(rep, r)
    for title, fn in (
        ("Question", narrative.question),
        ("Data and its limits", narrative.data_limits),
        ("Design", narrative.design),
    ):
        rep.add_section(title, fn(r))
    fig = _figures(r)
    tab = _tables(r)
    rep.add_section("Results", narrative.results(r))
    _put(rep, fig, tab, ["fig:trajectory", "fig:comparison_series", "tab:monthly_effects"])
    rep.add_section("Estimators compared: where they agree and why they differ", narrative.estimators(r))
    _put(rep, fig, tab, ["fig:estimators", "tab:estimators"])
    rep.add_section("COVID-19", narrative.covid(r))
    rep.add_section("Robustness and placebo checks", narrative.robustness(r))
    _put(rep, fig, tab, ["fig:robustness", "tab:robustness"])
    rep.add_section("Disparities", narrative.disparities(r))
    _put(
        rep,
        fig,
        tab,
        ["fig:composition", "tab:charge_rule", "tab:arrests_by_race", "tab:black_share", "tab:averted_by_race"],
    )
    rep.add_section("Where our numbers sit relative to the JHU figures", narrative.jhu(r))
    rep.add_section("Threats to validity", narrative.threats(r))
    rep.add_section("Reproduce", narrative.reproduce(r))
    _put(rep, fig, tab, ["tab:monthly_series"])
    _relations(rep, r, tab)
    from decrimkit.studies.prosecutors import secondary  # the county overdose series (prosecutors study's design)

    secondary.add_to_report(
        rep, fips="24510", name="Baltimore City", start=date(2020, 3, 18), seed=seed, quick=quick,
        adds="What it adds: drug arrests measure what the police and prosecutor did (the policy's first stage); the "
        "overdose death rate asks whether the health outcome the policy is argued to protect moved, against other "
        "counties rather than another arrest series of the same city. It cannot separate the policy from COVID-19 "
        "and the fentanyl surge, which began the same month, and Baltimore City lies above most comparison counties' "
        "death rates, so the fit flags matter.",
    )
    s = r.summaries
    rep.add_reference(
        "Rouhani et al. 2021, JHU report",
        f"{JHU_AVERTED} possession and prostitution arrests averted, 2020-04..2021-05",
        ours=narrative.interval(s["jhu_window_averted"], "CDS arrests averted (all CDS charges)")
        + f", {JHU_WINDOW[0]}..{JHU_WINDOW[1]}; not comparable one to one",
    )
    prim = r.black_share.iloc[0]
    rep.add_reference(
        "Rouhani et al. 2021, JHU report",
        f"{PUBLISHED_BLACK_SHARE:.0%} of averted arrests in the Black community",
        ours=f"{prim['black_share']:.1%} (95% CI {prim['share_low']:.1%}..{prim['share_high']:.1%}) of "
        "2017-18 explicit possession arrests were of Black arrestees",
    )
    return rep.write()


def _put(rep: Report, fig: dict[str, tuple], tab: dict[str, tuple], names: list[str]) -> None:
    """Add figures ("fig:name") and tables ("tab:name") in the order given."""
    for item in names:
        kind, name = item.split(":")
        if kind == "fig":
            f, caption, source = fig[name]
            rep.add_figure(name, f, caption=caption, data=source)
        else:
            frame, caption, declared = tab[name]
            rep.add_table(name, frame, caption=caption, **declared)
