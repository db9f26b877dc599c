"""Atomic file writes: write to a temporary name in the same folder, then rename into place.

A crash or Ctrl-C while writing leaves either the old file or none, never half a file. A write
that fails for want of room (full disk, quota, file-size limit, read-only file system) becomes one
`InputError` naming the file, and the temporary file goes: nothing half-written is left in place.
Temporary names are ``.<stem>.<12 hex>.tmp<suffix>``; `remove_stale` deletes those a killed
process left behind.
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from core.errors import InputError

#: errno values meaning there is no room to write: full disk, quota, file-size limit, read-only disk.
NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})
_STALE = re.compile(r"^\..+\.[0-9a-f]{12}\.tmp(\..*)?$")


def unwritable(path: str | os.PathLike, reason: str) -> InputError:
    """The one-line error of a write that did not complete."""
    return InputError(path, f"could not be written ({reason}); nothing was left in its place — "
                            f"free space on its disk (or choose another place) and run again")


@contextlib.contextmanager
def reporting_write_errors(path: str | os.PathLike) -> Iterator[None]:
    """Turn an ``OSError`` for want of room while writing ``path`` into `unwritable`'s one line."""
    try:
        yield
    except OSError as exc:
        if exc.errno in NO_ROOM:
            raise unwritable(path, exc.strerror or str(exc)) from None
        raise


def remove_stale(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files and folders (``.<stem>.<hex>.tmp…``) that writes killed midway
    left directly in ``folder``; returns what was removed. Call only where no other process is
    writing (e.g. under the run folder's lock)."""
    removed = []
    root = Path(folder)
    for p in sorted(root.iterdir()) if root.is_dir() else []:
        if _STALE.match(p.name):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def _fresh(target: Path, suffix: str, directory: bool = False) -> Path:
    """Create a new, uniquely named file (or folder) beside ``target`` with the mode a plain
    ``open``/``mkdir`` gives under the current umask.

    The kernel applies the umask itself (``mkstemp``/``mkdtemp`` would make private 0600/0700
    entries, and reading the umask means setting it, which races with other threads writing).
    """
    stem = target.stem.split(".")[0] if not directory else target.name
    for _ in range(100):
        candidate = target.parent / f".{stem}.{secrets.token_hex(6)}{suffix}"
        try:
            if directory:
                os.mkdir(candidate, 0o777)
            else:
                os.close(os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return candidate
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {target}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it to ``path``.

    ``suffix`` defaults to the target's full suffix (e.g. ``.nii.gz``) so libraries that pick a
    format from the extension (SimpleITK, PIL) write the right one.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if suffix is None:
        suffix = "".join(target.suffixes)
    with reporting_write_errors(target):
        tmp_path = _fresh(target, f".tmp{suffix}")
    try:
        with reporting_write_errors(target):
            yield tmp_path
            if tmp_path.is_dir():
                raise IsADirectoryError(tmp_path)
            os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Atomically write ``data`` to ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Atomically write UTF-8 ``text`` to ``path``."""
    write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temporary folder beside ``path``; on success it replaces ``path`` as a whole.

    For outputs made of several files (image stacks, DICOM series, registration results): a
    reader sees the old folder or the complete new one, never a half-written mix.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() and not target.is_dir():
        raise InputError(target, "exists and is not a folder")
    with reporting_write_errors(target):
        tmp = _fresh(target, ".tmp", directory=True)
    try:
        with reporting_write_errors(target):
            yield tmp
        old = None
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
            os.replace(target, old / "previous")
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
