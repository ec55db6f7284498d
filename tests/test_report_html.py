"""report.html in a real headless browser (Chromium) at desktop and phone widths.

The page is measured after layout (``tests/browser.py``): nothing may stick out of the viewport (the page's
scrollWidth equals the viewport width), every table sits in a horizontally scrolling container inside the
text column, and the table of contents links to anchors that exist. Screenshots are written too
(``make check-html`` keeps them in ``outputs/html-check/`` for a person to look at).

Chromium is a system package: ``make setup`` installs it where it can (Debian/Ubuntu as root), and
``make check-html`` runs this file. Without Chromium the test fails and says how to install it, unless
``DECRIMKIT_NO_BROWSER=1`` is set, which skips it with that reason in the test summary: it is never
skipped silently.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from browser import find_chromium, measure, screenshot
from decrimkit.reporting import Report

WIDTHS = (1280, 400)


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        if os.environ.get("DECRIMKIT_NO_BROWSER") == "1":
            pytest.skip("DECRIMKIT_NO_BROWSER=1: the browser check of report.html was not run")
        pytest.fail(
            "no Chromium found for the browser check of report.html: run 'make setup' (installs Debian's chromium "
            "as root), 'apt-get install chromium', set CHROMIUM=/path/to/chrome, or DECRIMKIT_NO_BROWSER=1 to skip"
        )
    return path


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    """A report with what made the old page overflow: wide tables, long labels and notes, a figure."""
    import matplotlib.pyplot as plt

    from decrimkit.datasets import load_dataset
    from decrimkit.estimators import did
    from decrimkit.panel import Panel

    panel = Panel.from_frame(
        load_dataset("mpdta"), unit="countyreal", time="year", outcome="lemp", cohort="first.treat"
    )
    rep = Report("html_check", out=tmp_path_factory.mktemp("html") / "out", title="Browser check of report.html")
    rep.add_section("About", "A long line of text with a long token " + "x" * 120 + " that must wrap.")
    rep.add_result("cs", did.att_gt(panel, n_boot=0), label="Callaway-Sant'Anna ATT(g,t)", aggregate=["dynamic"])
    rep.add_result("bjs", did.imputation(panel), unit="log points")
    rep.add_result(
        "a_result_with_a_rather_long_snake_case_name_for_the_headline_table",
        estimate=1.0,
        se=0.5,
        conf_int=(0.02, 1.98),
        method="decrimkit.estimators.did.poisson(family=negative_binomial,exposure=population,cluster=unit); comparative ITS (Poisson QMLE, drug vs handgun arrests, Fourier "
        "seasonality, COVID term, Driscoll-Kraay SE)",
        note="a note " * 40,
    )
    wide = pd.DataFrame(np.arange(60, dtype=float).reshape(3, 20) / 7, columns=[f"column_{i}" for i in range(20)])
    rep.add_table("wide", wide.assign(label=["a", "b", "c"]), caption="Twenty-one columns", count_columns=())
    fig, ax = plt.subplots(figsize=(9, 3))
    ax.plot([0, 1], [0, 1])
    rep.add_figure("line", fig, caption="A wide figure")
    return rep.write() / "report.html"


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


@pytest.mark.parametrize("width", WIDTHS)
def test_report_fits_the_viewport_and_tables_scroll(chromium, page, width, tmp_path):
    m = measure(chromium, page, width, tmp_path)
    assert m["viewport"] == width
    # nothing outside a table's scroll container sticks out; the page never scrolls sideways
    assert m["overflowing"] == [], m["overflowing"][:5]
    assert m["scrollWidth"] == width
    tables = {t["id"]: t for t in m["tables"]}
    assert {"table-headline", "table-wide", "table-cs", "table-cs.dynamic", "table-bjs"} <= set(tables)
    for t in tables.values():
        assert t["overflowX"] == "auto" and 0 <= t["left"] and t["right"] <= width
    # at desktop width the headline table (long labels and methods) fits the text column: long text wraps
    if width == 1280:
        assert tables["table-headline"]["scrollWidth"] <= tables["table-headline"]["clientWidth"]
    # the 21-column table is wider than a phone: it scrolls inside its container instead of being clipped
    if width == 400:
        # a long text column (the headline's methods) keeps a readable width and the table scrolls instead: it
        # was squeezed to 50-80 px, a few characters a line, so every headline row was 6-8 lines tall
        assert tables["table-headline"]["minTextWidth"] >= 120, tables["table-headline"]
        assert tables["table-wide"]["scrollWidth"] > tables["table-wide"]["clientWidth"]
    # the contents link to anchors that exist, and name tables and figures
    assert m["toc"] and all(h.startswith("#") and h[1:] in m["anchors"] for h in m["toc"])
    assert "#table-wide" in m["toc"] and "#figure-line" in m["toc"]

    keep = os.environ.get("DECRIMKIT_SCREENSHOTS")
    folder = Path(keep) if keep else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    shot = screenshot(chromium, page, width, folder / f"report-{width}.png", tmp_path)
    assert _png_size(shot) == (max(width, 500), 1600)


def test_report_html_uses_human_labels(page):
    text = page.read_text(encoding="utf-8")
    assert "Callaway-Sant&#39;Anna ATT(g,t): overall ATT</td>" in text  # the label, escaped by Jinja2
    assert "A result with a rather long snake case name" in text  # a snake_case name made readable
    assert '<th class="nowrap" scope="col">conf low</th>' in text  # column headers too
    assert 'class="table-wrap"' in text and '<nav class="toc"' in text
