"""Run the prosecutors study end to end and write its report."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from decrimkit.reporting import Report
from decrimkit.studies.policy_models.data import MODEL_LABELS
from decrimkit.studies.policy_models.power import cluster

from . import censored, data, figures, methods, power

UNIT = "deaths per 100,000 per year"
ALL_REPORTED = "all fully reported counties"
SETTINGS = {  # quick: what the tests run (one county per model, small pools, few replications)
    True: {"n_donors": 40, "grid": 21, "sdid_reps": 20, "sens_sdid_reps": 20, "n_perm": 9, "ny_reps": 20,
           "power": {"imputation": 40}, "scheduler": "synchronous"},
    # sens_sdid_reps: the all-fully-reported sensitivity's SDID placebo SEs (571 donors; 50 replications: the SE's
    # own Monte Carlo error about 10%); scheduler None: the per-county fits and the power grid run on a local Dask
    # cluster of two processes
    False: {"n_donors": None, "grid": 61, "sdid_reps": 200, "sens_sdid_reps": 50, "n_perm": 99, "ny_reps": 200,
            "power": {"imputation": 200, "sdid": 40}, "scheduler": None},
}


def _counties(ev: pd.DataFrame, quick: bool) -> pd.DataFrame:
    if not quick:
        return ev
    return ev.groupby("model", sort=False).head(1).reset_index(drop=True)


def _fit_county(panel: Any, fips: str, donors: list[str], cohort: int, n_pre: int, s: dict[str, Any], seed: int,
                all_reported: bool) -> list[methods.CountyEstimate]:
    """One treated county's estimates (a task of its own: the counties run in parallel in the full run)."""
    if all_reported:
        return [methods.sdid(panel, fips, donors, cohort, n_reps=s["sens_sdid_reps"], seed=seed)]
    out = [methods.scm(panel, fips, donors, cohort)]
    if n_pre >= 3:  # the ridge lambda's cross-validation needs two held-out pre-years
        out.append(methods.ascm(panel, fips, donors, cohort, grid_size=s["grid"]))
    out.append(methods.sdid(panel, fips, donors, cohort, n_reps=s["sdid_reps"], seed=seed))
    return out


def _per_county(df: pd.DataFrame, pools: data.Pools, ev: pd.DataFrame, s: dict[str, Any], seed: int,
                all_reported: bool = False, client: Any = None) -> tuple[list[methods.CountyEstimate], dict[str, list[str]]]:
    """SCM, ASCM and SDID per county on the main pool (D1-D4; quick: its 40 counties nearest in size), or
    (``all_reported``, the suppression sensitivity) SDID on every D1-D3 county. With a Dask ``client`` the
    counties run as parallel tasks; each is seeded by ``seed`` alone, so the estimates do not depend on it."""
    tasks, donors_of = [], {}
    for r in ev.itertuples():
        if all_reported:
            donors = list(pools.eligible)
        elif s["n_donors"] is None:
            donors = list(pools.large)
        else:
            donors = data.nearest_by_size(pools, r.fips, s["n_donors"])
        donors_of[r.fips] = donors
        panel = data.county_panel(df, ev[ev["fips"] == r.fips], donors)
        tasks.append((panel, r.fips, donors, int(r.cohort), int(r.n_pre), s, seed, all_reported))
    if client is None:
        results = [_fit_county(*t) for t in tasks]
    else:
        results = client.gather([client.submit(_fit_county, *t, pure=False) for t in tasks])
    return [e for res in results for e in res], donors_of


def _table(est: list[methods.CountyEstimate], ev: pd.DataFrame) -> pd.DataFrame:
    t = pd.DataFrame([e.row() for e in est])
    return ev[["fips", "county", "state", "model", "cohort", "confidence"]].merge(t, on="fips", how="right")


def _ny(seed: int, s: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, dict[str, pd.DataFrame]]]:
    frame = data.ny_arrests()
    rows, paths = [], {}
    for fips, (name, date, cohort) in data.NY_TREATED.items():
        panel = data.ny_panel(frame, fips)
        donors = sorted(set(frame["fips"]) - set(data.NY_TREATED))
        e1 = methods.scm(panel, fips, donors, cohort)
        e2 = methods.sdid(panel, fips, donors, cohort, n_reps=s["ny_reps"], seed=seed)
        for e in (e1, e2):
            rows.append({"county": name, "policy": f"cannabis declination {date}", "first_year": cohort, **e.row()})
        paths[fips] = {"SCM": e1.path, "SDID": e2.path}
    return pd.DataFrame(rows), paths


def run(out: str | Path = "outputs/prosecutors", *, seed: int = 0, quick: bool = False) -> Path:
    """Run the study and write ``results.json``, tables, figures and the report to ``out``.

    ``quick`` (the tests) evaluates the first qualifying county of each model only, against the 40
    main-pool counties nearest in size, with a 21-point conformal grid, 20 SDID placebo replications, 9 DiD
    placebo reassignments, 40 imputation power replicates and short MCMC chains, and skips the
    sensitivity analyses and SDID's power; the full run evaluates every qualifying county against the
    whole main pool (rules D1-D4) and runs the sensitivities.
    """
    s = SETTINGS[bool(quick)]
    df = data.wonder()
    rows, ev_all = data.registry_status()
    pools = data.pools(df)
    ev = _counties(ev_all, quick)
    rep = Report("prosecutors", out=out, seed=seed, quick=quick,
                 title="Prosecutor drug policies and county overdose deaths, by policy model",
                 command=f"decrimkit study prosecutors --seed {seed}" + (" --quick" if quick else ""))
    for name in ("cdc_wonder_county_overdose", "policy_registry", "ny_dcjs_county_arrests", "seer_county_population"):
        rep.use_dataset(name)

    # the full run: one local Dask cluster (two worker processes) for the per-county fits and the power grid
    with contextlib.ExitStack() as stack:
        client = None if s["scheduler"] == "synchronous" else stack.enter_context(cluster())
        est, donors_of = _per_county(df, pools, ev, s, seed, client=client)
        table = _table(est, ev)
        sdid_t = table[table["method"] == "SDID"]
        summary, _ = methods.pool(sdid_t, seed=seed, quick=quick)
        stag = []
        for model in data.MODELS:
            tr = ev[ev["model"] == model]
            if len(tr):
                st = methods.staggered(df, tr, list(pools.large), n_perm=s["n_perm"], seed=seed)
                stag.append({"model": model, **st})
        stag_t = pd.DataFrame(stag)
        sens = []
        if not quick:
            med = sdid_t[sdid_t["confidence"] != "low"]
            if med["model"].nunique() >= 1 and len(med) >= 2:
                sm, _ = methods.pool(med, seed=seed, quick=quick)
                sens.append(sm.assign(analysis="confidence >= medium only (R2)"))
            poor = set(table.loc[(table["method"] == "SCM") & table["flags"].str.contains("poor pre-fit"), "fips"])
            fit = sdid_t[~sdid_t["fips"].isin(poor)]
            if len(fit) >= 2:
                sf, _ = methods.pool(fit, seed=seed, quick=quick)
                sens.append(sf.assign(analysis=f"without counties SCM cannot fit before the policy ({', '.join(sorted(poor))})"))
            wide, _ = _per_county(df, pools, ev, s, seed, all_reported=True, client=client)
            wide_t = _table(wide, ev)
            sb, _ = methods.pool(wide_t, seed=seed, quick=quick)
            sens.append(sb.assign(analysis=f"{ALL_REPORTED} (D1-D3, no size rule, n={len(pools.eligible)})"))
        sens_t = pd.concat(sens, ignore_index=True) if sens else pd.DataFrame()
        cens_t = censored.compare(df, pools, ev, n_perm=s["n_perm"], seed=seed)
        supp_t = _suppression_table(summary, sens_t)
        power_t, mde_t = power.power_grid(power.designs(df, pools, ev_all), n_reps=s["power"], seed=seed, sdid_reps=s["sdid_reps"],
                                             scheduler="synchronous" if client is None else client.scheduler.address)
        ny_t, ny_paths = _ny(seed, s)

    # ---------------------------------------------------------------- results.json
    for r in table.itertuples():
        ci = None if r.why_no_interval else (r.conf_low, r.conf_high)
        unbounded = {"": "", "withheld_poor_prefit": "; interval withheld (poor pre-fit: the placebo gaps do not "
                                                     "measure this county's bias)",
                     "unbounded_set": f"; 95% set unbounded within the conformal grid [{r.conf_low:.3g}, "
                                      f"{r.conf_high:.3g}]: no finite interval"}[r.why_no_interval]
        rep.add_result(f"{r.fips}_{r.method.lower()}", estimate=r.estimate, se=None if not np.isfinite(r.se) else r.se,
                       conf_int=ci, p_value=r.p_value, method=r.method, unit=UNIT, label=f"{r.county} ({r.method})",
                       note=f"{r.county}, {r.model}, first treated year {r.cohort}; {r.inference}; "
                            f"pre-RMSPE {r.pre_rmspe:.2f}; {r.donors} donors{unbounded}"
                            + (f"; {r.flags}" if r.flags else ""))
    for r in summary.itertuples():
        rep.add_result(f"pooled_{r.policy_model.replace(' ', '_')}", estimate=r.mean, conf_int=(r.low, r.high),
                       method="bayes.pool (county SDID effects)", unit=UNIT,
                       note=("NOT CONVERGED (MCMC convergence gate failed): not a result; " if not r.converged else "")
                       + f"posterior mean and 95% interval; P(effect < 0) = {r.p_negative:.3f}; {r.n_counties} counties")
        rep.add_result(f"pooled_{r.policy_model.replace(' ', '_')}_p_negative", estimate=r.p_negative,
                       method="bayes.pool", unit="posterior probability")
    for r in stag_t.itertuples():
        rep.add_result(f"staggered_{r.model}", estimate=r.estimate, conf_int=(r.conf_low, r.conf_high),
                       p_value=r.p_value, method="did.imputation (BJS)", unit=UNIT,
                       note=f"{r.n_treated} treated counties vs {r.n_donors} donors; placebo reassignment of cohorts "
                            f"({r.n_perm} draws): rank p, Conley-Taber interval")
    for r in ny_t.itertuples():
        ci = None if r.why_no_interval else (r.conf_low, r.conf_high)
        why = f"; interval {methods.NO_INTERVAL[r.why_no_interval]}" if r.why_no_interval else ""
        rep.add_result(f"ny_{r.fips}_{r.method.lower()}", estimate=r.estimate, conf_int=ci, p_value=r.p_value,
                       se=None if not np.isfinite(r.se) else r.se, method=r.method, label=f"{r.county} arrests ({r.method})",
                       unit="drug misdemeanor arrests per 100,000 per year", note=f"{r.county}; {r.inference}{why}")
    for r in mde_t.itertuples():  # an MDE not reached on the grid, or no valid fit, is in the table and text only
        key = f"{r.model}_{r.estimator.replace(' (placebo-calibrated)', '_placebo')}"
        if np.isfinite(r.mde):
            rep.add_result(f"mde_{key}", estimate=r.mde,
                           method=f"design-based power, {r.estimator} on placebo counties", unit=UNIT,
                           note=f"80% power at 5% (two-sided), {r.adopters} placebo-treated counties among the "
                                f"{len(pools.large)} main-pool counties, {r.reps} replicates (Monte Carlo SE of the "
                                f"MDE {r.mde_mcse:.2f}, bootstrap over replicates); size at no "
                                f"effect {r.size:.2f}" + (f"; {r.note}" if r.note else ""))
        if np.isfinite(r.size):
            rep.add_result(f"size_{key}", estimate=r.size, method="design-based power",
                           unit="rejection rate of a true null at 5%")
    rep.add_result("main_pool_counties", estimate=float(len(pools.large)), method="count",
                   unit="comparison counties (rules D1-D4)")
    rep.add_result("size_floor", estimate=float(data.LARGE_COUNTY), method="rule D4", unit="2010 population")
    rep.add_result("size_band_not_reported", estimate=float(len(pools.large_not_reported)), method="count",
                   unit="counties of the size band that rule D3 removes",
                   note=f"of {len(pools.large) + len(pools.large_not_reported)} D1-D2 counties of the size band")
    with_interval = table.loc[table["why_no_interval"] == "", "fips"].nunique()  # at least one method's interval
    for r in cens_t.itertuples():
        key = "censored" if r.comparison.startswith("censored") else "censored_model_fully_reported"
        rep.add_result(f"{key}_{r.policy_model}", estimate=r.log_rate_ratio, conf_int=(r.conf_low, r.conf_high),
                       p_value=r.p_value, method="negative-binomial TWFE DiD (ML), censored likelihood",
                       unit="log rate ratio",
                       note=f"{r.comparison}: {r.n_counties} comparison counties ({r.n_partly_suppressed} partly "
                            f"suppressed, {r.n_censored_cells} cells censored to 1-9); placebo reassignment "
                            f"({r.placebo_fits} of {r.n_perm} fits converged): rank p, Conley-Taber interval"
                            + ("" if r.converged else "; NOT CONVERGED: not a result"))
    rep.add_result("n_counties_with_effect", estimate=float(with_interval), method="count",
                   unit="registry counties with an effect and interval")

    # ---------------------------------------------------------------- report
    rep.add_section("Summary", _summary(table, summary, stag_t, ny_t, rows, quick, pools))
    rep.add_section("Design", __import__("decrimkit.studies.prosecutors.data", fromlist=["x"]).__doc__)
    status = rows[["jurisdiction", "state", "county_fips", "model", "start", "cohort", "confidence", "status"]].copy()
    status["start"] = status["start"].dt.strftime("%Y-%m-%d")
    status["model"] = status["model"].astype(str)
    status["confidence"] = status["confidence"].astype(str)
    rep.add_table("registry_status", status, caption="Every registry row: used, or why not", not_counts="all")
    rep.add_table("donor_rules", pools.removed, not_counts="all",
                  caption="Comparison counties removed by each donor rule, in order (D1-D4 is the main pool)")
    notrep = pd.DataFrame({"fips": list(pools.large_not_reported)})
    rep.add_table("large_pool_not_reported", notrep, not_counts="all",
                  caption=f"Counties of the size band (D1-D2, 2010 population >= {data.LARGE_COUNTY:,}) that D3 removes: "
                          "they cannot enter without imputing a suppressed or missing cell, so they are left out")
    rep.add_section("Methods and inference", methods.__doc__.split("\n\n", 1)[1])
    rep.add_table("county_effects", table, not_counts="all",
                  caption=f"Per-county effects, {UNIT}, mean over the post-years to 2022 (interval 95%)")
    rep.add_figure("forest", figures.forest(table), caption="Per-county effects by policy model (95% intervals)")
    rep.add_table("pooled", summary, not_counts="all", caption="Bayesian pooling of county SDID effects (bayes.pool)")
    rep.add_figure("pooled", figures.pooled(summary), caption="Pooled effect per policy model and overall")
    rep.add_table("staggered_did", stag_t, not_counts="all",
                  caption="Staggered DiD (imputation) per model, placebo-reassignment inference")
    if len(sens_t):
        rep.add_table("sensitivity", sens_t, not_counts="all", caption="Pooled effects under alternative rules")
    rep.add_section("Sensitivity to the suppression rule", _suppression_text(pools, supp_t, quick))
    if len(supp_t):
        rep.add_table("suppression_sensitivity", supp_t, not_counts="all",
                      caption="Pooled effect per model: the main pool (D1-D4) vs every fully reported county (D1-D3, no size rule)")
    rep.add_section("Censored-likelihood variant", _censored_text(cens_t))
    rep.add_table("censored_likelihood", cens_t, not_counts="all",
                  caption="Negative-binomial DiD per model (log rate ratio): fully reported counties vs every county of "
                          f"the band (2010 population >= {censored.BAND:,}) with suppressed cells censored to 1-9")
    rep.add_section("Design-based power and minimum detectable effects", _power_text(mde_t, pools, s))
    rep.add_table("mde", mde_t, not_counts="all", caption=f"Minimum detectable effect ({UNIT}) at 80% power, per model")
    rep.add_table("power", power_t, not_counts="all", caption="Power, size, bias and coverage on placebo counties")
    rep.add_section("Mechanism: New York drug misdemeanor arrests", _ny_text(ny_t))
    rep.add_table("ny_arrests", ny_t, not_counts="all", caption="Drug misdemeanor arrests per 100,000 (DCJS, SEER)")
    for fips, paths in ny_paths.items():
        rep.add_figure(f"ny_trajectory_{fips}", figures.trajectory(paths, title=data.NY_TREATED[fips][0], start=data.NY_TREATED[fips][2],
                                                             ylabel="drug misdemeanor arrests per 100,000"),
                       caption=f"{data.NY_TREATED[fips][0]}: observed and counterfactual arrests")
    for r in ev.itertuples():
        paths = {e.method: e.path for e in est if e.fips == r.fips}
        rep.add_figure(f"trajectory_{r.fips}", figures.trajectory(paths, title=f"{r.county} ({MODEL_LABELS[r.model]})",
                                                            start=r.cohort, ylabel="overdose deaths per 100,000"),
                       caption=f"{r.county}: observed and counterfactual overdose death rates")
    return rep.write()


def _summary(table, summary, stag_t, ny_t, rows, quick, pools) -> str:
    n = table.loc[table["why_no_interval"] == "", "fips"].nunique()
    lines = [
        f"{'QUICK RUN (one county per model, few replications): not the study result. ' if quick else ''}"
        f"{n} registry counties have an effect with an interval (SCM, ASCM, SDID); "
        f"{int((rows['status'] == 'used').sum())} registry rows are used (the table `registry_status` gives every row's reason).",
        "",
        "Pooled effect per policy model (bayes.pool on the county SDID effects; posterior mean, 95% interval, P(effect < 0)):",
        "",
    ]
    for r in summary.itertuples():
        lines.append(f"- {MODEL_LABELS.get(r.policy_model, r.policy_model)}: {r.mean:+.2f} ({r.low:+.2f}, {r.high:+.2f}), "
                     f"P(<0) = {r.p_negative:.2f}, {r.n_counties} counties"
                     + ("" if r.converged else " [NOT CONVERGED: not a result]"))
    lines += ["", "Reading: the county policies are few per model, adopted mostly in 2018-2021 during the fentanyl "
              "surge and COVID-19, and several are low-confidence registry rows (dates or typology uncertain); "
              "post-periods are short (2-5 years for most counties, to 2022). An interval that includes zero is not "
              "evidence of no effect. No suppressed WONDER count is used: every analysis county is reported in all "
              f"13 years (rule D3; within the main pool's size band it removes {len(pools.large_not_reported)} of "
              f"{len(pools.large) + len(pools.large_not_reported)} counties; comparison counties: {len(pools.large)})."]
    return "\n".join(lines)


def _suppression_table(summary: pd.DataFrame, sens_t: pd.DataFrame) -> pd.DataFrame:
    """Per model: the pooled effect on the main pool next to the all-fully-reported pool's (full run only)."""
    if not len(sens_t):
        return pd.DataFrame()
    big = sens_t[sens_t["analysis"].str.startswith(ALL_REPORTED)]
    cols = ["policy_model", "mean", "low", "high", "p_negative"]
    t = summary[cols].merge(big[cols], on="policy_model", suffixes=("_main", "_all_reported"))
    t["difference"] = t["mean_all_reported"] - t["mean_main"]
    return t


def _suppression_text(pools: data.Pools, supp_t: pd.DataFrame, quick: bool) -> str:
    rem = pools.removed.set_index("rule")["removed"]
    d3 = int(rem[[r for r in rem.index if r.startswith("D3")][0]])
    n_band = len(pools.large) + len(pools.large_not_reported)
    parts = [f"CDC suppresses county counts of 1-9. No suppressed count is used as a number or imputed: every "
             f"analysis county is reported in all 13 years (rule D3). Applied to every county left after D1-D2, D3 "
             f"removes {d3:,} (most of them small), leaving {len(pools.eligible):,}; the main pool's size rule "
             f"(D4, 2010 population >= {data.LARGE_COUNTY:,}) then leaves {len(pools.large)}. Within that size band "
             f"D3 removes only {len(pools.large_not_reported)} of {n_band} counties (table "
             f"`large_pool_not_reported`), so the main analysis is chosen on population, not on the outcome. The "
             f"sensitivity pool drops the size rule: every D1-D3 county ({len(pools.eligible):,}), which adds the "
             f"smaller counties D3 admits only because their count never fell to 1-9 (selection on the outcome); "
             f"SDID and the pooling are rerun on it."]
    if quick or not len(supp_t):
        parts.append("The quick run skips this comparison.")
        return "\n\n".join(parts)
    i = int(np.argmax(np.abs(supp_t["difference"].to_numpy())))
    worst = supp_t.iloc[i]
    excl = lambda lo, hi: (lo > 0) | (hi < 0)  # noqa: E731
    same = (excl(supp_t["low_main"], supp_t["high_main"]) == excl(supp_t["low_all_reported"],
                                                                 supp_t["high_all_reported"])).all()
    parts.append(f"Across the models and the overall effect the pooled posterior mean moves by at most "
                 f"{abs(worst['difference']):.2f} {UNIT} ({MODEL_LABELS.get(worst['policy_model'], worst['policy_model'])}), "
                 + ("and no 95% interval changes whether it excludes zero: the result does not hinge on the suppression "
                    "rule." if same else "and at least one 95% interval changes whether it excludes zero: the result "
                    "depends on the pool (see the table)."))
    return "\n\n".join(parts)


def _conclusion(lo: float, hi: float) -> str:
    return "excludes zero (above)" if lo > 0 else "excludes zero (below)" if hi < 0 else "includes zero"


def _censored_text(cens_t: pd.DataFrame) -> str:
    """The censored-likelihood comparison in words, computed from its table."""
    head = " ".join(censored.__doc__.split("\n\n", 1)[1].split())
    full = cens_t[~cens_t["comparison"].str.startswith("censored")].set_index("policy_model")
    cen = cens_t[cens_t["comparison"].str.startswith("censored")].set_index("policy_model")
    lines = [head, ""]
    changed = []
    for m in cen.index:
        a, b = full.loc[m], cen.loc[m]
        ca, cb = _conclusion(a["conf_low"], a["conf_high"]), _conclusion(b["conf_low"], b["conf_high"])
        if ca != cb or np.sign(a["log_rate_ratio"]) != np.sign(b["log_rate_ratio"]):
            changed.append(MODEL_LABELS.get(m, m))
        lines.append(f"- {MODEL_LABELS.get(m, m)}: fully reported {a['log_rate_ratio']:+.3f} ({a['conf_low']:+.3f}, "
                     f"{a['conf_high']:+.3f}), {ca}; censored {b['log_rate_ratio']:+.3f} ({b['conf_low']:+.3f}, "
                     f"{b['conf_high']:+.3f}), {cb}")
    if len(cen):
        r = cen.iloc[0]
        lines += ["", f"The censored fit adds {int(r['n_counties']) - int(full.iloc[0]['n_counties'])} partly suppressed "
                  f"counties ({int(r['n_censored_cells'])} censored cells). "
                  + (f"The conclusion (sign, or whether the 95% interval excludes zero) changes for: {', '.join(changed)}."
                     if changed else "No model's conclusion (sign, or whether the 95% interval excludes zero) changes: "
                     "the suppression rule does not drive the per-model results of this model.")]
        if not (cens_t["converged"].all()):
            lines.append("At least one of these fits did not converge: its row is not a result.")
    return "\n".join(lines)


def _no_mde(r: Any) -> str:
    if not np.isfinite(r.size):
        return "; no valid fit (one placebo county: imputation's clustered SE needs two)"
    return f"; 80% power not reached up to {r.max_delta:g}"


def _power_text(mde_t: pd.DataFrame, pools: data.Pools, s: dict[str, Any]) -> str:
    head = "\n\n".join(power.__doc__.split("\n\n")[1:4])
    reps = ", ".join(f"{e} {n}" for e, n in s["power"].items())
    lines = [head, "", f"Replicates per model: {reps} (the quick run skips SDID); effect grid "
             f"{', '.join(f'{d:g}' for d in power.GRID)} {UNIT}. Each MDE's Monte Carlo SE is the SD of the MDE "
             f"over {power.N_BOOT} bootstrap resamples of its replicates (the placebo calibration recomputed in each).",
             ""]
    for r in mde_t.itertuples():
        mde = f"{r.mde:.1f}" if np.isfinite(r.mde) else _no_mde(r).lstrip("; ")
        mc = (f" (Monte Carlo SE {r.mde_mcse:.1f}" + (f"; not reached in {r.mde_unreached:.0%} of bootstrap resamples"
                                                      if r.mde_unreached > 0 else "") + ")") if np.isfinite(r.mde) else ""
        lines.append(f"- {MODEL_LABELS.get(r.model, r.model)}, {r.estimator} ({r.adopters} counties): MDE {mde}{mc}; "
                     f"size at no effect {r.size:.2f}" + (f" ({r.note})" if r.note else ""))
    return "\n".join(lines)


def _ny_text(ny_t: pd.DataFrame) -> str:
    parts = ["Brooklyn's (2014-07-08) and Manhattan's (2018-08-01) non-prosecution policies were cannabis-only, so they "
             "are out of scope for the overdose analysis (R1), but they are the registry's only policies with a "
             "county arrest series: DCJS adult drug misdemeanor arrests per 100,000 (SEER population), 1990-2019, "
             "against the other 60 New York counties (the other treated county left out). First treated year: the "
             "first with six months in force (2015, 2019). DCJS counts fingerprintable arrests: marijuana "
             "violations are not in the series, and the NYPD's November 2014 summons policy hit all five "
             "boroughs at once, so Brooklyn's estimate mixes the DA policy with that city-wide change; the other "
             "three boroughs are in the donor pool. Manhattan has one post-year (2019).", ""]
    for r in ny_t.itertuples():
        interval = f"(no interval: {methods.NO_INTERVAL[r.why_no_interval]})" if r.why_no_interval else (
            f"({r.conf_low:+.1f}, {r.conf_high:+.1f})")
        parts.append(f"- {r.county}, {r.method}: {r.estimate:+.1f} {interval}, "
                     f"p = {r.p_value:.3f}; pre-RMSPE {r.pre_rmspe:.1f} ({r.inference})")
    return "\n".join(parts)
