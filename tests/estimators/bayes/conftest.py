"""Small simulated data sets with known effects for the Bayesian family (numbers stated where used)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from decrimkit import Panel

# Known effects of the simulated hierarchical panel: two policy models, three jurisdictions each.
THETA = {"u0": -0.5, "u1": -0.4, "u2": -0.6, "u3": 0.0, "u4": 0.1, "u5": -0.1}
MODEL = {"u0": "A", "u1": "A", "u2": "A", "u3": "B", "u4": "B", "u5": "B"}


@pytest.fixture(scope="session")
def monthly_counts() -> tuple[pd.Series, float]:
    """48 months of negative-binomial counts (mean ~200, dispersion 50) with a level change of
    log(0.6) = -0.511 from month 37 (2021-01), month-of-year seasonality and a mild trend."""
    rng = np.random.default_rng(20240601)
    months = pd.period_range("2018-01", periods=48, freq="M")
    t = np.arange(48)
    season = 0.15 * np.sin(2 * np.pi * months.month.to_numpy() / 12)
    level = np.log(0.6)
    eta = np.log(200) + 0.002 * t + season + level * (t >= 36)
    mu = np.exp(eta)
    alpha = 50.0
    y = rng.poisson(rng.gamma(alpha, mu / alpha))
    return pd.Series(y, index=months, name="arrests"), level


@pytest.fixture(scope="session")
def hier_truth() -> tuple[dict[str, float], dict[str, str]]:
    """(THETA, MODEL): the simulated panel's true log-rate effects and policy models."""
    return dict(THETA), dict(MODEL)


@pytest.fixture(scope="session")
def hier_panel() -> Panel:
    """12 units x 16 years of Poisson counts with population 1e5 (rate 1e-3), unit and year effects;
    units u0-u5 adopt in year 2008 with log-rate effects THETA, u6-u11 never adopt."""
    rng = np.random.default_rng(7)
    n_units, n_years = 12, 16
    a = rng.normal(0, 0.4, n_units)
    g = rng.normal(0, 0.1, n_years)
    rows = []
    for i in range(n_units):
        u = f"u{i}"
        for t in range(n_years):
            on = u in THETA and t >= 8
            mu = np.exp(np.log(100.0) + a[i] + g[t] + (THETA[u] if on else 0.0))
            rows.append({"unit": u, "year": 2000 + t, "y": rng.poisson(mu), "pop": 1e5,
                         "adopted": 2008 if u in THETA else 0})
    df = pd.DataFrame(rows)
    return Panel.from_frame(df, unit="unit", time="year", outcome="y", cohort="adopted", population="pop")
