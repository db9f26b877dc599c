"""Whole-volume colorization: an MRI volume in, an RGB volume with the same physical frame out.

The volume is cut slice by slice along the array axis closest to the requested anatomical axis
(axial: superior, coronal: posterior, sagittal: left, read from the direction matrix, so
RAS-stored or slightly oblique NIfTI files slice the expected way). Each batch of slices is

1. normalised to the models' [0, 1] convention (`core.normalize`, once for the whole volume),
2. resampled in-plane to the pixel size the model was trained at (``pixel_mm`` in the
   checkpoint's metadata; ``DEFAULT_PIXEL_MM`` when a checkpoint does not say),
3. colorized by a `core.inference.Colorizer`,
4. resampled back onto the slice's own pixel grid and stored as uint8 RGB.

Because the output array keeps the input's (z, y, x) grid, its spacing, origin and direction are
the input's: the result overlays the MRI voxel for voxel in any viewer.
"""
from __future__ import annotations

import json
import os
import weakref
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from core.errors import InputError
from core.volume import Volume

#: Physical axis (x=0 left, y=1 posterior, z=2 superior) normal to each slicing orientation.
AXES = {"axial": 2, "coronal": 1, "sagittal": 0}
#: In-plane pixel size (mm) assumed for checkpoints that do not record the one they were trained at.
DEFAULT_PIXEL_MM = 2.0
#: Slices per batch when none is given.
DEFAULT_BATCH = 8
#: Smallest in-plane size (pixels) a slice is resampled to.
MIN_PIXELS = 8
#: Air kept around the body when cropping, in model pixels (beyond the reach where the network's
#: output near the body differs from its output on air).
CROP_MARGIN = 16
#: Cropped planes are rounded up to a multiple of this many model pixels (few distinct shapes).
CROP_STEP = 32

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


def checkpoint_pixel_mm(path: str | os.PathLike | None) -> float | None:
    """The in-plane pixel size (mm) recorded in a checkpoint's metadata (``extra.pixel_mm``), or
    None. ``path`` None reads the shipped default; reads only the header, not the weights."""
    import safetensors

    from core.model.checkpoint import resolve_path

    if path is None:
        from core.inference import DEFAULT_CHECKPOINT
        from resources import path as resource_path

        path = resource_path(DEFAULT_CHECKPOINT)
    p = resolve_path(path)
    try:
        with safetensors.safe_open(str(p), framework="pt") as f:
            extra = json.loads((f.metadata() or {}).get("extra", "{}"))
    except Exception:  # the Colorizer reports unreadable checkpoints with a proper message
        return None
    value = extra.get("pixel_mm") if isinstance(extra, dict) else None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) and value > 0 else None


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


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)


def colorize_volume(mri: Volume, colorizer, *, axis: str = "axial", output: str | None = None,
                    pixel_mm: float | None = DEFAULT_PIXEL_MM, batch_size: int = DEFAULT_BATCH,
                    normalized: bool = False, crop: bool = True, progress: Progress | None = None) -> Volume:
    """Colorize ``mri`` slice by slice with ``colorizer`` (a `core.inference.Colorizer`).

    Returns a uint8 RGB `Volume` on the MRI's grid and frame. ``output``: one of
    ``colorizer.outputs`` (None: the one it serves). ``pixel_mm``: in-plane pixel size the
    model expects (None: no resampling). ``normalized``: the MRI is already in [0, 1] (skip
    `core.normalize`). ``crop``: run the network only on each batch's body bounding box plus a
    margin of ``CROP_MARGIN`` model pixels, and give the air around it the colour the model gave
    the air at the box's edge (a far smaller input on most bodies; off: every pixel goes through
    the network; see `colorize_slices`).
    The generators' instance norm makes their output depend on the framing; a cropped plane is
    filled by the body much as the training planes were (>= 40 % body), a whole slice often is not.
    ``progress`` is called with the number of slices finished after each batch.
    """
    check_mri(mri)
    if output is not None and output not in colorizer.outputs:
        raise InputError("output", f"unknown output {output!r}; this model offers {', '.join(colorizer.outputs)}")
    if batch_size < 1:
        raise InputError("batch size", f"must be at least 1, got {batch_size}")
    if pixel_mm is not None and not (np.isfinite(pixel_mm) and pixel_mm > 0):
        raise InputError("pixel size", f"must be a positive number of mm, got {pixel_mm}")
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
    spacing = np.asarray(mri.spacing, dtype=np.float64)[::-1][in_plane]  # (row, col) mm
    scale = np.ones(2) if pixel_mm is None else spacing / pixel_mm  # model pixels per slice pixel
    out = np.empty(stack.shape + (3,), dtype=np.uint8)
    masks = np.moveaxis(mask, a, 0) if crop else None
    for start in range(0, stack.shape[0], batch_size):
        rows = slice(start, start + batch_size)
        body = masks[rows].any(axis=0) if crop else None
        out[rows] = colorize_slices(colorizer, stack[rows], scale, output, body=body)
        if progress is not None:
            progress(min(start + batch_size, stack.shape[0]))
    return Volume(np.moveaxis(out, 0, a), mri.spacing.copy(), mri.origin.copy(), mri.direction.copy())


def colorize_slices(colorizer, slices: np.ndarray, scale, output: str | None = None, *,
                    body: np.ndarray | None = None) -> np.ndarray:
    """(N, h, w) normalised MRI slices → (N, h, w, 3) uint8 RGB of ``output``, run at ``scale``
    (model pixels per slice pixel, one number or (rows, cols)).

    ``body`` (h, w) bool: run the network only on its bounding box plus ``CROP_MARGIN`` model
    pixels, rounded up to ``CROP_STEP``, and give the rest the colour the model gave the air at
    the box's edge (the median of its outer ring, so the seam does not show; a slice with no
    body at all gets the model's colour for a plane of air). None: every pixel goes through the
    network. Both the volume colorizer and the viewer call this, so a plane looks the same in an
    exported volume and on screen.
    """
    scale = np.broadcast_to(np.asarray(scale, dtype=np.float64), (2,))
    device = getattr(colorizer, "device", torch.device("cpu"))
    box = (slice(None), slice(None))
    if body is not None:
        margin = np.ceil(CROP_MARGIN / scale).astype(int)
        step = np.maximum(1, np.round(CROP_STEP / scale)).astype(int)
        box = _body_box(body, margin, step)
        if box is None:
            return np.broadcast_to(air_colour(colorizer, output), slices.shape + (3,)).copy()
    part = slices[:, box[0], box[1]]
    size = tuple(max(MIN_PIXELS, int(round(n * f))) for n, f in zip(part.shape[1:], scale))
    with torch.inference_mode():
        rgb = _colorize_batch(colorizer, part, size, output, device)
    if rgb.shape[1:3] == slices.shape[1:]:
        return rgb
    ring = np.concatenate([rgb[:, 0], rgb[:, -1], rgb[:, 1:-1, 0], rgb[:, 1:-1, -1]], axis=1)  # (N, ring, 3)
    out = np.empty(slices.shape + (3,), dtype=np.uint8)
    out[:] = np.median(ring, axis=1).astype(np.uint8)[:, None, None, :]
    out[(slice(None), *box)] = rgb
    return out


#: Air colours per model and output; weak keys, so a model the viewer has replaced is freed.
_AIR: "weakref.WeakKeyDictionary[object, dict[str | None, np.ndarray]]" = weakref.WeakKeyDictionary()


def air_colour(colorizer, output: str | None) -> np.ndarray:
    """uint8 RGB the model gives a plane of air (zeros): the fill of a slice with no body
    (cached per model and output)."""
    cached = _AIR.setdefault(colorizer, {})
    if output not in cached:
        device = getattr(colorizer, "device", torch.device("cpu"))
        with torch.inference_mode():
            rgb = colorizer.colorize(torch.zeros(1, 1, 4 * CROP_MARGIN, 4 * CROP_MARGIN, device=device), output)
        centre = rgb[0, :, 2 * CROP_MARGIN, 2 * CROP_MARGIN].clamp(0, 1)
        cached[output] = (centre * 255).round().to(torch.uint8).cpu().numpy()
    return cached[output]


def _body_box(mask2d: np.ndarray, margin: np.ndarray, step: np.ndarray) -> tuple[slice, slice] | None:
    """Row and column slices of the mask's bounding box grown by ``margin`` (rows, cols) pixels,
    then to a multiple of ``step`` pixels (so few distinct plane sizes reach the network: on a CPU
    each new input shape costs the convolution library a new kernel set, seconds on a busy machine)."""
    rows, cols = np.flatnonzero(mask2d.any(axis=1)), np.flatnonzero(mask2d.any(axis=0))
    if rows.size == 0:
        return None
    out = []
    for idx, m, q, n in zip((rows, cols), margin, step, mask2d.shape):
        lo, hi = max(0, idx[0] - m), min(n, idx[-1] + m + 1)
        want = min(n, int(np.ceil((hi - lo) / q) * q))
        lo = min(max(0, lo - (want - (hi - lo)) // 2), n - want)
        out.append(slice(lo, lo + want))
    return out[0], out[1]


def _colorize_batch(colorizer, part: np.ndarray, size: tuple[int, int], output: str | None, device) -> np.ndarray:
    """(N, h, w) normalised slices → (N, h, w, 3) uint8 RGB, run at ``size`` pixels."""
    h, w = part.shape[1:]
    chunk = torch.from_numpy(np.ascontiguousarray(part))[:, None].to(device)
    x = _resize(chunk, size).clamp_(0.0, 1.0)
    rgb = colorizer.colorize(x, output)  # (N, 3, H', W') float32 in [0, 1]
    rgb = _resize(rgb, (h, w)).clamp_(0.0, 1.0)
    return rgb.mul_(255.0).round_().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def export_inference_checkpoint(source: str | os.PathLike, folder: str | os.PathLike, *, pixel_mm: float,
                                serve: str | None = None, extra: dict | None = None) -> Path:
    """Write a slim inference checkpoint into ``folder``: G_m→ĉ only (no discriminators, no
    G_c→m, no U-Net), the architecture, the label table, the served output and ``pixel_mm`` in
    its metadata, plus ``model.json`` (architecture and metadata) and ``labels.csv`` (the label
    table) beside it for people to read. Returns the checkpoint path."""
    from core.atomic import write_text
    from core.model.checkpoint import CHECKPOINT_FILE, load_checkpoint, save_checkpoint

    ck = load_checkpoint(source)
    generator = ck.build("g_mc")
    meta = {**ck.extra, **(extra or {}), "pixel_mm": float(pixel_mm)}
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = save_checkpoint(folder / CHECKPOINT_FILE, {"g_mc": generator}, ck.config, serve=serve or ck.serve,
                           label_table=ck.label_table, extra=meta)
    write_text(folder / "model.json", json.dumps({"model": ck.config.to_dict(), "serve": serve or ck.serve,
                                                  "extra": meta}, indent=1, default=str) + "\n")
    if ck.label_table is not None:
        ck.label_table.write(folder / "labels.csv")
    return path


__all__ = ["AXES", "DEFAULT_PIXEL_MM", "DEFAULT_BATCH", "slicing_axis", "checkpoint_pixel_mm", "check_mri",
           "colorize_volume", "export_inference_checkpoint"]
