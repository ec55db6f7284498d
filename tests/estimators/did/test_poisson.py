"""PPML DiD against pyfixest's fepois (counts with population exposure), and Wooldridge's ETWFE."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from decrimkit import Panel
from decrimkit.datasets import load_dataset
from decrimkit.errors import DataError, SpecificationError
from decrimkit.estimators import did


@pytest.fixture(scope="module")
def castle() -> Panel:
    """Castle doctrine homicide counts (homicide_c) with state population as exposure."""
    df = load_dataset("castle_doctrine")[["state", "year", "effyear", "homicide_c", "population", "unemployrt"]]
    return Panel.from_frame(
        df,
        unit="state",
        time="year",
        outcome="homicide_c",
        cohort="effyear",
        population="population",
        covariates=("unemployrt",),
    )


def _fepois(frame: pd.DataFrame, fml: str, k_ours: int, offset: str | None = "lp"):
    """pyfixest fepois, tight tolerances; k_fixef='none' and SEs rescaled to our K (see test_twfe)."""
    import pyfixest as pf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = pf.fepois(
            fml,
            data=frame,
            offset=offset,
            vcov={"CRV1": "unit"},
            ssc=pf.ssc(k_fixef="none"),
            iwls_tol=1e-12,
            fixef_tol=1e-12,
        )
    n, k = m._N, m._k
    return m.coef().to_numpy(), m.se().to_numpy() * np.sqrt((n - k) / (n - k_ours))


def test_ppml_matches_fepois(castle):
    res = did.poisson(castle)
    f = castle.frame.assign(lp=np.log(castle.frame["population"]))
    coef, se = _fepois(f, "y ~ d | unit + time", k_ours=1 + castle.n_periods)
    # both iterate to a relative deviance change of 1e-12 or less: 1e-6 on coefficients and SEs
    assert res.estimate[0] == pytest.approx(coef[0], rel=1e-6)
    assert res.se[0] == pytest.approx(se[0], rel=1e-6)
    assert res.rate_ratio[0] == pytest.approx(np.exp(coef[0]), rel=1e-6)
    assert res.rate_ratio_se[0] == pytest.approx(np.exp(coef[0]) * res.se[0], rel=1e-12)
    lo, hi = res.rate_ratio_conf_int()[0]
    assert lo < res.rate_ratio[0] < hi
    # with a covariate and without exposure
    res = did.poisson(castle, covariates=("unemployrt",), exposure=None)
    coef, se = _fepois(f, "y ~ d + unemployrt | unit + time", k_ours=2 + castle.n_periods, offset=None)
    np.testing.assert_allclose(res.estimate, coef, rtol=1e-6)
    np.testing.assert_allclose(res.se, se, rtol=1e-6)


def test_staggered_etwfe_matches_fepois_and_aggregates(castle):
    res = did.poisson(castle, staggered=True)
    cells = [lab for lab in res.label if lab.startswith("g=")]
    f = castle.frame.assign(lp=np.log(castle.frame["population"]))
    names = []
    for i, lab in enumerate(cells):
        g, t = (int(v.split("=")[1]) for v in lab.split(","))
        f[f"c{i}"] = ((f["cohort"] == g) & (f["time"] == t)).astype(float)
        names.append(f"c{i}")
    coef, se = _fepois(f, f"y ~ {' + '.join(names)} | unit + time", k_ours=len(names) + castle.n_periods)
    np.testing.assert_allclose(res.estimate[1:], coef, rtol=1e-6)
    np.testing.assert_allclose(res.se[1:], se, rtol=1e-6)
    counts = f[names].sum().to_numpy()
    assert res.estimate[0] == pytest.approx(counts @ coef / counts.sum(), rel=1e-6)
    assert res.se[0] == pytest.approx(
        np.sqrt((counts / counts.sum()) @ res.vcov[1:, 1:] @ (counts / counts.sum())), rel=1e-9
    )


def test_all_zero_units_are_dropped_and_recorded(castle):
    f = castle.frame.copy()
    f.loc[f["unit"] == "Wyoming", "y"] = 0.0
    p = Panel.from_frame(f, unit="unit", time="time", outcome="y", cohort="cohort", population="population")
    res = did.poisson(p)
    assert res.spec.n_obs == castle.n_obs - castle.n_periods
    assert any("zero counts" in reason and n == castle.n_periods for n, reason in res.spec.excluded)


def test_poisson_errors(castle, mpdta):
    with pytest.raises(DataError, match="population"):
        did.poisson(mpdta)  # no population for the default exposure
    with pytest.raises(SpecificationError, match="exposure"):
        did.poisson(castle, exposure="households")
    f = castle.frame.assign(u2=castle.frame["unemployrt"] * 3)
    p = Panel.from_frame(
        f,
        unit="unit",
        time="time",
        outcome="y",
        cohort="cohort",
        population="population",
        covariates=("unemployrt", "u2"),
    )
    with pytest.raises(SpecificationError, match="collinear"):
        did.poisson(p, covariates=("unemployrt", "u2"))
    neg = Panel.from_frame(
        mpdta.frame.assign(y=mpdta.frame["y"] - 10), unit="unit", time="time", outcome="y", cohort="cohort"
    )
    with pytest.raises(DataError, match="non-negative"):
        did.poisson(neg, exposure=None)
    zero = Panel.from_frame(
        castle.frame.assign(y=0.0), unit="unit", time="time", outcome="y", cohort="cohort", population="population"
    )
    with pytest.raises(DataError, match="every count in the outcome is zero"):
        did.poisson(zero)
