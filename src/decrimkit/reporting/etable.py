"""A multi-model comparison table, like fixest's ``etable`` or R's modelsummary.

``decrimkit.etable({"TWFE": r1, "CS": r2})`` puts several results side by side: one row per term (the
estimate, and below it the standard error or the interval), one column per model, and footer rows
naming each model's inference method, its observations and units, and the interval level. It reads
every result through the result contract only, ``tidy(alpha)`` with the columns
``term, estimate, se, conf_low, conf_high, p_value, inference``, so any estimator's result fits.

The cells are formatted once (:meth:`ComparisonTable.table`); maketables renders them to LaTeX
(booktabs) and to HTML (through great_tables), and Markdown comes from the report's own table writer.
No significance stars are printed: a model's p-values are in :attr:`ComparisonTable.frame`.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from decrimkit.errors import SpecificationError
from decrimkit.reporting.render import fmt, table_md, tex_escape
from decrimkit.results import TIDY_COLUMNS

__all__ = ["etable", "ComparisonTable", "TIDY_COLUMNS"]

Below = Literal["se", "interval"]
_FOOTER = ("Inference", "Observations", "Units", "Interval")  # the footer rows, per model


def _name(result: Any) -> str:
    spec = getattr(result, "spec", None)
    return str(getattr(spec, "estimator", None) or type(result).__name__)


def _named(results: Mapping[str, Any] | Sequence[Any]) -> dict[str, Any]:
    """Model name -> result; a sequence is named by each result's ``spec.estimator`` (repeats numbered)."""
    if isinstance(results, Mapping):
        return {str(k): v for k, v in results.items()}
    if isinstance(results, (str, bytes)) or not isinstance(results, Sequence):
        raise SpecificationError(
            f"etable takes a list of results or a dict of name -> result, got {type(results).__name__}."
        )
    names = [_name(r) for r in results]
    counts: dict[str, int] = {}
    out = {}
    for name, r in zip(names, results):
        counts[name] = counts.get(name, 0) + 1
        out[name if names.count(name) == 1 else f"{name} ({counts[name]})"] = r
    return out


def _tidy(name: str, result: Any, alpha: float) -> pd.DataFrame:
    tidy = getattr(result, "tidy", None)
    if not callable(tidy):
        raise SpecificationError(
            f"etable: model {name!r} ({type(result).__name__}) has no tidy(alpha); pass decrimkit results."
        )
    try:
        takes_alpha = "alpha" in inspect.signature(tidy).parameters
    except (TypeError, ValueError):  # a builtin without a signature
        takes_alpha = False
    if not takes_alpha:
        raise SpecificationError(
            f"etable: model {name!r} ({type(result).__name__}).tidy() takes no alpha; every result's tidy(alpha) "
            f"gives its intervals at level 1 - alpha (the result contract, docs/ARCHITECTURE.md)."
        )
    frame = tidy(alpha=alpha)
    missing = [c for c in TIDY_COLUMNS if c not in getattr(frame, "columns", ())]
    if missing:
        raise SpecificationError(
            f"etable: model {name!r} ({type(result).__name__}).tidy(alpha) lacks the column(s) {missing}; every "
            f"result's tidy() must have {', '.join(TIDY_COLUMNS)} (the result contract, docs/ARCHITECTURE.md)."
        )
    if frame["term"].duplicated().any():
        dup = frame.loc[frame["term"].duplicated(), "term"].iloc[0]
        raise SpecificationError(f"etable: model {name!r} has the term {dup!r} twice in tidy(); terms must be unique.")
    return frame.loc[:, list(TIDY_COLUMNS)].assign(model=name)


def _level(alpha: float) -> str:
    """``0.05`` -> ``"95%"``, ``0.1`` -> ``"90%"``, ``0.025`` -> ``"97.5%"``."""
    return f"{100 * (1 - alpha):.10g}%"


def _number(x: Any, digits: int) -> str:
    """A cell number with ``digits`` decimals (integers from 1000 on with thousands separators); NaN -> ''."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    v = float(x)
    if not math.isfinite(v):
        return fmt(v)
    return f"{v:,.{digits}f}"


@dataclass(frozen=True)
class ComparisonTable:
    """Several models side by side. Build it with :func:`etable`.

    ``frame``: one row per (model, term) with the contract columns, the numbers the table shows;
    ``footer``: per model, its inference method(s), observations, units and interval level.
    """

    frame: pd.DataFrame
    footer: pd.DataFrame
    alpha: float
    below: Below
    digits: int
    caption: str = ""

    @property
    def models(self) -> list[str]:
        return list(self.footer.columns)

    def _terms(self) -> list[str]:
        return list(dict.fromkeys(self.frame["term"]))

    def _below(self, row: pd.Series) -> str:
        if self.below == "se":
            se = _number(row["se"], self.digits)
            return f"({se})" if se else ""
        lo, hi = _number(row["conf_low"], self.digits), _number(row["conf_high"], self.digits)
        return f"[{lo}, {hi}]" if lo and hi else ""

    def cells(self) -> pd.DataFrame:
        """The table as text: index (group, row label), one column per model; each term cell is
        ``estimate`` and, on a second line, ``(se)`` or ``[conf_low, conf_high]``; then the footer rows."""
        rows: dict[tuple[str, str], dict[str, str]] = {}
        for term in self._terms():
            rows[("Estimates", str(term))] = {m: "" for m in self.models}
        for r in self.frame.itertuples(index=False):
            row = pd.Series(r._asdict())
            below = self._below(row)
            est = _number(row["estimate"], self.digits)
            rows[("Estimates", str(row["term"]))][row["model"]] = est + (f"\n{below}" if below else "")
        for label in self.footer.index:
            rows[("Models", label)] = {m: str(self.footer.loc[label, m]) for m in self.models}
        out = pd.DataFrame.from_dict(rows, orient="index", columns=self.models)
        out.index = pd.MultiIndex.from_tuples(out.index)
        return out

    def note(self) -> str:
        what = "standard errors in parentheses" if self.below == "se" else f"{_level(self.alpha)} intervals in brackets"
        return f"Estimates with {what}; each model's inference method is named below its estimates."

    def to_latex(self) -> str:
        """A booktabs LaTeX table (needs ``booktabs``, ``threeparttable``, ``makecell``, ``tabularx``)."""
        from maketables import MTable

        def cell(text: str) -> str:
            # maketables joins a cell's lines with \\; "{}" keeps a second line "[lo, hi]" from being
            # read as \\[<length>]
            lines = [tex_escape(line) for line in text.split("\n")]
            return "\n".join([lines[0], *("{}" + line for line in lines[1:])])

        cells = self.cells().map(cell)
        cells.index = pd.MultiIndex.from_tuples([(g, tex_escape(t)) for g, t in cells.index])
        cells.columns = [tex_escape(c) for c in cells.columns]
        table = MTable(cells, caption=tex_escape(self.caption) or None, notes=tex_escape(self.note()),
                       rgroup_display=False)
        return str(table.make(type="tex"))

    def to_html(self) -> str:
        """A self-contained HTML table (great_tables, through maketables)."""
        from maketables import MTable

        cells = self.cells()
        return str(MTable(cells, caption=self.caption or None, notes=self.note(), rgroup_display=False).make(type="html"))

    def to_markdown(self) -> str:
        """A Markdown table: the estimate row of each term, then its ``(se)`` or interval row."""
        return table_md(self.markdown_frame(), caption=self.caption) + f"\n{self.note()}\n"

    def markdown_frame(self) -> pd.DataFrame:
        """The table with one line per cell (Markdown tables hold no line breaks): the second line of a
        term cell becomes a row of its own with an empty label."""
        rows: list[list[str]] = []
        for (_, label), values in self.cells().iterrows():
            parts = [str(v).split("\n") for v in values]
            rows.append([label] + [p[0] for p in parts])
            if any(len(p) > 1 for p in parts):
                rows.append([""] + [p[1] if len(p) > 1 else "" for p in parts])
        return pd.DataFrame(rows, columns=["term", *self.models])

    def add_to(self, report: Any, name: str, *, caption: str | None = None) -> None:
        """Put the table in a :class:`~decrimkit.reporting.Report` (``tables/<name>.csv|md|tex``).

        Its cells are estimates and labels, not counts of people (``not_counts="all"``); observations
        and units are design sizes, shown as text.
        """
        report.add_table(name, self.markdown_frame(), caption=caption or self.caption or self.note(),
                         not_counts="all", index=False)

    def __repr__(self) -> str:
        return self.to_markdown()

    def _repr_html_(self) -> str:
        return self.to_html()


def _footer(result: Any, tidy: pd.DataFrame, alpha: float) -> dict[str, str]:
    spec = getattr(result, "spec", None)
    methods = [str(m) for m in dict.fromkeys(tidy["inference"]) if isinstance(m, str) and m]
    n_obs, n_units = getattr(spec, "n_obs", None), getattr(spec, "n_units", None)
    return {
        "Inference": "; ".join(methods),
        "Observations": f"{int(n_obs):,}" if n_obs else "",
        "Units": f"{int(n_units):,}" if n_units else "",
        "Interval": _level(alpha),
    }


def etable(
    results: Mapping[str, Any] | Sequence[Any],
    *,
    alpha: float = 0.05,
    below: Below = "se",
    digits: int = 3,
    keep: Sequence[str] | None = None,
    caption: str = "",
) -> ComparisonTable:
    """Several results side by side, like fixest's ``etable``.

    Parameters
    ----------
    results
        A dict of column name -> result, or a list of results (named by ``spec.estimator``).
    alpha
        Interval level ``1 - alpha`` of the intervals (shown with ``below="interval"``, kept in ``frame``).
    below
        What goes under each estimate: ``"se"`` (standard error, in parentheses) or ``"interval"``.
    digits
        Decimals shown.
    keep
        Terms to show, in this order (default: every term, in the order the models give them).
    caption
        The table's caption.

    Raises
    ------
    SpecificationError
        No results; a result without ``tidy(alpha)`` or whose tidy lacks a contract column; a bad
        ``alpha``, ``below`` or ``digits``; a ``keep`` term that no model has.
    """
    named = _named(results)
    if not named:
        raise SpecificationError("etable needs at least one result.")
    if not (isinstance(alpha, float | int) and 0 < alpha < 1):
        raise SpecificationError(f"etable: alpha must be between 0 and 1 (e.g. 0.05), got {alpha!r}.")
    if below not in ("se", "interval"):
        raise SpecificationError(f"etable: below must be 'se' or 'interval', got {below!r}.")
    if not (isinstance(digits, int) and 0 <= digits <= 10):
        raise SpecificationError(f"etable: digits must be an integer from 0 to 10, got {digits!r}.")
    tidies = {name: _tidy(name, r, float(alpha)) for name, r in named.items()}
    frame = pd.concat(tidies.values(), ignore_index=True)
    if keep is not None:
        absent = [t for t in keep if t not in set(frame["term"])]
        if absent:
            raise SpecificationError(
                f"etable: keep names term(s) {absent} that no model has; terms: {', '.join(map(str, dict.fromkeys(frame['term'])))}."
            )
        frame = frame[frame["term"].isin(keep)]
        frame = frame.assign(_order=frame["term"].map({t: i for i, t in enumerate(keep)}))
        frame = frame.sort_values(["_order"], kind="stable").drop(columns="_order")
    frame = frame.loc[:, ["model", *TIDY_COLUMNS]].reset_index(drop=True)
    rows = [r for r in _FOOTER if below == "interval" or r != "Interval"]  # the level shows with intervals only
    footer = pd.DataFrame({name: _footer(named[name], tidies[name], float(alpha)) for name in named}).loc[rows]
    return ComparisonTable(frame=frame, footer=footer, alpha=float(alpha), below=below, digits=digits, caption=caption)
