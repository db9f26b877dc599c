"""Image primitives several layers share: BT.601 luma, CIELAB, and separable window filters.

One home each, so that the training losses, the output fusions, the metrics and the
registration's fixed image agree on what "grey" means and how a window mean is taken.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

#: ITU-R BT.601 luma weights (R, G, B): OpenCV's RGB2GRAY, PIL's "L", the Y of YIQ/YCbCr — the
#: grey conversion used wherever colour meets grayscale.
BT601 = (0.299, 0.587, 0.114)


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    """Float RGB in [0, 1] as contiguous uint8 (rounded to nearest, clipped): what goes to the
    screen and to disk."""
    return np.ascontiguousarray(np.clip(np.rint(np.asarray(rgb) * 255.0), 0, 255).astype(np.uint8))


@lru_cache(maxsize=16)
def _luma_weights(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(1, 3, 1, 1) weights, made once per dtype and device (no host-to-device copy per call).
    Made outside inference mode: a cached inference tensor, first asked for by the Colorizer, would
    break every later use under autograd (training losses)."""
    with torch.inference_mode(False):
        return torch.tensor(BT601, dtype=dtype, device=device).view(1, 3, 1, 1)


def luma(rgb: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    """BT.601 luma Y = 0.299 R + 0.587 G + 0.114 B: an (N, 3, H, W) tensor → (N, 1, H, W); an
    array with RGB last (…, 3) → (…), float (integers are computed in float64)."""
    if isinstance(rgb, torch.Tensor):
        return (rgb * _luma_weights(rgb.dtype, rgb.device)).sum(dim=1, keepdim=True)
    rgb = np.asarray(rgb)
    return rgb @ np.asarray(BT601, dtype=rgb.dtype if rgb.dtype.kind == "f" else np.float64)


#: sRGB (D65) → CIE XYZ, and the D65 white point: IEC 61966-2-1, as scikit-image's ``rgb2lab``.
_RGB_TO_XYZ = ((0.412453, 0.357580, 0.180423), (0.212671, 0.715160, 0.072169), (0.019334, 0.119193, 0.950227))
_D65 = (0.95047, 1.0, 1.08883)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """CIE L*a*b* (D65) of sRGB (N, 3, H, W) in [0, 1], differentiable: a loss can then weigh colour
    differences as ΔE does (in RGB a hue error costs less than a slight change of lightness).
    Torch has no colour conversions and scikit-image's ``rgb2lab`` is numpy only (it is this
    function's reference in the tests). Inputs are clamped to [0, 1]."""
    c = rgb.float().clamp(0.0, 1.0)
    linear = torch.where(c > 0.04045, ((c + 0.055) / 1.055).clamp_min(1e-12) ** 2.4, c / 12.92)
    matrix = torch.tensor(_RGB_TO_XYZ, dtype=linear.dtype, device=linear.device)
    white = torch.tensor(_D65, dtype=linear.dtype, device=linear.device).view(1, 3, 1, 1)
    xyz = torch.einsum("ij,njhw->nihw", matrix, linear) / white
    f = torch.where(xyz > 0.008856, xyz.clamp_min(0.008856) ** (1.0 / 3.0), 7.787 * xyz + 16.0 / 116.0)
    fx, fy, fz = f[:, 0:1], f[:, 1:2], f[:, 2:3]
    light = torch.where(xyz[:, 1:2] > 0.008856, 116.0 * fy - 16.0, 903.3 * xyz[:, 1:2])
    return torch.cat([light, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=1)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] of CIE L*a*b* (D65) (N, 3, H, W): the inverse of `rgb_to_lab`, for outputs
    computed in L*a*b* (`core.model.calibration`). Colours outside the sRGB gamut are clipped, as
    scikit-image's ``lab2rgb`` (the tests' reference) clips them."""
    lab = lab.float()
    fy = (lab[:, 0:1] + 16.0) / 116.0
    f = torch.cat([fy + lab[:, 1:2] / 500.0, fy, (fy - lab[:, 2:3] / 200.0).clamp_min(0.0)], dim=1)
    xyz = torch.where(f > 0.2068966, f ** 3, (f - 16.0 / 116.0) / 7.787)
    white = torch.tensor(_D65, dtype=lab.dtype, device=lab.device).view(1, 3, 1, 1)
    inverse = torch.linalg.inv(torch.tensor(_RGB_TO_XYZ, dtype=torch.float64)).to(lab.dtype).to(lab.device)
    linear = torch.einsum("ij,njhw->nihw", inverse, xyz * white)
    rgb = torch.where(linear > 0.0031308, 1.055 * linear.clamp_min(0.0031308) ** (1.0 / 2.4) - 0.055,
                      12.92 * linear)
    return rgb.clamp(0.0, 1.0)


@lru_cache(maxsize=None)
def gaussian_taps(size: int, sigma: float) -> tuple[float, ...]:
    """Normalised 1-D Gaussian of ``size`` taps (odd), as MATLAB's fspecial and Wang's SSIM use it."""
    half = (size - 1) / 2
    g = [math.exp(-((i - half) ** 2) / (2 * sigma * sigma)) for i in range(size)]
    total = sum(g)
    return tuple(v / total for v in g)


def gaussian_radius(sigma: float) -> int:
    """Half-width that keeps a Gaussian's weight to within 0.3 % (3 σ, at least 1)."""
    return max(1, int(3 * sigma + 0.5))


@lru_cache(maxsize=64)
def _taps_tensor(taps: tuple[float, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``taps`` as a tensor, made once per dtype and device: a copy from the host on every call
    (12 per training step for the SSIM windows) would make the GPU wait for the CPU each time."""
    return torch.tensor(taps, dtype=dtype, device=device)


def separable_filter(x: torch.Tensor, taps: tuple[float, ...] | torch.Tensor, pad: str | None) -> torch.Tensor:
    """(N, C, H, W) correlated with the odd 1-D kernel ``taps`` along rows, then columns, each
    channel alone (depthwise ``conv2d``: on a CPU 4-5× faster than ``avg_pool2d``, whose stride-1
    kernel is not vectorised). ``pad``: a ``F.pad`` mode for an output of the input's size
    ("reflect", "replicate"), or None for the 'valid' part only."""
    taps = (_taps_tensor(tuple(taps), x.dtype, x.device) if not isinstance(taps, torch.Tensor)
            else taps.to(x.device, x.dtype))
    size, channels = taps.numel(), x.shape[1]
    row = taps.view(1, 1, 1, size).expand(channels, 1, 1, size)
    if pad is not None:
        x = F.pad(x, (size // 2,) * 4, mode=pad)
    return F.conv2d(F.conv2d(x, row, groups=channels), row.transpose(2, 3), groups=channels)


def window_mean(x: torch.Tensor, radii: int | tuple[int, ...]) -> torch.Tensor:
    """Mean of (N, C, *spatial) over windows of 2·r + 1 samples along each spatial axis (``radii``:
    one per axis, or one for all), same size out, edges mirrored (torch's "reflect" = scipy's
    "mirror") where the axis is longer than r, else replicated.

    Running sums make the cost independent of the window (a 19³ window on a 256³ volume costs
    what a 3³ one does): on the CPU scipy's ``uniform_filter`` (3-4× faster than torch's
    cumulative sums there), elsewhere torch's, one channel at a time so a 1 mm head fits.
    """
    spatial = x.dim() - 2
    radii = (radii,) * spatial if isinstance(radii, int) else tuple(radii)
    if len(radii) != spatial or min(radii) < 0:
        raise ValueError(f"need {spatial} non-negative radii for a {tuple(x.shape)} tensor, got {radii}")
    if x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64):
        from scipy.ndimage import uniform_filter

        source = x.detach().contiguous().numpy()
        out = np.empty_like(source)
        modes = ["mirror" if r < n else "nearest" for r, n in zip(radii, x.shape[2:])]
        for n in range(x.shape[0]):
            for c in range(x.shape[1]):
                uniform_filter(source[n, c], size=[2 * r + 1 for r in radii], mode=modes, output=out[n, c])
        return torch.from_numpy(out)
    channels = []
    for c in range(x.shape[1]):
        out = x[:, c:c + 1]
        for axis, r in enumerate(radii):
            if r > 0:
                out = _running_mean(out, 2 + axis, r)
        channels.append(out)
    return torch.cat(channels, dim=1)


def _running_mean(x: torch.Tensor, dim: int, r: int) -> torch.Tensor:
    n = x.shape[dim]
    if r < n:
        before, after = x.narrow(dim, 1, r).flip(dim), x.narrow(dim, n - 1 - r, r).flip(dim)
    else:
        shape = list(x.shape)
        shape[dim] = r
        before, after = x.narrow(dim, 0, 1).expand(shape), x.narrow(dim, n - 1, 1).expand(shape)
    padded = torch.cat([before, x, after], dim=dim)
    sums = torch.cumsum(padded, dim=dim, dtype=torch.float64 if x.dtype == torch.float64 else torch.float32)
    zero = torch.zeros_like(sums.narrow(dim, 0, 1))
    sums = torch.cat([zero, sums], dim=dim)
    k = 2 * r + 1
    return (sums.narrow(dim, k, n) - sums.narrow(dim, 0, n)).div_(k).to(x.dtype)
