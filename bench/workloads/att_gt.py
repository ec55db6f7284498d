"""Workload 1: Callaway-Sant'Anna ATT(g,t), doubly robust with one covariate, 999 multiplier-bootstrap draws.

Sizes: mpdta (500 counties x 5 years, covariate ``lpop``) and simulated staggered panels of 10,000,
30,000 and 100,000 units x 10 periods (three cohorts plus never treated, one time-invariant covariate
that shifts both adoption and trends, so the doubly robust adjustment matters). The headline estimate
is the simple aggregated ATT (R ``did::aggte(type = "simple")``), which is a closed-form function of the
ATT(g,t); the bootstrap draws only change standard errors, so the point estimates of every tool must
agree at the tests' ``rtol=1e-6`` (diff-diff: 1e-4, see :func:`agree`).

The same problem for every tool: R ``did``'s ``att_gt(est_method = "dr")`` (``DRDID::drdid_panel`` per
cell: logit propensity score, linear outcome regression on the comparison units), never-treated
comparison units, varying base period, the covariate ``x``, 999 multiplier-bootstrap draws with Mammen
weights (R ``did``'s; diff-diff is given ``bootstrap_weights="mammen"``, its default being Rademacher,
which costs the same), then the simple aggregation. Only the random multipliers differ between tools.

Where decrimkit's time goes at 100,000 units (one warm call: 0.23 s wall in the 2026-12-07 full bench on the
idle 2-core machine; CPU seconds from cProfile right after it, summed over threads, about 0.41 s with the
profiler's overhead): the 999 bootstrap replicates of the 27 cell and 4 cohort-basis influence functions
(about 0.16 s over two threads: 16 random bits a Mammen multiplier, 2.5e7 PCG64 outputs in all, compared into
0/1 slices of 256 replicates that stay in cache, and a single-precision (256 x 1024) @ (1024 x k) product per
slice on the columns that vary on a tile of cohort-sorted units, about 1.5e9 multiply-adds; see
``decrimkit.inference.bootstrap``); building the panel (about 0.10 s: the cohort and period codes of 1e6 rows);
the DR cells (about 0.05 s: the cells that share units and covariates, one per cohort here, fitted together in
NumPy, ``estimators/did/_cs_groups.py``) and the design checks (0.02 s). The bootstrap's floor is its
arithmetic: ``2 * 999 * n * k_eff`` flops plus ``999 * n`` random draws, whichever tool computes it.
"""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pandas as pd

NAME = "att_gt"
SIZES = {"mpdta": 500, "10k": 10_000, "30k": 30_000, "100k": 100_000}
QUICK_SIZES = ("mpdta", "10k")
TARGETS = {"100k": 3.0}
N_BOOT = 999
N_PERIODS = 10
# differences and csdid are pure-pandas loops; at 100k units they take minutes per call
SLOW_TOOLS = ("csdid",)


def make_data(size: str, seed: int) -> pd.DataFrame:
    """Long frame with columns id, time, y, first_treat (0 = never), x."""
    if size == "mpdta":
        from decrimkit.datasets import load_dataset

        df = load_dataset("mpdta")
        return pd.DataFrame({"id": df["countyreal"].to_numpy(), "time": df["year"].to_numpy(),
                             "y": df["lemp"].to_numpy(float), "first_treat": df["first.treat"].to_numpy(),
                             "x": df["lpop"].to_numpy(float)})
    n = SIZES[size]
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    # adoption depends on x: cohorts 4, 6, 8 (1-based periods) or never
    p = np.exp(np.c_[np.zeros(n), 0.3 * x, 0.2 * x, -0.2 * x])
    p /= p.sum(1, keepdims=True)
    u = rng.random(n)[:, None]
    choice = (u > np.cumsum(p, 1)).sum(1)
    first = np.array([0, 4, 6, 8])[choice]
    t = np.arange(1, N_PERIODS + 1)
    alpha = rng.normal(size=n)
    trend = 0.1 * t[None, :] + 0.05 * x[:, None] * t[None, :]
    post = (first[:, None] > 0) & (t[None, :] >= first[:, None])
    effect = np.where(post, 0.5 + 0.1 * (t[None, :] - first[:, None]), 0.0)
    y = alpha[:, None] + trend + effect + rng.normal(size=(n, N_PERIODS))
    return pd.DataFrame({"id": np.repeat(np.arange(1, n + 1), N_PERIODS), "time": np.tile(t, n),
                         "y": y.ravel(), "first_treat": np.repeat(first, N_PERIODS),
                         "x": np.repeat(x, N_PERIODS)})


def decrimkit(df: pd.DataFrame) -> float:
    from decrimkit import Panel
    from decrimkit.estimators import did

    panel = Panel.from_frame(df, unit="id", time="time", outcome="y", cohort="first_treat", covariates=["x"])
    fit = did.att_gt(panel, covariates=("x",), method="dr", n_boot=N_BOOT, seed=0)
    return float(fit.aggregate("simple").overall[0])


def diff_diff(df: pd.DataFrame) -> float:
    from diff_diff import CallawaySantAnna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = CallawaySantAnna(estimation_method="dr", n_bootstrap=N_BOOT, bootstrap_weights="mammen", seed=0).fit(
            df, outcome="y", unit="id", time="time", first_treat="first_treat", covariates=["x"])
    return float(res.overall_att)


def csdid(df: pd.DataFrame) -> float:
    from csdid.att_gt import ATTgt

    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = ATTgt(yname="y", gname="first_treat", idname="id", tname="time", data=df, xformla="y~x",
                    biters=N_BOOT)
        res.fit(est_method="dr", bstrap=True)
        res.aggte(typec="simple", bstrap=True, biters=N_BOOT)
    return float(res.atte["overall_att"])


def differences(df: pd.DataFrame) -> float:
    from differences import ATTgt

    data = df.assign(cohort=df["first_treat"].where(df["first_treat"] > 0)).set_index(["id", "time"])
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        att = ATTgt(data=data, cohort_column="cohort")
        att.fit(formula="y ~ x", est_method="dr", boot_iterations=N_BOOT, random_state=0, progress_bar=False)
        agg = att.aggregate("simple")
    return float(np.asarray(agg.iloc[0])[0])


TOOLS = {"decrimkit": decrimkit, "diff-diff": diff_diff, "csdid": csdid, "differences": differences}


def agree(ours: float, peer: float, tool: str | None = None) -> bool:
    """Closed-form point estimate, same algorithm: the tests' rtol=1e-6 (tests/estimators/did/test_att_gt.py).

    diff-diff gets rtol=1e-4: its propensity-score logit stops at its own convergence tolerance, so with
    a covariate it differs from R did / csdid / differences / decrimkit by about 7e-6 relative on mpdta
    (without covariates all five agree to 1e-14).
    """
    rtol = 1e-4 if tool == "diff-diff" else 1e-6
    return bool(np.isclose(ours, peer, rtol=rtol, atol=1e-12))


def stream_bytes(data: pd.DataFrame) -> int:
    """Bytes of the numeric columns the estimator must read at least once."""
    return int(sum(data[c].to_numpy().nbytes for c in ("id", "time", "y", "first_treat", "x")))
