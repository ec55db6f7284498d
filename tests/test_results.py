"""Result display: p-values read ``<0.001`` (tidy keeps full precision); headers name the design."""

from __future__ import annotations

import pandas as pd
import pytest

from decrimkit.estimators import did
from decrimkit.reporting import Report
from decrimkit.reporting.render import table_md
from decrimkit.results import Effect, Spec, format_p, p_clause


@pytest.mark.parametrize(
    ("p", "shown"),
    [(1.259e-70, "<0.001"), (0.0009999, "<0.001"), (0.001, "0.001"), (0.0213, "0.021"), (0.5, "0.500"),
     (1.0, "1.000"), (float("nan"), ""), (None, "")],
)
def test_format_p(p, shown):
    assert format_p(p) == shown


def test_summary_shows_small_p_as_below_threshold_and_tidy_keeps_precision():
    res = Effect(label=("treated",), estimate=[1.0], se=[0.05], spec=Spec(estimator="demo"))
    assert res.p_value[0] < 1e-80
    text = res.summary()
    assert "<0.001" in text and "e-" not in text
    assert "&lt;0.001" in res._repr_html_()
    assert res.tidy()["p_value"].iloc[0] == pytest.approx(res.p_value[0], rel=1e-12)  # full precision


def test_att_gt_header_names_control_group_and_method(mpdta):
    never = did.att_gt(mpdta, n_boot=0).summary().splitlines()
    assert "control group: never treated; anticipation periods: 0; estimation method: doubly robust (dr)" in never
    notyet = did.att_gt(mpdta, control="notyet", method="reg", n_boot=0).aggregate("simple").summary()
    assert "control group: not yet treated; anticipation periods: 0; estimation method: outcome regression (reg)" in notyet


def test_report_tables_print_p_values_below_threshold(tmp_path):
    rep = Report("demo", out=tmp_path / "demo", seed=0)
    rep.add_result("att", estimate=-0.5, se=0.01, p_value=1.259e-70, method="demo")
    rep.add_table("tests", pd.DataFrame({"test": ["a", "b"], "p_value": [3e-9, 0.04567]}))
    out = rep.write()
    md = (out / "report.md").read_text()
    assert "<0.001" in md and "1.259e-70" not in md and "3e-09" not in md and "0.046" in md
    assert "<0.001" in table_md(pd.DataFrame({"p": [1e-5]}))
    # the machine-readable outputs keep the number
    assert "1.259e-70" in (out / "results.json").read_text()
    assert pd.read_csv(out / "tables" / "tests.csv")["p_value"].iloc[0] == pytest.approx(3e-9)


@pytest.mark.parametrize(("p", "text"), [(3e-12, "p < 0.001"), (0.0421, "p = 0.042"), (float("nan"), "p n/a")])
def test_p_clause(p, text):
    assert p_clause(p) == text
