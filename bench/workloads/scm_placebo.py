"""Workload 3: synthetic control on Prop 99 (California, 1989): one fit, and fit + placebo-in-space loop.

Design (the same problem for every tool): outcome-only synthetic control, W on the simplex
minimising the plain sum of squared pre-period (1970-1988) outcome gaps ``||y1 - Y0 w||^2``. decrimkit
and pysyncon divide each pre-period outcome by its SD across units (R Synth's normalisation), so they
are given V proportional to that SD squared (``custom_V``), which undoes it; mlsynth's outcome-only
backend solves the unnormalised problem directly. Placebo in space: each donor in turn as if treated,
the other donors its pool, W re-solved with the same weighting (there is no V to re-optimise);
rank p-value of the post/pre RMSPE ratio (Abadie, Diamond and Hainmueller 2010).

Sizes: ``fit`` (one fit, 38 donors) and ``placebo-10`` / ``placebo-20`` / ``placebo-38`` (the fit plus
the placebo loop over the first 10, 20 or all 38 donor states), the scale curve of the loop.
Tools: ``decrimkit`` (placebos as one vmapped batch of simplex solves), ``decrimkit-loop`` (the same
jitted solver called once per placebo from Python: the vectorisation ratio), pysyncon (SLSQP per
placebo, ``max_workers=1``) and mlsynth 1.0 (``VanillaSC`` outcome-only backend, a projected-gradient
simplex least squares per placebo; ``inference=True`` for the placebo sizes).

Headline estimate: for ``fit`` the mean post-period gap; for the placebo sizes the rank p-value.
"""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pandas as pd

NAME = "scm_placebo"
SIZES = {"fit": 38, "placebo-10": 10, "placebo-20": 20, "placebo-38": 38}
QUICK_SIZES = ("fit", "placebo-10")  # pysyncon takes ~45 s per 38-placebo loop
# issue 23: at least as fast as the fastest peer, mlsynth (10x was set against pysyncon before mlsynth was measured)
TARGETS = {"placebo-38": 1.0}
NOT_ON_CURVE = ("fit",)  # one fit, not a placebo loop: left out of the scale curve
YEARS = list(range(1970, 1989))


def make_data(size: str, seed: int) -> dict:
    from decrimkit.datasets import load_dataset

    df = load_dataset("prop99", file="california_prop99_long.csv")
    donors = sorted(set(df["State"]) - {"California"})[: SIZES[size]]
    df = df[df["State"].isin(["California", *donors])].reset_index(drop=True)
    return {"frame": df, "placebo": size != "fit"}


def _v(df: pd.DataFrame) -> np.ndarray:
    """V proportional to the squared SD across units of each pre-period outcome (undoes the normalisation)."""
    wide = df[df["Year"] < 1989].pivot(index="State", columns="Year", values="PacksPerCapita")
    sd2 = wide.std(axis=0, ddof=1).to_numpy() ** 2
    return sd2 / sd2.sum()


def _fit(df: pd.DataFrame):
    from decrimkit import Panel
    from decrimkit.estimators import synth

    panel = Panel.from_frame(df, unit="State", time="Year", outcome="PacksPerCapita", treated="treated")
    return synth.scm(panel, treated="California", start=1989, v=_v(df))


def decrimkit(data: dict) -> float:
    res = _fit(data["frame"])
    if not data["placebo"]:
        return float(res.estimate)
    return float(res.placebo().p_value)


def decrimkit_loop(data: dict) -> float:
    """Same fit and same V; each placebo's W from one call of the public jitted solver."""
    import importlib

    scm_module = importlib.import_module("decrimkit.estimators.synth._scm")
    res = _fit(data["frame"])
    if not data["placebo"]:
        return float(res.estimate)
    design = res.extra["design"]
    x0, _, _ = scm_module._normalise(design)
    v = res.v.to_numpy()
    j = design.n_donors
    w_all = np.zeros((j, j))
    for k in range(j):
        others = [i for i in range(j) if i != k]
        w_all[k, others] = scm_module.solve_w(v, x0[:, others], x0[:, k])
    gaps = np.column_stack([res.gap.to_numpy(), design.y_donors - design.y_donors @ w_all.T])
    pre = np.sqrt((gaps[: design.n_pre] ** 2).mean(0))
    post = np.sqrt((gaps[design.n_pre:] ** 2).mean(0))
    ratio = post / pre
    return float(np.mean(ratio >= ratio[0]))


def pysyncon(data: dict) -> float:
    from pysyncon import Dataprep, Synth
    from pysyncon.utils import PlaceboTest

    df = data["frame"]
    controls = sorted(set(df["State"]) - {"California"})
    dp = Dataprep(foo=df, predictors=[], predictors_op="mean", time_predictors_prior=YEARS,
                  special_predictors=[("PacksPerCapita", [y], "mean") for y in YEARS],
                  dependent="PacksPerCapita", unit_variable="State", time_variable="Year",
                  treatment_identifier="California", controls_identifier=controls, time_optimize_ssr=YEARS)
    v = _v(df)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        synth = Synth()
        synth.fit(dataprep=dp, custom_V=v)
        if not data["placebo"]:
            post = list(range(1989, 2001))
            return float(synth.att(time_period=post)["att"])
        pt = PlaceboTest()
        pt.fit(dataprep=dp, scm=synth, scm_options={"custom_V": v}, max_workers=1, verbose=False)
        return float(pt.pvalue(treatment_time=1989))


def mlsynth(data: dict) -> float:
    with warnings.catch_warnings():  # mlsynth 1.0 triggers pydantic deprecation warnings on import
        warnings.simplefilter("ignore")
        from mlsynth.estimators.vanillasc import VanillaSC
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = VanillaSC({"df": data["frame"], "outcome": "PacksPerCapita", "treat": "treated", "unitid": "State",
                         "time": "Year", "backend": "outcome-only", "inference": bool(data["placebo"]),
                         "display_graphs": False}).fit()
    if not data["placebo"]:
        return float(res.effects.att)
    return float(res.inference.p_value)


TOOLS = {"decrimkit": decrimkit, "decrimkit-loop": decrimkit_loop, "pysyncon": pysyncon, "mlsynth": mlsynth}


def agree(ours: float, peer: float, tool: str | None = None) -> bool:
    """The p-value is a rank statistic; decrimkit-loop must match decrimkit exactly (same solver).

    pysyncon's placebo W come from SLSQP stopped at its default tolerance, which can move one placebo's
    RMSPE ratio across California's: it is allowed one rank (1 / (J + 1)). No test compares placebo
    p-values with pysyncon; this tolerance is the benchmark's own and is stated in docs/benchmarks.md.

    The mean post-period gap gets abs=0.5 packs per capita: pysyncon's SLSQP stops with weights up to
    ~0.03 from the exact optimum on this ill-conditioned QP (tests/estimators/synth/test_scm.py
    compares the objective at 1e-6 for that reason), which moves the gap by a few tenths of a pack.
    """
    if tool == "decrimkit-loop":
        return bool(np.isclose(ours, peer, rtol=1e-8, atol=1e-8))
    if 0 <= ours <= 1 and 0 <= peer <= 1:
        return bool(abs(ours - peer) <= 1 / 11 + 1e-12)  # one rank at the smallest size (10 donors)
    return bool(abs(ours - peer) <= 0.5)


def stream_bytes(data: dict) -> int:
    return int(data["frame"]["PacksPerCapita"].to_numpy().nbytes)
