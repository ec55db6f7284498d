"""TWFE randomization inference computes every reassignment at once (Frisch-Waugh-Lovell on the matrix of
reassigned indicators, ``estimators/did/_twfe_perm.py``); here each reassignment is refitted instead, from
a panel with the other adoption dates (the generic path every estimator without a batch takes), and the
two must agree: balanced and unbalanced panels, analytic weights, a time-varying covariate. The p-value's
exactness against a brute force over rebuilt data frames is ``test_few_treated.py``'s."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from decrimkit import Panel
from decrimkit.errors import DesignError, FewTreatedWarning
from decrimkit.estimators import did
from decrimkit.estimators.did._inference import randomization
from decrimkit.estimators.did._twfe import _fit


def _frame(seed: int, drop: int = 0, cohorts: dict[int, int] | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n_units, n_periods = 12, 7
    cohorts = cohorts or {0: 3, 1: 4, 2: 4}  # three treated units, two adoption dates; the rest never treated
    rows = []
    for i in range(n_units):
        a, size = rng.normal(), rng.uniform(1e4, 1e6)
        for t in range(n_periods):
            g = cohorts.get(i, 0)
            x = rng.normal()
            y = a + 0.2 * t + 0.4 * x + 0.5 * float(g > 0 and t >= g) + rng.normal()
            rows.append({"unit": i, "time": t, "g": g, "pop": size, "x": x, "y": y})
    df = pd.DataFrame(rows)
    if drop:  # unbalanced: drop interior rows of control units (each keeps periods before and after every date)
        pick = rng.choice(np.flatnonzero((df["unit"] >= 3) & df["time"].between(1, 5)), size=drop, replace=False)
        df = df.drop(index=pick)
    return df


def _panel(df: pd.DataFrame) -> Panel:
    return Panel.from_frame(df, unit="unit", time="time", outcome="y", cohort="g", population="pop",
                            covariates=["x"], count=False)


@pytest.mark.parametrize(("drop", "weights", "covariates"), [
    (0, None, ()), (0, "population", ()), (0, None, ("x",)), (6, "population", ("x",))])
def test_batch_equals_refits(drop, weights, covariates):
    panel = _panel(_frame(seed=3, drop=drop))
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


def test_a_reassignment_the_fixed_effects_absorb_is_refused():
    # one treated unit (date 3); unit 5 is observed only from period 3 on: the reassignment that hands it
    # date 3 treats it in every period it has and no other unit, so the indicator is its unit dummy
    df = _frame(seed=1, cohorts={0: 3})
    df = df[~((df["unit"] == 5) & (df["time"] < 3))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewTreatedWarning)
        with pytest.raises(DesignError, match="absorbed by the unit and period effects"):
            did.twfe(_panel(df), inference="randomization", max_exact=10_000)
