"""Writing a dataset's slices to disk as PNG images, for tools that read image folders.

The authors' layout: one folder per modality with matching file names,
``mri/<name>.png`` (8-bit grey), ``cryo/<name>.png`` (8-bit RGB), ``seg/<name>.png`` (label ids,
8-bit grey, or 16-bit when ids exceed 255), plus ``truth/<name>.png`` for phantom datasets.
``<name>`` is ``<split>_<subject>_<plane index, 5 digits>``, so train and test files never
collide and every image points back to its manifest plane. No augmentation is applied.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from core.atomic import atomic_path
from core.dataset.manifest import Manifest
from core.dataset.torch_dataset import PlaneDataset, SubjectBatchSampler

FOLDERS = {"mri": "mri", "cryo": "cryo", "labels": "seg", "truth": "truth"}


def slice_name(manifest: Manifest, index: int) -> str:
    """File name stem of manifest plane ``index``."""
    subject = manifest.subjects[int(manifest.plane_subject[index])].id
    return f"{manifest.plane_split[index]}_{subject}_{int(index):05d}"


def to_image(field: str, tensor: torch.Tensor) -> Image.Image:
    """A PIL image of one cut slice: (C, H, W) floats in [0, 1] or (H, W) label ids."""
    if field in ("labels", "mri_labels"):
        ids = tensor.numpy()
        return Image.fromarray(ids.astype(np.uint8) if ids.max(initial=0) < 256 else ids.astype(np.uint16))
    pixels = (tensor.clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()
    return Image.fromarray(pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0))


def materialise(root: str | os.PathLike, manifest: Manifest, batch_size: int = 32,
                progress: Callable[[int, int], None] | None = None) -> int:
    """Write every plane of ``manifest`` (both splits) under ``root``; returns the number of planes."""
    out = Path(root)
    total = 0
    fields = ("mri", "cryo", "labels") + (("truth",) if all("truth" in s.volumes for s in manifest.subjects) else ())
    for split in ("train", "test"):
        if not len(manifest.indices(split)):
            continue
        dataset = PlaneDataset(manifest, split, fields=fields)
        for batch_items in SubjectBatchSampler(dataset, batch_size, shuffle=False):
            batch = dataset.__getitems__(batch_items)
            for row, index in enumerate(batch["index"].tolist()):
                name = slice_name(manifest, index)
                for field in fields:
                    target = out / FOLDERS[field] / f"{name}.png"
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with atomic_path(target) as tmp:
                        to_image(field, batch[field][row]).save(tmp, format="PNG")
            total += len(batch_items)
            if progress:
                progress(total, len(manifest))
    return total
