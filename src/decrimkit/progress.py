"""Progress bars for work that takes a while (SCM fits, placebo loops, bootstraps, sampling, studies).

Bars come from ``tqdm.auto``: a widget in Jupyter when ipywidgets is installed, else a text bar on
stderr. They are shown on an interactive terminal and in a notebook kernel, and never when the
environment variable ``DECRIMKIT_PROGRESS`` is ``0`` (``false``, ``no``, ``off``), so logs, CI and
tests stay clean. ``DECRIMKIT_PROGRESS=1`` forces them on.

``track(iterable, description)`` wraps a loop; ``stages(description, total)`` announces the named
stages of a longer run (a study) one by one.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

__all__ = ["track", "stages", "progress_enabled"]

T = TypeVar("T")
_OFF = {"0", "false", "no", "off"}
_ON = {"1", "true", "yes", "on"}


def _in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (where stderr is not a terminal but bars display)."""
    return "ipykernel" in sys.modules and "IPython" in sys.modules and _ipython_kernel()


def _ipython_kernel() -> bool:
    try:
        shell = sys.modules["IPython"].get_ipython()
    except Exception:  # pragma: no cover - IPython without a shell
        return False
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def progress_enabled(disable: bool | None = None) -> bool:
    """Whether a bar would be drawn: ``disable`` wins, then ``DECRIMKIT_PROGRESS``, then
    "is stderr a terminal or is this a notebook kernel"."""
    if disable is not None:
        return not disable
    env = os.environ.get("DECRIMKIT_PROGRESS", "").strip().lower()
    if env in _OFF:
        return False
    if env in _ON:
        return True
    stream = sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)()) or _in_notebook()


DELAY = 1.0  # seconds before a loop's bar appears: loops that finish sooner print nothing


def _bar(**kwargs: Any) -> Any:
    """A ``tqdm.auto`` bar on stderr. Without ipywidgets a notebook gets the text bar, silently."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tqdm's "IProgress not found" when ipywidgets is missing
        from tqdm.auto import tqdm
    return tqdm(file=sys.stderr, dynamic_ncols=True, **kwargs)


def track(
    iterable: Iterable[T],
    description: str = "working",
    total: int | None = None,
    disable: bool | None = None,
) -> Iterator[T]:
    """Yield the items of ``iterable``, showing a progress bar when enabled.

    Parameters
    ----------
    iterable : iterable
        What to loop over.
    description : str
        Text shown left of the bar.
    total : int, optional
        Number of items (default ``len(iterable)`` when it has one).
    disable : bool, optional
        True hides the bar, False shows it; None (default) decides from ``DECRIMKIT_PROGRESS``, and
        whether stderr is a terminal or this is a notebook kernel.

    Examples
    --------
    >>> sum(track(range(3), "adding"))
    3
    """
    if not progress_enabled(disable):
        yield from iterable
        return
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    bar = _bar(total=total, desc=description, delay=DELAY)
    try:
        for item in iterable:
            yield item
            bar.update(1)
    finally:
        bar.close()


@contextmanager
def stages(description: str, total: int, disable: bool | None = None) -> Iterator[Callable[[str], None]]:
    """Announce the stages of a long run; yields ``step(name)``, called as each stage starts.

    The bar counts finished stages out of ``total`` and names the one running::

        with stages("study baltimore", total=3) as step:
            step("ITS models")
            ...
            step("report")
            ...
    """
    if not progress_enabled(disable):
        yield lambda name: None
        return
    bar = _bar(total=int(total), desc=description, unit="stage",
               bar_format="{desc}: {n_fmt}/{total_fmt} stages |{bar}| {elapsed}{postfix}")
    started = 0

    def step(name: str) -> None:
        nonlocal started
        if started:
            bar.update(1)
        started += 1
        bar.set_postfix_str(name)

    ok = False
    try:
        yield step
        ok = True
    finally:
        if ok and started:
            bar.update(1)
            bar.set_postfix_str("done")
        bar.close()


@contextmanager
def counter(description: str, total: int, unit: str = "it",
            disable: bool | None = None) -> Iterator[Callable[[int], None]]:
    """A bar for work reported in blocks; yields ``advance(done)``, called with the count done so far.

    >>> with counter("sampling", total=10, disable=True) as advance:
    ...     advance(5)
    """
    if not progress_enabled(disable):
        yield lambda done: None
        return
    bar = _bar(total=int(total), desc=description, unit=unit, delay=DELAY)
    try:
        yield lambda done: bar.update(int(done) - bar.n)
    finally:
        bar.close()
