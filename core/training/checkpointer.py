"""Where a run keeps what it needs to go on: full states, its configuration, the exported model.

A run begins where its newest state in ``OUT/checkpoints`` left off (``--resume``), from another
run's state (``--init-from``: networks, optimisers and EMA, with this run's configuration and a step
count from 0), or from scratch; a new run never overwrites the states of another. Every state holds
the position in the data, every rank's RNG and the resolved configuration, so a resumed run repeats
the uninterrupted one step for step. Rank 0 writes; every rank takes part in gathering the RNGs.

A run's history is never deleted or overwritten implicitly: ``--resume`` into a folder whose states
all fail to load is refused (naming them), and unreadable states newer than the one resumed from
are set aside (``….pt.unreadable``) rather than rotated over. States are read on the CPU
(`core.training.state.load_state`) and dropped once loaded into the task.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from core.atomic import remove_stale, write_bytes, write_text
from core.errors import InputError
from core.model.run_config import CONFIG_FILE, RunConfig
from core.training import distributed, state
from core.training.distributed import Context
from core.training.task import NonFiniteLossError, Task

CHECKPOINT_DIR = "checkpoints"
SAMPLE_DIR = "samples"
EXPORTS_DIR = "exports"


@dataclass
class Position:
    """How far a run is: optimiser steps taken, the epoch, and planes taken in that epoch by all
    ranks together (a count that still means the same when a run resumes on another number of
    processes, see `core.training.batches`)."""

    step: int = 0
    epoch: int = 0
    sample_in_epoch: int = 0

    def advance(self, global_batch: int) -> None:
        self.step += 1
        self.sample_in_epoch += global_batch

    def next_epoch(self) -> None:
        self.epoch, self.sample_in_epoch = self.epoch + 1, 0

    @classmethod
    def of(cls, payload: dict[str, Any]) -> "Position":
        """The position a state records; states written before the plane count had batches per
        rank (``batch_in_epoch``) and the global batch (``samples`` / ``step``)."""
        step = int(payload["step"])
        if "sample_in_epoch" in payload:
            sample = int(payload["sample_in_epoch"])
        else:
            sample = int(payload["batch_in_epoch"]) * (int(payload["samples"]) // max(step, 1))
        return cls(step, int(payload["epoch"]), sample)


class Checkpointer:
    """The checkpoints of ``task``'s run in ``out``: restore, save every so often, export."""

    def __init__(self, task: Task, ctx: Context, cfg: RunConfig, out: Path, keep: int):
        self.task, self.ctx, self.cfg, self.out, self.keep = task, ctx, cfg, out, keep
        self.folder = out / CHECKPOINT_DIR
        self.last: Path | None = None          # the newest state resumed from or written
        self.good: Path | None = None          # the newest state whose weights then gave a finite loss
        self.origin: str | None = None         # the state this run was initialised from, kept across resumes
        self.export: Path | None = None        # the newest inference checkpoint written
        if ctx.is_main:                        # under the run's lock: no one else is writing here
            self.folder.mkdir(parents=True, exist_ok=True)
            for folder in (out, self.folder, out / SAMPLE_DIR):
                remove_stale(folder)

    def restore(self, resume: bool, init_from: str | Path | None) -> tuple[Position, str | None]:
        """Load the state the run starts from into the task; its position and what to log about it."""
        ctx = self.ctx
        found, refusal, note, payload = None, None, "", None
        if ctx.is_main:
            found, refusal, note, payload = self._choose(resume)
        found, refusal, note = distributed.broadcast_object(ctx, (found, refusal, note))
        if refusal is not None:
            raise InputError(self.out, refusal)
        if found is not None:
            payload = payload if payload is not None else state.load_state(found)
            self.task.load_state_dict(payload)
            at = Position.of(payload)
            self.origin, self.last = payload.get("init_from"), found
            if len(payload["rng"]) == ctx.world_size:
                state.restore_rng(payload["rng"][ctx.rank])
            del payload                        # the loaded copy: the task holds its own now
            return at, f"resumed from {found} (step {at.step}, epoch {at.epoch}){note}"
        if init_from is not None:
            initial, initial_step = load_initial(self.task, Path(init_from))
            self.origin = str(initial)
            return Position(), f"initialised from {initial} (its step {initial_step}); this run counts from 0"
        return Position(), f"no checkpoint in {self.folder}: starting from scratch" if resume else None

    def _choose(self, resume: bool) -> tuple[Path | None, str | None, str, dict[str, Any] | None]:
        """Rank 0: the state to resume from, a reason to refuse, a note for the log, and the state's
        payload (already read while choosing)."""
        if not resume:
            if state.list_states(self.folder):
                return None, ("already holds the checkpoints of a run: continue it with --resume, or choose "
                              "another --out"), "", None
            return None, None, "", None
        scan = state.scan(self.folder)
        if scan.latest is None and scan.unreadable:
            shown = "; ".join(f"{p.name}: {reason}" for p, reason in reversed(scan.unreadable))
            return None, (f"--resume found no readable checkpoint ({shown}); nothing was changed. Restore the "
                          f"files from a backup, or move them out of {self.folder} to train this run again "
                          f"from scratch"), "", None
        if scan.latest is None:
            return None, None, "", None
        moved = state.set_aside([p for p, _ in scan.unreadable])
        note = f"; set aside the unreadable {', '.join(p.name for p in moved)}" if moved else ""
        path, payload = scan.latest
        return path, None, note, payload

    def write_config(self, batch_per_process: int) -> None:
        """The resolved configuration beside the checkpoints (rank 0), with how the run was launched."""
        if not self.ctx.is_main:
            return
        data = self.cfg.to_dict()
        data["run"] = {"kind": self.task.kind, "world_size": self.ctx.world_size,
                       "batch_per_process": batch_per_process,
                       "global_batch": batch_per_process * self.ctx.world_size, "device": str(self.ctx.device),
                       "backend": self.ctx.backend, "git": state.git_revision(), **self._provenance()}
        write_text(self.out / CONFIG_FILE, json.dumps(data, indent=2) + "\n")

    def save(self, at: Position, global_batch: int) -> None:
        """The full state at ``at`` (all ranks' RNGs) and the exported model, then wait for rank 0.
        Weights that are no longer finite are never saved (`NonFiniteLossError`)."""
        bad = sorted(name for name, module in self.task.modules().items()
                     if not all(bool(torch.isfinite(p).all()) for p in module.parameters()))
        if bad:
            raise NonFiniteLossError(f"non-finite weights in {', '.join(bad)} after step {at.step}: not saved")
        rngs = distributed.gather_objects(self.ctx, state.capture_rng())
        path = state.state_path(self.folder, at.step)
        if self.ctx.is_main:
            payload = {"kind": self.task.kind, "epoch": at.epoch, "sample_in_epoch": at.sample_in_epoch,
                       "samples": at.step * global_batch, "rng": rngs, "config": self.cfg.to_json(),
                       "git": state.git_revision(), "world_size": self.ctx.world_size, **self.task.state_dict(),
                       **self._provenance()}
            state.save_state(self.folder, at.step, payload, keep=self.keep, protect=self.good)
            self.export = self.task.export(self.out, at.step)
            if self.cfg.train.keep_exports:
                write_bytes(self.out / EXPORTS_DIR / f"model-{at.step:08d}.safetensors", self.export.read_bytes())
        distributed.barrier(self.ctx)
        self.last = path

    def confirm(self) -> None:
        """A step just gave a finite loss with the weights of the newest state: it is good."""
        self.good = self.last

    def fall_back(self) -> Path | None:
        """After a non-finite loss: the last good state, re-exported (rank 0) when a newer one was
        written since, whose weights led to that loss (kept, but not the model the run ends with)."""
        if self.good is not None and self.good != self.last and self.ctx.is_main:
            payload = state.load_state(self.good)
            self.task.load_state_dict(payload)
            self.export = self.task.export(self.out, int(payload["step"]))
        return self.good

    def final_export(self, step: int) -> Path | None:
        """The exported model at the end: the last save's, or one written now when the run had no
        step left to take (rank 0; None elsewhere)."""
        if self.ctx.is_main and self.export is None:
            self.export = self.task.export(self.out, step)
        return self.export

    def _provenance(self) -> dict[str, Any]:
        return {"init_from": self.origin} if self.origin is not None else {}


def load_initial(task: Task, source: Path) -> tuple[Path, int]:
    """Load the networks and optimiser states of ``source`` (a state file or a run folder) into
    ``task``; the state file used and its step. Every rank reads it, so no broadcast is needed."""
    if source.is_dir():
        latest = state.load_latest(source / CHECKPOINT_DIR) or state.load_latest(source)
        if latest is None:
            raise InputError(source, "holds no training state (checkpoints/state-*.pt) to initialise from")
        source, payload = latest
    else:
        try:
            payload = state.load_state(source)
        except ValueError as exc:
            raise InputError(source, str(exc).removeprefix(f"{source}: ")) from None
    if payload.get("kind") != task.kind:
        raise InputError(source, f"is a {payload.get('kind')} state, not a {task.kind} one")
    try:
        task.load_state_dict(payload)
    except (RuntimeError, KeyError, ValueError) as exc:
        raise InputError(source, f"does not fit this run's networks (another preset or ablation?): "
                                 f"{str(exc).splitlines()[0]}") from None
    return source, int(payload.get("step", 0))
