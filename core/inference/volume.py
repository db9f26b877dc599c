"""Whole-volume colorization: an MRI volume in, an RGB volume with the same physical frame out.

The volume is cut slice by slice along the array axis closest to the requested anatomical axis
(axial: superior, coronal: posterior, sagittal: left, read from the direction matrix, so
RAS-stored or slightly oblique NIfTI files slice the expected way). The whole volume is
normalised to the models' [0, 1] convention once (`core.normalize`); each batch of slices then
goes through `core.inference.colorizer.Colorizer.colorize_planes` at the slices' own pixel size,
cropped to the batch's body, and is stored as uint8 RGB.

Because the output array keeps the input's (z, y, x) grid, its spacing, origin and direction are
the input's: the result overlays the MRI voxel for voxel in any viewer.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from core.errors import InputError
from core.imaging import to_uint8
from core.inference.colorizer import Colorizer
from core.volume import Volume

#: Physical axis (x=0 left, y=1 posterior, z=2 superior) normal to each slicing orientation.
AXES = {"axial": 2, "coronal": 1, "sagittal": 0}
#: Slices per batch when none is given.
DEFAULT_BATCH = 8

Progress = Callable[[int], None]


def slicing_axis(volume: Volume, axis: str) -> int:
    """The array axis (0 = z, 1 = y, 2 = x of ``volume.array``) to slice along for ``axis``.

    It is the index axis whose physical direction is closest to the orientation's normal.
    """
    if axis not in AXES:
        raise InputError("axis", f"unknown axis {axis!r}; use {', '.join(AXES)}")
    physical = AXES[axis]
    index_xyz = int(np.argmax(np.abs(np.asarray(volume.direction)[physical, :])))
    return 2 - index_xyz


def check_mri(volume: Volume, source: str = "MRI") -> None:
    """Refuse volumes that are not a single-channel 3-D MRI with finite values."""
    array = volume.array
    if volume.is_rgb:
        raise InputError(source, f"is an RGB volume (shape {array.shape}); colorize needs a single-channel MRI")
    if volume.is_labels:
        raise InputError(source, "is a label volume; colorize needs an MRI")
    if array.ndim != 3:
        raise InputError(source, f"is not a 3-D volume (shape {array.shape})")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)
            or array.dtype == np.bool_):
        raise InputError(source, f"holds {array.dtype} values; a numeric MRI is needed")
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        raise InputError(source, "contains NaN or infinite voxel values")


def colorize_volume(mri: Volume, colorizer: Colorizer, *, axis: str = "axial", output: str | None = None,
                    batch_size: int = DEFAULT_BATCH, normalized: bool = False, crop: bool = True,
                    progress: Progress | None = None) -> Volume:
    """Colorize ``mri`` slice by slice with ``colorizer``.

    Returns a uint8 RGB `Volume` on the MRI's grid and frame. ``output``: one of
    ``colorizer.outputs`` (None: the one it serves). ``normalized``: the MRI is already in [0, 1]
    (skip `core.normalize`). ``crop``: the network sees each batch's body box with a margin
    (a far smaller input on most bodies, and framed much as the training planes were, which
    instance norm makes matter) and everything outside the body (`core.normalize.body_region`)
    takes the palette's background colour; off: every pixel goes through the network. The
    ``guided`` output is refined over the whole volume at once (`guided_volume`). ``progress`` is called with the number
    of slices finished after each batch.
    """
    check_mri(mri)
    if output is not None and output not in colorizer.outputs:
        raise InputError("output", f"unknown output {output!r}; this model offers {', '.join(colorizer.outputs)}")
    if batch_size < 1:
        raise InputError("batch size", f"must be at least 1, got {batch_size}")
    from core.normalize import body_mask, body_region, intensity_range, normalize_array

    if normalized:
        norm = np.clip(np.asarray(mri.array, dtype=np.float32), 0.0, 1.0)
        raw_mask = body_mask(mri.with_array(norm)) if crop else None
    else:
        raw_mask = body_mask(mri)
        norm = normalize_array(mri.array, *intensity_range(mri, raw_mask))
    mask = body_region(raw_mask) if crop else None
    a = slicing_axis(mri, axis)
    stack = np.moveaxis(norm, a, 0)  # (slices, rows, cols)
    in_plane = [j for j in range(3) if j != a]
    pixel_mm = np.asarray(mri.spacing, dtype=np.float64)[::-1][in_plane]  # (row, col) mm
    output = output or colorizer.serve
    refine = output == "guided"  # c′ slice by slice, then the MRI-guided filter over the whole volume
    colour = np.empty(stack.shape + (3,), dtype=np.float32 if refine else np.uint8)
    masks = np.moveaxis(mask, a, 0) if crop else None
    for start in range(0, stack.shape[0], batch_size):
        rows = slice(start, start + batch_size)
        rgb = colorizer.colorize_planes(stack[rows], pixel_mm, "c_prime" if refine else output,
                                        body=None if masks is None else masks[rows])
        colour[rows] = rgb if refine else to_uint8(rgb)
        if progress is not None:
            progress(min(start + batch_size, stack.shape[0]))
    colour = np.moveaxis(colour, 0, a)
    if refine:
        colour = to_uint8(guided_volume(colour, norm, mri.spacing, colorizer, mask))
    return Volume(colour, mri.spacing.copy(), mri.origin.copy(), mri.direction.copy())


def guided_volume(c_prime: np.ndarray, mri01: np.ndarray, spacing, colorizer: Colorizer,
                  body: np.ndarray | None) -> np.ndarray:
    """The ``guided`` output of a whole volume: c′ (z, y, x, 3), colorized slice by slice, passed
    through the MRI-guided filter in 3-D with the normalised MRI as guide. Its windows span
    ``GUIDE_RADIUS`` model pixels along every axis, so colour follows the MRI's edges at the
    volume's own resolution and the slice-to-slice jitter of a per-slice network is averaged
    across neighbouring slices (no banding in the other reformats). Its fits count the body's
    voxels only. Outside ``body``: background (the filter runs on the body's box only)."""
    from core.inference.fusion import GUIDE_RADIUS, mri_guided

    reach_mm = GUIDE_RADIUS * (colorizer.pixel_mm or float(np.min(spacing)))
    radius = tuple(max(1, round(reach_mm / s)) for s in np.asarray(spacing, dtype=np.float64)[::-1])
    out = np.empty_like(c_prime)
    out[:] = colorizer.background.cpu().numpy()
    box = (slice(None),) * 3
    if body is not None:
        if not body.any():
            return out
        box = tuple(slice(max(0, int(i.min()) - r), int(i.max()) + r + 1) for i, r in zip(np.nonzero(body), radius))
    with torch.inference_mode():
        source = torch.from_numpy(np.ascontiguousarray(np.moveaxis(c_prime[box], -1, 0)))[None]
        guide = torch.from_numpy(np.ascontiguousarray(mri01[box], dtype=np.float32))[None, None]
        inside = None if body is None else torch.from_numpy(np.ascontiguousarray(body[box]))[None, None]
        refined = mri_guided(source, guide, radius, inside)[0].permute(1, 2, 3, 0).numpy()
    out[box] = refined if body is None else np.where(body[box][..., None], refined, out[box])
    return out


__all__ = ["AXES", "DEFAULT_BATCH", "slicing_axis", "check_mri", "colorize_volume"]
