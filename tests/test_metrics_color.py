"""CF and ΔCF against hand-computed values and DDColor's uint8 figures (docs/metrics.md: CF and ΔCF)."""
import numpy as np
import pytest
import torch

from core.errors import InputError
from core.metrics import colorfulness, delta_colorfulness, luma
from helpers_metrics import LUMA, golden_pair


def halves(left, right, h=8, w=8):
    img = np.zeros((h, w, 3))
    img[:, : w // 2] = left
    img[:, w // 2:] = right
    return img


def test_grey_image_has_zero_colourfulness():
    grey = np.repeat(np.linspace(0, 1, 64).reshape(8, 8, 1), 3, axis=2)
    assert colorfulness(grey) == 0.0


def test_half_red_half_blue_by_hand():
    # rg = [1, 0]: mean 1/2, std 1/2; yb = [1/2, -1]: mean -1/4, std 3/4
    expected = np.sqrt(0.25 + 0.5625) + 0.3 * np.sqrt(0.25 + 0.0625)
    img = halves((1, 0, 0), (0, 0, 1))
    assert colorfulness(img) == pytest.approx(expected, abs=1e-12)
    assert colorfulness(img) == pytest.approx(1.0691, abs=1e-4)
    # |rg| = [1, 0]; |yb| = [1/2, 1]: mean 3/4, std 1/4
    assert colorfulness(img, variant="abs") == pytest.approx(np.sqrt(0.25 + 0.0625) + 0.3 * np.sqrt(0.25 + 0.5625))
    assert colorfulness(img, variant="abs") == pytest.approx(0.8294, abs=1e-4)


def test_channel_order_is_rgb():
    # red/green: rg = [1, -1] (std 1, mean 0), yb = [1/2, 1/2] (std 0, mean 1/2) → 1 + 0.3·0.5
    assert colorfulness(halves((1, 0, 0), (0, 1, 0))) == pytest.approx(1.15)
    # the same image with R and B swapped (blue/green) is a different colour distribution
    assert colorfulness(halves((0, 0, 1), (0, 1, 0))) == pytest.approx(1.0691, abs=1e-4)


def test_linear_in_intensity_and_scale():
    _, cryo, _, _ = golden_pair(64)
    cf = colorfulness(cryo)
    assert colorfulness(0.5 * cryo) == pytest.approx(0.5 * cf)
    assert colorfulness(cryo, scale=255) == pytest.approx(255 * cf)


@pytest.mark.parametrize("h, cf_cryo, cf_col", [(256, 0.2551, 0.2380), (128, 0.2471, 0.2296), (64, 0.2550, 0.2356)])
def test_golden_values_on_the_unit_scale(h, cf_cryo, cf_col):
    _, cryo, col, _ = golden_pair(h)
    assert colorfulness(cryo) == pytest.approx(cf_cryo, abs=5e-5)
    assert colorfulness(col) == pytest.approx(cf_col, abs=5e-5)


@pytest.mark.parametrize("h, cf_cryo, cf_col, dcf", [(256, 56.626, 55.957, 0.668), (128, 54.486, 53.731, 0.755),
                                                     (64, 56.525, 55.348, 1.176)])
def test_ddcolor_parity_on_uint8(h, cf_cryo, cf_col, dcf):
    """DDColor's calculate_cf: absolute values, on uint8 images (the CF_DDColor and ΔCF columns of the
    golden values in docs/metrics.md)."""
    _, cryo, col, _ = golden_pair(h)
    cryo8, col8 = np.round(cryo * 255) / 255, np.round(col * 255) / 255
    assert colorfulness(cryo8, variant="abs", scale=255) == pytest.approx(cf_cryo, abs=5e-4)
    assert colorfulness(col8, variant="abs", scale=255) == pytest.approx(cf_col, abs=5e-4)
    assert delta_colorfulness(cryo8, col8, variant="abs", scale=255) == pytest.approx(dcf, abs=1e-3)


def test_delta_is_signed_cf_difference():
    _, cryo, col, _ = golden_pair(64)
    d = delta_colorfulness(cryo, col)
    assert d == pytest.approx(colorfulness(cryo) - colorfulness(col))
    assert delta_colorfulness(col, cryo) == pytest.approx(-d)


def test_batches_give_one_value_per_image():
    _, cryo, col, _ = golden_pair(64)
    batch = torch.from_numpy(np.stack([cryo, col]).transpose(0, 3, 1, 2)).float()
    values = colorfulness(batch)
    assert values.shape == (2,)
    a, b = values.tolist()
    assert [a, b] == pytest.approx([colorfulness(cryo), colorfulness(col)], abs=1e-6)
    assert delta_colorfulness(batch, batch.flip(0)).tolist() == pytest.approx([a - b, b - a], abs=1e-6)


def test_luma_is_bt601():
    _, _, col, y = golden_pair(64)
    np.testing.assert_allclose(luma(col), col @ LUMA)
    batch = torch.from_numpy(col.transpose(2, 0, 1))[None]
    np.testing.assert_allclose(luma(batch)[0, 0].numpy(), y)


def test_bad_input():
    with pytest.raises(InputError, match="RGB"):
        colorfulness(np.zeros((8, 8)))
    with pytest.raises(InputError, match="variant"):
        colorfulness(np.zeros((8, 8, 3)), variant="bogus")
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        colorfulness(np.full((8, 8, 3), 200.0))
