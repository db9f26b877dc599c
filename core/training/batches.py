"""The training planes in per-process batches, resumable at any batch of any epoch.

Every rank draws its share of a shuffled epoch (seed + epoch, the same length on every rank); a
resumed run starts its epoch part-way through, so it sees exactly the planes it would have seen.
The position in an epoch is a count of planes over all ranks, so a run resumed on another number
of processes goes on with the planes the epoch has not yet shown (none twice, none skipped).

DataLoader workers are started afresh each epoch (not persistent): a worker holds its own copy
of the dataset object, so only a new worker sees the epoch that ``set_epoch`` gave the dataset
(its augmentation draw). The volumes are read once, before the workers fork, and shared with them.
"""
from __future__ import annotations

from typing import Iterable, Iterator

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from core.dataset.plane_data import resize_batch
from core.errors import InputError
from core.model.train_config import Schedule, TrainConfig
from core.training.distributed import Context


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` (shuffled by seed + epoch, same length on every rank) that can begin
    an epoch part-way through: after ``start`` planes of the epoch's order taken by all ranks
    together. From 0 it yields what ``DistributedSampler`` yields: item ``rank``, then every
    ``world``-th, of the order, so the first k planes of each of W ranks are its first k·W."""

    def __init__(self, dataset: Dataset, ctx: Context, seed: int):
        super().__init__(dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=seed,
                         drop_last=True)
        self.start = 0

    def set_start(self, sample: int) -> None:
        """Begin after ``sample`` planes of the epoch (counted over all ranks)."""
        self.start = sample

    def order(self) -> list[int]:
        """The epoch's order of all planes (the same on every rank)."""
        g = torch.Generator()
        g.manual_seed(self.seed + self.epoch)
        return torch.randperm(len(self.dataset), generator=g).tolist()

    def __iter__(self) -> Iterator[int]:
        rest = self.order()[self.start:self.total_size]
        return iter(rest[self.rank:len(self) * self.num_replicas:self.num_replicas])

    def __len__(self) -> int:
        return max(self.total_size - self.start, 0) // self.num_replicas


class Batches:
    """A loader over ``dataset`` with ``batch_size`` planes per process and step."""

    def __init__(self, dataset: Dataset, ctx: Context, batch_size: int, train: TrainConfig):
        self.dataset, self.ctx, self.batch_size = dataset, ctx, batch_size
        self.sampler = ResumableSampler(dataset, ctx, train.seed)
        if train.num_workers > 0 and hasattr(dataset, "preload"):
            dataset.preload()                  # once here, not once per worker: forked workers share it
        self.loader = DataLoader(dataset, batch_size=batch_size, sampler=self.sampler, drop_last=True,
                                 collate_fn=getattr(dataset, "collate", None), num_workers=train.num_workers,
                                 pin_memory=ctx.device.type == "cuda", persistent_workers=False,
                                 generator=torch.Generator().manual_seed(train.seed + ctx.rank))
        self.per_epoch = self.sampler.num_samples // batch_size
        self.global_batch = batch_size * ctx.world_size
        if self.per_epoch == 0:
            raise InputError("--data", f"{len(dataset)} training planes are fewer than one global batch "
                                       f"({batch_size} per process × {ctx.world_size})")

    def total_steps(self, plan: Schedule) -> int:
        """Steps of the whole run: its epochs, capped by its step budget."""
        total = plan.epochs * self.per_epoch
        return total if plan.max_steps is None else min(total, plan.max_steps)

    def epoch(self, epoch: int, sample_in_epoch: int) -> Iterable[dict[str, torch.Tensor]]:
        """The batches of ``epoch`` after its first ``sample_in_epoch`` planes (over all ranks)."""
        self.sampler.set_epoch(epoch)
        self.sampler.set_start(sample_in_epoch)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        return self.loader

    def describe(self, kind: str, total: int) -> str:
        return (f"{kind}: {total} steps, {self.ctx.world_size} process(es) × batch {self.batch_size} "
                f"= global batch {self.global_batch}, {self.per_epoch} steps per epoch, device {self.ctx.device}")


def on_device(batch: dict[str, torch.Tensor], device: torch.device, size: int) -> dict[str, torch.Tensor]:
    """The batch's tensors on ``device``, resized to the ``size`` the networks train at."""
    moved = {k: v.to(device, non_blocking=True) for k, v in batch.items() if isinstance(v, torch.Tensor)}
    return resize_batch(moved, size)
