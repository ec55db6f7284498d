"""did.imputation's randomization inference solves every reassignment's first stage in batches (unit
effects eliminated, ``estimators/did/_imputation_perm.py``); here each reassignment is refitted through the
estimator's own first stage on a panel with the other adoption dates (the generic path), and the two must
agree: balanced and unbalanced panels, weights, a time-varying covariate, anticipation, chosen horizons.
The p-value's exactness against a brute force over rebuilt data frames is ``test_few_treated.py``'s."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from decrimkit import Panel
from decrimkit.errors import DesignError
from decrimkit.estimators import did
from decrimkit.estimators.did._event_result import horizon_weights
from decrimkit.estimators.did._first_stage import first_stage
from decrimkit.estimators.did._inference import randomization


def _frame(seed: int, drop: int = 0, cohorts: dict[int, int] | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n_units, n_periods = 14, 8
    cohorts = cohorts or {0: 4, 1: 5, 2: 5, 3: 6}
    rows = []
    for i in range(n_units):
        a, size = rng.normal(), rng.uniform(1e4, 1e6)
        for t in range(n_periods):
            g = cohorts.get(i, 0)
            x = rng.normal()
            y = a + 0.2 * t + 0.4 * x + 0.5 * float(g > 0 and t >= g) + rng.normal()
            rows.append({"unit": i, "time": t, "g": g, "pop": size, "x": x, "y": y})
    df = pd.DataFrame(rows)
    if drop:  # unbalanced: interior rows of never-treated units (each keeps its first and last periods)
        pick = rng.choice(np.flatnonzero((df["unit"] >= 4) & df["time"].between(2, 5)), size=drop, replace=False)
        df = df.drop(index=pick)
    return df


def _panel(df: pd.DataFrame) -> Panel:
    return Panel.from_frame(df, unit="unit", time="time", outcome="y", cohort="g", population="pop",
                            covariates=["x"], count=False)


@pytest.mark.parametrize(("drop", "opts"), [
    (0, {}),
    (0, {"weights": "population"}),
    (0, {"covariates": ("x",)}),
    (0, {"anticipation": 1}),
    (0, {"horizons": (0, 2)}),
    (7, {"weights": "population", "covariates": ("x",)}),
])
def test_batch_equals_refits(drop, opts):
    panel = _panel(_frame(seed=3, drop=drop))
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


def test_a_reassignment_without_an_untreated_period_is_refused():
    # unit 6 is observed only from period 4 on; the reassignments handing it adoption date 4 leave it with
    # no untreated observation, so its unit effect is not identified (the refit refuses the same way)
    df = _frame(seed=1, cohorts={0: 4, 1: 5})
    df = df[~((df["unit"] == 6) & (df["time"] < 4))]
    with pytest.raises(DesignError, match="no untreated observation before it"):
        did.imputation(_panel(df), inference="randomization", max_exact=10_000)
