"""Metrics against the phantom's true colorization: CIEDE2000 ΔE and PSNR, overall and per tissue.

The paper never had a true colorization, so its metrics compare with the MRI or with a
misregistered cryosection; on the phantom we can measure colour error directly. ΔE is CIEDE2000
between the sRGB images converted to CIELAB (D65) by scikit-image, averaged over pixels (≈ 1 is a
just-noticeable difference, > 10 a different colour). PSNR is 10·log10(1 / MSE) over pixels and RGB
channels in [0, 1] (infinite for identical images). Per tissue, the same averages are taken over
the pixels of each label: a model can look good overall while painting a small organ wrongly.
"""
from __future__ import annotations

import numpy as np
import torch

from core.errors import InputError
from core.metrics._validate import image_pair

Score = float | torch.Tensor


def delta_e(a: np.ndarray | torch.Tensor, truth: np.ndarray | torch.Tensor,
            labels: np.ndarray | torch.Tensor | None = None) -> Score | dict[int, Score]:
    """Mean CIEDE2000 ΔE between a colorization and the true colorization (both RGB in [0, 1]).

    Without ``labels``: a float (numpy planes) or a tensor (N,) (batches). With an integer label map
    of the same plane size: a dict {label id: mean ΔE over that label's pixels}, covering every label
    present; in a batch each value is a tensor (N,) with NaN for planes where the label is absent.
    """
    from skimage.color import deltaE_ciede2000, rgb2lab  # 0.4 s to import: only truth metrics need it

    x, y, batched = _rgb_pair(a, truth)
    lab_x, lab_y = (rgb2lab(t.permute(0, 2, 3, 1).double().cpu().numpy(), channel_axis=-1) for t in (x, y))
    error = deltaE_ciede2000(lab_x, lab_y, channel_axis=-1)
    return _reduce(error, labels, x, batched, lambda mean: mean)


def psnr(a: np.ndarray | torch.Tensor, truth: np.ndarray | torch.Tensor,
         labels: np.ndarray | torch.Tensor | None = None) -> Score | dict[int, Score]:
    """PSNR in dB between a colorization and the true colorization (data range 1), overall or per label like ``delta_e``."""
    x, y, batched = _rgb_pair(a, truth)
    squared = ((x.double() - y.double()) ** 2).mean(dim=1).cpu().numpy()
    with np.errstate(divide="ignore"):
        return _reduce(squared, labels, x, batched, lambda mse: -10 * np.log10(mse))


def _rgb_pair(a: np.ndarray | torch.Tensor, truth: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, bool]:
    x, y, batched = image_pair(a, truth, ("colorization", "truth"))
    if x.shape[1] != 3:
        raise InputError("colorization, truth", "colour error needs two RGB images")
    return x, y, batched


def _reduce(per_pixel: np.ndarray, labels: np.ndarray | torch.Tensor | None, x: torch.Tensor, batched: bool,
            transform) -> Score | dict[int, Score]:
    """Average an (N, H, W) per-pixel map overall or per label, apply ``transform`` to each mean, and
    return it in the convention of ``delta_e``."""
    if labels is None:
        values = transform(per_pixel.reshape(len(per_pixel), -1).mean(axis=1))
        return torch.from_numpy(values) if batched else float(values[0])
    ids, index = np.unique(_label_map(labels, x), return_inverse=True)
    index = index.reshape(len(per_pixel), -1)
    table = np.empty((len(ids), len(per_pixel)))
    for n, (plane, plane_index) in enumerate(zip(per_pixel.reshape(len(per_pixel), -1), index)):
        counts = np.bincount(plane_index, minlength=len(ids))
        sums = np.bincount(plane_index, weights=plane, minlength=len(ids))
        with np.errstate(invalid="ignore"):
            table[:, n] = np.where(counts > 0, sums / counts, np.nan)
    table = transform(table)
    if batched:
        return {int(i): torch.from_numpy(row) for i, row in zip(ids, table)}
    return {int(i): float(row[0]) for i, row in zip(ids, table)}


def _label_map(labels: np.ndarray | torch.Tensor, x: torch.Tensor) -> np.ndarray:
    """Labels as an (N, H, W) integer array matching the images: H×W, (N, H, W) or (N, 1, H, W)."""
    arr = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if arr.dtype.kind not in "iu":
        raise InputError("labels", f"a label map must hold integers, got dtype {arr.dtype}")
    if arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim == 2:
        arr = arr[None]
    n, _, h, w = x.shape
    if arr.shape != (n, h, w):
        raise InputError("labels", f"label map of shape {labels.shape} does not match the images ({n} × {h}×{w})")
    return arr
