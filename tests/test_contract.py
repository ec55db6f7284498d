"""The result contract (issue 20): every registered estimator, and every result derived from one, answers
the :class:`decrimkit.results.Result` protocol the same way.

Each estimator in :data:`decrimkit.registry.ESTIMATORS` runs on a small bundled dataset (a simulated one
where no bundled dataset has the design, said where used) and its result is checked: the names are there,
``conf_int(alpha)`` is a DataFrame indexed by term with ``conf_low``/``conf_high`` equal to tidy()'s,
tidy()'s first seven columns are :data:`~decrimkit.results.TIDY_COLUMNS`, a 90% interval lies inside the
95% one, interval and p-value come from the one method (0 is outside the 95% interval exactly when
p < 0.05), ``repr()`` is ``summary()`` and names that method, ``plot()`` returns a matplotlib Figure.
Results whose intervals exist at one level only (they invert a test on a grid at the fit's alpha) refuse
another alpha with a SpecificationError naming the call that gives it.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from decrimkit import Panel
from decrimkit.datasets import load_dataset
from decrimkit.errors import SpecificationError
from decrimkit.registry import ESTIMATORS
from decrimkit.results import TIDY_COLUMNS, Result, Spec

# ----------------------------------------------------------------------------- data (small, bundled)


@functools.cache
def _mpdta() -> Panel:
    return Panel.from_frame(load_dataset("mpdta"), unit="countyreal", time="year", outcome="lemp",
                            cohort="first.treat")


@functools.cache
def _castle() -> Panel:
    df = load_dataset("castle_doctrine")[["state", "year", "effyear", "homicide_c", "population"]]
    df = df.assign(effyear=df["effyear"].fillna(0).astype(int))
    return Panel.from_frame(df, unit="state", time="year", outcome="homicide_c", cohort="effyear",
                            population="population")


@functools.cache
def _prop99() -> Panel:
    df = load_dataset("prop99", file="california_prop99_long.csv")
    return Panel.from_frame(df, unit="State", time="Year", outcome="PacksPerCapita", treated="treated")


@functools.cache
def _prop99_small() -> Panel:
    """Prop 99 with California and its first 15 donors (alphabetical): keeps the matrix-completion and
    placebo-SE fits to a second or two."""
    df = load_dataset("prop99", file="california_prop99_long.csv")
    keep = ["California", *sorted(set(df["State"]) - {"California"})[:15]]
    df = df[df["State"].isin(keep)]
    return Panel.from_frame(df, unit="State", time="Year", outcome="PacksPerCapita", treated="treated")


@functools.cache
def _groups() -> Panel:
    """Arrest counts by race in 20 simulated counties (no bundled dataset has counts by group): group B's
    rate falls by a fifth in the treated half from 2015."""
    rng = np.random.default_rng(1)
    rows = []
    for u in range(20):
        treated = u < 10
        for t in range(8):
            for g, pop, rate in (("A", 5000 + 100 * u, 0.004), ("B", 1500 + 40 * u, 0.012)):
                effect = 0.8 if g == "B" and treated and t >= 4 else 1.0
                rows.append((u, 2011 + t, g, rng.poisson(rate * effect * pop), pop, 2015 if treated else 0))
    df = pd.DataFrame(rows, columns=["county", "year", "race", "arrests", "pop", "first"])
    return Panel.from_frame(df, unit="county", time="year", outcome="arrests", cohort="first", population="pop",
                            group="race")


# ----------------------------------------------------------------------------- one result per estimator


@functools.cache
def _event_study():
    from decrimkit.estimators import did

    return did.event_study(_mpdta())


@functools.cache
def _att_gt():
    from decrimkit.estimators import did

    return did.att_gt(_mpdta(), n_boot=99, seed=0)


@functools.cache
def _augmented():
    from decrimkit.estimators import synth

    return synth.augmented(_prop99(), treated="California", start=1989)


@functools.cache
def _scm():
    from decrimkit.estimators import synth

    return synth.scm(_prop99_small(), treated="California", start=1989)


def _family(name: str) -> Any:
    """An estimator family (``decrimkit.estimators.<name>``); its names resolve on first use."""
    import importlib

    return importlib.import_module(f"decrimkit.estimators.{name}")


def _quiet(fn: Callable[[], Any]) -> Any:
    """Run a fit whose few-treated warning is not what this test checks (its own tests expect it)."""
    from decrimkit.errors import DecrimkitWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DecrimkitWarning)
        return fn()


def _leniency():
    from decrimkit.estimators import iv
    from decrimkit.studies.suffolk import SuffolkConfig, simulate

    small = SuffolkConfig(start="2015-01", end="2016-06", n_courts=3, court_shares=(1 / 3,) * 3, adas_per_court=5,
                          adas_per_session=3)
    cases = simulate(n_cases=2500, seed=11, config=small).cases
    return iv.leniency(cases, outcome="any_new_complaint", decision="not_prosecuted", assignee="ada",
                       strata=("court", "month"))


def _did(name: str) -> Callable[[], Any]:
    def run():
        from decrimkit.estimators import did

        return getattr(did, name)(_mpdta())

    return run


ESTIMATOR_CASES: dict[str, Callable[[], Any]] = {
    "did.twfe": lambda: _quiet(_did("twfe")),
    "did.event_study": _event_study,
    "did.att_gt": _att_gt,
    "did.sun_abraham": _did("sun_abraham"),
    "did.efficient": _did("efficient"),
    "did.imputation": _did("imputation"),
    "did.two_stage": _did("two_stage"),
    "did.bacon": _did("bacon"),
    "did.honest": lambda: _family("did").honest(_event_study()),
    "did.poisson": lambda: _quiet(lambda: _family("did").poisson(_castle())),
    "did.disparity": lambda: _quiet(lambda: _family("did").disparity(_groups(), group="B", reference="A")),
    "synth.scm": _scm,
    "synth.augmented": _augmented,
    "synth.sdid": lambda: _family("synth").sdid(_prop99_small(), n_reps=20),
    "synth.mc_nnm": lambda: _family("synth").mc_nnm(_prop99_small(), n_folds=2, n_reps=5, seed=0),
    "synth.compare": lambda: _family("synth").compare(
        _prop99_small(), treated="California", start=1989, methods=["did", "sdid"], n_reps=5),
    "iv.leniency": _leniency,
}

# Results made from another result (fixed-level ones refuse another alpha: see the module docstring).
DERIVED_CASES: dict[str, Callable[[], Any]] = {
    "did.att_gt.aggregate(simple)": lambda: _att_gt().aggregate("simple"),
    "did.att_gt.aggregate(dynamic)": lambda: _att_gt().aggregate("dynamic"),
    "did.att_gt.aggregate(group)": lambda: _att_gt().aggregate("group"),
    "did.twfe(inference=wild)": lambda: _quiet(
        lambda: _family("did").twfe(_castle(), inference="wild", n_boot=199, seed=0)),
    "did.twfe(inference=wild).wild": lambda: _result("did.twfe(inference=wild)").wild,
    "did.twfe(inference=randomization)": lambda: _family("did").twfe(
        _castle(), inference="randomization", n_perm=199, seed=0),
    "synth.scm.placebo(space)": lambda: _scm().placebo("space"),
    "synth.augmented.conformal": lambda: _augmented().conformal(grid_size=21),
    "synth.augmented.conformal_average": lambda: _family("synth").conformal_average(
        _augmented(), grid_size=21, permutations="block"),
}
FIXED_ALPHA = {"did.honest"}



def _tiny(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A Bayesian fit with 2 chains of 50 draws (r-hat needs two): the protocol is what is checked here, not convergence (the
    family's own tests check that), so the convergence gate's warning is expected and silenced."""
    from decrimkit.errors import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*args, chains=2, draws=50, tune=50, seed=0, **kwargs)


def _bayes(name: str) -> Callable[[], Any]:
    def run():
        from decrimkit.estimators import bayes

        if name == "hierarchical_did":
            panel = _castle()
            treated = list(panel.treated_units)
            models = {u: "A" if i % 2 else "B" for i, u in enumerate(treated)}
            return _tiny(bayes.hierarchical_did, panel, policy_model=models, family="poisson")
        if name == "its":
            df = load_dataset("baltimore_bpd_arrests")
            months = pd.PeriodIndex([f"{y}-{m:02d}" for y, m in zip(df["year"], df["month"])], freq="M")
            series = pd.Series(df["arrest_count"].to_numpy(), index=months, name="arrests")
            return _tiny(bayes.its, series, start="2020-03")
        if name == "synthetic_control":
            return _tiny(bayes.synthetic_control, _prop99_small(), treated="California", start=1989)
        # pool: six site estimates (log rate ratios with their standard errors) in two policy models
        sites = pd.DataFrame({"site": list("abcdef"), "estimate": [-0.5, -0.4, -0.6, 0.0, 0.1, -0.1], "se": [0.1] * 6,
                              "policy_model": list("AAABBB")})
        return _tiny(bayes.pool, sites)

    return run


# Bayesian estimators: tiny draws; marked slow (sampler start-up dominates), still run by make test.
BAYES_CASES: dict[str, Callable[[], Any]] = {
    f"bayes.{n}": _bayes(n) for n in ("hierarchical_did", "its", "synthetic_control", "pool")
}


@functools.cache
def _result(name: str) -> Any:
    cases = {**ESTIMATOR_CASES, **DERIVED_CASES, **BAYES_CASES}
    return cases[name]()


# ----------------------------------------------------------------------------- the checks


def _inference_named(res: Any, tidy: pd.DataFrame) -> None:
    """summary() names the method behind every printed p-value or interval."""
    text = res.summary()
    shown = tidy[np.isfinite(tidy["p_value"]) | np.isfinite(tidy["conf_low"]) | np.isfinite(tidy["conf_high"])]
    methods = set(shown["inference"]) if len(shown) else {tidy["inference"].iloc[0]}
    for m in methods:
        assert m in text, f"summary() does not name the inference method {m!r}:\n{text}"


def _same_method(tidy: pd.DataFrame, alpha: float) -> None:
    """0 lies outside the interval exactly when the p-value of no effect is below alpha (rows with both)."""
    both = tidy[np.isfinite(tidy["p_value"]) & tidy["conf_low"].notna() & tidy["conf_high"].notna()]
    for r in both.itertuples():
        if abs(r.p_value - alpha) < 1e-6:
            continue  # on the boundary the grid or bisection decides
        inside = r.conf_low <= 0 <= r.conf_high
        assert inside == (r.p_value > alpha), (
            f"term {r.term}: p = {r.p_value:.4g} but the {100 * (1 - alpha):g}% interval is "
            f"[{r.conf_low:.4g}, {r.conf_high:.4g}] ({r.inference})"
        )


def check_contract(res: Any, *, fixed_alpha: bool = False, nested: bool = True) -> None:
    """``nested=False`` for intervals from posterior draws: a sample highest-density interval at 90% is never
    wider than the one at 95% (a shortest window of fewer draws), but need not lie inside it."""
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    assert isinstance(res, Result), f"{type(res).__name__} lacks part of the Result protocol"
    assert isinstance(res.spec, Spec)
    est = np.asarray(res.estimate, dtype="float64")
    se = np.asarray(res.se, dtype="float64")
    assert est.size >= 1 and se.shape == est.shape

    tidy = res.tidy()
    assert isinstance(tidy, pd.DataFrame) and len(tidy) >= 1
    assert tuple(tidy.columns[:7]) == TIDY_COLUMNS, list(tidy.columns)
    for col in ("estimate", "se", "conf_low", "conf_high", "p_value"):
        assert pd.api.types.is_float_dtype(tidy[col]), (col, tidy[col].dtype)
    assert all(isinstance(v, str) and v for v in tidy["inference"]), tidy["inference"].tolist()
    pv = tidy["p_value"].to_numpy()
    assert ((pv[np.isfinite(pv)] >= 0) & (pv[np.isfinite(pv)] <= 1)).all()

    ci = res.conf_int()
    assert isinstance(ci, pd.DataFrame) and list(ci.columns) == ["conf_low", "conf_high"]
    assert ci.index.name == "term" and list(ci.index) == list(tidy["term"])
    np.testing.assert_array_equal(ci.to_numpy(), tidy[["conf_low", "conf_high"]].to_numpy())
    assert res.conf_int(alpha=0.05).equals(ci)
    _same_method(tidy, 0.05)

    if fixed_alpha:
        with pytest.raises(SpecificationError, match="alpha"):
            res.tidy(alpha=0.1)
        with pytest.raises(SpecificationError, match="alpha"):
            res.conf_int(alpha=0.1)
    else:
        t90 = res.tidy(alpha=0.1)
        assert tuple(t90.columns[:7]) == TIDY_COLUMNS and list(t90["term"]) == list(tidy["term"])
        np.testing.assert_array_equal(t90["estimate"].to_numpy(), tidy["estimate"].to_numpy())
        c90 = res.conf_int(alpha=0.1)
        np.testing.assert_array_equal(c90.to_numpy(), t90[["conf_low", "conf_high"]].to_numpy())
        lo90, hi90 = c90["conf_low"].to_numpy(), c90["conf_high"].to_numpy()
        lo95, hi95 = ci["conf_low"].to_numpy(), ci["conf_high"].to_numpy()
        both = np.isfinite(lo90) & np.isfinite(lo95) & np.isfinite(hi90) & np.isfinite(hi95)
        assert both.any() or not np.isfinite(lo95).any(), "an interval at 95% but none at 90%"
        tol = 1e-9 * (1 + np.abs(est.reshape(-1)[0]))
        if nested:
            assert (lo90[both] >= lo95[both] - tol).all() and (hi90[both] <= hi95[both] + tol).all(), (
                "the 90% interval is not inside the 95% one")
        assert (hi95[both] - lo95[both] >= hi90[both] - lo90[both] - tol).all(), "the 90% interval is wider"
        _same_method(t90, 0.1)

    text = res.summary()
    assert isinstance(text, str) and repr(res) == text and str(res) == text
    assert "object at 0x" not in text
    _inference_named(res, tidy)

    fig = res.plot()
    if isinstance(fig, Axes):
        fig = fig.figure
    assert isinstance(fig, Figure)
    plt.close(fig)


def test_every_registered_estimator_has_a_contract_case():
    assert set(ESTIMATOR_CASES) | set(BAYES_CASES) == {e.name for e in ESTIMATORS}


@pytest.mark.parametrize("name", sorted(ESTIMATOR_CASES))
def test_estimator_result_keeps_the_contract(name):
    check_contract(_result(name), fixed_alpha=name in FIXED_ALPHA)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(BAYES_CASES))
def test_bayesian_result_keeps_the_contract(name):
    check_contract(_result(name), nested=False)


@pytest.mark.parametrize("name", sorted(DERIVED_CASES))
def test_derived_result_keeps_the_contract(name):
    check_contract(_result(name), fixed_alpha=name in FIXED_ALPHA)


def test_att_gt_cells_are_labelled_and_match_their_normal_intervals():
    res = _result("did.att_gt")
    tidy = res.tidy(alpha=0.1)
    assert tidy["term"].iloc[0] == f"g={res.group[0]},t={res.time[0]}"
    half = 1.6448536269514722 * res.se
    np.testing.assert_allclose(tidy["conf_high"] - tidy["conf_low"], 2 * half, rtol=1e-12)


def test_conformal_interval_at_another_level_reads_the_same_grid():
    """conformal(alpha=0.1) and conformal(alpha=0.05).conf_int(0.1) are the same grid sets."""
    fit = _augmented()
    at05 = _result("synth.augmented.conformal")
    at10 = fit.conformal(alpha=0.1, grid_size=21)
    np.testing.assert_array_equal(at05.conf_int(alpha=0.1).to_numpy(), at10.conf_int(alpha=0.1).to_numpy())
