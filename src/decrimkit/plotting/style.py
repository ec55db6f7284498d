"""The decrimkit figure style, applied in a context (rcParams are never edited globally).

Importing decrimkit never chooses a matplotlib backend: ``result.plot()`` draws with the caller's
backend (inline in Jupyter, a window in a desktop session). Only the programs that write figures to
files and never show them (the ``decrimkit`` command line and the studies' ``main()``) select the
non-interactive Agg backend, so a headless server or a worker thread needs no GUI toolkit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import matplotlib
import matplotlib.pyplot as plt

from decrimkit.plotting._notebook import DecrimkitFigure, register_notebook_display

# Okabe-Ito: distinguishable under the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")

RC = {
    "figure.figsize": (6.5, 4.0),  # a full text-width figure in a Letter/A4 report
    "figure.dpi": 110,
    "savefig.dpi": 200,
    "font.size": 9.5,
    "axes.titlesize": 10.5,
    "axes.labelsize": 9.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "legend.frameon": False,
    "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
    "svg.hashsalt": "decrimkit",  # deterministic SVG ids
}


@contextmanager
def style() -> Iterator[None]:
    """The decrimkit rcParams for the figures drawn inside; the caller's settings come back after.

    Interactive mode is the exception: when the first figure of a Jupyter session is drawn here, the
    inline backend loads and turns interactive mode on, and that must outlive the context (otherwise
    later figures, decrimkit's and the user's, would no longer display and close at the end of a cell).
    """
    with plt.rc_context(RC):
        try:
            yield
        finally:
            interactive = matplotlib.is_interactive()
    matplotlib.interactive(interactive)


def figure(ax: Any = None, **kwargs: Any) -> tuple[Any, Any]:
    """Return (fig, ax): the given axis and its figure, or a new styled figure (a
    :class:`~decrimkit.plotting._notebook.DecrimkitFigure`, which a notebook shows once)."""
    if ax is not None:
        return ax.figure, ax
    with style():
        fig, ax = plt.subplots(FigureClass=DecrimkitFigure, **kwargs)
    register_notebook_display()
    return fig, ax

