"""What a run records about itself: data hashes, package versions, git commit, seed, command, clock."""

from __future__ import annotations

import datetime as _dt
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["PACKAGES", "package_versions", "git_commit", "environment"]

PACKAGES: tuple[str, ...] = (
    "decrimkit",
    "numpy",
    "pandas",
    "scipy",
    "jax",
    "jaxlib",
    "pymc",
    "blackjax",
    "statsmodels",
    "linearmodels",
    "matplotlib",
    "arviz",
)


def package_versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Installed version of each package (None when it is not installed)."""
    out: dict[str, str | None] = {}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_commit(where: str | Path | None = None) -> dict[str, Any] | None:
    """``{"commit": sha, "dirty": bool}`` of the git checkout containing ``where`` (default: the
    current directory), or None when git or a checkout is not available. Never raises."""
    cwd = str(where) if where is not None else None
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": sha, "dirty": bool(status.strip())} if sha else None


def environment() -> dict[str, Any]:
    """Python, platform, package versions, git state and the UTC time now."""
    return {
        "utc_time": _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "git": git_commit(),
    }
