"""Shared test set-up: headless plotting, no progress bars, strict JAX, deterministic hypothesis.

Warnings are errors (pyproject's ``filterwarnings``); JAX runs in float64 (``import decrimkit``)
and raises on implicit rank promotion, as the style guide asks.
"""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ["DECRIMKIT_PROGRESS"] = "0"

import jax  # noqa: E402
import matplotlib  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

import decrimkit  # noqa: E402,F401  (turns on float64)
from decrimkit import Panel  # noqa: E402
from decrimkit.datasets import load_dataset  # noqa: E402

matplotlib.use("Agg")
jax.config.update("jax_numpy_rank_promotion", "raise")

# Deterministic property tests: the same examples on every run, no flaky deadlines on 2 shared cores.
settings.register_profile(
    "decrimkit",
    derandomize=True,
    deadline=None,
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("decrimkit")


@pytest.fixture
def mpdta_frame() -> pd.DataFrame:
    """The R did package's mpdta panel (bundled, sha256-verified): 500 counties x 2003-2007."""
    return load_dataset("mpdta")


@pytest.fixture
def mpdta(mpdta_frame: pd.DataFrame) -> Panel:
    """mpdta as a Panel: unit countyreal, time year, outcome lemp, cohort first.treat (0 = never)."""
    return Panel.from_frame(mpdta_frame, unit="countyreal", time="year", outcome="lemp", cohort="first.treat")


@pytest.fixture(autouse=True)
def _close_figures():
    """Close figures a test left open (matplotlib warns, and warnings are errors, past 20)."""
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
