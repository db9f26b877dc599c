"""Atomic file writes: write to a temporary name in the same folder, then rename into place.

A crash or Ctrl-C while writing leaves either the old file or none, never half a file.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from core.errors import InputError


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
    tmp_path = _fresh(target, f".tmp{suffix}")
    try:
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
    tmp = _fresh(target, ".tmp", directory=True)
    try:
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
