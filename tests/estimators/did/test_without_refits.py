"""Few-treated inference computed from the observed design instead of by refitting, checked against refits.

Randomization: ``did.twfe`` and ``did.event_study`` reassign every adoption date at once (Frisch-Waugh-Lovell
on the reassigned indicators, ``estimators/did/_twfe_perm.py`` and ``_event_perm.py``) and ``did.imputation`` solves every
reassignment's first stage in batches (unit effects eliminated, ``_imputation_perm.py``). Conley-Taber and
Ferman-Pinto: ``twfe`` and ``event_study`` through their least-squares map, ``imputation`` through BJS's
implied weights, ``att_gt`` through one fit per treated unit. Each is compared here with the generic path,
which refits the estimator on a panel with the other adoption dates (randomization) or with one control's
residuals on one treated unit (Conley-Taber, Ferman-Pinto): balanced and unbalanced panels, weights, a
covariate, anticipation, chosen horizons. The p-values' exactness against a brute force over rebuilt data
frames is ``test_few_treated.py``'s."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from decrimkit import Panel
from decrimkit.errors import DesignError, FewTreatedWarning
from decrimkit.estimators import did
from decrimkit.estimators.did._cs_cells import cell_estimates
from decrimkit.estimators.did._cs_design import cell_design
from decrimkit.estimators.did._event_result import horizon_weights
from decrimkit.estimators.did._event_study import relative_time
from decrimkit.estimators.did._first_stage import first_stage
from decrimkit.estimators.did._inference import randomization, residual
from decrimkit.estimators.did._ols import fe_ols
from decrimkit.estimators.did._reg_design import row_weights
from decrimkit.estimators.did._twfe import _fit

# staggered designs: the treated units (unit: adoption period) come first, the rest are never treated
TWFE = {"n_units": 12, "n_periods": 7, "cohorts": {0: 3, 1: 4, 2: 4}}
IMPUTATION = {"n_units": 14, "n_periods": 8, "cohorts": {0: 4, 1: 5, 2: 5, 3: 6}}
CONTRIB = {"n_units": 17, "n_periods": 7, "cohorts": {0: 3, 1: 4, 2: 4}}
MONTHLY = {"n_units": 37, "n_periods": 120, "cohorts": {0: 40, 1: 60}}


def _frame(seed: int, *, n_units: int, n_periods: int, cohorts: dict[int, int], drop: int = 0) -> pd.DataFrame:
    """Unit effects, a trend, a time-varying covariate ``x``, an effect of 0.5 and unit sizes ``pop``;
    ``drop``: that many interior rows of never-treated units removed (each keeps its first and last period)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_units):
        a, size = rng.normal(), rng.uniform(1e4, 1e6)
        for t in range(n_periods):
            g = cohorts.get(i, 0)
            x = rng.normal()
            y = a + 0.2 * t + 0.4 * x + 0.5 * float(g > 0 and t >= g) + rng.normal()
            rows.append({"unit": i, "time": t, "g": g, "pop": size, "x": x, "y": y})
    df = pd.DataFrame(rows)
    if drop:
        never = ~df["unit"].isin(list(cohorts))
        pick = rng.choice(np.flatnonzero(never & df["time"].between(1, n_periods - 2)), size=drop, replace=False)
        df = df.drop(index=pick)
    return df


def _panel(df: pd.DataFrame) -> Panel:
    return Panel.from_frame(df, unit="unit", time="time", outcome="y", cohort="g", population="pop",
                            covariates=["x"], count=False)


# ------------------------------------------------------------------ randomization: every reassignment at once
@pytest.mark.parametrize(("drop", "weights", "covariates"), [
    (0, None, ()), (0, "population", ()), (0, None, ("x",)), (6, "population", ("x",))])
def test_twfe_randomization_batch_equals_refits(drop, weights, covariates):
    panel = _panel(_frame(3, **TWFE, drop=drop))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewTreatedWarning)
        res = did.twfe(panel, inference="randomization", weights=weights, covariates=covariates, n_perm=99,
                       max_exact=0, seed=11)

    def refit(p: Panel) -> np.ndarray:
        return _fit(p, covariates, "unit", weights).coef[:1]

    slow = randomization(panel, refit, n_perm=99, max_exact=0, seed=11, rows=(0,))
    inf = res.inference
    assert inf.stat.shape == slow.stat.shape == (100, 1) and not inf.exact
    assert inf.stat[0, 0] == pytest.approx(res.att, rel=1e-10)  # row 0: the observed assignment
    np.testing.assert_allclose(inf.stat, slow.stat, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(inf.dose, slow.dose, rtol=1e-8, atol=1e-10)
    assert res.p_value[0] == pytest.approx(slow.p_value(0.0)[0], abs=1e-12)
    np.testing.assert_allclose(inf.conf_int(0.1), slow.conf_int(0.1), rtol=1e-7)


@pytest.mark.parametrize("estimator", ["twfe", "event_study"])
def test_refuses_a_reassignment_the_fixed_effects_absorb(estimator):
    # one treated unit (date 3); unit 5 is observed only from period 3 on: the reassignment that hands it
    # date 3 treats it in every period it has and no other unit, so TWFE's indicator is its unit dummy (and the
    # event study's indicators, one per row of it from event time 0 on, sum to it, leaving no unit with leads)
    df = _frame(1, **{**TWFE, "cohorts": {0: 3}})
    df = df[~((df["unit"] == 5) & (df["time"] < 3))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewTreatedWarning)
        with pytest.raises(DesignError, match="absorb"):
            getattr(did, estimator)(_panel(df), inference="randomization", max_exact=10_000)


@pytest.mark.parametrize(("design", "drop", "opts"), [
    (TWFE, 0, {}),
    (TWFE, 0, {"weights": "population"}),
    (TWFE, 0, {"covariates": ("x",)}),
    (TWFE, 0, {"leads": 2, "lags": 2}),
    (TWFE, 6, {"weights": "population", "covariates": ("x",), "lags": 3}),
    # a state-by-month shape: the periods' Schur complement has its null eigenvalue at ~1e-15 of the largest
    (MONTHLY, 0, {"leads": 12, "lags": 24}),
])
def test_event_study_randomization_batch_equals_refits(design, drop, opts):
    panel = _panel(_frame(3, **design, drop=drop))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewTreatedWarning)
        res = did.event_study(panel, inference="randomization", n_perm=39, max_exact=0, seed=11, **opts)
    keep, covariates = res.label, tuple(opts.get("covariates", ()))
    leads, lags = opts.get("leads"), opts.get("lags")

    def refit(p: Panel) -> np.ndarray:
        e = relative_time(p)
        e = np.where(e <= -leads, -leads, e) if leads is not None else e
        e = np.where(e >= lags, lags, e) if lags is not None else e
        x = np.column_stack([(e == k).astype("float64") for k in keep] + [p.frame[c].to_numpy() for c in covariates])
        return fe_ols(p.y, x, [p.unit_index, p.time_index], names=tuple(map(str, range(x.shape[1]))),
                      weights=row_weights(p, opts.get("weights")), vcov="hetero").coef[:len(keep)]

    slow = randomization(panel, refit, n_perm=39, max_exact=0, seed=11)
    inf = res.inference
    assert inf.stat.shape == slow.stat.shape == (40, len(keep)) and not inf.exact
    np.testing.assert_allclose(inf.stat[0], res.estimate, rtol=1e-9, atol=1e-12)  # row 0: the observed assignment
    np.testing.assert_allclose(inf.stat, slow.stat, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(inf.dose, slow.dose, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(inf.p_value(0.0), slow.p_value(0.0), atol=1e-12)
    np.testing.assert_allclose(inf.conf_int(0.1), slow.conf_int(0.1), rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize(("drop", "opts"), [
    (0, {}),
    (0, {"weights": "population"}),
    (0, {"covariates": ("x",)}),
    (0, {"anticipation": 1}),
    (0, {"horizons": (0, 2)}),
    (7, {"weights": "population", "covariates": ("x",)}),
])
def test_imputation_randomization_batch_equals_refits(drop, opts):
    panel = _panel(_frame(3, **IMPUTATION, drop=drop))
    res = did.imputation(panel, inference="randomization", n_perm=99, max_exact=0, seed=11, **opts)
    kw = {"covariates": tuple(opts.get("covariates", ())), "anticipation": opts.get("anticipation", 0),
          "weights": opts.get("weights")}
    hs = res.spec.options["horizons"]

    def refit(p: Panel) -> np.ndarray:
        f = first_stage(p, cluster=None, **kw)
        w = horizon_weights(f, hs, kw["anticipation"])[1]
        return w[f.target].T @ f.resid[f.target]

    slow = randomization(panel, refit, n_perm=99, max_exact=0, seed=11, overall=True)
    inf = res.inference
    assert inf.stat.shape == slow.stat.shape == (100, len(hs) + 1) and not inf.exact
    np.testing.assert_allclose(inf.stat[0], refit(panel), rtol=1e-9, atol=1e-12)  # row 0: the observed one
    np.testing.assert_allclose(inf.stat, slow.stat, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(inf.dose, slow.dose, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(res.overall_inference(0.1)[1:4], (
        slow.p_value(0.0)[-1], *slow.conf_int(0.1)[-1]), rtol=1e-7, atol=1e-12)


def test_imputation_refuses_a_reassignment_without_an_untreated_period():
    # unit 6 is observed only from period 4 on; the reassignments handing it adoption date 4 leave it with
    # no untreated observation, so its unit effect is not identified (the refit refuses the same way)
    df = _frame(1, **{**IMPUTATION, "cohorts": {0: 4, 1: 5}})
    df = df[~((df["unit"] == 6) & (df["time"] < 4))]
    with pytest.raises(DesignError, match="no untreated observation before it"):
        did.imputation(_panel(df), inference="randomization", max_exact=10_000)


# ------------------------------------------------------------------ Conley-Taber, Ferman-Pinto: no refits per control
@pytest.mark.parametrize("method", ["conley_taber", "ferman_pinto"])
def test_least_squares_contributions_equal_refits(method):
    """did.twfe and did.event_study put each control's residuals on each treated unit through their linear
    map (coefficients = A'y) instead of refitting; the generic refit path must give the same draws
    (staggered dates, population weights, a time-varying covariate)."""

    panel = _panel(_frame(5, **CONTRIB))
    kw = {"inference": method, "weights": "population", "covariates": ("x",), "n_perm": 199, "max_exact": 0,
          "seed": 4}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewTreatedWarning)
        tw = did.twfe(panel, **kw)
        es = did.event_study(panel, **kw)
    k = len(es.estimate)

    def refit_twfe(p: Panel) -> np.ndarray:
        x = np.column_stack([p.frame["d"].to_numpy(dtype=float), p.frame["x"].to_numpy()])
        return fe_ols(p.y, x, [p.unit_index, p.time_index], names=("d", "x"), weights=p.frame["population"].to_numpy(),
                      vcov="hetero").coef[:1]

    keep = [int(t) for t in es.label[:k]]  # event times (the reference period omitted)

    def refit_es(p: Panel) -> np.ndarray:
        e = relative_time(p)
        x = np.column_stack([(e == j).astype(float) for j in keep] + [p.frame["x"].to_numpy()])
        return fe_ols(p.y, x, [p.unit_index, p.time_index], names=tuple(map(str, range(k + 1))),
                      weights=p.frame["population"].to_numpy(), vcov="hetero").coef[:k]

    for res, refit in ((tw, refit_twfe), (es, refit_es)):
        slow = residual(panel, refit, method, res.estimate[: res.inference.draws.shape[1]], covariates=("x",),
                        n_draws=199, max_exact=0, seed=4)
        assert res.inference.draws.shape == slow.draws.shape
        np.testing.assert_allclose(res.inference.draws, slow.draws, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("method", ["conley_taber", "ferman_pinto"])
def test_imputation_contributions_through_its_weights_equal_refits(method):
    """did.imputation is linear in the outcome through BJS's implied weights v*; its Conley-Taber and
    Ferman-Pinto contributions use them instead of refitting, and must equal refits (staggered dates,
    population weights, a time-varying covariate, horizons and the overall ATT)."""

    panel = _panel(_frame(6, **CONTRIB))
    opts = {"covariates": ("x",), "weights": "population"}
    res = did.imputation(panel, inference=method, n_perm=199, max_exact=0, seed=4, **opts)
    hs = res.spec.options["horizons"]

    def refit(p: Panel) -> np.ndarray:
        f = first_stage(p, anticipation=0, cluster=None, **opts)
        w = horizon_weights(f, hs, 0)[1]
        return w[f.target].T @ f.resid[f.target]

    slow = residual(panel, refit, method, refit(panel), covariates=("x",), n_draws=199, max_exact=0, seed=4,
                    overall=True)
    assert res.inference.draws.shape == slow.draws.shape and slow.draws.shape[1] == len(hs) + 1
    np.testing.assert_allclose(res.inference.draws, slow.draws, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize(("method", "opts"), [
    ("conley_taber", {"control": "never", "method": "dr"}),
    ("ferman_pinto", {"control": "notyet", "method": "reg", "base_period": "universal"}),
    ("conley_taber", {"control": "notyet", "method": "ipw"}),
    ("ferman_pinto", {"control": "never", "method": "dr", "covariates": ("x",)}),
    ("conley_taber", {"control": "never", "method": "dr_imp", "covariates": ("x",)}),
])
def test_att_gt_contributions_through_its_treated_map_equal_refits(method, opts):
    """did.att_gt's ATT(g,t) are linear in each unit's outcome differences given the design, so one fit per
    treated unit gives its coefficients in every cell; the Conley-Taber / Ferman-Pinto draws built from them
    must equal the generic path's N1 x N0 refits (cells, not only the aggregate)."""

    df = _frame(8, **CONTRIB)
    df["x"] = np.repeat(np.random.default_rng(4).normal(size=CONTRIB["n_units"]), CONTRIB["n_periods"])  # for the ps
    panel = _panel(df)
    res = did.att_gt(panel, inference=method, n_boot=0, n_perm=199, max_exact=0, seed=4, **opts)
    est = "dr" if opts["method"] == "dr_imp" else opts["method"]

    def refit(p: Panel) -> np.ndarray:
        design = cell_design(p, control=opts["control"], method=est, covariates=tuple(opts.get("covariates", ())),
                             anticipation=0, base_period=opts.get("base_period", "varying"), weights=None,
                             cluster=None, check_clusters=False)
        return cell_estimates(design, opts["method"])[0]

    slow = residual(panel, refit, method, refit(panel), covariates=tuple(opts.get("covariates", ())), n_draws=199,
                    max_exact=0, seed=4)
    k = slow.draws.shape[1]
    assert k == len(res.estimate) and k > 10
    np.testing.assert_allclose(res.inference.draws[:, :k], slow.draws, rtol=1e-8, atol=1e-11)
