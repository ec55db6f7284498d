"""Workload 2a: TWFE DiD with unit and period fixed effects and CR1 standard errors clustered by unit.

Sizes: 1,000, 5,000 and 20,000 units x 50 periods (50,000 to 1,000,000 rows), staggered adoption in
four cohorts plus never treated. Headline estimate: the coefficient on the treatment indicator; every
tool solves the same normal equations, so the tests' ``rtol=1e-6`` applies
(tests/estimators/did/test_twfe.py).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

NAME = "twfe"
N_PERIODS = 50
SIZES = {"1k": 1_000 * N_PERIODS, "5k": 5_000 * N_PERIODS, "20k": 20_000 * N_PERIODS}
QUICK_SIZES = ("1k", "5k")
TARGETS = {"20k": 0.8}


def make_data(size: str, seed: int) -> pd.DataFrame:
    n = SIZES[size] // N_PERIODS
    rng = np.random.default_rng(seed)
    first = rng.choice(np.array([0, 15, 25, 35, 45]), size=n)
    t = np.arange(1, N_PERIODS + 1)
    d = (first[:, None] > 0) & (t[None, :] >= first[:, None])
    y = rng.normal(size=n)[:, None] + 0.02 * t[None, :] + 0.3 * d + rng.normal(size=(n, N_PERIODS))
    return pd.DataFrame({"id": np.repeat(np.arange(n), N_PERIODS), "time": np.tile(t, n), "y": y.ravel(),
                         "first_treat": np.repeat(first, N_PERIODS), "d": d.ravel().astype(float)})


def decrimkit(df: pd.DataFrame) -> float:
    from decrimkit import Panel
    from decrimkit.estimators import did

    panel = Panel.from_frame(df, unit="id", time="time", outcome="y", cohort="first_treat")
    return float(did.twfe(panel, cluster="unit").att)


def pyfixest(df: pd.DataFrame) -> float:
    import pyfixest as pf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = pf.feols("y ~ d | id + time", data=df, vcov={"CRV1": "id"})
        m.se()
    return float(m.coef().iloc[0])


def linearmodels(df: pd.DataFrame) -> float:
    from linearmodels.panel import PanelOLS

    data = df.set_index(["id", "time"])
    res = PanelOLS(data["y"], data[["d"]], entity_effects=True, time_effects=True).fit(
        cov_type="clustered", cluster_entity=True)
    return float(res.params.iloc[0])


TOOLS = {"decrimkit": decrimkit, "pyfixest": pyfixest, "linearmodels": linearmodels}


def agree(ours: float, peer: float, tool: str | None = None) -> bool:
    # same least-squares problem: the tests' rtol=1e-6 (tests/estimators/did/test_twfe.py)
    return bool(np.isclose(ours, peer, rtol=1e-6, atol=1e-12))


def stream_bytes(data: pd.DataFrame) -> int:
    return int(sum(data[c].to_numpy().nbytes for c in ("id", "time", "y", "d")))
