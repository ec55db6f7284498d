"""The generic estimate plot (decrimkit.plotting.coef_plot) labels whole-number axes (cohorts, years) as such.

Callaway-Sant'Anna's ATT by cohort on two cohorts drew ticks 2019.00, 2019.25, ..., 2021.00, overlapping and
meaningless (a cohort is a year), and its simultaneous band as one region filled between the cohorts, as if
the effect were a curve over cohort years. The axis now has one tick per cohort, labelled as the year, and
the band is a shaded bar at each cohort; along event time (a step-1 axis) the band stays a filled region.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from decrimkit.datasets import load_dataset
from decrimkit.estimators import did
from decrimkit.panel import Panel
from decrimkit.plotting import coef_plot


def _labels(fig) -> list[str]:
    fig.canvas.draw()
    return [t.get_text() for t in fig.axes[0].get_xticklabels()]


def test_cohort_axis_has_one_tick_per_cohort():
    df = load_dataset("mpdta")
    panel = Panel.from_frame(df, unit="countyreal", time="year", outcome="lemp", cohort="first.treat")
    res = did.att_gt(panel, n_boot=999, seed=0)
    fig = res.aggregate("group").plot()
    try:
        assert _labels(fig) == ["2004", "2006", "2007"]
        ax = fig.axes[0]
        assert not any("PolyCollection" in type(c).__name__ for c in ax.collections)  # no region filled between
        bars = [p for p in ax.patches if type(p).__name__ == "Rectangle"]
        band = res.aggregate("group").plot_data()
        assert len(bars) == 3
        assert sorted(round(b.get_y(), 9) for b in bars) == sorted(round(v, 9) for v in band["band_low"])
    finally:
        plt.close(fig)
    fig = res.aggregate("dynamic").plot()
    try:
        assert any("PolyCollection" in type(c).__name__ for c in fig.axes[0].collections)  # a filled band
    finally:
        plt.close(fig)


def test_many_whole_numbers_get_integer_ticks_and_fractions_stay():
    frame = pd.DataFrame({"t": range(-20, 20), "estimate": 0.0, "conf_low": -1.0, "conf_high": 1.0})
    fig = coef_plot(frame, x="t")
    try:
        ticks = fig.axes[0].get_xticks()
        assert len(ticks) >= 3 and all(float(v).is_integer() for v in ticks)
    finally:
        plt.close(fig)
    frame = pd.DataFrame({"x": [0.1, 0.35, 0.6], "estimate": 0.0, "conf_low": -1.0, "conf_high": 1.0})
    fig = coef_plot(frame, x="x")
    try:
        assert not all(float(v).is_integer() for v in fig.axes[0].get_xticks())  # a continuous axis is left alone
    finally:
        plt.close(fig)
