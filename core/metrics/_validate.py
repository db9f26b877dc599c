"""Input checks shared by every metric, and the one input convention they all compute on.

Every metric accepts numpy images in [0, 1] (H×W or H×W×3) and torch batches (N, C, H, W) with
C = 1 or 3, and computes on a float torch batch: one code path serves the viewer (single numpy
planes), evaluation (batches) and training (tensors on the GPU). Bad input raises
``InputError`` before any arithmetic, because a metric on NaN, on 0–255 data or on mismatched
planes still returns a plausible-looking number.
"""
from __future__ import annotations

import numpy as np
import torch

from core.errors import InputError
from core.imaging import luma

#: Values this far outside [0, 1] are float round-off (a sigmoid, a resampler) and are clipped;
#: anything beyond is the wrong scale (0–255 data, [-1, 1] network outputs) and is refused.
RANGE_TOLERANCE = 1e-4



def image_batch(x: np.ndarray | torch.Tensor, name: str) -> tuple[torch.Tensor, bool]:
    """Validate one image argument; return it as an (N, C, H, W) float tensor and whether it was batched.

    float64 stays float64 (for reference-precision checks); every other type computes in float32.
    """
    if isinstance(x, torch.Tensor):
        if x.ndim != 4:
            raise InputError(name, f"a torch image batch must be (N, C, H, W), got shape {tuple(x.shape)}")
        t, batched = x, True
    elif isinstance(x, np.ndarray):
        if x.ndim == 2:
            t = torch.from_numpy(np.ascontiguousarray(x))[None, None]
        elif x.ndim == 3:
            t = torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, 0)))[None]
        else:
            raise InputError(name, f"a numpy image must be H×W or H×W×3, got shape {x.shape}")
        batched = False
    else:
        raise InputError(name, f"expected a numpy array or a torch tensor, got {type(x).__name__}")
    if not (t.is_floating_point() or _is_integer(t)):
        raise InputError(name, f"expected real image values in [0, 1], got dtype {t.dtype}")
    if t.shape[1] not in (1, 3):
        raise InputError(name, f"expected 1 (grey) or 3 (RGB) channels, got {t.shape[1]} in shape {tuple(x.shape)}")
    if t.shape[0] == 0 or t.shape[2] == 0 or t.shape[3] == 0:
        raise InputError(name, f"empty image, shape {tuple(x.shape)}")
    t = t.to(torch.float64 if t.dtype == torch.float64 else torch.float32)
    values = t.detach()
    finite = torch.isfinite(values)
    if not bool(finite.all()):
        raise InputError(name, f"contains {int((~finite).sum())} NaN or infinite values")
    lo, hi = float(values.min()), float(values.max())
    if lo < -RANGE_TOLERANCE or hi > 1 + RANGE_TOLERANCE:
        raise InputError(name, f"values must lie in [0, 1], got [{lo:.6g}, {hi:.6g}]"
                               " (divide 8-bit images by 255; map [-1, 1] outputs with (x + 1) / 2)")
    return (t.clamp(0.0, 1.0) if lo < 0 or hi > 1 else t), batched


def image_pair(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor,
               names: tuple[str, str] = ("a", "b")) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Validate two images compared with each other: same batch size and plane size, common channels.

    An RGB side compared with a grey side is reduced to BT.601 luma (docs/metrics.md), so a
    grey MRI can be compared with a colorized plane. Both are returned in the wider of the two
    dtypes, on the first argument's device.
    """
    x, batched_x = image_batch(a, names[0])
    y, batched_y = image_batch(b, names[1])
    if x.shape[0] != y.shape[0] or x.shape[2:] != y.shape[2:]:
        raise InputError(f"{names[0]}, {names[1]}",
                         f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)} (the planes must match pixel for pixel)")
    if x.shape[1] != y.shape[1]:
        x, y = (luma(x), y) if x.shape[1] == 3 else (x, luma(y))
    dtype = torch.promote_types(x.dtype, y.dtype)
    return x.to(dtype), y.to(device=x.device, dtype=dtype), batched_x or batched_y


def require_size(x: torch.Tensor, minimum: int, metric: str, why: str) -> None:
    """Refuse planes smaller than a metric's windows or pyramid need (it would crash or mean nothing)."""
    h, w = x.shape[-2:]
    if min(h, w) < minimum:
        raise InputError(metric, f"needs planes of at least {minimum}×{minimum} pixels ({why}), got {h}×{w}")


def as_result(values: torch.Tensor, batched: bool) -> float | torch.Tensor:
    """One value per image: a tensor (N,) for batched input, a Python float for a single numpy plane."""
    return values if batched else float(values[0])


def _is_integer(t: torch.Tensor) -> bool:
    """Integer images (0/1 masks) are accepted; bool and complex are not images."""
    return not t.is_floating_point() and not t.is_complex() and t.dtype != torch.bool
