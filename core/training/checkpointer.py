"""Where a run keeps what it needs to go on: full states, its configuration, the exported model.

A run begins where its newest state in ``OUT/checkpoints`` left off (``--resume``), from another
run's state (``--init-from``: networks, optimisers and EMA, with this run's configuration and a step
count from 0), or from scratch; a new run never overwrites the states of another. Every state holds
the position in the data, every rank's RNG and the resolved configuration, so a resumed run repeats
the uninterrupted one step for step. Rank 0 writes; every rank takes part in gathering the RNGs.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from core.atomic import write_text
from core.errors import InputError
from core.model.run_config import CONFIG_FILE, RunConfig
from core.training import distributed, state
from core.training.distributed import Context
from core.training.task import Task

CHECKPOINT_DIR = "checkpoints"


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
        self.origin: str | None = None         # the state this run was initialised from, kept across resumes
        self.export: Path | None = None        # the newest inference checkpoint written
        if ctx.is_main:
            self.folder.mkdir(parents=True, exist_ok=True)
            state.remove_partial(self.folder)

    def restore(self, resume: bool, init_from: str | Path | None) -> tuple[Position, str | None]:
        """Load the state the run starts from into the task; its position and what to log about it."""
        ctx = self.ctx
        latest = state.load_latest(self.folder, ctx.device) if ctx.is_main and resume else None
        occupied = ctx.is_main and not resume and bool(state.list_states(self.folder))
        found, occupied = distributed.broadcast_object(ctx, (latest[0] if latest else None, occupied))
        if occupied:
            raise InputError(self.out, "already holds the checkpoints of a run: continue it with --resume, or "
                                       "choose another --out")
        if found is not None:
            payload = latest[1] if ctx.is_main else state.load_state(found, ctx.device)
            self.task.load_state_dict(payload)
            at = Position.of(payload)
            self.origin, self.last = payload.get("init_from"), found
            if len(payload["rng"]) == ctx.world_size:
                state.restore_rng(payload["rng"][ctx.rank])
            return at, f"resumed from {found} (step {at.step}, epoch {at.epoch})"
        if init_from is not None:
            initial, initial_step = load_initial(self.task, Path(init_from), ctx.device)
            self.origin = str(initial)
            return Position(), f"initialised from {initial} (its step {initial_step}); this run counts from 0"
        return Position(), f"no checkpoint in {self.folder}: starting from scratch" if resume else None

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
        """The full state at ``at`` (all ranks' RNGs) and the exported model, then wait for rank 0."""
        rngs = distributed.gather_objects(self.ctx, state.capture_rng())
        path = state.state_path(self.folder, at.step)
        if self.ctx.is_main:
            payload = {"kind": self.task.kind, "epoch": at.epoch, "sample_in_epoch": at.sample_in_epoch,
                       "samples": at.step * global_batch, "rng": rngs, "config": self.cfg.to_json(),
                       "git": state.git_revision(), "world_size": self.ctx.world_size, **self.task.state_dict(),
                       **self._provenance()}
            state.save_state(self.folder, at.step, payload, keep=self.keep)
            self.export = self.task.export(self.out, at.step)
        distributed.barrier(self.ctx)
        self.last = path

    def final_export(self, step: int) -> Path | None:
        """The exported model at the end: the last save's, or one written now when the run had no
        step left to take (rank 0; None elsewhere)."""
        if self.ctx.is_main and self.export is None:
            self.export = self.task.export(self.out, step)
        return self.export

    def _provenance(self) -> dict[str, Any]:
        return {"init_from": self.origin} if self.origin is not None else {}


def load_initial(task: Task, source: Path, device: torch.device) -> tuple[Path, int]:
    """Load the networks and optimiser states of ``source`` (a state file or a run folder) into
    ``task``; the state file used and its step. Every rank reads it, so no broadcast is needed."""
    if source.is_dir():
        latest = state.load_latest(source / CHECKPOINT_DIR, device) or state.load_latest(source, device)
        if latest is None:
            raise InputError(source, "holds no training state (checkpoints/state-*.pt) to initialise from")
        source, payload = latest
    else:
        try:
            payload = state.load_state(source, device)
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
