"""Maintainer tool: copy the shared data folders into the package and write ``catalog.json``.

Run ``python -m decrimkit.datasets._build SOURCE_DIR [DATASET ...]`` where ``SOURCE_DIR`` holds one
folder per dataset, each with a ``PROVENANCE.md`` (naming datasets rebundles only those). Every data file is gzip-compressed deterministically
(``mtime=0``, no file name in the header, level 9) unless it already is, so rebuilding from the
same sources gives byte-identical files and hashes. ``catalog.json`` records, per dataset, the
descriptive fields below and, per file, the sha256 of the bundled bytes, the sha256 of the source
file (the value printed in its PROVENANCE.md) and the number of rows.

The descriptive fields are summaries of each PROVENANCE.md, which is bundled verbatim and remains
the authority.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pandas as pd

HERE = Path(__file__).resolve().parent / "data"

# Per dataset: title, publisher, source (where the bundled copy came from), licence notes, coverage,
# the main file (loaded when no file is named) and, for files that are not plain CSV, reader options.
META: dict[str, dict[str, Any]] = {
    "mpdta": {
        "title": "County teen employment and state minimum-wage rises (R did example data)",
        "publisher": "Callaway & Sant'Anna (2021), J. Econometrics; R package did",
        "source": "GitHub bcallaway11/did @ 71ba8a5 (did 2.5.1), data/mpdta.rda",
        "licence": "GPL-3 (R package did)",
        "coverage": "500 US counties x 2003-2007, balanced; cohorts 2004, 2006, 2007; 0 = never treated",
        "main": "mpdta.csv",
    },
    "prop99": {
        "title": "California Proposition 99 cigarette sales (Abadie, Diamond & Hainmueller 2010)",
        "publisher": "Abadie, Diamond & Hainmueller (2010), JASA 105(490); Orzechowski & Walker, Tax Burden on Tobacco",
        "source": "GitHub synth-inference/synthdid @ 70c1ce3 (long panel); edunford/tidysynth @ 58eda58 (covariates); prop99_adh.csv source unrecorded",
        "licence": "synthdid: GPL (>= 2) | BSD-3-Clause; tidysynth: MIT; prop99_adh.csv: unknown",
        "coverage": "39 US states x 1970-2000; California treated from 1989",
        "main": "california_prop99_long.csv",
    },
    "basque": {
        "title": "Basque Country terrorism panel (Abadie & Gardeazabal 2003)",
        "publisher": "Abadie & Gardeazabal (2003), AER 93(1); R package Synth",
        "source": "GitHub cran/Synth @ 8e17175 (Synth 1.1-8), data/basque.rda",
        "licence": "GPL (>= 2) (R package Synth)",
        "coverage": "17 Spanish regions + Spain x 1955-1997; terrorism onset about 1970",
        "main": "basque.csv",
    },
    "west_germany": {
        "title": "German reunification panel (Abadie, Diamond & Hainmueller 2015)",
        "publisher": "Abadie, Diamond & Hainmueller (2015), AJPS 59(2); replication file repgermany.dta",
        "source": "GitHub sdfordham/pysyncon @ 34350ca, data/germany.csv",
        "licence": "MIT (pysyncon repository)",
        "coverage": "17 OECD countries x 1960-2003; reunification 1990",
        "main": "germany_reunification.csv",
    },
    "castle_doctrine": {
        "title": "Castle-doctrine state panel (Cheng & Hoekstra 2013)",
        "publisher": "Cheng & Hoekstra (2013), J. Human Resources 48(3); Cunningham, Causal Inference: The Mixtape",
        "source": "GitHub kylebutts/did2s @ 8228c15, data-raw/castle.dta",
        "licence": "MIT (did2s repository)",
        "coverage": "50 US states x 2000-2010; 21 states adopt 2005-2009 (effyear)",
        "main": "castle.csv",
    },
    "card_krueger": {
        "title": "New Jersey / Pennsylvania fast-food minimum-wage survey (Card & Krueger 1994)",
        "publisher": "Card & Krueger (1994), AER 84(4); public data archive njmin",
        "source": "GitHub Thonyta17/Midterm-Project-The-Replication-Study @ 65dae42, data/raw/public.dat",
        "licence": "none stated; the authors' public research data",
        "coverage": "410 restaurants (331 NJ, 79 PA), two waves in 1992, wide format",
        "main": "njmin_public.csv",
        # public.dat: whitespace separated, no header, "." = missing; names from the codebook (as in the CSV)
        "read": {"public.dat": {"sep": r"\s+", "header": None, "na_values": ["."], "names_from": "njmin_public.csv"}},
    },
    "baltimore_bpd_arrests": {
        "title": "Baltimore Police Department arrests (Open Baltimore), partial",
        "publisher": "Baltimore Police Department, BPD Arrests open dataset (Open Baltimore)",
        "source": "GitHub JHWu92/public-safety-baltimore (arrest extract); erusin12/dataProject1 (monthly series)",
        "licence": "City of Baltimore open data; no licence stated in the source repositories",
        "coverage": "arrests 2017-01-01 to 2018-02-17 (row level); monthly narcotics and handgun arrests 2018-01 to 2022-12",
        "main": "bpd_narcotics_arrests_monthly_2018_2022.csv",
    },
    "cdc_vsrr_overdose": {
        "title": "CDC/NCHS VSRR provisional drug overdose deaths, 12-month-ending sums",
        "publisher": "National Center for Health Statistics, CDC (data.cdc.gov xkb8-kh2a)",
        "source": "GitHub ellaprince90/overdose-data-us @ 0e93ff0 (copy of the CDC file), extracted",
        "licence": "US federal government data (public domain)",
        "coverage": "jurisdiction x month 2015-01 to 2025-04; full file: 47 states + DC + US + NYC (PA, RI, SC missing)",
        "main": "vsrr_overdose_deaths_12mo_ending_full.csv",
        # the full file mixes indicators (all-cause "Number of Deaths" for TX and UT beside the drug
        # overdose counts): load_dataset returns one indicator unless the caller asks otherwise
        "select": {"indicator": "Number of Drug Overdose Deaths"},
    },
    "state_population": {
        "title": "US resident population by state and year (Census Bureau estimates)",
        "publisher": "U.S. Census Bureau, Population Estimates Program (Vintage 2019 and Vintage 2024)",
        "source": "Census alldata files via GitHub mohnatus/covid-19 @ 52b79d6 (V2019) and MWPerrineJr/Population-EDA @ 9aa22cf (V2024)",
        "licence": "US federal government work (public domain)",
        "coverage": "50 states + DC x 2010-2024; vintage break between 2019 and 2020",
        "main": "state_population.csv",
    },
    "policy_registry": {
        "title": "Registry of prosecutor and state drug-policy changes (four de facto models + de jure)",
        "publisher": "decrimkit project (hand-coded from news reports and official documents)",
        "source": "compiled for this project; every row lists its sources in source_urls",
        "licence": "coding is the project's own; cited sources keep their own terms",
        "coverage": "38 policies in 14 states, 2009-2022 (end dates to 2024-12)",
        "main": "policy_registry.csv",
    },
    "kansas": {
        "title": "US state-quarter economic panel around Kansas's 2012 tax cuts (R augsynth data)",
        "publisher": "Ben-Michael, Feller & Rothstein (2021), JASA; R package augsynth",
        "source": "GitHub ebenmichael/augsynth @ f942957, data/kansas.rda",
        "licence": "R package augsynth (licence as stated by the package; see PROVENANCE.md)",
        "coverage": "50 states x 1990Q1-2016Q1; Kansas treated from 2012Q2",
        "main": "kansas.csv",
    },
    "texas": {
        "title": "Texas prison construction and Black male incarceration",
        "publisher": "Cunningham, Causal Inference: The Mixtape (synthetic-control chapter)",
        "source": "GitHub sdfordham/pysyncon @ 34350ca, data/texas.csv",
        "licence": "MIT (pysyncon repository); teaching data",
        "coverage": "50 states + DC x 1985-2000, balanced",
        "main": "texas.csv",
    },
    "quota": {
        "title": "Gender quotas and women in parliament (synthetic DiD example data)",
        "publisher": "Clarke, Pailanir, Athey & Imbens, Stata sdid (quota_example.dta); Bhalotra et al.",
        "source": "GitHub d2cml-ai/synthdid.py @ 02af9c0, data/quota_example.dta",
        "licence": "authors' example data; no licence stated",
        "coverage": "119 countries x 1990-2015, balanced, staggered adoption",
        "main": "quota_example.csv",
    },
    "ehec": {
        "title": "State Medicaid expansion and insurance coverage of low-income adults (ACS)",
        "publisher": "Mixtape Sessions Advanced DiD course (J. Roth); HonestDiD README example",
        "source": "GitHub Mixtape-Sessions/Advanced-DID @ 39867d0, Exercises/Data/ehec_data.dta",
        "licence": "course materials; built from public ACS data",
        "coverage": "46 states x 2008-2019, balanced; expansion cohorts 2014-2019, 16 never",
        "main": "ehec_data.csv",
    },
    "jel_medicaid": {
        "title": "County adult mortality and Medicaid expansion (JEL DiD guide), rebuilt",
        "publisher": "Baker, Callaway, Cunningham, Goodman-Bacon & Sant'Anna, JEL practitioner's guide; CDC WONDER, BLS LAUS, KFF",
        "source": "rebuilt from raw inputs in GitHub pedrohcgs/JEL-DiD @ 7c60bf7 (poverty_rate, median_income missing)",
        "licence": "public US government data; replication archive terms",
        "coverage": "3,064 counties x 2009-2019, unbalanced (31,843 rows)",
        "main": "county_mortality_data_rebuilt.csv",
    },
    "cdc_wonder_county_overdose": {
        "title": "CDC WONDER drug overdose deaths by county of residence, 2010-2022",
        "publisher": "NCHS, CDC (National Vital Statistics System, via CDC WONDER); Census county names",
        "source": "GitHub A-Deas/Opioid-Feature-Importance @ 2c366b6, Data/Mortality/Raw Files (13 yearly exports)",
        "licence": "US federal government data; CDC WONDER data-use restrictions (no re-derivation of suppressed cells)",
        "coverage": "3,147 US counties x 2010-2022; counts 1-9 suppressed (deaths empty, deaths_status 'suppressed')",
        "main": "wonder_county_overdose_deaths_2010_2022.csv",
        # codes keep their leading zeros; a suppressed or missing count is <NA>, never a number
        "read": {
            "wonder_county_overdose_deaths_2010_2022.csv": {
                "dtype": {
                    "fips": "str",
                    "state_fips": "str",
                    "state_abbr": "str",
                    "county_name": "str",
                    "deaths": "Int64",
                    "deaths_status": "str",
                    "population": "Int64",
                    "crude_rate_flag": "str",
                },
                "keep_default_na": False,
                "na_values": {"deaths": [""], "population": [""], "crude_rate_wonder": [""]},
            }
        },
    },
    "seer_county_population": {
        "title": "SEER county population estimates (total, all ages), 1990-2020",
        "publisher": "National Cancer Institute, SEER U.S. County Population Data (Census Bureau estimates)",
        "source": "GitHub guillelozabala/lmos_opioids @ b6c755c, data/intermediate/county_demographics (year, fips, population)",
        "licence": "SEER population data: public, free to use with citation",
        "coverage": "3,155 county codes x 1990-2020 (97,287 rows; SEER combination codes and 99999 in 2005 included)",
        "main": "seer_county_population_1990_2020.csv",
        "read": {"seer_county_population_1990_2020.csv": {"dtype": {"fips": "str", "state_fips": "str"}}},
    },
    "ny_dcjs_county_arrests": {
        "title": "New York State adult arrests (18+) by county and year, DCJS",
        "publisher": "New York State Division of Criminal Justice Services (data.ny.gov rikd-mt35)",
        "source": "GitHub manjunath5496/CSV-Datasets_4 @ 6490632 (download of spring 2020); FIPS from Census county file",
        "licence": "New York State open data (data.ny.gov terms of use)",
        "coverage": "62 NY counties x 1970-2019 (+ 2 'Unknown' pseudo-counties without FIPS); drug felony and misdemeanor",
        "main": "ny_adult_arrests_by_county_1970_2019.csv",
        "read": {"ny_adult_arrests_by_county_1970_2019.csv": {"dtype": {"fips": "str", "county": "str"}}},
    },
    "base_stagg": {
        "title": "Simulated staggered-adoption panel (R fixest base_stagg, Sun & Abraham example)",
        "publisher": "Laurent Berge, R package fixest",
        "source": "GitHub lrberge/fixest @ dbe56c5 (fixest 0.12.2), data/base_stagg.RData",
        "licence": "GPL-3 (R package fixest)",
        "coverage": "95 units x 10 periods, balanced; cohorts 2-10 (5 units each), 50 never treated (year_treated 10000)",
        "main": "base_stagg.csv",
    },
    "df_het": {
        "title": "Simulated two-cohort staggered panel with heterogeneous effects (R didimputation df_het)",
        "publisher": "Kyle Butts, R package didimputation (generated with did2s::gen_data)",
        "source": "GitHub kylebutts/didimputation @ 906648e (0.5.0), data/df_het.rda",
        "licence": "MIT (R package didimputation)",
        "coverage": "1000 units x 1990-2020, balanced; cohorts 2000 and 2010, 357 never treated (g = 0)",
        "main": "df_het.csv",
    },
    "pj_officer_level_balanced": {
        "title": "Chicago Police procedural-justice training, officer x month panel (R staggered example data)",
        "publisher": "Wood, Tyler, Papachristos, Roth & Sant'Anna (2020); Roth & Sant'Anna (2023); R package staggered",
        "source": "GitHub jonathandroth/staggered @ 921f265 (staggered 1.2.3), data/pj_officer_level_balanced.rda",
        "licence": "GPL-2 (R package staggered)",
        "coverage": "7,785 officers x 72 months (2011-2016), balanced; 48 randomized training cohorts, none never trained",
        "main": "pj_officer_level_balanced.csv",
        # the date, appointment and birth-year columns are left out to keep the package small (1.1 MB)
        "keep": {
            "pj_officer_level_balanced.csv": ["uid", "period", "first_trained", "complaints", "sustained", "force"]
        },
    },
}


def _gzip_bytes(raw: bytes, name: str) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(raw)
    return buf.getvalue()


def _bundled_bytes(raw: bytes, gzipped: bool, name: str, columns: list[str] | None) -> bytes:
    """The gzip bytes to bundle: the source as is, or (``columns``) only those columns, rewritten as CSV."""
    if columns is None:
        return raw if gzipped else _gzip_bytes(raw, name)
    text = gzip.decompress(raw) if gzipped else raw
    frame = pd.read_csv(io.BytesIO(text), usecols=columns)[columns]
    return _gzip_bytes(frame.to_csv(index=False, lineterminator="\n").encode("utf-8"), name)


def _kept_note(keep: dict[str, list[str]]) -> str:
    lines = ["", "## Bundled copy (decrimkit)", ""]
    for name, columns in keep.items():
        lines.append(
            f"`{name}` is bundled with the columns {', '.join(f'`{c}`' for c in columns)} only (the others are left "
            "out to keep the package small); values and row order are unchanged. `catalog.json` gives the sha256 "
            "of the bundled gzip and, as `source_sha256`, that of the source file named above."
        )
    return "\n".join(lines) + "\n"


def _rows(data: bytes, options: dict[str, Any]) -> int:
    opts = {k: v for k, v in options.items() if k != "names_from"}
    return int(len(pd.read_csv(io.BytesIO(gzip.decompress(data)), **opts)))


def _bundle(folder: Path, out: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """Copy one dataset folder into ``out`` (gzip-compressed) and return its catalog entry."""
    meta = dict(meta)
    read = meta.pop("read", {})
    keep = meta.pop("keep", {})
    out.mkdir(parents=True)
    shutil.copyfile(folder / "PROVENANCE.md", out / "PROVENANCE.md")
    if keep:
        with (out / "PROVENANCE.md").open("a", encoding="utf-8") as fh:
            fh.write(_kept_note(keep))
    files = []
    for f in sorted(p for p in folder.iterdir() if p.name != "PROVENANCE.md"):
        raw = f.read_bytes()
        logical = f.name[:-3] if f.name.endswith(".gz") else f.name
        data = _bundled_bytes(raw, f.name.endswith(".gz"), f.name, keep.get(logical))
        bundled = logical + ".gz"
        (out / bundled).write_bytes(data)
        options = read.get(logical, {})
        files.append(
            {
                "name": logical,
                "bundled": bundled,
                "sha256": hashlib.sha256(data).hexdigest(),
                "source_sha256": hashlib.sha256(raw).hexdigest(),
                "rows": _rows(data, options),
                "read": options,
            }
        )
    if meta["main"] not in {f["name"] for f in files}:
        raise SystemExit(f"{folder.name}: main file {meta['main']!r} not found")
    return {"name": folder.name, **meta, "provenance": "PROVENANCE.md", "files": files}


def build(source: Path, dest: Path = HERE, only: list[str] | None = None) -> dict[str, Any]:
    """Copy the dataset folders under ``source`` into ``dest`` and return the catalog written.

    With ``only``, just those datasets are (re)bundled and their catalog entries replaced; the other
    folders and entries in ``dest`` are kept as they are.
    """
    folders = sorted(p for p in source.iterdir() if p.is_dir() and (p / "PROVENANCE.md").exists())
    if only is not None:
        unknown = sorted(set(only) - {p.name for p in folders})
        if unknown:
            raise SystemExit(f"no dataset folder(s) {unknown} under {source}")
        folders = [p for p in folders if p.name in set(only)]
    missing = sorted({p.name for p in folders} - set(META))
    if missing:
        raise SystemExit(f"no catalog entry for dataset folder(s) {missing}; add them to META")
    catalog: dict[str, Any] = {}
    if only is None:
        if dest.exists():
            shutil.rmtree(dest)
    else:
        catalog = json.loads((dest / "catalog.json").read_text(encoding="utf-8"))
        for folder in folders:
            if (dest / folder.name).exists():
                shutil.rmtree(dest / folder.name)
    for folder in folders:
        catalog[folder.name] = _bundle(folder, dest / folder.name, META[folder.name])
    (dest / "catalog.json").write_text(json.dumps(catalog, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return catalog


if __name__ == "__main__":  # pragma: no cover - maintainer tool
    if len(sys.argv) < 2:
        raise SystemExit("usage: python -m decrimkit.datasets._build SOURCE_DIR [DATASET ...]")
    cat = build(Path(sys.argv[1]), only=sys.argv[2:] or None)
    for name, entry in cat.items():
        print(name, ", ".join(f"{f['name']} ({f['rows']} rows)" for f in entry["files"]))
