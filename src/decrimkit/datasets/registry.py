"""The policy registry as a validated, typed table.

The bundled ``policy_registry`` dataset codes prosecutor and state drug-policy changes into the four
de facto decriminalization models of Rouhani et al. (expanded diversion, substance-specific
declination, case-by-case declination, unconditional declination) plus ``de_jure`` reform. The raw
CSV keeps dates as text (``YYYY-MM-DD``, or ``YYYY-MM`` when only the month is known) and county FIPS
codes as floats; :func:`policy_registry` returns it parsed and checked, and :func:`validate_registry`
does the same for any frame with the registry's columns (e.g. an updated copy).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from decrimkit.datasets._loader import load_dataset
from decrimkit.errors import RegistryError
from decrimkit.options import POLICY_MODELS

__all__ = ["policy_registry", "validate_registry", "REGISTRY_COLUMNS", "CONFIDENCE_LEVELS"]

REGISTRY_COLUMNS: tuple[str, ...] = (
    "jurisdiction",
    "state",
    "county_fips",
    "office",
    "model",
    "announced",
    "effective",
    "ended",
    "substances",
    "threshold",
    "retroactive",
    "confidence",
    "source_urls",
    "notes",
)
DATE_COLUMNS: tuple[str, ...] = ("announced", "effective", "ended")
CONFIDENCE_LEVELS: tuple[str, ...] = ("low", "medium", "high")
TEXT_COLUMNS: tuple[str, ...] = (
    "jurisdiction",
    "state",
    "office",
    "substances",
    "threshold",
    "retroactive",
    "source_urls",
    "notes",
)
# Tags that open (or appear in) the coder's notes; see the dataset's PROVENANCE.md, "Flags in notes".
FLAGS: dict[str, str] = {
    "cannabis_only": "[cannabis-only]",
    "trace_threshold": "[trace-threshold]",
    "municipal_deprioritization": "[municipal-deprioritization]",
}
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MONTH = re.compile(r"^\d{4}-\d{2}$")
_CANNABIS = re.compile(r"marijuana|cannabis|\bthc\b", re.IGNORECASE)


def _where(df: pd.DataFrame, mask: np.ndarray) -> str:
    rows = np.flatnonzero(mask)
    shown = []
    for r in rows[:3]:
        jur = df["jurisdiction"].iloc[r] if "jurisdiction" in df.columns else "?"
        shown.append(f"row {r} ({jur})")
    more = f" and {len(rows) - 3} more" if len(rows) > 3 else ""
    return ", ".join(shown) + more


def _parse_dates(df: pd.DataFrame, col: str) -> tuple[pd.Series, pd.Series]:
    """Dates (month-only values at the first of the month) and their precision ('day', 'month', NA)."""
    text = df[col].astype("string").str.strip()
    text = text.mask(text == "")
    day = text.str.match(_DAY).fillna(False).to_numpy(dtype=bool)
    month = text.str.match(_MONTH).fillna(False).to_numpy(dtype=bool)
    present = text.notna().to_numpy()
    bad_format = present & ~day & ~month
    if bad_format.any():
        first = text[bad_format].iloc[0]
        raise RegistryError(
            f"registry column {col!r} has dates in an unknown format at {_where(df, bad_format)} (first {first!r}). "
            f"Write dates as YYYY-MM-DD, or YYYY-MM when only the month is known."
        )
    full = text.where(~month, text + "-01")
    parsed = pd.to_datetime(full, format="%Y-%m-%d", errors="coerce")
    invalid = present & parsed.isna().to_numpy()
    if invalid.any():
        raise RegistryError(
            f"registry column {col!r} has impossible dates at {_where(df, invalid)} (first {text[invalid].iloc[0]!r}). "
            f"Check the day and month."
        )
    precision = pd.Series(np.where(day, "day", np.where(month, "month", None)), index=df.index)
    precision = precision.astype(pd.CategoricalDtype(["day", "month"]))
    return parsed.astype("datetime64[ns]"), precision


def _fips(df: pd.DataFrame) -> pd.Series:
    raw = df["county_fips"]
    num = pd.to_numeric(raw, errors="coerce")
    given = raw.notna() & (raw.astype("string").str.strip() != "")
    bad = (given & (num.isna() | (num % 1 != 0) | (num < 1000) | (num > 56999))).to_numpy(dtype=bool)
    if bad.any():
        raise RegistryError(
            f"registry column 'county_fips' must hold 4-5 digit county FIPS codes; bad at {_where(df, bad)} "
            f"(first {raw[bad].iloc[0]!r}). Leave it empty for statewide rows."
        )
    out = num.astype("Int64").astype("string").str.zfill(5)
    return out.where(given, pd.NA)


def validate_registry(df: pd.DataFrame) -> pd.DataFrame:
    """Check a raw registry frame and return the typed table (the input is not modified).

    Parameters
    ----------
    df : DataFrame
        The registry's columns (:data:`REGISTRY_COLUMNS`) as text, as in the bundled CSV.

    Returns
    -------
    DataFrame
        One row per policy, in input order, with: text columns as strings; ``county_fips`` as a
        zero-padded 5-character string (NA for statewide rows); ``statewide`` (bool);
        ``model`` as a categorical over ``decrimkit.options.POLICY_MODELS``; ``announced``,
        ``effective``, ``ended`` as datetimes (month-only dates at the first of the month) with
        ``announced_precision``, ``effective_precision``, ``ended_precision`` (``"day"``,
        ``"month"`` or NA); ``start`` (effective date, else announced date) with ``start_precision``
        and ``start_source``; ``confidence`` as an ordered categorical (low < medium < high); and the
        note flags ``cannabis_only``, ``trace_threshold``, ``municipal_deprioritization`` (bool).

    Raises
    ------
    RegistryError
        Missing columns, an unknown model or confidence level, a badly formatted or impossible
        date, a policy that ended before it took effect, a row with neither an announced nor an
        effective date but an end date, a bad county FIPS code, repeated rows, or a row tagged
        ``[cannabis-only]`` whose substances do not mention cannabis.

    Notes
    -----
    ``cannabis_only`` is the coder's ``[cannabis-only]`` tag in ``notes`` (the registry's own flag;
    PROVENANCE.md lists the 8 tagged rows). A row covering cannabis and other drugs (Washtenaw,
    2021-01-12) is not tagged and is not cannabis-only. The tag is checked against ``substances``.
    """
    missing = [c for c in REGISTRY_COLUMNS if c not in df.columns]
    if missing:
        raise RegistryError(f"the registry frame lacks column(s) {missing}; it needs {', '.join(REGISTRY_COLUMNS)}.")
    if len(df) == 0:
        raise RegistryError("the registry frame is empty (0 rows).")
    src = df.loc[:, list(REGISTRY_COLUMNS)].reset_index(drop=True)
    out = pd.DataFrame(index=src.index)
    for col in TEXT_COLUMNS:
        out[col] = src[col].astype("string")
    out["county_fips"] = _fips(src)
    out["statewide"] = out["county_fips"].isna().to_numpy(dtype=bool)

    model = src["model"].astype("string").str.strip()
    unknown = (~model.isin(POLICY_MODELS)).to_numpy(dtype=bool)
    if unknown.any():
        raise RegistryError(
            f"registry column 'model' has unknown model {model[unknown].iloc[0]!r} at {_where(src, unknown)}; "
            f"use one of {', '.join(POLICY_MODELS)}."
        )
    out["model"] = pd.Categorical(model.to_numpy(dtype=object), categories=list(POLICY_MODELS))

    for col in DATE_COLUMNS:
        out[col], out[f"{col}_precision"] = _parse_dates(src, col)
    start = out["effective"].fillna(out["announced"])
    out["start"] = start
    out["start_precision"] = out["effective_precision"].where(out["effective"].notna(), out["announced_precision"])
    out["start_source"] = pd.Categorical(
        np.where(out["effective"].notna(), "effective", np.where(out["announced"].notna(), "announced", None)),
        categories=["effective", "announced"],
    )
    # compare at the coarser precision: a month-only end in the start month is not "before" it
    coarse = (out["ended_precision"] == "month").to_numpy(dtype=bool) | (out["start_precision"] == "month").to_numpy(
        dtype=bool
    )
    s_m, e_m = out["start"].dt.to_period("M"), out["ended"].dt.to_period("M")
    before_day = (out["ended"] < out["start"]).to_numpy(dtype=bool)
    before_month = (e_m < s_m).fillna(False).to_numpy(dtype=bool)
    ended_before = np.where(coarse, before_month, before_day)
    if ended_before.any():
        r = int(np.flatnonzero(ended_before)[0])
        raise RegistryError(
            f"a policy ended before it took effect at {_where(src, ended_before)} (first: ended "
            f"{src['ended'].iloc[r]!r}, effective {src['effective'].iloc[r]!r}, announced "
            f"{src['announced'].iloc[r]!r}). Fix the dates or swap them."
        )
    orphan_end = (out["ended"].notna() & out["start"].isna()).to_numpy(dtype=bool)
    if orphan_end.any():
        raise RegistryError(
            f"a policy has an end date but neither an announced nor an effective date at {_where(src, orphan_end)}. "
            f"Add the start date (month only, YYYY-MM, if the day is unknown)."
        )

    conf = src["confidence"].astype("string").str.strip()
    badc = (~conf.isin(CONFIDENCE_LEVELS)).to_numpy(dtype=bool)
    if badc.any():
        raise RegistryError(
            f"registry column 'confidence' has {conf[badc].iloc[0]!r} at {_where(src, badc)}; "
            f"use one of {', '.join(CONFIDENCE_LEVELS)}."
        )
    out["confidence"] = pd.Categorical(conf.to_numpy(dtype=object), categories=list(CONFIDENCE_LEVELS), ordered=True)

    notes = out["notes"].fillna("")
    for flag, tag in FLAGS.items():
        out[flag] = notes.str.contains(tag, regex=False).to_numpy(dtype=bool)
    mentions = out["substances"].fillna("").str.contains(_CANNABIS).to_numpy(dtype=bool)
    inconsistent = out["cannabis_only"].to_numpy() & ~mentions
    if inconsistent.any():
        raise RegistryError(
            f"rows tagged [cannabis-only] in notes do not mention cannabis/marijuana in 'substances' at "
            f"{_where(src, inconsistent)}. Fix the tag or the substances."
        )

    dup = src.astype("string").duplicated(keep=False).to_numpy(dtype=bool)
    if dup.any():
        raise RegistryError(f"the registry repeats identical rows at {_where(src, dup)}; keep one of each.")
    order = [
        "jurisdiction",
        "state",
        "county_fips",
        "statewide",
        "office",
        "model",
        "announced",
        "announced_precision",
        "effective",
        "effective_precision",
        "ended",
        "ended_precision",
        "start",
        "start_precision",
        "start_source",
        "substances",
        "threshold",
        "retroactive",
        "confidence",
        *FLAGS,
        "source_urls",
        "notes",
    ]
    return out.loc[:, order]


def policy_registry() -> pd.DataFrame:
    """The bundled policy registry, validated and typed (see :func:`validate_registry`).

    Examples
    --------
    >>> reg = policy_registry()
    >>> int(reg["cannabis_only"].sum())
    8
    """
    return validate_registry(load_dataset("policy_registry"))
