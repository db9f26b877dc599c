"""A small synthetic plane dataset for the training tests, and tests of ``core.training.data``."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from core.labels import Label, LabelTable
from core.training.data import PlaneData, first_planes

#: background, muscle, fat, bone: MRI brightness (T1: fat bright, cortical bone as dark as air, so an
#: intensity lookup cannot tell them apart) and cryosection colour.
LABELS = LabelTable([Label(0, "background", "none", (0, 0, 0)), Label(1, "muscle", "muscular", (170, 60, 50)),
                     Label(2, "fat", "integumentary", (230, 200, 110)), Label(3, "bone", "skeletal", (235, 230, 215))])
MRI_LEVEL = np.array([0.0, 0.45, 0.9, 0.02], dtype=np.float32)
COLOUR = LABELS.color_lut().astype(np.float32) / 255.0


class SyntheticPlanes(Dataset):
    """Ellipses of three tissues; the MRI's gain varies by ±15 % from plane to plane, the
    cryosection is shifted by up to a pixel (misregistration), the truth is the tissue colour on
    the MRI's labels. ``nan_at`` poisons one plane's MRI."""

    def __init__(self, count: int, size: int = 32, seed: int = 0, nan_at: int | None = None):
        self.count, self.size, self.seed, self.nan_at = count, size, seed, nan_at

    def __len__(self) -> int:
        return self.count

    def labels(self, rng: np.random.Generator) -> np.ndarray:
        n = self.size
        y, x = np.mgrid[0:n, 0:n].astype(np.float32) / n - 0.5
        cy, cx = rng.uniform(-0.05, 0.05, 2)
        a, b = rng.uniform(0.3, 0.45, 2)
        body = ((y - cy) / a) ** 2 + ((x - cx) / b) ** 2 < 1
        fat = body & (((y - cy) / (0.8 * a)) ** 2 + ((x - cx) / (0.8 * b)) ** 2 > 1)
        by, bx = rng.uniform(-0.1, 0.1, 2)
        bone = ((y - by) ** 2 + (x - bx) ** 2) < rng.uniform(0.06, 0.12) ** 2
        return np.where(bone, 3, np.where(fat, 2, np.where(body, 1, 0))).astype(np.int64)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng(self.seed * 100_003 + i)
        labels = self.labels(rng)
        shifted = np.roll(labels, tuple(rng.integers(-1, 2, 2)), axis=(0, 1))
        gain = rng.uniform(0.85, 1.15)
        mri = np.clip(gain * MRI_LEVEL[labels] + 0.03 * rng.standard_normal(labels.shape), 0, 1).astype(np.float32)
        if i == self.nan_at:
            mri[0, 0] = np.nan
        cryo = np.clip(COLOUR[shifted] + 0.02 * rng.standard_normal((*labels.shape, 3)), 0, 1).astype(np.float32)
        return {"mri": torch.from_numpy(mri)[None], "cryo": torch.from_numpy(cryo).permute(2, 0, 1),
                "labels": torch.from_numpy(shifted), "truth": torch.from_numpy(COLOUR[labels]).permute(2, 0, 1)}


def synthetic_data(train: int = 16, test: int = 4, size: int = 32, nan_at: int | None = None) -> PlaneData:
    return PlaneData(SyntheticPlanes(train, size, seed=0, nan_at=nan_at), SyntheticPlanes(test, size, seed=1),
                     LABELS, source="synthetic")


def test_synthetic_planes_follow_the_interface():
    item = SyntheticPlanes(2, 32)[0]
    assert item["mri"].shape == (1, 32, 32) and item["mri"].dtype == torch.float32
    assert item["cryo"].shape == (3, 32, 32) and item["labels"].dtype == torch.int64
    assert set(item["labels"].unique().tolist()) <= {0, 1, 2, 3}


def test_first_planes_stacks_and_truth_is_detected():
    data = synthetic_data(4, 3)
    batch = first_planes(data.test, 2)
    assert batch["mri"].shape == (2, 1, 32, 32) and batch["truth"].shape == (2, 3, 32, 32)
    assert data.has_truth
    with pytest.raises(ValueError):
        first_planes(SyntheticPlanes(0), 2)
