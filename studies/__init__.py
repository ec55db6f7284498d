"""decrimkit.studies: one package per evaluation, each with ``run(out, *, seed=, quick=)``.

The registry (:mod:`decrimkit.studies.registry`, ``STUDIES``: name -> :class:`Study`) is the one list of
studies; the CLI, each package's ``python -m``, the Makefile, the paper and the pooling are made from it.
"""

from .registry import STUDIES, Option, Pooling, Study

__all__ = ["STUDIES", "Study", "Option", "Pooling"]
