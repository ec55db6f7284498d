"""The columns of a bundled data file: name, dtype as loaded, and the meaning its PROVENANCE.md gives.

Each dataset's PROVENANCE.md documents its columns under ``## Columns``, either as a Markdown table
(column name in the first cell, meaning in the last) or as bullets (``- `name` — meaning``). Those
entries are matched to the loaded frame's columns by name; a column the document does not describe
gets an empty description, never a guessed one.
"""

from __future__ import annotations

import re

import pandas as pd

from decrimkit.datasets._loader import dataset_provenance, load_dataset

__all__ = ["dataset_columns"]

_TICKED = re.compile(r"`([^`]+)`")
_DASH = re.compile(r"\s+[—–]\s+")  # the em/en dash that separates names from their meaning in bullets


def _columns_section(text: str) -> list[str]:
    lines, inside = [], False
    for line in text.splitlines():
        if line.startswith("## "):
            inside = line[3:].strip().lower().startswith("columns")
            continue
        if inside:
            lines.append(line)
    return lines


def _names(cell: str) -> list[str]:
    ticked = _TICKED.findall(cell)
    if ticked:
        return ticked
    return [n.strip() for n in cell.split(",") if n.strip()]


def _descriptions(provenance: str) -> dict[str, str]:
    """``{column: meaning}`` from the ``## Columns`` section of a PROVENANCE.md."""
    out: dict[str, str] = {}
    for line in _columns_section(provenance):
        s = line.strip()
        if s.startswith("|"):
            cells = [c.strip() for c in s.strip("|").split("|")]
            if len(cells) < 2 or set(cells[0]) <= set("-: ") or cells[0].lower() in ("column", "columns"):
                continue  # separator or header row
            for name in _names(cells[0]):
                out.setdefault(name, cells[-1])
        elif s.startswith("- "):
            parts = _DASH.split(s[2:], maxsplit=1)
            if len(parts) == 2:
                for name in _names(parts[0]):
                    out.setdefault(name, parts[1].strip())
    return out


def _plain(text: str) -> str:
    """Markdown emphasis and code marks removed (the text goes to a terminal)."""
    return text.replace("**", "").replace("`", "")


def dataset_columns(name: str, file: str | None = None) -> pd.DataFrame:
    """One row per column of a bundled file: ``column``, ``dtype`` (as loaded) and ``description``.

    Parameters
    ----------
    name : str
        Dataset name (see :func:`decrimkit.datasets.list_datasets`).
    file : str, optional
        Which file of the dataset; default its main file.

    Examples
    --------
    >>> cols = dataset_columns("mpdta")
    >>> cols.loc[cols["column"] == "lemp", "description"].item()
    'log teen employment (outcome)'
    """
    frame = load_dataset(name, file)
    described = _descriptions(dataset_provenance(name))
    return pd.DataFrame(
        {
            "column": [str(c) for c in frame.columns],
            "dtype": [str(t) for t in frame.dtypes],
            "description": [_plain(described.get(str(c), "")) for c in frame.columns],
        }
    )
