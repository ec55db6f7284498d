"""The wheel: build it, install it into a scratch environment, import the three packages from there.

The scratch environment sees the project's dependencies (a ``.pth`` file lists this interpreter's
site-packages) but not the editable install: ``.pth`` files inside that folder are not processed,
and the wheel is installed first on the path, so every import must come from the wheel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECK = r"""
import json, pathlib
import decrimkit, decrimkit.estimators, decrimkit.studies
from decrimkit.datasets import load_dataset, dataset_info, list_datasets
from decrimkit.datasets._loader import data_root
missing = [f"{n}/{f['bundled']}" for n in list_datasets() for f in dataset_info(n)["files"]
           if not (data_root() / n / f["bundled"]).is_file()]
print(json.dumps({
    "decrimkit": decrimkit.__file__, "estimators": decrimkit.estimators.__file__,
    "studies": decrimkit.studies.__file__, "mpdta_rows": len(load_dataset("mpdta")),
    "n_datasets": len(list_datasets()), "missing": missing,
}))
"""


@pytest.mark.slow
def test_wheel_installs_and_imports(tmp_path):
    src = tmp_path / "src_copy"  # build from a copy, so no build/ or egg-info lands in the checkout
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for folder in ("src", "estimators", "studies"):
        shutil.copytree(ROOT / folder, src / folder, ignore=ignore)
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(wheels), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = wheels.glob("decrimkit-*.whl")

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site = Path(
        subprocess.run(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    deps = sysconfig.get_paths()["purelib"]
    (site / "project_dependencies.pth").write_text(deps + "\n")
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "--quiet",
            "--target",
            str(site),
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stdout + install.stderr

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    run = subprocess.run([str(py), "-c", CHECK], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout.strip().splitlines()[-1])
    for key in ("decrimkit", "estimators", "studies"):
        assert Path(got[key]).resolve().is_relative_to(site.resolve()), (key, got[key])
    assert got["mpdta_rows"] == 2500 and got["n_datasets"] >= 15
    assert got["missing"] == []
