"""Bayesian hierarchical estimators, one per module (PyMC models sampled by the package's NUTS engine, or PyMC's own).

``from decrimkit.estimators import bayes`` then ``bayes.hierarchical_did(panel, policy_model=...)``,
``bayes.its(series, start=...)``, ``bayes.synthetic_control(panel, treated=, start=)``, ``bayes.pool(estimates)``.
Names resolve lazily so that importing the family does not import PyMC or compile anything. The family
needs the ``bayes`` extra (``pip install 'decrimkit[bayes]'``); without it, the first use of a name raises
:class:`~decrimkit.errors.MissingExtraError`.
Every estimator returns a :class:`~decrimkit.estimators.bayes.results.Posterior`.
"""

from __future__ import annotations

from decrimkit._lazy import lazy_names
from decrimkit.registry import family_names

_WHERE = {
    **family_names("bayes"),  # the estimators, listed in decrimkit.registry
    "hierarchical_did_batch": "_hdid_batch",  # hierarchical_did on many panels of one shape (simulations)
    "Posterior": "results",
    "ITSPosterior": "results",
    "Diagnostics": "_sampling",
}

__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_names(__name__, _WHERE, extra="bayes")
