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
#: Voxels of the body's box the 3-D guided filter takes at once: it holds about 35 float32 values
#: per voxel, so a 1 mm whole body (147 M voxels) took 20 GB in one piece; slabs of 32 M voxels
#: (a whole 1 mm head is 14 M, one slab) bound it to about 5 GB with the same result.
GUIDE_SLAB_VOXELS = 32_000_000

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
    ``guided`` output is refined in 3-D over the whole volume (`guided_volume`, slab by slab), and
    ``calibrated`` corrected from it slice by slice (`calibrated_volume`). ``progress`` is called
    with the number of slices finished after each batch.
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
    pixel_mm = in_plane_mm(mri, a)
    output = output or colorizer.serve
    if output not in ("guided", "calibrated"):
        colour = slice_by_slice(norm, mask, a, pixel_mm, colorizer, output, batch_size, progress, as_uint8=True)
        return Volume(colour, mri.spacing.copy(), mri.origin.copy(), mri.direction.copy())
    # c′ slice by slice, then the MRI-guided filter over the whole volume
    c_prime = slice_by_slice(norm, mask, a, pixel_mm, colorizer, "c_prime", batch_size, progress)
    colour = guided_volume(c_prime, norm, mri.spacing, colorizer, mask)
    if output == "calibrated":
        colour = calibrated_volume(colour, c_prime, norm, mask, a, pixel_mm, colorizer, batch_size)
    return Volume(to_uint8(colour), mri.spacing.copy(), mri.origin.copy(), mri.direction.copy())


def in_plane_mm(volume: Volume, axis: int) -> np.ndarray:
    """(rows, cols) pixel size in mm of ``volume``'s slices along array ``axis``."""
    return np.asarray(volume.spacing, dtype=np.float64)[::-1][[j for j in range(3) if j != axis]]


def slice_by_slice(mri01: np.ndarray, body: np.ndarray | None, axis: int, pixel_mm, colorizer: Colorizer,
                   output: str, batch_size: int = DEFAULT_BATCH, progress: Progress | None = None,
                   as_uint8: bool = False) -> np.ndarray:
    """``output`` of every slice of the normalised MRI ``mri01`` along array ``axis`` (slices of
    ``pixel_mm`` (rows, cols)), through `Colorizer.colorize_planes` with each slice's ``body``
    (None: no crop), as (z, y, x, 3) float32 RGB, or uint8 with ``as_uint8``."""
    stack = np.moveaxis(mri01, axis, 0)  # (slices, rows, cols)
    masks = None if body is None else np.moveaxis(body, axis, 0)
    colour = np.empty(stack.shape + (3,), dtype=np.uint8 if as_uint8 else np.float32)
    for start in range(0, stack.shape[0], batch_size):
        rows = slice(start, start + batch_size)
        rgb = colorizer.colorize_planes(stack[rows], pixel_mm, output, body=None if masks is None else masks[rows])
        colour[rows] = to_uint8(rgb) if as_uint8 else rgb
        if progress is not None:
            progress(min(start + batch_size, stack.shape[0]))
    return np.moveaxis(colour, 0, axis)


def guided_volume(c_prime: np.ndarray, mri01: np.ndarray, spacing, colorizer: Colorizer,
                  body: np.ndarray | None) -> np.ndarray:
    """The ``guided`` output of a whole volume: c′ (z, y, x, 3), colorized slice by slice, passed
    through the MRI-guided filter in 3-D with the normalised MRI as guide. Its windows span
    ``GUIDE_RADIUS`` model pixels along every axis, so colour follows the MRI's edges at the
    volume's own resolution and the slice-to-slice jitter of a per-slice network is averaged
    across neighbouring slices (no banding in the other reformats). Its fits count the body's
    voxels only. Outside ``body``: background (the filter runs on the body's box only, in slabs
    of ``GUIDE_SLAB_VOXELS`` along the first axis, each with the slices its windows reach)."""
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
    colour, guide, inside = c_prime[box], mri01[box], None if body is None else body[box]
    depth = colour.shape[0]
    step = max(1, GUIDE_SLAB_VOXELS // (colour.shape[1] * colour.shape[2]))
    halo = 2 * radius[0]  # two window means in a row: an output voxel sees 2r slices each way
    refined = np.empty(colour.shape, dtype=np.float32)

    def batch_of_one(x: np.ndarray, dtype=None) -> torch.Tensor:
        """(C, D, H, W) or (D, H, W) array → (1, C, D, H, W) tensor, C = 1 when absent."""
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=dtype))
        return t[None] if t.dim() == 4 else t[None, None]

    with torch.inference_mode():
        for start in range(0, depth, step):
            stop, lo, hi = min(depth, start + step), max(0, start - halo), min(depth, start + step + halo)
            part = mri_guided(batch_of_one(np.moveaxis(colour[lo:hi], -1, 0)), batch_of_one(guide[lo:hi], np.float32),
                              radius, None if inside is None else batch_of_one(inside[lo:hi]))
            refined[start:stop] = part[0].permute(1, 2, 3, 0).numpy()[start - lo:stop - lo]
    out[box] = refined if body is None else np.where(inside[..., None], refined, out[box])
    return out


def calibrated_volume(guided: np.ndarray, c_prime: np.ndarray, mri01: np.ndarray, body: np.ndarray | None,
                      axis: int, pixel_mm, colorizer: Colorizer, batch_size: int = DEFAULT_BATCH) -> np.ndarray:
    """The ``calibrated`` output of a whole volume: the colorizer's colour calibration applied to
    its ``guided`` output (z, y, x, 3) slice by slice along array ``axis``, with the slices'
    in-plane ``pixel_mm`` (rows, cols), exactly as the plane path applies it to a plane.
    Outside ``body`` (None: nowhere) the guided colour (the background) is kept."""
    if colorizer.calibration is None:
        raise InputError("output", "'calibrated' needs a model with a colour calibration")
    out = np.array(guided, dtype=np.float32, copy=True)
    views = [np.moveaxis(x, axis, 0) for x in (out, c_prime, mri01)]
    inside = None if body is None else np.moveaxis(body, axis, 0)

    def planes(x: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(colorizer.device)
        return x.permute(0, 3, 1, 2) if x.dim() == 4 else x[:, None]

    with torch.inference_mode():
        for start in range(0, views[0].shape[0], batch_size):
            rows = slice(start, start + batch_size)
            mask = None if inside is None else torch.from_numpy(np.ascontiguousarray(inside[rows]))[:, None]
            if mask is not None and not mask.any():
                continue
            rgb = colorizer.calibration(planes(views[0][rows]), planes(views[1][rows]), planes(views[2][rows]),
                                        None if mask is None else mask.to(colorizer.device), pixel_mm)
            views[0][rows] = rgb.permute(0, 2, 3, 1).cpu().numpy()
    return out


__all__ = ["AXES", "DEFAULT_BATCH", "slicing_axis", "check_mri", "colorize_volume", "in_plane_mm", "slice_by_slice",
           "guided_volume", "calibrated_volume"]
