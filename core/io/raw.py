"""Headerless raw RGB slices as the NLM Visible Human ships them (``a_vm1001.raw`` …).

Each file is one slice of w × h pixels, 3 bytes per pixel, either planar (all R, then all G,
then all B: the VHP layout) or interleaved (RGBRGB…). A single raw file may also hold a whole
volume when ``shape`` gives three dimensions. The layout can be detected: the right one gives
far smaller differences between neighbouring pixels.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from core.atomic import atomic_path, write_text
from core.errors import InputError
from core.io.checks import check_voxel_budget
from core.io.stacks import block_reduce, downsample_factors, natural_key, reduce_slices
from core.volume import Volume

LAYOUTS = ("planar", "interleaved", "auto")


def _decode(buf: np.ndarray, w: int, h: int, d: int, layout: str) -> np.ndarray:
    """(d, h, w, 3) from raw bytes of d slices in the given layout."""
    if layout == "planar":
        return buf.reshape(d, 3, h, w).transpose(0, 2, 3, 1)
    return buf.reshape(d, h, w, 3)


def detect_layout(buf: np.ndarray, w: int, h: int) -> str:
    """Pick the layout whose first slice has the smoother neighbouring pixels."""
    one = buf[: w * h * 3]
    scores = {}
    for layout in ("planar", "interleaved"):
        img = _decode(one, w, h, 1, layout)[0].astype(np.int16)
        scores[layout] = float(np.abs(np.diff(img, axis=1)).mean() + np.abs(np.diff(img, axis=0)).mean())
    return min(scores, key=scores.get)


def _shape(source: Path, options: dict) -> tuple[int, int, int | None]:
    shape = options.get("shape")
    if shape is None or len(shape) not in (2, 3):
        raise InputError(source, "raw RGB needs its dimensions: shape=[width, height] (one slice per file) "
                                 "or [width, height, depth], as an argument or in a sidecar JSON")
    w, h = int(shape[0]), int(shape[1])
    d = int(shape[2]) if len(shape) == 3 else None
    if min(w, h, d or 1) < 1:
        raise InputError(source, f"raw shape must be positive, got {shape}")
    return w, h, d


def read_raw(path: Path, options: dict, limit: int | None) -> Volume:
    """Read one raw file or a folder of raw slices as a uint8 RGB volume."""
    files = (sorted((p for p in path.iterdir() if p.suffix.lower() == ".raw"), key=natural_key)
             if path.is_dir() else [path])
    if not files:
        raise InputError(path, "holds no .raw files")
    w, h, d = _shape(path, options)
    per_file = d or 1
    header = int(options.get("header_bytes", 0))
    layout = options.get("layout", "auto")
    if layout not in LAYOUTS:
        raise InputError(path, f"layout must be one of {LAYOUTS}, got {layout!r}")
    fx, fy, fz = downsample_factors(path, options.get("downsample", 1))
    check_voxel_budget(str(path), (w // fx, h // fy, max(per_file * len(files) // fz, 1), 3), limit)
    need = header + w * h * 3 * per_file
    for f in files:
        size = f.stat().st_size
        if size < need:
            raise InputError(f, f"is truncated: {w}×{h}×{per_file} RGB needs {need:,} bytes, the file has {size:,}")
        if size > need:
            raise InputError(f, f"has {size:,} bytes, more than {w}×{h}×{per_file} RGB needs ({need:,}): "
                                f"check shape and header_bytes")
    if layout == "auto":
        layout = detect_layout(np.fromfile(files[0], dtype=np.uint8, count=w * h * 3, offset=header), w, h)
    if options.get("flip_z"):
        files = files[::-1]

    def planes():
        for f in files:
            block = _decode(np.fromfile(f, dtype=np.uint8, offset=header), w, h, per_file, layout)
            for plane in (block[::-1] if options.get("flip_z") else block):
                yield block_reduce(plane, fx)

    array = reduce_slices(planes(), fz, np.dtype(np.uint8))
    spacing = np.asarray(options.get("spacing", (1.0, 1.0, 1.0)), dtype=np.float64) * (fx, fy, fz)
    return Volume(array, spacing=spacing, origin=options.get("origin", (0, 0, 0)),
                  direction=np.asarray(options.get("direction", np.eye(3).reshape(-1))).reshape(3, 3))


def write_raw(volume: Volume, path: Path, layout: str = "planar") -> None:
    """Write a uint8 RGB volume as one raw file plus a sidecar JSON with shape, layout and frame."""
    if not volume.is_rgb or volume.array.dtype != np.uint8:
        raise InputError(path, "raw export holds uint8 RGB volumes only")
    if layout not in ("planar", "interleaved"):
        raise InputError(path, f"layout must be planar or interleaved, got {layout!r}")
    arr = volume.array[..., :3]
    data = arr.transpose(0, 3, 1, 2) if layout == "planar" else arr
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(np.ascontiguousarray(data).data)   # not tofile: its failures carry no errno
    d, h, w = arr.shape[:3]
    write_text(path.with_name(path.name + ".json"), json.dumps({
        "shape": [w, h, d], "layout": layout, "spacing": volume.spacing.tolist(),
        "origin": volume.origin.tolist(), "direction": volume.direction.reshape(-1).tolist()}, indent=1))
