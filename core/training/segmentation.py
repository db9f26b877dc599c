"""Pre-training the cryosection U-Net S on (cryosection, labels) planes, and per-class Dice.

S is trained once, before the GAN, and frozen there (docs/training.md): its quality bounds what the
segmentation loss can teach the c' decoder, so the run reports Dice per class on the test planes
(``dice.md`` / ``dice.csv``) — a class S cannot find is a class whose colour L_seg cannot enforce.
Batch norm: under DDP on CUDA it becomes SyncBatchNorm; on CPU (gloo, where SyncBatchNorm does
not run) the buffers of rank 0 are broadcast before every forward.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from core.atomic import write_text
from core.model.checkpoint import CHECKPOINT_FILE, save_checkpoint
from core.labels import LabelTable
from core.model.losses import segmentation_loss
from core.model.networks import build_segmentation
from core.model.run_config import RunConfig
from core.training import distributed
from core.dataset.plane_data import PlaneData, first_planes, resize_batch
from core.training.distributed import Context
from core.training.loop import FitResult, fit
from core.training.task import Task, autocast, load_optimizer, reduce_and_check, wrap_ddp
from core.training.samples import label_colors, sample_grid, save_png


class SegmentationTask(Task):
    """U-Net on RGB cryosection planes, cross-entropy against integer label maps."""

    kind = "segmentation"

    def __init__(self, cfg: RunConfig, ctx: Context, data: PlaneData):
        self.cfg, self.ctx, self.label_table = cfg, ctx, data.label_table
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.train.seed)
            self.net = build_segmentation(cfg.preset.model, data.label_table.num_classes).to(ctx.device)
        self.train_net: nn.Module = self.net
        self.opt = torch.optim.Adam(self.net.parameters(), lr=cfg.train.seg_lr)
        self.class_weights = cfg.preset.loss.class_weights
        if self.class_weights is None and cfg.train.seg_class_balance:
            self.class_weights = balanced_class_weights(data.train, data.label_table.num_classes)
        self.preview = first_planes(data.test, cfg.train.sample_count, cfg.train.image_size) if ctx.is_main else None

    def modules(self) -> dict[str, nn.Module]:
        return {"seg": self.net}

    def state_dict(self) -> dict[str, Any]:
        return {"modules": {"seg": self.net.state_dict()}, "optimizers": {"seg": self.opt.state_dict()}}

    def load_state_dict(self, payload: dict[str, Any]) -> None:
        self.net.load_state_dict(payload["modules"]["seg"])
        load_optimizer(self.opt, payload["optimizers"]["seg"], lr=self.cfg.train.seg_lr)

    def distribute(self, ctx: Context) -> None:
        if ctx.distributed and ctx.device.type == "cuda":
            self.net = nn.SyncBatchNorm.convert_sync_batchnorm(self.net)  # keeps the Parameter objects
        self.train_net = wrap_ddp(ctx, self.net, broadcast_buffers=ctx.device.type != "cuda")

    def step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        self.train_net.train()
        with autocast(self.ctx, self.cfg.train.precision):
            logits = self.train_net(batch["cryo"])
        loss = segmentation_loss(logits, batch["labels"], self.class_weights)
        accuracy = (logits.argmax(1) == batch["labels"]).float().mean()
        losses = reduce_and_check(self.ctx, {"ce": loss.detach(), "pixel_accuracy": accuracy}, step)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return losses

    @torch.no_grad()
    def draw(self, folder: Path, step: int) -> None:
        self.net.eval()
        cryo = self.preview["cryo"].to(self.ctx.device)
        predicted = self.net(cryo).argmax(1)
        lut = self.label_table.color_lut()
        save_png(sample_grid({"cryosection": cryo, "labels": label_colors(self.preview["labels"], lut),
                              "predicted": label_colors(predicted, lut)}), Path(folder) / f"step_{step:08d}.png")

    def export(self, folder: Path, step: int) -> Path:
        """``model.safetensors`` holding S alone, with its label table."""
        config = dataclasses.replace(self.cfg.preset.model, num_classes=self.label_table.num_classes)
        extra = {"step": step, "preset": self.cfg.preset.name, "image_size": self.cfg.train.image_size,
                 "class_weights": None if self.class_weights is None else list(self.class_weights)}
        return save_checkpoint(Path(folder) / CHECKPOINT_FILE, {"seg": self.net}, config,
                               label_table=self.label_table, extra=extra)


def balanced_class_weights(dataset: Dataset, num_classes: int, planes: int = 256, cap: float = 10.0,
                           batch_size: int = 32) -> tuple[float, ...]:
    """Median-frequency balancing over ``planes`` training planes spread evenly over the dataset
    (its planes come subject by subject, so the first ones would be one subject's): w_k = median
    f / f_k (capped at ``cap``; 1 for classes not seen). Without it, plain cross-entropy is
    dominated by background and the large tissues, and thin ones such as cortical bone are never
    predicted."""
    counts = torch.zeros(num_classes, dtype=torch.float64)
    spread = Subset(dataset, np.linspace(0, len(dataset) - 1, min(planes, len(dataset))).round().astype(int).tolist())
    for batch in DataLoader(spread, batch_size=batch_size, collate_fn=getattr(dataset, "collate", None)):
        counts += torch.bincount(batch["labels"].flatten(), minlength=num_classes)[:num_classes].double()
    present = counts > 0
    if not present.any():
        return (1.0,) * num_classes
    frequency = counts / counts.sum()
    weights = torch.ones(num_classes, dtype=torch.float64)
    weights[present] = (frequency[present].median() / frequency[present]).clamp(max=cap)
    return tuple(weights.tolist())


@dataclass
class DiceReport:
    """Per-class Dice over all test pixels; NaN where a class is in neither prediction nor truth."""

    label_table: LabelTable
    dice: np.ndarray
    support: np.ndarray

    @property
    def mean_foreground(self) -> float:
        """Mean over classes other than 0 (background) that occur in the truth."""
        present = [i for i in range(1, len(self.dice)) if self.support[i] > 0 and math.isfinite(self.dice[i])]
        return float(np.mean(self.dice[present])) if present else math.nan

    def rows(self) -> list[tuple[int, str, float, int]]:
        return [(i, self.label_table.name(i), float(self.dice[i]), int(self.support[i])) for i in range(len(self.dice))
                if i in self.label_table]

    def markdown(self) -> str:
        lines = ["| id | class | Dice | test pixels |", "| ---: | --- | ---: | ---: |"]
        lines += [f"| {i} | {name} | {'—' if math.isnan(d) else f'{d:.3f}'} | {n} |" for i, name, d, n in self.rows()]
        lines.append(f"\nMean Dice over foreground classes present: {self.mean_foreground:.3f}")
        return "\n".join(lines) + "\n"

    def csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["id", "class", "dice", "test_pixels"])
        writer.writerows([i, name, "" if math.isnan(d) else f"{d:.6f}", n] for i, name, d, n in self.rows())
        return buffer.getvalue()


@torch.no_grad()
def dice_per_class(net: nn.Module, dataset: Dataset, label_table: LabelTable, device: torch.device,
                   image_size: int | None = None, batch_size: int = 8, ctx: Context | None = None) -> DiceReport:
    """Dice of ``net``'s predictions on every plane of ``dataset`` (resized to ``image_size``, the
    size S trained at), per class, pooled over pixels; with ``ctx``, each rank counts every
    world-th batch and the counts are summed (no rank waits while another counts them all)."""
    k = label_table.num_classes
    counts = torch.zeros(3, k, dtype=torch.float64)            # intersection, predicted, actual
    rank, world = (ctx.rank, ctx.world_size) if ctx is not None else (0, 1)
    net.eval()
    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=getattr(dataset, "collate", None))
    for index, batch in enumerate(loader):
        if index % world != rank:
            continue
        if image_size is not None:
            batch = resize_batch(batch, image_size)
        pred = net(batch["cryo"].to(device)).argmax(1).cpu().flatten()
        true = batch["labels"].flatten()
        for row, values in enumerate((true[pred == true], pred, true)):
            counts[row] += torch.bincount(values, minlength=k)[:k].double()
    if ctx is not None:
        counts = sum(distributed.gather_objects(ctx, counts))
    intersection, predicted, actual = counts
    denominator = predicted + actual
    dice = torch.where(denominator > 0, 2 * intersection / denominator.clamp(min=1), torch.nan)
    return DiceReport(label_table, dice.numpy(), actual.numpy().astype(np.int64))


def train_segmentation(cfg: RunConfig, data: PlaneData, ctx: Context, out: str | Path, *,
                       resume: bool = False) -> tuple[SegmentationTask, FitResult, DiceReport | None]:
    """Pre-train S into ``out`` and write its per-class Dice on the test planes (rank 0)."""
    task = SegmentationTask(cfg, ctx, data)
    result = fit(task, data.train, ctx, cfg, out, resume=resume)
    report = None
    if len(data.test):
        report = dice_per_class(task.net, data.test, data.label_table, ctx.device, cfg.train.image_size, ctx=ctx)
        if ctx.is_main:
            write_text(Path(out) / "dice.md", report.markdown())
            write_text(Path(out) / "dice.csv", report.csv())
    distributed.barrier(ctx)
    return task, result, report if ctx.is_main else None
