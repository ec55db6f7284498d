"""Synthetic-control estimators, one per module.

``from decrimkit.estimators import synth`` then ``synth.scm(panel, treated=..., start=...)``,
``synth.augmented(...)``, ``synth.sdid(panel)``, ``synth.mc_nnm(panel)``, ``synth.compare(...)``.
Names resolve lazily so that importing the family does not compile or import every estimator.
"""

from __future__ import annotations

from decrimkit._lazy import lazy_names
from decrimkit.registry import family_names

_WHERE = {
    **family_names("synth"),  # the estimators, listed in decrimkit.registry
    "conformal": "_conformal",
    "conformal_average": "_conformal",
    "synth_design": "_design",
    "simplex_qp": "_simplex",
}

__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_names(__name__, _WHERE)
