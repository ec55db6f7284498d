"""Few-treated inference (issue 21, parts 1-2): randomization, Conley-Taber, Ferman-Pinto, wild, warnings.

Randomization p-values are checked against a brute-force loop over every assignment (refitting the
estimator on a rebuilt panel each time); Conley-Taber and Ferman-Pinto against the papers' formulas
computed here with plain NumPy (dummy-variable least squares, no decrimkit code).
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest

from decrimkit import Panel
from decrimkit.errors import DesignError, FewTreatedWarning, SpecificationError
from decrimkit.estimators import did
from decrimkit.inference.randomization import assignments, count_assignments


def _frame(n_units: int, n_periods: int, cohorts: list[float], seed: int = 0, pop: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    size = rng.uniform(2e4, 5e6, n_units)
    for i in range(n_units):
        ai = rng.normal()
        for t in range(n_periods):
            g = cohorts[i]
            d = float(np.isfinite(g) and t >= g)
            sd = np.sqrt(0.02 + 3e4 / size[i]) if pop else 1.0
            rows.append({"unit": i, "time": t, "g": g if np.isfinite(g) else 0, "pop": size[i],
                         "y": ai + 0.3 * t + 0.5 * d + sd * rng.normal()})
    return pd.DataFrame(rows)


def _panel(df: pd.DataFrame, pop: bool = False) -> Panel:
    return Panel.from_frame(df, unit="unit", time="time", outcome="y", cohort="g",
                            population="pop" if pop else None, count=False)


def _att(panel: Panel) -> float:
    """Plain TWFE point estimate (the few-treated warning is expected here and not the point)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewTreatedWarning)
        return did.twfe(panel).att


def _brute_force_p(df: pd.DataFrame, null: float = 0.0) -> float:
    """Every distinct reassignment of the cohorts across units, refitted from a rebuilt panel."""
    units = np.sort(df["unit"].unique())
    g_obs = df.groupby("unit")["g"].first().reindex(units).to_numpy()
    d_obs = ((df["time"] >= df["g"]) & (df["g"] > 0)).to_numpy(dtype=float)
    y0 = df["y"].to_numpy() - null * d_obs  # the sharp null: Y(0) = Y - tau D
    stats = []
    for perm in sorted(set(itertools.permutations(g_obs))):
        mapping = dict(zip(units, perm))
        f = df.assign(g=df["unit"].map(mapping), y=y0)
        stats.append(_att(_panel(f)) if tuple(perm) != tuple(g_obs) else np.nan)
    obs = _att(_panel(df.assign(y=y0)))
    stats = np.array(stats)
    stats[np.isnan(stats)] = obs
    return float(np.mean(np.abs(stats) >= np.abs(obs) - 1e-12))


@pytest.mark.parametrize("cohorts", [[2, 2, 0, 0, 0, 0], [2, 3, 0, 0, 0, 0]])
def test_randomization_p_value_is_exact_against_brute_force(cohorts):
    df = _frame(6, 5, [c if c else np.inf for c in cohorts], seed=3)
    res = did.twfe(_panel(df), inference="randomization")
    inf = res.inference
    n = count_assignments(np.array([c if c else np.inf for c in cohorts], dtype=float))
    assert inf.exact and inf.n_draws == n == (15 if cohorts[1] == 2 else 30)
    assert res.p_value[0] == pytest.approx(_brute_force_p(df), abs=1e-12)
    # the sharp null of a constant effect tau: the same brute force on Y - tau D
    for tau in (0.4, -1.0):
        assert inf.p_value(tau)[0] == pytest.approx(_brute_force_p(df, tau), abs=1e-12)
    # the interval is the set of tau not rejected: its ends are where the brute-force p crosses alpha
    alpha = 0.2
    lo, hi = res.conf_int(alpha).iloc[0].to_numpy()
    assert np.isfinite(lo) and np.isfinite(hi) and lo < res.att < hi
    eps = 1e-6 * (hi - lo)
    assert _brute_force_p(df, lo + eps) > alpha and _brute_force_p(df, hi - eps) > alpha
    assert _brute_force_p(df, lo - eps) <= alpha and _brute_force_p(df, hi + eps) <= alpha


def test_assignments_enumerate_every_distinct_reassignment_once():
    c = np.array([3.0, 3.0, 5.0, np.inf, np.inf, np.inf])
    rows, exact = assignments(c, max_exact=10_000)
    assert exact and rows.shape == (60, 6) == (count_assignments(c), 6)
    assert len({tuple(r) for r in rows}) == 60
    np.testing.assert_array_equal(rows[0], c)  # the observed assignment first
    mc, exact = assignments(c, max_exact=10, n_perm=50, seed=7)
    again, _ = assignments(c, max_exact=10, n_perm=50, seed=7)
    assert not exact and mc.shape == (51, 6)
    np.testing.assert_array_equal(mc, again)  # seeded


def test_randomization_monte_carlo_is_seeded_and_counts_the_observed_assignment():
    cohorts = [3.0] * 3 + [np.inf] * 17
    df = _frame(20, 6, cohorts, seed=1)
    a = did.twfe(_panel(df), inference="randomization", n_perm=99, max_exact=100, seed=5)
    b = did.twfe(_panel(df), inference="randomization", n_perm=99, max_exact=100, seed=5)
    assert not a.inference.exact and a.inference.n_draws == 100
    assert a.p_value[0] == b.p_value[0]
    assert a.p_value[0] * 100 == pytest.approx(round(a.p_value[0] * 100))  # (1 + #exceed) / (1 + n_perm)
    assert a.p_value[0] >= 0.01
    assert "Monte Carlo, 99 of 1,140 assignments, seed 5" in a.summary()


# --------------------------------------------------------------------------- Conley-Taber / Ferman-Pinto
def _twfe_by_hand(df: pd.DataFrame) -> tuple[float, np.ndarray]:
    """TWFE by dummy-variable least squares: (alpha_hat, residuals in frame order)."""
    units = np.sort(df["unit"].unique())
    times = np.sort(df["time"].unique())
    d = ((df["time"] >= df["g"]) & (df["g"] > 0)).to_numpy(dtype=float)
    ud = (df["unit"].to_numpy()[:, None] == units[None, :]).astype(float)
    td = (df["time"].to_numpy()[:, None] == times[None, 1:]).astype(float)
    x = np.column_stack([d, ud, td])
    b = np.linalg.lstsq(x, df["y"].to_numpy(), rcond=None)[0]
    return float(b[0]), df["y"].to_numpy() - x @ b


def _ct_by_hand(df: pd.DataFrame, fp: bool = False) -> tuple[float, np.ndarray]:
    """Conley & Taber (2011), Prop. 2 / eq. (9): W over all tuples of controls, one adoption date.

    Returns (alpha_hat, W draws); with ``fp`` the Ferman & Pinto (2019) rescaling by Var = A + B / M.
    """
    a_hat, resid = _twfe_by_hand(df)
    wide = df.assign(r=resid).pivot(index="unit", columns="time", values="r")
    g = df.groupby("unit")["g"].first()
    treated, controls = g.index[g > 0], g.index[g == 0]
    dpath = (wide.columns.to_numpy() >= g[treated[0]]).astype(float)
    dt = dpath - dpath.mean()
    denom = len(treated) * np.sum(dt**2)
    contrib = wide.loc[controls].to_numpy() @ dt / denom  # (N0,) one control in one treated unit's place
    per_treated = [contrib.copy() for _ in treated]
    if fp:
        m = df.groupby("unit")["pop"].first()
        z = np.column_stack([np.ones(len(controls)), 1 / m[controls].to_numpy()])
        coef = np.linalg.lstsq(z, contrib**2, rcond=None)[0]
        assert (z @ coef > 0).all()
        per_treated = [contrib * np.sqrt((coef[0] + coef[1] / m[j]) / (z @ coef)) for j in treated]
    draws = np.array([sum(c[k] for c, k in zip(per_treated, tup))
                      for tup in itertools.product(range(len(controls)), repeat=len(treated))])
    return a_hat, draws


def _equal_tailed(a_hat: float, w: np.ndarray, alpha: float) -> tuple[float, float, float]:
    w = np.sort(w)
    p = len(w)
    k = int(np.floor(p * alpha / 2)) + 1
    pval = min(1.0, 2 * min(np.mean(w <= a_hat), np.mean(w >= a_hat)))
    return pval, a_hat - w[p - k], a_hat - w[k - 1]


@pytest.mark.parametrize("n_treated", [1, 2])
@pytest.mark.parametrize("method", ["conley_taber", "ferman_pinto"])
def test_residual_methods_match_the_papers_formulas(method, n_treated):
    cohorts = [3.0] * n_treated + [np.inf] * 15
    fp = method == "ferman_pinto"
    df = _frame(len(cohorts), 7, cohorts, seed=11, pop=True)
    res = did.twfe(_panel(df, pop=True), inference=method)
    a_hat, w = _ct_by_hand(df, fp=fp)
    assert res.att == pytest.approx(a_hat, rel=1e-10)
    assert res.inference.exact and res.inference.draws.shape[0] == 15**n_treated
    np.testing.assert_allclose(np.sort(res.inference.draws[:, 0]), np.sort(w), rtol=1e-8, atol=1e-12)
    for alpha in (0.05, 0.2):
        p, lo, hi = _equal_tailed(a_hat, w, alpha)
        assert res.p_value[0] == pytest.approx(p, abs=1e-12)
        np.testing.assert_allclose(res.conf_int(alpha).iloc[0].to_numpy(), [lo, hi], rtol=1e-8)
        row = res.tidy(alpha).iloc[0]
        assert (row["conf_low"], row["conf_high"]) == pytest.approx((lo, hi), rel=1e-8)
        assert row["inference"] == method


def test_ferman_pinto_corrects_toward_the_small_treated_unit():
    # the treated unit is the smallest: its errors are the noisiest; FP widens the interval
    cohorts = [3.0] + [np.inf] * 15
    df = _frame(16, 7, cohorts, seed=11, pop=True)
    df.loc[df["unit"] == 0, "pop"] = 2e4
    ct = did.twfe(_panel(df, pop=True), inference="conley_taber")
    fp = did.twfe(_panel(df, pop=True), inference="ferman_pinto")
    assert np.diff(fp.conf_int().iloc[0].to_numpy())[0] > np.diff(ct.conf_int().iloc[0].to_numpy())[0]


def test_residual_methods_refuse_what_they_cannot_do():
    df = _frame(8, 5, [3.0, 3.0, 3.0, 3.0, np.inf, np.inf, np.inf, np.inf], seed=2)
    with pytest.raises(DesignError, match="never-treated"):
        did.twfe(_panel(df), inference="conley_taber")
    df = _frame(12, 5, [3.0] + [np.inf] * 11, seed=2)
    with pytest.raises(SpecificationError, match="population"):
        did.twfe(_panel(df), inference="ferman_pinto")


# --------------------------------------------------------------------------- one method per row (19.4)
@pytest.fixture(scope="module")
def castle():
    from decrimkit.datasets import load_dataset

    df = load_dataset("castle_doctrine")
    return Panel.from_frame(df, unit="state", time="year", outcome="l_homicide", cohort="effyear")


def test_event_study_wild_matches_wildboottest_per_coefficient(castle):
    """WCR with Webb weights on each event-time coefficient of castle doctrine (leads 3, lags 2, binned),
    against wildboottest on the dummy-variable regression (state and year dummies), coefficient by
    coefficient: p-values agree up to Monte Carlo error (two independent sets of 4999 draws)."""
    import statsmodels.api as sm
    from wildboottest.wildboottest import wildboottest

    res = did.event_study(castle, leads=3, lags=2, inference="wild", weights_dist="webb", n_boot=4999, seed=4)
    assert res.label == (-3, -2, 0, 1, 2)
    tid = res.tidy(alpha=0.1)
    assert (tid["inference"] == "wild").all()
    np.testing.assert_array_equal(tid[["conf_low", "conf_high"]].to_numpy(), res.inference.conf_int(0.1))
    text = res.summary()
    assert "restricted wild cluster bootstrap (WCR, webb weights, 4999 draws" in text
    assert "each tested on its own" in text
    f = castle.frame
    e = np.clip(f["t"].to_numpy() - f["g"].to_numpy(), -3, 2)  # never treated: -inf, no dummy
    dummies = np.column_stack([(e == k).astype(float) for k in res.label])
    fe = pd.get_dummies(f[["unit"]].astype(str).assign(year=f["time"].astype(str)), drop_first=True, dtype=float)
    x = np.column_stack([dummies, np.ones(len(f)), fe.to_numpy()])
    model = sm.OLS(f["y"].to_numpy(), x)
    for j in (0, 2, 4):
        ref = wildboottest(model, param=f"x{j + 1}", cluster=pd.factorize(f["unit"])[0], B=4999, seed=4,
                           weights_type="webb", show=False)
        assert res.p_value[j] == pytest.approx(float(ref["p-value"].iloc[0]), abs=0.03), j


def test_wild_interval_at_any_alpha_is_the_wild_one(castle):
    res = did.twfe(castle, se_method="wild", n_boot=1999, seed=4)
    same = did.twfe(castle, inference="wild", n_boot=1999, seed=4)
    assert res.p_value[0] == same.p_value[0]  # se_method is an alias
    p = res.p_value[0]
    for alpha in (0.05, 0.1, 0.2):
        lo, hi = res.conf_int(alpha).iloc[0].to_numpy()
        # the interval contains 0 exactly when the wild p-value does not reject at alpha
        assert (lo < 0 < hi) == (p > alpha)
        tid = res.tidy(alpha).iloc[0]
        assert (tid["conf_low"], tid["conf_high"]) == (lo, hi) and tid["inference"] == "wild"
    cr1 = did.twfe(castle)
    assert not np.allclose(res.conf_int(0.1).iloc[0].to_numpy(), cr1.conf_int(0.1).iloc[0].to_numpy())
    with pytest.raises(SpecificationError, match="disagree"):
        did.twfe(castle, se_method="wild", inference="randomization")


def test_summary_names_the_method_of_every_p_value(castle):
    for method, phrase in [("cluster", "t(49) with the standard errors shown"),
                           ("wild", "restricted wild cluster bootstrap"),
                           ("randomization", "randomization inference")]:
        kw = {"n_boot": 199} if method == "wild" else {"n_perm": 49} if method == "randomization" else {}
        text = did.twfe(castle, inference=method, **kw).summary()
        assert f"p-values and intervals: {phrase}" in text
        if method != "cluster":
            assert "null tested:" in text and "assumes:" in text


def test_subcluster_wild_bootstrap_draws_per_observation(castle):
    res = did.twfe(castle, inference="wild", bootcluster="obs", weights_dist="webb", n_boot=999, seed=1)
    assert res.inference.n_bootclusters == castle.n_obs and res.inference.n_clusters == 50
    assert "subcluster" in res.summary()
    lo, hi = res.conf_int().iloc[0].to_numpy()
    assert lo < res.att < hi


# --------------------------------------------------------------------------- the few-treated warning
def test_few_treated_warning_names_the_count_and_the_methods():
    df = _frame(12, 5, [3.0, 3.0] + [np.inf] * 10, seed=2)
    with pytest.warns(FewTreatedWarning, match="2 treated units.*inference='randomization'"):
        did.twfe(_panel(df))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        did.twfe(_panel(df), inference="randomization")  # a few-treated method: no warning


def test_few_treated_warning_on_the_estimators_without_a_few_treated_method():
    # sun_abraham and two_stage report cluster-robust errors only: they warn with the count
    df = _frame(12, 5, [2.0, 3.0, 3.0] + [np.inf] * 9, seed=2)
    for name, fit in (("sun_abraham", did.sun_abraham), ("two_stage", did.two_stage)):
        with pytest.warns(FewTreatedWarning, match=f"{name}: the estimate rests on 3 treated units"):
            fit(_panel(df))
    # without never-treated units sun_abraham compares with the last cohort: only the others count
    staggered = _frame(8, 6, [2.0, 3.0] + [5.0] * 6, seed=2)
    with pytest.warns(FewTreatedWarning, match="sun_abraham: the estimate rests on 2 treated units"):
        did.sun_abraham(_panel(staggered))


# --------------------------------------------------------------------------- every estimator, every option
@pytest.fixture(scope="module")
def stag():
    cohorts = [3.0, 3.0, 4.0] + [np.inf] * 9
    return _panel(_frame(12, 6, cohorts, seed=5, pop=True), pop=True)


def _fits(stag):
    fast = {"n_perm": 19, "max_exact": 0, "seed": 1}
    yield "twfe", lambda m: did.twfe(stag, inference=m, **fast)
    yield "event_study", lambda m: did.event_study(stag, inference=m, **fast)
    yield "imputation", lambda m: did.imputation(stag, inference=m, **fast)
    yield "att_gt", lambda m: did.att_gt(stag, n_boot=0, inference=m, **fast).aggregate("dynamic")
    yield "att_gt.simple", lambda m: did.att_gt(stag, n_boot=0, inference=m, **fast).aggregate("simple")


@pytest.mark.parametrize("method", ["randomization", "conley_taber", "ferman_pinto"])
def test_every_estimator_carries_the_method_into_tidy_and_summary(stag, method):
    for name, fit in _fits(stag):
        res = fit(method)
        tid = res.tidy(alpha=0.1)
        covered = tid["inference"] == method
        assert covered.any(), name
        # the interval of the rows a method covers comes from that method at that alpha
        rows = res._rows()
        ci = res.inference.conf_int(0.1)[: len(rows)]
        np.testing.assert_array_equal(tid.loc[rows, ["conf_low", "conf_high"]].to_numpy(), ci)
        np.testing.assert_array_equal(tid.loc[rows, "p_value"].to_numpy(), res.inference.p_value()[: len(rows)])
        text = res.summary()
        assert "p-values and intervals:" in text and "null tested" in text and "assumes" in text, name
        if res.overall is not None:  # the overall line uses the same method
            assert text.rstrip().endswith(f"{method})"), name


def test_att_gt_cells_and_poisson_randomization(stag):
    gt = did.att_gt(stag, n_boot=0, inference="randomization", n_perm=19, max_exact=0, seed=2)
    assert (gt.tidy()["inference"] == "randomization").all() and "randomization inference" in gt.summary()
    counts = _panel(_frame(12, 6, [3.0, 3.0, 4.0] + [np.inf] * 9, seed=5, pop=True).assign(
        y=lambda f: np.round(np.exp(f["y"] / 4) * 10)), pop=True)
    res = did.poisson(counts, inference="randomization", n_perm=19, max_exact=0, seed=2)
    assert 0 < res.p_value[0] <= 1 and np.isnan(res.conf_int().iloc[0].to_numpy()).all()  # a p-value, no inverted interval
    assert res.tidy()["inference"].iloc[0] == "randomization"
    with pytest.raises(SpecificationError, match="does not support inference='conley_taber'"):
        did.poisson(counts, inference="conley_taber")
    with pytest.raises(SpecificationError, match="does not support inference='wild'"):
        did.imputation(stag, inference="wild")


def test_imputation_randomization_is_exact_against_brute_force():
    cohorts = [2.0, 3.0, np.inf, np.inf, np.inf]
    df = _frame(5, 5, cohorts, seed=8)
    res = did.imputation(_panel(df), inference="randomization")
    assert res.inference.exact and res.inference.n_draws == 20
    g_obs = df.groupby("unit")["g"].first().to_numpy()
    stats = []
    for perm in sorted(set(itertools.permutations(g_obs))):
        f = df.assign(g=df["unit"].map(dict(enumerate(perm))))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FewTreatedWarning)
            stats.append(did.imputation(_panel(f)).overall[0])
    obs = res.overall[0]
    p = np.mean(np.abs(stats) >= abs(obs) - 1e-12)
    assert res.overall_inference()[1] == pytest.approx(p, abs=1e-12)


def test_report_rows_use_the_chosen_method(stag, tmp_path):
    """Report.add_result(name, result): the headline interval, p-value and note come from inference=."""
    import json

    from decrimkit.reporting import Report

    fit = did.imputation(stag, inference="conley_taber")
    rep = Report("demo", out=tmp_path / "demo", seed=0)
    rep.add_result("imp", fit, unit="outcome units")
    row = json.loads((rep.write() / "results.json").read_text())["results"][0]
    est, p, lo, hi, method = fit.overall_inference(0.05)
    assert method == "conley_taber" and row["estimate"] == pytest.approx(est, rel=1e-12)
    assert row["conf_int"] == pytest.approx([lo, hi], rel=1e-12) and row["p_value"] == pytest.approx(p, abs=1e-12)
    assert "Conley-Taber" in row["note"]


@pytest.mark.parametrize(("control", "method", "covariates"), [
    ("never", "dr", ()), ("notyet", "ipw", ()), ("never", "reg", ("x",)), ("notyet", "reg", ("x",))])
def test_att_gt_randomization_batch_equals_refits_on_reassigned_panels(control, method, covariates):
    # the batched path reuses the observed design; here every assignment is rebuilt from the data frame.
    # (A propensity score with a covariate cannot be fitted under every reassignment of one or two treated
    # units, as some separate a cohort; the covariate is exercised by the outcome regression.)
    cohorts = [2.0, 3.0, 3.0] + [np.inf] * 6
    df = _frame(9, 5, cohorts, seed=4)
    df["x"] = np.repeat(np.random.default_rng(1).normal(size=9), 5)
    opts = {"control": control, "method": method, "covariates": covariates, "n_boot": 0}

    def build(f: pd.DataFrame) -> Panel:
        return Panel.from_frame(f, unit="unit", time="time", outcome="y", cohort="g", covariates=["x"], count=False)

    fit = did.att_gt(build(df), inference="randomization", **opts)
    inf = fit.inference
    assert inf.exact and inf.n_draws == count_assignments(np.array(cohorts)) == 252
    g_obs = np.array(cohorts)
    rows, _ = assignments(g_obs, max_exact=10_000)
    d_obs = ((df["time"] >= df["g"]) & (df["g"] > 0)).to_numpy(dtype=float)
    k = len(fit.estimate)
    for i in (0, 1, 17, 130, 251):
        g = np.where(np.isfinite(rows[i]), rows[i] + 0, 0)  # positions equal the time labels 0..4 here
        f = df.assign(g=df["unit"].map(dict(enumerate(g))))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FewTreatedWarning)
            stat = did.att_gt(build(f), **opts).estimate
            dose = did.att_gt(build(f.assign(y=d_obs)), **opts).estimate
        np.testing.assert_allclose(inf.stat[i, :k], stat, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(inf.dose[i, :k], dose, rtol=1e-9, atol=1e-12)


def test_poisson_randomization_leaves_out_units_without_events():
    """Units with a zero count in every period are dropped by PPML under any assignment (separation), so the
    reassignments run over the units it keeps; a treated unit without events is refused by name."""
    df = _frame(9, 6, [3.0] + [np.inf] * 8, seed=11, pop=True)
    df = df.assign(y=np.round(np.exp(df["y"] / 4) * 10))
    df.loc[df["unit"].isin([6, 7]), "y"] = 0.0  # two small comparison units with no events
    res = did.poisson(_panel(df, pop=True), inference="randomization")
    assert res.inference.exact and res.inference.n_draws == 7  # the one date over the 7 units with events
    # brute force over those 7 units: the same statistic, each given the date in turn
    kept = [u for u in range(9) if u not in (6, 7)]
    stats = []
    for u in kept:
        f = df[df["unit"].isin(kept)].assign(g=lambda d, u=u: np.where(d["unit"] == u, 3.0, 0.0))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FewTreatedWarning)
            stats.append(did.poisson(_panel(f, pop=True), inference="cluster", cluster=None).estimate[0])
    stats = np.array(stats)
    assert res.estimate[0] == pytest.approx(stats[0], rel=1e-9)
    assert res.p_value[0] == pytest.approx(np.mean(np.abs(stats) >= np.abs(stats[0]) - 1e-12), abs=1e-12)
    df.loc[df["unit"] == 0, "y"] = 0.0  # the treated unit without events: nothing left to compare
    with pytest.raises(DesignError, match="every treated unit has a zero count in every period"):
        did.poisson(_panel(df, pop=True), inference="randomization")


def test_att_gt_and_poisson_few_treated_methods_run_with_one_treated_unit():
    # one treated unit among eight: the cluster-robust SE is refused, but the few-treated methods are built
    # for exactly this design and their refits on reassigned panels must not trip the few-clusters rule
    df = _frame(9, 6, [3.0] + [np.inf] * 8, seed=11, pop=True)
    one = _panel(df, pop=True)
    gt = did.att_gt(one, n_boot=0, inference="randomization")
    simple = gt.aggregate("simple")
    assert gt.inference.exact and gt.inference.n_draws == 9
    # brute force: the one adoption date given to each unit in turn, the overall ATT refitted each time
    units = np.sort(df["unit"].unique())
    stats = []
    for u in units:
        f = df.assign(g=np.where(df["unit"] == u, 3.0, 0.0))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FewTreatedWarning)
            stats.append(did.att_gt(_panel(f, pop=True), n_boot=0, inference="conley_taber").aggregate("simple").overall[0])
    stats = np.array(stats)
    obs = simple.overall[0]
    assert obs == pytest.approx(stats[0], abs=1e-12)
    assert simple.tidy()["p_value"].iloc[0] == pytest.approx(np.mean(np.abs(stats) >= np.abs(obs) - 1e-12), abs=1e-12)
    for method in ("conley_taber", "ferman_pinto"):
        res = did.att_gt(one, n_boot=0, inference=method).aggregate("simple")
        row = res.tidy().iloc[0]
        assert row["inference"] == method and np.isfinite([row["conf_low"], row["conf_high"]]).all()
    counts = _panel(df.assign(y=lambda f: np.round(np.exp(f["y"] / 4) * 10)), pop=True)
    res = did.poisson(counts, inference="randomization")
    assert res.inference.exact and res.inference.n_draws == 9 and 0 < res.p_value[0] <= 1
