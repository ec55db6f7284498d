"""The ``Report`` a study fills and writes to ``outputs/<study>/``.

Layout written by :meth:`Report.write`::

    outputs/<study>/
        .decrimkit-output.json  manifest of the files decrimkit wrote (see decrimkit.reporting.output)
        results.json       headline numbers; byte-identical for the same seed (no clock, no paths)
        provenance.json    data sha256, package versions, git commit, seed, command line, UTC time
        report.md          sections, headline table, tables and figures in the order added
        report.html        the same, self-contained (figures embedded as base64 PNG)
        figures/<name>.png, figures/<name>.svg
        tables/<name>.csv, tables/<name>.md, tables/<name>.tex

Every table must not look like row-level records (:mod:`decrimkit.reporting.rowlevel`) and must
declare its count columns. When the report is written, suppression is applied to the whole output
set: every table's counts, its derived columns, the totals and subtotal tables declared with
:meth:`Report.add_sum` / :meth:`Report.add_relation`, and the data of figures drawn from tables
(``add_figure(..., data=table)``), and the set is audited across tables by linear programming
(:mod:`decrimkit.reporting.disclosure`, :mod:`decrimkit.reporting.audit`); hidden cells read
``"(S)"``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from decrimkit.datasets import dataset_hashes
from decrimkit.errors import DataError, SpecificationError
from decrimkit.plotting import style
from decrimkit.reporting import render
from decrimkit.reporting.audit import Relation
from decrimkit.reporting.disclosure import TableSpec, protect
from decrimkit.reporting.entries import humanize
from decrimkit.reporting.output import write_outputs
from decrimkit.reporting.provenance import environment
from decrimkit.reporting.rowlevel import MAX_TABLE_ROWS, check_aggregate
from decrimkit.reporting.suppression import MARKER, Totals, apply_mask, integer_like_columns, suppression_mask

__all__ = ["Report"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,80}$")
RESULTS_TABLE = "results.json"  # the audit's name for the column of headline ``n`` in results.json (rows: results with an n)


# a cell of a table: (table name, row, column); row is a 0-based position or {key column: value}
Cell = tuple[str, "int | Mapping[str, Any]", str]


@dataclass(frozen=True)
class _Table:
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
class _PendingFigure:
    name: str
    draw: Callable[[pd.DataFrame], Any]
    data: str
    caption: str


@dataclass(frozen=True)
class _Figure:
    name: str
    png: bytes
    svg: bytes
    caption: str


def _kinds(result: Any) -> set[str]:
    return {c.__name__ for c in type(result).__mro__}


def _observed_path(result: Any) -> np.ndarray | None:
    """The observed outcome a result's figures show (synthetic control, interrupted time series), or None."""
    kinds = _kinds(result)
    if "SynthResult" in kinds:
        obs = getattr(result, "observed", None)
    elif "ITSPosterior" in kinds:
        obs = getattr(result, "series", pd.DataFrame()).get("observed")
    else:
        return None
    if obs is None:
        return None
    return pd.to_numeric(pd.Series(obs), errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def _integer_like(v: np.ndarray) -> bool:
    f = v[np.isfinite(v)]
    return bool(len(f)) and bool((f >= 0).all() and (f == np.round(f)).all())


def _draw_trajectory(sp: Any, result: Any) -> Callable[[pd.DataFrame], Any]:
    def draw(published: pd.DataFrame) -> Any:
        return sp.trajectory_plot(published, start=result.start, title=result.title)

    return draw


def _draw_placebo(sp: Any, placebo: Any) -> Callable[[pd.DataFrame], Any]:
    """The placebo figure with the actual run's gap hidden wherever the treated count is hidden."""

    def draw(published: pd.DataFrame) -> Any:
        data = placebo.plot_data()
        hidden = published.loc[published["treated"].isna(), "time"]
        data.loc[data["actual"] & data["time"].isin(list(hidden)), "gap"] = np.nan
        return sp.placebo_plot(data, start=placebo.start, title=placebo.title)

    return draw


def _check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise SpecificationError(
            f"{kind} name {name!r} must be 1-81 letters, digits, '_', '-' or '.', starting with a letter or digit "
            f"(it becomes a file name)."
        )
    return name


def _dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


class Report:
    """Collects a study's numbers, tables, figures and text, and writes them to one folder.

    Parameters
    ----------
    study : str
        Study name (e.g. ``"baltimore"``); the default folder is ``outputs/<study>``.
    out : str or Path, optional
        Output folder.
    seed : int
        The seed the study ran with (recorded in results.json and provenance.json).
    quick : bool
        Whether the study ran in its reduced ``--quick`` mode (recorded).
    suppress_below : int
        Small-cell threshold: counts from 1 to ``suppress_below - 1`` are hidden (default 11).
    title : str, optional
        Title of report.md / report.html.
    command : str, optional
        The command line that produced the report (default: this process's ``sys.argv``).
    totals : {"both", "rows", "columns", "none"}
        Margins treated as public by complementary suppression (default both).
    max_table_rows : int
        Tables longer than this are refused as row-level data (default 1000).

    Examples
    --------
    >>> rep = Report("demo", out=tmp_path / "demo", seed=0)          # doctest: +SKIP
    >>> rep.use_dataset("mpdta")                                     # doctest: +SKIP
    >>> rep.add_result("att", estimate=-0.03, se=0.01, conf_int=(-0.05, -0.01), n=2500,
    ...                method="did.twfe", unit="log points")         # doctest: +SKIP
    >>> rep.write()                                                  # doctest: +SKIP
    """

    def __init__(
        self,
        study: str,
        out: str | Path | None = None,
        *,
        seed: int = 0,
        quick: bool = False,
        suppress_below: int = 11,
        title: str | None = None,
        command: str | None = None,
        totals: Totals = "both",
        max_table_rows: int = MAX_TABLE_ROWS,
    ) -> None:
        self.study = _check_name("study", study)
        self.out = Path(out) if out is not None else Path("outputs") / study
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise SpecificationError(f"seed={seed!r} must be an integer.")
        if int(suppress_below) < 1:
            raise SpecificationError(f"suppress_below={suppress_below!r} must be a positive integer (e.g. 11).")
        self.seed = seed
        self.quick = bool(quick)
        self.suppress_below = int(suppress_below)
        self.title = title or f"decrimkit study: {study}"
        self.command = command if command is not None else shlex.join(sys.argv)
        self.totals = totals
        self.max_table_rows = int(max_table_rows)
        self._datasets: dict[str, dict[str, str]] = {}
        self._files: dict[str, str] = {}
        self._results: dict[str, dict[str, Any]] = {}
        self._references: list[dict[str, Any]] = []
        self._items: list[tuple[str, Any]] = []  # ("section", (title, text)), ("table", _Table), ("figure", _Figure)
        self._names: set[tuple[str, str]] = set()
        self._relations: list[tuple[tuple[tuple[Cell, float], ...], float, float]] = []
        self._audited: list[Relation] = []
        self._final = False
        self._n_suppressed = 0
        self._n_audited = False

    # ------------------------------------------------------------------ inputs
    def use_dataset(self, name: str) -> None:
        """Record a bundled dataset (name and sha256 of each bundled file) in provenance.json."""
        self._datasets[name] = dataset_hashes(name)

    def use_file(self, path: str | Path, label: str | None = None) -> None:
        """Record a data file that is not bundled (e.g. a plan's CSV) by its sha256."""
        p = Path(path)
        self._files[label or p.name] = hashlib.sha256(p.read_bytes()).hexdigest()

    # ------------------------------------------------------------------ content
    def add_result(
        self,
        name: str,
        result: Any = None,
        *,
        estimate: float | None = None,
        se: float | None = None,
        conf_int: Sequence[float] | None = None,
        n: int | None = None,
        method: str | None = None,
        unit: str = "",
        p_value: float | None = None,
        note: str = "",
        label: str | None = None,
        alpha: float = 0.05,
        aggregate: Sequence[str] = (),
        placebo: Any = None,
        figures: bool = True,
        counts: bool | None = None,
    ) -> list[str]:
        """Add a result: a decrimkit result object, or one headline number given as ``estimate=...``.

        Given a result object (any estimator's output), its headline rows (named ``<name>.<term>``),
        tables and figures are added in one go, following the rules in
        :mod:`decrimkit.reporting.entries`: overall effects, intervals only from a method valid for the
        result (the note names it), placebo p-values for synthetic control, posterior intervals for
        Bayesian results, and the estimator's notes. ``aggregate`` (Callaway-Sant'Anna aggregations) and
        ``placebo`` (an SCM placebo result) add those steps; ``figures=False`` skips the figures.

        ``counts`` states whether the outcome counts people or events (a plan's ``[design] count``;
        default: guessed from the result, true when its observed path holds only non-negative
        integers). Figures that show the observed outcome then go through the suppressed-data path
        of :meth:`add_figure`: a synthetic-control trajectory is published as the table
        ``<name>.trajectory`` (the treated path a count column; the synthetic path and the gap hidden
        wherever the treated count is) and drawn from it, and the placebo figure hides the actual
        gap at those periods; a figure of the observed path that cannot be protected this way (a
        path of rates, whose counts the result does not hold; an interrupted-time-series series
        with a small count) is not drawn, and the result's notes say so. Figures of estimates (event studies, ATT(g,t), forest plots) show model output,
        not counts, and are drawn as they are.

        Given numbers, one row goes to results.json and the headline table. Floats are stored rounded
        to 12 significant digits so that the file is stable; NaN and inf become null. Names must be
        unique within a report. ``label`` is a human name for the row (the report shows it instead of
        ``name``). Returns the names of the rows added.
        """
        if result is not None:
            if estimate is not None:
                raise SpecificationError(f"add_result({name!r}): pass a result object or estimate=..., not both.")
            from decrimkit.reporting.entries import entries

            _check_name("result", name)
            ent = entries(
                name, result, label=label, method=method, unit=unit, alpha=alpha, aggregate=aggregate, placebo=placebo
            )
            n_obs = n if n is not None else getattr(getattr(result, "spec", None), "n_obs", None)
            pending: list[tuple[str, Any]] = []
            if figures and _observed_path(result) is not None:
                ent.figures, pending, figure_note = self._count_figures(name, result, ent.figures, counts, placebo)
                if figure_note:
                    ent.notes.append(figure_note)
            extra = "; ".join(x for x in (*ent.notes, note) if x)
            added = []
            for i, row in enumerate(ent.rows):
                self.add_result(
                    row.name,
                    estimate=row.estimate,
                    se=row.se,
                    conf_int=row.conf_int,
                    p_value=row.p_value,
                    n=n_obs,
                    method=row.method,
                    unit=row.unit,
                    label=row.label,
                    note="; ".join(x for x in (row.note, extra if i == 0 else "") if x),
                )
                added.append(row.name)
            # a section per result: its heading in the contents, then the notes without a headline row
            self.add_section(label or ent.label, "" if ent.rows else extra)
            for tname, frame, caption in ent.tables:
                # an estimator's tables hold estimates and labels (cohort, period, event time), no counts of people
                self.add_table(tname, frame, caption=caption, count_columns=(), not_counts="all")
            for fname, make, caption in ent.figures if figures else ():
                self.add_figure(fname, make(), caption=caption)
            for kind, args in pending:  # figures of counts: their table, then figures drawn from it
                if kind == "table":
                    self.add_table(*args[:2], **args[2])
                else:
                    self.add_figure(*args[:2], **args[2])
            return added
        if estimate is None:
            raise SpecificationError(f"add_result({name!r}) needs a result object or estimate=<number>.")
        if self._final:
            raise SpecificationError(f"cannot add result {name!r}: the report was already finalised (written).")
        _check_name("result", name)
        if name in self._results:
            raise SpecificationError(f"result {name!r} was already added; result names must be unique.")
        ci = None if conf_int is None else np.ravel(np.asarray(conf_int, dtype="float64"))
        if ci is not None and ci.shape != (2,):
            raise SpecificationError(f"conf_int for {name!r} must be (lower, upper), got {conf_int!r}.")
        self._results[name] = {
            "name": name,
            "estimate": render.json_number(estimate),
            "se": render.json_number(se),
            "conf_int": None if ci is None else [render.json_number(v) for v in ci],
            "p_value": render.json_number(p_value),
            "n": None if n is None else int(n),
            "method": str(method or ""),
            "unit": str(unit),
            "note": str(note),
        }
        if label:
            self._results[name]["label"] = str(label)
        return [name]

    def _count_figures(
        self,
        name: str,
        result: Any,
        figs: list[tuple[str, Callable[[], Any], str]],
        counts: bool | None,
        placebo: Any = None,
    ) -> tuple[list[tuple[str, Callable[[], Any], str]], list[tuple[str, Any]], str]:
        """Split a result's figures into those drawn as they are and those routed through a suppressed table.

        Returns (figures drawn as they are, pending ``("table"|"figure", (args, kwargs))`` additions,
        a note naming the figures not drawn and why).
        """
        path = _observed_path(result)
        integer = _integer_like(path)
        is_count = integer if counts is None else bool(counts)
        if not is_count:
            return figs, [], ""
        shows = {name} | ({f"{name}.placebo"} if "SynthResult" in _kinds(result) else set())
        keep = [f for f in figs if f[0] not in shows]
        routed = [f for f in figs if f[0] in shows]
        if not routed:
            return figs, [], ""
        small = bool(((path >= 1) & (path < self.suppress_below)).any())
        if "SynthResult" in _kinds(result) and integer:
            tname = f"{name}.trajectory"
            data = result.plot_data("trajectory")
            data["gap"] = data["treated"] - data["synthetic"]
            not_counts = [c for c in ("time",) if c in integer_like_columns(data)]
            pending: list[tuple[str, Any]] = [
                (
                    "table",
                    (
                        tname,
                        data,
                        {
                            "caption": f"{humanize(name)}: treated (observed count) and synthetic paths",
                            "count_columns": ["treated"],
                            "not_counts": not_counts,
                            "depends": {"synthetic": ["treated"], "gap": ["treated"]},
                        },
                    ),
                )
            ]
            from decrimkit.plotting import synth as sp

            for fname, _make, caption in routed:
                if fname == name:
                    draw = _draw_trajectory(sp, result)
                else:
                    draw = _draw_placebo(sp, placebo)
                pending.append(("figure", (fname, draw, {"caption": caption, "data": tname})))
            return keep, pending, ""
        if not small and integer:
            return figs, [], ""  # no count of 1..T-1 on the path: nothing to hide
        # not protectable cell by cell: the figure of the observed path is not drawn; a placebo figure of gaps
        # stays (a gap does not give the observed value without the synthetic path, which is not published)
        keep += [f for f in routed if f[0] != name]
        what = "rates of a count" if not integer else f"counts below {self.suppress_below}"
        dropped = ", ".join(f"'{f[0]}'" for f in routed if f[0] == name)
        return (
            keep,
            [],
            f"figure(s) {dropped} not drawn: the observed outcome path holds {what}, which cannot be suppressed "
            f"cell by cell in this figure (disclosure control)",
        )

    def add_table(
        self,
        name: str,
        df: pd.DataFrame,
        *,
        caption: str = "",
        count_columns: Sequence[str] | None = None,
        not_counts: Sequence[str] | Literal["all"] = (),
        derived: Mapping[str, Mapping[str, float]] | None = None,
        depends: Mapping[str, Sequence[str]] | None = None,
        index: bool | None = None,
    ) -> None:
        """Add a table, written as tables/<name>.csv, .md and .tex and shown in the report.

        Count columns are declared, never guessed: ``count_columns`` hold counts of people or
        events (they get small-cell suppression); ``not_counts`` names integer-valued columns that
        are not such counts (years, numbers of months, observations of a model);
        ``not_counts="all"`` states that no column of the table counts people or events (a table
        of estimates, simulation summaries or labels). Every other
        column must not be integer-like (non-negative integers), or the table is refused: a column
        such as ``victims`` cannot slip through unsuppressed because its name is unusual.
        ``derived`` declares columns computed linearly from other columns of the same row, e.g.
        ``{"averted": {"counterfactual": 1, "observed": -1}}``: a derived cell is hidden whenever
        publishing it would reveal a hidden count. ``depends`` declares non-linear functions of
        other columns (shares, rates, their intervals), e.g. ``{"share": ["black", "arrests"]}``:
        such a cell is hidden whenever one of its inputs is. A named or non-default index is written as
        columns (``index=False`` drops it). The caller's frame is not modified; suppression is
        applied when the report is written, across all its tables.

        Raises
        ------
        DataError
            If the table looks like row-level records, holds an undeclared integer-like column, or
            its counts are invalid.
        SpecificationError
            If a declared column is not in the table or is declared twice.
        """
        self._claim("table", name)
        try:
            self._add_table(name, df, caption, count_columns, not_counts, derived, depends, index)
        except Exception:
            self._names.discard(("table", name))  # a refused table does not keep its name
            raise

    def _add_table(self, name, df, caption, count_columns, not_counts, derived, depends, index) -> None:  # noqa: ANN001
        frame = df.copy()
        keep_index = index if index is not None else not isinstance(frame.index, pd.RangeIndex)
        frame = frame.reset_index() if keep_index else frame.reset_index(drop=True)
        frame.columns = [str(c) for c in frame.columns]
        counts = tuple(dict.fromkeys(str(c) for c in (count_columns or ())))
        if isinstance(not_counts, str):
            if not_counts != "all":
                raise SpecificationError(
                    f"table {name!r}: not_counts must be column names or 'all', got {not_counts!r}."
                )
            if counts:
                raise SpecificationError(f"table {name!r}: not_counts='all' contradicts count_columns={list(counts)}.")
            not_counts = [c for c in frame.columns if c not in {k for k, _ in (derived or {}).items()}]
        others = tuple(dict.fromkeys(str(c) for c in not_counts))
        deriv = tuple(
            (str(k), tuple((str(c), float(v)) for c, v in dict(parts).items())) for k, parts in (derived or {}).items()
        )
        deps = tuple((str(k), tuple(str(c) for c in v)) for k, v in (depends or {}).items())
        declared = [*counts, *others, *(k for k, _ in deriv), *(k for k, _ in deps)]
        inputs = [c for _, parts in deriv for c, _ in parts] + [c for _, v in deps for c in v]
        missing = [c for c in dict.fromkeys([*declared, *inputs]) if c not in frame.columns]
        if missing:
            raise SpecificationError(
                f"table {name!r}: declared column(s) {missing} are not in it; its columns are {list(frame.columns)}."
            )
        twice = sorted(set(counts) & (set(others) | {k for k, _ in deriv}))
        if twice:
            raise SpecificationError(
                f"table {name!r}: column(s) {twice} are declared both as counts and as something else."
            )
        check_aggregate(frame, name, self.max_table_rows, count_columns=counts)
        undeclared = [c for c in integer_like_columns(frame) if c not in set(declared)]
        if undeclared:
            raise DataError(
                f"table {name!r}: column(s) {undeclared} hold non-negative integers but are not declared. Pass "
                f"count_columns=[...] for counts of people or events (they are suppressed below "
                f"{self.suppress_below}) or not_counts=[...] for other integers (years, months, model sizes)."
            )
        if counts:
            suppression_mask(frame, counts, threshold=self.suppress_below, totals="none")  # validates the counts now
        self._items.append(("table", _Table(name, frame, caption, counts, 0, others, deriv, deps)))

    def add_sum(self, total: Cell, parts: Sequence[Cell]) -> None:
        """Declare that the count in cell ``total`` is the sum of the counts in ``parts``.

        Cells are ``(table, row, column)`` with ``row`` a 0-based position or a mapping of key
        columns to values, e.g. ``("black_share", {"definition": "all"}, "arrests")``. Use it for a
        total or subtotal published in another table (or the same count shown twice: one part), so
        that the cross-table audit knows what an attacker can subtract.
        """
        self.add_relation([(total, 1.0), *((p, -1.0) for p in parts)])

    def add_relation(self, terms: Sequence[tuple[Cell, float]], constant: float = 0.0, tolerance: float = 0.0) -> None:
        """Declare ``sum(coef * cell) = constant`` (within ``tolerance``) among published cells."""
        if self._final:
            raise SpecificationError(
                "cannot add a relation: the report was already finalised (written); its suppression was audited "
                "without it. Declare every relation before write()."
            )
        if not terms:
            raise SpecificationError("a relation needs at least one (cell, coefficient) term.")
        self._relations.append((tuple(terms), float(constant), float(tolerance)))

    def add_figure(self, name: str, fig: Any, *, caption: str = "", data: str | None = None) -> None:
        """Add a matplotlib figure, written as figures/<name>.png and .svg.

        A figure of counts must be drawn from suppressed data: pass ``data=`` the name of a table
        of this report and, as ``fig``, a function that takes that table as published (hidden cells
        are NaN, other columns unchanged) and returns the figure. It is drawn when the report is
        written, after suppression, so no bar, point or line can show a hidden count. A figure
        object (no ``data``) is rendered now (in the decrimkit style) and then closed; it must not
        show counts of people or events (estimates, intervals and model output are fine).
        """
        self._claim("figure", name)
        if data is not None:
            if not callable(fig):
                raise SpecificationError(
                    f"figure {name!r}: with data={data!r} pass a function that draws the figure from the published "
                    f"table, not a finished figure."
                )
            self._items.append(("figure", _PendingFigure(name, fig, str(data), caption)))
            return
        if callable(fig) and not hasattr(fig, "savefig"):
            raise SpecificationError(f"figure {name!r}: a drawing function needs data=<table name> to draw from.")
        self._items.append(("figure", self._render(name, fig, caption)))

    def _render(self, name: str, fig: Any, caption: str) -> _Figure:
        with style():
            png, svg = io.BytesIO(), io.BytesIO()
            fig.savefig(png, format="png", bbox_inches="tight", metadata={"Software": None})
            fig.savefig(svg, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
        plt.close(fig)
        return _Figure(name, png.getvalue(), svg.getvalue(), caption)

    def add_section(self, title: str, text: str) -> None:
        """Add a section of Markdown text to report.md / report.html (in the order added)."""
        self._items.append(("section", (str(title), str(text))))

    def add_reference(self, source: str, published: str, ours: str | None = None) -> None:
        """Add a row comparing a published value with ours (a table at the end of the report)."""
        self._references.append({"source": str(source), "published": str(published), "ours": ours})

    def _claim(self, kind: str, name: str) -> None:
        if self._final:
            raise SpecificationError(f"cannot add {kind} {name!r}: the report was already finalised (written).")
        _check_name(kind, name)
        if kind == "table" and name == RESULTS_TABLE:
            raise SpecificationError(f"table name {name!r} is reserved for the headline n of results.json.")
        if (kind, name) in self._names:
            raise SpecificationError(f"{kind} {name!r} was already added; {kind} names must be unique.")
        self._names.add((kind, name))

    # ------------------------------------------------------------------ disclosure
    def _row(self, table: str, row: Any, frames: Mapping[str, pd.DataFrame]) -> int:
        if table not in frames:
            raise SpecificationError(
                f"a relation names table {table!r}, which was not added; tables: {sorted(frames)}."
            )
        f = frames[table]
        if isinstance(row, (int, np.integer)) and not isinstance(row, bool):
            if not 0 <= int(row) < len(f):
                raise SpecificationError(f"a relation names row {row} of table {table!r}, which has {len(f)} rows.")
            return int(row)
        if not isinstance(row, Mapping) or not row:
            raise SpecificationError(
                f"a relation's row must be a position or a mapping of key columns to values, got {row!r}."
            )
        hit = np.ones(len(f), dtype=bool)
        for k, v in row.items():
            if k not in f.columns:
                raise SpecificationError(f"a relation selects on column {k!r}, which table {table!r} does not have.")
            hit &= (f[k] == v).to_numpy(dtype=bool) | (f[k].astype(str) == str(v)).to_numpy(dtype=bool)
        if hit.sum() != 1:
            raise SpecificationError(
                f"a relation's row {dict(row)!r} matches {int(hit.sum())} rows of table {table!r}, not one."
            )
        return int(np.flatnonzero(hit)[0])

    def _finalize(self) -> None:
        """Suppress across the whole output set, audit it, and draw the figures of counts (once)."""
        if self._final:
            return
        tables = {t.name: t for kind, t in self._items if kind == "table"}
        frames = {n: t.frame for n, t in tables.items()}
        rels = []
        for terms, const, tol in self._relations:
            refs = []
            for (table, row, col), k in terms:
                r = self._row(table, row, frames)
                if str(col) not in frames[table].columns:
                    raise SpecificationError(f"a relation names column {col!r}, which table {table!r} does not have.")
                refs.append(((table, r, str(col)), float(k)))
            rels.append(Relation(tuple(refs), const, tol, "declared"))
        specs = [
            TableSpec(t.name, t.frame, t.count_columns, {k: dict(p) for k, p in t.derived}, dict(t.depends))
            for t in tables.values()
        ]
        # every headline n (a count of people or observations) is audited with the tables: a total published
        # in results.json can narrow hidden cells as a total table can (it has no public margins of its own)
        with_n = [r["name"] for r in self._results.values() if r["n"] is not None]
        if with_n:
            frame = pd.DataFrame({"n": [self._results[k]["n"] for k in with_n]}, dtype="float64")
            specs.append(TableSpec(RESULTS_TABLE, frame, ("n",), margins=False))
        masks, self._audited = protect(specs, rels, threshold=self.suppress_below, totals=self.totals)
        if with_n:
            for k, hide in zip(with_n, masks[RESULTS_TABLE]["n"].to_numpy(dtype=bool)):
                if hide:
                    self._results[k]["n"] = MARKER
            self._n_suppressed = int(masks[RESULTS_TABLE]["n"].sum())
            self._n_audited = True
        numeric: dict[str, pd.DataFrame] = {}
        items = []
        for kind, item in self._items:
            if kind == "table":
                m = masks[item.name]
                numeric[item.name] = item.frame.mask(m.reindex(columns=item.frame.columns, fill_value=False).to_numpy())
                shown = apply_mask(item.frame, m, item.count_columns)
                item = replace(item, frame=shown, n_suppressed=int(m.to_numpy().sum()), published=True)
            items.append((kind, item))
        for i, (kind, item) in enumerate(items):
            if kind == "figure" and isinstance(item, _PendingFigure):
                if item.data not in numeric:
                    raise SpecificationError(
                        f"figure {item.name!r} draws from table {item.data!r}, which was not added."
                    )
                items[i] = ("figure", self._render(item.name, item.draw(numeric[item.data].copy()), item.caption))
        self._items = items
        self._final = True

    # ------------------------------------------------------------------ output
    def results_json(self) -> str:
        """The text of results.json: sorted keys, rounded floats, no clock and no paths.

        Every ``n`` passes the suppression rule with the tables (hidden ones read ``"(S)"``).
        """
        self._finalize()
        return _dumps(
            {
                "study": self.study,
                "title": self.title,
                "seed": self.seed,
                "quick": self.quick,
                "suppress_below": self.suppress_below,
                "results": list(self._results.values()),
                "references": self._references,
            }
        )

    def provenance(self) -> dict[str, Any]:
        """The content of provenance.json (includes the UTC time, so it differs between runs)."""
        self._finalize()
        tables = [
            {
                "name": t.name,
                "count_columns": list(t.count_columns),
                "not_counts": list(t.not_counts),
                "derived": {k: dict(p) for k, p in t.derived},
                "depends": {k: list(v) for k, v in t.depends},
                "threshold": self.suppress_below,
                "marker": MARKER,
                "totals": self.totals,
                "suppressed_cells": t.n_suppressed,
            }
            for kind, t in self._items
            if kind == "table"
        ]
        if self._n_audited:
            tables.append(
                {
                    "name": RESULTS_TABLE,
                    "file": "results.json",
                    "count_columns": ["n"],
                    "not_counts": [],
                    "derived": {},
                    "depends": {},
                    "threshold": self.suppress_below,
                    "marker": MARKER,
                    "totals": "none",
                    "suppressed_cells": self._n_suppressed,
                }
            )
        return {
            "study": self.study,
            "seed": self.seed,
            "quick": self.quick,
            "command": self.command,
            "datasets": [{"name": k, "files": v} for k, v in sorted(self._datasets.items())],
            "files": [{"name": k, "sha256": v} for k, v in sorted(self._files.items())],
            "tables": tables,
            "relations": [r.to_json() for r in self._audited],
            **environment(),
        }

    def _headline(self) -> pd.DataFrame:
        rows = []
        for r in self._results.values():
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

    def _markdown(self) -> str:
        self._finalize()
        parts = [
            f"# {self.title}\n",
            f"Study `{self.study}`, seed {self.seed}{', quick mode' if self.quick else ''}. "
            f"Counts from 1 to {self.suppress_below - 1} are suppressed, with complementary suppression "
            f"audited across all tables and figures; every hidden cell reads `{MARKER}`.\n",
        ]
        if self._results:
            parts.append("## Headline results\n\n" + render.table_md(self._headline()))
            notes = [
                f"- **{r.get('label') or humanize(r['name'])}**: {r['note']}"
                for r in self._results.values()
                if r["note"]
            ]
            if notes:
                parts.append("\n".join(notes) + "\n")
        for kind, item in self._items:
            if kind == "section":
                parts.append(f"## {item[0]}\n\n{item[1].strip()}\n")
            elif kind == "table":
                parts.append(render.table_md(item.frame, caption=item.caption or item.name))
            else:
                parts.append(
                    f"![{item.caption or item.name}](figures/{item.name}.png)\n\n"
                    + (f"*{item.caption}*\n" if item.caption else "")
                )
        if self._references:
            parts.append("## Comparison with published values\n\n" + render.table_md(pd.DataFrame(self._references)))
        parts.append(self._data_md())
        return "\n".join(parts)

    def _data_md(self) -> str:
        lines = ["## Data\n"]
        for name, files in sorted(self._datasets.items()):
            for f, sha in sorted(files.items()):
                lines.append(f"- `{name}/{f}` sha256 `{sha}`")
        for name, sha in sorted(self._files.items()):
            lines.append(f"- `{name}` sha256 `{sha}`")
        if len(lines) == 1:
            lines.append("- no data files recorded")
        return "\n".join(lines) + "\n\nFull provenance (package versions, git commit, time): `provenance.json`.\n"

    def _html(self) -> str:
        """report.html through the Jinja2 template: a table of contents, then the same content as report.md."""
        self._finalize()
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

        if self._results:
            heading("Headline results")
            blocks.append(render.table_block(self._headline(), "", "table-headline"))
            notes = [(r.get("label") or humanize(r["name"]), r["note"]) for r in self._results.values() if r["note"]]
            if notes:
                blocks.append({"kind": "notes", "notes": notes})
        for kind, item in self._items:
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
        if self._references:
            heading("Comparison with published values")
            blocks.append(
                render.table_block(pd.DataFrame(self._references), "Published and our values", "table-references")
            )
        heading("Data")
        blocks.append({"kind": "html", "html": render.md_to_html(self._data_md().split("\n", 1)[1])})
        meta = (
            f"Study {self.study}, seed {self.seed}{', quick mode' if self.quick else ''}. Counts from 1 to "
            f"{self.suppress_below - 1} are suppressed, with complementary suppression audited across all tables "
            f"and figures; every hidden cell reads {MARKER}."
        )
        return render.page_html(self.title, meta, toc, blocks)

    def files(self) -> dict[str, bytes]:
        """Every output file of this report (relative path -> bytes), as :meth:`write` writes them."""
        self._finalize()
        out: dict[str, bytes] = {}
        for kind, item in self._items:
            if kind == "table":
                out[f"tables/{item.name}.csv"] = item.frame.to_csv(index=False, lineterminator="\n").encode("utf-8")
                out[f"tables/{item.name}.md"] = render.table_md(item.frame, item.caption).encode("utf-8")
                out[f"tables/{item.name}.tex"] = render.table_tex(item.frame, item.caption, label=item.name).encode(
                    "utf-8"
                )
            elif kind == "figure":
                out[f"figures/{item.name}.png"] = item.png
                out[f"figures/{item.name}.svg"] = item.svg
        out["results.json"] = self.results_json().encode("utf-8")
        out["provenance.json"] = _dumps(self.provenance()).encode("utf-8")
        out["report.md"] = self._markdown().encode("utf-8")
        out["report.html"] = self._html().encode("utf-8")
        return out

    def write(self) -> Path:
        """Write everything under ``out`` and return that folder (resolved).

        The write is safe and atomic (:mod:`decrimkit.reporting.output`): the files are staged and
        then moved into place, the previous run's files that this run does not produce are removed,
        and files decrimkit did not write are never overwritten or deleted. An interrupted write
        leaves the previous outputs complete.

        Raises
        ------
        OutputFolderError
            ``out`` is a non-empty folder decrimkit did not write, or holds files in the way that
            decrimkit did not write (or that were edited since), or a symbolic link on the way.
        OutputLockedError
            Another run is writing to ``out``.
        """
        return write_outputs(self.out, self.files())
