"""Turn tables, numbers and markdown into Markdown, LaTeX and a self-contained HTML page."""

from __future__ import annotations

import html
import math
from typing import Any

import numpy as np
import pandas as pd
from markdown_it import MarkdownIt

from decrimkit.results import P_VALUE_COLUMNS, format_p

__all__ = ["fmt", "table_md", "table_tex", "table_html", "md_to_html", "page_html", "json_number"]

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:58rem;margin:2rem auto;
padding:0 1rem;color:#1a1a1a;line-height:1.5}
h1{font-size:1.6rem;border-bottom:2px solid #0072B2;padding-bottom:.3rem}h2{font-size:1.25rem;margin-top:2rem}
table{border-collapse:collapse;margin:.8rem 0;font-size:.9rem}th,td{border-bottom:1px solid #ddd;padding:.25rem .6rem;
text-align:right}th{border-bottom:2px solid #444}td:first-child,th:first-child{text-align:left}
caption{caption-side:top;text-align:left;font-weight:600;padding-bottom:.3rem}
figure{margin:1.2rem 0}figure img{max-width:100%}figcaption{font-size:.9rem;color:#444}
code{background:#f3f3f3;padding:0 .2rem}.meta{color:#555;font-size:.85rem}
"""


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


def _tex(s: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in s)


def table_tex(df: pd.DataFrame, caption: str = "", label: str = "") -> str:
    """A booktabs ``table`` environment (needs ``\\usepackage{booktabs}``)."""
    header, rows = _cells(df)
    spec = "l" + "r" * (len(header) - 1)
    out = ["\\begin{table}[htbp]", "\\centering"]
    if caption:
        out.append(f"\\caption{{{_tex(caption)}}}")
    if label:
        out.append(f"\\label{{tab:{_tex(label)}}}")
    out += [f"\\begin{{tabular}}{{{spec}}}", "\\toprule", " & ".join(_tex(h) for h in header) + " \\\\", "\\midrule"]
    out += [" & ".join(_tex(c) for c in r) + " \\\\" for r in rows]
    out += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(out) + "\n"


def table_html(df: pd.DataFrame, caption: str = "") -> str:
    header, rows = _cells(df)
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def md_to_html(text: str) -> str:
    """CommonMark (plus tables) to HTML; raw HTML in the text is escaped, not passed through."""
    return MarkdownIt("commonmark", {"html": False}).enable("table").render(text)


def page_html(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{html.escape(title)}</title>'
        f"<style>{CSS}</style></head><body>\n{body}\n</body></html>\n"
    )
