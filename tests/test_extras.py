"""The core works without the optional extras, and an optional part without its extra names what to install.

The subprocess below hides PyMC, PyTensor, numpyro, blackjax, ArviZ and Dask (``sys.modules[name] = None``
makes both ``import name`` and ``importlib.util.find_spec(name)`` fail as if the package were absent), then
runs ``did.att_gt`` on mpdta and calls the Bayesian family and a study.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HIDDEN = ("pymc", "pytensor", "numpyro", "blackjax", "arviz", "dask", "distributed")

SCRIPT = f"""
import json, sys
for name in {HIDDEN!r}:
    sys.modules[name] = None
import decrimkit as dk
from decrimkit.datasets import load_dataset
from decrimkit.errors import MissingExtraError
from decrimkit.estimators import bayes, did

panel = dk.Panel.from_frame(load_dataset("mpdta"), unit="countyreal", time="year", outcome="lemp",
                            cohort="first.treat")
overall = did.att_gt(panel, control="never", method="dr", n_boot=99, seed=1).aggregate("simple")
out = {{"att": float(overall.estimate[0])}}
try:
    bayes.hierarchical_did
except MissingExtraError as exc:
    out["family"] = str(exc)
try:
    import decrimkit.estimators.bayes._pool  # noqa: F401
except MissingExtraError as exc:
    out["module"] = str(exc)
from decrimkit import cli
out["study_exit"] = cli.main(["study", "baltimore", "--quick", "--out", "unused"])
out["loaded"] = sorted(m for m in {HIDDEN!r} if sys.modules.get(m) is not None)
print(json.dumps(out))
"""


def test_core_runs_att_gt_without_the_extras_and_names_the_missing_one(tmp_path):
    run = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout.strip().splitlines()[-1])
    # R did 2.x, aggte(att_gt(..., est_method = "dr"), type = "simple") on mpdta (shared REFERENCES.md section 3)
    assert abs(got["att"] - (-0.0399512751551763)) <= 1e-6 * 0.0399512751551763
    assert "bayes.hierarchical_did needs the optional dependencies pymc" in got["family"]
    assert "pip install 'decrimkit[bayes]'" in got["family"]
    assert "pip install 'decrimkit[bayes]'" in got["module"]
    assert got["study_exit"] == 2
    assert "pip install 'decrimkit[studies]'" in run.stderr
    assert got["loaded"] == []
    assert not (tmp_path / "unused").exists()


def test_core_dependencies_leave_the_heavy_packages_to_extras():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = " ".join(project["dependencies"]).lower()
    for name in ("pymc", "numpyro", "blackjax", "arviz", "dask"):
        assert name not in core
    extras = project["optional-dependencies"]
    assert {"bayes", "dask", "studies"} <= set(extras)
    assert any(d.startswith("pymc") for d in extras["bayes"])
