"""Show a decrimkit figure once in a Jupyter notebook.

With matplotlib's inline backend a pyplot figure that is a cell's last expression is shown twice: once by
IPython's display hook (the ``Figure`` image formatter the backend registers) and once more when the backend
shows and closes the cell's open figures after it runs. decrimkit's figures are :class:`DecrimkitFigure`
(a plain ``Figure`` subclass) and, in an IPython session, get an image formatter that renders them exactly as
the backend's ``Figure`` formatter does and then closes them in pyplot, which the inline backend would do a
moment later anyway (its default ``close_figures``), so the end-of-cell pass does not show them again. A figure
that is assigned (``fig = res.plot()``) is shown once by the backend, as before; other backends (a desktop
window, the ipympl widget) are left alone.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import matplotlib
from matplotlib.figure import Figure

__all__ = ["DecrimkitFigure", "register_notebook_display"]

_IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml", "application/pdf")


class DecrimkitFigure(Figure):
    """A matplotlib ``Figure`` that a Jupyter notebook shows once (see the module notes)."""


def _inline_closes_figures() -> bool:
    if "inline" not in matplotlib.get_backend():
        return False
    try:
        from matplotlib_inline.backend_inline import InlineBackend
    except ImportError:  # pragma: no cover - an inline backend without matplotlib_inline
        return False
    return bool(InlineBackend.instance().close_figures)


def _render_once(formatter: Any, fig: DecrimkitFigure) -> Any:
    try:
        printer = formatter.lookup_by_type(Figure)  # whatever the backend registered for figures, now
    except KeyError:
        return None
    out = printer(fig)
    if out is not None and _inline_closes_figures():
        import matplotlib.pyplot as plt

        plt.close(fig)  # shown here: the backend's end-of-cell pass must not show it again
    return out


def register_notebook_display() -> None:
    """In an IPython session, give :class:`DecrimkitFigure` its image formatters (idempotent)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is not a dependency
        return
    shell = get_ipython()
    if shell is None:
        return
    for mime in _IMAGE_TYPES:
        formatter = shell.display_formatter.formatters.get(mime)
        if formatter is not None and DecrimkitFigure not in formatter.type_printers:
            formatter.for_type(DecrimkitFigure, partial(_render_once, formatter))
