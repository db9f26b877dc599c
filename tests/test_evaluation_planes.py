"""The plane evaluation scores planes as the product serves them."""
from __future__ import annotations

import torch

from core.evaluation.evaluate import served_planes
from core.inference import Colorizer


def test_served_planes_paint_the_background_outside_the_mri_labels_and_leave_unlabelled_planes_alone():
    colorizer = Colorizer.untrained("tiny", seed=0, device="cpu")
    g = torch.Generator().manual_seed(0)
    mri = torch.rand(2, 1, 32, 32, generator=g)
    labels = torch.zeros(2, 32, 32, dtype=torch.int64)
    labels[:, 8:24, 6:20] = 3
    served = served_planes(colorizer, {"mri": mri, "mri_labels": labels}, ["c_hat"])["c_hat"]
    raw = colorizer.colorize_planes(mri, outputs=["c_hat"])["c_hat"]
    outside = (labels == 0)
    background = colorizer.background.expand(int(outside.sum()), 3)
    assert torch.allclose(served.permute(0, 2, 3, 1)[outside], background)
    assert not torch.allclose(raw.permute(0, 2, 3, 1)[outside], background)  # the network paints the air itself
    assert (served.permute(0, 2, 3, 1)[~outside] - background[:1]).abs().amax() > 0.05  # the body is colorized
    unlabelled = served_planes(colorizer, {"mri": mri}, ["c_hat"])["c_hat"]
    assert torch.equal(unlabelled, raw)
