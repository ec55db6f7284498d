"""Instrumental-variable estimators.

``from decrimkit.estimators import iv`` then ``iv.leniency(cases, decision=, outcome=, assignee=, strata=)``:
the examiner (prosecutor/judge leniency) design. Names resolve lazily, as in the other families.
"""

from __future__ import annotations

from decrimkit._lazy import lazy_names
from decrimkit.registry import family_names

_WHERE = {
    **family_names("iv"),  # the estimators, listed in decrimkit.registry
    "LeniencyResult": "results",
}

__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_names(__name__, _WHERE)
