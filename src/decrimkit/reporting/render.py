"""Turn tables, numbers and markdown into Markdown, LaTeX and a self-contained HTML page."""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import pandas as pd
from markdown_it import MarkdownIt

from decrimkit.results import P_VALUE_COLUMNS, format_p

__all__ = ["fmt", "table_md", "table_tex", "tex_escape", "table_block", "header_label", "md_to_html", "page_html", "json_number"]


def json_number(x: Any, digits: int = 12) -> Any:
    """A JSON-safe number rounded to ``digits`` significant digits (NaN/inf -> None)."""
    if x is None:
        return None
    if hasattr(x, "item") and getattr(x, "size", 1) == 1:  # NumPy/JAX scalars and one-element arrays
        x = x.item()
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    v = float(x)
    if not math.isfinite(v):
        return None
    return float(format(v, f".{digits}g"))


def fmt(x: Any) -> str:
    """A cell as text: integers plainly; floats with 4 significant digits, or 1 decimal from 1000 on."""
    if x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA:
        return ""
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        v = float(x)
        if not math.isfinite(v):
            return str(v)
        if abs(v) >= 1000 and abs(v) < 1e15:
            return f"{v:.0f}" if v == round(v) else f"{v:.1f}"
        return format(v, ".4g")
    return str(x)


def _cells(df: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    frame = df.reset_index() if not isinstance(df.index, pd.RangeIndex) else df
    header = [str(c) for c in frame.columns]
    cell = [format_p if c in P_VALUE_COLUMNS else fmt for c in header]  # p-values: <0.001 or 3 decimals
    rows = [[f(v) for f, v in zip(cell, row)] for row in frame.itertuples(index=False, name=None)]
    return header, rows


def table_md(df: pd.DataFrame, caption: str = "") -> str:
    header, rows = _cells(df)
    esc = [[c.replace("|", "\\|") for c in r] for r in [header, *rows]]
    lines = ["| " + " | ".join(esc[0]) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in esc[1:]]
    return (f"*{caption}*\n\n" if caption else "") + "\n".join(lines) + "\n"


_TEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
}


def tex_escape(s: str) -> str:
    """``s`` with LaTeX's special characters escaped."""
    return "".join(_TEX.get(ch, ch) for ch in s)


def table_tex(df: pd.DataFrame, caption: str = "", label: str = "") -> str:
    """A booktabs ``table`` environment (needs ``\\usepackage{booktabs}``)."""
    header, rows = _cells(df)
    spec = "l" + "r" * (len(header) - 1)
    out = ["\\begin{table}[htbp]", "\\centering"]
    if caption:
        out.append(f"\\caption{{{tex_escape(caption)}}}")
    if label:
        out.append(f"\\label{{tab:{tex_escape(label)}}}")
    out += [f"\\begin{{tabular}}{{{spec}}}", "\\toprule", " & ".join(tex_escape(h) for h in header) + " \\\\", "\\midrule"]
    out += [" & ".join(tex_escape(c) for c in r) + " \\\\" for r in rows]
    out += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(out) + "\n"


def header_label(name: str) -> str:
    """A column name as a reader sees it: ``"conf_low"`` -> ``"conf low"``, ``"p_value"`` -> ``"p"``."""
    return {"p_value": "p", "se": "SE", "n": "n"}.get(name, name.replace("_", " "))


def table_block(df: pd.DataFrame, caption: str, anchor: str) -> dict[str, Any]:
    """A table for the HTML template: human column labels, formatted cells, a CSS class per column
    (``label`` for a first text column, ``text`` for other text columns, ``nowrap`` for numbers and
    short text such as intervals)."""
    frame = df.reset_index() if not isinstance(df.index, pd.RangeIndex) else df
    header, rows = _cells(frame)
    classes = []
    for i, col in enumerate(frame.columns):
        numeric = pd.api.types.is_numeric_dtype(frame[col]) and not pd.api.types.is_bool_dtype(frame[col])
        short = max((len(r[i]) for r in rows), default=0) <= 24  # intervals, codes: kept on one line
        classes.append("nowrap" if numeric else ("label" if i == 0 else "text nowrap" if short else "text"))
    return {
        "kind": "table",
        "id": anchor,
        "caption": caption,
        "header": [header_label(h) for h in header],
        "rows": rows,
        "classes": classes,
    }


def md_to_html(text: str) -> str:
    """CommonMark (plus tables) to HTML; raw HTML in the text is escaped, not passed through. Tables are
    wrapped in a horizontally scrolling container, like the report's own tables."""
    out = MarkdownIt("commonmark", {"html": False}).enable("table").render(text)
    return out.replace("<table>", '<div class="table-wrap" tabindex="0"><table>').replace("</table>", "</table></div>")


@functools.cache
def _environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("decrimkit.reporting", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )


def page_html(title: str, meta: str, toc: list[dict[str, Any]], blocks: list[dict[str, Any]]) -> str:
    """The self-contained report page (``templates/report.html.j2``): title, contents, then the blocks
    (``heading``, ``html``, ``notes``, ``table`` from :func:`table_block`, ``figure``) in order."""
    return _environment().get_template("report.html.j2").render(title=title, meta=meta, toc=toc, blocks=blocks)
