"""Difference-in-differences estimators, one per module.

``from decrimkit.estimators import did`` then ``did.twfe(panel)``, ``did.att_gt(panel)``, ...
Names resolve lazily so that importing the family does not compile or import every estimator.
"""

from __future__ import annotations

import importlib
import sys
import types
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


class _Family(types.ModuleType):
    """Keeps ``did.twfe`` the function: importing submodule ``twfe`` would otherwise bind the module there."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _WHERE and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Family
