"""Workload 4: synthetic difference-in-differences with 200 placebo replications for the standard error.

Sizes: Prop 99 (38 controls, 1 treated, 31 years), and simulated block-adoption panels of 500 and
2,000 units x 30 periods (10% treated from period 21). Headline estimate: the SDID ATT. decrimkit
reproduces R synthdid's Frank-Wolfe solver and stopping rule (tests/estimators/synth/test_sdid.py:
atol 1e-5 against synthdid's published Prop 99 value); diff-diff's SyntheticDiD implements the same
algorithm. R synthdid itself is not measured: there is no R in this environment.
Cost: every placebo's unit-weight solve runs up to 10,000 Frank-Wolfe iterations (at 500 units all hit
the cap), so time grows as reps x 10,000 x N; decrimkit's iteration is O(N + T0) (Gram-matrix form,
estimators/synth/_sdid_solver.py), diff-diff's O(N x T0).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

NAME = "sdid"
N_REPS = 200
SIZES = {"prop99": 39, "500": 500, "2000": 2_000}
QUICK_SIZES = ("prop99",)  # the 500- and 2,000-unit cells take tens of seconds to minutes per tool
TARGETS = {"prop99": 1.0, "2000": 1.0}


def make_data(size: str, seed: int) -> pd.DataFrame:
    if size == "prop99":
        from decrimkit.datasets import load_dataset

        df = load_dataset("prop99", file="california_prop99_long.csv")
        return pd.DataFrame({"id": df["State"].astype(str).to_numpy(), "time": df["Year"].to_numpy(),
                             "y": df["PacksPerCapita"].to_numpy(float), "d": df["treated"].to_numpy(int)})
    n, periods, start = SIZES[size], 30, 21
    rng = np.random.default_rng(seed)
    treated = np.arange(n) < n // 10
    t = np.arange(1, periods + 1)
    factor = rng.normal(size=n)[:, None] * np.sin(t / 5)[None, :]
    d = treated[:, None] & (t[None, :] >= start)
    y = rng.normal(size=n)[:, None] + 0.1 * t[None, :] + factor + 1.0 * d + rng.normal(size=(n, periods))
    return pd.DataFrame({"id": np.repeat(np.arange(n), periods), "time": np.tile(t, n), "y": y.ravel(),
                         "d": d.ravel().astype(int)})


def decrimkit(df: pd.DataFrame) -> float:
    from decrimkit import Panel
    from decrimkit.estimators import synth

    panel = Panel.from_frame(df, unit="id", time="time", outcome="y", treated="d")
    return float(synth.sdid(panel, se_method="placebo", n_reps=N_REPS, seed=0).estimate)


def diff_diff(df: pd.DataFrame) -> float:
    from diff_diff import SyntheticDiD

    post = sorted(df.loc[df["d"] == 1, "time"].unique())
    ever = df.groupby("id")["d"].transform("max")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = SyntheticDiD(variance_method="placebo", n_bootstrap=N_REPS, seed=0).fit(
            df.assign(treat=ever), outcome="y", treatment="treat", unit="id", time="time", post_periods=post)
    return float(res.att)


TOOLS = {"decrimkit": decrimkit, "diff-diff": diff_diff}


def agree(ours: float, peer: float, tool: str | None = None) -> bool:
    # same Frank-Wolfe solver and stopping rule: the tests' atol=1e-5 against synthdid
    return bool(abs(ours - peer) <= 1e-5 + 1e-6 * abs(peer))


def stream_bytes(data: pd.DataFrame) -> int:
    return int(data["y"].to_numpy().nbytes)
