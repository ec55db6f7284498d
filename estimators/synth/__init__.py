"""Synthetic-control estimators, one per module.

``from decrimkit.estimators import synth`` then ``synth.scm(panel, treated=..., start=...)``,
``synth.augmented(...)``, ``synth.sdid(panel)``, ``synth.mc_nnm(panel)``, ``synth.compare(...)``.
Names resolve lazily so that importing the family does not compile or import every estimator.

Several functions share their module's name (``synth.sdid`` is the function in ``synth/sdid.py``).
Importing a submodule makes Python set the package attribute of that name to the submodule; the
package's module class therefore exposes the public names as read-only properties, so
``synth.sdid`` is always the function, whatever was imported before.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

_WHERE = {
    "scm": "scm",
    "augmented": "augmented",
    "sdid": "sdid",
    "mc_nnm": "mc_nnm",
    "compare": "compare",
    "synth_design": "_design",
    "simplex_qp": "_simplex",
}

__all__ = sorted(_WHERE)


def _resolve(name: str) -> Any:
    module = importlib.import_module(f"{__name__}.{_WHERE[name]}")
    return module.__dict__[name]


def _public(name: str) -> property:
    def get(self: types.ModuleType) -> Any:
        return _resolve(name)

    def ignore(self: types.ModuleType, value: Any) -> None:
        """The import system sets ``package.<submodule>``; the public name stays the function."""

    return property(get, ignore)


class _Family(types.ModuleType):
    def __dir__(self) -> list[str]:
        return list(__all__)


for _name in _WHERE:
    setattr(_Family, _name, _public(_name))

sys.modules[__name__].__class__ = _Family
