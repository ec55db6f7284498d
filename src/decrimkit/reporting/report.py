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

import hashlib
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from decrimkit.datasets import dataset_hashes
from decrimkit.errors import SpecificationError
from decrimkit.reporting import countfigures, document, render
from decrimkit.reporting.audit import Relation
from decrimkit.reporting.items import RESULTS_TABLE, Cell, PendingFigure, check_name, render_figure
from decrimkit.reporting.output import write_outputs
from decrimkit.reporting.publish import Declared, finalize
from decrimkit.reporting.rowlevel import MAX_TABLE_ROWS
from decrimkit.reporting.suppression import Totals
from decrimkit.reporting.tables import build_table

__all__ = ["Report"]


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
        self.study = check_name("study", study)
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
        self._items: list[tuple[str, Any]] = []  # ("section", (title, text)), ("table", Table), ("figure", Figure | PendingFigure)
        self._names: set[tuple[str, str]] = set()
        self._relations: list[Declared] = []
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

            check_name("result", name)
            ent = entries(
                name, result, label=label, method=method, unit=unit, alpha=alpha, aggregate=aggregate, placebo=placebo
            )
            n_obs = n if n is not None else getattr(getattr(result, "spec", None), "n_obs", None)
            pending: list[tuple[str, Any]] = []
            if figures and countfigures.observed_path(result) is not None:
                ent.figures, pending, figure_note = countfigures.route(
                    name, result, ent.figures, counts, placebo, self.suppress_below
                )
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
        check_name("result", name)
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
            table = build_table(
                name, df, caption, count_columns, not_counts, derived, depends, index,
                threshold=self.suppress_below, max_rows=self.max_table_rows,
            )
        except Exception:
            self._names.discard(("table", name))  # a refused table does not keep its name
            raise
        self._items.append(("table", table))

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
            self._items.append(("figure", PendingFigure(name, fig, str(data), caption)))
            return
        if callable(fig) and not hasattr(fig, "savefig"):
            raise SpecificationError(f"figure {name!r}: a drawing function needs data=<table name> to draw from.")
        self._items.append(("figure", render_figure(name, fig, caption)))

    def add_section(self, title: str, text: str) -> None:
        """Add a section of Markdown text to report.md / report.html (in the order added)."""
        self._items.append(("section", (str(title), str(text))))

    def add_reference(self, source: str, published: str, ours: str | None = None) -> None:
        """Add a row comparing a published value with ours (a table at the end of the report)."""
        self._references.append({"source": str(source), "published": str(published), "ours": ours})

    def _claim(self, kind: str, name: str) -> None:
        if self._final:
            raise SpecificationError(f"cannot add {kind} {name!r}: the report was already finalised (written).")
        check_name(kind, name)
        if kind == "table" and name == RESULTS_TABLE:
            raise SpecificationError(f"table name {name!r} is reserved for the headline n of results.json.")
        if (kind, name) in self._names:
            raise SpecificationError(f"{kind} {name!r} was already added; {kind} names must be unique.")
        self._names.add((kind, name))

    # ------------------------------------------------------------------ disclosure
    def _finalize(self) -> None:
        """Suppress across the whole output set, audit it, and draw the figures of counts (once)."""
        if self._final:
            return
        done = finalize(
            self._items, self._relations, self._results, threshold=self.suppress_below, totals=self.totals
        )
        self._items, self._audited = done.items, done.audited
        self._n_suppressed, self._n_audited = done.n_suppressed, done.n_audited
        self._final = True

    # ------------------------------------------------------------------ output
    def results_json(self) -> str:
        """The text of results.json: sorted keys, rounded floats, no clock and no paths.

        Every ``n`` passes the suppression rule with the tables (hidden ones read ``"(S)"``).
        """
        self._finalize()
        return document.results_json(self)

    def provenance(self) -> dict[str, Any]:
        """The content of provenance.json (includes the UTC time, so it differs between runs)."""
        self._finalize()
        return document.provenance(self)

    def files(self) -> dict[str, bytes]:
        """Every output file of this report (relative path -> bytes), as :meth:`write` writes them."""
        self._finalize()
        return document.files(self)

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
