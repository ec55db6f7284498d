"""Fixtures of the synthetic-control tests: Prop 99 and Basque panels from the bundled data."""

from __future__ import annotations

import pytest

from decrimkit import Panel
from decrimkit.datasets import load_dataset

BASQUE = "Basque Country (Pais Vasco)"
BASQUE_COVARIATES = [
    "school.illit",
    "school.prim",
    "school.med",
    "school.high",
    "school.post.high",
    "invest",
    "sec.agriculture",
    "sec.energy",
    "sec.industry",
    "sec.construction",
    "sec.services.venta",
    "sec.services.nonventa",
    "popdens",
]
# R Synth's Basque specification (Synth documentation; pysyncon tests/test_synth_basque.py):
# school.* and invest 1964-69, gdpcap 1960-69, sector shares 1961-69 (observed in odd years only), popdens 1969.
BASQUE_PREDICTORS = (
    [(c, 1964, 1969) for c in BASQUE_COVARIATES[:6]]
    + [("gdpcap", 1960, 1969)]
    + [(c, 1961, 1969) for c in BASQUE_COVARIATES[6:12]]
    + [("popdens", 1969, 1969)]
)


@pytest.fixture(scope="session")
def prop99_frame():
    return load_dataset("prop99", file="california_prop99_long.csv")


@pytest.fixture(scope="session")
def prop99(prop99_frame):
    return Panel.from_frame(prop99_frame, unit="State", time="Year", outcome="PacksPerCapita", treated="treated")


@pytest.fixture(scope="session")
def basque_frame():
    df = load_dataset("basque")
    return df.loc[df["regionno"] != 1].reset_index(drop=True)  # Spain is the national aggregate, not a donor


@pytest.fixture(scope="session")
def basque(basque_frame):
    return Panel.from_frame(
        basque_frame,
        unit="regionname",
        time="year",
        outcome="gdpcap",
        covariates=BASQUE_COVARIATES,
        missing_covariates="keep",
    )


@pytest.fixture(scope="session")
def basque_fit(basque):
    from decrimkit.estimators import synth

    # R Synth's local V search reproduces R Synth's published weights; the default global search finds a
    # V with a lower pre-period MSPE (test_scm_nested.py::test_basque_global_search_beats_r_synth)
    return synth.scm(
        basque, treated=BASQUE, start=1970, predictors=BASQUE_PREDICTORS, mspe_window=(1960, 1969), v="nested-local"
    )


@pytest.fixture(scope="session")
def basque_spec():
    """The treated label and R Synth's predictor list."""
    return {"treated": BASQUE, "predictors": BASQUE_PREDICTORS}
