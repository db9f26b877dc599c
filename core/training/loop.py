"""The training loop shared by segmentation pre-training and colorization training.

``fit`` reads top to bottom: the batches, the restored position, the checkpointer, then the loop —
take a step, watch the clock, check the ranks agree, report, checkpoint. A `core.training.task.Task`
supplies the networks and the step; `core.training.batches` the resumable data order;
`core.training.checkpointer` the states, the configuration and the exported model.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from core.model.train_config import Schedule
from core.model.run_config import RunConfig
from core.training import distributed
from core.training.batches import Batches, on_device
from core.training.checkpointer import Checkpointer, Position
from core.training.distributed import Context
from core.training.runlock import run_lock
from core.training.runlog import BASE_COLUMNS, LOG_FILE, RunLog, read_log
from core.training.samples import loss_curves, save_png
from core.training.task import NonFiniteLossError, Task


@dataclass
class FitResult:
    step: int
    epoch: int
    state: Path | None
    export: Path | None


def fit(task: Task, train_set: Dataset, ctx: Context, cfg: RunConfig, out: str | Path, *,
        resume: bool = False, init_from: str | Path | None = None) -> FitResult:
    """Train ``task`` on ``train_set`` into ``out`` (``checkpoints/``, ``log.csv``, ``samples/``,
    ``loss_curves.png``) with the schedule ``cfg`` gives ``task.kind``; with ``resume`` continue
    from the newest full state in ``out``, with ``init_from`` start from another run's state (see
    `core.training.checkpointer`; a resumable state in ``out`` wins over it)."""
    with run_lock(ctx, out) as took_over:
        return _fit(task, train_set, ctx, cfg, Path(out), resume, init_from, took_over)


def _fit(task: Task, train_set: Dataset, ctx: Context, cfg: RunConfig, out: Path, resume: bool,
         init_from: str | Path | None, took_over: str | None) -> FitResult:
    """`fit` under the run folder's lock."""
    plan = cfg.train.schedule(task.kind)
    checkpoints = Checkpointer(task, ctx, cfg, out, keep=plan.keep_checkpoints)
    batches = Batches(train_set, ctx, plan.batch_size, cfg.train)
    total = batches.total_steps(plan)

    seed_everything(cfg.train.seed + ctx.rank)
    at, restored = checkpoints.restore(resume, init_from)
    task.distribute(ctx)
    checkpoints.write_config(plan.batch_size)

    log = RunLog(ctx, out, total_steps=total, start_step=at.step, description=task.description)
    for line in (took_over, restored, batches.describe(task.kind, total)):
        if line is not None:
            log.message(line)
    report = Report(task, ctx, out, plan, log, batches.global_batch, at.step)
    deadline = None if plan.max_minutes is None else time.monotonic() + 60.0 * plan.max_minutes
    try:
        while at.step < total:
            for batch in batches.epoch(at.epoch, at.sample_in_epoch):
                batch = on_device(batch, ctx.device, cfg.train.image_size)
                losses = take_step(task, batch, at.step + 1, checkpoints, cfg)
                at.advance(batches.global_batch)
                if deadline is not None and distributed.broadcast_object(ctx, time.monotonic() > deadline):
                    total = at.step                                   # out of time: end here, as planned
                if cfg.train.check_sync:
                    distributed.check_in_sync(ctx, task.modules(), at.step, batch)
                report.step(at, losses, last=at.step == total)
                if at.step % plan.checkpoint_every == 0 or at.step == total:
                    try:
                        checkpoints.save(at, batches.global_batch)
                    except NonFiniteLossError as exc:
                        raise stopped(exc, task.kind, cfg, checkpoints) from None
                if at.step >= total:
                    break
            else:
                at.next_epoch()
    except KeyboardInterrupt:
        where = f"resume from {checkpoints.last} with --resume" if checkpoints.last else "no checkpoint was written"
        log.message(f"interrupted at step {at.step}; {where}")
        raise
    finally:
        log.close()
    return FitResult(at.step, at.epoch, checkpoints.last, checkpoints.final_export(at.step))


def seed_everything(seed: int) -> None:
    """Seed torch, NumPy's and Python's global generators (augmentations and helpers may draw from
    any of them); a resumed run then overwrites all three with the saved states."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def take_step(task: Task, batch: dict[str, torch.Tensor], step: int, checkpoints: Checkpointer,
              cfg: RunConfig) -> dict[str, float]:
    """``task``'s step ``step``. Its loss was computed with the weights of the newest state, so a
    finite one confirms that state; a non-finite one stops the run naming the last good state and
    how to go on from it."""
    try:
        losses = task.step(batch, step)
    except NonFiniteLossError as exc:
        raise stopped(NonFiniteLossError(f"{exc}: stopped without taking the step"), task.kind, cfg,
                      checkpoints) from None
    checkpoints.confirm()
    return losses


def stopped(exc: NonFiniteLossError, kind: str, cfg: RunConfig, checkpoints: Checkpointer) -> NonFiniteLossError:
    """``exc`` completed with the last good state (re-exported) and how to go on from it."""
    good = checkpoints.fall_back()
    newest = f"the weights of the newest checkpoint ({checkpoints.last}) led to it; " \
        if good is None and checkpoints.last is not None else ""
    return NonFiniteLossError(f"{exc}; {newest}{how_to_continue(kind, cfg, good)}")


def how_to_continue(kind: str, cfg: RunConfig, good: Path | None) -> str:
    """Where a run stopped by a non-finite loss can go on from, as a command (``--resume`` cannot
    change learning rates: a new run started from the good state can)."""
    if kind == "colorization":
        lr_g, lr_d = cfg.preset.optim.lr_g, cfg.preset.optim.lr_d
        lower = f"--set optim.lr_g={lr_g / 2:g} --set optim.lr_d={lr_d / 2:g} (this run: {lr_g:g}, {lr_d:g})"
        if good is not None:
            return (f"the last good checkpoint is {good}. To go on with lower learning rates, start a new run "
                    f"from it: python -m train colorization --init-from {good} --out NEW_FOLDER {lower}; "
                    f"or check the data")
    else:
        lower = f"--set train.seg_lr={cfg.train.seg_lr / 2:g} (this run: {cfg.train.seg_lr:g})"
        if good is not None:
            return (f"the last good checkpoint is {good}. To go on with a lower learning rate, train again into "
                    f"a new --out with {lower}; or check the data")
    return f"no checkpoint with a finite loss was written yet. Lower the learning rates, e.g. {lower}, or check the data"


class Report:
    """What a run shows after each step: the progress bar with running losses and throughput, a
    log row every ``log_every`` steps, sample pictures and loss curves every ``sample_every``."""

    def __init__(self, task: Task, ctx: Context, out: Path, plan: Schedule, log: RunLog, global_batch: int,
                 step: int):
        self.task, self.ctx, self.out, self.plan, self.log = task, ctx, out, plan, log
        self.global_batch = global_batch
        self.running: dict[str, float] = {}
        self.tick, self.tick_step = time.perf_counter(), step

    def step(self, at: Position, losses: dict[str, float], last: bool) -> None:
        """Report the losses of the step just taken (``last``: the run's final step)."""
        self.running = {k: 0.9 * self.running.get(k, v) + 0.1 * v for k, v in losses.items()}
        now = time.perf_counter()
        throughput = self.global_batch * (at.step - self.tick_step) / max(now - self.tick, 1e-9)
        self.log.progress(at.step, self.running, throughput)
        if at.step % self.plan.log_every == 0 or last:
            self.log.record(at.step, at.epoch, at.step * self.global_batch, throughput, losses)
            self.tick, self.tick_step = now, at.step
        if self.ctx.is_main and (at.step % self.plan.sample_every == 0 or last):
            self.task.draw(self.out / "samples", at.step)
            draw_loss_curves(self.out, self.out / "loss_curves.png")


def draw_loss_curves(out: Path, path: Path) -> None:
    """PNG of every loss column of ``out``'s log, one panel each."""
    columns, rows = read_log(out / LOG_FILE)
    names = [c for c in columns if c not in BASE_COLUMNS]
    if not rows or not names:
        return
    image = loss_curves([r["step"] for r in rows], {n: [r[n] for r in rows] for n in names})
    save_png(image, path)
