"""What a ``Report`` holds: its tables and figures as records, the name rule, and how a figure is rendered.

A table's frame holds the true values until the report is finalised (:mod:`decrimkit.reporting.publish`),
then the values as published (hidden cells read ``"(S)"``). A figure drawn from a table of counts waits as a
:class:`PendingFigure` until suppression has been applied, then becomes a :class:`Figure` like any other.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from decrimkit.errors import SpecificationError
from decrimkit.plotting import style

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,80}$")
RESULTS_TABLE = "results.json"  # the audit's name for the column of headline ``n`` in results.json (rows: results with an n)

# a cell of a table: (table name, row, column); row is a 0-based position or {key column: value}
Cell = tuple[str, "int | Mapping[str, Any]", str]


@dataclass(frozen=True)
class Table:
    name: str
    frame: pd.DataFrame  # true values until the report is finalised; then as published (hidden cells read MARKER)
    caption: str
    count_columns: tuple[str, ...]
    n_suppressed: int
    not_counts: tuple[str, ...] = ()
    derived: tuple[tuple[str, tuple[tuple[str, float], ...]], ...] = ()
    depends: tuple[tuple[str, tuple[str, ...]], ...] = ()
    published: bool = False


@dataclass(frozen=True)
class PendingFigure:
    """A figure of counts: drawn by ``draw`` from table ``data`` as published, when the report is finalised."""

    name: str
    draw: Callable[[pd.DataFrame], Any]
    data: str
    caption: str


@dataclass(frozen=True)
class Figure:
    name: str
    png: bytes
    svg: bytes
    caption: str


def check_name(kind: str, name: str) -> str:
    """``name`` if it can be a file name of the report (``kind`` names it in the error), else SpecificationError."""
    if not isinstance(name, str) or not NAME.match(name):
        raise SpecificationError(
            f"{kind} name {name!r} must be 1-81 letters, digits, '_', '-' or '.', starting with a letter or digit "
            f"(it becomes a file name)."
        )
    return name


def dumps(obj: Any) -> str:
    """JSON text as the report writes it: sorted keys, indented, no NaN."""
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def render_figure(name: str, fig: Any, caption: str) -> Figure:
    """PNG and SVG bytes of a matplotlib figure in the decrimkit style, without dates; the figure is closed."""
    with style():
        png, svg = io.BytesIO(), io.BytesIO()
        fig.savefig(png, format="png", bbox_inches="tight", metadata={"Software": None})
        fig.savefig(svg, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    return Figure(name, png.getvalue(), svg.getvalue(), caption)
