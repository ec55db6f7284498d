"""Analysis plans: schema validation, path rules, allowlisted estimators, and a run."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from decrimkit import plan as plan_mod
from decrimkit.errors import PlanError
from decrimkit.plan import load_plan

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "plan_mpdta.toml"

BASE = """
[data]
dataset = "mpdta"

[design]
unit = "countyreal"
time = "year"
outcome = "lemp"
cohort = "first.treat"

[[estimators]]
name = "did.twfe"
"""


def write(tmp_path: Path, text: str, name: str = "plan.toml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


@pytest.fixture
def here(tmp_path, monkeypatch):
    """Run in an empty project folder with data/ and outputs/."""
    (tmp_path / "data").mkdir()
    (tmp_path / "outputs").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_example_plan_validates(here):
    plan = load_plan(EXAMPLE)
    assert plan.name == "plan_mpdta" and [c.name for c in plan.estimators] == ["did.twfe"]
    assert plan.out == (here / "outputs" / "plan_mpdta").resolve()


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ("surprise = 1\n", r"unknown top-level key\(s\) \['surprise'\]"),
        ("[outputs]\nformat = 'pdf'\n", r"unknown key outputs.format"),
        ("[outputs]\nseed = 'zero'\n", r"plan key outputs.seed must be int, got str"),
        ("[outputs]\nseed = true\n", r"plan key outputs.seed must be int, got bool"),
        ("[[robustness]]\nname = 'did.magic'\n", r"robustness\[0\].name = 'did.magic' is not an allowed estimator"),
        ("[[robustness]]\nname = 'did.twfe'\nlabel = 'x'\nfn = 'os.system'\n", r"unknown key robustness\[0\].fn"),
        (
            "[[robustness]]\nname = 'did.twfe'\nlabel = 'x'\noptions = { cluster = { a = 1 } }\n",
            r"robustness\[0\].options.cluster must be a string, number, boolean or list",
        ),
        ("[[robustness]]\nname = 'did.twfe'\n", r"estimator labels \['did.twfe'\] repeat"),
        ("[outputs]\nout = '../elsewhere'\n", r"outside the project's outputs/ folder"),
        ("[outputs]\nout = 'outputs/../../x'\n", r"outside the project's outputs/ folder"),
        ("allow_outside_paths = 'yes'\n", r"allow_outside_paths must be true or false"),
    ],
)
def test_schema_errors_name_the_key(here, extra, match):
    text = BASE + extra if not extra.startswith(("surprise", "allow")) else extra + BASE
    with pytest.raises(PlanError, match=match):
        load_plan(write(here, text))


@pytest.mark.parametrize(
    ("old", "new", "match"),
    [
        ('dataset = "mpdta"', 'dataset = "mpdta"\npath = "data/x.csv"', "exactly one of dataset"),
        ('dataset = "mpdta"', 'dataset = "nope"', r"data.dataset: no bundled dataset named 'nope'"),
        ('dataset = "mpdta"', 'dataset = "mpdta"\nfile = "other.csv"', "not a file of dataset 'mpdta'"),
        ('unit = "countyreal"\n', "", r"\[design\] needs unit"),
        ('cohort = "first.treat"', 'cohort = "first.treat"\ntreated = "treat"', "cohort or treated, not both"),
        ('cohort = "first.treat"', 'covariates = "lpop"', r"design.covariates must be list\[str\]"),
        ('[[estimators]]\nname = "did.twfe"\n', "", r"no \[\[estimators\]\] entry"),
    ],
)
def test_section_errors(here, old, new, match):
    assert old in BASE
    with pytest.raises(PlanError, match=match):
        load_plan(write(here, BASE.replace(old, new)))


def test_invalid_toml_and_missing_file(here):
    with pytest.raises(PlanError, match="is not valid TOML"):
        load_plan(write(here, "[data\ndataset = 1"))
    with pytest.raises(PlanError, match="cannot read plan file"):
        load_plan(here / "absent.toml")


def test_data_paths_must_stay_in_data(here, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere") / "panel.csv"
    outside.write_text("a,b\n1,2\n")
    text = BASE.replace('dataset = "mpdta"', f'path = "{outside.as_posix()}"')
    with pytest.raises(PlanError, match=r"outside the project's data/ folder.*allow_outside_paths = true"):
        load_plan(write(here, text))
    plan = load_plan(write(here, "allow_outside_paths = true\n" + text))
    assert plan.data["path"] == str(outside.resolve())
    (here / "data" / "panel.csv").write_text("a,b\n1,2\n")
    ok = load_plan(write(here, BASE.replace('dataset = "mpdta"', 'path = "data/panel.csv"')))
    assert ok.data["path"] == str((here / "data" / "panel.csv").resolve())
    with pytest.raises(PlanError, match="no such file"):
        load_plan(write(here, BASE.replace('dataset = "mpdta"', 'path = "data/absent.csv"')))


def test_estimator_not_built_yet(here, monkeypatch):
    monkeypatch.setitem(plan_mod.ALLOWLIST, "did.future", ("decrimkit.estimators.did._not_built_module", "future"))
    plan = load_plan(write(here, BASE.replace('name = "did.twfe"', 'name = "did.future"')))
    with pytest.raises(PlanError, match=r"estimator 'did.future' is not built yet"):
        plan.run()
    assert not (here / "outputs" / "plan").exists()  # nothing written before the check


def test_options_are_data_never_code(here, monkeypatch, tmp_path_factory):
    # a recording stand-in estimator, allowlisted for this test only: options arrive as plain strings
    mod_dir = tmp_path_factory.mktemp("mods")
    (mod_dir / "recording_estimator.py").write_text(
        textwrap.dedent("""
        seen = []
        def record(panel, **kw):
            seen.append(kw)
            raise ValueError("stop")
    """)
    )
    monkeypatch.syspath_prepend(str(mod_dir))
    monkeypatch.setitem(plan_mod.ALLOWLIST, "test.record", ("recording_estimator", "record"))
    code = "__import__('pathlib').Path('pwned').touch()"
    text = BASE.replace('name = "did.twfe"', f'name = "test.record"\noptions = {{ cluster = "{code}", n = 3 }}')
    with pytest.raises(ValueError, match="stop"):
        load_plan(write(here, text)).run()
    import recording_estimator

    assert recording_estimator.seen == [{"cluster": code, "n": 3}]
    assert not (here / "pwned").exists()


def test_example_plan_runs_and_matches_the_estimator(here):
    from decrimkit.estimators import did

    out = load_plan(EXAMPLE).run(out="outputs/example", seed=3)
    res = json.loads((out / "results.json").read_text())
    direct = did.twfe(load_plan(EXAMPLE).panel()).tidy()
    row = res["results"][0]
    assert row["method"] == "did.twfe" and res["seed"] == 3
    # the same computation through the plan: only the 12-significant-digit rounding of results.json differs
    assert row["estimate"] == pytest.approx(float(direct["estimate"].iloc[0]), rel=1e-11)
    assert row["se"] == pytest.approx(float(direct["se"].iloc[0]), rel=1e-11)
    assert (out / "tables" / "twfe.csv").exists() and (out / "report.html").exists()
