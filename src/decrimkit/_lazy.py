"""PEP 562 lazy names for the estimator families: ``did.twfe`` imports ``did/_twfe.py`` on first use.

Importing a family imports none of its estimators (no PyMC, no compilation). Each family ``__init__``
binds the module-level ``__getattr__`` and ``__dir__`` made here; a name is imported once and then cached
in the family's namespace. Estimator modules are named ``_<function>.py``, so Python binding an imported
submodule on its package never shadows a public name.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def lazy_names(package: str, where: dict[str, str], *, extra: str | None = None
               ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The PEP 562 ``__getattr__`` and ``__dir__`` of ``package``, resolving ``where`` (name -> submodule).

    ``extra``: the optional dependency group the family needs (:mod:`decrimkit.extras`); resolving a
    name without it installed raises :class:`~decrimkit.errors.MissingExtraError` naming the extra.
    """

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        if extra is not None:
            from decrimkit.extras import require

            require(extra, f"{package.rpartition('.')[2]}.{name}")
        value = getattr(importlib.import_module(f"{package}.{where[name]}"), name)
        setattr(sys.modules[package], name, value)  # cached: the next lookup skips __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted(set(where) | set(vars(sys.modules[package])))

    return __getattr__, __dir__
