"""Tests of ``core.dataset.plane_data`` on the synthetic planes of ``helpers_training``."""
from __future__ import annotations

import pytest
import torch

from core.dataset import PlaneDataset
from core.dataset.plane_data import first_planes, open_data, resize_batch
from helpers_training import LABELS, SyntheticPlanes, synthetic_data, write_dataset


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


def test_open_data_reads_a_prepared_folder_and_resizes(tmp_path):
    data = open_data(write_dataset(tmp_path / "ds"))
    assert len(data.train) == 8 and len(data.test) == 8 and data.label_table == LABELS and data.has_truth
    assert isinstance(data.train, PlaneDataset)
    batch = resize_batch(first_planes(data.test, 2), 16)
    assert batch["mri"].shape == (2, 1, 16, 16) and batch["labels"].dtype == torch.int64
    assert set(batch["labels"].unique().tolist()) <= {0, 1, 2, 3}


def test_augmentation_reaches_the_training_planes_only(tmp_path):
    """open_data(augment=...) mirrors and jitters the training planes; the test planes, on which
    every model is scored, are the same with and without it."""
    from core.dataset import Augment

    root = write_dataset(tmp_path / "ds")
    plain = open_data(root)
    mirror = Augment(flip_horizontal=1.0, rotate_deg=0.0, mri_gain=0.0, mri_gamma=0.0, mri_offset=0.0, mri_noise=0.0)
    flipped = open_data(root, augment=mirror)
    a, b = plain.train[0], flipped.train[0]
    assert torch.equal(b["labels"], a["labels"].flip(-1)) and not torch.equal(a["labels"], b["labels"])
    torch.testing.assert_close(b["cryo"], a["cryo"].flip(-1), atol=1e-5, rtol=0)
    jittered = open_data(root, augment=Augment(flip_horizontal=0.0, rotate_deg=0.0, mri_noise=0.05))
    c = jittered.train[0]
    assert torch.equal(c["labels"], a["labels"]) and not torch.allclose(c["mri"], a["mri"], atol=1e-3)
    for other in (flipped, jittered):
        for key in ("mri", "cryo", "labels", "truth"):
            assert torch.equal(other.test[1][key], plain.test[1][key])
