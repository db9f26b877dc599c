"""The fusions of G_m→ĉ's two decoders, and of c′ with the MRI (the outputs ``fused`` and
``guided`` of `core.model.outputs`).

The guided filter's window (``GUIDE_RADIUS`` model pixels) and regulariser (``GUIDE_EPS``, in
squared MRI intensity) were chosen on 120 planes of the *training* subjects of the phantom
dataset (ΔE to the true colorization: c′ 5.80; radius 2/3/4 with eps 1e-3: 5.45/5.41/5.43;
eps 1e-4/1e-2 at radius 3: 5.41/5.52), never on the held-out subject, for the first shipped
model (3 mm pixels: a 21 mm window, wide enough to span c′'s blurred edges, narrow enough that
one window rarely holds three tissues). The radius counts model pixels, so at v2's 2 mm pixels
the window is 14 mm; it was not re-tuned. eps 1e-3 (an MRI contrast of ~0.03) keeps noise of
that size from being copied into the colours.

The guided filter is written here on torch's depthwise convolutions rather than taken from a
library: neither torch, SimpleITK nor scikit-image has one, and OpenCV-contrib's
(``cv2.ximgproc``) works on one numpy image at a time, where the viewer and the evaluation need
batches of tensors on the model's device.
"""
from __future__ import annotations

import torch

from core.imaging import gaussian_radius, gaussian_taps, luma, separable_filter, window_mean

GUIDE_RADIUS = 3
GUIDE_EPS = 1e-3


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (N, C, H, W), edges replicated."""
    return separable_filter(x, gaussian_taps(2 * gaussian_radius(sigma) + 1, sigma), "replicate")


def fuse(c_hat: torch.Tensor, c_prime: torch.Tensor, sigma: float = 2.0) -> torch.Tensor:
    """Colours of c' with the edges of ĉ: c' plus the high-pass of ĉ's BT.601 luma, clamped.

    Detail finer than ``sigma`` pixels comes from ĉ, everything coarser from c'.
    """
    y = luma(c_hat)
    return (c_prime + (y - gaussian_blur(y, sigma))).clamp(0.0, 1.0)


def guided_filter(source: torch.Tensor, guide: torch.Tensor, radius: int | tuple[int, ...], eps: float) -> torch.Tensor:
    """He et al.'s guided filter of ``source`` (N, C, *spatial) by a one-channel ``guide``
    (N, 1, *spatial): planes (H, W) or volumes (D, H, W); ``radius`` in samples, one for every
    axis or one per axis (a volume's voxels need not be cubes).

    Per window: source ≈ a·guide + b by least squares with ridge ``eps`` on a; each sample takes
    the mean of the (a, b) of the windows covering it. Where the guide is flat the result is the
    windowed mean of ``source``; where the guide has an edge the source's transition is moved onto
    it. Computed in float32 (the variances are differences of means).
    """
    if guide.shape[1] != 1 or guide.shape[0] != source.shape[0] or guide.shape[2:] != source.shape[2:]:
        raise ValueError(f"guide {tuple(guide.shape)} must be one channel of the source's {tuple(source.shape)}")
    if min((radius,) if isinstance(radius, int) else radius) < 1 or eps <= 0:
        raise ValueError(f"radius must be ≥ 1 and eps > 0, got {radius} and {eps}")
    p, i = source.float(), guide.float()
    c = p.shape[1]
    means = window_mean(torch.cat([i, i * i, p, i * p], dim=1), radius)
    mean_i, mean_ii, mean_p, mean_ip = means[:, :1], means[:, 1:2], means[:, 2:2 + c], means[:, 2 + c:]
    del means
    a = (mean_ip - mean_i * mean_p) / (mean_ii - mean_i * mean_i + eps)
    b = mean_p - a * mean_i
    del mean_i, mean_ii, mean_p, mean_ip
    mean_ab = window_mean(torch.cat([a, b], dim=1), radius)
    return mean_ab[:, :c] * i + mean_ab[:, c:]


def mri_guided(c_prime: torch.Tensor, mri: torch.Tensor, radius: int | tuple[int, ...] = GUIDE_RADIUS) -> torch.Tensor:
    """The ``guided`` output: c′ guided by the MRI it was computed from, clamped to [0, 1].
    ``radius``: ``GUIDE_RADIUS`` model pixels expressed in the samples of ``mri`` (per axis)."""
    return guided_filter(c_prime, mri, radius, GUIDE_EPS).clamp(0.0, 1.0)
