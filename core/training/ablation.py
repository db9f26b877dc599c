"""Ablations of the paper (Table II): the full model and A1–A5 trained with one preset and one
budget, then evaluated together on the same test planes beside the reference rows.

Every variant shares one pre-trained U-Net (``OUT/segmentation``), so differences in the table
come from the variant, not from a different S. Each variant is an ordinary colorization run in
``OUT/<variant>`` — resumable, with its own logs and samples.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

from core.model.checkpoint import CHECKPOINT_FILE
from core.model.config import ABLATIONS
from core.errors import InputError
from core.model.run_config import RunConfig
from core.training import distributed
from core.training.colorization import ensure_segmentation, require_file, train_colorization
from core.dataset.plane_data import PlaneData
from core.training.distributed import Context
from core.evaluation.evaluate import Table, evaluate_checkpoints
from core.metrics.table import MIN_SIZE as TABLE_MIN_SIZE

FULL = "full"
VARIANTS = (FULL, *ABLATIONS)
#: What each variant changes, for the table's caption.
DESCRIPTIONS = {FULL: "the full model", "A1": "no cycle loss", "A2": "no segmentation loss or network",
                "A3": "no segmentation, no c′ decoder (SSIM on m, ĉ)",
                "A4": "segmentation on the reconstructed cryosection", "A5": "plain 1×1 conv skips instead of SE"}


def parse_variants(text: str) -> list[str]:
    """``"full,A1,A3"`` → ["full", "A1", "A3"], refusing unknown or repeated names."""
    names = [v.strip() for v in text.split(",") if v.strip()]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown or not names or len(set(names)) != len(names):
        raise InputError("--variants", f"expected distinct names from {', '.join(VARIANTS)}, got {text!r}")
    return names


def run_ablation(configs: dict[str, RunConfig], data: PlaneData, ctx: Context, out: str | Path, *,
                 segmentation: str | Path | None = None, resume: bool = False,
                 planes: int | None = None) -> Table | None:
    """Train each variant of ``configs`` (variant → its resolved config) into ``out/<variant>`` and
    write ``out/ablation.md`` and ``out/ablation.csv``; returns the table on rank 0. Every rank
    scores its share of the test planes (rank 0 alone would keep the others waiting for hours)."""
    out = Path(out)
    small = sorted({c.train.image_size for c in configs.values() if c.train.image_size < TABLE_MIN_SIZE})
    if small:                                  # refused before hours of training end in an error
        raise InputError("--image-size", f"{small[0]} px is below the {TABLE_MIN_SIZE} px the table's metrics "
                                         f"need (the windows of STSIM and FSIM): give --image-size 64 or more; "
                                         f"nothing was trained")
    if segmentation is None and any(c.preset.model.segmentation != "none" for c in configs.values()):
        first = next(iter(configs.values()))
        segmentation = ensure_segmentation(first, data, ctx, out / "segmentation", resume=resume)
    for variant, cfg in configs.items():
        needs_seg = cfg.preset.model.segmentation != "none"
        train_colorization(cfg, data, ctx, out / variant, segmentation=segmentation if needs_seg else None,
                           resume=resume)
    image_size = next(iter(configs.values())).train.image_size
    for variant in configs:
        require_file(ctx, out / variant / CHECKPOINT_FILE)
    table = evaluate_checkpoints([out / v / CHECKPOINT_FILE for v in configs], data, names=list(configs),
                                 device=ctx.device, planes=planes, image_size=image_size,
                                 part=(ctx.rank, ctx.world_size), gather=partial(distributed.gather_objects, ctx))
    if ctx.is_main:
        caption = "; ".join(f"{v}: {DESCRIPTIONS[v]}" for v in configs)
        table.write(out, "ablation", title=f"Ablations ({caption})")
    distributed.barrier(ctx)
    return table if ctx.is_main else None
