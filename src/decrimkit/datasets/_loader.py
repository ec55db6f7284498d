"""Find, verify and read the data files bundled with decrimkit."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from decrimkit.errors import DataError

__all__ = ["list_datasets", "load_dataset", "dataset_info", "dataset_provenance", "dataset_hashes"]


def data_root() -> Path:
    """Folder holding ``catalog.json`` and one sub-folder per dataset (inside the installed package)."""
    return Path(str(resources.files("decrimkit.datasets") / "data"))


def _catalog() -> dict[str, Any]:
    path = data_root() / "catalog.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:  # a broken install, not a user error we can fix in code
        raise DataError(
            f"the dataset catalog is missing ({path}); the installation is incomplete. Reinstall decrimkit."
        ) from exc


def _entry(name: str) -> dict[str, Any]:
    cat = _catalog()
    if name not in cat:
        raise DataError(f"no bundled dataset named {name!r}; available: {', '.join(sorted(cat))}.")
    return cat[name]


def _file_entry(entry: dict[str, Any], file: str | None) -> dict[str, Any]:
    wanted = entry["main"] if file is None else (file[:-3] if file.endswith(".gz") else file)
    for f in entry["files"]:
        if f["name"] == wanted:
            return f
    names = ", ".join(f["name"] for f in entry["files"])
    raise DataError(f"dataset {entry['name']!r} has no file {file!r}; its files are: {names}.")


def _verified_bytes(path: Path, expected: str) -> bytes:
    """The bytes of ``path`` after checking their sha256 against ``expected``."""
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise DataError(f"bundled data file {path.name} is missing ({path}); reinstall decrimkit.") from exc
    got = hashlib.sha256(data).hexdigest()
    if got != expected:
        raise DataError(
            f"sha256 mismatch for bundled data file {path.parent.name}/{path.name}: expected {expected}, "
            f"got {got}. The file was changed or corrupted; reinstall decrimkit (or rebuild the data with "
            f"decrimkit.datasets._build)."
        )
    return data


def list_datasets() -> list[str]:
    """Names of the bundled datasets, sorted.

    Examples
    --------
    >>> "mpdta" in list_datasets()
    True
    """
    return sorted(_catalog())


def dataset_info(name: str) -> dict[str, Any]:
    """Catalog entry of dataset ``name``: title, publisher, source, licence, coverage, main file, files.

    ``sha256`` maps each bundled file to its hash. Each entry of ``files`` has ``name`` (to pass as
    ``file=``), ``bundled`` (the gzip file in the package),
    ``sha256`` (of the bundled bytes, verified on every load), ``source_sha256`` (of the file as
    listed in the dataset's PROVENANCE.md) and ``rows`` (every row of the file as stored). ``select``,
    when present, maps a column to the value :func:`load_dataset` keeps by default (see there).

    Raises
    ------
    DataError
        If no dataset has that name (the message lists the names).
    """
    info = json.loads(json.dumps(_entry(name)))  # a deep copy the caller may edit
    info["sha256"] = {f["bundled"]: f["sha256"] for f in info["files"]}
    return info


def dataset_provenance(name: str) -> str:
    """The dataset's PROVENANCE.md (source, commit, coverage, columns, caveats) as text."""
    entry = _entry(name)
    return (data_root() / name / entry["provenance"]).read_text(encoding="utf-8")


def dataset_hashes(name: str) -> dict[str, str]:
    """``{bundled file name: sha256}`` for every file of ``name`` (what provenance.json records)."""
    return {f["bundled"]: f["sha256"] for f in _entry(name)["files"]}


_ALL = object()  # "no value given" for a selection column (None means: keep every value)


def load_dataset(name: str, file: str | None = None, **select: Any) -> pd.DataFrame:
    """Load a bundled dataset as a DataFrame, after verifying the file's sha256.

    Parameters
    ----------
    name : str
        Dataset name, one of :func:`list_datasets` (e.g. ``"mpdta"``, ``"prop99"``).
    file : str, optional
        Which file of the dataset (as listed by :func:`dataset_info`, with or without ``.gz``);
        default the dataset's main file.
    **select
        Row selections a dataset declares (``dataset_info(name)["select"]``: column -> default value),
        for files that stack different quantities in one column. ``cdc_vsrr_overdose`` declares
        ``indicator`` with default ``"Number of Drug Overdose Deaths"``: its full file also holds the
        all-cause ``"Number of Deaths"`` for TX and UT, which must never be mixed with overdose counts.
        Pass another value to get that indicator, or ``indicator=None`` for every row as stored.

    Returns
    -------
    DataFrame
        The file as read by :func:`pandas.read_csv` (rows of the selected values only, index 0..n-1);
        a fresh frame on every call.

    Raises
    ------
    DataError
        Unknown dataset or file, a file whose sha256 does not match the catalog, a selection the
        dataset does not declare, or a value the file does not hold (the message lists the values).

    Examples
    --------
    >>> df = load_dataset("mpdta")
    >>> df.shape
    (2500, 6)
    """
    entry = _entry(name)
    f = _file_entry(entry, file)
    data = _verified_bytes(data_root() / name / f["bundled"], f["sha256"])
    options = dict(f.get("read", {}))
    names_from = options.pop("names_from", None)
    if names_from is not None:
        other = _file_entry(entry, names_from)
        raw = _verified_bytes(data_root() / name / other["bundled"], other["sha256"])
        options["names"] = pd.read_csv(io.BytesIO(gzip.decompress(raw)), nrows=0).columns.tolist()
    df = pd.read_csv(io.BytesIO(gzip.decompress(data)), **options)
    return _select_rows(df, entry, select)


def _select_rows(df: pd.DataFrame, entry: dict[str, Any], select: dict[str, Any]) -> pd.DataFrame:
    """Apply the dataset's declared selections (defaults unless the caller overrides them)."""
    declared: dict[str, Any] = entry.get("select", {})
    unknown = sorted(set(select) - set(declared))
    if unknown:
        allowed = ", ".join(f"{k}= (default {v!r})" for k, v in declared.items()) or "none"
        raise DataError(
            f"load_dataset({entry['name']!r}) got unknown selection(s) {unknown}; this dataset declares: {allowed}."
        )
    for column, default in declared.items():
        value = select.get(column, default)
        if value is None or column not in df.columns:
            continue
        keep = df[column] == value
        if not keep.any():
            held = ", ".join(repr(v) for v in sorted(df[column].dropna().unique().tolist()))
            raise DataError(
                f"dataset {entry['name']!r} has no rows with {column} == {value!r}; it holds {held} "
                f"(or pass {column}=None for every row)."
            )
        df = df.loc[keep].reset_index(drop=True)
    return df
