"""Instrumental-variable estimators.

``from decrimkit.estimators import iv`` then ``iv.leniency(cases, decision=, outcome=, assignee=, strata=)``:
the examiner (prosecutor/judge leniency) design. The function is imported eagerly because it shares its
name with its module (``decrimkit.estimators.iv.leniency``); a lazy lookup would be shadowed by the
module once anything imports it.
"""

from __future__ import annotations

from decrimkit.estimators.iv.leniency import leniency
from decrimkit.estimators.iv.results import LeniencyResult

__all__ = ["leniency", "LeniencyResult"]
