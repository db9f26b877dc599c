"""What the training tests share: a small synthetic plane dataset (in memory or as a prepared
dataset folder) and the ``tiny`` run configuration the in-process runs train with."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from core.dataset import Manifest, PlaneSettings, SubjectEntry
from core.dataset.manifest import draw_planes, plane_arrays, subject_seed
from core.dataset.plane_data import PlaneData
from core.io import write_volume
from core.labels import Label, LabelTable
from core.model.run_config import RunConfig, resolve
from core.volume import Volume

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
                "labels": torch.from_numpy(shifted), "truth": torch.from_numpy(COLOUR[labels]).permute(2, 0, 1),
                "mri_labels": torch.from_numpy(labels)}


def write_dataset(root: Path, subjects: tuple[str, ...] = ("train", "test"), planes: int = 8, size: int = 32) -> Path:
    """A dataset folder as ``mricolor prepare`` lays it out, without registration: per subject a
    cylinder of the synthetic tissues (MRI, cryosection shifted a voxel, labels, truth) and
    ``planes`` random planes through it."""
    settings = PlaneSettings(width=size, height=size, pixel_mm=30.0 / size, min_foreground=0.3)
    entries, columns = [], []
    for i, split in enumerate(subjects):
        section = SyntheticPlanes(1, 40, seed=10 + i).labels(np.random.default_rng(i))
        labels = np.repeat(section[None], 40, axis=0).astype(np.int16)
        frame = Volume(np.zeros(labels.shape, np.float32), spacing=(1.0, 1.0, 1.0))
        volumes = {"mri": frame.with_array(MRI_LEVEL[labels]), "labels": frame.with_array(labels, LABELS),
                   "cryo": frame.with_array(LABELS.color_lut()[np.roll(labels, 1, axis=2)]),
                   "truth": frame.with_array(LABELS.color_lut()[labels])}
        paths = {}
        for kind, volume in volumes.items():
            paths[kind] = f"subjects/s{i}/{kind}.nii.gz"
            write_volume(volume, root / paths[kind])
        entries.append(SubjectEntry(f"s{i}", split, paths))
        drawn = draw_planes(volumes["cryo"], labels != 0, planes, subject_seed(0, i), settings)
        columns.append((np.full(planes, i), np.full(planes, split), *plane_arrays(drawn)))
    LABELS.write(root / "labels.csv")
    Manifest(root, 0, "subject", settings, entries, *(np.concatenate(c) for c in zip(*columns))).save()
    return root


def synthetic_data(train: int = 16, test: int = 4, size: int = 32, nan_at: int | None = None) -> PlaneData:
    return PlaneData(SyntheticPlanes(train, size, seed=0, nan_at=nan_at), SyntheticPlanes(test, size, seed=1),
                     LABELS, source="synthetic")


def tiny(**overrides) -> RunConfig:
    """The ``tiny`` preset at 32 px, batch 2, six steps checkpointed every three (train keys)."""
    base = {"image_size": 32, "batch_size": 2, "epochs": 50, "max_steps": 6, "checkpoint_every": 3, "sample_every": 100,
            "log_every": 1, "ema_decay": 0.9, "serve": "c_hat", "seg_max_steps": 2}
    return resolve("tiny", overrides={**base, **overrides})
