"""Bayesian hierarchical estimators, one per module (PyMC models sampled through numpyro, blackjax or PyMC).

``from decrimkit.estimators import bayes`` then ``bayes.hierarchical_did(panel, policy_model=...)``,
``bayes.its(series, start=...)``, ``bayes.synthetic_control(panel, treated=, start=)``, ``bayes.pool(estimates)``.
Names resolve lazily so that importing the family does not import PyMC or compile anything.
Every estimator returns a :class:`~decrimkit.estimators.bayes.results.Posterior`.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

_WHERE = {
    "hierarchical_did": "hierarchical_did",
    "its": "its",
    "synthetic_control": "synthetic_control",
    "pool": "pool",
    "Posterior": "results",
    "ITSPosterior": "results",
    "Diagnostics": "_sampling",
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
    """Importing submodule ``its`` would bind the *module* as this package's attribute ``its``; keep the
    public names resolving to the estimators instead (``importlib.import_module`` still gives the modules)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _WHERE and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Family
