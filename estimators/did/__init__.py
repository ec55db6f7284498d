"""Difference-in-differences estimators, one per module.

``from decrimkit.estimators import did`` then ``did.twfe(panel)``, ``did.att_gt(panel)``, ...
Names resolve lazily so that importing the family does not compile or import every estimator.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "twfe": "twfe",
    "event_study": "event_study",
    "att_gt": "att_gt",
    "sun_abraham": "sun_abraham",
    "imputation": "imputation",
    "two_stage": "two_stage",
    "bacon": "bacon",
    "honest": "honest",
    "poisson": "poisson",
    "disparity": "disparity",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        module = importlib.import_module(f"{__name__}.{_WHERE[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
