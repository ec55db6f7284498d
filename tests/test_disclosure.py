"""Disclosure-control audit of the quick studies' outputs.

After each built study runs (``--quick``, shared with tests/test_determinism.py), every file under
its output folder is scanned:

* every table recorded in provenance.json (with the headline ``n`` of results.json, recorded as the
  table ``results.json``): each ``count_columns`` cell must be 0, missing, at least the table's
  ``threshold``, or the suppression marker;
* every CSV under the folder (recorded or not): no identifier-like column (record ids, names,
  addresses, coordinates: :func:`decrimkit.reporting.rowlevel.identifier_columns`), and no count-like
  column with an unsuppressed small cell (a safety net for tables written outside ``Report``);
* no CSV or JSON array with as many rows as a file of a source dataset the study used (a copy of the
  source records), for sources of at least ``MIN_SOURCE_ROWS`` rows;
* no Markdown or HTML table repeating an identifier-like column header;
* the cross-table audit (:func:`decrimkit.reporting.audit.audit_folder`): from the folder's tables and
  the relations recorded in provenance.json (declared totals, subtotal tables, derived columns), no
  hidden count can be pinned or bounded below the threshold (an interval inside [0, threshold - 1]).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from decrimkit.datasets import dataset_info
from decrimkit.reporting.audit import audit_folder, exposed, published_text
from decrimkit.reporting.rowlevel import identifier_columns
from decrimkit.reporting.suppression import count_like_columns
from decrimkit.studies import STUDIES
from study_runs import quick_run, shared_base

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("studies")]

# Sources smaller than this (a 38-row policy registry, a 51-state table) are published aggregates
# themselves; a table of the same length is a coincidence, not a copy of person-level records.
MIN_SOURCE_ROWS = 200


def small_cells(values: pd.Series, threshold: int) -> pd.Series:
    """Cells holding a number from 1 to threshold - 1 (text such as '<11' and empty cells pass)."""
    nums = pd.to_numeric(values.astype("string").str.replace(",", "", regex=False).str.strip(), errors="coerce")
    return values[(nums >= 1) & (nums < threshold)]


def test_small_cells_helper():
    s = pd.Series(["0", "<11", "3", "11", "", "1,204", "10"])
    assert small_cells(s, 11).tolist() == ["3", "10"]


@pytest.fixture(scope="module", params=sorted(STUDIES))
def output(request, tmp_path_factory) -> tuple[str, Path, dict]:
    base = shared_base(tmp_path_factory)
    folder = quick_run(request.param, 0, base)
    prov = json.loads((folder / "provenance.json").read_text(encoding="utf-8"))
    return request.param, folder, prov


def test_recorded_count_columns_are_suppressed(output):
    name, folder, prov = output
    problems = []
    for table in prov.get("tables", []):
        if not table["count_columns"]:
            continue
        csv = published_text(folder, table)  # tables/<name>.csv, or the headline n of results.json
        for col in table["count_columns"]:
            bad = small_cells(csv[col], int(table["threshold"]))
            if len(bad):
                problems.append(f"{table['name']}.{col}: {bad.tolist()[:5]}")
    assert not problems, f"{name}: unsuppressed small counts: {problems}"


def _csvs(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.csv"))


def test_no_identifier_columns_or_small_counts_in_any_csv(output):
    name, folder, prov = output
    threshold = int(prov.get("suppress_below", 11)) if "suppress_below" in prov else 11
    recorded = {t["name"]: set(t["count_columns"]) for t in prov.get("tables", [])}
    problems = []
    for path in _csvs(folder):
        text = pd.read_csv(path, dtype=str, keep_default_na=False)
        ids = identifier_columns(text)
        if ids:
            problems.append(f"{path.relative_to(folder)}: identifier-like columns {ids}")
        numeric = text.apply(lambda c: pd.to_numeric(c.replace("", np.nan), errors="coerce"))
        complete = numeric.columns[numeric.notna().all() & (len(numeric) > 0)]
        declared = recorded.get(path.stem)
        for col in count_like_columns(numeric[complete]):
            if declared is not None and not declared:
                continue  # the study declared count_columns=() for this table (e.g. rates or model output)
            bad = small_cells(text[col], threshold)
            if len(bad):
                problems.append(f"{path.relative_to(folder)}.{col}: small counts {bad.tolist()[:5]}")
    assert not problems, f"{name}: {problems}"


def test_no_copy_of_source_records(output):
    name, folder, prov = output
    source_rows = {}
    for ds in prov.get("datasets", []):
        for f in dataset_info(ds["name"])["files"]:
            if f["rows"] >= MIN_SOURCE_ROWS:
                source_rows[f["rows"]] = f"{ds['name']}/{f['name']}"
    problems = []
    for path in _csvs(folder):
        n = len(pd.read_csv(path, dtype=str))
        if n in source_rows:
            problems.append(f"{path.relative_to(folder)} has {n} rows, as many as {source_rows[n]}")
    for path in sorted(folder.rglob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        stack = [doc]
        while stack:
            x = stack.pop()
            if isinstance(x, list):
                if len(x) in source_rows and len(x) > 0 and isinstance(x[0], dict):
                    problems.append(f"{path.name} holds a list of {len(x)} records, as many as {source_rows[len(x)]}")
                stack.extend(x)
            elif isinstance(x, dict):
                stack.extend(x.values())
    assert not problems, f"{name}: {problems}"


def test_no_identifier_headers_in_report_tables(output):
    name, folder, _ = output
    problems = []
    for path in [*folder.rglob("*.md"), *folder.rglob("*.html")]:
        text = path.read_text(encoding="utf-8")
        headers = re.findall(r"^\|(.+)\|\s*\n\|[-:| ]+\|", text, flags=re.MULTILINE)
        headers += re.findall(r"<th[^>]*>([^<]*)</th>", text)
        cols = [h.strip() for row in headers for h in row.split("|")]
        ids = identifier_columns(pd.DataFrame(columns=[c for c in dict.fromkeys(cols) if c]))
        if ids:
            problems.append(f"{path.relative_to(folder)}: {ids}")
    assert not problems, f"{name}: {problems}"


def test_no_hidden_count_is_recoverable_across_tables(output):
    name, folder, prov = output
    bounds = audit_folder(folder)
    bad = [(b.cell, b.low, b.high, b.reasons) for b in exposed(bounds)]
    assert not bad, f"{name}: recoverable hidden counts {bad}"
    n_hidden = sum(t["suppressed_cells"] for t in prov["tables"] if t["count_columns"])
    assert len(bounds) <= n_hidden  # every audited cell is a hidden cell the folder records


def test_cross_table_audit_catches_a_planted_total(tmp_path):
    """Negative control: a total table that narrows a hidden cell is found, with its interval."""
    (tmp_path / "tables").mkdir()
    pd.DataFrame({"g": ["a", "b", "c"], "n": ["(S)", "(S)", "40"]}).to_csv(tmp_path / "tables" / "t.csv", index=False)
    pd.DataFrame({"n": ["47"]}).to_csv(tmp_path / "tables" / "total.csv", index=False)
    terms = [["total", 0, "n", 1.0], ["t", 0, "n", -1.0], ["t", 1, "n", -1.0], ["t", 2, "n", -1.0]]
    prov = {
        "tables": [
            {"name": "t", "count_columns": ["n"], "threshold": 11, "marker": "(S)"},
            {"name": "total", "count_columns": ["n"], "threshold": 11, "marker": "(S)"},
        ],
        "relations": [{"terms": terms, "constant": 0.0, "tolerance": 0.0}],
    }
    (tmp_path / "provenance.json").write_text(json.dumps(prov), encoding="utf-8")
    bad = exposed(audit_folder(tmp_path))
    assert [(b.cell, b.low, b.high) for b in bad] == [(("t", 0, "n"), 0.0, 7.0), (("t", 1, "n"), 0.0, 7.0)]


def test_audit_catches_planted_problems(tmp_path):
    """Negative control: each check above fails on a folder with the problem it looks for."""
    (tmp_path / "tables").mkdir()
    pd.DataFrame({"county": ["a", "b"], "arrests": ["3", "<11"]}).to_csv(tmp_path / "tables" / "t.csv", index=False)
    pd.DataFrame({"case_id": ["x1", "x2"], "n": ["40", "50"]}).to_csv(tmp_path / "tables" / "raw.csv", index=False)
    pd.DataFrame({"deaths": ["12"] * 2499 + ["4"]}).to_csv(tmp_path / "dump.csv", index=False)  # mpdta has 2500 rows
    (tmp_path / "report.md").write_text("| county | arrest_number |\n|---|---|\n| a | 1 |\n", encoding="utf-8")
    prov = {
        "suppress_below": 11,
        "tables": [{"name": "t", "count_columns": ["arrests"], "threshold": 11}],
        "datasets": [{"name": "mpdta", "files": {}}],
    }
    out = ("planted", tmp_path, prov)
    with pytest.raises(AssertionError, match=r"t\.arrests: \['3'\]"):
        test_recorded_count_columns_are_suppressed(out)
    with pytest.raises(AssertionError) as info:
        test_no_identifier_columns_or_small_counts_in_any_csv(out)
    assert "identifier-like columns ['case_id']" in str(info.value) and "dump.csv.deaths" in str(info.value)
    with pytest.raises(AssertionError, match=r"dump\.csv has 2500 rows, as many as mpdta"):
        test_no_copy_of_source_records(out)
    with pytest.raises(AssertionError, match=r"arrest_number"):
        test_no_identifier_headers_in_report_tables(out)
