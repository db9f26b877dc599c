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

from core.errors import InputError
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
    (skip `core.normalize`). ``crop``: the network sees each batch's body box with a margin and
    the air around it takes the colour the model gave the air at the box's edge (a far smaller
    input on most bodies, and framed much as the training planes were, which instance norm makes
    matter); off: every pixel goes through the network. ``progress`` is called with the number
    of slices finished after each batch.
    """
    check_mri(mri)
    if output is not None and output not in colorizer.outputs:
        raise InputError("output", f"unknown output {output!r}; this model offers {', '.join(colorizer.outputs)}")
    if batch_size < 1:
        raise InputError("batch size", f"must be at least 1, got {batch_size}")
    from core.normalize import body_mask, intensity_range, normalize_array

    if normalized:
        norm = np.clip(np.asarray(mri.array, dtype=np.float32), 0.0, 1.0)
        mask = body_mask(mri.with_array(norm)) if crop else None
    else:
        mask = body_mask(mri)
        norm = normalize_array(mri.array, *intensity_range(mri, mask))
    a = slicing_axis(mri, axis)
    stack = np.moveaxis(norm, a, 0)  # (slices, rows, cols)
    in_plane = [j for j in range(3) if j != a]
    pixel_mm = np.asarray(mri.spacing, dtype=np.float64)[::-1][in_plane]  # (row, col) mm
    out = np.empty(stack.shape + (3,), dtype=np.uint8)
    masks = np.moveaxis(mask, a, 0) if crop else None
    for start in range(0, stack.shape[0], batch_size):
        rows = slice(start, start + batch_size)
        body = masks[rows].any(axis=0) if crop else None
        rgb = colorizer.colorize_planes(stack[rows], pixel_mm, output, body=body)
        out[rows] = np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)
        if progress is not None:
            progress(min(start + batch_size, stack.shape[0]))
    return Volume(np.moveaxis(out, 0, a), mri.spacing.copy(), mri.origin.copy(), mri.direction.copy())


__all__ = ["AXES", "DEFAULT_BATCH", "slicing_axis", "check_mri", "colorize_volume"]
