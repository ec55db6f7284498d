"""Bundled datasets: catalog, sha256 verification on load, every file loads, the policy registry."""

from __future__ import annotations

import gzip
import hashlib
import shutil

import numpy as np
import pandas as pd
import pytest

from decrimkit.datasets import (
    _loader,
    dataset_hashes,
    dataset_info,
    dataset_provenance,
    list_datasets,
    load_dataset,
    policy_registry,
    validate_registry,
)
from decrimkit.errors import DataError, RegistryError
from decrimkit.options import POLICY_MODELS

EXPECTED = {  # dataset -> rows of its main file, as stated in its PROVENANCE.md
    "mpdta": 2500,
    "prop99": 1209,
    "basque": 774,
    "west_germany": 748,
    "castle_doctrine": 550,
    "card_krueger": 410,
    "baltimore_bpd_arrests": 60,
    "cdc_vsrr_overdose": 6447,
    "state_population": 765,
    "policy_registry": 38,
    "kansas": 5250,
    "texas": 816,
    "quota": 3094,
    "ehec": 552,
    "jel_medicaid": 31843,
    "cdc_wonder_county_overdose": 40901,
    "seer_county_population": 97287,
    "ny_dcjs_county_arrests": 3181,
    "base_stagg": 950,
    "df_het": 31000,
    "pj_officer_level_balanced": 560520,
}


def test_every_shared_dataset_is_bundled():
    assert list_datasets() == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_file_loads_with_its_catalogued_rows_and_hash(name):
    info = dataset_info(name)
    for key in ("title", "publisher", "source", "licence", "coverage", "main"):
        assert info[key], f"{name}: empty {key}"
    assert "## " in dataset_provenance(name)
    root = _loader.data_root() / name
    for f in info["files"]:
        data = (root / f["bundled"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == f["sha256"]
        assert data[:2] == b"\x1f\x8b" and data[4:8] == b"\0\0\0\0"  # gzip with mtime 0: deterministic bytes
        every_row = {column: None for column in info.get("select", {})}  # rows as stored, no selection
        df = load_dataset(name, f["name"], **every_row)
        assert len(df) == f["rows"]
    assert len(load_dataset(name, **{column: None for column in info.get("select", {})})) == EXPECTED[name]


def test_vsrr_loader_selects_one_indicator():
    """The full VSRR file stacks the all-cause "Number of Deaths" (TX, UT) beside the drug overdose counts;
    the loader returns one indicator, never the mix (issue 19, part 9)."""
    raw = load_dataset("cdc_vsrr_overdose", indicator=None)
    assert sorted(raw["indicator"].unique()) == ["Number of Deaths", "Number of Drug Overdose Deaths"]
    od = load_dataset("cdc_vsrr_overdose")
    assert od["indicator"].unique().tolist() == ["Number of Drug Overdose Deaths"]
    assert len(od) == 6199 and len(raw) == 6447  # 49 x 124 + Colorado's 123; + 2 x 124 all-cause rows
    assert od.groupby("state").size().loc[["TX", "UT"]].tolist() == [124, 124]  # one row per month, not two
    assert not od.duplicated(["state", "year", "month"]).any()
    allcause = load_dataset("cdc_vsrr_overdose", indicator="Number of Deaths")
    assert sorted(allcause["state"].unique()) == ["TX", "UT"] and len(allcause) == 248
    # the two indicators differ (all causes exceed drug overdoses): mixing them was a real trap
    both = od.merge(allcause, on=["state", "year", "month"], suffixes=("_od", "_all"))
    assert len(both) == 248 and (both["data_value_all"] > 10 * both["data_value_od"]).all()
    assert dataset_info("cdc_vsrr_overdose")["select"] == {"indicator": "Number of Drug Overdose Deaths"}
    subset = load_dataset("cdc_vsrr_overdose", "vsrr_overdose_deaths_12mo_ending_subset.csv")
    assert len(subset) == 4587  # the subset holds the overdose indicator only


def test_vsrr_loader_refuses_unknown_selections():
    with pytest.raises(DataError, match=r"no rows with indicator == 'Opioids'; it holds 'Number of Deaths', "
                                        r"'Number of Drug Overdose Deaths' \(or pass indicator=None"):
        load_dataset("cdc_vsrr_overdose", indicator="Opioids")
    with pytest.raises(DataError, match=r"got unknown selection\(s\) \['state'\]; this dataset declares: "
                                        r"indicator= \(default 'Number of Drug Overdose Deaths'\)"):
        load_dataset("cdc_vsrr_overdose", state="OR")
    with pytest.raises(DataError, match=r"load_dataset\('mpdta'\) got unknown selection\(s\) \['indicator'\]; "
                                        r"this dataset declares: none"):
        load_dataset("mpdta", indicator="x")


def test_source_hashes_match_provenance():
    # the uncompressed bytes hash to the value printed in PROVENANCE.md (mpdta.csv, prop99 long panel)
    assert dataset_info("mpdta")["files"][0]["source_sha256"] == (
        "ca2837cb3679267c5b88af551cb2db4e5a4fcbba1fd27a346a83bac9b0b0ae5c"
    )
    raw = gzip.decompress((_loader.data_root() / "prop99" / "california_prop99_long.csv.gz").read_bytes())
    assert hashlib.sha256(raw).hexdigest() == "369ea135d3b5bfc5b8bf987a3f8143a422bbc004e7d9bdacd7136ca666b027a2"


def test_mpdta_values():
    df = load_dataset("mpdta")
    assert list(df.columns) == ["year", "countyreal", "lpop", "lemp", "first.treat", "treat"]
    assert sorted(df["first.treat"].unique().tolist()) == [0, 2004, 2006, 2007]
    assert df["countyreal"].nunique() == 500


def test_file_name_with_or_without_gz_and_raw_dat():
    a = load_dataset("castle_doctrine", "castle.csv")
    b = load_dataset("castle_doctrine", "castle.csv.gz")
    pd.testing.assert_frame_equal(a, b)
    dat = load_dataset("card_krueger", "public.dat")
    csv = load_dataset("card_krueger")
    assert list(dat.columns) == list(csv.columns)
    np.testing.assert_allclose(dat["empft"].to_numpy(dtype=float), csv["empft"].to_numpy(dtype=float), equal_nan=True)


def test_unknown_names_list_what_exists():
    with pytest.raises(
        DataError, match=r"no bundled dataset named 'nope'; available: baltimore_bpd_arrests, base_stagg, basque"
    ):
        load_dataset("nope")
    with pytest.raises(DataError, match=r"dataset 'mpdta' has no file 'x.csv'; its files are: mpdta.csv"):
        load_dataset("mpdta", "x.csv")


def test_tampered_copy_is_detected(tmp_path, monkeypatch):
    root = tmp_path / "data"
    shutil.copytree(_loader.data_root(), root)
    target = root / "mpdta" / "mpdta.csv.gz"
    expected = hashlib.sha256(target.read_bytes()).hexdigest()
    original = gzip.decompress(target.read_bytes())
    text = original.replace(b"2003,8001", b"2003,8002", 1)
    assert text != original  # one county id changed
    target.write_bytes(gzip.compress(text, mtime=0))
    got = hashlib.sha256(target.read_bytes()).hexdigest()
    monkeypatch.setattr(_loader, "data_root", lambda: root)
    with pytest.raises(
        DataError, match=rf"sha256 mismatch for bundled data file mpdta/mpdta.csv.gz: expected {expected}, got {got}"
    ):
        load_dataset("mpdta")
    assert len(load_dataset("prop99")) == 1209  # untouched files still load


def test_hashes_for_provenance():
    hashes = dataset_hashes("prop99")
    assert set(hashes) == {"california_prop99_long.csv.gz", "prop99_adh.csv.gz", "prop99_smoking_covariates.csv.gz"}
    assert dataset_info("prop99")["sha256"] == hashes


# ---------------------------------------------------------------------------------------- registry
def test_policy_registry_is_typed():
    reg = policy_registry()
    assert len(reg) == 38
    assert list(reg["model"].cat.categories) == list(POLICY_MODELS)
    assert reg["model"].value_counts().to_dict() == {  # PROVENANCE.md, "Coverage"
        "substance_specific_declination": 14,
        "unconditional_declination": 11,
        "case_by_case_declination": 5,
        "expanded_diversion": 4,
        "de_jure": 4,
    }
    assert reg["confidence"].value_counts().to_dict() == {"low": 19, "high": 10, "medium": 9}
    assert reg["confidence"].cat.ordered
    assert int(reg["cannabis_only"].sum()) == 8 and int(reg["trace_threshold"].sum()) == 5
    assert int(reg["municipal_deprioritization"].sum()) == 3
    assert int(reg["statewide"].sum()) == 4
    fips = reg["county_fips"].dropna()
    assert fips.str.len().eq(5).all() and "06037" in set(fips)
    balt = reg[(reg["jurisdiction"] == "Baltimore City") & ~reg["cannabis_only"]].iloc[0]
    assert balt["effective"] == pd.Timestamp("2020-03-18") and balt["ended"] == pd.Timestamp("2023-01-03")
    suffolk = reg[reg["county_fips"] == "25025"].iloc[0]
    assert suffolk["ended"] == pd.Timestamp("2022-01-01") and suffolk["ended_precision"] == "month"
    assert suffolk["effective_precision"] == "day"
    washtenaw = reg[reg["announced"] == pd.Timestamp("2021-01-12")].iloc[0]
    assert not washtenaw["cannabis_only"]  # cannabis and entheogens: not tagged


def raw_registry() -> pd.DataFrame:
    return load_dataset("policy_registry")


@pytest.mark.parametrize(
    ("column", "value", "match"),
    [
        ("effective", "2020-13-01", r"impossible dates at row 0 \(Baltimore City\)"),
        ("effective", "18/03/2020", r"unknown format at row 0 \(Baltimore City\)"),
        ("model", "full_decriminalization", r"unknown model 'full_decriminalization' at row 0"),
        ("ended", "2019-01-01", r"ended before it took effect at row 0 \(Baltimore City\)"),
        ("confidence", "certain", r"'confidence' has 'certain' at row 0"),
        ("county_fips", "12.5", r"county FIPS codes; bad at row 0"),
    ],
)
def test_registry_rejects_malformed_rows(column, value, match):
    df = raw_registry().astype({column: "object"})
    df.loc[0, column] = value
    with pytest.raises(RegistryError, match=match):
        validate_registry(df)


def test_month_precision_end_in_start_month_is_not_before():
    df = raw_registry().astype({"ended": "object"})
    df.loc[0, "ended"] = "2020-03"  # effective 2020-03-18; ended some day in March 2020: allowed
    assert validate_registry(df).loc[0, "ended_precision"] == "month"
    df.loc[0, "ended"] = "2020-02"
    with pytest.raises(RegistryError, match="ended before it took effect"):
        validate_registry(df)


def test_registry_rejects_missing_columns_duplicates_and_bad_tags():
    with pytest.raises(RegistryError, match=r"lacks column\(s\) \['model'\]"):
        validate_registry(raw_registry().drop(columns="model"))
    with pytest.raises(RegistryError, match="repeats identical rows"):
        validate_registry(pd.concat([raw_registry(), raw_registry().iloc[[3]]], ignore_index=True))
    df = raw_registry()
    df.loc[0, "notes"] = "[cannabis-only] " + df.loc[0, "notes"]
    with pytest.raises(RegistryError, match=r"tagged \[cannabis-only\].*row 0"):
        validate_registry(df)


def test_registry_input_not_modified():
    df = raw_registry()
    before = df.copy(deep=True)
    validate_registry(df)
    pd.testing.assert_frame_equal(df, before)


# ---------------------------------------------------------------------------------------- county data
REGISTRY_COUNTIES = (  # cdc_wonder_county_overdose PROVENANCE.md: the 22 prosecutor-policy counties
    "24510 25025 42101 36047 36061 50007 53033 53061 41051 41017 17031 "
    "27123 27053 26161 29510 48113 48453 48029 48201 06037 06001 08031"
).split()


def _raw_rows(name: str, file: str) -> list[dict[str, str]]:
    """The bundled file read as text with the csv module: no type inference, no NA handling."""
    import csv
    import io

    raw = gzip.decompress((_loader.data_root() / name / (file + ".gz")).read_bytes()).decode("utf-8")
    return list(csv.DictReader(io.StringIO(raw)))


def test_wonder_suppressed_counts_load_as_missing_never_as_numbers():
    df = load_dataset("cdc_wonder_county_overdose")
    raw = _raw_rows("cdc_wonder_county_overdose", "wonder_county_overdose_deaths_2010_2022.csv")
    assert len(raw) == len(df) == 40901
    # PROVENANCE.md, "Columns": reported 20,287, suppressed 20,555, missing 59
    assert df["deaths_status"].value_counts().to_dict() == {"suppressed": 20555, "reported": 20287, "missing": 59}
    assert str(df["deaths"].dtype) == "Int64"
    status = np.array([r["deaths_status"] for r in raw])
    raw_deaths = np.array([r["deaths"] for r in raw])
    # the raw text is empty exactly where the status is not 'reported', and the loaded value is <NA> there
    assert np.array_equal(raw_deaths == "", status != "reported")
    assert np.array_equal(df["deaths"].isna().to_numpy(), status != "reported")
    reported = status == "reported"
    np.testing.assert_array_equal(
        df["deaths"].to_numpy(dtype=float, na_value=np.nan)[reported], raw_deaths[reported].astype(int)
    )
    # 0 is a reported value (436-708 per year), distinct from a suppressed 1-9
    zeros = df[df["deaths"] == 0]
    assert (zeros["deaths_status"] == "reported").all() and 436 * 13 <= len(zeros) <= 708 * 13
    # no reported count lies in the suppressed range 1-9
    assert not df["deaths"].between(1, 9).fillna(False).any()
    assert df["fips"].str.fullmatch(r"\d{5}").all() and df.loc[0, "fips"] == "01001"


def test_wonder_registry_counties_fully_reported():
    df = load_dataset("cdc_wonder_county_overdose")
    sub = df[df["fips"].isin(REGISTRY_COUNTIES)]
    assert sub["fips"].nunique() == 22
    assert len(sub) == 22 * 13 and (sub["deaths_status"] == "reported").all()
    assert sub["population"].notna().all() and (sub["deaths"] >= 10).all()
    balt = sub[(sub["fips"] == "24510") & (sub["year"] == 2010)].iloc[0]
    assert balt["county_name"] == "Baltimore city" and balt["state_abbr"] == "MD"
    # Connecticut 2022: deaths without a population (PROVENANCE.md, "Caveats")
    ct = df[(df["state_fips"] == "09") & (df["year"] == 2022)]
    assert len(ct) == 8 and ct["population"].isna().all()


def test_seer_population():
    df = load_dataset("seer_county_population")
    assert df["year"].min() == 1990 and df["year"].max() == 2020
    assert df["fips"].nunique() == 3155 and not df.duplicated(["fips", "year"]).any()
    assert set(df.loc[df["fips"] == "99999", "year"]) == {2005}
    sub = df[df["fips"].isin(REGISTRY_COUNTIES)]
    assert sub.groupby("fips").size().eq(31).all() and sub["fips"].nunique() == 22
    # 2020 equals WONDER's 2020 population for every county in both files except 02261 (PROVENANCE.md)
    won = load_dataset("cdc_wonder_county_overdose").query("year == 2020")
    both = won.merge(df.query("year == 2020"), on="fips", suffixes=("_w", "_s"))
    differ = both[both["population_w"].astype(float) != both["population_s"].astype(float)]
    assert differ["fips"].tolist() == ["02261"]


def test_ny_dcjs_arrests():
    df = load_dataset("ny_dcjs_county_arrests")
    counties = df.dropna(subset=["fips"])
    assert counties["fips"].nunique() == 62 and len(counties) == 62 * 50
    assert set(df.loc[df["fips"].isna(), "county"]) == {"Unknown NYC county", "Unknown-NonNYS"}
    assert (df["drug_total"] == df["drug_felony"] + df["drug_misdemeanor"]).all()
    assert (df["total"] == df["felony_total"] + df["misdemeanor_total"]).all()
    kings = counties[counties["fips"] == "36047"]
    assert set(kings["county"]) == {"Kings"} and kings["year"].tolist() == list(range(1970, 2020))
    assert set(counties.loc[counties["fips"] == "36061", "county"]) == {"New York"}


def test_base_stagg_and_df_het():
    bs = load_dataset("base_stagg")
    assert bs["id"].nunique() == 95 and bs["year"].nunique() == 10
    assert (bs["year_treated"] == 10000).groupby(bs["id"]).first().sum() == 50
    cohorts = bs.loc[bs["year_treated"] < 10000].groupby("year_treated")["id"].nunique()
    assert cohorts.index.tolist() == list(range(2, 11)) and cohorts.eq(5).all()
    het = load_dataset("df_het")
    assert het.shape == (31000, 14) and het["treat"].dtype == bool
    g = het.groupby("unit")["g"].first().value_counts().to_dict()
    assert g == {0: 357, 2010: 325, 2000: 318}  # PROVENANCE.md, "Coverage"
    assert np.isinf(het["rel_year"]).sum() == 11067 and (np.isinf(het["rel_year"]) == (het["g"] == 0)).all()
    resid = het["dep_var"] - (het["unit_fe"] + het["year_fe"] + het["te"] + het["te_dynamic"] + het["error"])
    assert np.abs(resid).max() < 1e-12
