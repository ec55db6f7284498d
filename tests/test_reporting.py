"""Report writer, small-cell suppression (primary and complementary) and the row-level refusal."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from decrimkit.errors import DataError, SpecificationError
from decrimkit.plotting import figure
from decrimkit.reporting import Report, check_aggregate, suppress, suppression_mask
from decrimkit.reporting.rowlevel import identifier_columns

# ---------------------------------------------------------------------------------------- suppression


def test_primary_suppression_hides_1_to_10_not_zero():
    t = pd.DataFrame({"n": [0, 1, 10, 11, 500]})
    mask = suppression_mask(t, ["n"], totals="none")
    assert mask["n"].tolist() == [False, True, True, False, False]
    assert suppress(t, ["n"], totals="none")["n"].tolist() == ["0", "(S)", "(S)", "11", "500"]


def test_threshold_is_configurable():
    t = pd.DataFrame({"n": [4, 5, 20]})
    assert suppress(t, ["n"], threshold=5, totals="none")["n"].tolist() == ["(S)", "5", "20"]


def test_complementary_in_a_column_protects_the_total():
    t = pd.DataFrame({"district": list("NSEW"), "arrests": [120, 4, 60, 35]})
    out = suppress(t, ["arrests"])
    # 4 is hidden; with only it hidden the column total (219) would reveal it, so the next smallest (35) goes too
    assert out["arrests"].tolist() == ["120", "(S)", "60", "(S)"]
    assert out["district"].tolist() == list("NSEW")


def test_complementary_across_rows_and_columns_iterates():
    t = pd.DataFrame({"black": [120, 4, 60, 80], "white": [30, 25, 40, 0], "other": [12, 13, 14, 15]})
    mask = suppression_mask(t, ["black", "white", "other"]).to_numpy()
    expected = np.array([[0, 1, 1], [1, 1, 1], [1, 0, 1], [0, 0, 0]], dtype=bool)
    np.testing.assert_array_equal(mask, expected)
    for line in [*mask, *mask.T]:
        assert line.sum() != 1


def test_zero_is_complement_only_when_nothing_else_is_left():
    t = pd.DataFrame({"a": [5], "b": [0]})
    assert suppression_mask(t, ["a", "b"], totals="rows").to_numpy().tolist() == [[True, True]]
    t = pd.DataFrame({"a": [5], "b": [0], "c": [40]})
    assert suppression_mask(t, ["a", "b", "c"], totals="rows").to_numpy().tolist() == [[True, False, True]]


def test_missing_counts_are_left_blank():
    t = pd.DataFrame({"n": [np.nan, 3.0, 50.0, 70.0]})
    assert suppress(t, ["n"])["n"].tolist() == ["", "(S)", "(S)", "70"]


@pytest.mark.parametrize(
    ("frame", "cols", "error", "match"),
    [
        (pd.DataFrame({"n": [-1, 5]}), ["n"], DataError, "negative"),
        (pd.DataFrame({"n": [1.5, 5]}), ["n"], DataError, "non-integer"),
        (pd.DataFrame({"n": ["a", "b"]}), ["n"], DataError, "not numeric"),
        (pd.DataFrame({"n": [1, 5]}), ["m"], SpecificationError, r"count column\(s\) \['m'\]"),
    ],
)
def test_suppression_refuses_bad_counts(frame, cols, error, match):
    with pytest.raises(error, match=match):
        suppress(frame, cols)


@settings(max_examples=40)
@given(arrays(np.int64, st.tuples(st.integers(1, 6), st.integers(1, 5)), elements=st.integers(0, 40)))
def test_no_hidden_cell_is_alone_in_a_line(values):
    t = pd.DataFrame(values, columns=[f"c{j}" for j in range(values.shape[1])])
    small = (values >= 1) & (values <= 10)
    primary = suppression_mask(t, list(t.columns), totals="none").to_numpy()
    np.testing.assert_array_equal(primary, small)  # primary rule exactly: 1..10 hidden, zeros shown
    mask = suppression_mask(t, list(t.columns)).to_numpy()
    assert mask[small].all()
    # a row or column total can reveal a hidden cell only if that cell is the only hidden one in its line
    if values.shape[1] > 1:
        assert all(row.sum() != 1 for row in mask)
    if values.shape[0] > 1:
        assert all(col.sum() != 1 for col in mask.T)


# ---------------------------------------------------------------------------------------- row-level refusal


@pytest.mark.parametrize(
    "col", ["Arrest", "arrest_id", "ArrestNumber", "case_no", "person id", "DOB", "Latitude", "name"]
)
def test_identifier_columns_are_refused(col):
    df = pd.DataFrame({col: [1, 2], "count": [20, 30]})
    with pytest.raises(DataError, match="identifier-like column"):
        check_aggregate(df, "t")


def test_aggregate_names_pass():
    df = pd.DataFrame(
        {
            "arrest_count": [1],
            "arrests": [2],
            "county_fips": ["24510"],
            "month": ["2020-01"],
            "period": [1],
            "idle": [0],
            "identity_share": [0.5],
        }
    )
    assert identifier_columns(df) == []


def test_long_tables_are_refused(tmp_path):
    df = pd.DataFrame({"x": np.arange(1001)})
    with pytest.raises(DataError, match="1001 rows, more than the 1000 allowed"):
        check_aggregate(df, "big")
    rep = Report("demo", out=tmp_path, max_table_rows=2000)
    rep.add_table("big", df, not_counts=("x",))  # allowed once the limit is raised


# ---------------------------------------------------------------------------------------- Report


def fill(rep: Report) -> None:
    rep.use_dataset("mpdta")
    rep.add_result(
        "att",
        estimate=-0.0365489366741234,
        se=0.0132651554293,
        conf_int=(-0.0626, -0.0105),
        n=2500,
        method="did.twfe",
        unit="log points",
        p_value=0.00608,
        note="TWFE on mpdta",
    )
    rep.add_result("nan_se", estimate=1.0, se=float("nan"))
    rep.add_table(
        "arrests",
        pd.DataFrame({"district": list("NSEW"), "arrests": [120, 4, 60, 35]}),
        caption="Arrests & more",
        count_columns=("arrests",),
    )
    fig, ax = figure()
    ax.plot([0, 1, 2], [1, 3, 2])
    rep.add_figure("trend", fig, caption="A trend")
    rep.add_section("Design", "Text with **bold** and <script>alert(1)</script>.")
    rep.add_reference("Rouhani et al. 2021", "443 arrests averted", ours="not computed here")


def test_report_writes_every_output(tmp_path):
    rep = Report("demo", out=tmp_path / "demo", seed=7, quick=True, title="Demo", command="decrimkit study demo")
    fill(rep)
    out = rep.write()
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert names == [
        ".decrimkit-output.json",
        "figures/trend.png",
        "figures/trend.svg",
        "provenance.json",
        "report.html",
        "report.md",
        "results.json",
        "tables/arrests.csv",
        "tables/arrests.md",
        "tables/arrests.tex",
    ]
    res = json.loads((out / "results.json").read_text())
    assert res["seed"] == 7 and res["quick"] is True
    att = res["results"][0]
    assert set(att) == {"name", "estimate", "se", "conf_int", "p_value", "n", "method", "unit", "note"}
    assert att["estimate"] == -0.0365489366741  # 12 significant digits
    assert res["results"][1]["se"] is None  # NaN is written as null
    csv = (out / "tables" / "arrests.csv").read_text()
    assert csv.splitlines() == ["district,arrests", "N,120", "S,(S)", "E,60", "W,(S)"]
    assert "S & (S) \\\\" in (out / "tables" / "arrests.tex").read_text()
    assert "| S | (S) |" in (out / "tables" / "arrests.md").read_text()
    prov = json.loads((out / "provenance.json").read_text())
    for key in ("datasets", "packages", "git", "seed", "command", "utc_time", "python", "platform", "tables"):
        assert key in prov
    assert prov["datasets"][0]["name"] == "mpdta" and len(prov["datasets"][0]["files"]["mpdta.csv.gz"]) == 64
    assert prov["tables"][0]["suppressed_cells"] == 2
    assert set(prov["packages"]) >= {
        "decrimkit",
        "numpy",
        "pandas",
        "scipy",
        "jax",
        "pymc",
        "statsmodels",
        "linearmodels",
        "matplotlib",
    }
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "<script>" not in html and ">(S)<" in html
    assert 'src="http' not in html and "<link" not in html  # self-contained
    md = (out / "report.md").read_text()
    assert (
        md.index("## Headline results")
        < md.index("*Arrests & more*")
        < md.index("figures/trend.png")
        < md.index("## Design")
    )


def test_results_json_is_byte_identical_and_has_no_clock(tmp_path):
    texts = []
    for i in range(2):
        rep = Report("demo", out=tmp_path / f"run{i}", seed=1)
        fill(rep)
        texts.append((rep.write() / "results.json").read_bytes())
    assert texts[0] == texts[1]
    assert b"utc" not in texts[0] and b"time" not in texts[0] and str(tmp_path).encode() not in texts[0]


def test_figures_are_deterministic(tmp_path):
    outs = []
    for i in range(2):
        rep = Report("demo", out=tmp_path / f"f{i}")
        fig, ax = figure()
        ax.plot([0, 1], [0, 1])
        rep.add_figure("line", fig)
        outs.append(rep.write())
    for ext in ("png", "svg"):
        assert (outs[0] / "figures" / f"line.{ext}").read_bytes() == (outs[1] / "figures" / f"line.{ext}").read_bytes()


def test_write_replaces_only_its_own_outputs(tmp_path):
    rep = Report("demo", out=tmp_path / "o")
    rep.add_table("old", pd.DataFrame({"x": [1.5]}), count_columns=())
    out = rep.write()
    (out / "notes.txt").write_text("kept")  # the user's file beside decrimkit's
    Report("demo", out=out).write()
    assert not (out / "tables" / "old.csv").exists()  # decrimkit's own file of the previous run: removed
    assert (out / "notes.txt").read_text() == "kept"


def test_report_rejects_bad_input(tmp_path):
    rep = Report("demo", out=tmp_path)
    rep.add_result("a", estimate=1.0)
    with pytest.raises(SpecificationError, match="already added"):
        rep.add_result("a", estimate=2.0)
    with pytest.raises(SpecificationError, match="must be 1-81 letters"):
        rep.add_table("../escape", pd.DataFrame({"x": [1]}))
    with pytest.raises(SpecificationError, match=r"conf_int for 'b' must be \(lower, upper\)"):
        rep.add_result("b", estimate=1.0, conf_int=(1.0,))
    with pytest.raises(DataError, match="identifier-like"):
        rep.add_table("people", pd.DataFrame({"arrest_number": [1, 2], "age": [30, 40]}))
    with pytest.raises(DataError, match="no bundled dataset"):
        rep.use_dataset("nope")


def test_undeclared_integer_columns_are_refused_not_guessed(tmp_path):
    """Count columns are declared: an integer column that is neither a count nor declared otherwise is refused,
    whatever its name (``victims`` is not in any list of count words)."""
    df = pd.DataFrame({"month": ["2020-01", "2020-02", "2020-03"], "victims": [3, 50, 60], "rate": [1.5, 2.0, 7.0]})
    rep = Report("demo", out=tmp_path)
    with pytest.raises(DataError, match=r"column\(s\) \['victims'\] hold non-negative integers but are not declared"):
        rep.add_table("auto", df)
    with pytest.raises(DataError, match=r"\['victims'\]"):
        rep.add_table("declared_none", df, count_columns=())
    rep.add_table("counted", df, count_columns=("victims",))
    rep.add_table("not_a_count", df.rename(columns={"victims": "year"}), not_counts=("year",))
    out = rep.write()
    assert (out / "tables" / "counted.csv").read_text().splitlines()[1:] == [
        "2020-01,(S),1.5",
        "2020-02,(S),2.0",
        "2020-03,60,7.0",
    ]
    assert (out / "tables" / "not_a_count.csv").read_text().splitlines()[1] == "2020-01,3,1.5"
    assert not (out / "tables" / "auto.csv").exists()


def test_add_table_leaves_the_callers_frame_alone(tmp_path):
    df = pd.DataFrame({"g": ["a", "b", "c"], "n": [3, 50, 60]})
    before = df.copy(deep=True)
    rep = Report("demo", out=tmp_path)
    rep.add_table("t", df, count_columns=["n"])
    pd.testing.assert_frame_equal(df, before)


def test_add_result_takes_a_result_object(tmp_path):
    """Report.add_result(name, result): headline rows, a section, the table and the figure in one call."""
    from decrimkit import Panel
    from decrimkit.datasets import load_dataset
    from decrimkit.estimators import did

    panel = Panel.from_frame(
        load_dataset("mpdta"), unit="countyreal", time="year", outcome="lemp", cohort="first.treat"
    )
    fit = did.twfe(panel)
    rep = Report("demo", out=tmp_path / "demo", seed=0)
    added = rep.add_result("twfe", fit, unit="log points")
    assert added == [f"twfe.{fit.label[0]}"]
    out = rep.write()
    row = json.loads((out / "results.json").read_text())["results"][0]
    lo, hi = fit.conf_int().iloc[0]
    assert row["estimate"] == pytest.approx(float(fit.estimate[0]), rel=1e-11)
    assert row["conf_int"] == pytest.approx([lo, hi], rel=1e-11)
    assert row["p_value"] == pytest.approx(float(fit.p_value[0]), rel=1e-9)
    assert row["label"] == "TWFE" and row["method"] == fit.spec.estimator and row["n"] == panel.n_obs
    assert "clustered by" in row["note"]  # the inference method is named
    assert (out / "tables" / "twfe.csv").is_file() and (out / "figures" / "twfe.png").is_file()
    assert "## TWFE" in (out / "report.md").read_text()
    with pytest.raises(SpecificationError, match="not both"):
        rep.add_result("again", fit, estimate=1.0)
    with pytest.raises(SpecificationError, match="needs a result object or estimate"):
        rep.add_result("nothing")
    with pytest.raises(SpecificationError, match="does not keep the result contract"):
        rep.add_result("plain", object())


def test_add_result_reports_any_result_through_its_tidy_table(tmp_path):
    """A result with no rule of its own (here the wild bootstrap) is reported from tidy(): one headline row
    per term with its interval and p-value, the method named in the note."""
    from decrimkit.inference import wild_cluster_bootstrap

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2))
    cluster = np.repeat(np.arange(20), 10)
    y = x @ np.array([0.5, -0.2]) + rng.normal(size=200) + rng.normal(size=20)[cluster]
    wb = wild_cluster_bootstrap(x, y, cluster, coef=0, n_boot=199, seed=1)
    rep = Report("generic", out=tmp_path / "out", seed=0)
    assert rep.add_result("wild", wb, figures=False) == ["wild.coef"]
    row = json.loads(rep.results_json())["results"][0]
    tidy = wb.tidy()
    assert row["estimate"] == pytest.approx(tidy["estimate"].iloc[0], rel=1e-11)
    assert row["conf_int"] == pytest.approx(list(tidy[["conf_low", "conf_high"]].iloc[0]), rel=1e-11)
    assert row["p_value"] == pytest.approx(tidy["p_value"].iloc[0], abs=1e-12)
    assert "wild cluster bootstrap" in row["note"]
