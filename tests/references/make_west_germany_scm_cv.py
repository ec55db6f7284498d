"""Reference values for ``synth.scm(..., v="cv")``: ADH (2015)'s West Germany fit, computed with pysyncon.

Abadie, Diamond and Hainmueller (2015), "Comparative Politics and the Synthetic Control Method", AJPS
59(2), choose the predictor weights V by cross-validation in two steps (their replication code, R Synth):

1. training: predictors measured 1971-1980 (gdp, trade, infrate averaged 1971-1980; industry 1971-1980;
   schooling 1970 and 1975; invest70 in 1980); V minimises the outcome (gdp) MSPE over 1981-1990 of the
   synthetic control fitted on those predictors;
2. final fit: the same predictors measured 1981-1990 (industry 1981-1990, observed to 1989; schooling
   1980 and 1985; invest80 in 1980) with the V of step 1 (R Synth's ``custom.v``).

This script runs both steps with pysyncon (``Dataprep``, ``Synth``, ``custom_V``; its defaults: Nelder-Mead
from equal V in step 1) on the bundled ``west_germany`` panel, and writes ``west_germany_scm_cv.json``: the
step-1 V and validation MSPE, the step-2 weights, the mean 1991-2003 gap, the package versions and the
date, beside ADH (2015)'s published weights (Table 2 / Figure 1). Run from the repository root::

    python tests/references/make_west_germany_scm_cv.py
"""

from __future__ import annotations

import datetime
import json
from importlib.metadata import version
from pathlib import Path

import numpy as np

from decrimkit.datasets import load_dataset

OUT = Path(__file__).with_name("west_germany_scm_cv.json")
TREATED = "West Germany"


def main() -> None:
    from pysyncon import Dataprep, Synth

    df = load_dataset("west_germany").astype({"country": object})
    controls = [c for c in df["country"].unique() if c != TREATED]
    common = dict(foo=df, predictors=["gdp", "trade", "infrate"], predictors_op="mean", dependent="gdp",
                  unit_variable="country", time_variable="year", treatment_identifier=TREATED,
                  controls_identifier=controls)
    train = Dataprep(**common, time_predictors_prior=range(1971, 1981),
                     special_predictors=[("industry", range(1971, 1981), "mean"), ("schooling", [1970, 1975], "mean"),
                                         ("invest70", [1980], "mean")],
                     time_optimize_ssr=range(1981, 1991))
    final = Dataprep(**common, time_predictors_prior=range(1981, 1991),
                     special_predictors=[("industry", range(1981, 1991), "mean"), ("schooling", [1980, 1985], "mean"),
                                         ("invest80", [1980], "mean")],
                     time_optimize_ssr=range(1960, 1990))
    s1 = Synth()
    s1.fit(dataprep=train)
    s2 = Synth()
    s2.fit(dataprep=final, custom_V=s1.V)
    w = s2.weights(round=10)
    wide = df.pivot(index="year", columns="country", values="gdp")
    synthetic = wide[list(w.index)].to_numpy() @ w.to_numpy()
    gap = wide[TREATED].to_numpy() - synthetic
    post = wide.index.to_numpy() >= 1991
    ref = {
        "source": "pysyncon Synth (Nelder-Mead from equal V, pysyncon defaults) on ADH (2015)'s two-step "
                  "cross-validation; ADH (2015) AJPS 59(2) Table 2 for the published weights",
        "versions": {"pysyncon": version("pysyncon"), "numpy": version("numpy"), "scipy": version("scipy")},
        "date": datetime.date.today().isoformat(),
        "data": "decrimkit bundled west_germany (pysyncon data/germany.csv, ADH replication file repgermany.dta)",
        "train_predictors": [["gdp", 1971, 1980], ["trade", 1971, 1980], ["infrate", 1971, 1980],
                             ["industry", 1971, 1980], ["schooling", 1970, 1975], ["invest70", 1980, 1980]],
        "final_predictors": [["gdp", 1981, 1990], ["trade", 1981, 1990], ["infrate", 1981, 1990],
                             ["industry", 1981, 1990], ["schooling", 1980, 1985], ["invest80", 1980, 1980]],
        "validate": [1981, 1990],
        "pysyncon": {
            "v": [float(a) for a in np.asarray(s1.V)],
            "validation_mspe": float(s1.loss_V),
            "weights": {k: float(x) for k, x in w.items()},
            "mean_gap_1991_2003": float(gap[post].mean()),
        },
        "adh2015_published": {
            "weights": {"Austria": 0.42, "USA": 0.22, "Japan": 0.16, "Switzerland": 0.11, "Netherlands": 0.09},
            "note": "rounded to two decimals in the paper; every other donor 0",
        },
        # weights: absolute, per donor; validation MSPE: ours at most pysyncon's times (1 + rel);
        # mean gap: absolute, in 2002 USD per capita (0.6% of the gap)
        "tolerance": {"weights_vs_pysyncon_same_v": 0.005, "cv_weights_vs_pysyncon": 0.01,
                      "weights_vs_published": 0.02, "validation_mspe_rel": 1e-3, "mean_gap_abs": 10.0},
    }
    OUT.write_text(json.dumps(ref, indent=1) + "\n")
    print(json.dumps(ref["pysyncon"], indent=1))


if __name__ == "__main__":
    main()
