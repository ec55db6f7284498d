"""Figures that show a result's observed outcome, routed through small-cell suppression.

``Report.add_result`` calls :func:`route` for a result whose figures show the observed path (synthetic
control, interrupted time series). When that path counts people or events, a synthetic-control trajectory
is published as the table ``<name>.trajectory`` (the treated path a count column; the synthetic path and
the gap depend on it) and its figures are drawn from that table as published; a figure that cannot be
protected cell by cell (a path of rates, whose counts the result does not hold; an interrupted-time-series
path with a small count) is not drawn, and a note says why.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from decrimkit.reporting.entries import humanize
from decrimkit.reporting.suppression import integer_like_columns

# a result's figure as entries() gives it: (name, function making the figure, caption)
FigureEntry = tuple[str, Callable[[], Any], str]


def _kinds(result: Any) -> set[str]:
    return {c.__name__ for c in type(result).__mro__}


def observed_path(result: Any) -> np.ndarray | None:
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


def route(
    name: str,
    result: Any,
    figs: list[FigureEntry],
    counts: bool | None,
    placebo: Any,
    threshold: int,
) -> tuple[list[FigureEntry], list[tuple[str, Any]], str]:
    """Split a result's figures into those drawn as they are and those routed through a suppressed table.

    ``counts`` states whether the outcome counts people or events (None: guessed, true when the observed
    path holds only non-negative integers); ``threshold`` is the report's small-cell threshold. Returns
    (figures drawn as they are, pending ``("table"|"figure", (args, kwargs))`` additions, a note naming the
    figures not drawn and why).
    """
    path = observed_path(result)
    integer = _integer_like(path)
    is_count = integer if counts is None else bool(counts)
    if not is_count:
        return figs, [], ""
    shows = {name} | ({f"{name}.placebo"} if "SynthResult" in _kinds(result) else set())
    keep = [f for f in figs if f[0] not in shows]
    routed = [f for f in figs if f[0] in shows]
    if not routed:
        return figs, [], ""
    small = bool(((path >= 1) & (path < threshold)).any())
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
    what = "rates of a count" if not integer else f"counts below {threshold}"
    dropped = ", ".join(f"'{f[0]}'" for f in routed if f[0] == name)
    return (
        keep,
        [],
        f"figure(s) {dropped} not drawn: the observed outcome path holds {what}, which cannot be suppressed "
        f"cell by cell in this figure (disclosure control)",
    )
