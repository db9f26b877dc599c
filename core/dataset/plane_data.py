"""What the training loops need from a dataset, whatever produced it.

A plane dataset yields dicts of tensors: ``mri`` (1, H, W) and ``cryo`` (3, H, W) in [0, 1],
``labels`` (H, W) int64 class ids of the cryosection, and on phantom data ``truth`` (3, H, W), the
true colorization. A dataset may also offer ``__getitems__`` with a ``collate`` to pass whole
batches through (``core.dataset.PlaneDataset`` cuts a batch in a few calls) and ``set_epoch``
for its augmentation. ``PlaneData`` bundles the train and test splits with the label table;
``open_data`` opens a dataset folder written by ``mricolor prepare``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from core.labels import LabelTable

if TYPE_CHECKING:
    from core.dataset import Augment

IMAGE_KEYS = ("mri", "cryo", "truth")
LABEL_KEYS = ("labels", "mri_labels")


@dataclass
class PlaneData:
    """Train and test planes of one dataset, its label table, and where it came from."""

    train: Dataset
    test: Dataset
    label_table: LabelTable
    source: str = "dataset"
    #: Pixel size (mm) and width (pixels) of the prepared planes, when the dataset says: a
    #: network trained at another image size sees them at ``pixel_mm × plane_width / size``.
    pixel_mm: float | None = None
    plane_width: int | None = None

    def model_pixel_mm(self, image_size: int) -> float | None:
        """The pixel size a network trained on these planes resized to ``image_size`` learnt at."""
        if self.pixel_mm is None or self.plane_width is None:
            return None
        return self.pixel_mm * self.plane_width / image_size

    @property
    def has_truth(self) -> bool:
        return len(self.test) > 0 and "truth" in self.test[0]


#: Training needs the three images; the test planes also carry the truth and the MRI's own labels
#: (per-tissue colour error) where the dataset has them (phantom subjects).
TRAIN_FIELDS = ("mri", "cryo", "labels")
TEST_FIELDS = ("mri", "cryo", "labels", "truth", "mri_labels")


def open_data(path: str | os.PathLike, seed: int = 0, augment: "Augment | None" = None) -> PlaneData:
    """The train and test splits of a prepared dataset folder (or its ``dataset.json``);
    ``augment`` applies to the training planes only (the test planes are what every model is
    scored on)."""
    from core.dataset import Manifest, PlaneDataset

    manifest = Manifest.load(path)
    table = LabelTable.read(manifest.root / (manifest.label_table or "labels.csv"))

    def split(name: str, wanted: tuple[str, ...], augment: "Augment | None" = None) -> PlaneDataset:
        subjects = set(manifest.plane_subject[manifest.indices(name)].tolist())
        fields = tuple(f for f in wanted if all(f in manifest.subjects[s].volumes for s in subjects))
        return PlaneDataset(manifest, name, fields=fields, seed=seed, augment=augment)

    return PlaneData(split("train", TRAIN_FIELDS, augment), split("test", TEST_FIELDS), table,
                     source=str(manifest.root), pixel_mm=manifest.settings.pixel_mm,
                     plane_width=manifest.settings.width)


def resize_batch(batch: dict[str, torch.Tensor], size: int) -> dict[str, torch.Tensor]:
    """Planes brought to ``size``×``size`` when they differ (bilinear with antialiasing for images,
    nearest for labels), so one prepared dataset serves presets of any image size."""
    out = dict(batch)
    for key in IMAGE_KEYS:
        if key in out and out[key].shape[-2:] != (size, size):
            out[key] = F.interpolate(out[key].float(), size=(size, size), mode="bilinear", align_corners=False,
                                     antialias=True).clamp_(0.0, 1.0)
    for key in LABEL_KEYS:
        if key in out and out[key].shape[-2:] != (size, size):
            out[key] = F.interpolate(out[key][:, None].float(), size=(size, size), mode="nearest")[:, 0].long()
    return out


def first_planes(dataset: Dataset, count: int, size: int | None = None) -> dict[str, torch.Tensor]:
    """The first ``count`` items stacked into one batch (fixed planes for sample grids)."""
    items = [dataset[i] for i in range(min(count, len(dataset)))]
    if not items:
        raise ValueError("the dataset is empty")
    batch = {k: torch.stack([item[k] for item in items]) for k in items[0] if isinstance(items[0][k], torch.Tensor)}
    return resize_batch(batch, size) if size is not None else batch
