"""Disparity DiD (change in a between-group rate ratio): identities, recovery, fepois cross-check."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from decrimkit import Panel
from decrimkit.errors import DataError, DesignError, SpecificationError
from decrimkit.estimators import did


def _simulated(seed: int = 1, effect: float = 0.8, n_units: int = 30, n_periods: int = 10) -> pd.DataFrame:
    """Arrest counts by race: group B's rate falls by `effect` in treated units after adoption (period 5);
    group A has its own trend; populations differ by unit and group."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_units):
        treated = u < n_units // 2
        pop = {"A": 5000 + 100 * u, "B": 1500 + 40 * u}
        level = {"A": 0.004 * np.exp(0.02 * u), "B": 0.012 * np.exp(0.01 * u)}
        for t in range(n_periods):
            for g in ("A", "B", "C"):
                if g == "C":
                    rows.append((u, 2010 + t, g, rng.poisson(20), 800, 2015 if treated else 0))
                    continue
                rate = level[g] * np.exp((0.03 if g == "A" else -0.01) * t)
                if g == "B" and treated and t >= 5:
                    rate *= effect
                rows.append((u, 2010 + t, g, rng.poisson(rate * pop[g]), pop[g], 2015 if treated else 0))
    return pd.DataFrame(rows, columns=["county", "year", "race", "arrests", "pop", "first"])


@pytest.fixture(scope="module")
def panel() -> Panel:
    return Panel.from_frame(
        _simulated(), unit="county", time="year", outcome="arrests", cohort="first", population="pop", group="race"
    )


def test_ols_disparity_is_did_of_log_rate_ratio(panel):
    res = did.disparity(panel, group="B", reference="A", method="ols")
    f = panel.frame[panel.frame["group"].isin(["A", "B"])]
    wide = f.pivot_table(index=["unit", "time"], columns="group", values="rate").reset_index()
    wide["log_rr"] = np.log(wide["B"] / wide["A"])
    cohort = f.drop_duplicates("unit").set_index("unit")["cohort"].fillna(0)
    ratio_panel = Panel.from_frame(
        wide.assign(cohort=wide["unit"].map(cohort)), unit="unit", time="time", outcome="log_rr", cohort="cohort"
    )
    # balanced panel: the joint model's beta_B - beta_A equals the DiD of the log ratio exactly
    assert res.disparity == pytest.approx(did.twfe(ratio_panel).att, rel=1e-10)
    assert res.spec.excluded and "other than" in res.spec.excluded[-1][1]


def test_ppml_recovers_known_disparity_and_matches_fepois(panel):
    import pyfixest as pf

    res = did.disparity(panel, group="B", reference="A")
    # true change in the B/A rate ratio is log(0.8); 300 cells of ~60-200 arrests: within 0.06
    assert res.disparity == pytest.approx(np.log(0.8), abs=0.06)
    assert res.rate_ratio[2] == pytest.approx(np.exp(res.disparity), rel=1e-12)
    f = panel.frame[panel.frame["group"].isin(["A", "B"])].copy()
    f["lp"] = np.log(f["population"])
    f["dA"] = f["d"] * (f["group"] == "A")
    f["dB"] = f["d"] * (f["group"] == "B")
    f["ug"] = f["unit"].astype(str) + "_" + f["group"].astype(str)
    f["tg"] = f["time"].astype(str) + "_" + f["group"].astype(str)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = pf.fepois(
            "y ~ dB + dA | ug + tg",
            data=f,
            offset="lp",
            vcov={"CRV1": "unit"},
            ssc=pf.ssc(k_fixef="none"),
            iwls_tol=1e-12,
            fixef_tol=1e-12,
        )
    coef = m.coef()
    assert res.estimate[0] == pytest.approx(coef["dB"], rel=1e-6)
    assert res.estimate[1] == pytest.approx(coef["dA"], rel=1e-6)
    # the contrast's variance from pyfixest's vcov, rescaled from K = 2 to ours (fixest's nonnested rule)
    n = m._N
    k_ours = 2 + 2 * panel.n_periods
    v = np.asarray(m._vcov) * (n - 2) / (n - k_ours)
    c = np.array([1.0, -1.0])
    assert res.se[2] == pytest.approx(np.sqrt(c @ v @ c), rel=1e-6)


def test_disparity_plot_and_tidy(panel):
    res = did.disparity(panel, group=["B", "C"], reference="A")
    assert res.label[-2:] == ("disparity: B vs A", "disparity: C vs A")
    tidy = res.tidy()
    assert {"rate_ratio", "rr_conf_low", "rr_conf_high"} <= set(tidy.columns)
    fig = res.plot()
    assert len(fig.axes[0].get_xticklabels()) == 5


def test_disparity_errors(panel, mpdta):
    with pytest.raises(SpecificationError, match="group="):
        did.disparity(mpdta, group="B", reference="A")
    with pytest.raises(SpecificationError, match="not in the panel"):
        did.disparity(panel, group="Hispanic", reference="A")
    with pytest.raises(SpecificationError, match="differ"):
        did.disparity(panel, group="A", reference="A")
    with pytest.raises(SpecificationError, match="method"):
        did.disparity(panel, group="B", reference="A", method="logit")
    zero = panel.frame.copy()
    zero.loc[zero.index[0], "y"] = 0.0
    p = Panel.from_frame(
        zero, unit="unit", time="time", outcome="y", cohort="cohort", population="population", group="group"
    )
    with pytest.raises(DataError, match="ppml"):
        did.disparity(p, group="B", reference="A", method="ols")
    gap = Panel.from_frame(
        panel.frame.iloc[1:],
        unit="unit",
        time="time",
        outcome="y",
        cohort="cohort",
        population="population",
        group="group",
    )
    with pytest.raises(DesignError, match="one row per group"):
        did.disparity(gap, group="B", reference="A")


def test_disparity_warns_when_few_units_are_treated():
    from decrimkit.errors import FewTreatedWarning

    small = Panel.from_frame(_simulated(n_units=8), unit="county", time="year", outcome="arrests", cohort="first",
                             population="pop", group="race")
    with pytest.warns(FewTreatedWarning, match="disparity: the estimate rests on 4 treated units"):
        did.disparity(small, group="B", reference="A")
