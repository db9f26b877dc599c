"""What one kind of training supplies to the loop, and the helpers its step is built from.

A `Task` knows its networks and how to take one optimiser step; `core.training.loop.fit` does
everything around it the same way for every task. Losses are averaged over all processes *before*
any optimiser step (`reduce_and_check`), so every rank sees the same numbers and takes the same
decision: a NaN on one rank stops all of them before any optimiser step, and the last checkpoint on
disk stays the last good state. The loss parts stay on the device until then and are read back in
one copy per optimiser: each read waits for the GPU to finish all the work queued before it.
"""
from __future__ import annotations

import contextlib
import inspect
import math
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from core.errors import Stopped
from core.training import distributed
from core.training.distributed import Context


class NonFiniteLossError(Stopped):
    """A loss became NaN or infinite; the run stops without stepping or saving (exit status 3)."""

    exit_status = 3


def reduce_and_check(ctx: Context, losses: Mapping[str, float | torch.Tensor], step: int) -> dict[str, float]:
    """Average ``losses`` (floats or 0-d tensors) over all ranks and raise ``NonFiniteLossError``
    on every rank alike when any is not finite."""
    mean = distributed.mean_over_ranks(ctx, losses)
    bad = {k: v for k, v in mean.items() if not math.isfinite(v)}
    if bad:
        shown = ", ".join(f"{k}={v}" for k, v in bad.items())
        raise NonFiniteLossError(f"non-finite loss at step {step} ({shown})")
    return mean


def uses_bf16(device: torch.device, precision: str) -> bool:
    """Whether training autocasts to bf16: "bf16" anywhere; "auto" on GPUs of compute capability
    8.0 (Ampere) and later, which run it natively. Older ones (V100, T4) emulate bf16, slower than
    fp32, and fp16 would need loss scaling, so "auto" trains them in fp32."""
    if precision == "bf16":
        return True
    return precision == "auto" and device.type == "cuda" and torch.cuda.get_device_capability(device) >= (8, 0)


def autocast(ctx: Context, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast where `uses_bf16` says so, fp32 otherwise. Losses and SSIM cast back to fp32
    themselves."""
    if uses_bf16(ctx.device, precision):
        return torch.autocast(ctx.device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


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

    @property
    def description(self) -> str:
        """What the progress bar calls the run."""
        return self.kind

    def modules(self) -> dict[str, nn.Module]:
        """Trained networks by name, unwrapped (checkpointed, checked for sync)."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """Everything but the counters and RNG: weights, optimisers, EMA."""
        raise NotImplementedError

    def load_state_dict(self, payload: dict[str, Any]) -> None:
        """Undo `state_dict` (a resumed run, or a new one started from another run's state)."""
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
