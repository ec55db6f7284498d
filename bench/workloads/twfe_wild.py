"""Workload 2b: restricted wild cluster bootstrap (WCR11, Rademacher) of the TWFE treatment coefficient.

9,999 draws, clustered by unit. Sizes: 50, 200 and 500 units x 20 periods (at 1,000 units one pyfixest call
ran over 5 minutes and 8.9 GB of memory, more than the whole benchmark can spend on one cell). The true effect is small
(0.05) so the p-value lies in the interior, where Monte Carlo disagreement is visible. Headline estimate:
the bootstrap p-value; tools draw from different random number generators, so it agrees only up to
Monte Carlo error, with the tests' ``abs=0.03`` (tests/inference/test_cluster.py). decrimkit's
``twfe(se_method="wild")`` also inverts the test for a confidence interval (a bisection of further
bootstrap p-values), which the peers here do not do: that extra work is inside its time.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

NAME = "twfe_wild"
N_PERIODS = 20
N_BOOT = 9_999
SIZES = {"50": 50, "200": 200, "500": 500}
QUICK_SIZES = ("50", "200")
TARGETS = {"500": 0.8}


def make_data(size: str, seed: int) -> pd.DataFrame:
    n = SIZES[size]
    rng = np.random.default_rng(seed)
    first = rng.choice(np.array([0, 8, 12, 16]), size=n)
    t = np.arange(1, N_PERIODS + 1)
    d = (first[:, None] > 0) & (t[None, :] >= first[:, None])
    # unit-level shocks make within-cluster correlation the thing the bootstrap has to respect
    y = (rng.normal(size=n)[:, None] + 0.02 * t[None, :] + 0.05 * d + rng.normal(size=(n, 1)) * 0.3 * t / N_PERIODS
         + rng.normal(size=(n, N_PERIODS)))
    return pd.DataFrame({"id": np.repeat(np.arange(n), N_PERIODS), "time": np.tile(t, n), "y": y.ravel(),
                         "first_treat": np.repeat(first, N_PERIODS), "d": d.ravel().astype(float)})


def decrimkit(df: pd.DataFrame) -> float:
    from decrimkit import Panel
    from decrimkit.estimators import did

    panel = Panel.from_frame(df, unit="id", time="time", outcome="y", cohort="first_treat")
    res = did.twfe(panel, cluster="unit", se_method="wild", n_boot=N_BOOT, seed=0)
    return float(res.p_value[0])


def pyfixest(df: pd.DataFrame) -> float:
    import pyfixest as pf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = pf.feols("y ~ d | id + time", data=df, vcov={"CRV1": "id"})
        out = m.wildboottest(reps=N_BOOT, param="d", cluster="id", seed=0)
    return float(out["Pr(>|t|)"])


def wildboottest(df: pd.DataFrame) -> float:
    import statsmodels.api as sm
    from wildboottest.wildboottest import wildboottest as wbt

    x = pd.get_dummies(df[["id", "time"]].astype(str), drop_first=True, dtype=float)
    x.insert(0, "d", df["d"].to_numpy())
    x.insert(0, "const", 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = wbt(sm.OLS(df["y"].to_numpy(), x), param="d", cluster=df["id"].to_numpy(), B=N_BOOT, seed=0,
                  weights_type="rademacher", show=False)
    return float(out["p-value"].iloc[0])


TOOLS = {"decrimkit": decrimkit, "pyfixest": pyfixest, "wildboottest": wildboottest}


def agree(ours: float, peer: float, tool: str | None = None) -> bool:
    # different RNGs: Monte Carlo agreement only, the tests' abs=0.03 (tests/inference/test_cluster.py)
    return bool(abs(ours - peer) <= 0.03)


def stream_bytes(data: pd.DataFrame) -> int:
    # the bootstrap streams the (G,) cluster scores once per draw; the data once
    return int(sum(data[c].to_numpy().nbytes for c in ("id", "time", "y", "d")))
