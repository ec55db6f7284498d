"""Bundled real data with provenance, verified by sha256 on every load.

Every dataset is a folder under ``decrimkit/datasets/data/`` holding gzip-compressed data files, the
dataset's ``PROVENANCE.md`` (source repository and commit, coverage, columns, caveats), and an entry
in ``catalog.json`` (title, publisher, source, licence notes, coverage, and per file the sha256 of
the bundled bytes and the row count). See ``docs/data.md``.

>>> from decrimkit.datasets import load_dataset, list_datasets, dataset_info
>>> mpdta = load_dataset("mpdta")
"""

from decrimkit.datasets._loader import (
    dataset_hashes,
    dataset_info,
    dataset_provenance,
    list_datasets,
    load_dataset,
)
from decrimkit.datasets.registry import policy_registry, validate_registry

__all__ = [
    "list_datasets",
    "load_dataset",
    "dataset_info",
    "dataset_provenance",
    "dataset_hashes",
    "policy_registry",
    "validate_registry",
]
