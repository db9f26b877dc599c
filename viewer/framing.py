"""How the viewer frames an MRI, derived once per load on the loading thread (no Qt).

The pixel size per orientation, the model's input range and the window/level presets come from
the MRI as a whole, never from one slice, so the display neither flickers nor costs time while
scrolling.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.normalize import body_mask, body_threshold, intensity_range
from core.planes import ORIENTATIONS
from core.volume import Volume
from viewer.state import Frame

#: Margin around the body's bounding box when framing a plane.
_FRAME_MARGIN = 1.08


@dataclass(frozen=True, eq=False)
class Framing:
    """What the viewer derives from an MRI once per load, on the loading thread (a few hundred ms
    on the default phantom, too long for the UI thread): plane framing, model input range, W/L presets."""

    frame: Frame
    value_range: tuple[float, float]
    presets: dict[str, tuple[float, float]]
    #: The body/air threshold in model input units ([0, 1] after ``value_range``): what the model
    #: crops each plane to (None: no body found, the whole plane goes through the model).
    body_level: float | None = None


def framing(mri: Volume, size: int = 256) -> Framing:
    """Frame ``mri`` for planes of ``size`` pixels: one Otsu body mask serves the frame, the
    model's input range and the body level."""
    threshold = body_threshold(mri)
    mask = body_mask(mri, threshold)
    lo, hi = intensity_range(mri, mask)
    level = None if threshold is None or not mask.any() else float((threshold - lo) / (hi - lo))
    return Framing(frame_for(mri, size, mask), (lo, hi), window_presets(mri), level)


def _corners(volume: Volume, lo_index: np.ndarray, hi_index: np.ndarray) -> np.ndarray:
    """The 8 physical corners of the index box [lo, hi] (x, y, z)."""
    idx = np.array([[(lo_index, hi_index)[b][k] for k, b in enumerate(bits)]
                    for bits in np.ndindex(2, 2, 2)], dtype=np.float64)
    return volume.index_to_physical(idx)


def _bounding_box(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index box (x, y, z) of the true voxels, from the mask's projections on each axis."""
    ranges = [np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis))) for axis in (2, 1, 0)]
    return (np.array([r[0] for r in ranges], dtype=float), np.array([r[-1] for r in ranges], dtype=float))


def frame_for(volume: Volume, size: int = 256, mask: np.ndarray | None = None) -> Frame:
    """Centre on the body and pick, per orientation, the pixel size that shows all of it.

    The body is the MRI's foreground (Otsu, unless ``mask`` is given); an empty or all-foreground
    volume falls back to the whole grid.
    """
    grid_lo, grid_hi = np.zeros(3), np.asarray(volume.size_xyz, dtype=np.float64) - 1
    mask = body_mask(volume) if mask is None else mask
    lo, hi = _bounding_box(mask) if mask.any() and not mask.all() else (grid_lo, grid_hi)
    body = _corners(volume, lo, hi)
    center = body.mean(axis=0)
    pixel_mm = {}
    for name, (u, v) in ORIENTATIONS.items():
        extent = max(np.ptp(body @ np.asarray(u)), np.ptp(body @ np.asarray(v)))
        pixel_mm[name] = float(max(extent, 1e-3) * _FRAME_MARGIN / size)
    mm_to_index = np.linalg.inv(volume.direction @ np.diag(volume.spacing))
    return Frame(center=center, pixel_mm=pixel_mm, corners=_corners(volume, grid_lo, grid_hi),
                 mm_to_index=mm_to_index)


def window_presets(volume: Volume) -> dict[str, tuple[float, float]]:
    """Named (window, level) settings: percentile auto-levels as Slicer offers, and the full range."""
    sample = volume.array[::2, ::2, ::2].astype(np.float32).ravel()
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        sample = np.array([0.0, 1.0], dtype=np.float32)
    named = {"auto (0.5–99.5 %)": (0.5, 99.5), "wide (0.1–99.9 %)": (0.1, 99.9),
             "narrow (5–95 %)": (5.0, 95.0), "full range": (0.0, 100.0)}
    values = np.percentile(sample, [p for pair in named.values() for p in pair])
    out = {}
    for i, name in enumerate(named):
        lo, hi = float(values[2 * i]), float(values[2 * i + 1])
        hi = hi if hi > lo else lo + 1.0
        out[name] = (hi - lo, (hi + lo) / 2)
    return out
