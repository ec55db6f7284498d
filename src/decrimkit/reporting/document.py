"""The text of a finalised report's files: results.json, provenance.json, report.md, report.html, tables, figures.

Each function reads a :class:`decrimkit.Report` that has been finalised (suppression applied; see
:mod:`decrimkit.reporting.publish`); :func:`files` gives every output file as bytes, as
:meth:`decrimkit.Report.write` writes them.
"""

from __future__ import annotations

import base64
import re
from typing import TYPE_CHECKING, Any

import pandas as pd

from decrimkit.reporting import render
from decrimkit.reporting.entries import humanize
from decrimkit.reporting.items import RESULTS_TABLE, dumps
from decrimkit.reporting.provenance import environment
from decrimkit.reporting.suppression import MARKER

if TYPE_CHECKING:
    from decrimkit.reporting.report import Report


def results_json(rep: Report) -> str:
    """The text of results.json: sorted keys, rounded floats, no clock and no paths."""
    return dumps(
        {
            "study": rep.study,
            "title": rep.title,
            "seed": rep.seed,
            "quick": rep.quick,
            "suppress_below": rep.suppress_below,
            "results": list(rep._results.values()),
            "references": rep._references,
        }
    )


def provenance(rep: Report) -> dict[str, Any]:
    """The content of provenance.json (includes the UTC time, so it differs between runs)."""
    tables = [
        {
            "name": t.name,
            "count_columns": list(t.count_columns),
            "not_counts": list(t.not_counts),
            "derived": {k: dict(p) for k, p in t.derived},
            "depends": {k: list(v) for k, v in t.depends},
            "threshold": rep.suppress_below,
            "marker": MARKER,
            "totals": rep.totals,
            "suppressed_cells": t.n_suppressed,
        }
        for kind, t in rep._items
        if kind == "table"
    ]
    if rep._n_audited:
        tables.append(
            {
                "name": RESULTS_TABLE,
                "file": "results.json",
                "count_columns": ["n"],
                "not_counts": [],
                "derived": {},
                "depends": {},
                "threshold": rep.suppress_below,
                "marker": MARKER,
                "totals": "none",
                "suppressed_cells": rep._n_suppressed,
            }
        )
    return {
        "study": rep.study,
        "seed": rep.seed,
        "quick": rep.quick,
        "command": rep.command,
        "datasets": [{"name": k, "files": v} for k, v in sorted(rep._datasets.items())],
        "files": [{"name": k, "sha256": v} for k, v in sorted(rep._files.items())],
        "tables": tables,
        "relations": [r.to_json() for r in rep._audited],
        **environment(),
    }


def headline(rep: Report) -> pd.DataFrame:
    """The headline table: one row per result added."""
    rows = []
    for r in rep._results.values():
        ci = r["conf_int"]
        shown = ci is not None and None not in ci
        rows.append(
            {
                "result": r.get("label") or humanize(r["name"]),
                "estimate": r["estimate"],
                "se": r["se"],
                "95% CI": f"[{render.fmt(ci[0])}, {render.fmt(ci[1])}]" if shown else "",
                "p": r["p_value"],
                "n": r["n"],
                "unit": r["unit"],
                "method": r["method"],
            }
        )
    return pd.DataFrame(rows)


def _suppression_sentence(rep: Report, marker: str) -> str:
    return (
        f"Counts from 1 to {rep.suppress_below - 1} are suppressed, with complementary suppression audited across "
        f"all tables and figures; every hidden cell reads {marker}."
    )


def markdown(rep: Report) -> str:
    """The text of report.md."""
    parts = [
        f"# {rep.title}\n",
        f"Study `{rep.study}`, seed {rep.seed}{', quick mode' if rep.quick else ''}. "
        + _suppression_sentence(rep, f"`{MARKER}`")
        + "\n",
    ]
    if rep._results:
        parts.append("## Headline results\n\n" + render.table_md(headline(rep)))
        notes = [
            f"- **{r.get('label') or humanize(r['name'])}**: {r['note']}" for r in rep._results.values() if r["note"]
        ]
        if notes:
            parts.append("\n".join(notes) + "\n")
    for kind, item in rep._items:
        if kind == "section":
            parts.append(f"## {item[0]}\n\n{item[1].strip()}\n")
        elif kind == "table":
            parts.append(render.table_md(item.frame, caption=item.caption or item.name))
        else:
            parts.append(
                f"![{item.caption or item.name}](figures/{item.name}.png)\n\n"
                + (f"*{item.caption}*\n" if item.caption else "")
            )
    if rep._references:
        parts.append("## Comparison with published values\n\n" + render.table_md(pd.DataFrame(rep._references)))
    parts.append(data_md(rep))
    return "\n".join(parts)


def data_md(rep: Report) -> str:
    """The report's Data section: every dataset and file by sha256."""
    lines = ["## Data\n"]
    for name, files in sorted(rep._datasets.items()):
        for f, sha in sorted(files.items()):
            lines.append(f"- `{name}/{f}` sha256 `{sha}`")
    for name, sha in sorted(rep._files.items()):
        lines.append(f"- `{name}` sha256 `{sha}`")
    if len(lines) == 1:
        lines.append("- no data files recorded")
    return "\n".join(lines) + "\n\nFull provenance (package versions, git commit, time): `provenance.json`.\n"


def html(rep: Report) -> str:
    """report.html through the Jinja2 template: a table of contents, then the same content as report.md."""
    toc: list[dict[str, Any]] = []
    blocks: list[dict[str, Any]] = []

    def heading(title: str) -> None:
        anchor = f"s{len(toc) + 1}-" + (re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:40] or "section")
        toc.append({"id": anchor, "title": title, "children": []})
        blocks.append({"kind": "heading", "id": anchor, "title": title})

    def child(anchor: str, kind: str, caption: str) -> None:
        if toc:
            section = toc[-1]["title"] + ": "
            short = caption[len(section) :] if caption.startswith(section) else caption
            toc[-1]["children"].append({"id": anchor, "title": f"{kind}: {short}"})
        else:
            toc.append({"id": anchor, "title": f"{kind}: {caption}", "children": []})

    if rep._results:
        heading("Headline results")
        blocks.append(render.table_block(headline(rep), "", "table-headline"))
        notes = [(r.get("label") or humanize(r["name"]), r["note"]) for r in rep._results.values() if r["note"]]
        if notes:
            blocks.append({"kind": "notes", "notes": notes})
    for kind, item in rep._items:
        if kind == "section":
            heading(item[0])
            blocks.append({"kind": "html", "html": render.md_to_html(item[1])})
        elif kind == "table":
            caption = item.caption or humanize(item.name)
            blocks.append(render.table_block(item.frame, caption, f"table-{item.name}"))
            child(f"table-{item.name}", "Table", caption)
        else:
            caption = item.caption or humanize(item.name)
            png = base64.b64encode(item.png).decode("ascii")
            blocks.append(
                {
                    "kind": "figure",
                    "id": f"figure-{item.name}",
                    "caption": caption,
                    "png": png,
                    "show_caption": bool(item.caption),
                }
            )
            child(f"figure-{item.name}", "Figure", caption)
    if rep._references:
        heading("Comparison with published values")
        blocks.append(render.table_block(pd.DataFrame(rep._references), "Published and our values", "table-references"))
    heading("Data")
    blocks.append({"kind": "html", "html": render.md_to_html(data_md(rep).split("\n", 1)[1])})
    meta = f"Study {rep.study}, seed {rep.seed}{', quick mode' if rep.quick else ''}. " + _suppression_sentence(
        rep, MARKER
    )
    return render.page_html(rep.title, meta, toc, blocks)


def files(rep: Report) -> dict[str, bytes]:
    """Every output file of the report (relative path -> bytes)."""
    out: dict[str, bytes] = {}
    for kind, item in rep._items:
        if kind == "table":
            out[f"tables/{item.name}.csv"] = item.frame.to_csv(index=False, lineterminator="\n").encode("utf-8")
            out[f"tables/{item.name}.md"] = render.table_md(item.frame, item.caption).encode("utf-8")
            out[f"tables/{item.name}.tex"] = render.table_tex(item.frame, item.caption, label=item.name).encode("utf-8")
        elif kind == "figure":
            out[f"figures/{item.name}.png"] = item.png
            out[f"figures/{item.name}.svg"] = item.svg
    out["results.json"] = results_json(rep).encode("utf-8")
    out["provenance.json"] = dumps(provenance(rep)).encode("utf-8")
    out["report.md"] = markdown(rep).encode("utf-8")
    out["report.html"] = html(rep).encode("utf-8")
    return out
