"""Axis-aligned voxel grids in LPS millimetres, and boxes of them for evaluating one structure.

Every anatomical structure is evaluated only inside its own bounding box (a `Box`), on
broadcast coordinate vectors rather than full coordinate volumes: that keeps a whole-body
phantom at 2 mm to a few seconds.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.volume import Volume


@dataclass(frozen=True)
class Box:
    """A sub-block of a grid: its index slices and broadcastable physical coordinates (float32)."""

    slices: tuple[slice, slice, slice]  # (z, y, x)
    x: np.ndarray  # (1, 1, nx)
    y: np.ndarray  # (1, ny, 1)
    z: np.ndarray  # (nz, 1, 1)

    @property
    def points(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.x, self.y, self.z

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.z.shape[0], self.y.shape[1], self.x.shape[2]


@dataclass(frozen=True)
class Grid:
    """A regular grid with identity direction: ``shape`` is (z, y, x); spacing/origin are (x, y, z) mm."""

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]

    @classmethod
    def covering(cls, lo, hi, spacing) -> "Grid":
        """The grid of the given spacing centred on the box [lo, hi] (x, y, z mm) and covering it."""
        lo, hi, sp = (np.asarray(v, dtype=np.float64) for v in (lo, hi, spacing))
        n = np.ceil((hi - lo) / sp - 1e-9).astype(int) + 1
        origin = (lo + hi) / 2 - (n - 1) / 2 * sp
        return cls((int(n[2]), int(n[1]), int(n[0])), tuple(float(s) for s in sp), tuple(float(o) for o in origin))

    @property
    def size_xyz(self) -> tuple[int, int, int]:
        return self.shape[2], self.shape[1], self.shape[0]

    def axis(self, k: int) -> np.ndarray:
        """Physical coordinates (float64) of the voxel centres along axis k (0 = x, 1 = y, 2 = z)."""
        return self.origin[k] + self.spacing[k] * np.arange(self.size_xyz[k])

    def axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Coordinate vectors (z, y, x) of the voxel centres."""
        return self.axis(2), self.axis(1), self.axis(0)

    def _range(self, k: int, lo: float, hi: float) -> slice:
        n = self.size_xyz[k]
        i0 = int(np.clip(np.ceil((lo - self.origin[k]) / self.spacing[k]), 0, n))
        i1 = int(np.clip(np.floor((hi - self.origin[k]) / self.spacing[k]) + 1, 0, n))
        return slice(i0, max(i0, i1))

    def box(self, lo, hi, z_slice: slice | None = None, allow_empty: bool = False) -> Box | None:
        """The voxels whose centres lie in [lo, hi] (x, y, z mm), within ``z_slice`` if given; None if
        empty, unless ``allow_empty`` (then a box of zero voxels)."""
        sx, sy, sz = (self._range(k, lo[k], hi[k]) for k in range(3))
        if z_slice is not None:
            start = max(sz.start, z_slice.start)
            sz = slice(start, max(start, min(sz.stop, z_slice.stop)))
        if not allow_empty and (sx.start >= sx.stop or sy.start >= sy.stop or sz.start >= sz.stop):
            return None
        x = self.axis(0)[sx].astype(np.float32).reshape(1, 1, -1)
        y = self.axis(1)[sy].astype(np.float32).reshape(1, -1, 1)
        z = self.axis(2)[sz].astype(np.float32).reshape(-1, 1, 1)
        return Box((sz, sy, sx), x, y, z)

    def slab(self, z_slice: slice) -> Box:
        """The whole grid restricted to the slices ``z_slice``."""
        return self.box((-np.inf,) * 3, (np.inf,) * 3, z_slice)

    def slabs(self, thickness: int) -> list[slice]:
        """Consecutive z slices of at most ``thickness`` voxels covering the grid (chunked processing)."""
        return [slice(z, min(z + thickness, self.shape[0])) for z in range(0, self.shape[0], thickness)]

    def volume(self, array: np.ndarray, label_table=None) -> Volume:
        return Volume(array, spacing=self.spacing, origin=self.origin, direction=np.eye(3), label_table=label_table)
