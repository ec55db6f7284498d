"""Every recovery route of issue 18 (part 3), tried against the report writer, with values checked.

Each test builds a small report whose true values are known, writes it, and then plays the attacker:
it reads only the written files and recomputes the hidden cells through the route (subtracting a
published total, a subtotal table, a derived column, the data behind a figure), or it shows that the
writer refuses what it must refuse (an undeclared count column, person-level records). A negative
control shows each route really worked against per-table suppression alone, so the audit is not
vacuous.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from decrimkit.errors import DataError, SpecificationError
from decrimkit.reporting import Report
from decrimkit.reporting.audit import Relation, audit, audit_folder, exposed
from decrimkit.reporting.suppression import MARKER, suppress, suppression_mask

T = 11

# the Baltimore shape of the failure: race x definition, and a per-definition total table
BY_RACE = pd.DataFrame(
    {
        "race": ["Black", "White", "Asian", "American Indian", "Unknown"],
        "explicit": [648, 153, 2, 3, 5],
        "broad": [4055, 550, 4, 2, 38],
        "all": [5023, 584, 6, 9, 34],
    }
)
DEFS = ["explicit", "broad", "all"]


def read(folder: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(folder / "tables" / f"{name}.csv", dtype=str, keep_default_na=False)


def hidden_cells(folder: Path, name: str, cols) -> set[tuple[int, str]]:
    t = read(folder, name)
    return {(r, c) for c in cols for r in np.flatnonzero(t[c].to_numpy() == MARKER)}


def file_audit_ok(folder: Path) -> list:
    """The attacker's audit from the folder alone: every hidden count's interval, none exposed."""
    bounds = audit_folder(folder)
    assert not exposed(bounds), [(b.cell, b.low, b.high, b.reasons) for b in exposed(bounds)]
    return bounds


def interval_of_hidden_sum(folder: Path) -> dict[str, tuple[float, float]]:
    """Per definition: the attacker's bounds on a single hidden cell from the total table (sum minus visible)."""
    t = read(folder, "by_race")
    tot = read(folder, "totals").set_index("definition")
    out = {}
    for d in DEFS:
        col = t[d]
        vis = pd.to_numeric(col[col != MARKER]).sum()
        out[d] = (0.0, float(int(tot.loc[d, "arrests"]) - vis)) if tot.loc[d, "arrests"] != MARKER else (0, np.inf)
    return out


# ------------------------------------------------------------------------------------- markers


def test_complementary_cells_are_not_shown_as_small(tmp_path):
    """A complementary cell (true 35) reads as suppressed, never '<11' (which would be a false statement)."""
    t = pd.DataFrame({"district": list("NSEW"), "arrests": [120, 4, 60, 35]})
    out = suppress(t, ["arrests"])
    assert out["arrests"].tolist() == ["120", MARKER, "60", MARKER]
    rep = Report("m", out=tmp_path / "m")
    rep.add_table("t", t, count_columns=["arrests"])
    text = (rep.write() / "tables" / "t.csv").read_text()
    assert "<11" not in text and text.splitlines()[1:] == ["N,120", "S,(S)", "E,60", "W,(S)"]


# ------------------------------------------------------------------------------------- route 1: margins


def _margin_report(folder: Path, declare: bool = True) -> Path:
    rep = Report("margins", out=folder)
    rep.add_table("by_race", BY_RACE, count_columns=DEFS)
    totals = pd.DataFrame({"definition": DEFS, "arrests": [int(BY_RACE[d].sum()) for d in DEFS]})
    rep.add_table("totals", totals, count_columns=["arrests"])
    if declare:
        for d in DEFS:
            rep.add_sum(("totals", {"definition": d}, "arrests"), [("by_race", r, d) for r in range(len(BY_RACE))])
    return rep.write()


def test_published_totals_do_not_narrow_a_hidden_cell(tmp_path):
    folder = _margin_report(tmp_path / "r")
    # the attacker's own arithmetic: total minus the visible cells bounds the hidden cells of a column
    for d, (_lo, hi) in interval_of_hidden_sum(folder).items():
        hidden = [r for r, c in hidden_cells(folder, "by_race", [d]) if c == d]
        primary = [r for r in hidden if 1 <= BY_RACE.loc[r, d] < T]
        if primary:
            assert hi >= T, (d, hi)  # the hidden cells of the column sum to at least T: no small cell is bounded
    # and the LP audit over everything published agrees, cell by cell
    bounds = file_audit_ok(folder)
    for b in bounds:
        t, r, c = b.cell
        if t == "by_race" and 1 <= BY_RACE.loc[r, c] < T:
            assert b.high >= T and b.low <= BY_RACE.loc[r, c] <= b.high


def test_margin_route_worked_against_per_table_suppression():
    """Negative control: the old per-table rule left a column whose hidden cells summed to 10."""
    mask = suppression_mask(BY_RACE, DEFS)
    published = {"by_race": BY_RACE, "totals": pd.DataFrame({"arrests": [int(BY_RACE[d].sum()) for d in DEFS]})}
    hidden = {"by_race": mask, "totals": pd.DataFrame({"arrests": [False] * 3})}
    rels = [
        Relation(tuple([(("totals", j, "arrests"), 1.0)] + [(("by_race", r, d), -1.0) for r in range(5)]))
        for j, d in enumerate(DEFS)
    ]
    bad = exposed(audit(published, hidden, {"by_race": DEFS}, rels, truth={"by_race": BY_RACE}))
    cells = {b.cell: (b.low, b.high) for b in bad}
    assert cells[("by_race", 2, "explicit")] == (0.0, 10.0)  # Asian, explicit: true 2, bounded by 10


# ------------------------------------------------------------------------------------- route 2: subtotal tables


def test_subtotal_tables_do_not_reveal_hidden_cells(tmp_path):
    rng = np.random.default_rng(3)
    cells = pd.DataFrame(
        [(d, g, int(n)) for d in "ABCDE" for g, n in zip(["f", "m", "x"], rng.choice([0, 2, 5, 14, 40, 90], 3))],
        columns=["district", "group", "n"],
    )
    cells.loc[0, "n"] = 3
    wide = cells.pivot(index="district", columns="group", values="n").reset_index()
    by_district = cells.groupby("district", as_index=False)["n"].sum()
    by_group = cells.groupby("group", as_index=False)["n"].sum()
    rep = Report("sub", out=tmp_path / "sub")
    rep.add_table("wide", wide, count_columns=["f", "m", "x"])
    rep.add_table("by_district", by_district, count_columns=["n"])
    rep.add_table("by_group", by_group, count_columns=["n"])
    for i, d in enumerate(wide["district"]):
        rep.add_sum(("by_district", {"district": d}, "n"), [("wide", i, g) for g in "fmx"])
    for g in "fmx":
        rep.add_sum(("by_group", {"group": g}, "n"), [("wide", i, g) for i in range(len(wide))])
    folder = rep.write()
    bounds = file_audit_ok(folder)
    truth = wide.set_index("district")
    small = {(i, g) for i, d in enumerate(wide["district"]) for g in "fmx" if 1 <= truth.loc[d, g] < T}
    assert small and small <= hidden_cells(folder, "wide", "fmx")
    for b in bounds:
        t, r, c = b.cell
        if t == "wide" and (r, c) in small:
            assert b.high >= T and b.high - b.low >= 1, b
    # the attacker's direct subtraction: district total minus the visible cells never isolates one small cell
    w, tot = read(folder, "wide"), read(folder, "by_district")
    for i in range(len(w)):
        row = w.loc[i, list("fmx")]
        if (row == MARKER).sum() == 1 and tot.loc[i, "n"] != MARKER:
            pytest.fail(f"district {w.loc[i, 'district']}: a single hidden cell next to a published total")


def test_undeclared_subtotal_tables_are_found_and_protected(tmp_path):
    """The writer forgets add_sum: the subtotal tables are found from the true values and audited anyway."""
    long = pd.DataFrame(
        {
            "district": ["N", "N", "S", "S", "E", "E"],
            "race": ["B", "W"] * 3,
            "arrests": [120, 4, 60, 35, 80, 70],
        }
    )
    by_district = long.groupby("district", as_index=False, sort=False)["arrests"].sum()  # N 124, S 95, E 150
    rep = Report("sub2", out=tmp_path / "s2")
    rep.add_table("long", long, count_columns=["arrests"])
    rep.add_table("by_district", by_district, count_columns=["arrests"])
    folder = rep.write()
    t, tot = read(folder, "long"), read(folder, "by_district")
    assert t.loc[1, "arrests"] == MARKER  # the 4
    # per-table suppression alone hides 4 and 35 (column total): N's subtotal 124 minus 120 would give the 4 back
    n_total = tot.loc[tot["district"] == "N", "arrests"].item()
    n_visible = t.loc[(t["district"] == "N") & (t["arrests"] != MARKER), "arrests"]
    assert (
        n_total == MARKER or (n_visible == MARKER).sum() + (t.loc[t["district"] == "N", "arrests"] == MARKER).sum() >= 2
    )
    if n_total != MARKER:
        hidden_n = int(n_total) - pd.to_numeric(n_visible).sum()
        assert hidden_n >= T  # the hidden cells of N sum to at least 11
    prov = json.loads((folder / "provenance.json").read_text())
    assert any(
        r["label"].startswith("inferred: by_district.arrests subtotal of long.arrests") for r in prov["relations"]
    )
    bounds = file_audit_ok(folder)
    assert all(b.high >= T for b in bounds)


def test_undeclared_derived_column_is_found_and_hidden(tmp_path):
    rep = Report("derived2", out=tmp_path / "d2")
    rep.add_table("effects", EFFECTS, count_columns=["observed"])  # averted not declared
    t = read(rep.write(), "effects")
    assert t.loc[1, "observed"] == MARKER and t.loc[1, "averted"] == MARKER
    assert t.loc[1, "counterfactual"] == "261.7" and t.loc[3, "averted"] != MARKER  # only what pins a count
    file_audit_ok(tmp_path / "d2")


# ------------------------------------------------------------------------------------- route 3: derived columns


EFFECTS = pd.DataFrame(
    {
        "month": ["2020-04", "2020-05", "2020-06", "2020-07"],
        "observed": [45, 4, 46, 76],
        "counterfactual": [283.7, 261.7, 249.5, 254.8],
    }
).assign(averted=lambda d: d["counterfactual"] - d["observed"])


def test_derived_column_does_not_reveal_a_hidden_count(tmp_path):
    rep = Report("derived", out=tmp_path / "d")
    rep.add_table(
        "effects", EFFECTS, count_columns=["observed"], derived={"averted": {"counterfactual": 1, "observed": -1}}
    )
    folder = rep.write()
    t = read(folder, "effects")
    assert t.loc[1, "observed"] == MARKER
    assert t.loc[1, "averted"] == MARKER  # else observed = counterfactual - averted = 4
    cf = pd.to_numeric(t["counterfactual"])
    shown = t["averted"] != MARKER
    recomputed = cf[shown] - pd.to_numeric(t.loc[shown, "averted"])
    assert np.allclose(recomputed, EFFECTS.loc[shown, "observed"])  # visible rows are consistent (and not hidden)
    bounds = file_audit_ok(folder)
    (b,) = [b for b in bounds if b.cell[1] == 1]
    assert b.high >= T


def test_derived_route_worked_without_the_declaration():
    """Negative control: with averted published, the audit pins the hidden count at its true value."""
    hidden = {"effects": pd.DataFrame({"observed": [False, True, False, False], "averted": [False] * 4})}
    rels = [
        Relation(
            (
                (("effects", r, "averted"), 1.0),
                (("effects", r, "counterfactual"), -1.0),
                (("effects", r, "observed"), 1.0),
            ),
            0.0,
            0.5,
        )
        for r in range(4)
    ]
    (b,) = audit({"effects": EFFECTS}, hidden, {"effects": ["observed"]}, rels)
    assert (b.low, b.high) == (4.0, 4.0) and "pinned" in b.reasons


# ------------------------------------------------------------------------------------- route 4: figures


def _bars(frame: pd.DataFrame):
    fig, ax = plt.subplots()
    bars = ax.bar(frame["district"], frame["arrests"].to_numpy(dtype=float))
    for d, bar in zip(frame["district"], bars):
        bar.set_gid(f"bar_{d}")
    return fig


def _svg_bar_heights(svg: str) -> dict[str, float]:
    """Height (SVG units) of each drawn bar, by district, from the SVG text alone."""
    heights = {}
    for d, path in re.findall(r'<g id="bar_(\w+)">\s*<path d="([^"]+)"', svg):
        ys = [float(y) for y in re.findall(r"[-\d.]+ ([-\d.]+)", path)]
        if len(ys) >= 4:  # a bar of NaN height is written as an empty path "M 0 0 z"
            heights[d] = max(ys) - min(ys)
    return heights


def test_figure_of_counts_is_drawn_from_suppressed_data(tmp_path):
    t = pd.DataFrame({"district": list("NSEW"), "arrests": [120, 4, 60, 35]})
    seen = {}

    def draw(published: pd.DataFrame):
        seen["arrests"] = published["arrests"].tolist()
        return _bars(published)

    rep = Report("fig", out=tmp_path / "f")
    rep.add_table("t", t, count_columns=["arrests"])
    rep.add_figure("bars", draw, data="t")
    folder = rep.write()
    assert seen["arrests"][0] == 120 and seen["arrests"][2] == 60
    assert np.isnan(seen["arrests"][1]) and np.isnan(seen["arrests"][3])  # the drawing never saw 4 or 35
    svg = (folder / "figures" / "bars.svg").read_text()
    heights = _svg_bar_heights(svg)
    assert set(heights) == {"N", "E"}  # no bar is drawn for S (4) or W (35)
    assert heights["E"] / heights["N"] == pytest.approx(60 / 120, rel=1e-3)
    # negative control: the same drawing from the true values draws S and W, and its heights give 4 and 35 back
    true_fig = _bars(t)
    buf = io.StringIO()
    true_fig.savefig(buf, format="svg")
    plt.close(true_fig)
    true_heights = _svg_bar_heights(buf.getvalue())
    assert 120 * true_heights["S"] / true_heights["N"] == pytest.approx(4, rel=1e-3)
    assert 120 * true_heights["W"] / true_heights["N"] == pytest.approx(35, rel=1e-3)


def test_figure_of_counts_needs_a_drawing_function(tmp_path):
    rep = Report("fig", out=tmp_path / "f")
    fig, _ = plt.subplots()
    with pytest.raises(SpecificationError, match="pass a function that draws the figure from the published table"):
        rep.add_figure("x", fig, data="t")
    plt.close(fig)


# ------------------------------------------------------------------------------------- route 5: undeclared counts


def test_undeclared_count_column_is_refused(tmp_path):
    df = pd.DataFrame({"district": list("NSEW"), "arrests": [120, 4, 60, 35], "victims": [30, 2, 15, 40]})
    rep = Report("v", out=tmp_path / "v")
    with pytest.raises(DataError, match=r"\['victims'\] hold non-negative integers but are not declared"):
        rep.add_table("t", df, count_columns=["arrests"])
    rep.add_table("t2", df, count_columns=["arrests", "victims"])
    t = read(rep.write(), "t2")
    assert t["victims"].tolist()[1] == MARKER and t["arrests"].tolist()[1] == MARKER
    file_audit_ok(tmp_path / "v")


# ------------------------------------------------------------------------------------- route 6: row-level records


def _people(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "arrest_date": pd.Timestamp("2019-01-01") + pd.to_timedelta(rng.integers(0, 700, n), unit="D"),
            "district": rng.choice(["N", "S", "E", "W"], n),
            "race": rng.choice(["B", "W", "A"], n),
            "sex": rng.choice(["F", "M"], n),
            "offense": rng.choice(["poss", "dist"], n),
        }
    )


def test_person_level_records_are_refused(tmp_path):
    people = _people(800)
    rep = Report("rows", out=tmp_path / "rows")
    with pytest.raises(
        DataError, match=r"800 rows, no count column and person-describing columns \['race', 'sex', 'arrest_date'\]"
    ):
        rep.add_table("people", people)
    with pytest.raises(DataError, match=r"800 of its 800 non-zero counts are 1"):
        rep.add_table("people_n", people.assign(n=1), count_columns=["n"])
    text = people.assign(arrest_date=people["arrest_date"].dt.strftime("%Y-%m-%d")).drop(columns=["sex"])
    with pytest.raises(DataError, match=r"person-describing columns \['race', 'arrest_date'\]"):
        rep.add_table("people_text", text)
    # the aggregate of the same records is published
    agg = people.groupby(["district", "race"]).size().rename("arrests").reset_index()
    rep.add_table("agg", agg, count_columns=["arrests"])
    assert read(rep.write(), "agg")["arrests"].tolist() == [str(v) for v in agg["arrests"]]


# ------------------------------------------------------------------------------------- adversarial synthetic sets


@pytest.mark.parametrize("seed", range(12))
def test_random_table_sets_pass_the_cross_table_audit(tmp_path, seed):
    """Random sparse counts published as a 2-way table, both margin tables and a derived difference column."""
    rng = np.random.default_rng(seed)
    rows, cols = int(rng.integers(3, 7)), int(rng.integers(2, 5))
    values = rng.choice(
        [0, 1, 2, 3, 5, 8, 12, 20, 45, 150], size=(rows, cols), p=[0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]
    )
    names = [f"c{j}" for j in range(cols)]
    wide = pd.DataFrame(values, columns=names).assign(area=[f"a{i}" for i in range(rows)])
    wide["expected"] = rng.uniform(50, 200, rows).round(2)  # a model output, not a function of these counts
    wide["excess"] = wide["expected"] - wide["c0"]
    rep = Report("rand", out=tmp_path / "rand")
    rep.add_table("wide", wide, count_columns=names, derived={"excess": {"expected": 1, "c0": -1}})
    rep.add_table("row_totals", pd.DataFrame({"area": wide["area"], "n": wide[names].sum(axis=1)}), count_columns=["n"])
    rep.add_table("col_totals", pd.DataFrame({"col": names, "n": values.sum(axis=0)}), count_columns=["n"])
    for i in range(rows):
        rep.add_sum(("row_totals", i, "n"), [("wide", i, c) for c in names])
    for j, c in enumerate(names):
        rep.add_sum(("col_totals", j, "n"), [("wide", i, c) for i in range(rows)])
    folder = rep.write()
    bounds = file_audit_ok(folder)
    small = {(i, c) for i in range(rows) for c in names if 1 <= wide.loc[i, c] < T}
    assert small <= hidden_cells(folder, "wide", names)
    for b in bounds:
        t, r, c = b.cell
        if t == "wide" and (r, c) in small:
            assert b.high >= T, b
    prov = json.loads((folder / "provenance.json").read_text())
    assert len(prov["relations"]) >= rows + cols


# ------------------------------------------------------------------------------------- route 6: result figures


def _small_count_panel():
    from decrimkit.panel import Panel

    rng = np.random.default_rng(7)
    rows = []
    for u in range(8):
        base = 30 + 5 * u
        for t in range(2000, 2010):
            y = int(rng.poisson(base))
            if u == 0:
                y = [14, 15, 13, 16, 14, 15, 3, 4, 2, 12][t - 2000]  # the treated unit's small post counts
            rows.append({"unit": u, "year": t, "arrests": y, "first": 2006 if u == 0 else 0})
    df = pd.DataFrame(rows)
    return df, Panel.from_frame(df, unit="unit", time="year", outcome="arrests", cohort="first", count=True)


def _line_ys(svg: str, label_order: int) -> list[list[float]]:
    """The y coordinates of each polyline path in an SVG (matplotlib writes line2d paths as 'M x y L x y ...')."""
    paths = re.findall(r'<g id="line2d_\d+">\s*<path d="([^"]+)"', svg)
    out = []
    for d in paths:
        pts = re.findall(r"[ML] ([-\d.]+) ([-\d.]+)", d)
        out.append([float(y) for _, y in pts])
    return out


def test_synthetic_control_trajectory_of_small_counts_is_suppressed(tmp_path):
    """add_result(scm) with a count outcome: the observed path is published only through a suppressed table."""
    from estimators import synth

    df, panel = _small_count_panel()
    fit = synth.scm(panel, treated=0, start=2006, v="equal")
    placebo = fit.placebo("space")
    rep = Report("sc", out=tmp_path / "sc")
    rep.add_result("sc", fit, placebo=placebo, counts=True)
    folder = rep.write()
    traj = read(folder, "sc.trajectory")
    truth = df.loc[df["unit"] == 0, "arrests"].to_numpy()
    # every small count of the treated path is hidden, and with it the synthetic value and the gap of that period
    for i, y in enumerate(truth):
        if 1 <= y < T:
            assert traj.loc[i, "treated"] == MARKER and traj.loc[i, "synthetic"] == MARKER and traj.loc[i, "gap"] == MARKER
    shown = traj["treated"] != MARKER
    assert (pd.to_numeric(traj.loc[shown, "treated"]) == truth[shown.to_numpy()]).all()
    assert shown.sum() >= 6  # the large counts stay visible
    # the attacker's audit over the folder: no hidden count is pinned or bounded below 11
    file_audit_ok(folder)
    # the figure: the treated line is broken where counts are hidden; no point of it lies at a small count
    svg = (folder / "figures" / "sc.svg").read_text()
    prov = json.loads((folder / "provenance.json").read_text())
    assert "sc.trajectory" in [t["name"] for t in prov["tables"]]
    # negative control: the figure drawn from the true values (what add_result drew before) has one more
    # point per hidden period on the treated line
    true_svg = io.StringIO()
    fig = fit.plot("trajectory")
    fig.savefig(true_svg, format="svg")
    plt.close(fig)
    n_true = sum(len(p) for p in _line_ys(true_svg.getvalue(), 0))
    n_pub = sum(len(p) for p in _line_ys(svg, 0))
    n_hidden = int((~shown).sum())
    # treated and synthetic points of each hidden period are not drawn (a point left alone between hidden
    # periods is not drawn either, so at least two fewer points per hidden period)
    assert n_true - n_pub >= 2 * n_hidden
    # the placebo figure hides the actual gap at those periods too
    psvg = (folder / "figures" / "sc.placebo.svg").read_text()
    fig = placebo.plot()
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    plt.close(fig)
    assert sum(len(p) for p in _line_ys(buf.getvalue(), 0)) - sum(len(p) for p in _line_ys(psvg, 0)) >= n_hidden


def test_synthetic_control_of_rates_skips_the_trajectory_with_a_note(tmp_path):
    from estimators import synth

    df, panel = _small_count_panel()
    fit = synth.scm(panel, treated=0, start=2006, v="equal")
    rates = replace_observed(fit, fit.observed / 7.0)
    rep = Report("sc", out=tmp_path / "sc")
    rep.add_result("sc", rates, counts=True)
    folder = rep.write()
    assert not (folder / "figures" / "sc.svg").exists()
    md = (folder / "report.md").read_text()
    assert "figure(s) 'sc' not drawn: the observed outcome path holds rates of a count" in md
    # with counts=False declared, the figure is drawn as before
    rep = Report("sc2", out=tmp_path / "sc2")
    rep.add_result("sc", rates, counts=False)
    assert (rep.write() / "figures" / "sc.svg").exists()


def replace_observed(fit, observed):
    from dataclasses import replace as dc_replace

    return dc_replace(fit, observed=observed)


def test_relations_cannot_be_added_after_the_report_is_written(tmp_path):
    rep = Report("late", out=tmp_path / "late")
    t = pd.DataFrame({"district": list("NSEW"), "arrests": [120, 4, 60, 35]})
    rep.add_table("t", t, count_columns=["arrests"])
    rep.write()
    with pytest.raises(SpecificationError, match="cannot add a relation: the report was already finalised"):
        rep.add_relation([(("t", 0, "arrests"), 1.0)], constant=120.0)
    with pytest.raises(SpecificationError, match="already finalised"):
        rep.add_sum(("t", 0, "arrests"), [("t", 1, "arrests")])
    assert rep._relations == []  # nothing was recorded that the written audit did not see


# ------------------------------------------------------------------------------------- route 7: results.json


def test_headline_n_in_results_json_does_not_reveal_hidden_cells(tmp_path):
    """A headline n equal to a column total of a table (Baltimore's n=811 beside arrests by race) is audited
    with the tables: total minus the visible cells must not pin or bound a hidden small count."""
    t = pd.DataFrame({"race": ["Black", "White", "Asian", "Other"], "arrests": [700, 104, 3, 4]})
    n_total = int(t["arrests"].sum())  # 811
    rep = Report("hn", out=tmp_path / "hn", totals="none")  # no public margins: only results.json's n is a total
    rep.add_table("by_race", t, count_columns=["arrests"])
    rep.add_result("black_share", estimate=700 / n_total, n=n_total, unit="share")
    rep.add_result("small_n", estimate=0.5, n=7, unit="share")
    folder = rep.write()
    res = {r["name"]: r for r in json.loads((folder / "results.json").read_text())["results"]}
    pub = read(folder, "by_race")
    # White (104) is hidden as a complement: 811 - 700 = 111 bounds the hidden cells' sum at >= 11
    assert pub["arrests"].tolist() == ["700", MARKER, MARKER, MARKER]
    assert res["black_share"]["n"] == n_total and res["small_n"]["n"] == MARKER  # a small n is itself suppressed
    assert "| (S) |" in (folder / "report.md").read_text()  # the headline table shows the marker too
    bounds = file_audit_ok(folder)  # the LP audit from the folder (results.json included): nothing exposed
    assert {b.cell for b in bounds} >= {("by_race", 2, "arrests"), ("by_race", 3, "arrests")}
    assert all(b.high >= T for b in bounds if b.cell[0] == "by_race")
    prov = json.loads((folder / "provenance.json").read_text())
    entry = [x for x in prov["tables"] if x["name"] == "results.json"]
    assert entry and entry[0]["count_columns"] == ["n"] and entry[0]["suppressed_cells"] == 1
    # negative control: per-table suppression alone (Asian and Other hidden) with n=811 published pins both below 11
    mask = suppression_mask(t, ["arrests"], totals="none")
    published = {"by_race": t, "results.json": pd.DataFrame({"n": [n_total]})}
    hidden = {"by_race": mask, "results.json": pd.DataFrame({"n": [False]})}
    rel = Relation(tuple([(("results.json", 0, "n"), 1.0)] + [(("by_race", r, "arrests"), -1.0) for r in range(4)]))
    bad = exposed(audit(published, hidden, {"by_race": ["arrests"], "results.json": ["n"]}, [rel], truth={"by_race": t}))
    assert {b.cell: (b.low, b.high) for b in bad} == {("by_race", 2, "arrests"): (0.0, 7.0), ("by_race", 3, "arrests"): (0.0, 7.0)}


def test_results_cannot_be_added_after_the_report_is_written(tmp_path):
    rep = Report("late", out=tmp_path / "late")
    rep.add_result("a", estimate=1.0, n=500)
    rep.write()
    with pytest.raises(SpecificationError, match="already finalised"):
        rep.add_result("b", estimate=2.0, n=3)
    assert "b" not in json.loads(rep.results_json())["results"][0]["name"]
