"""Prosecutors (county) study: registry and donor rules checked against the raw files, and a quick run.

No published county-level estimates exist for these policies with these data, so no test asserts
agreement with a published number; the tests check the rules that build the design (above all that no
suppressed WONDER count enters an analysis) and that the study runs and writes finite, complete outputs.
"""

from __future__ import annotations

import csv
import gzip
import io
import json

import numpy as np
import pandas as pd
import pytest

import study_runs
from decrimkit.datasets import _loader
from decrimkit.errors import DataError
from decrimkit.studies.prosecutors import data, methods

pytestmark = pytest.mark.xdist_group("studies")


@pytest.fixture(scope="module")
def wonder():
    return data.wonder()


@pytest.fixture(scope="module")
def pools(wonder):
    return data.pools(wonder)


def _raw_wonder() -> list[dict[str, str]]:
    path = _loader.data_root() / "cdc_wonder_county_overdose" / "wonder_county_overdose_deaths_2010_2022.csv.gz"
    return list(csv.DictReader(io.StringIO(gzip.decompress(path.read_bytes()).decode("utf-8"))))


def test_donor_pool_rule_against_the_raw_file(pools):
    """Every eligible donor has 13 raw rows with a numeric death count and a positive population; every county
    with a suppressed or missing raw cell is out; the raw counts of each rule match the table."""
    by_fips: dict[str, list[dict[str, str]]] = {}
    for r in _raw_wonder():
        by_fips.setdefault(r["fips"], []).append(r)
    clean = {
        f
        for f, rs in by_fips.items()
        if len(rs) == 13
        and all(r["deaths"].isdigit() and r["deaths_status"] == "reported" for r in rs)
        and all(r["population"].isdigit() and int(r["population"]) > 0 for r in rs)
    }
    eligible = set(pools.eligible)
    assert eligible <= clean
    suppressed = {r["fips"] for rs in by_fips.values() for r in rs if r["deaths_status"] != "reported"}
    assert not eligible & suppressed
    registry = set(data.policy_registry()["county_fips"].dropna())
    states = {by_fips[f][0]["state_abbr"] for f in eligible}
    assert not eligible & registry and not states & {"OR", "WA", "VT", "CO"}
    # D3 removes exactly the D1-D2 survivors that are not clean in the raw text
    d12 = {f for f, rs in by_fips.items() if f not in registry and rs[0]["state_abbr"] not in {"OR", "WA", "VT", "CO"}}
    assert eligible == d12 & clean
    removed = pools.removed.set_index("rule")["removed"]
    assert removed.iloc[1] == 22 and removed.iloc[3] == len(d12 - clean)
    assert pools.removed["remaining"].iloc[3] == len(eligible) == 571
    # D4, the main pool: every county >= 250,000 in 2010 that passes D1-D3; D3 inside that band removes the rest
    big = {f for f in d12 if by_fips[f][0]["year"] == "2010" and by_fips[f][0]["population"].isdigit()
           and int(by_fips[f][0]["population"]) >= data.LARGE_COUNTY}
    assert set(pools.large) == big & clean and set(pools.large_not_reported) == big - clean
    assert removed.iloc[4] == len(eligible - big) and pools.removed["remaining"].iloc[4] == len(pools.large) == 219
    assert len(pools.large_not_reported) == 5


def test_suppressed_counts_never_reach_a_panel(wonder, pools):
    assert wonder.loc[wonder["deaths_status"] != "reported", "rate"].isna().all()
    suppressed = wonder.loc[wonder["deaths_status"] == "suppressed", "fips"].iloc[0]
    ev = data.registry_status()[1]
    with pytest.raises(DataError, match="suppressed or missing count"):
        data.county_panel(wonder, ev.iloc[[0]], [*pools.eligible[:5], suppressed])
    panel = data.county_panel(wonder, ev.iloc[[0]], list(pools.eligible[:5]))
    assert panel.n_units == 6 and np.isfinite(panel.frame["y"]).all()


def test_registry_rules():
    rows, ev = data.registry_status()
    assert len(rows) == 38 and len(ev) == 16  # 22 registry counties: 16 evaluable (see statuses)
    assert set(ev["model"]) == set(data.MODELS)
    used = rows[rows["status"] == "used"]
    assert not used["cannabis_only"].any() and not used["statewide"].any()
    harris = rows[rows["county_fips"] == "48201"]
    assert "fewer than 2 pre-years" in harris.iloc[0]["status"] and "48201" not in set(ev["fips"])
    assert set(rows.loc[rows["county_fips"].isin(["41051", "41017"]), "status"]) == {
        "in force under six months in every year (R6)"
    }
    phil = ev[ev["fips"] == "42101"].iloc[0]  # first policy: expanded diversion 2019-12, cohort 2020
    assert phil["model"] == "expanded_diversion" and phil["cohort"] == 2020 and "2020-01-01" in phil["later_policies"]
    assert (ev["n_pre"] >= data.MIN_PRE).all() and (ev["cohort"] <= data.LAST).all()


def test_nearest_by_size_uses_population_only(pools):
    near = data.nearest_by_size(pools, "24510", 10)
    assert len(near) == 10 and set(near) <= set(pools.large)
    lp = np.log(pools.pop2010.reindex(list(pools.large)).astype(float))
    gap = (lp - np.log(float(pools.pop2010["24510"]))).abs()
    assert gap[near].max() <= gap.drop(near).min()


def test_ny_arrest_panel():
    frame = data.ny_arrests()
    assert frame["fips"].nunique() == 62 and frame["year"].min() == 1990 and frame["year"].max() == 2019
    panel = data.ny_panel(frame, "36047")
    assert panel.n_units == 61  # Manhattan (treated 2019) left out of Brooklyn's pool
    rate = panel.frame.loc[panel.frame["unit"] == "36047", "rate"].to_numpy()
    k = frame[frame["fips"] == "36047"]
    np.testing.assert_allclose(rate, k["drug_misdemeanor"] / k["population"] * 1e5, rtol=1e-12)


# ----------------------------------------------------------------------------- quick end-to-end run
@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return study_runs.quick_run("prosecutors", 0, study_runs.shared_base(tmp_path_factory))


def test_quick_run_outputs(quick):
    for f in ("results.json", "provenance.json", "report.md", "report.html", "tables/county_effects.csv",
              "tables/registry_status.csv", "tables/pooled.csv", "tables/ny_arrests.csv", "figures/forest.png",
              "figures/pooled.png"):
        assert (quick / f).exists(), f
    res = {r["name"]: r for r in json.loads((quick / "results.json").read_text())["results"]}
    effects = pd.read_csv(quick / "tables" / "county_effects.csv", dtype={"fips": str})
    assert effects["fips"].nunique() == 4 and set(effects["model"]) == set(data.MODELS)  # quick: one per model
    assert np.isfinite(effects[["estimate", "pre_rmspe"]].to_numpy()).all()
    # an SCM interval is withheld exactly where the pre-period fit is poor (its placebo gaps cannot measure the bias);
    # an ASCM conformal set may be unbounded; every other row has a finite interval
    why = effects["why_no_interval"].fillna("")
    assert set(why) <= {"", *methods.NO_INTERVAL}
    withheld = why == "withheld_poor_prefit"
    poor = effects["flags"].fillna("").str.contains("poor pre-fit")
    assert (withheld == (poor & (effects["method"] == "SCM"))).all()
    assert effects.loc[withheld, ["conf_low", "conf_high"]].isna().all().all()
    assert (effects.loc[why == "unbounded_set", "method"] == "ASCM").all()
    assert (~np.isfinite(effects.loc[why == "unbounded_set", ["conf_low", "conf_high"]].to_numpy())).any(axis=1).all()
    shown = effects[why == ""]
    assert np.isfinite(shown[["conf_low", "conf_high"]].to_numpy()).all()
    for r in effects.itertuples():  # results.json gives an interval exactly where the table has one
        assert (res[f"{r.fips}_{r.method.lower()}"]["conf_int"] in (None, [None, None])) == bool(why[r.Index])
    assert (shown["conf_low"] <= shown["estimate"]).all() and (shown["estimate"] <= shown["conf_high"]).all()
    for m in data.MODELS:
        r = res[f"pooled_{m}"]
        assert np.isfinite(r["estimate"]) and r["conf_int"][0] < r["estimate"] < r["conf_int"][1]
        assert 0 <= res[f"pooled_{m}_p_negative"]["estimate"] <= 1
    for k in ("ny_36047_scm", "ny_36047_sdid", "ny_36061_scm", "ny_36061_sdid"):
        assert np.isfinite(res[k]["estimate"]) and res[k]["p_value"] is not None
    for f in effects["fips"].unique():
        assert (quick / "figures" / f"trajectory_{f}.png").exists()
    # the censored-likelihood variant: both comparisons for every model, the censored one with suppressed cells
    cens = pd.read_csv(quick / "tables" / "censored_likelihood.csv")
    assert len(cens) == 2 * len(data.MODELS) and cens["converged"].all()
    assert (cens.loc[cens["comparison"].str.startswith("censored"), "n_censored_cells"] > 0).all()
    assert (cens.loc[~cens["comparison"].str.startswith("censored"), "n_censored_cells"] == 0).all()
    assert np.isfinite(cens[["log_rate_ratio", "conf_low", "conf_high"]].to_numpy()).all()
    assert (cens["conf_low"] < cens["conf_high"]).all()  # Conley-Taber: need not contain the estimate
    assert f"censored_{data.MODELS[0]}" in res
    prov = json.loads((quick / "provenance.json").read_text())
    assert "cdc_wonder_county_overdose" in json.dumps(prov)


# ----------------------------------------------------------------------------- design-based power
def test_power_designs_use_the_population_only_pool(wonder, pools):
    from decrimkit.studies.prosecutors import power

    ev = data.registry_status()[1]
    designs = power.designs(wonder, pools, ev)
    assert [d.model for d in designs] == list(data.MODELS)
    for d in designs:
        assert d.states == pools.large and d.y.shape == (len(pools.large), data.N_YEARS)
        assert sorted(d.cohorts) == sorted(ev.loc[ev["model"] == d.model, "cohort"])
    # the series are the WONDER rates of those counties, never a suppressed cell
    w = wonder[wonder["fips"] == pools.large[0]].sort_values("year")
    np.testing.assert_allclose(designs[0].y[0], w["rate"].to_numpy(), rtol=1e-12)


@pytest.mark.parametrize("n_treated", [1, 2])
def test_power_shift_equals_refit_on_the_injected_panel(wonder, pools, n_treated):
    """Each replicate is fitted at no effect and shifted: the shifted record equals a refit on the panel with
    the effect injected (estimate, SE and interval), for imputation DiD and SDID (placebo and jackknife SE)."""
    from decrimkit.studies.policy_models.power import simulate_rep
    from decrimkit.studies.prosecutors import power

    ev = data.registry_status()[1]
    d = power.designs(wonder, pools, ev)[2]
    small = d._replace(cohorts=d.cohorts[:n_treated], states=d.states[:25], y=d.y[:25], deaths=d.deaths[:25],
                       population=d.population[:25])
    refit = pd.DataFrame(simulate_rep(small, 0, seed=3, deltas=(0.0, 7.5), estimators=power.ESTIMATORS, sdid_reps=8))
    # one treated county: imputation's clustered SE is refused (a named error, recorded), SDID uses placebos
    assert (refit["error"] != "").tolist() == [n_treated == 1 and e == "imputation" for e in refit["estimator"]]
    refit = refit[refit["error"] == ""]
    shifted = power.shift(refit[refit["delta"] == 0.0], (0.0, 7.5))
    cols = ["estimate", "se", "conf_low", "conf_high"]
    refit = refit.sort_values(["model", "estimator", "delta", "rep"], kind="stable").reset_index(drop=True)
    np.testing.assert_allclose(shifted[cols].to_numpy(), refit[cols].to_numpy(), rtol=1e-7, atol=1e-7)
    assert shifted[["estimator", "delta"]].equals(refit[["estimator", "delta"]])


def test_first_treated_year_rule_for_annual_data():
    """R5 on annual data: the first calendar year with six months in force (start on or before 1 July)."""
    from datetime import date

    from decrimkit.studies.prosecutors.secondary import first_treated_year

    assert first_treated_year(date(2020, 3, 18)) == 2020  # Baltimore City
    assert first_treated_year(date(2019, 3, 25)) == 2019  # Suffolk County, MA
    assert first_treated_year(date(2021, 7, 1)) == 2021 and first_treated_year(date(2021, 7, 2)) == 2022


def test_suppression_sensitivity_table_and_sentence(pools):
    """The full run's comparison of the main pools with the population-only pool: the table pairs each model's
    pooled effects and the sentence is computed from it (largest move; whether an interval changes side of zero)."""
    from decrimkit.studies.prosecutors import study as S

    summary = pd.DataFrame({"policy_model": ["case_by_case_declination", "all models"], "mean": [5.0, 4.0],
                            "low": [-1.0, -2.0], "high": [11.0, 9.0], "p_negative": [0.04, 0.08]})
    big = summary.assign(mean=[6.5, 3.5], low=[0.5, -2.5], analysis=f"{S.ALL_REPORTED} (D1-D3, no size rule, n=571)")
    other = summary.assign(analysis="confidence >= medium only (R2)")
    t = S._suppression_table(summary, pd.concat([other, big], ignore_index=True))
    assert list(t["policy_model"]) == ["case_by_case_declination", "all models"]
    np.testing.assert_allclose(t["difference"], [1.5, -0.5])
    text = S._suppression_text(pools, t, quick=False)
    assert "removes 2,407" in text and "leaves 219" in text and "removes only 5 of 224" in text and "at most 1.50" in text
    assert "changes whether it excludes zero" in text and "does not hinge" not in text
    t2 = S._suppression_table(summary, pd.concat([big.assign(low=[-0.5, -2.5])], ignore_index=True))
    assert "does not hinge on the suppression rule" in S._suppression_text(pools, t2, quick=False)


def test_mde_monte_carlo_se_matches_the_delta_method():
    """The bootstrap MC SE of an MDE against the delta method on a design whose power curve is known: estimates
    N(0, 1), SE 1 (normal 95% intervals), so power(d) = P(|Z + d| > 1.96), MDE = 1.96 + z_0.8 = 2.80, and
    MC SE(MDE) = sqrt(0.8 * 0.2 / n) / power'(MDE). The placebo-calibrated rows recompute their quantiles."""
    from scipy import stats

    from decrimkit.studies.prosecutors import power

    n, z = 400, stats.norm.ppf(0.975)
    e = np.random.default_rng(5).standard_normal(n)
    rec = pd.DataFrame({"model": "m", "estimator": "x", "delta": 0.0, "rep": np.arange(n), "estimate": e, "se": 1.0,
                        "conf_low": e - z, "conf_high": e + z})
    both = pd.concat([rec, power.calibrated(rec)], ignore_index=True)
    grid = np.round(np.arange(0, 5.01, 0.05), 2)
    out = power.mde_mcse(both, grid, seed=1).set_index("estimator")
    mde = z + stats.norm.ppf(0.8)
    slope = stats.norm.pdf(mde - z) + stats.norm.pdf(mde + z)
    expected = np.sqrt(0.8 * 0.2 / n) / slope  # 0.071
    assert out.loc["x", "mde_mcse"] == pytest.approx(expected, rel=0.25)  # 200 resamples: the SD's own MC error ~5%
    assert out.loc["x", "mde_unreached"] == 0.0
    # calibrated: MDE about q97.5 + z_0.8 of N(0, 1) (2.80); the recomputed quantiles add their MC error (SD ~0.13)
    assert 0.05 < out.loc["x (placebo-calibrated)", "mde_mcse"] < 0.4
    # identical replicates: no Monte Carlo error at all
    same = rec.assign(estimate=0.5, conf_low=0.5 - z, conf_high=0.5 + z)
    assert power.mde_mcse(same, grid, seed=1)["mde_mcse"].iloc[0] == 0.0


# ----------------------------------------------------------------------------- censored-likelihood variant
def _tiny_panel(y, censored_mask, log_pop):
    from decrimkit.studies.prosecutors import censored

    n, t = y.shape
    return censored.CensoredPanel(tuple(str(i) for i in range(n)), tuple(range(2010, 2010 + t)), y, censored_mask,
                                  log_pop, 1, np.array([0]), np.array([2012]))


def test_censored_likelihood_against_scipy_and_blind_to_the_hidden_count():
    """A reported cell adds log NB(y); a suppressed one log P(1 <= Y <= 9) (scipy's nbinom); the value stored in a
    suppressed cell is never read (0, 5, 99 or NaN give the same likelihood)."""
    from scipy import stats

    from decrimkit.studies.prosecutors import censored

    rng = np.random.default_rng(0)
    n, t = 3, 4
    y = rng.integers(0, 40, size=(n, t)).astype(float)
    cens = np.zeros((n, t), bool)
    cens[1, 2] = cens[2, 0] = True
    log_pop = np.log(rng.uniform(5e4, 2e5, size=(n, t)))
    panel = _tiny_panel(y, cens, log_pop)
    d = panel.treatment(np.array([0]), np.array([0]), np.array([2012]))
    params = np.concatenate([[-9.0, -8.5, -9.2], [0.1, -0.05, 0.2], [0.3, 0, 0, 0], [np.log(0.07)]])
    eta = log_pop + params[:n, None] + np.r_[0, params[n:n + t - 1]][None, :] + d @ params[n + t - 1:n + t + 3]
    mu, r = np.exp(eta), 1 / 0.07
    p = r / (r + mu)
    ll = np.where(cens, np.log(sum(stats.nbinom.pmf(k, r, p) for k in range(1, 10))), stats.nbinom.logpmf(y, r, p))
    w = np.ones(n)
    for hidden in (0.0, 5.0, 99.0, np.nan):
        yy = y.copy()
        yy[cens] = hidden
        got = float(censored.negloglik(params, yy, cens, log_pop, d, w))
        assert got == pytest.approx(-ll.sum(), rel=1e-12)
    # a weight of 0 takes a county out
    w0 = np.array([1.0, 0.0, 1.0])
    assert float(censored.negloglik(params, y, cens, log_pop, d, w0)) == pytest.approx(-(ll[0].sum() + ll[2].sum()), rel=1e-12)


def test_censored_fit_recovers_a_known_effect():
    """Simulated NB panel (300 counties, 13 years, alpha 0.05), 8 treated from 2016 with log rate ratio 0.3, every
    count of 1-9 censored (about 40% of the cells): the ML estimate is within 0.1 of 0.3 (about 2 SE: seeds 11-13 give 0.27, 0.33, 0.38)."""
    from decrimkit.studies.prosecutors import censored

    rng = np.random.default_rng(11)
    n, t, alpha, tau = 300, 13, 0.05, 0.3
    lp = rng.uniform(np.log(5e3), np.log(3e5), n)  # small counties: many counts of 1-9
    lp[:8] = np.log(5e5)
    log_pop = np.repeat(lp[:, None], t, axis=1)
    a = rng.normal(np.log(25e-5), 0.3, n)
    g = np.r_[0, np.cumsum(rng.normal(0.05, 0.05, t - 1))]
    treated = np.arange(8)
    base = _tiny_panel(np.zeros((n, t)), np.zeros((n, t), bool), log_pop)
    d = base.treatment(treated, np.zeros(8, int), np.full(8, 2016))
    mu = np.exp(log_pop + a[:, None] + g[None, :] + d[:, :, 0] * tau)
    y = rng.negative_binomial(1 / alpha, (1 / alpha) / (1 / alpha + mu)).astype(float)
    cens = (y >= 1) & (y <= 9)
    y[cens] = np.nan
    assert 0.3 < cens.mean() < 0.55
    panel = censored.CensoredPanel(base.fips, base.years, y, cens, log_pop, 8, np.zeros(8, int), np.full(8, 2016))
    r = censored.fit(panel, d, np.ones(n))
    assert r["converged"]
    assert r["tau"][0] == pytest.approx(tau, abs=0.1)
    assert r["alpha"] == pytest.approx(alpha, rel=0.3)


def test_censored_band_panel_against_the_raw_file(wonder, pools):
    """The censored panel censors exactly the raw file's suppressed cells of its counties (never a number there);
    the fully reported one has none and holds exactly the band's fully reported D1-D2 counties."""
    from decrimkit.studies.prosecutors import censored

    ev = data.registry_status()[1]
    raw: dict[tuple[str, int], dict[str, str]] = {(r["fips"], int(r["year"])): r for r in _raw_wonder()}
    cen = censored.band_panel(wonder, pools, ev, censor=True)
    full = censored.band_panel(wonder, pools, ev, censor=False)
    assert cen.fips[: len(ev)] == tuple(ev["fips"]) and not cen.censored[: len(ev)].any()
    for i, f in enumerate(cen.fips):
        for j, yr in enumerate(cen.years):
            r = raw[(f, yr)]
            assert cen.censored[i, j] == (r["deaths_status"] == "suppressed")
            if cen.censored[i, j]:
                assert np.isnan(cen.y[i, j])
            else:
                assert cen.y[i, j] == float(r["deaths"])
    assert not full.censored.any() and np.isfinite(full.y).all()
    assert set(full.fips[len(ev):]) == {f for f in pools.eligible if pools.pop2010[f] >= censored.BAND}
    assert set(full.fips) < set(cen.fips) and cen.censored[len(ev):].any(axis=1).sum() == len(cen.fips) - len(full.fips)
