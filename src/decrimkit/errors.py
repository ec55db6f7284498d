"""The error and warning hierarchy of decrimkit.

Every problem with a user's input or design raises a subclass of
:class:`DecrimkitError`, itself a :class:`ValueError`, with a message that says
what is wrong, where (column, first offending rows) and how to fix it.
"""

from __future__ import annotations

__all__ = [
    "DecrimkitError",
    "PanelError",
    "DataError",
    "DesignError",
    "SpecificationError",
    "ConvergenceError",
    "PlanError",
    "RegistryError",
    "OutputFolderError",
    "OutputLockedError",
    "LimitError",
    "MissingExtraError",
    "DisclosureError",
    "DecrimkitWarning",
    "BackendError",
    "ConvergenceWarning",
    "WeakInstrumentWarning",
    "DataWarning",
    "FewTreatedWarning",
]


class DecrimkitError(ValueError):
    """Bad input, or a design that cannot identify the estimand."""


class PanelError(DecrimkitError):
    """The frame cannot form a panel: missing columns, duplicate keys, bad times."""


class DataError(DecrimkitError):
    """Values are unusable: NaN/inf, negative counts, wrong dtype, hash mismatch."""


class DesignError(DecrimkitError):
    """The design cannot identify the estimand: no usable controls, too few pre-periods."""


class SpecificationError(DecrimkitError):
    """A disallowed argument value or combination of options."""


class ConvergenceError(DecrimkitError):
    """An iterative fit or a sampler did not converge (raised under ``strict=True``)."""


class PlanError(DecrimkitError):
    """An analysis plan file is malformed or asks for something not allowed."""


class RegistryError(DataError):
    """A policy-registry row is malformed: bad date, unknown model, ended before it took effect."""


class OutputFolderError(DecrimkitError):
    """An output folder cannot be written safely: it holds files decrimkit did not write, or a symbolic link."""


class OutputLockedError(OutputFolderError):
    """Another decrimkit run is writing the same output folder."""


class LimitError(SpecificationError):
    """A number or size is above decrimkit's documented upper bound (replications, draws, plan size)."""


class MissingExtraError(DecrimkitError):
    """An optional part of decrimkit was called without its extra installed (e.g. ``decrimkit[bayes]``)."""
class BackendError(DecrimkitError):
    """The installed PyMC, PyTensor or blackjax no longer offers what decrimkit's sampling engine relies on."""


class DisclosureError(DataError):
    """A report would publish a recoverable small count or row-level records."""


class DecrimkitWarning(UserWarning):
    """Base class of decrimkit's warnings."""


class ConvergenceWarning(DecrimkitWarning):
    """Diagnostics suggest that a fit or sampler has not converged."""


class WeakInstrumentWarning(DecrimkitWarning):
    """The first stage of an instrumental-variable design is weak."""


class DataWarning(DecrimkitWarning):
    """The data are usable but something about them deserves attention."""


class FewTreatedWarning(DecrimkitWarning):
    """An estimate rests on few treated units and uses large-sample (cluster-robust) inference.

    Choose ``inference="randomization"``, ``"conley_taber"``, ``"ferman_pinto"`` or ``"wild"`` instead.
    """
