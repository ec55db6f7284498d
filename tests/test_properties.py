"""Property tests (hypothesis): Panel construction and invariances every DiD-type estimate must have.

For a DiD estimator ``tau(y)``: permuting rows or relabelling units changes nothing; adding a constant
to every outcome changes nothing (the unit and period effects absorb it); multiplying the outcome by
``c`` multiplies the estimate by ``c`` and the standard error by ``|c|``. Synthetic control weights sum
to one, so SCM and SDID gaps share the same invariances. Tolerances: 1e-8 relative (plus a small
absolute floor) for closed-form least squares; 1e-6 for the iterative synthetic-control solvers,
whose stopping rules are scale-free but not exact.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from decrimkit import Panel
from decrimkit.estimators import did, synth

SETTINGS = settings(max_examples=12, deadline=None)
seeds = st.integers(min_value=0, max_value=2**31 - 1)
shifts = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, allow_infinity=False)
scales = st.floats(min_value=0.05, max_value=50.0).flatmap(lambda v: st.sampled_from([v, -v]))


def frame(seed: int, n_units: int = 14, n_periods: int = 6) -> pd.DataFrame:
    """Staggered panel with heterogeneous effects: units 0-3 adopt in 2003, 4-7 in 2004, others never."""
    rng = np.random.default_rng(seed)
    unit = np.repeat(np.arange(n_units), n_periods)
    year = np.tile(np.arange(n_periods), n_units) + 2000
    first = np.where(unit < 4, 2003, np.where(unit < 8, 2004, 0))
    d = (first > 0) & (year >= first)
    y = (rng.normal(size=n_units)[unit] + rng.normal(size=n_periods)[year - 2000]
         + d * rng.normal(1.0, 0.5, size=n_units)[unit] + rng.normal(size=len(unit)))
    return pd.DataFrame({"unit": unit, "year": year, "y": y, "first": first})


def build(df: pd.DataFrame) -> Panel:
    return Panel.from_frame(df, unit="unit", time="year", outcome="y", cohort="first")


def shuffled(df: pd.DataFrame, seed: int) -> pd.DataFrame:
    return df.sample(frac=1.0, random_state=np.random.RandomState(seed % 2**32)).reset_index(drop=True)


def relabelled(df: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Units renamed to strings in a random order (so the sorted unit order changes too)."""
    perm = np.random.default_rng(seed).permutation(df["unit"].max() + 1)
    out = df.copy()
    out["unit"] = [f"u{perm[u]:03d}-é" for u in df["unit"]]
    return out


ESTIMATORS = {
    "twfe": lambda p: did.twfe(p),
    "att_gt": lambda p: did.att_gt(p, n_boot=0).aggregate("simple"),
    "imputation": lambda p: did.imputation(p),
}


def estimate_se(name: str, p: Panel) -> tuple[float, float]:
    res = ESTIMATORS[name](p)
    if name == "imputation":
        return res.overall
    return float(res.estimate[0]), float(res.se[0])


# ------------------------------------------------------------------ Panel construction
@SETTINGS
@given(seed=seeds, perm_seed=seeds)
def test_panel_is_invariant_to_row_order(seed, perm_seed):
    df = frame(seed)
    a, b = build(df), build(shuffled(df, perm_seed))
    pd.testing.assert_frame_equal(a.frame, b.frame)
    assert list(a.units) == list(b.units) and list(a.times) == list(b.times)


@SETTINGS
@given(seed=seeds, drop=st.integers(min_value=0, max_value=83))
def test_panel_canonical_columns_are_consistent(seed, drop):
    df = frame(seed).drop(index=[drop])
    p = build(df)
    f = p.frame
    assert p.n_obs == len(df) and not p.is_balanced
    assert (f["t"].to_numpy() == np.searchsorted(p.times, f["time"].to_numpy())).all()
    assert ((f["d"] == 1) == (f["t"] >= f["g"])).all()
    assert f.groupby("unit")["g"].nunique().max() == 1
    np.testing.assert_array_equal(np.sort(f["y"].to_numpy()), np.sort(df["y"].to_numpy()))


@SETTINGS
@given(seed=seeds)
def test_panel_does_not_mutate_the_input(seed):
    df = frame(seed)
    before = df.copy()
    build(df)
    pd.testing.assert_frame_equal(df, before)


# ------------------------------------------------------------------ DiD estimators
@pytest.mark.parametrize("name", sorted(ESTIMATORS))
@SETTINGS
@given(seed=seeds, perm_seed=seeds)
def test_row_order_and_unit_labels_do_not_matter(name, seed, perm_seed):
    df = frame(seed)
    base = estimate_se(name, build(df))
    for other in (shuffled(df, perm_seed), relabelled(df, perm_seed)):
        np.testing.assert_allclose(estimate_se(name, build(other)), base, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
@SETTINGS
@given(seed=seeds, shift=shifts, scale=scales)
def test_outcome_shift_and_scale(name, seed, shift, scale):
    df = frame(seed)
    est, se = estimate_se(name, build(df))
    moved = df.assign(y=df["y"] + shift)
    np.testing.assert_allclose(estimate_se(name, build(moved)), (est, se), rtol=1e-8, atol=1e-9 * (1 + abs(shift)))
    scaled = df.assign(y=df["y"] * scale)
    np.testing.assert_allclose(estimate_se(name, build(scaled)), (scale * est, abs(scale) * se), rtol=1e-8,
                               atol=1e-12)


# ------------------------------------------------------------------ synthetic control (one treated unit)
def block_frame(seed: int) -> pd.DataFrame:
    df = frame(seed, n_units=12, n_periods=10)
    df["first"] = np.where(df["unit"] == 0, 2007, 0)
    return df


@SETTINGS
@given(seed=seeds, shift=st.floats(min_value=-50, max_value=50), scale=scales)
def test_scm_gap_shift_and_scale(seed, shift, scale):
    df = block_frame(seed)
    fit = synth.scm(build(df), treated=0, start=2007, v="equal")
    w = np.asarray(fit.weights.to_numpy() if hasattr(fit.weights, "to_numpy") else fit.weights, dtype=float)
    assert w.min() >= -1e-10 and w.sum() == pytest.approx(1.0, abs=1e-8)  # weights on the simplex
    moved = synth.scm(build(df.assign(y=df["y"] + shift)), treated=0, start=2007, v="equal")
    assert moved.estimate == pytest.approx(fit.estimate, rel=1e-6, abs=1e-6)
    scaled = synth.scm(build(df.assign(y=df["y"] * scale)), treated=0, start=2007, v="equal")
    assert scaled.estimate == pytest.approx(scale * fit.estimate, rel=1e-6, abs=1e-6 * abs(scale))


@settings(max_examples=8, deadline=None)
@given(seed=seeds, shift=st.floats(min_value=-50, max_value=50), scale=scales)
def test_sdid_shift_and_scale(seed, shift, scale):
    df = block_frame(seed)
    est = synth.sdid(build(df), se_method=None).estimate
    moved = synth.sdid(build(df.assign(y=df["y"] + shift)), se_method=None).estimate
    assert moved == pytest.approx(est, rel=1e-6, abs=1e-6)
    scaled = synth.sdid(build(df.assign(y=df["y"] * scale)), se_method=None).estimate
    assert scaled == pytest.approx(scale * est, rel=1e-6, abs=1e-6 * abs(scale))
