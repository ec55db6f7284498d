"""Workload: ADH synthetic control with covariate predictors and nested V, Prop 99 (California, 1989).

Design (the same problem for every tool): Abadie, Diamond and Hainmueller (2010)'s predictors, each
the mean over its window (missing years skipped): lnincome 1980-88, retprice 1980-88, age15to24
1980-88, beer 1984-88, cigsale in 1988, 1980 and 1975; every predictor divided by its SD across the
units of the fit; W on the simplex minimising the V-weighted predictor distance; V (diagonal) chosen
to minimise the outcome MSPE over 1970-1988 (all pre-periods). Headline: the 1989-2000 mean gap (one
fit) or the rank p-value of the post/pre RMSPE ratio (placebo sizes).

Sizes: ``fit`` (one fit, 38 donors) and ``placebo-refit-10`` / ``placebo-refit-38`` (the fit plus the
placebo in space over the first 10 or all 38 donor states with V re-optimised for every placebo, as R
Synth users and mlsynth do).

Tools:
- ``decrimkit``: ``synth.scm(..., v="nested")``, a global V search (differential evolution over log V,
  Becker-Kloessner 2018; all donors) and ``placebo("space", refit_v=True)``.
- ``mlsynth`` 1.0: ``VanillaSC`` with the ``mscmt`` backend (differential evolution over log V on the
  sunny donors), ``inference=True`` for the placebo sizes. The outcome lags are passed as copies of
  the outcome column with one-year windows (mlsynth takes one window per column).
Where they differ: both search V globally with different population sizes and stopping rules, so they
stop at the same optimum to a tolerance (weights within 0.005 on Prop 99, tests/estimators/synth/
test_scm_nested.py). In the placebo runs mlsynth keeps the predictors divided by their SD across all
units (California included) while decrimkit divides by the SD across each placebo's own units (the
donors), as a separate R Synth fit on that pool does; this can move a placebo's V and so its RMSPE
ratio. ``agree`` allows the p-value one rank for that reason.
"""

from __future__ import annotations

import warnings

NAME = "scm_adh"
SIZES = {"fit": 38, "placebo-refit-10": 10, "placebo-refit-38": 38}
QUICK_SIZES = ("fit",)
TARGETS = {"fit": 1.0, "placebo-refit-38": 10.0}
NOT_ON_CURVE = ("fit",)
PREDICTORS = [("lnincome", 1980, 1988), ("retprice", 1980, 1988), ("age15to24", 1980, 1988), ("beer", 1984, 1988),
              ("cigsale", 1988, 1988), ("cigsale", 1980, 1980), ("cigsale", 1975, 1975)]
COVARIATES = ["lnincome", "beer", "age15to24", "retprice"]


def make_data(size: str, seed: int) -> dict:
    from decrimkit.datasets import load_dataset

    df = load_dataset("prop99", file="prop99_smoking_covariates.csv")
    df["treated"] = ((df["state"] == "California") & (df["year"] >= 1989)).astype(int)
    donors = sorted(set(df["state"]) - {"California"})[: SIZES[size]]
    df = df[df["state"].isin(["California", *donors])].reset_index(drop=True)
    return {"frame": df, "placebo": size != "fit", "seed": seed}


def decrimkit(data: dict) -> float:
    from decrimkit import Panel
    from decrimkit.estimators import synth

    panel = Panel.from_frame(data["frame"], unit="state", time="year", outcome="cigsale", treated="treated",
                             covariates=COVARIATES, missing_covariates="keep")
    res = synth.scm(panel, treated="California", start=1989, predictors=PREDICTORS, mspe_window=(1970, 1988),
                    seed=data["seed"])
    if not data["placebo"]:
        return float(res.estimate)
    return float(res.placebo("space", refit_v=True).p_value)


def mlsynth(data: dict) -> float:
    with warnings.catch_warnings():  # mlsynth 1.0 triggers pydantic deprecation warnings on import
        warnings.simplefilter("ignore")
        from mlsynth.estimators.vanillasc import VanillaSC
    df = data["frame"].copy()
    cov, windows = [], {}
    for col, lo, hi in PREDICTORS:
        name = col if col != "cigsale" else f"cigsale_{lo}"
        df[name] = df[col]
        cov.append(name)
        windows[name] = (lo, hi)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = VanillaSC({"df": df, "outcome": "cigsale", "treat": "treated", "unitid": "state", "time": "year",
                         "covariates": cov, "covariate_windows": windows, "backend": "mscmt",
                         "inference": bool(data["placebo"]), "seed": data["seed"], "display_graphs": False}).fit()
    if not data["placebo"]:
        return float(res.effects.att)
    return float(res.inference.p_value)


TOOLS = {"decrimkit": decrimkit, "mlsynth": mlsynth}


def agree(ours: float, peer: float, tool: str | None = None) -> bool:
    """Mean gap: within 0.2 packs (issue 23's tolerance for the same optimum). p-value: one rank (1/(J+1))."""
    if 0 <= ours <= 1 and 0 <= peer <= 1:
        return bool(abs(ours - peer) <= 1 / 11 + 1e-12)
    return bool(abs(ours - peer) <= 0.2)


def stream_bytes(data: dict) -> int:
    return int(data["frame"].select_dtypes("number").to_numpy().nbytes)


def versions() -> dict[str, str]:
    from importlib import metadata

    return {"mlsynth": metadata.version("mlsynth")}
