"""Difference-in-differences estimators, one per module.

``from decrimkit.estimators import did`` then ``did.twfe(panel)``, ``did.att_gt(panel)``, ...
Names resolve lazily so that importing the family does not compile or import every estimator.
"""

from __future__ import annotations

from decrimkit._lazy import lazy_family

_WHERE = {
    "twfe": "twfe",
    "event_study": "event_study",
    "att_gt": "att_gt",
    "sun_abraham": "sun_abraham",
    "efficient": "efficient",
    "imputation": "imputation",
    "two_stage": "two_stage",
    "bacon": "bacon",
    "honest": "honest",
    "poisson": "poisson",
    "disparity": "disparity",
}

__all__ = lazy_family(__name__, _WHERE)
