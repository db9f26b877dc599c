"""One run at a time per run folder: ``OUT/run.lock``.

Two trainings writing the same ``--out`` would interleave ``log.csv`` and rotate away each other's
checkpoints, so rank 0 holds an exclusive ``flock`` on ``OUT/run.lock`` for the whole run and
writes its host, pid and start time into it. The kernel drops the lock when the process dies, so a
lock file left by a killed run is recognised as stale on the same host and taken over (saying
so). A lock file written on another host cannot be checked from here (file locks do not always
cross network file systems): it is refused with what to do once that run is over.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Iterator

from core.errors import InputError
from core.training import distributed
from core.training.distributed import Context

LOCK_FILE = "run.lock"


def _holder(fd: int) -> dict:
    """What the lock file says about the run that wrote it ({} when empty or unreadable)."""
    os.lseek(fd, 0, os.SEEK_SET)
    try:
        return json.loads(os.read(fd, 4096).decode("utf-8") or "{}")
    except (ValueError, UnicodeDecodeError):
        return {}


def _describe(holder: dict) -> str:
    return f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}, since {holder.get('started', '?')}"


def acquire(folder: Path) -> tuple[int, str | None]:
    """Lock ``folder`` for this process: the open lock file and a note when a stale lock was taken
    over; `InputError` when another run holds it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise InputError(folder, f"is in use by another run ({_describe(holder)}): wait for it to end or "
                                     f"stop it, or choose another --out") from None
        if os.path.exists(path) and os.stat(path).st_ino == os.fstat(fd).st_ino:
            break
        os.close(fd)                  # the holder removed the file between our open and our lock
    holder, host = _holder(fd), socket.gethostname()
    if holder and holder.get("host") != host:
        os.close(fd)
        raise InputError(path, f"was written by a run on another host ({_describe(holder)}), whose liveness "
                               f"cannot be checked from here: once that run has ended, delete {path} and "
                               f"start again")
    note = f"took over the stale lock of a run that is no longer running ({_describe(holder)})" if holder else None
    record = json.dumps({"host": host, "pid": os.getpid(),
                         "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}).encode("utf-8")
    os.ftruncate(fd, 0)
    os.pwrite(fd, record, 0)
    return fd, note


def release(folder: Path, fd: int) -> None:
    """Remove the lock file, then drop the lock (in that order, so no one locks a removed file)."""
    with contextlib.suppress(FileNotFoundError):
        (folder / LOCK_FILE).unlink()
    os.close(fd)


@contextlib.contextmanager
def run_lock(ctx: Context, folder: str | os.PathLike) -> Iterator[str | None]:
    """Hold ``folder``'s lock (rank 0) for the block; every rank refuses alike when it is taken.
    Yields the note about a stale lock taken over (rank 0), to be logged."""
    folder = Path(folder)
    fd, note, refusal = None, None, None
    if ctx.is_main:
        try:
            fd, note = acquire(folder)
        except InputError as exc:
            refusal = (exc.source, exc.problem)
    refusal = distributed.broadcast_object(ctx, refusal)
    if refusal is not None:
        if fd is not None:
            release(folder, fd)
        raise InputError(*refusal)
    try:
        yield note
    finally:
        if fd is not None:
            release(folder, fd)
