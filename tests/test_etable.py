"""decrimkit.etable: several results side by side, its numbers the models' own tidy(alpha), in Markdown/LaTeX/HTML."""

from __future__ import annotations

import re

import pandas as pd
import pytest

import decrimkit
from decrimkit import Panel
from decrimkit.datasets import load_dataset
from decrimkit.errors import SpecificationError
from decrimkit.estimators import did
from decrimkit.reporting.etable import TIDY_COLUMNS, etable


@pytest.fixture(scope="module")
def models():
    """Three castle-doctrine TWFE fits whose tidy() has every contract column (few-treated inference names its
    method in tidy's ``inference`` column)."""
    frame = load_dataset("castle_doctrine")
    panel = Panel.from_frame(frame, unit="state", time="year", outcome="homicide_c", cohort="effyear",
                             population="population")
    return {
        "TWFE, Conley-Taber": did.twfe(panel, inference="conley_taber"),
        "TWFE, wild": did.twfe(panel, inference="wild", n_boot=199, seed=0),
        "TWFE, Ferman-Pinto": did.twfe(panel, inference="ferman_pinto"),
    }


def _expected(models, alpha):
    frames = []
    for name, result in models.items():
        tidy = result.tidy(alpha)
        frames.append(tidy.loc[:, list(TIDY_COLUMNS)].assign(model=name))
    return pd.concat(frames, ignore_index=True).loc[:, ["model", *TIDY_COLUMNS]]


def test_values_are_the_models_tidy_values(models):
    table = decrimkit.etable(models, alpha=0.1)
    pd.testing.assert_frame_equal(table.frame, _expected(models, 0.1), check_exact=False, rtol=1e-12)
    assert table.models == list(models)
    assert table.footer.loc["Inference"].tolist() == ["conley_taber", "wild", "ferman_pinto"]
    assert table.footer.loc["Observations"].tolist() == ["550"] * 3  # 50 states x 11 years
    assert table.footer.loc["Units"].tolist() == ["50"] * 3


def _two(models):
    return {k: models[k] for k in ("TWFE, Conley-Taber", "TWFE, wild")}


def test_markdown_shows_each_estimate_and_its_se_below(models):
    two = _two(models)
    table = etable(two, digits=3)
    pd.testing.assert_frame_equal(table.frame, _expected(two, 0.05), check_exact=False, rtol=1e-12)
    md = table.to_markdown()
    lines = md.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| term |"))
    assert lines[header] == "| term | TWFE, Conley-Taber | TWFE, wild |"
    est = [f"{two[m].tidy()['estimate'].iloc[0]:,.3f}" for m in two]
    se = [f"({two[m].tidy()['se'].iloc[0]:,.3f})" for m in two]
    assert lines[header + 2] == f"| treated | {est[0]} | {est[1]} |"
    assert lines[header + 3] == f"|  | {se[0]} | {se[1]} |"
    assert "| Inference | conley_taber | wild |" in md and "| Observations | 550 | 550 |" in md
    assert "standard errors in parentheses" in md
    assert repr(table) == md


def test_intervals_below_at_the_requested_level(models):
    two = _two(models)
    table = etable(two, alpha=0.1, below="interval", digits=2)
    md = table.to_markdown()
    for result in two.values():
        row = result.tidy(0.1).iloc[0]
        assert f"[{row['conf_low']:,.2f}, {row['conf_high']:,.2f}]" in md
    assert "| Interval | 90% | 90% |" in md and "90% intervals in brackets" in md
    assert "Interval" not in etable(two).footer.index  # with standard errors the level is not a footer row


def test_latex_and_html(models):
    two = _two(models)
    table = etable(two, below="interval", caption="Castle doctrine & homicides")
    tex = table.to_latex()
    assert "\\toprule" in tex and "\\bottomrule" in tex and "\\caption{Castle doctrine \\& homicides}" in tex
    row = two["TWFE, wild"].tidy().iloc[0]
    lo, hi = f"{row['conf_low']:,.3f}", f"{row['conf_high']:,.3f}"
    assert f"\\\\{{}}[{lo}, {hi}]" in tex  # "{}" keeps "\\[" from reading as a line-break length
    assert not re.search(r"\\\\\[", tex)
    html = table.to_html()
    assert "<table" in html and "TWFE, wild" in html and f"[{lo}, {hi}]" in html and "conley_taber" in html


def test_unnamed_results_are_named_by_estimator(models):
    table = etable(list(_two(models).values()))
    assert table.models == ["did.twfe (1)", "did.twfe (2)"]


def test_keep_and_bad_arguments(models):
    two = _two(models)
    assert etable(two, keep=["treated"]).frame["term"].tolist() == ["treated", "treated"]
    with pytest.raises(SpecificationError, match=r"keep names term\(s\) \['post'\] that no model has; terms: treated"):
        etable(two, keep=["post"])
    with pytest.raises(SpecificationError, match="alpha must be between 0 and 1"):
        etable(two, alpha=5)
    with pytest.raises(SpecificationError, match="below must be 'se' or 'interval'"):
        etable(two, below="ci")
    with pytest.raises(SpecificationError, match="at least one result"):
        etable({})
    with pytest.raises(SpecificationError, match="has no tidy"):
        etable({"numbers": 3.0})


class _OldResult:
    """A result from before the contract: its tidy() has no inference column."""

    def tidy(self, alpha=0.05):
        return pd.DataFrame({"term": ["att"], "estimate": [1.0], "se": [0.5], "conf_low": [0.0], "conf_high": [2.0],
                             "p_value": [0.05]})


def test_a_tidy_without_a_contract_column_is_named(models):
    with pytest.raises(SpecificationError, match=r"model 'old' \(_OldResult\).tidy\(alpha\) lacks the column\(s\) "
                                                 r"\['inference'\]"):
        etable({"new": models["TWFE, wild"], "old": _OldResult()})


class _NoAlpha:
    """A result whose tidy() ignores the interval level."""

    def tidy(self):
        return _OldResult().tidy().assign(inference="cluster")


def test_a_tidy_without_alpha_is_named():
    with pytest.raises(SpecificationError, match=r"model 'x' \(_NoAlpha\).tidy\(\) takes no alpha"):
        etable({"x": _NoAlpha()})


def test_a_report_includes_the_table(models, tmp_path):
    from decrimkit.reporting import Report

    rep = Report("etable_demo", out=tmp_path / "out")
    table = etable(_two(models))
    table.add_to(rep, "comparison")
    out = rep.write()
    written = pd.read_csv(out / "tables" / "comparison.csv", dtype=str, keep_default_na=False)
    assert written.columns.tolist() == ["term", "TWFE, Conley-Taber", "TWFE, wild"]
    assert written.iloc[0].tolist() == table.markdown_frame().iloc[0].tolist()
    assert "TWFE, wild" in (out / "report.md").read_text()
