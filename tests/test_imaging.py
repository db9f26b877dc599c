"""Shared image primitives (`core.imaging`) against independent references."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from scipy import ndimage as ndi

from core.imaging import gaussian_taps, lab_to_rgb, luma, rgb_to_lab, separable_filter, window_mean


def test_luma_is_bt601_for_arrays_and_tensors():
    rgb = np.random.default_rng(0).random((5, 6, 3))
    expected = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    np.testing.assert_allclose(luma(rgb), expected, atol=1e-12)
    t = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    np.testing.assert_allclose(luma(t)[0, 0].numpy(), expected, atol=1e-12)


def test_luma_weights_cached_in_inference_mode_still_train():
    """The weights are cached per device: a first call under inference mode must not leave an
    inference tensor that a later training step cannot save for backward."""
    with torch.inference_mode():
        luma(torch.rand(1, 3, 4, 4))
    x = torch.rand(1, 3, 4, 4, requires_grad=True)
    luma(x).sum().backward()
    np.testing.assert_allclose(x.grad[0, :, 0, 0].numpy(), [0.299, 0.587, 0.114], atol=1e-6)


def test_separable_gaussian_matches_scipy():
    x = np.random.default_rng(1).random((20, 23)).astype(np.float64)
    taps = gaussian_taps(7, 1.5)
    ours = separable_filter(torch.from_numpy(x)[None, None], taps, "reflect")[0, 0].numpy()
    ref = ndi.correlate1d(ndi.correlate1d(x, taps, axis=0, mode="mirror"), taps, axis=1, mode="mirror")
    np.testing.assert_allclose(ours, ref, atol=1e-12)
    valid = separable_filter(torch.from_numpy(x)[None, None], taps, None)[0, 0].numpy()
    np.testing.assert_allclose(valid, ref[3:-3, 3:-3], atol=1e-12)


@pytest.mark.parametrize("radii", [(1, 2, 3), (2, 3, 30)])
def test_window_mean_matches_scipy_on_both_paths(radii):
    """The CPU path (scipy) and the running-sum path other devices take agree with scipy's
    uniform filter, mirrored where an axis is long enough, replicated where it is not."""
    from core.imaging import _running_mean

    x = np.random.default_rng(2).random((9, 12, 10)).astype(np.float32)
    modes = ["mirror" if r < n else "nearest" for r, n in zip(radii, x.shape)]
    ref = ndi.uniform_filter(x, size=[2 * r + 1 for r in radii], mode=modes)
    t = torch.from_numpy(x)[None, None]
    np.testing.assert_allclose(window_mean(t, radii)[0, 0].numpy(), ref, atol=1e-5)
    running = t
    for axis, r in enumerate(radii):
        running = _running_mean(running, 2 + axis, r)
    np.testing.assert_allclose(running[0, 0].numpy(), ref, atol=1e-5)


def test_lab_to_rgb_matches_scikit_image_and_inverts_rgb_to_lab():
    from skimage.color import lab2rgb

    rng = np.random.default_rng(3)
    lab = np.stack([rng.uniform(0, 100, 4000), rng.uniform(-60, 60, 4000), rng.uniform(-60, 60, 4000)], -1)
    got = lab_to_rgb(torch.tensor(lab.T[None, :, :, None], dtype=torch.float32))[0, :, :, 0].T.numpy()
    with warnings.catch_warnings():     # out-of-gamut colours: both clip (scikit-image says so)
        warnings.simplefilter("ignore")
        ref = lab2rgb(lab)
    np.testing.assert_allclose(got, ref, atol=2e-5)
    rgb = torch.rand(2, 3, 5, 7, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(lab_to_rgb(rgb_to_lab(rgb)), rgb, atol=2e-5, rtol=0)
