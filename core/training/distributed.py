"""One code path for 1..N processes: torchrun detection, process group, rank helpers, reductions.

A run launched by ``torchrun`` (``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` in the environment) joins a
process group — NCCL when it trains on CUDA, gloo on CPU — and every other process-count question
goes through the ``Context`` returned here. Launched plainly, the same code runs as a world of
one, so the training loops never branch on "distributed or not" except where a collective would
be wasted work. Multi-node needs nothing more: torchrun's rendezvous options
(``--nnodes``, ``--node_rank``, ``--rdzv_backend=c10d --rdzv_endpoint=HOST:PORT``) set the same
environment variables on every node.
"""
from __future__ import annotations

import contextlib
import ctypes
import datetime
import hashlib
import os
import signal
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

import torch
import torch.distributed as dist
from torch import nn

from core.errors import InputError, Stopped


@dataclass(frozen=True)
class Context:
    """Where this process sits: its rank, the world size and the device it trains on."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 alone logs, draws and writes files."""
        return self.rank == 0

    @property
    def backend(self) -> str | None:
        return dist.get_backend() if dist.is_initialized() else None


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def pick_device(requested: str | None, local_rank: int = 0, world_size: int = 1) -> torch.device:
    """``requested`` ("cpu", "cuda", "cuda:1", None = CUDA when present); one GPU per local rank.

    An explicit index with several processes is refused: every local rank would train on that one
    GPU. On CUDA, cuDNN benchmarks its kernels once per shape: training planes have one fixed size.
    """
    if requested in (None, "auto"):
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(requested)
    if device.type == "cuda":
        if device.index is not None and world_size > 1:
            raise InputError("--device", f"{requested} would put all {world_size} processes on one GPU; under "
                                         "torchrun use --device cuda (each process takes the GPU of its LOCAL_RANK)")
        if not torch.cuda.is_available():
            raise RuntimeError("--device cuda was asked for but torch sees no CUDA device")
        device = torch.device("cuda", local_rank if device.index is None else device.index)
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
    return device


def stop_with_launcher() -> None:
    """Have the kernel send this process SIGTERM when its parent dies (Linux; a no-op elsewhere).

    A torchrun killed outright (SIGKILL, OOM killer) cannot stop its workers, which otherwise train
    on for a while holding the run folder's lock; SIGTERM unwinds them like Ctrl-C."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:                          # the launcher died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


_PR_SET_PDEATHSIG = 1


def init(device: str | None = None, timeout_s: float = 1800.0) -> Context:
    """Join the process group when torchrun started us (NCCL on CUDA, gloo on CPU) and pick the
    device; a plain launch is a world of one. Call ``cleanup`` (or use ``session``) at the end."""
    if launched_by_torchrun():
        stop_with_launcher()
    if not launched_by_torchrun() or int(os.environ["WORLD_SIZE"]) == 1:
        return Context(device=pick_device(device))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    chosen = pick_device(device, local_rank, int(os.environ["WORLD_SIZE"]))
    backend = "nccl" if chosen.type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s),
                                device_id=chosen if chosen.type == "cuda" else None)
    return Context(dist.get_rank(), local_rank, dist.get_world_size(), chosen)


def cleanup() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


@contextlib.contextmanager
def session(device: str | None = None) -> Iterator[Context]:
    """``init`` … ``cleanup`` around a block, also when it raises."""
    ctx = init(device)
    try:
        yield ctx
    finally:
        cleanup()


def barrier(ctx: Context) -> None:
    if ctx.distributed:
        dist.barrier()


def mean_over_ranks(ctx: Context, values: Mapping[str, float | torch.Tensor]) -> dict[str, float]:
    """Average named scalars (floats or 0-d tensors on the device) over all processes in one
    all-reduce, read back to the host in one copy: the step's only wait for the device."""
    if not values:
        return {}
    t = torch.stack([torch.as_tensor(v).to(ctx.device, torch.float64) for v in values.values()])
    if ctx.distributed:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        t = t / ctx.world_size
    return dict(zip(values, t.tolist()))


def agree(ctx: Context, ok: bool, source: str, problem: str) -> None:
    """Raise the same ``InputError`` on every rank when ``ok`` is False on any, so a condition one
    process alone sees (a file missing on its node) stops all, not just that one. ``problem`` may
    name the failing ranks with ``{where}`` (" on rank(s) 1, 3"; empty for a world of one)."""
    failing = [rank for rank, fine in enumerate(gather_objects(ctx, ok)) if not fine]
    if failing:
        where = f" on rank(s) {', '.join(map(str, failing))}" if ctx.distributed else ""
        raise InputError(source, problem.format(where=where))


def broadcast_object(ctx: Context, obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (small Python objects: paths, flags)."""
    if not ctx.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(ctx: Context, obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank."""
    if not ctx.distributed:
        return [obj]
    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def checksum(module: nn.Module) -> str:
    """SHA-1 of a module's parameters, bit for bit. Buffers are left out: batch-norm running
    statistics legitimately differ between ranks that saw different planes."""
    digest = hashlib.sha1()
    for name, tensor in sorted(module.named_parameters()):
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class OutOfSyncError(Stopped):
    """Processes hold different weights: gradients were not all-reduced (``--check-sync``; exit
    status 4, one line, like every stop of a run)."""

    exit_status = 4


def check_in_sync(ctx: Context, modules: dict[str, nn.Module], step: int,
                  batch: dict[str, torch.Tensor] | None = None) -> dict[str, str]:
    """Gather a checksum of every network (and of this step's ``batch``) from every rank; raise
    ``OutOfSyncError`` when a network differs, or when every rank read the same planes (the data
    is not sharded: the run would be one process's worth of data at several times the cost).
    Returns rank 0's network checksums (name → hex)."""
    mine = {name: checksum(module) for name, module in modules.items()}
    read = None if batch is None else _digest(batch)
    ranks: Sequence[tuple[dict[str, str], str | None]] = gather_objects(ctx, (mine, read))
    differing = sorted(name for name in mine if len({r[name] for r, _ in ranks}) > 1)
    if differing:
        raise OutOfSyncError(f"step {step}: processes hold different weights for {', '.join(differing)}")
    if read is not None and ctx.world_size > 1 and len({r for _, r in ranks}) == 1:
        raise OutOfSyncError(f"step {step}: all {ctx.world_size} processes read the same planes: the data is "
                             f"not split between them")
    return ranks[0][0]


def _digest(batch: dict[str, torch.Tensor]) -> str:
    """SHA-1 of a batch's tensors, bit for bit."""
    digest = hashlib.sha1()
    for name in sorted(batch):
        digest.update(name.encode())
        digest.update(batch[name].detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
