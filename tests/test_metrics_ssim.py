"""SSIM against scikit-image, MS-SSIM against pytorch_msssim and the golden values (docs/metrics.md)."""
import numpy as np
import pytest
import pytorch_msssim
import torch
from skimage.metrics import structural_similarity

from core.metrics import ms_ssim, ms_ssim_scales, ssim
from helpers_metrics import GOLDEN, golden_pair, ref_ms_ssim


def skimage_ssim(a, b, **kw):
    return structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                 data_range=1.0, **kw)


def nchw(*images):
    return torch.from_numpy(np.stack([i if i.ndim == 3 else i[..., None] for i in images]).transpose(0, 3, 1, 2))


@pytest.mark.parametrize("h", [256, 128, 64])
def test_ssim_matches_scikit_image(h):
    mri, _, col, y = golden_pair(h)
    expected = skimage_ssim(mri, y)
    assert expected == pytest.approx(GOLDEN[h][0], abs=1e-6)
    assert ssim(mri, col) == pytest.approx(expected, abs=1e-6)  # RGB side reduced to BT.601 luma
    assert ssim(mri.astype(np.float32), col.astype(np.float32)) == pytest.approx(expected, abs=1e-5)


def test_ssim_rgb_pair_and_odd_size_match_scikit_image():
    _, cryo, col, _ = golden_pair(128)
    cryo, col = cryo[:101, :77], col[:101, :77]
    assert ssim(col, cryo) == pytest.approx(skimage_ssim(col, cryo, channel_axis=-1), abs=1e-6)


def test_ssim_matches_pytorch_msssim_on_batches():
    a = [golden_pair(h)[0][:64, :64] for h in (256, 128, 64)]
    b = [golden_pair(h)[3][:64, :64] for h in (256, 128, 64)]
    x, y = nchw(*a).float(), nchw(*b).float()
    expected = pytorch_msssim.ssim(x, y, data_range=1.0, size_average=False)
    np.testing.assert_allclose(ssim(x, y).numpy(), expected.numpy(), atol=1e-5)


@pytest.mark.parametrize("h, levels", [(256, 5), (128, 4), (64, 3)])
def test_ms_ssim_scales_and_golden_values(h, levels):
    mri, _, col, y = golden_pair(h)
    assert ms_ssim_scales(h, h) == levels
    assert ms_ssim(mri, col) == pytest.approx(GOLDEN[h][1], abs=1e-6)
    assert ms_ssim(mri, col) == pytest.approx(ref_ms_ssim(mri, y), abs=1e-9)


def test_ms_ssim_matches_pytorch_msssim_at_256():
    pairs = [golden_pair(256)[0::3], (golden_pair(256)[0], golden_pair(256)[0] ** 2)]
    x, y = nchw(*(p[0] for p in pairs)), nchw(*(p[1] for p in pairs))
    expected = pytorch_msssim.ms_ssim(x, y, data_range=1.0, size_average=False)
    np.testing.assert_allclose(ms_ssim(x, y).numpy(), expected.numpy(), atol=1e-6)
    np.testing.assert_allclose(ms_ssim(x.float(), y.float()).numpy(), expected.numpy(), atol=1e-5)


# piq.multi_scale_ssim(mri, luma) on crops (rows, cols) of golden_pair(256), scale_weights=w[:L] for
# L < 5 and piq's defaults for L = 5; odd sides are replicate-padded at the top/left before pooling
PIQ_ODD_CROPS = {(0, 101, 0, 77): (3, 0.8067695830282297), (3, 200, 5, 170): (5, 0.809592697206067)}


@pytest.mark.parametrize("crop", list(PIQ_ODD_CROPS))
def test_ms_ssim_matches_piq_on_odd_sizes(crop):
    mri, _, col, _ = golden_pair(256)
    r0, r1, c0, c1 = crop
    levels, expected = PIQ_ODD_CROPS[crop]
    assert ms_ssim_scales(r1 - r0, c1 - c0) == levels
    assert ms_ssim(mri[r0:r1, c0:c1], col[r0:r1, c0:c1]) == pytest.approx(expected, abs=1e-9)


def test_identity_and_symmetry():
    mri, _, col, _ = golden_pair(64)
    assert ssim(mri, mri) == pytest.approx(1.0, abs=1e-12)
    assert ms_ssim(col, col) == pytest.approx(1.0, abs=1e-12)
    assert ssim(col, mri) == pytest.approx(ssim(mri, col), abs=1e-12)


def test_ssim_is_differentiable_for_training():
    mri, _, _, y = golden_pair(64)
    x = torch.from_numpy(y)[None, None].float().requires_grad_(True)
    loss = 1 - ms_ssim(x, torch.from_numpy(mri)[None, None].float()).mean()
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_small_sizes():
    rng = np.random.default_rng(0)
    a, b = rng.random((11, 11)), rng.random((11, 11))
    assert ms_ssim(a, b) == pytest.approx(ssim(a, b))  # one scale: MS-SSIM is SSIM
    assert ms_ssim_scales(20, 64) == 1 and ms_ssim_scales(21, 64) == 2
