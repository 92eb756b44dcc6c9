"""Atomic outputs: write under a temporary name, rename into place only when complete.

A killed or failed job therefore never leaves a half-written file or folder under the
final name, and a re-run starts from a clean state.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from medseg.errors import MedsegError


def _current_umask() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def _ordinary_permissions(path: Path, directory: bool) -> None:
    """Give a temporary file or folder (private, from tempfile) the permissions of a normal one."""
    path.chmod((0o777 if directory else 0o666) & ~_current_umask())


def remove_leftovers(final: Path) -> None:
    """Delete the temporary folders that a killed earlier `atomic_dir(final)` left beside `final`."""
    for kind in ("tmp", "old"):
        for leftover in final.parent.glob(f".{final.name}.{kind}-*"):
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover, ignore_errors=True)


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder beside `final`; on success it replaces `final`.

    The caller decides whether `final` may be replaced. Leftovers of a killed earlier call
    (SIGTERM skips the clean-up below) are removed first, so they never pile up.
    """
    final = Path(final).resolve()
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(final)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    _ordinary_permissions(tmp, directory=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if final.exists():
        # Move the previous result aside first: rename cannot replace a non-empty folder.
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
        os.replace(final, old / final.name)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def check_dir_target(folder: str | os.PathLike) -> None:
    """Refuse a folder that cannot be written or created: commands call it before any long work.

    A missing folder is fine when its nearest existing ancestor is a writable folder (the
    writers create the rest). Writability is probed with an unnamed temporary file, so a
    read-only mount or a pseudo file system is caught as well as permissions.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise MedsegError(f"{folder} is a file; give a folder to write into")
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise MedsegError(f"cannot create {folder}: {existing} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        where = "" if existing == folder else f" (the nearest existing folder of {folder})"
        raise MedsegError(f"cannot write in {existing}{where}: {error.strerror or error}") from None


def check_file_target(final: str | os.PathLike) -> None:
    """Refuse an output file that could not be written: a folder, or a place that cannot be written.

    Commands call it for every output before long work, so a bad path costs seconds, not hours.
    """
    if Path(final).is_dir():
        raise MedsegError(f"{final} is a folder; give the path of the file to write")
    check_dir_target(Path(final).parent)


@contextlib.contextmanager
def atomic_file(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `final`; on success it is renamed to `final`."""
    final = Path(final)
    check_file_target(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.tmp-", dir=final.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        # After the write: a writer may replace the temporary file with one of its own.
        _ordinary_permissions(tmp, directory=False)
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
