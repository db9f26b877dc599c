"""Colorization training: G_m→ĉ, G_c→m̂, D_c and D_m against the frozen U-Net (docs/training.md).

One step, as in CycleGAN:

1. G step — switch the discriminators' gradients off, compute the full objective
   (adversarial + cycle + SSIM + segmentation [+ L1(c', c)]) through the DDP-wrapped networks
   and back-propagate it (per micro-batch with ``train.micro_batch``, gradients added up), average
   the loss values over the ranks and stop if any is not finite, step.
2. D step — switch them back on, score real against the (detached) fakes, back-propagate, check, step.
3. Update the EMA of G_m→ĉ.

After training, the served output is chosen on test planes every rank scores a share of, and
every rank checks it can read the files rank 0 wrote (``--out`` must be shared between nodes).

Each trainable network has its own DDP wrapper (gradients are all-reduced during backward);
S is a plain module in eval mode without gradients on every rank, loaded from the pre-trained
checkpoint. The exported ``model.safetensors`` (core.model.checkpoint's format) is what
``Colorizer.from_checkpoint`` loads.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import sys
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.model.checkpoint import CHECKPOINT_FILE, load_checkpoint, save_checkpoint
from core.errors import InputError
from core.model.losses import discriminator_objective, generator_objective
from core.model.networks import Networks, build_networks
from core.model.outputs import OUTPUTS
from core.model.run_config import RunConfig
from core.training import distributed, memory
from core.dataset.plane_data import PlaneData, first_planes
from core.training.distributed import Context
from core.training.ema import EMA
from core.training.loop import FitResult, fit
from core.training.task import Task, autocast, load_optimizer, reduce_and_check, wrap_ddp
from core.training.samples import label_colors, sample_grid, save_png
from core.training.segmentation import balanced_class_weights


TRAINED = ("g_mc", "g_cm", "d_c", "d_m")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_segmentation(nets: Networks, path: str | Path, num_classes: int) -> dict[str, str]:
    """Put the pre-trained U-Net from ``path`` into ``nets`` and freeze it; returns its record."""
    ckpt = load_checkpoint(path)
    if (ckpt.config.unet_widths, ckpt.config.upsample) != (nets.config.unet_widths, nets.config.upsample):
        raise InputError(ckpt.path, "this U-Net was pre-trained with another architecture than the preset's "
                                    "(unet_widths, upsample): pre-train it with the same preset")
    seg = ckpt.build("seg")
    if seg.num_classes != num_classes:
        raise InputError(ckpt.path, f"U-Net predicts {seg.num_classes} classes, the data has {num_classes}")
    nets.seg = seg
    nets.freeze_segmentation()
    return {"path": str(ckpt.path), "sha256": _sha256(ckpt.path)}


def set_requires_grad(modules: list[nn.Module], flag: bool) -> None:
    for module in modules:
        module.requires_grad_(flag)


def micro_batches(batch: dict[str, torch.Tensor], size: int | None) -> list[tuple[bool, dict[str, torch.Tensor]]]:
    """(is the last, part) of ``batch`` in parts of ``size`` planes (None: the batch whole)."""
    n = len(batch["mri"])
    starts = range(0, n, size or n)
    return [(start == starts[-1], {k: v[start:start + (size or n)] for k, v in batch.items()}) for start in starts]


def no_sync_unless(last: bool, *modules: nn.Module) -> contextlib.ExitStack:
    """DDP's ``no_sync`` on ``modules`` for every micro-batch but the last: gradients are added up
    locally and all-reduced once, in the last backward."""
    stack = contextlib.ExitStack()
    if not last:
        for module in modules:
            if hasattr(module, "no_sync"):
                stack.enter_context(module.no_sync())
    return stack


def mean_parts(parts: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The micro-batches' loss components averaged (equal sizes: the batch's own mean)."""
    return {k: torch.stack([p[k] for p in parts]).mean() for k in parts[0]}


def tissue_l1_weights(cfg: RunConfig, data: PlaneData, ctx: Context) -> torch.Tensor | None:
    """The per-tissue weights of L1(c', c) that ``loss.l1_balance`` asks for (None when 0):
    median-frequency weights of the training planes' labels to the power p, printed once so the
    run's log says what the loss weighed."""
    power = cfg.preset.loss.l1_balance
    if power == 0 or cfg.preset.loss.lambda_l1_c_prime == 0:
        return None
    weights = torch.tensor(balanced_class_weights(data.train, data.label_table.num_classes)) ** power
    if ctx.is_main:
        shown = ", ".join(f"{data.label_table.name(k)} {w:.2f}" for k, w in enumerate(weights.tolist()))
        print(f"L1(c', c) weighted per tissue (loss.l1_balance={power:g}): {shown}", file=sys.stderr)
    return weights.float().to(ctx.device)


class ColorizationTask(Task):
    """The GAN of the paper with one optimiser for both generators and one for both discriminators."""

    kind = "colorization"

    def __init__(self, cfg: RunConfig, ctx: Context, data: PlaneData, segmentation: str | Path | None):
        self.cfg, self.ctx, self.label_table = cfg, ctx, data.label_table
        self.pixel_mm = data.model_pixel_mm(cfg.train.image_size)
        model, optim = cfg.preset.model, cfg.preset.optim
        self.nets = build_networks(model, num_classes=data.label_table.num_classes, seed=cfg.train.seed)
        self.segmentation: dict[str, str] = {}
        if self.nets.seg is not None:
            if segmentation is None:
                raise InputError("--segmentation", "this configuration needs a pre-trained U-Net checkpoint")
            self.segmentation = load_segmentation(self.nets, segmentation, data.label_table.num_classes)
        self.nets.to(ctx.device)
        self.train_nets = self.nets
        self.opt_g = torch.optim.Adam(self.nets.generator_parameters(), lr=optim.lr_g, betas=optim.betas)
        self.opt_d = torch.optim.Adam(self.nets.discriminator_parameters(), lr=optim.lr_d, betas=optim.betas)
        self.ema = EMA(self.nets.g_mc, cfg.train.ema_decay) if cfg.train.ema_decay > 0 else None
        self.l1_weights = tissue_l1_weights(cfg, data, ctx)
        self.preview = first_planes(data.test, cfg.train.sample_count, cfg.train.image_size) if ctx.is_main else None

    @property
    def description(self) -> str:
        return f"colorization {self.cfg.ablation or self.cfg.preset.name}"

    # --- state ---------------------------------------------------------------------------------
    def modules(self) -> dict[str, nn.Module]:
        return {name: getattr(self.nets, name) for name in TRAINED}

    def state_dict(self) -> dict[str, Any]:
        return {"modules": {name: m.state_dict() for name, m in self.modules().items()},
                "optimizers": {"g": self.opt_g.state_dict(), "d": self.opt_d.state_dict()},
                "ema": self.ema.state_dict() if self.ema else None,
                "segmentation": self.segmentation}

    def load_state_dict(self, payload: dict[str, Any]) -> None:
        for name, module in self.modules().items():
            module.load_state_dict(payload["modules"][name])
        optim = self.cfg.preset.optim
        load_optimizer(self.opt_g, payload["optimizers"]["g"], lr=optim.lr_g, betas=optim.betas)
        load_optimizer(self.opt_d, payload["optimizers"]["d"], lr=optim.lr_d, betas=optim.betas)
        if self.ema is not None and payload.get("ema") is not None:
            self.ema.load_state_dict(payload["ema"])

    def distribute(self, ctx: Context) -> None:
        self.train_nets = dataclasses.replace(self.nets, **{name: wrap_ddp(ctx, getattr(self.nets, name))
                                                            for name in TRAINED})

    # --- one step ------------------------------------------------------------------------------
    def step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        """Generators then discriminators, each accumulating the gradients of the batch's
        micro-batches (``train.micro_batch``; DDP all-reduces on the last one only); the losses
        are checked on every rank before either optimiser steps."""
        nets, loss_cfg, precision = self.train_nets, self.cfg.preset.loss, self.cfg.train.precision
        chunks = micro_batches(batch, self.cfg.train.micro_batch)
        self.set_rates(step)

        set_requires_grad([nets.d_c, nets.d_m], False)
        self.opt_g.zero_grad(set_to_none=True)
        parts, fakes = [], []
        for last, chunk in chunks:
            with no_sync_unless(last, nets.g_mc, nets.g_cm):
                with autocast(self.ctx, precision):
                    g = generator_objective(nets, chunk["mri"], chunk["cryo"], chunk["labels"], loss_cfg,
                                            self.l1_weights)
                (g.total / len(chunks)).backward()
            parts.append(g.parts)
            fakes.append(g.fakes)
        losses = reduce_and_check(self.ctx, mean_parts(parts), step)
        self.opt_g.step()

        set_requires_grad([nets.d_c, nets.d_m], True)
        self.opt_d.zero_grad(set_to_none=True)
        parts = []
        for (last, chunk), fake in zip(chunks, fakes):
            with no_sync_unless(last, nets.d_c, nets.d_m):
                with autocast(self.ctx, precision):
                    d = discriminator_objective(nets, chunk["mri"], chunk["cryo"], fake, loss_cfg)
                (d.total / len(chunks)).backward()
            parts.append(d.parts)
        losses.update(reduce_and_check(self.ctx, mean_parts(parts), step))
        self.opt_d.step()

        if self.ema is not None:
            self.ema.update(self.nets.g_mc)
        return losses

    def set_rates(self, step: int) -> None:
        """Both optimisers' learning rates for step ``step`` (``optim.decay_steps``)."""
        optim = self.cfg.preset.optim
        factor = optim.rate_factor(step)
        for optimizer, rate in ((self.opt_g, optim.lr_g), (self.opt_d, optim.lr_d)):
            for group in optimizer.param_groups:
                group["lr"] = rate * factor

    # --- outputs -------------------------------------------------------------------------------
    @property
    def generator(self) -> nn.Module:
        """The G_m→ĉ to show and export: the EMA copy when enabled."""
        return self.ema.module if self.ema is not None else self.nets.g_mc

    @torch.no_grad()
    def draw(self, folder: Path, step: int) -> None:
        batch = {k: v.to(self.ctx.device) for k, v in self.preview.items()}
        with autocast(self.ctx, self.cfg.train.precision):
            out = self.generator(batch["mri"])
        columns = {"MRI": batch["mri"], "c_hat": out["c_hat"].float()}
        if "c_prime" in out:
            columns["c_prime"] = out["c_prime"].float()
        columns["cryosection"] = batch["cryo"]
        columns["labels"] = label_colors(batch["labels"], self.label_table.color_lut())
        if "truth" in batch:
            columns["truth"] = batch["truth"]
        save_png(sample_grid(columns), Path(folder) / f"step_{step:08d}.png")

    def export(self, folder: Path, step: int, serve: str | None = None) -> Path:
        """``model.safetensors`` in ``folder``: the networks (G_m→ĉ from the EMA when enabled),
        the architecture, the label table and the served output."""
        config = self.nets.config
        if serve is None:
            chosen = self.cfg.train.serve
            serve = "c_hat" if chosen == "auto" or not config.dual_decoder else chosen
        modules = {**self.modules(), "g_mc": self.generator}
        if self.nets.seg is not None:
            modules["seg"] = self.nets.seg
        extra = {"step": step, "preset": self.cfg.preset.name, "ablation": self.cfg.ablation,
                 "ema_decay": self.cfg.train.ema_decay, "image_size": self.cfg.train.image_size,
                 "segmentation": self.segmentation}
        if self.pixel_mm is not None:  # how the Colorizer must resample a user's planes for this network
            extra["pixel_mm"] = self.pixel_mm
        return save_checkpoint(Path(folder) / CHECKPOINT_FILE, modules, config, serve=serve,
                               label_table=self.label_table, extra=extra)


def ensure_segmentation(cfg: RunConfig, data: PlaneData, ctx: Context, folder: str | Path, *,
                        resume: bool = False) -> Path:
    """The U-Net checkpoint in ``folder``, pre-trained there first when it is missing.

    Rank 0 decides (every rank must take part in the pre-training or none), and every rank then
    checks it can read the file rank 0 wrote: ``--out`` must be storage every node shares."""
    from core.training.segmentation import train_segmentation

    path = Path(folder) / CHECKPOINT_FILE
    if distributed.broadcast_object(ctx, not path.is_file()):
        train_segmentation(cfg, data, ctx, folder, resume=resume)
    require_file(ctx, path)
    return path


def require_file(ctx: Context, path: str | Path) -> None:
    """Stop every rank with one message when any rank cannot see ``path``."""
    distributed.agree(ctx, Path(path).is_file(), str(path), "is missing{where}: with several nodes, --out (and "
                                                            "any checkpoint given) must be storage every node shares")


def _choose_serve(cfg: RunConfig, data: PlaneData, ctx: Context, export: Path) -> tuple[str, dict[str, float], str]:
    """The output to serve, its scores and where they were measured: whole volumes of the
    validation seeds ``train.serve_volumes`` (rank 0, then shared), else the test planes."""
    from core.evaluation.evaluate import choose_serve

    if cfg.train.serve_volumes:
        from core.dataset.build import parse_ids
        from core.evaluation.volumes import choose_serve_on_volumes

        seeds = parse_ids(cfg.train.serve_volumes, "train.serve_volumes")
        chosen = (choose_serve_on_volumes(export, seeds, cfg.train.serve_scans, ctx.device) if ctx.is_main else None)
        serve, scores = distributed.broadcast_object(ctx, chosen)
        return serve, scores, f"whole volumes of validation subjects {cfg.train.serve_volumes}"
    serve, scores = choose_serve(export, data, device=ctx.device, planes=cfg.train.eval_planes,
                                 image_size=cfg.train.image_size, part=(ctx.rank, ctx.world_size),
                                 gather=partial(distributed.gather_objects, ctx))
    return serve, scores, "test planes"


def train_colorization(cfg: RunConfig, data: PlaneData, ctx: Context, out: str | Path, *,
                       segmentation: str | Path | None = None, resume: bool = False,
                       init_from: str | Path | None = None) -> tuple[ColorizationTask, FitResult]:
    """Train the colorization GAN into ``out`` and export ``out/model.safetensors``
    (``init_from``: start from another run's state, see `core.training.checkpointer`).

    ``segmentation`` is the pre-trained U-Net's checkpoint; None pre-trains one into
    ``out/segmentation`` (unless the ablation has no S). With ``serve`` "auto" the export
    declares the output with the lowest ΔE on the test planes (phantom data), else ĉ.
    """
    out = Path(out)
    if segmentation is None and cfg.preset.model.segmentation != "none":
        segmentation = ensure_segmentation(cfg, data, ctx, out / "segmentation", resume=resume)
    if segmentation is not None:
        require_file(ctx, segmentation)
    task = ColorizationTask(cfg, ctx, data, segmentation)
    memory.check_fits(task.nets, cfg, ctx, lambda line: print(line, file=sys.stderr))
    result = fit(task, data.train, ctx, cfg, out, resume=resume, init_from=init_from)
    export = distributed.broadcast_object(ctx, result.export)
    if cfg.train.serve == "auto" and export is not None:
        require_file(ctx, export)
        serve, scores, where = _choose_serve(cfg, data, ctx, export)
        if ctx.is_main:
            task.export(out, result.step, serve=serve)
        if ctx.is_main and scores:
            shown = ", ".join(f"{OUTPUTS[k].label} {v:.2f}" for k, v in scores.items())
            print(f"serving {OUTPUTS[serve].label} (mean ΔE to the true colorization on {where}: {shown})",
                  file=sys.stderr)
    distributed.barrier(ctx)
    return task, result
