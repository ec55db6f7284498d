"""Maintainer tool: copy the shared data folders into the package and write ``catalog.json``.

Run ``python -m decrimkit.datasets._build SOURCE_DIR`` where ``SOURCE_DIR`` holds one folder per
dataset, each with a ``PROVENANCE.md``. Every data file is gzip-compressed deterministically
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
}


def _gzip_bytes(raw: bytes, name: str) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(raw)
    return buf.getvalue()


def _rows(data: bytes, options: dict[str, Any]) -> int:
    opts = {k: v for k, v in options.items() if k != "names_from"}
    return int(len(pd.read_csv(io.BytesIO(gzip.decompress(data)), **opts)))


def build(source: Path, dest: Path = HERE) -> dict[str, Any]:
    """Copy every dataset folder under ``source`` into ``dest`` and return the catalog written."""
    folders = sorted(p for p in source.iterdir() if p.is_dir() and (p / "PROVENANCE.md").exists())
    missing = sorted({p.name for p in folders} - set(META))
    if missing:
        raise SystemExit(f"no catalog entry for dataset folder(s) {missing}; add them to META")
    if dest.exists():
        shutil.rmtree(dest)
    catalog: dict[str, Any] = {}
    for folder in folders:
        meta = dict(META[folder.name])
        read = meta.pop("read", {})
        out = dest / folder.name
        out.mkdir(parents=True)
        shutil.copyfile(folder / "PROVENANCE.md", out / "PROVENANCE.md")
        files = []
        for f in sorted(p for p in folder.iterdir() if p.name != "PROVENANCE.md"):
            raw = f.read_bytes()
            logical = f.name[:-3] if f.name.endswith(".gz") else f.name
            data = raw if f.name.endswith(".gz") else _gzip_bytes(raw, f.name)
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
        catalog[folder.name] = {"name": folder.name, **meta, "provenance": "PROVENANCE.md", "files": files}
    (dest / "catalog.json").write_text(json.dumps(catalog, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return catalog


if __name__ == "__main__":  # pragma: no cover - maintainer tool
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m decrimkit.datasets._build SOURCE_DIR")
    cat = build(Path(sys.argv[1]))
    for name, entry in cat.items():
        print(name, ", ".join(f"{f['name']} ({f['rows']} rows)" for f in entry["files"]))
