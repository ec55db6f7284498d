"""The Suffolk study's report: runs the analyses and writes figures, tables, results.json and text."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from decrimkit.plotting.did import event_study_plot
from decrimkit.plotting.iv import relative_effect_plot
from decrimkit.plotting.style import style
from decrimkit.reporting import Report
from decrimkit.results import p_clause
from decrimkit.studies.suffolk.analysis import (
    COVARIATES,
    MEMO_OUTCOMES,
    OUTCOMES,
    SUBGROUPS,
    fit_outcomes,
    memo_did,
    monte_carlo,
    summarise_mc,
)
from decrimkit.studies.suffolk.simulator import SuffolkConfig, calibrate, simulate

__all__ = ["write_report"]

SIMULATED = (
    "**Every number in this report comes from simulated data.** The case-level data of Agan, Doleac & "
    'Harvey ("Misdemeanor Prosecution", NBER WP 28600; QJE 2023) are not public. The simulator '
    "reproduces their design (ADAs as-if randomly assigned within court-by-month strata), their sample size "
    "(N = {n:,} cases; ELS blog and Rutgers release), their non-prosecution share ({share:.1%}; Rutgers "
    "release) and, by construction, their published relative effects of non-prosecution on outcomes within "
    "two years: {ra:.0%} on the probability of a new criminal complaint and {rc:.0%} on the number of new "
    "complaints (SSRN 2022 / QJE abstract). The complier means under prosecution are set near the values "
    'implied by the 2021 NBER draft ("-33 pp = -58%" gives {ma:.3f}; "-2.1 = -69%" gives {mc:.2f}). Everything '
    "else (covariates, the number of courts and ADAs, the spread of ADA leniency, the memo's effect) is an "
    "assumption, listed in the calibration table. The study shows that the estimator recovers a known truth "
    "and how precise it is at this sample size; it is **not** evidence about Suffolk County."
)

PARTNER = """A partner with real case data does not need this simulator. Export one row per case to a CSV in the
project's `data/` folder with these columns (names can differ; the plan maps them):

| column | meaning |
|---|---|
| `ada` | arraigning assistant district attorney (any id) |
| `court` | court or division |
| `month` | arraignment month, `YYYY-MM` |
| `not_prosecuted` | 1 if the case was not prosecuted (declined, dismissed at arraignment), 0 otherwise |
| `any_new_complaint` | 1 if a new criminal complaint followed within 2 years, else 0 |
| `n_new_complaints` | number of new complaints within 2 years |
| covariates | numeric, e.g. `age`, `male`, `black`, `prior_complaints`, `listed_charge` (0/1) |

Then run `decrimkit run docs/examples/plan_suffolk.toml` (after pointing `data.path` at the file). The
plan calls `iv.leniency` once per outcome with strata `court` x `month`; the report never writes
row-level data and suppresses small counts."""


def _relative_frame(fits: dict[str, Any], truth: dict[str, float]) -> pd.DataFrame:
    rows = []
    for col, (label, key, published) in OUTCOMES.items():
        t = fits[col].tidy().set_index("term").loc["relative_effect"]
        rows.append(
            {
                "outcome": label,
                "estimate": t["estimate"],
                "conf_low": t["conf_low"],
                "conf_high": t["conf_high"],
                "truth": truth[f"relative_{key}"],
                "published": published,
            }
        )
    return pd.DataFrame(rows)


def _iv_table(fits: dict[str, Any], truth: dict[str, float]) -> pd.DataFrame:
    frames = []
    for col, (label, key, _) in OUTCOMES.items():
        t = fits[col].tidy()
        t.insert(0, "outcome", label)
        t["truth"] = t["term"].map(
            {
                "late": truth[f"late_{key}"],
                "complier_mean_untreated": truth[f"complier_mean_{key}"],
                "relative_effect": truth[f"relative_{key}"],
            }
        )
        frames.append(t)
    return pd.concat(frames, ignore_index=True)


def _memo_figure(memo: Any) -> Any:
    with style():
        fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.6))
    for ax, (col, (label, _)) in zip(axes, MEMO_OUTCOMES.items()):
        event_study_plot(
            memo.event_study[col].plot_data(), ax=ax, title=label, ylabel="effect (listed - other charges)"
        )
        ax.set_xlabel("panel months since April 2019 (March 2019 dropped: -1 = February 2019)")
    return fig


def write_report(out: Path, *, seed: int, quick: bool, config: SuffolkConfig, n_reps: int) -> Path:
    """Simulate, estimate and write the report; return the output folder."""
    cal = calibrate(config)
    sim = simulate(seed=seed, config=config, calibration=cal)
    fits = fit_outcomes(sim.cases)
    memo = memo_did(seed=seed + 1, config=config, calibration=cal)
    reps = monte_carlo(n_reps, seed=seed + 2, n_cases=config.n_cases, config=config, calibration=cal)
    mc = summarise_mc(reps)

    rep = Report(
        "suffolk",
        out=out,
        seed=seed,
        quick=quick,
        title="Suffolk County, MA: misdemeanour non-prosecution (simulated data calibrated to Agan, Doleac & Harvey)",
        command="decrimkit study suffolk" + (" --quick" if quick else "") + (f" --seed {seed}" if seed else ""),
    )
    main_fit = fits["any_new_complaint"]
    rep.add_section(
        "Simulated data: read this first",
        SIMULATED.format(
            n=config.n_cases,
            share=config.nonprosecution_share,
            ra=config.relative_effect_any,
            rc=config.relative_effect_count,
            ma=config.complier_mean_any,
            mc=config.complier_mean_count,
        ),
    )
    rep.add_table(
        "calibration",
        config.as_table(),
        not_counts="all",
        caption="Every calibration target and assumption of the simulator",
    )
    rep.add_section(
        "Design",
        (
            "Cases are assigned to ADAs as-if randomly within court-by-month strata. An ADA's leniency is the "
            "leave-one-out mean of the non-prosecution decision over the ADA's other cases, after residualising "
            "the decision on strata fixed effects. 2SLS of each outcome on non-prosecution, instrumented by "
            "leniency, with strata fixed effects and covariates "
            f"({', '.join(COVARIATES)}), SEs from the delete-one-ADA jackknife, estimates the LATE for compliers: cases whose "
            "prosecution depends on the ADA drawn. The relative effect divides it by the compliers' mean outcome "
            "under prosecution, itself the 2SLS coefficient of Y(1-D) on (1-D). The simulator's truth is the "
            "2SLS estimand of its own design, computed from the ADA rosters and a large reference sample; its "
            "relative effects equal the published ones exactly."
        ),
    )
    fig = main_fit.plot("first_stage")
    rep.add_figure(
        "first_stage",
        fig,
        caption=(
            f"Leniency distribution and non-prosecution rate by leniency bin (simulated). First-stage "
            f"coefficient {main_fit.first_stage:.3f}, effective F {main_fit.effective_f:.0f}."
        ),
    )
    rep.add_table(
        "iv_estimates",
        _iv_table(fits, sim.truth),
        not_counts="all",
        caption="First stage, reduced form, OLS, 2SLS, complier mean under prosecution and relative effect, "
        "with the simulator's truth",
    )
    rep.add_figure(
        "relative_effects",
        relative_effect_plot(_relative_frame(fits, sim.truth)),
        caption=(
            "2SLS effects relative to the complier mean under prosecution (95% CI), the simulation truth and the "
            "published values (Agan, Doleac & Harvey)."
        ),
    )
    f_j, p_j, d1, d2 = main_fit.balance_joint
    bal = main_fit.balance.copy()
    rep.add_table(
        "balance",
        bal,
        not_counts="all",
        caption=(
            f"Balance: each covariate and the predicted-outcome index regressed on leniency (strata FE, SEs by ADA). "
            f"Joint F({d1}, {d2}) of leniency on all covariates = {f_j:.2f}, {p_clause(p_j)}."
        ),
    )
    rep.add_table(
        "monotonicity",
        main_fit.monotonicity,
        count_columns=("n_cases", "reverse_n_cases"),
        not_counts=("level",),
        caption=(
            f"First stage within subgroups ({', '.join(SUBGROUPS)}), with leniency from all cases and from the "
            "other subgroups only (reverse sample)."
        ),
    )
    rep.add_table(
        "compliers",
        main_fit.compliers,
        not_counts="all",
        caption=(
            f"Complier characteristics (2SLS of X*D on D; ratio to the sample mean as in Dahl et al. 2014). Complier "
            f"share {main_fit.complier_share:.3f}."
        ),
    )
    _memo_part(rep, memo, config)
    rep.add_table(
        "monte_carlo",
        mc,
        not_counts="all",
        caption=(
            f"Monte Carlo over {n_reps} simulated data sets of {config.n_cases:,} cases: bias, RMSE and coverage of the "
            "nominal 95% interval of the 2SLS estimates (NumPy engine, no covariates), by variance estimator."
        ),
    )
    rep.add_section("Monte Carlo", _mc_text(mc, n_reps, quick))
    _results(rep, fits, sim.truth, memo, mc, config)
    rep.add_section("Using real case data", PARTNER)
    from decrimkit.studies.prosecutors import secondary  # the county overdose series (prosecutors study's design)

    secondary.add_to_report(
        rep, fips="25025", name="Suffolk County, MA", start=date(2019, 3, 25), seed=seed, quick=quick,
        adds="What it adds: everything above runs on simulated cases; this is the study's one estimate from real data, "
        "on a different outcome (the county's overdose death rate, not re-offending) with the Rollins memo's county "
        "as the treated unit against comparison counties. It is an aggregate of the whole county, so any effect of "
        "non-prosecution on the defendants concerned is diluted in it, and 2020-2022 carry COVID-19 and fentanyl.",
    )
    for col, (label, key, published) in OUTCOMES.items():
        rep.add_reference(
            "Agan, Doleac & Harvey (QJE 2023 abstract; SSRN 2022)",
            f"{label}: {published:.0%} relative",
            ours=f"simulated truth {sim.truth[f'relative_{key}']:.0%} (by construction); estimate "
            f"{fits[col].relative:.1%} (se {fits[col].relative_se:.1%})",
        )
    rep.add_reference(
        "Agan, Doleac & Harvey (Rollins memo)",
        '"similar beneficial effects" (qualitative; no coefficients)',
        ours=f"simulated memo effect on the new-complaint rate {memo.twfe['new_complaint_rate'].att:.3f}",
    )
    return rep.write()


def _memo_part(rep: Report, memo: Any, config: SuffolkConfig) -> None:
    rows = []
    for col, (label, tkey) in MEMO_OUTCOMES.items():
        t = memo.twfe[col].tidy().iloc[0]
        pre = memo.event_study[col].pretest()
        rows.append(
            {
                "outcome": label,
                "estimate": t["estimate"],
                "se": t["se"],
                "conf_low": t["conf_low"],
                "conf_high": t["conf_high"],
                "truth": memo.truth[tkey],
                "pretrend_F": pre.statistic,
                "pretrend_p": pre.p_value,
            }
        )
    n_cells = len(memo.cells)
    rep.add_section(
        "The 2019 memo",
        (
            f"DA Rollins' memo of {config.memo_date} made non-prosecution the presumption for 15 low-level offences. "
            f"The simulated memo window ({config.memo_start} to {config.memo_end}, ending before COVID-19 court "
            f"closures) has {config.n_listed_charges} listed and {config.n_other_charges} other charges; after the memo "
            f"a share {config.memo_shift:.0%} (an assumption) of listed-charge cases that would have been prosecuted are "
            f"not. Cases are aggregated to {n_cells} charge-by-month cells; March 2019 ({memo.n_dropped} cases, 7 of "
            "31 days after the memo) is dropped as a transition month. TWFE (`did.twfe`) and an event study "
            "(`did.event_study`, 12 leads and 10 lags binned at the ends, relative to February 2019, the last "
            "month kept before the memo; event time counts panel months) compare listed with other charges, SEs "
            "clustered by charge. The truth is the mean expected effect over listed-charge post-memo cells."
        ),
    )
    rep.add_table(
        "memo_did",
        pd.DataFrame(rows),
        not_counts="all",
        caption="Memo DiD (TWFE), the simulator's truth and the pre-trend test",
    )
    rep.add_figure(
        "memo_event_study",
        _memo_figure(memo),
        caption=("Event study of the memo: listed vs other charges, by months since April 2019 (simulated)."),
    )


def _mc_text(mc: pd.DataFrame, n_reps: int, quick: bool) -> str:
    lines = [
        f"{n_reps} replications{' (--quick)' if quick else ''}; coverage of the nominal 95% interval, with "
        "the default cluster-jackknife (CR3) standard errors and, for comparison, CR1 (linearmodels' "
        "clustered SEs):"
    ]
    for r in mc.itertuples(index=False):
        lines.append(
            f"- {r.vcov}, {r.outcome}, {r.scale}: coverage {r.coverage:.1%}, bias {r.bias:.4f}, "
            f"RMSE {r.rmse:.4f}, mean SE {r.mean_se:.4f} vs SD of estimates {r.sd_estimate:.4f}"
        )
    lines.append(
        "\nCR1 understates the sampling variance here because each ADA handles about a quarter of every "
        "court-month it works in, so the strata fixed effects absorb part of the ADA's own residuals; the "
        "jackknife re-estimates the strata means without the deleted ADA."
    )
    if quick:
        lines.append("\nWith 20 replications coverage is measured to about +/-5 points; run without --quick for 200.")
    return "\n".join(lines)


def _results(
    rep: Report, fits: dict[str, Any], truth: dict[str, float], memo: Any, mc: pd.DataFrame, config: SuffolkConfig
) -> None:
    for col, (label, key, _) in OUTCOMES.items():
        res = fits[col]
        tid = res.tidy().set_index("term")
        for term, name, unit in (
            ("late", f"late_{key}", "outcome units per case (simulated)"),
            ("relative_effect", f"relative_{key}", "share of the complier mean"),
            ("complier_mean_untreated", f"complier_mean_{key}", "outcome units (simulated)"),
        ):
            r = tid.loc[term]
            rep.add_result(
                name,
                estimate=r["estimate"],
                se=r["se"],
                conf_int=(r["conf_low"], r["conf_high"]),
                n=res.n_cases,
                method="iv.leniency (2SLS, leave-out ADA leniency, strata FE, ADA jackknife SEs)",
                unit=unit,
                p_value=r["p_value"],
                note=f"{label}; simulated data",
            )
        for t in ("late", "relative", "complier_mean"):
            rep.add_result(
                f"truth_{t}_{key}",
                estimate=truth[f"{t}_{key}"],
                method="simulator (2SLS estimand)",
                unit="simulated truth",
                note=label,
            )
    main_fit = fits["any_new_complaint"]
    rep.add_result(
        "first_stage_effective_f",
        estimate=main_fit.effective_f,
        n=main_fit.n_cases,
        method="Montiel Olea-Pflueger effective F (= robust Wald F with jackknife SEs, one instrument)",
        unit="F",
    )
    rep.add_result(
        "balance_joint_p",
        estimate=main_fit.balance_joint[1],
        method="clustered Wald F of covariates on leniency",
        unit="p-value",
    )
    for col, (_, tkey) in MEMO_OUTCOMES.items():
        fit = memo.twfe[col]
        ci = fit.conf_int().iloc[0].to_numpy()
        rep.add_result(
            f"memo_{col}",
            estimate=fit.att,
            se=float(fit.se[0]),
            conf_int=(ci[0], ci[1]),
            n=len(memo.cells),
            method="did.twfe, charge-by-month cells, SEs by charge",
            unit="rate (simulated)",
            note=f"truth {memo.truth[tkey]:.4f}; simulated data",
        )
    for r in mc.itertuples(index=False):
        key = ("any" if r.outcome.startswith("P(") else "count") + (
            "_late" if r.scale.startswith("abs") else "_relative"
        )
        rep.add_result(
            f"mc_coverage_{key}_{r.vcov}",
            estimate=r.coverage,
            n=int(r.n_reps),
            method=f"Monte Carlo, 95% normal CI, {r.vcov} SEs",
            unit="share of replications",
            note=f"bias {r.bias:.5f}, RMSE {r.rmse:.5f}",
        )
