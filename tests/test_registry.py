"""decrimkit.registry is the one list of estimators: families, plans and docs are made from it.

A newly registered estimator without a module, a docs page, a family name or a plan entry fails here.
"""

from __future__ import annotations

import importlib
import inspect
import types
from pathlib import Path

import pytest

from decrimkit import plan, registry
from decrimkit.estimators import bayes, did, iv, synth

ROOT = Path(__file__).resolve().parents[1]
FAMILY = {"did": did, "synth": synth, "iv": iv, "bayes": bayes}
ENTRIES = registry.ESTIMATORS


@pytest.mark.parametrize("e", ENTRIES, ids=lambda e: e.name)
def test_registered_estimator_has_module_function_docs_and_family_name(e):
    module = importlib.import_module(e.module)
    fn = getattr(module, e.function)
    assert callable(fn) and fn.__module__ == e.module
    assert getattr(FAMILY[e.family], e.function) is fn  # the family exports the registered name
    assert e.function in FAMILY[e.family].__all__
    page = ROOT / registry.docs_page(e)
    assert page.is_file(), f"{e.name}: write its docs page {registry.docs_page(e)}"
    assert f"{e.family}.{e.function}" in page.read_text(encoding="utf-8")  # the page names the estimator


@pytest.mark.parametrize("e", ENTRIES, ids=lambda e: e.name)
def test_plan_allowlist_follows_the_registry(e):
    if e.plan:
        assert plan.ALLOWLIST[e.name] == (e.module, e.function)
    else:
        assert e.name not in plan.ALLOWLIST


def test_plan_allowlist_holds_nothing_unregistered():
    for name in plan.ALLOWLIST:
        assert registry.entry(name).plan  # aliases resolve to registered plan estimators
    assert plan.ALLOWLIST["synth.augsynth"] == plan.ALLOWLIST["synth.augmented"]


def test_every_estimator_module_is_registered():
    """A module ``_<name>.py`` holding a public function ``<name>`` is an estimator: it must be registered."""
    registered = {e.module for e in ENTRIES}
    helpers = {"decrimkit.estimators.did._first_stage", "decrimkit.estimators.synth._conformal"}
    found = set()
    for family in registry.FAMILIES:
        for path in sorted((ROOT / "estimators" / family).glob("_*.py")):
            name = path.stem
            if name == "__init__":
                continue
            module = importlib.import_module(f"decrimkit.estimators.{family}.{name}")
            if inspect.isfunction(getattr(module, name[1:], None)) and module.__name__ not in helpers:
                assert module.__name__ in registered, f"register {family}.{name[1:]} in decrimkit/registry.py"
                found.add(module.__name__)
    assert found == registered  # and every registered module was found by its file name


def test_no_module_shares_a_public_name_of_its_family():
    """Importing a submodule binds it on its package; a module named like a public name would shadow it."""
    for family, package in FAMILY.items():
        modules = {p.stem for p in (ROOT / "estimators" / family).glob("*.py")}
        assert not modules & set(package.__all__), f"{family}: rename the module(s) {modules & set(package.__all__)}"
        for name in package.__all__:
            assert not isinstance(getattr(package, name), types.ModuleType)


def test_docs_index_is_generated_from_the_registry():
    committed = (ROOT / "docs" / "estimators" / "README.md").read_text(encoding="utf-8")
    assert committed == registry.docs_index(), "regenerate: python -m decrimkit.registry > docs/estimators/README.md"


def test_cli_docs_list_the_plan_allowlist():
    import re

    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    block = text[text.index("Allowed estimators"):]
    block = block[: block.index("They are imported")]
    assert set(re.findall(r"`([a-z]+\.[a-z_]+)`", block)) == set(plan.ALLOWLIST), "update the list in docs/cli.md"
