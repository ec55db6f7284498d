"""Figures: one style (colour-blind safe, sized for a grant report), drawers that take plot_data() frames.

Drawers return a matplotlib ``Figure`` and never show or save it; the report writer saves.
"""

from decrimkit.plotting.basic import coef_plot
from decrimkit.plotting.style import PALETTE, figure, style

__all__ = ["PALETTE", "style", "figure", "coef_plot"]
