"""Folders of 2-D images (PNG, BMP, JPEG, TIFF) read as one volume, slice by slice.

Cryosection photographs come as one image per slice. Each slice is reduced as it is read
(block mean in-plane, mean of consecutive slices) so that a stack far larger than memory
at full resolution can still be loaded at a working resolution.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from core.atomic import atomic_directory, write_text
from core.errors import InputError
from core.io.checks import check_voxel_budget
from core.volume import Volume

IMAGE_SUFFIXES = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff")


def natural_key(path: Path) -> list:
    """Sort key putting ``slice2`` before ``slice10``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def image_files(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
                  key=natural_key)


def block_reduce(plane: np.ndarray, f: int) -> np.ndarray:
    """Mean over f×f blocks of a (h, w[, c]) plane, cropping the remainder."""
    if f == 1:
        return plane
    h, w = (plane.shape[0] // f) * f, (plane.shape[1] // f) * f
    p = plane[:h, :w].astype(np.float32)
    return p.reshape(h // f, f, w // f, f, *plane.shape[2:]).mean(axis=(1, 3))


def reduce_slices(slices, fz: int, out_dtype: np.dtype) -> np.ndarray:
    """Average groups of ``fz`` consecutive slices, streaming, into one array."""
    groups, acc, n = [], None, 0
    for s in slices:
        acc = s.astype(np.float32) if acc is None else acc + s
        n += 1
        if n == fz:
            groups.append(acc / n)
            acc, n = None, 0
    if acc is not None and not groups:
        groups.append(acc / n)
    out = np.stack(groups)
    if np.issubdtype(out_dtype, np.integer):
        out = np.clip(np.rint(out), np.iinfo(out_dtype).min, np.iinfo(out_dtype).max)
    return out.astype(out_dtype)


def _load_plane(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            if im.mode in ("P", "CMYK", "YCbCr", "LA", "RGBA"):
                im = im.convert("RGB")
            return np.asarray(im)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(path, f"is not a readable image ({exc})") from None


def read_stack(folder: Path, options: dict, limit: int | None) -> Volume:
    """Read a folder of 2-D images as a (z, y, x[, 3]) volume with the sidecar's frame."""
    files = image_files(folder)
    if not files:
        raise InputError(folder, f"holds no images ({', '.join(IMAGE_SUFFIXES)}) and no DICOM series")
    try:
        with Image.open(files[0]) as im:
            w, h = im.size
            bands = len(im.getbands())
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(files[0], f"is not a readable image ({exc})") from None
    fx, fy, fz = downsample_factors(folder, options.get("downsample", 1))
    if fx != fy:
        raise InputError(folder, "in-plane downsampling must use the same factor for x and y")
    check_voxel_budget(str(folder), (w // fx, h // fy, max(len(files) // fz, 1), 3 if bands >= 3 else 1), limit)
    if options.get("flip_z"):
        files = files[::-1]

    first = _load_plane(files[0])

    def planes():
        for p in files:
            plane = _load_plane(p) if p is not files[0] else first
            if plane.shape[:2] != first.shape[:2] or plane.ndim != first.ndim:
                raise InputError(p, f"has shape {plane.shape}, unlike the first image {first.shape} of the stack")
            yield block_reduce(plane, fx)

    array = reduce_slices(planes(), fz, first.dtype)
    spacing = np.asarray(options.get("spacing", (1.0, 1.0, 1.0)), dtype=np.float64) * (fx, fy, fz)
    return Volume(array, spacing=spacing, origin=options.get("origin", (0, 0, 0)),
                  direction=np.asarray(options.get("direction", np.eye(3).reshape(-1))).reshape(3, 3))


def downsample_factors(source: Path, downsample) -> tuple[int, int, int]:
    f = [int(downsample)] * 3 if np.isscalar(downsample) else [int(v) for v in downsample]
    if len(f) != 3 or min(f) < 1:
        raise InputError(source, f"downsample must be a positive integer or three of them, got {downsample!r}")
    return f[0], f[1], f[2]


def write_stack(volume: Volume, folder: Path) -> None:
    """Write a uint8 scalar or RGB volume as a PNG stack plus ``volume.json`` (frame).

    Written through `core.atomic.atomic_directory`: the folder appears whole or not at all.
    """
    arr = volume.array
    if arr.dtype != np.uint8 and not (np.issubdtype(arr.dtype, np.integer) and arr.min() >= 0 and arr.max() <= 255):
        raise InputError(folder, f"PNG stacks hold 8-bit data; this volume is {arr.dtype} "
                                 f"(write NIfTI/MHA/NRRD instead, or convert to uint8)")
    with atomic_directory(folder) as tmp:
        digits = max(4, len(str(arr.shape[0])))
        for k, plane in enumerate(arr.astype(np.uint8)):
            Image.fromarray(plane).save(tmp / f"slice_{k:0{digits}d}.png")
        meta = {"spacing": volume.spacing.tolist(), "origin": volume.origin.tolist(),
                "direction": volume.direction.reshape(-1).tolist()}
        if volume.label_table is not None:
            volume.label_table.write(tmp / "labels.csv")
            meta["label_table"] = "labels.csv"
        write_text(tmp / "volume.json", json.dumps(meta, indent=1))


__all__ = ["read_stack", "write_stack", "image_files", "block_reduce", "reduce_slices", "downsample_factors"]
