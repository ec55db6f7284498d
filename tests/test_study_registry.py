"""The study registry (decrimkit.studies.registry): every registered study has its package and run(), its
docs page, its CLI entry (`decrimkit study NAME` and `python -m`), its Makefile targets, and what it
offers the pooling and the paper is well-formed. Adding a study is one record; these tests fail when a
piece is missing."""

from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.util
import inspect
import io
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from decrimkit import cli
from decrimkit.options import POLICY_MODELS
from decrimkit.studies import STUDIES
from decrimkit.studies.registry import make_rules, paper_studies, pooled_studies

ROOT = Path(__file__).resolve().parents[1]
NAMES = list(STUDIES)


@pytest.mark.parametrize("name", NAMES)
def test_registered_study_has_its_package_run_and_options(name):
    study = STUDIES[name]
    assert study.module == f"decrimkit.studies.{study.package}" and (ROOT / "studies" / study.package).is_dir()
    params = inspect.signature(importlib.import_module(study.module).run).parameters
    assert params["out"].default == study.default_out, f"{name}: run()'s default out is not {study.default_out}"
    assert {"seed", "quick"} <= set(params)
    for opt in study.options:  # every option the CLI accepts reaches run()
        assert opt.keyword in params, f"{name}: option {opt.flag} fills {opt.keyword}=, which run() does not take"
    assert ("studies_root" in params) == study.pools
    for path in study.sources:
        assert (ROOT / path).is_file(), f"{name}: source {path} does not exist"


@pytest.mark.parametrize("name", NAMES)
def test_registered_study_has_its_docs_page(name):
    page = ROOT / STUDIES[name].docs
    assert page.is_file(), f"study {name} has no docs page {STUDIES[name].docs}"
    assert f"decrimkit study {name}" in page.read_text(encoding="utf-8")
    assert f"`studies/{STUDIES[name].package}/`" in (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", NAMES)
def test_registered_study_has_its_cli_entry_and_module_entry(name, capsys):
    study = STUDIES[name]
    extra = [a for opt in study.options for a in (opt.flag, "1" if opt.type is int else "x")]
    args = cli.build_parser().parse_args(["study", name, "--seed", "7", "--quick", *extra])
    kwargs = study.run_arguments(args)
    assert kwargs["out"] == Path(study.default_out) and kwargs["seed"] == 7 and kwargs["quick"] is True
    assert set(kwargs) == {"out", "seed", "quick"} | {opt.keyword for opt in study.options}
    # python -m decrimkit.studies.<package> parses the same options (its __main__ goes through the CLI)
    saved = sys.argv
    sys.argv = [f"{study.module}.__main__", "--help"]
    try:
        with pytest.raises(SystemExit) as exc:
            runpy.run_module(f"{study.module}.__main__", run_name="__main__")
    finally:
        sys.argv = saved
    usage = capsys.readouterr().out
    assert exc.value.code == 0 and usage.startswith(f"usage: decrimkit study {name}")
    for flag in ["--out", "--seed", "--quick", *(opt.flag for opt in study.options)]:
        assert flag in usage


def test_policy_models_takes_scheduler_and_workers_from_the_cli():
    args = cli.build_parser().parse_args(
        ["study", "policy-models", "--scheduler", "tcp://host:8786", "--workers", "2", "--out", "o"]
    )
    kwargs = STUDIES["policy-models"].run_arguments(args)
    assert kwargs == {"out": Path("o"), "seed": 0, "quick": False, "scheduler": "tcp://host:8786", "n_workers": 2}


def _make_dry_run(*targets: str) -> str:
    proc = subprocess.run(
        ["make", "-n", "-B", *targets, "SEED=4"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    return proc.stdout


def test_every_registered_study_is_reachable_from_make():
    text = _make_dry_run(*(f"study-{n}" for n in NAMES), *(f"report-{n}" for n in NAMES))
    for name in NAMES:
        assert f"decrimkit study {name} --out outputs/{name} --seed 4" in text, f"make study-{name} does not run it"
        assert f"paper/build.py --format report --study {name} --seed 4" in text
    studies = _make_dry_run("studies")
    ran = [line.split()[2] for line in studies.splitlines() if " study " in line and "--out outputs/" in line]
    assert sorted(ran) == sorted(NAMES)
    # a study that pools runs after the studies it pools
    for name, study in STUDIES.items():
        if study.pools:
            assert all(ran.index(other) < ran.index(name) for other in pooled_studies())


def test_make_rules_come_from_the_registry():
    rules = make_rules()
    assert rules[0] == f"STUDY_NAMES := {' '.join(NAMES)}" and rules[1] == f"PAPER_STUDIES := {' '.join(paper_studies())}"
    assert "study-baltimore:" not in (ROOT / "Makefile").read_text(encoding="utf-8")  # no hand-written study target


def test_pooling_records_are_well_formed():
    offers = pooled_studies()
    assert offers and any(s.pools for s in STUDIES.values())
    for name, offer in offers.items():
        assert offer.policy_model in POLICY_MODELS, f"{name}: unknown policy model {offer.policy_model!r}"
        assert offer.simulated or (offer.results and offer.site and offer.outcome)
        assert offer.scale in ("rate_ratio", "excess_rate")
        if offer.scale == "excess_rate" and not offer.simulated:
            assert len(offer.state) == 2 and offer.years


def test_paper_reads_its_studies_from_the_registry():
    spec = importlib.util.spec_from_file_location("paper_build_for_registry_test", ROOT / "paper" / "build.py")
    build = importlib.util.module_from_spec(spec)
    with contextlib.redirect_stdout(io.StringIO()):
        spec.loader.exec_module(build)
    assert build.STUDIES == paper_studies()
    for study, table in build.PAPER_TABLES:
        assert study in build.STUDIES and dict(STUDIES[study].paper_tables)[table]


def test_study_packages_import_other_studies_only_through_listed_sources():
    """make reruns a study when a file it imports changes: files of other study packages must be in `sources`
    (the modules the studies share, studies/*.py, are prerequisites of every study)."""
    packages = {s.package for s in STUDIES.values()}
    for name, study in STUDIES.items():
        own = ROOT / "studies" / study.package
        used = set()
        for path in own.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    parts = node.module.split(".")
                    if parts[:2] == ["decrimkit", "studies"] and len(parts) > 2 and parts[2] != study.package:
                        if parts[2] in packages:
                            if len(parts) > 3:  # from decrimkit.studies.<package>.<module> import name
                                used.add("studies/" + "/".join(parts[2:]) + ".py")
                            else:  # from decrimkit.studies.<package> import <module>
                                used |= {f"studies/{parts[2]}/{alias.name}.py" for alias in node.names}
        assert used <= set(study.sources), f"{name} imports {sorted(used - set(study.sources))}, not in its sources"
