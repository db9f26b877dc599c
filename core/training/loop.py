"""The training loop shared by segmentation pre-training and colorization training.

A ``Task`` knows its networks and how to take one optimiser step; ``fit`` does everything around
it the same way for both: the distributed sampler (``set_epoch`` every epoch, resumable
mid-epoch), the step budget, resume from the latest full state, rank-0 logging, sample pictures,
atomic checkpoints every N steps and at the end, the exported inference checkpoint, and the
clear stop on a non-finite loss.

Losses are averaged over all processes *before* anything is back-propagated, so every rank sees
the same numbers and takes the same decision: a NaN on one rank stops all of them before any
optimiser step, and the last checkpoint on disk stays the last good state.
"""
from __future__ import annotations

import contextlib
import inspect
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from core.atomic import write_text
from core.errors import InputError
from core.training import distributed, state
from core.training.config import RunConfig
from core.dataset.plane_data import resize_batch
from core.training.distributed import Context
from core.training.runlog import BASE_COLUMNS, LOG_FILE, RunLog, read_log
from core.training.samples import loss_curves, save_png

CHECKPOINT_DIR = "checkpoints"
CONFIG_FILE = "config.json"


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or infinite; the run stops without stepping or saving."""


def reduce_and_check(ctx: Context, losses: dict[str, float], step: int) -> dict[str, float]:
    """Average ``losses`` over all ranks and raise ``NonFiniteLossError`` on every rank alike when
    any is not finite."""
    mean = distributed.mean_over_ranks(ctx, losses)
    bad = {k: v for k, v in mean.items() if not math.isfinite(v)}
    if bad:
        shown = ", ".join(f"{k}={v}" for k, v in bad.items())
        raise NonFiniteLossError(f"non-finite loss at step {step} ({shown})")
    return mean


def autocast(ctx: Context, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA ("auto" or "bf16"), or on any device when "bf16" is asked for;
    fp32 otherwise. Losses and SSIM cast back to fp32 themselves."""
    use = precision == "bf16" or (precision == "auto" and ctx.device.type == "cuda")
    return torch.autocast(ctx.device.type, dtype=torch.bfloat16) if use else contextlib.nullcontext()


def wrap_ddp(ctx: Context, module: nn.Module, broadcast_buffers: bool = False) -> nn.Module:
    """DDP around one trainable network (identity for a world of one). ``broadcast_buffers``
    False: the generators and discriminators have no buffers, and re-broadcasting before every
    forward would break calling a network twice before one backward."""
    if not ctx.distributed:
        return module
    from torch.nn.parallel import DistributedDataParallel

    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    # torch 2.13 renamed the per-forward buffer sync; older releases only know broadcast_buffers.
    sync = ("forward_sync_buffers" if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
            else "broadcast_buffers")
    return DistributedDataParallel(module, device_ids=ids, find_unused_parameters=False, **{sync: broadcast_buffers})


def load_optimizer(optimizer: torch.optim.Optimizer, saved: dict[str, Any], **settings: Any) -> None:
    """Load an optimiser's saved moments and step counts, but keep this run's ``settings`` (lr,
    betas): torch's ``load_state_dict`` brings back the saved run's, which would silently undo a
    learning rate changed for a run started with ``--init-from``."""
    optimizer.load_state_dict(saved)
    for group in optimizer.param_groups:
        group.update(settings)


class Task:
    """One kind of training: its networks, optimisers and step. Subclasses fill in the methods."""

    kind = "task"

    def modules(self) -> dict[str, nn.Module]:
        """Trained networks by name, unwrapped (checkpointed, checked for sync)."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """Everything but the counters and RNG: weights, optimisers, EMA."""
        raise NotImplementedError

    def load_state_dict(self, payload: dict[str, Any]) -> None:
        raise NotImplementedError

    def distribute(self, ctx: Context) -> None:
        """Wrap the trainable networks in DDP (after any resume, so DDP broadcasts loaded weights)."""
        raise NotImplementedError

    def step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        """One optimiser step on a batch already on the device; returns rank-averaged losses."""
        raise NotImplementedError

    def draw(self, folder: Path, step: int) -> None:
        """Write the sample picture of ``step`` (rank 0)."""

    def export(self, folder: Path, step: int) -> Path | None:
        """Write the inference checkpoint (rank 0)."""
        return None


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` (shuffled by seed + epoch, same length on every rank) that can begin
    an epoch part-way through, so a resumed run sees exactly the planes it would have seen."""

    def __init__(self, dataset: Dataset, ctx: Context, seed: int):
        super().__init__(dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=seed,
                         drop_last=True)
        self.start = 0

    def set_start(self, index: int) -> None:
        self.start = index

    def __iter__(self) -> Iterator[int]:
        return iter(list(super().__iter__())[self.start:])

    def __len__(self) -> int:
        return self.num_samples - self.start


@dataclass
class Schedule:
    """How long and how often: read from the run config, batch and budget per task."""

    batch_size: int
    epochs: int
    max_steps: int | None
    max_minutes: float | None
    checkpoint_every: int
    sample_every: int
    log_every: int
    keep_checkpoints: int = 2


@dataclass
class FitResult:
    step: int
    epoch: int
    state: Path | None
    export: Path | None


def _to_device(batch: dict[str, torch.Tensor], device: torch.device, size: int) -> dict[str, torch.Tensor]:
    moved = {k: v.to(device, non_blocking=True) for k, v in batch.items() if isinstance(v, torch.Tensor)}
    return resize_batch(moved, size)


def write_config(ctx: Context, out: Path, cfg: RunConfig, run_info: dict[str, Any]) -> None:
    """The resolved configuration beside the checkpoints (rank 0), with how the run was launched."""
    if ctx.is_main:
        data = cfg.to_dict()
        data["run"] = run_info
        write_text(out / CONFIG_FILE, json.dumps(data, indent=2) + "\n")


def draw_loss_curves(out: Path, path: Path) -> None:
    """PNG of every loss column of ``out``'s log, one panel each."""
    columns, rows = read_log(out / LOG_FILE)
    names = [c for c in columns if c not in BASE_COLUMNS]
    if not rows or not names:
        return
    image = loss_curves([r["step"] for r in rows], {n: [r[n] for r in rows] for n in names})
    save_png(image, path)


def fit(task: Task, train_set: Dataset, ctx: Context, cfg: RunConfig, out: str | Path, schedule: Schedule, *,
        resume: bool = False, check_sync: bool = False, description: str = "train",
        init_from: str | Path | None = None) -> FitResult:
    """Train ``task`` on ``train_set`` into ``out`` (``checkpoints/``, ``log.csv``, ``samples/``,
    ``loss_curves.png``); with ``resume`` continue from the newest full state in ``out``.

    ``init_from`` (a state file, or a run folder: its newest state) starts a new run from another
    run's networks, optimiser and EMA states — fine-tuning with other loss weights or data — with
    this run's configuration and a step count from 0. A resumable state in ``out`` wins over it.
    """
    out = Path(out)
    ckpt_dir = out / CHECKPOINT_DIR
    if ctx.is_main:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        state.remove_partial(ckpt_dir)
    seed = cfg.train.seed

    sampler = ResumableSampler(train_set, ctx, seed)
    loader = DataLoader(train_set, batch_size=schedule.batch_size, sampler=sampler, drop_last=True,
                        collate_fn=getattr(train_set, "collate", None), num_workers=cfg.train.num_workers,
                        pin_memory=ctx.device.type == "cuda", persistent_workers=cfg.train.num_workers > 0,
                        generator=torch.Generator().manual_seed(seed + ctx.rank))
    steps_per_epoch = sampler.num_samples // schedule.batch_size
    global_batch = schedule.batch_size * ctx.world_size
    if steps_per_epoch == 0:
        raise InputError("--data", f"{len(train_set)} training planes are fewer than one global batch "
                                   f"({schedule.batch_size} per process × {ctx.world_size})")
    total = schedule.epochs * steps_per_epoch
    if schedule.max_steps is not None:
        total = min(total, schedule.max_steps)

    step, epoch, offset, last_state = 0, 0, 0, None
    torch.manual_seed(seed + ctx.rank)
    latest = state.load_latest(ckpt_dir, ctx.device) if ctx.is_main and resume else None
    occupied = ctx.is_main and not resume and bool(state.list_states(ckpt_dir))
    found, occupied = distributed.broadcast_object(ctx, (latest[0] if latest else None, occupied))
    if occupied:
        raise InputError(out, "already holds the checkpoints of a run: continue it with --resume, or choose "
                              "another --out")
    initial, origin = None, None  # origin: the state this run was initialised from, kept across resumes
    if found is not None:
        payload = latest[1] if ctx.is_main else state.load_state(found, ctx.device)
        task.load_state_dict(payload)
        step, epoch, offset = payload["step"], payload["epoch"], payload["batch_in_epoch"]
        origin = payload.get("init_from")
        rng = payload["rng"]
        if len(rng) == ctx.world_size:
            state.restore_rng(rng[ctx.rank])
        last_state = found
    elif init_from is not None:
        initial, initial_step = _load_initial(task, Path(init_from), ctx.device)
        origin = str(initial)
    task.distribute(ctx)
    write_config(ctx, out, cfg, {"kind": task.kind, "world_size": ctx.world_size, "batch_per_process":
                                 schedule.batch_size, "global_batch": global_batch, "device": str(ctx.device),
                                 "backend": ctx.backend, "git": state.git_revision(),
                                 **({"init_from": origin} if origin is not None else {})})

    log = RunLog(ctx, out, total_steps=total, start_step=step, description=description)
    if last_state is not None:
        log.message(f"resumed from {last_state} (step {step}, epoch {epoch})")
    elif initial is not None:
        log.message(f"initialised from {initial} (its step {initial_step}); this run counts from 0")
    elif resume:
        log.message(f"no checkpoint in {ckpt_dir}: starting from scratch")
    log.message(f"{task.kind}: {total} steps, {ctx.world_size} process(es) × batch {schedule.batch_size} "
                f"= global batch {global_batch}, {steps_per_epoch} steps per epoch, device {ctx.device}")

    export = None

    def save_checkpoint() -> Path:
        nonlocal export
        rngs = distributed.gather_objects(ctx, state.capture_rng())
        path = state.state_path(ckpt_dir, step)
        if ctx.is_main:
            payload = {"kind": task.kind, "epoch": epoch, "batch_in_epoch": offset,
                       "samples": step * global_batch, "rng": rngs, "config": cfg.to_json(),
                       "git": state.git_revision(), "world_size": ctx.world_size, **task.state_dict(),
                       **({"init_from": origin} if origin is not None else {})}
            state.save_state(ckpt_dir, step, payload, keep=schedule.keep_checkpoints)
            export = task.export(out, step)
        distributed.barrier(ctx)
        return path

    running: dict[str, float] = {}
    tick, tick_step = time.perf_counter(), step
    deadline = None if schedule.max_minutes is None else time.monotonic() + 60.0 * schedule.max_minutes
    try:
        while step < total:
            sampler.set_epoch(epoch)
            sampler.set_start(offset * schedule.batch_size)
            if hasattr(train_set, "set_epoch"):
                train_set.set_epoch(epoch)
            for batch in loader:
                try:
                    losses = task.step(_to_device(batch, ctx.device, cfg.train.image_size), step + 1)
                except NonFiniteLossError as exc:
                    where = f"the last good checkpoint is {last_state}" if last_state else "no checkpoint was written yet"
                    raise NonFiniteLossError(f"{exc}: stopped without taking the step; {where}. "
                                             "Lower the learning rates or check the data.") from None
                step += 1
                offset += 1
                if deadline is not None and distributed.broadcast_object(ctx, time.monotonic() > deadline):
                    total = step                                    # out of time: end here, as planned
                if check_sync:
                    distributed.check_in_sync(ctx, task.modules(), step)
                running = {k: 0.9 * running.get(k, v) + 0.1 * v for k, v in losses.items()}
                now = time.perf_counter()
                throughput = global_batch * (step - tick_step) / max(now - tick, 1e-9)
                log.progress(step, running, throughput)
                if step % schedule.log_every == 0 or step == total:
                    log.record(step, epoch, step * global_batch, throughput, losses)
                    tick, tick_step = now, step
                if ctx.is_main and (step % schedule.sample_every == 0 or step == total):
                    task.draw(out / "samples", step)
                    draw_loss_curves(out, out / "loss_curves.png")
                if step % schedule.checkpoint_every == 0 or step == total:
                    last_state = save_checkpoint()
                if step >= total:
                    break
            else:
                epoch, offset = epoch + 1, 0
    except KeyboardInterrupt:
        where = f"resume from {last_state} with --resume" if last_state else "no checkpoint was written"
        log.message(f"interrupted at step {step}; {where}")
        raise
    finally:
        log.close()
    if ctx.is_main and export is None:
        export = task.export(out, step)
    return FitResult(step, epoch, last_state, export)


def _load_initial(task: Task, source: Path, device) -> tuple[Path, int]:
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
