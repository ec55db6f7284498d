"""Safe output folders: decrimkit writes only its own files, atomically, one writer at a time.

The contract (``docs/reporting.md``, "The output folder"):

- **Ownership.** A folder decrimkit writes holds a manifest, ``.decrimkit-output.json``, listing
  every file decrimkit wrote there with its sha256. A later run replaces or removes only files in
  that manifest whose content is unchanged. It refuses (:class:`~decrimkit.errors.OutputFolderError`)
  a non-empty folder without a manifest, a file it would write that it did not write before, and a
  file of its own that was edited since; files it does not own are never read, moved or deleted.
- **No symlinks.** The output folder is resolved once; inside it, a file or folder decrimkit would
  write through (``tables/``, ``figures/``, ``report.md``, ...) must not be a symbolic link.
- **Atomic.** All files are first written (and fsynced) to a staging folder inside the output
  folder, ``.decrimkit-staging-<pid>-<token>``. The commit renames the staging folder to
  ``.decrimkit-commit`` and then moves each file into place with :func:`os.replace`, removes the
  previous run's files that this run does not produce and replaces the manifest last. SIGINT and
  SIGTERM arriving during the commit (milliseconds) are held until it ends; arriving while staging
  they discard the staging folder and leave the previous outputs untouched; then SIGINT raises
  ``KeyboardInterrupt`` and SIGTERM ``SystemExit(143)`` (or the handler installed before, if any),
  so that locks are released on the way out. A commit cut short by
  SIGKILL or a power cut is finished by the next write (the manifest of the new run is in
  ``.decrimkit-commit``).
- **One writer.** ``.decrimkit-lock`` holds an advisory lock (``fcntl.flock``) and the writer's pid,
  host and start time. A second writer gets :class:`~decrimkit.errors.OutputLockedError`. The lock is
  released by the kernel when a process dies, so a lock file left by a killed run is stale and is
  taken over.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import stat
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from decrimkit.errors import OutputFolderError, OutputLockedError

try:  # POSIX; elsewhere the lock falls back to exclusive creation of the lock file
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["MANIFEST", "LOCK", "write_outputs", "output_lock", "owned_files", "check_output_folder"]

MANIFEST = ".decrimkit-output.json"
LOCK = ".decrimkit-lock"
COMMIT = ".decrimkit-commit"
STAGING_PREFIX = ".decrimkit-staging-"
_FORMAT = 1
_HANDLED = tuple(s for s in (getattr(signal, "SIGINT", None), getattr(signal, "SIGTERM", None)) if s is not None)

# locks this process holds: resolved folder -> [thread id, depth] (a thread may nest; others may not)
_HELD: dict[Path, list[int]] = {}
_HELD_GUARD = threading.Lock()


# ---------------------------------------------------------------------------------------------- paths
def _rel_ok(rel: str) -> bool:
    p = PurePosixPath(rel)
    return (
        bool(rel) and not p.is_absolute() and all(part not in ("", ".", "..") for part in p.parts) and "\\" not in rel
    )


def _no_symlink_on_the_way(root: Path, rel: str) -> None:
    """Refuse when any component of ``root/rel`` below ``root`` is a symbolic link."""
    cur = root
    for part in PurePosixPath(rel).parts:
        cur = cur / part
        if cur.is_symlink():
            raise OutputFolderError(
                f"{cur} is a symbolic link; decrimkit never writes through links in an output folder "
                f"(it could reach files outside {root}). Replace the link with a real folder or choose "
                f"another output folder."
            )


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _read_manifest(path: Path, root: Path) -> dict[str, str]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        files = doc["files"]
        ok = doc.get("format") == _FORMAT and isinstance(files, dict)
        ok = ok and all(isinstance(k, str) and _rel_ok(k) and isinstance(v, str) for k, v in files.items())
    except (OSError, ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        raise OutputFolderError(
            f"the manifest {path} is damaged or was not written by decrimkit, so decrimkit cannot tell its own "
            f"files from yours in {root}. Move the files you want to keep elsewhere and delete the folder, or "
            f"choose another output folder."
        )
    return dict(files)


def owned_files(out: str | Path) -> dict[str, str]:
    """The files decrimkit wrote in ``out`` (relative path -> sha256), from its manifest ({} if none)."""
    root = Path(out).expanduser().resolve()
    return _read_manifest(root / MANIFEST, root) if (root / MANIFEST).is_file() else {}


def _entries(root: Path) -> list[str]:
    """Top-level entries of ``root`` that are not decrimkit's bookkeeping."""
    return sorted(
        e.name
        for e in root.iterdir()
        if e.name not in (MANIFEST, LOCK, COMMIT) and not e.name.startswith(STAGING_PREFIX)
    )


def _list(names: list[str], n: int = 5) -> str:
    shown = ", ".join(names[:n])
    return shown + (f" and {len(names) - n} more" if len(names) > n else "")


def _check_ownership(root: Path, new: Mapping[str, bytes]) -> dict[str, str]:
    """The previous manifest, after checking that writing ``new`` touches nothing decrimkit does not own."""
    manifest = root / MANIFEST
    if manifest.is_symlink():
        raise OutputFolderError(f"{manifest} is a symbolic link; decrimkit does not use a manifest it did not write.")
    if not manifest.exists():
        foreign = _entries(root)
        if foreign:
            raise OutputFolderError(
                f"output folder {root} is not empty and was not written by decrimkit (no {MANIFEST}); it holds "
                f"{_list(foreign)}. decrimkit never overwrites or deletes files it did not write: choose a new or "
                f"empty folder (--out DIR), or move these files away first."
            )
        old: dict[str, str] = {}
    else:
        old = _read_manifest(manifest, root)
    changed = []
    for rel, sha in sorted(old.items()):
        _no_symlink_on_the_way(root, rel)
        p = root / rel
        if not p.exists():
            continue
        if not stat.S_ISREG(p.lstat().st_mode) or _sha256(p) != sha:
            changed.append(rel)
    if changed:
        raise OutputFolderError(
            f"{_list(changed)} in {root} changed after decrimkit wrote {'it' if len(changed) == 1 else 'them'}; "
            f"decrimkit will not overwrite or delete your edits. Move {'it' if len(changed) == 1 else 'them'} "
            f"elsewhere (or delete {'it' if len(changed) == 1 else 'them'}) and run again, or choose another "
            f"output folder."
        )
    clash = []
    for rel in sorted(new):
        if not _rel_ok(rel) or rel in (MANIFEST, LOCK, COMMIT) or rel.startswith(STAGING_PREFIX):
            raise OutputFolderError(f"decrimkit cannot write an output named {rel!r} (reserved or not a plain path).")
        _no_symlink_on_the_way(root, rel)
        p = root / rel
        blocked = [
            q for q in p.relative_to(root).parents if q.parts and (root / q).exists() and not (root / q).is_dir()
        ]
        if blocked:  # a file where decrimkit needs a folder (e.g. a file named "tables")
            clash.append(blocked[-1].as_posix())
        elif (p.exists() or p.is_symlink()) and rel not in old:
            clash.append(rel)
        elif p.is_dir():
            clash.append(rel + "/")
    clash = list(dict.fromkeys(clash))
    if clash:
        raise OutputFolderError(
            f"{_list(clash)} already exist{'s' if len(clash) == 1 else ''} in {root} and decrimkit did not write "
            f"{'it' if len(clash) == 1 else 'them'}; decrimkit never overwrites files it did not write. Move "
            f"{'it' if len(clash) == 1 else 'them'} away or choose another output folder."
        )
    return old


# ---------------------------------------------------------------------------------------------- lock
def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        return f"pid {int(info['pid'])} on {info.get('host', '?')}, started {info.get('started', '?')}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not yet recorded its pid"


def _locked_error(root: Path, who: str) -> OutputLockedError:
    return OutputLockedError(
        f"another decrimkit run ({who}) is writing to {root}; wait for it to finish or choose another output "
        f"folder (--out DIR). Two runs never write one folder at the same time."
    )


def _lock_info() -> bytes:
    started = _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()
    return (json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": started}) + "\n").encode()


def _acquire(root: Path) -> int:
    path = root / LOCK
    if path.is_symlink():
        raise OutputFolderError(f"{path} is a symbolic link; remove it (decrimkit only uses a lock file it creates).")
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    for _ in range(10):
        if fcntl is None:  # pragma: no cover - Windows: exclusive creation, stale when the pid is dead
            try:
                fd = os.open(path, flags | os.O_EXCL, 0o644)
            except FileExistsError:
                with contextlib.suppress(OSError, ValueError, KeyError):
                    info = json.loads(path.read_text(encoding="utf-8"))
                    if info.get("host") == socket.gethostname() and not _pid_alive(int(info["pid"])):
                        path.unlink()
                        continue
                raise _locked_error(root, _holder(path)) from None
        else:
            fd = os.open(path, flags, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise _locked_error(root, _holder(path)) from None
                raise
            try:  # the file we locked must still be the lock file (another writer may have removed it)
                same = os.fstat(fd).st_ino == os.stat(path, follow_symlinks=False).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
        os.ftruncate(fd, 0)
        os.write(fd, _lock_info())
        os.fsync(fd)
        return fd
    raise _locked_error(root, _holder(path))  # pragma: no cover - ten lost races in a row


def _release(root: Path, fd: int) -> None:
    with contextlib.suppress(OSError):
        os.unlink(root / LOCK)  # while still holding it, so no one else's lock file is removed
    os.close(fd)


@contextlib.contextmanager
def output_lock(out: str | Path) -> Iterator[Path]:
    """Hold the write lock of output folder ``out`` (created if missing); yields the resolved folder.

    Re-entrant within one thread (a command may lock the folder for a whole run and the report
    writer lock it again); another thread or process gets :class:`OutputLockedError`.
    """
    root = Path(out).expanduser().resolve()
    with _HELD_GUARD:
        held = _HELD.get(root)
        if held is not None and held[0] != threading.get_ident():
            raise _locked_error(root, f"pid {os.getpid()}, another thread of this process")
        if held is not None:
            held[1] += 1
    if held is not None:
        try:
            yield root
        finally:
            with _HELD_GUARD:
                held[1] -= 1
        return
    if root.exists() and not root.is_dir():
        raise OutputFolderError(f"output folder {root} exists and is not a folder; choose another path.")
    created = [d for d in (root, *root.parents) if not d.exists()]  # folders this call makes, deepest first
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd = _acquire(root)
    except OSError as exc:
        raise OutputFolderError(f"cannot write to output folder {root}: {exc.strerror or exc}.") from exc
    with _HELD_GUARD:
        _HELD[root] = [threading.get_ident(), 1]
    try:
        yield root
    finally:
        with _HELD_GUARD:
            del _HELD[root]
        _release(root, fd)
        for d in created:  # a run that wrote nothing leaves no empty folder behind
            try:
                d.rmdir()
            except OSError:
                break


def check_output_folder(out: str | Path) -> Path:
    """Refuse, before any work, an output folder that a later write would refuse; returns it resolved.

    Checks what :func:`write_outputs` checks without knowing the new file names: the folder is new,
    empty, or written by decrimkit with its files unchanged and no symbolic links on the way.
    """
    root = Path(out).expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise OutputFolderError(f"output folder {root} exists and is not a folder; choose another path.")
    if root.is_dir():
        _check_ownership(root, {})
    return root


# ---------------------------------------------------------------------------------------------- signals
class _Interrupted(BaseException):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class _SignalGuard:
    """While writing: SIGINT/SIGTERM abort the staging (cleanly); during the commit they wait for its end.

    Installed only in the main thread (Python allows handlers nowhere else); elsewhere the write is
    still staged and committed, but a signal's default action applies.
    """

    def __init__(self) -> None:
        self.committing = False
        self.pending: int | None = None
        self.old: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.committing:
            self.pending = signum
        else:
            raise _Interrupted(signum)

    def __enter__(self) -> _SignalGuard:
        if threading.current_thread() is threading.main_thread():
            for s in _HANDLED:
                if signal.getsignal(s) is not signal.SIG_IGN:  # an ignored signal stays ignored
                    self.old[s] = signal.signal(s, self._handle)
        return self

    def redeliver(self, signum: int) -> None:
        """After the cleanup, act as the signal would have without the guard (handlers are restored)."""
        old = self.old.get(signum, signal.SIG_DFL)
        if callable(old):
            old(signum, None)  # Python's SIGINT handler raises KeyboardInterrupt here
            raise KeyboardInterrupt  # a handler that returned: the write was still abandoned
        if signum == getattr(signal, "SIGINT", None):
            raise KeyboardInterrupt
        raise SystemExit(128 + signum)  # SIGTERM's default: end the process (status 143), finally blocks run

    def __exit__(self, *exc: Any) -> None:
        for s, h in self.old.items():
            signal.signal(s, h)

    @contextlib.contextmanager
    def commit(self) -> Iterator[None]:
        self.committing = True
        try:
            yield
        finally:
            self.committing = False
        if self.pending is not None:
            raise _Interrupted(self.pending)


# ---------------------------------------------------------------------------------------------- commit
def _apply_commit(root: Path) -> None:
    """Move the files of ``root/.decrimkit-commit`` into place; idempotent, so a cut commit can be finished."""
    commit = root / COMMIT
    new = _read_manifest(commit / MANIFEST, root)
    old = _read_manifest(root / MANIFEST, root) if (root / MANIFEST).is_file() else {}
    for rel in sorted(new):
        src = commit / rel
        if src.is_file():
            _no_symlink_on_the_way(root, rel)
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, root / rel)
    emptied = set()
    for rel in sorted(set(old) - set(new)):
        p = root / rel
        _no_symlink_on_the_way(root, rel)
        if p.exists() and stat.S_ISREG(p.lstat().st_mode) and _sha256(p) == old[rel]:
            p.unlink()
            emptied.add(p.parent)
    for d in sorted(emptied, key=lambda q: len(q.parts), reverse=True):
        while d != root and d.is_dir() and not any(d.iterdir()):
            d.rmdir()
            d = d.parent
    os.replace(commit / MANIFEST, root / MANIFEST)
    _fsync_dir(root)
    shutil.rmtree(commit)


def _write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "xb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def write_outputs(out: str | Path, files: Mapping[str, bytes]) -> Path:
    """Write ``files`` (relative POSIX path -> bytes) into output folder ``out``; return the resolved folder.

    After it returns, the folder holds exactly these files plus files decrimkit does not own; the
    previous run's files that are not in ``files`` are removed. Interrupted, it leaves the previous
    outputs complete. See the module docstring for the rules.

    Raises
    ------
    OutputFolderError
        The folder holds files decrimkit did not write where it would write, is foreign and not
        empty, or has a symbolic link on the way to an output.
    OutputLockedError
        Another run is writing the same folder.
    """
    target = Path(out).expanduser().resolve()
    try:
        with output_lock(target) as root, _SignalGuard() as guard:
            staging = root / f"{STAGING_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
            try:
                if (root / COMMIT).exists():  # a commit cut short (SIGKILL, power cut): finish it first
                    _apply_commit(root)
                for stale in root.glob(STAGING_PREFIX + "*"):  # left by a killed run; we hold the lock
                    if stale.is_dir() and not stale.is_symlink():
                        shutil.rmtree(stale)
                _check_ownership(root, files)
                staging.mkdir()
                for rel, data in files.items():
                    _write_file(staging / rel, bytes(data))
                _write_file(staging / MANIFEST, _manifest(files))
                _fsync_dir(root)
                with guard.commit():
                    os.replace(staging, root / COMMIT)
                    _apply_commit(root)
            finally:
                if staging.is_dir():
                    shutil.rmtree(staging, ignore_errors=True)
    except OSError as exc:  # permissions, a full disk: the folder cannot take the outputs
        raise OutputFolderError(f"cannot write the outputs to {target}: {exc}.") from exc
    except _Interrupted as exc:  # staging discarded (or the commit finished); handlers are restored
        guard.redeliver(exc.signum)
        raise  # pragma: no cover - redeliver always raises
    return target


def _manifest(files: Mapping[str, bytes]) -> bytes:
    doc = {
        "format": _FORMAT,
        "written_by": "decrimkit",
        "note": "Files decrimkit wrote in this folder, with their sha256. decrimkit replaces or removes only "
        "these, and only while unchanged. Delete this file only together with the files it lists.",
        "files": {rel: hashlib.sha256(bytes(data)).hexdigest() for rel, data in sorted(files.items())},
    }
    return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()
