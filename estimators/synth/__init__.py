"""Synthetic-control estimators, one per module.

``from decrimkit.estimators import synth`` then ``synth.scm(panel, treated=..., start=...)``,
``synth.augmented(...)``, ``synth.sdid(panel)``, ``synth.mc_nnm(panel)``, ``synth.compare(...)``.
Names resolve lazily so that importing the family does not compile or import every estimator.

Several functions share their module's name (``synth.sdid`` is the function in ``synth/sdid.py``);
:func:`decrimkit._lazy.lazy_family` keeps ``synth.sdid`` the function whatever was imported before.
"""

from __future__ import annotations

from decrimkit._lazy import lazy_family
from decrimkit.registry import family_names

_WHERE = {
    **family_names("synth"),  # the estimators, listed in decrimkit.registry
    "conformal": "conformal",
    "conformal_average": "conformal",
    "synth_design": "_design",
    "simplex_qp": "_simplex",
}

__all__ = lazy_family(__name__, _WHERE)
