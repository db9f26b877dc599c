"""Full training state: everything needed to continue a run exactly where it stopped.

One file per checkpoint, ``state-<step>.pt``, written by ``torch.save`` and read back with
``torch.load(weights_only=True)`` — tensors, numbers, strings, lists and dicts only, so loading
never runs code. It holds the weights of every network, every optimiser's state, the EMA
weights, step/epoch/position in the epoch, the RNG states of every rank and the resolved
configuration.

Crash safety comes from the write order: the state goes to a hidden temporary name in the same
folder, is flushed and fsynced, then renamed into place. A process killed mid-save leaves only a
``.state-….tmp.pt`` file, which the resume scan never matches and the next run deletes
(`core.atomic.remove_stale`); Ctrl-C removes it on the way out. Resume takes the newest file that
loads (`scan`), so a checkpoint damaged after the fact costs a few steps, not the run.
"""
from __future__ import annotations

import os
import pickle
import random
import re
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from core.atomic import atomic_path

FORMAT = "mricolor.training_state"
FORMAT_VERSION = 1
_NAME = re.compile(r"^state-(\d{8,})\.pt$")


def state_path(folder: str | os.PathLike, step: int) -> Path:
    return Path(folder) / f"state-{step:08d}.pt"


def list_states(folder: str | os.PathLike) -> list[Path]:
    """Complete state files in ``folder``, oldest step first."""
    found = [(int(m.group(1)), p) for p in Path(folder).glob("state-*.pt") if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_state(folder: str | os.PathLike, step: int, payload: dict[str, Any], keep: int = 2,
               protect: Path | None = None) -> Path:
    """Atomically write ``payload`` as the state of ``step``, then delete all but the newest
    ``keep`` states and ``protect`` (the last state known to be good). Call on rank 0 only."""
    target = state_path(folder, step)
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as f:
            sink = _RememberingFile(f)
            try:
                torch.save({"format": FORMAT, "format_version": FORMAT_VERSION, "step": step, **payload}, sink)
            except RuntimeError:
                if sink.error is None:
                    raise
                raise sink.error from None          # the disk's own reason, e.g. ENOSPC
            f.flush()
            os.fsync(f.fileno())
    _fsync_dir(target.parent)
    for old in list_states(folder)[:-keep]:
        if protect is None or old != Path(protect):
            old.unlink(missing_ok=True)
    return target


class _RememberingFile:
    """A file whose write errors are kept: ``torch.save`` turns them into an unhelpful
    ``RuntimeError`` ("unexpected pos …"), and the ``OSError`` is what says the disk is full."""

    def __init__(self, f: BinaryIO):
        self.f, self.error = f, None

    def write(self, data: bytes) -> int:
        try:
            return self.f.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self.f.flush()


def load_state(path: str | os.PathLike) -> dict[str, Any]:
    """Read a state file onto the CPU without unpickling code; ``ValueError`` (one line) when it is
    not a readable state.

    Always the CPU: ``load_state_dict`` copies each tensor to where its network or optimiser lives,
    while a state loaded onto a GPU would leave the RNG keys (which must become NumPy arrays) and
    Adam's step counters there and hold a second copy of every weight until it is dropped.
    """
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ValueError(f"{path}: refused: holds objects a training state never holds (loading it could "
                         f"run code)") from None
    except Exception as exc:  # torch raises many types for truncated or foreign files
        raise ValueError(f"{path}: unreadable training state, truncated or damaged ({_first_line(exc)})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path}: not a mricolor training state")
    if payload.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(f"{path}: training state format {payload['format_version']} is newer than this code")
    return payload


def _first_line(exc: Exception) -> str:
    """The first sentence of a library's message, without terminal colour codes."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip().splitlines()
    return (text[0].split(". ")[0] if text else type(exc).__name__)[:200]


@dataclass
class Scan:
    """What a checkpoint folder holds: its newest readable state (None: none) and, newer than it,
    the states that do not load (each with its one-line reason)."""

    latest: tuple[Path, dict[str, Any]] | None
    unreadable: list[tuple[Path, str]]


def scan(folder: str | os.PathLike) -> Scan:
    """Load the newest state of ``folder`` that loads, remembering the newer ones that do not."""
    unreadable = []
    for path in reversed(list_states(folder)):
        try:
            return Scan((path, load_state(path)), unreadable)
        except ValueError as exc:
            unreadable.append((path, str(exc).removeprefix(f"{path}: ")))
    return Scan(None, unreadable)


def load_latest(folder: str | os.PathLike) -> tuple[Path, dict[str, Any]] | None:
    """The newest state in ``folder`` that loads, with its payload; None when there is none."""
    found = scan(folder)
    for path, reason in found.unreadable:
        warnings.warn(f"skipping {path}: {reason}", RuntimeWarning, stacklevel=2)
    return found.latest


def set_aside(paths: list[Path]) -> list[Path]:
    """Rename unreadable states to ``….pt.unreadable``: kept for a post-mortem, but out of the way of
    the resume scan, of the keep-newest rotation (which would otherwise delete every new state
    because the damaged ones carry higher step numbers) and of new states of the same step."""
    moved = []
    for path in paths:
        target = path.with_name(path.name + ".unreadable")
        os.replace(path, target)
        moved.append(target)
    return moved


def capture_rng() -> dict[str, Any]:
    """This process's RNG states (torch, CUDA, NumPy, Python) as checkpointable values."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "cached": float(cached)},
            "python": random.getstate()}


def restore_rng(state: dict[str, Any]) -> None:
    """Undo ``capture_rng`` (CUDA states only when the device count matches)."""
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def git_revision() -> str | None:
    """The source's git commit (with ``+dirty`` for local changes), for the record; None outside git."""
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, encoding="utf-8",
                              timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, encoding="utf-8", timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")
