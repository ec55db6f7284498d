"""Difference-in-differences estimators, one per module.

``from decrimkit.estimators import did`` then ``did.twfe(panel)``, ``did.att_gt(panel)``, ...
Names resolve lazily so that importing the family does not compile or import every estimator.
"""

from __future__ import annotations

from decrimkit._lazy import lazy_names
from decrimkit.registry import family_names

_WHERE = family_names("did")  # one estimator per module, listed in decrimkit.registry

__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_names(__name__, _WHERE)
