"""Progress bars for loops that take a while (bootstraps, placebos, sampling, Monte Carlo grids).

``track`` wraps an iterable in a rich progress bar written to stderr. The bar is shown only on an
interactive terminal, and never when the environment variable ``DECRIMKIT_PROGRESS`` is ``0``
(``false``, ``no``, ``off``), so logs, CI and tests stay clean. ``DECRIMKIT_PROGRESS=1`` forces it on.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

__all__ = ["track", "progress_enabled"]

T = TypeVar("T")
_OFF = {"0", "false", "no", "off"}
_ON = {"1", "true", "yes", "on"}


def progress_enabled(disable: bool | None = None) -> bool:
    """Whether a bar would be drawn: ``disable`` wins, then ``DECRIMKIT_PROGRESS``, then "is stderr a TTY"."""
    if disable is not None:
        return not disable
    env = os.environ.get("DECRIMKIT_PROGRESS", "").strip().lower()
    if env in _OFF:
        return False
    if env in _ON:
        return True
    stream = sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


def track(
    iterable: Iterable[T],
    description: str = "working",
    total: int | None = None,
    disable: bool | None = None,
) -> Iterator[T]:
    """Yield the items of ``iterable``, showing a rich progress bar when enabled.

    Parameters
    ----------
    iterable : iterable
        What to loop over.
    description : str
        Text shown left of the bar.
    total : int, optional
        Number of items (default ``len(iterable)`` when it has one).
    disable : bool, optional
        True hides the bar, False shows it; None (default) decides from ``DECRIMKIT_PROGRESS`` and
        whether stderr is a terminal.

    Examples
    --------
    >>> sum(track(range(3), "adding"))
    3
    """
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    if not progress_enabled(disable):
        yield from iterable
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=Console(file=sys.stderr), transient=False) as progress:
        task = progress.add_task(description, total=total)
        for item in iterable:
            yield item
            progress.advance(task)
