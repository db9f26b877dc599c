"""STSIM: the pyramid against pyrtools, the metric against a literal transcription of the reference
code and against the properties docs/metrics.md lists for STSIM (no maintained STSIM package exists)."""
import warnings

import numpy as np
import pyrtools as pt
import pytest
import torch

from core.errors import InputError
from core.metrics import ssim, steerable_pyramid, stsim
from helpers_metrics import LUMA, golden_pair, ref_stsim, ref_undecimated_bands, texture


def pyrtools_pyramid(img):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "reconstruction will not be perfect with odd-sized images"
        return pt.pyramids.SteerablePyramidFreq(img, height=3, order=3, is_complex=True).pyr_coeffs


@pytest.mark.parametrize("shape", [(256, 256), (128, 128), (64, 64), (65, 71)])
def test_pyramid_matches_pyrtools(shape):
    img = np.random.default_rng(0).random(shape)
    expected = pyrtools_pyramid(img)
    mine = steerable_pyramid(torch.from_numpy(img)[None, None])
    single = steerable_pyramid(torch.from_numpy(img).float()[None, None])
    assert len(expected) == 14
    for key, band in expected.items():
        assert mine[key].shape[1:] == band.shape
        np.testing.assert_allclose(mine[key][0].numpy(), band, rtol=0, atol=1e-10)
        np.testing.assert_allclose(single[key][0].numpy(), band, rtol=0, atol=1e-5)


def test_undecimated_bands_match_the_reference_construction():
    img = golden_pair(64)[0]
    mine = steerable_pyramid(torch.from_numpy(img)[None, None], undecimated=True)
    for key, band in ref_undecimated_bands(img).items():
        np.testing.assert_allclose(mine[("undecimated", *key)][0].numpy(), band, rtol=0, atol=1e-10)


@pytest.mark.parametrize("h", [128, 64])
def test_matches_literal_transcription_of_the_reference_code(h):
    _, cryo, col, y = golden_pair(h)
    for version in (1, 2):
        assert stsim(col, cryo, version) == pytest.approx(ref_stsim(y, cryo @ LUMA, version), abs=1e-9)
    assert stsim(col.astype(np.float32), cryo.astype(np.float32)) == pytest.approx(ref_stsim(y, cryo @ LUMA), abs=1e-5)


def test_black_background_gives_no_nan_and_matches_reference():
    rng = np.random.default_rng(3)
    a, b = np.zeros((64, 64)), np.zeros((64, 64))
    a[16:48, 16:48], b[20:50, 10:40] = rng.random((32, 32)), rng.random((30, 30))
    for version in (1, 2):
        value = stsim(a, b, version)
        assert np.isfinite(value)
        assert value == pytest.approx(ref_stsim(a, b, version), abs=1e-9)
    assert stsim(np.zeros((64, 64)), np.zeros((64, 64))) == pytest.approx(1.0)


@pytest.mark.parametrize("h", [256, 128, 64])
def test_identity_symmetry_and_range(h):
    _, cryo, col, _ = (img.astype(np.float32) for img in golden_pair(h))
    assert stsim(col, col) == pytest.approx(1.0, abs=1e-6)
    assert stsim(col, col, version=1) == pytest.approx(1.0, abs=1e-6)
    forward, backward = stsim(col, cryo), stsim(cryo, col)
    assert forward == pytest.approx(backward, abs=1e-12)
    assert 0.0 <= forward <= 1.0


def test_more_tolerant_than_ssim_of_small_shifts():
    x = golden_pair(256)[0]
    shifted = np.roll(x, 5, axis=1)
    assert 1 - stsim(x, shifted) < 0.5 * (1 - ssim(x, shifted))
    assert 1 - stsim(x, shifted, version=1) < 0.5 * (1 - ssim(x, shifted))


@pytest.mark.parametrize("h", [128, 64])
def test_lower_for_unrelated_textures(h):
    a, same_texture = texture(h, kind=1, instance=0), texture(h, kind=1, instance=1)
    assert ssim(a, same_texture) < 0.1  # pixel-wise, another instance of a texture is unrelated ...
    for version in (1, 2):  # ... but not texture-wise
        close = stsim(a, same_texture, version)
        for other in (texture(h, kind=2, instance=0), texture(h, kind=3, instance=0)):
            assert stsim(a, other, version) < close - 0.1


def test_decreases_with_noise():
    x = golden_pair(128)[0]
    rng = np.random.default_rng(0)
    values = [stsim(x, np.clip(x + s * rng.standard_normal(x.shape), 0, 1)) for s in (0.01, 0.03, 0.1, 0.3)]
    assert all(a > b for a, b in zip(values, values[1:]))


def test_batches_and_rgb():
    _, cryo, col, y = golden_pair(64)
    x = torch.from_numpy(np.stack([col, cryo]).transpose(0, 3, 1, 2)).float()
    r = torch.from_numpy(np.stack([cryo, cryo]).transpose(0, 3, 1, 2)).float()
    values = stsim(x, r)
    assert values.shape == (2,)
    assert values[0].item() == pytest.approx(stsim(y, cryo @ LUMA), abs=1e-5)  # RGB pairs compare luma
    assert values[1].item() == pytest.approx(1.0, abs=1e-6)


def test_bad_arguments():
    with pytest.raises(InputError, match="at least 49"):
        stsim(np.zeros((48, 64)), np.zeros((48, 64)))
    stsim(np.zeros((49, 49)), np.zeros((49, 49)))
    with pytest.raises(InputError, match="version"):
        stsim(np.zeros((64, 64)), np.zeros((64, 64)), version=3)
    with pytest.raises(InputError, match=r"\(N, 1, H, W\)"):
        steerable_pyramid(torch.zeros(1, 3, 64, 64))
    with pytest.raises(InputError, match="at least 32"):
        steerable_pyramid(torch.zeros(1, 1, 31, 64))
