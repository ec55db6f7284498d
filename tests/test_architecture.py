"""The package's import graph has no cycles and results never import estimators (tools/check_imports.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _checker():
    spec = importlib.util.spec_from_file_location("check_imports", ROOT / "tools" / "check_imports.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_tree_has_no_import_cycle():
    n_modules, found = _checker().problems()
    assert n_modules > 100  # the three source folders were read
    assert found == []


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_checker_finds_a_deferred_cycle_and_a_layer_violation(tmp_path):
    _write(tmp_path, {
        "src/decrimkit/__init__.py": "",
        "src/decrimkit/a.py": "from decrimkit import b\n",
        "src/decrimkit/b.py": "def f():\n    from .a import g  # deferred: still a cycle\n",
        "src/decrimkit/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from decrimkit.a import x\n",
        "src/decrimkit/registry.py": "ESTIMATORS = (Entry(\"fam.est\", \"an estimator\"),)\n",
        "estimators/__init__.py": "",
        "estimators/fam/__init__.py": "",
        "estimators/fam/_est.py": "from .results import R\n",
        "estimators/fam/_kernel.py": "K = 1\n",
        "estimators/fam/results.py": "from ._kernel import K\ndef m():\n    from decrimkit.estimators.fam._est import est\n",
        "studies/__init__.py": "",
    })
    n_modules, found = _checker().problems(tmp_path)
    assert n_modules == 11
    assert "decrimkit.a <-> decrimkit.b" in found
    assert "decrimkit.estimators.fam._est <-> decrimkit.estimators.fam.results" in found
    assert "decrimkit.estimators.fam.results imports the estimator module decrimkit.estimators.fam._est" in found
    assert not any("decrimkit.c" in line for line in found)  # TYPE_CHECKING imports never run
    assert len(found) == 3


def test_the_checker_finds_private_backend_names_outside_the_adapter(tmp_path):
    _write(tmp_path, {
        "src/decrimkit/__init__.py": "",
        "src/decrimkit/ok.py": "import pymc as pm\nfrom pymc.sampling.jax import get_jaxified_graph\npm.sample\n",
        "src/decrimkit/bad.py": (
            "from pymc.sampling.jax import _postprocess_samples\n"
            "import pytensor.tensor as pt\n"
            "def f():\n    import blackjax._private\n    return pt._shared\n"
        ),
        "estimators/__init__.py": "",
        "estimators/bayes/__init__.py": "",
        "estimators/bayes/_engine.py": "from pymc.sampling.jax import _get_log_likelihood\n",  # the adapter may
        "studies/__init__.py": "",
    })
    _, found = _checker().problems(tmp_path)
    assert sorted(found) == sorted(
        f"decrimkit.bad uses the private backend name {name} (only decrimkit.estimators.bayes._engine may)"
        for name in ("pymc.sampling.jax._postprocess_samples", "blackjax._private", "pt._shared")
    )
