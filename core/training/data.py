"""What the training loops need from a dataset, whatever produced it.

A plane dataset yields dicts of tensors: ``mri`` (1, H, W) and ``cryo`` (3, H, W) in [0, 1],
``labels`` (H, W) int64 class ids of the cryosection, and on phantom data ``truth`` (3, H, W), the
true colorization. ``PlaneData`` bundles the train and test splits with the label table.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

from core.labels import LabelTable


@dataclass
class PlaneData:
    """Train and test planes of one dataset, its label table, and whether it knows the truth."""

    train: Dataset
    test: Dataset
    label_table: LabelTable
    source: str = "dataset"

    @property
    def has_truth(self) -> bool:
        return len(self.test) > 0 and "truth" in self.test[0]


def first_planes(dataset: Dataset, count: int) -> dict[str, torch.Tensor]:
    """The first ``count`` items stacked into one batch (fixed planes for sample grids)."""
    items = [dataset[i] for i in range(min(count, len(dataset)))]
    if not items:
        raise ValueError("the dataset is empty")
    return {k: torch.stack([item[k] for item in items]) for k in items[0]}
