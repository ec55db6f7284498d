"""BJS imputation: exact least squares, equality with two-stage, diff-diff cross-checks, named errors.

REFERENCES.md section 4 has no bundled data for the didimputation README values (df_het is not
bundled), so the estimator is checked against a dense least-squares computation and against
diff-diff 3.13 ``ImputationDiD`` (whose default variance is documented as R didimputation parity).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from decrimkit import Panel
from decrimkit.datasets import load_dataset
from decrimkit.errors import DesignError, SpecificationError
from decrimkit.estimators import did

RTOL = 1e-6  # closed-form least squares in both implementations


def simulate_staggered(seed: int = 0, n_units: int = 60, n_periods: int = 8, drop: float = 0.05) -> pd.DataFrame:
    """Staggered adoption with heterogeneous, growing effects, a time-varying covariate, weights, gaps."""
    rng = np.random.default_rng(seed)
    cohort = rng.choice([0, 3, 5, 6], size=n_units)
    unit = np.repeat(np.arange(n_units), n_periods)
    year = np.tile(np.arange(1, n_periods + 1), n_units)
    g = cohort[unit]
    e = np.where(g > 0, year - g, -99)
    x = rng.standard_normal(unit.size) + 0.1 * year
    effect = np.where((g > 0) & (e >= 0), 1.0 + 0.3 * e + 0.2 * (g == 3), 0.0)
    y = rng.standard_normal(n_units)[unit] + 0.2 * year + 0.5 * x + effect + rng.standard_normal(unit.size)
    frame = pd.DataFrame(
        {"id": unit, "year": year, "y": y, "first": g, "x": x, "w": rng.uniform(0.5, 2.0, n_units)[unit]}
    )
    keep = rng.uniform(size=len(frame)) > drop
    keep[frame["year"].to_numpy() == 1] = True  # every unit keeps an untreated first period
    return frame[keep].reset_index(drop=True)


@pytest.fixture(scope="module")
def mpdta() -> Panel:
    return Panel.from_frame(load_dataset("mpdta"), unit="countyreal", time="year", outcome="lemp", cohort="first.treat")


def _dense_reference(frame: pd.DataFrame) -> tuple[dict[int, float], float]:
    """Event-time means of Y - Y(0)_hat with Y(0) from dense least squares on untreated rows."""
    treated = (frame["first.treat"] > 0) & (frame["year"] >= frame["first.treat"])
    z = np.hstack(
        [pd.get_dummies(frame["countyreal"]).to_numpy(float), pd.get_dummies(frame["year"]).to_numpy(float)[:, 1:]]
    )
    y = frame["lemp"].to_numpy()
    beta = np.linalg.lstsq(z[~treated], y[~treated], rcond=None)[0]
    tau = (y - z @ beta)[treated]
    e = (frame["year"] - frame["first.treat"])[treated].to_numpy()
    return {int(k): float(tau[e == k].mean()) for k in np.unique(e)}, float(tau.mean())


def test_imputation_equals_dense_least_squares_on_mpdta(mpdta) -> None:
    by_e, overall = _dense_reference(load_dataset("mpdta"))
    res = did.imputation(mpdta)
    assert list(res.label) == sorted(by_e)
    np.testing.assert_allclose(res.estimate, [by_e[e] for e in res.label], rtol=1e-9)
    assert res.overall[0] == pytest.approx(overall, rel=1e-9)


def test_imputation_weights_reproduce_the_estimate(mpdta) -> None:
    # BJS: the estimator is linear in Y, sum_it v_it Y_it, with v the imputation weights used in the SE
    from decrimkit.estimators.did._event_result import horizon_weights
    from decrimkit.estimators.did._first_stage import first_stage

    fs = first_stage(mpdta, covariates=(), anticipation=0, weights=None, cluster=None)
    _, wmat = horizon_weights(fs, None, 0)
    b = np.column_stack([fs.solve(fs.z[fs.target].T @ wmat[fs.target, j]) for j in range(wmat.shape[1])])
    v = np.where(fs.untreated[:, None], -(fs.z @ b), wmat)
    res = did.imputation(mpdta)
    np.testing.assert_allclose(v.T @ mpdta.y, np.append(res.estimate, res.overall[0]), rtol=1e-9)


def _diff_diff(frame: pd.DataFrame, leave_one_out: bool = False):
    from diff_diff import ImputationDiD

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # diff-diff's own deprecation notices
        fit = ImputationDiD(leave_one_out=leave_one_out).fit(
            frame, outcome="lemp", unit="countyreal", time="year", first_treat="first.treat"
        )
        return fit, fit.aggregate("event_study")


@pytest.mark.parametrize("leave_out", [False, True])
def test_imputation_matches_diff_diff(leave_out: bool) -> None:
    # diff-diff pins the BJS Theorem 3 variance (didimputation parity) and the A.9 leave-one-out option
    frame = load_dataset("mpdta")
    frame = frame[frame["first.treat"] != 2004]  # diff-diff needs 2+ untreated periods per treated unit
    panel = Panel.from_frame(frame, unit="countyreal", time="year", outcome="lemp", cohort="first.treat")
    res = did.imputation(panel, leave_out=leave_out)
    fit, es = _diff_diff(frame, leave_one_out=leave_out)
    post = es.event_time >= 0
    np.testing.assert_allclose(res.estimate, es.att[post], rtol=RTOL)  # diff-diff solves iteratively (~1e-10)
    np.testing.assert_allclose(res.se, es.se[post], rtol=RTOL)
    assert res.overall[0] == pytest.approx(fit.overall_att, rel=RTOL)
    assert res.overall[1] == pytest.approx(fit.overall_se, rel=RTOL)


def test_leave_out_variance_is_larger(mpdta) -> None:
    plain, loo = did.imputation(mpdta), did.imputation(mpdta, leave_out=True)
    np.testing.assert_allclose(plain.estimate, loo.estimate, rtol=1e-12)  # leave-out changes the variance only
    assert np.all(loo.se >= plain.se) and loo.overall[1] >= plain.overall[1]


def test_imputation_equals_two_stage_points(mpdta) -> None:
    # REFERENCES.md section 4: same first stage => identical point estimates; the SEs differ (see docs)
    for panel, kw in [
        (mpdta, {}),
        (
            Panel.from_frame(
                simulate_staggered(1),
                unit="id",
                time="year",
                outcome="y",
                cohort="first",
                covariates=["x"],
                weights="w",
            ),
            {"covariates": ("x",)},
        ),
        (
            Panel.from_frame(simulate_staggered(2), unit="id", time="year", outcome="y", cohort="first"),
            {"anticipation": 1},
        ),
    ]:
        imp, ts = did.imputation(panel, **kw), did.two_stage(panel, **kw)
        assert imp.label == ts.label
        np.testing.assert_allclose(imp.estimate, ts.estimate, rtol=0, atol=1e-8)
        assert imp.overall[0] == pytest.approx(ts.overall[0], abs=1e-8)
        assert not np.allclose(imp.se, ts.se, rtol=1e-6)  # different variance estimators


def test_simulated_panel_recovers_effects() -> None:
    frame = simulate_staggered(3, n_units=200)
    panel = Panel.from_frame(frame, unit="id", time="year", outcome="y", cohort="first", covariates=["x"])
    res = did.imputation(panel, covariates=("x",), horizons=(0, 1, 2))
    truth = np.array([1.0, 1.3, 1.6]) + 0.2 * np.array(
        [
            np.mean(frame.loc[(frame["first"] > 0) & (frame["year"] - frame["first"] == e), "first"] == 3)
            for e in (0, 1, 2)
        ]
    )
    assert np.all(np.abs(res.estimate - truth) < 4 * res.se)


def test_pretrends_and_result_vocabulary(mpdta) -> None:
    import matplotlib.figure

    res = did.imputation(mpdta, pretrends=3)
    assert list(res.pre.label) == [-3, -2, -1]
    stat, df, p = res.pretest()
    assert df == 3 and stat > 0 and 0 < p < 1
    assert {"event_time", "estimate", "se", "conf_low"} <= set(res.tidy())
    assert "overall" in str(res) and isinstance(res.plot(), matplotlib.figure.Figure)
    with pytest.raises(SpecificationError, match="pretrends"):
        did.imputation(mpdta).pretest()


def test_imputation_errors() -> None:
    frame = simulate_staggered(4, drop=0.0)
    first = frame.assign(first=np.where(frame["first"] == 3, 1, frame["first"]))
    with pytest.raises(DesignError, match="no untreated period"):
        did.imputation(Panel.from_frame(first, unit="id", time="year", outcome="y", cohort="first"))
    panel = Panel.from_frame(
        frame.assign(z=frame["id"] % 3, x2=2 * frame["x"]),
        unit="id",
        time="year",
        outcome="y",
        cohort="first",
        covariates=["x", "z", "x2"],
    )
    with pytest.raises(DesignError, match="anticipation=3"):
        did.imputation(panel, anticipation=3)
    with pytest.raises(SpecificationError, match="constant within every unit"):
        did.imputation(panel, covariates=("z",))
    with pytest.raises(SpecificationError, match="collinear"):
        did.two_stage(panel, covariates=("x", "x2"))
    with pytest.raises(SpecificationError, match="no treated observations"):
        did.imputation(panel, horizons=(0, 40))
    everyone = frame.assign(first=np.where(frame["first"] == 0, 6, frame["first"]))
    with pytest.raises(DesignError, match="no untreated observations"):
        did.imputation(Panel.from_frame(everyone, unit="id", time="year", outcome="y", cohort="first"))
