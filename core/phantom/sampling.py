"""Resampling cryosection-grid volumes at the images of the MRI voxel centres under the transform.

Labels, MRI signal and RGB are all sampled at the same points, so the eight corner indices and
trilinear weights are computed once per chunk and shared (this is several times faster than one
``map_coordinates`` call per channel). Points outside the grid take the nearest edge value, as
``map_coordinates(mode="nearest")`` does.
"""
from __future__ import annotations

import numpy as np

from core.phantom.grid import Grid
from core.phantom.warp import PhantomTransform

CHUNK = 12  # MRI slices per chunk


class GridPoints:
    """Trilinear weights and nearest-voxel indices of physical points on a grid."""

    def __init__(self, grid: Grid, points: np.ndarray):
        p = points.reshape(-1, 3)
        nx, ny, nz = grid.size_xyz
        self._strides = (1, nx, nx * ny)
        self._lower = np.zeros(len(p), dtype=np.int64)
        self.nearest_index = np.zeros(len(p), dtype=np.int64)
        self._weights = []
        for k, n in enumerate((nx, ny, nz)):
            f = np.clip((p[:, k] - np.float32(grid.origin[k])) / np.float32(grid.spacing[k]), 0, n - 1)
            i0 = np.minimum(f.astype(np.int64), n - 2)
            self._weights.append((f - i0).astype(np.float32))
            self._lower += i0 * self._strides[k]
            self.nearest_index += np.rint(f).astype(np.int64) * self._strides[k]

    def nearest(self, volume: np.ndarray) -> np.ndarray:
        return volume.reshape(-1, *volume.shape[3:])[self.nearest_index]

    def linear(self, volume: np.ndarray) -> np.ndarray:
        """Trilinear interpolation (float32) of a (z, y, x) or (z, y, x, c) volume."""
        flat = volume.reshape(-1, *volume.shape[3:])
        wx, wy, wz = self._weights
        out = None
        for dz in (0, 1):
            for dy in (0, 1):
                for dx in (0, 1):
                    w = (wx if dx else 1 - wx) * (wy if dy else 1 - wy) * (wz if dz else 1 - wz)
                    offset = dx * self._strides[0] + dy * self._strides[1] + dz * self._strides[2]
                    values = flat[self._lower + offset].astype(np.float32)
                    term = values * (w if values.ndim == 1 else w[:, None])
                    out = term if out is None else out + term
        return out


def resample_to_mri(transform: PhantomTransform, mri_grid: Grid, cryo_grid: Grid,
                    nearest: list[np.ndarray], linear: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Cryosection-grid volumes seen through the transform, on the MRI grid.

    Returns (nearest-neighbour results in their own dtype, trilinear results as float32).
    """
    shape = mri_grid.shape
    near_out = [np.empty(shape + v.shape[3:], dtype=v.dtype) for v in nearest]
    lin_out = [np.empty(shape + v.shape[3:], dtype=np.float32) for v in linear]
    zc, yc, xc = mri_grid.axes()
    for z0 in range(0, shape[0], CHUNK):
        zs = slice(z0, min(z0 + CHUNK, shape[0]))
        pts = GridPoints(cryo_grid, transform.mri_to_cryo_grid(zc[zs], yc, xc))
        chunk = (zs.stop - zs.start,) + shape[1:]
        for src, dst in zip(nearest, near_out):
            dst[zs] = pts.nearest(src).reshape(chunk + src.shape[3:])
        for src, dst in zip(linear, lin_out):
            dst[zs] = pts.linear(src).reshape(chunk + src.shape[3:])
    return near_out, lin_out
