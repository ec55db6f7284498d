"""Lazy estimator families: ``did.twfe`` resolves to the function in ``did/twfe.py`` on first use.

Importing a family imports none of its estimators (no PyMC, no compilation). Python binds an imported
submodule as an attribute of its package, which would turn ``did.twfe`` into the *module* once
``decrimkit.estimators.did.twfe`` has been imported; the family's module class refuses that binding, so
public names always resolve to the estimators (``importlib.import_module`` still returns the modules).
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any


def lazy_family(package: str, where: dict[str, str], *, extra: str | None = None) -> list[str]:
    """Make ``package`` resolve each public name in ``where`` (name -> submodule) lazily; return ``__all__``.

    ``extra``: the optional dependency group the family needs (:mod:`decrimkit.extras`); resolving a
    name without it installed raises :class:`~decrimkit.errors.MissingExtraError` naming the extra.
    """

    class Family(types.ModuleType):
        def __getattr__(self, name: str) -> Any:
            if name in where:
                if extra is not None:
                    from decrimkit.extras import require

                    require(extra, f"{package.rpartition('.')[2]}.{name}")
                return getattr(importlib.import_module(f"{package}.{where[name]}"), name)
            raise AttributeError(f"module {package!r} has no attribute {name!r}")

        def __dir__(self) -> list[str]:
            return sorted(set(where) | set(self.__dict__))

        def __setattr__(self, name: str, value: Any) -> None:
            if name in where and isinstance(value, types.ModuleType):
                return
            super().__setattr__(name, value)

    sys.modules[package].__class__ = Family
    return sorted(where)
