"""The body's box in a plane and the resampling between a plane's pixels and the model's.

Helpers of `core.inference.colorizer.Colorizer.colorize_planes`: the generators' instance norm
makes their output depend on the framing, so the model sees each plane cropped to the body as the
training planes were framed (at least 40 % body), at the pixel size it was trained at.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

#: Air kept around the body when cropping, in model pixels (beyond the reach where the network's
#: output near the body differs from its output on air).
CROP_MARGIN = 16
#: Cropped planes are rounded up to a multiple of this many model pixels (few distinct shapes).
CROP_STEP = 32
#: Smallest in-plane size (pixels) a plane is resampled to.
MIN_PIXELS = 8

Box = tuple[slice, slice]


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of (N, C, H, W) to ``size``, antialiased when shrinking."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)


def model_size(shape: tuple[int, int], scale: np.ndarray) -> tuple[int, int]:
    """Pixels of a (rows, cols) plane part at ``scale`` model pixels per plane pixel."""
    return tuple(max(MIN_PIXELS, int(round(n * f))) for n, f in zip(shape, scale))


def body_box(mask2d: np.ndarray, scale: np.ndarray) -> Box | None:
    """Row and column slices of the mask's bounding box grown by ``CROP_MARGIN`` model pixels, then
    to a multiple of ``CROP_STEP`` model pixels (so few distinct plane sizes reach the network: on a
    CPU each new input shape costs the convolution library a new kernel set, seconds on a busy
    machine); None when the mask is empty. ``scale``: model pixels per plane pixel (rows, cols)."""
    rows, cols = np.flatnonzero(mask2d.any(axis=1)), np.flatnonzero(mask2d.any(axis=0))
    if rows.size == 0:
        return None
    margin = np.ceil(CROP_MARGIN / scale).astype(int)
    step = np.maximum(1, np.round(CROP_STEP / scale)).astype(int)
    out = []
    for idx, m, q, n in zip((rows, cols), margin, step, mask2d.shape):
        lo, hi = max(0, idx[0] - m), min(n, idx[-1] + m + 1)
        want = min(n, int(np.ceil((hi - lo) / q) * q))
        lo = min(max(0, lo - (want - (hi - lo)) // 2), n - want)
        out.append(slice(lo, lo + want))
    return out[0], out[1]
