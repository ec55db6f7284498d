"""Where a plan may read and write: ``data/`` and ``outputs/`` folders, unless it says ``allow_outside_paths``.

Relative paths are resolved against the current directory; ``..`` and symbolic links are resolved
before the check. The path must lie under ``<base>/data`` (or ``<base>/outputs``) for a base that is the
current directory or the plan's own folder, and that folder must not itself be a symbolic link.
"""

from __future__ import annotations

from pathlib import Path

from decrimkit.errors import PlanError

__all__ = ["check_path", "bases"]


def bases(source: Path | None) -> list[Path]:
    """The folders whose ``data/`` and ``outputs/`` a plan may use: the current one and the plan's own."""
    return [Path.cwd()] + ([source.parent] if source is not None else [])


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def check_path(path: Path, folder: str, bases: list[Path], allow_outside: bool) -> Path:
    """``path`` resolved; :class:`PlanError` when it lies outside every ``<base>/<folder>``."""
    resolved = path.expanduser().resolve()
    if allow_outside:
        return resolved
    # the folder itself is not resolved: a data/ or outputs/ that is a symbolic link to elsewhere is
    # not a way out (the resolved path must lie under the real <base>/<folder>)
    roots = [b.resolve() / folder for b in bases]
    if not any(_inside(resolved, r) and not r.is_symlink() for r in roots):
        where = " or ".join(str(r) for r in dict.fromkeys(roots))
        raise PlanError(
            f"path {str(path)!r} resolves to {str(resolved)!r}, outside the project's {folder}/ folder ({where}; "
            f"symbolic links are followed before the check, and a {folder}/ that is itself a link does not count); "
            f"move it there, or set allow_outside_paths = true at the top of the plan if you trust it."
        )
    return resolved
