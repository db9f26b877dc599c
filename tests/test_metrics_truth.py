"""ΔE (CIEDE2000) and PSNR against the true colorization, overall and per tissue."""
import numpy as np
import pytest
import torch
from skimage.color import deltaE_ciede2000, rgb2lab

from core.errors import InputError
from core.metrics import delta_e, psnr
from helpers_metrics import golden_pair


def pair_and_labels(h=64):
    mri, cryo, col, _ = golden_pair(h)
    labels = np.digitize(mri, [0.3, 0.6]).astype(np.int32)  # three "tissues" by intensity
    return col, cryo, labels


def test_delta_e_is_mean_ciede2000_of_scikit_image():
    col, cryo, labels = pair_and_labels()
    per_pixel = deltaE_ciede2000(rgb2lab(col), rgb2lab(cryo))
    assert delta_e(col, cryo) == pytest.approx(per_pixel.mean(), rel=1e-9)
    per_label = delta_e(col, cryo, labels)
    assert sorted(per_label) == [0, 1, 2]
    for label_id, value in per_label.items():
        assert value == pytest.approx(per_pixel[labels == label_id].mean(), rel=1e-9)


def test_delta_e_of_known_colours():
    black, white = np.zeros((4, 4, 3)), np.ones((4, 4, 3))
    assert delta_e(white, white) == 0.0
    assert delta_e(black, white) == pytest.approx(100.0, abs=1e-3)  # L* 0 → 100, no chroma


def test_psnr_closed_form_and_per_label():
    col, cryo, labels = pair_and_labels()
    mse = ((col - cryo) ** 2).mean()
    assert psnr(col, cryo) == pytest.approx(10 * np.log10(1 / mse), rel=1e-12)
    for label_id, value in psnr(col, cryo, labels).items():
        mask = labels == label_id
        assert value == pytest.approx(10 * np.log10(1 / ((col[mask] - cryo[mask]) ** 2).mean()), rel=1e-12)
    assert psnr(col, col) == float("inf")
    assert psnr(np.zeros((4, 4, 3)), np.full((4, 4, 3), 0.1)) == pytest.approx(20.0)


def test_batches_mark_absent_labels_with_nan():
    col, cryo, labels = pair_and_labels()
    x = torch.from_numpy(np.stack([col, col]).transpose(0, 3, 1, 2))
    y = torch.from_numpy(np.stack([cryo, cryo]).transpose(0, 3, 1, 2))
    maps = np.stack([labels, np.zeros_like(labels)])
    overall = delta_e(x, y)
    assert overall.shape == (2,) and overall[0].item() == pytest.approx(delta_e(col, cryo))
    per_label = psnr(x, y, torch.from_numpy(maps))
    assert per_label[1][0].item() == pytest.approx(psnr(col, cryo, labels)[1])
    assert np.isnan(per_label[1][1].item()) and np.isnan(per_label[2][1].item())
    assert per_label[0][1].item() == pytest.approx(psnr(col, cryo))


def test_bad_input():
    col, cryo, labels = pair_and_labels()
    with pytest.raises(InputError, match="RGB"):
        delta_e(col[..., 0], cryo[..., 0])
    with pytest.raises(InputError, match="integers"):
        delta_e(col, cryo, labels.astype(float))
    with pytest.raises(InputError, match="does not match"):
        psnr(col, cryo, labels[:10])
    with pytest.raises(InputError, match="shapes differ"):
        psnr(col, cryo[:10])
