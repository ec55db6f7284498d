"""Data for the Baltimore study: the monthly arrest series and the 2017-2018 arrest microdata.

Everything is read through :func:`decrimkit.datasets.load_dataset` (sha256-verified bundled files).

* ``monthly_series()`` -- monthly CDS (drug) and handgun arrests, 2018-01 .. 2022-12, a third-party
  aggregation of the full BPD file (see the dataset's PROVENANCE.md): a *drug* arrest is one whose
  charge description contains "CDS", so distribution and possession with intent are included.
* ``possession_composition()`` -- the racial composition of pre-policy drug-possession arrests from
  the arrest-level extract (2017-01-01 .. 2018-02-17), under the explicit charge rule of
  :func:`classify_cds_charge`.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import numpy as np
import pandas as pd

from decrimkit.datasets import load_dataset
from decrimkit.errors import DataError

DATASET = "baltimore_bpd_arrests"
DRUG_FILE = "bpd_narcotics_arrests_monthly_2018_2022.csv"
HANDGUN_FILE = "bpd_handgun_arrests_monthly_2018_2022.csv"
MICRO_FILE = "bpd_arrests_2017_2018feb.csv"

RACE_LABELS = {"B": "Black", "W": "White", "A": "Asian", "I": "American Indian", "U": "Unknown"}

# --- charge rule ---------------------------------------------------------------------------
# Intent to distribute, distribution, manufacture, conspiracy, weapons, volume and fraud markers:
# any of these makes a CDS charge *not* simple possession.
_NOT_POSSESSION = re.compile(
    r"INT|PWI|P W/|W/I|P\.W\.I|DIS|DSIT|MANUF|CONS|FIREARM|HGV|HANDGUN|LG AMT|LARGE|FRAUD|OBT|FRGE|ADMIN|"
    r"NUIS|VOLUME|IMPORT"
)
# Possession spelled out (including the misspellings found in the file) or paraphernalia.
_POSSESSION = re.compile(r"\bPOS+E?S+|\bPOSS|\bPSS+ES|\bPARA")


def classify_cds_charge(description: str | float) -> str:
    """Classify one ``ChargeDescription`` into ``possession``, ``distribution``, ``unspecified`` or ``other``.

    The rule (applied to the upper-cased, whitespace-collapsed text):

    1. ``other`` unless the text contains "CDS" (the same test the monthly series uses);
    2. ``distribution`` if it contains an intent/distribution marker: INT, PWI, P W/, W/I, DIS
       (distribution, dist.), MANUF, CONS(piracy), FIREARM, HGV/HANDGUN, LG AMT, FRAUD, ADMIN(ister),
       NUIS(ance) -- e.g. "CDS POSS W/INT TO DIST", "CDS PWID", "HGV/CDS";
    3. ``possession`` if it spells out possession (POSS, POSSESSION and misspellings such as POSESSION)
       or paraphernalia (PARA) -- e.g. "CDS POSS", "CDS:POSSESS-NOT MARIJUANA", "POSS CDS";
    4. ``unspecified`` otherwise -- chiefly the bare "CDS" and "CDS VIOLATION", which BPD used for
       possession and distribution alike and which are most of the CDS rows.
    """
    if not isinstance(description, str):
        return "other"
    text = " ".join(description.upper().split())
    if "CDS" not in text:
        return "other"
    if _NOT_POSSESSION.search(text):
        return "distribution"
    if _POSSESSION.search(text):
        return "possession"
    return "unspecified"


# --- monthly series ------------------------------------------------------------------------
def _read_monthly(file: str, name: str) -> pd.Series:
    df = load_dataset(DATASET, file=file)
    missing = {"year", "month", "arrest_count"} - set(df.columns)
    if missing:
        raise DataError(f"{file}: columns {sorted(missing)} are missing; expected year, month, arrest_count.")
    counts = df["arrest_count"].to_numpy(dtype="float64")
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise DataError(f"{file}: arrest_count must be finite and non-negative.")
    index = pd.PeriodIndex.from_fields(year=df["year"].to_numpy(), month=df["month"].to_numpy(), freq="M")
    if index.has_duplicates:
        raise DataError(f"{file}: repeated months; keep one row per (year, month).")
    return pd.Series(counts, index=index, name=name).sort_index()


def monthly_series() -> pd.DataFrame:
    """Monthly drug (CDS) and handgun arrests, one row per month, columns ``month, drug, handgun``.

    Raises
    ------
    DataError
        If a file lacks its columns, holds negative or missing counts, repeats a month, or the two
        series do not cover the same consecutive months.
    """
    drug = _read_monthly(DRUG_FILE, "drug")
    gun = _read_monthly(HANDGUN_FILE, "handgun")
    if not drug.index.equals(gun.index):
        raise DataError("the drug and handgun series cover different months; both must span 2018-01 .. 2022-12.")
    full = pd.period_range(drug.index.min(), drug.index.max(), freq="M")
    if len(full) != len(drug):
        raise DataError(f"the monthly series have gaps: {len(full) - len(drug)} months missing.")
    out = pd.DataFrame({"month": drug.index, "drug": drug.to_numpy(), "handgun": gun.to_numpy()})
    return out


# --- microdata -----------------------------------------------------------------------------
class Microdata(NamedTuple):
    """Arrest-level extract after cleaning.

    frame: one row per arrest (exact duplicate rows removed), with ``cds_class`` and ``race_label``.
    n_raw: rows in the file; n_duplicates: exact duplicate rows removed; first, last: ArrestDate range.
    """

    frame: pd.DataFrame
    n_raw: int
    n_duplicates: int
    first: str
    last: str


def microdata() -> Microdata:
    """The 2017-01 .. 2018-02 arrest extract with a CDS charge class per row.

    Rows that repeat another row in every column are the same arrest listed twice and are removed
    (their number is returned, never silently dropped).
    """
    raw = load_dataset(DATASET, file=MICRO_FILE)
    need = {"Arrest", "Race", "ArrestDate", "ChargeDescription"}
    if need - set(raw.columns):
        raise DataError(f"{MICRO_FILE}: columns {sorted(need - set(raw.columns))} are missing.")
    dup = raw.duplicated(keep="first")
    df = raw.loc[~dup].reset_index(drop=True)
    dates = pd.to_datetime(df["ArrestDate"], format="%m/%d/%Y")
    race = df["Race"].astype("object").where(df["Race"].notna(), "U")
    df = df.assign(
        date=dates,
        cds_class=[classify_cds_charge(v) for v in df["ChargeDescription"].astype("object")],
        race_label=[RACE_LABELS.get(r, "Unknown") for r in race],
    )
    return Microdata(df, int(len(raw)), int(dup.sum()), str(dates.min().date()), str(dates.max().date()))


DEFINITIONS = {
    "possession (explicit)": ("possession",),
    "possession + unspecified": ("possession", "unspecified"),
    "all CDS charges": ("possession", "unspecified", "distribution"),
}


def charge_rule_counts(micro: Microdata) -> pd.DataFrame:
    """Rows per CDS class with the three most frequent descriptions (what the rule did)."""
    df = micro.frame
    rows = []
    for cls in ("possession", "distribution", "unspecified"):
        sub = df.loc[df["cds_class"] == cls, "ChargeDescription"].astype("object")
        top = sub.value_counts()
        top = top[top >= 11].head(3)  # descriptions named with their counts: small ones are left out
        rows.append(
            {
                "class": cls,
                "arrests": int(len(sub)),
                "most frequent descriptions": "; ".join(f"{k} ({v})" for k, v in top.items()),
            }
        )
    return pd.DataFrame(rows)


def possession_composition(micro: Microdata) -> pd.DataFrame:
    """Arrests and shares by race under each charge definition of :data:`DEFINITIONS`.

    Returns a long frame ``definition, race, arrests, share`` (share of that definition's arrests).
    """
    df = micro.frame
    order = list(RACE_LABELS.values())
    rows = []
    for name, classes in DEFINITIONS.items():
        sub = df.loc[df["cds_class"].isin(classes), "race_label"]
        counts = sub.value_counts().reindex(order, fill_value=0)
        total = int(counts.sum())
        for race, n in counts.items():
            rows.append({"definition": name, "race": race, "arrests": int(n), "share": n / total})
    return pd.DataFrame(rows)
