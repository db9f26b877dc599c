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

CHUNK = 6  # MRI slices per chunk (bounds the temporary index arrays)


class GridPoints:
    """Trilinear weights and nearest-voxel indices of physical points on a grid."""

    def __init__(self, grid: Grid, points: np.ndarray):
        p = points.reshape(-1, 3)
        nx, ny, nz = grid.size_xyz
        strides = (1, nx, nx * ny)
        lower = np.zeros(len(p), dtype=np.int64)
        self.nearest_index = np.zeros(len(p), dtype=np.int64)
        fractions = []
        for k, n in enumerate((nx, ny, nz)):
            f = np.clip((p[:, k] - np.float32(grid.origin[k])) / np.float32(grid.spacing[k]), 0, n - 1)
            i0 = np.minimum(f.astype(np.int64), n - 2)
            fractions.append((f - i0).astype(np.float32))
            lower += i0 * strides[k]
            self.nearest_index += np.rint(f).astype(np.int64) * strides[k]
        self._corners = []
        for corner in np.ndindex(2, 2, 2):  # (dx, dy, dz)
            w = np.ones(len(p), dtype=np.float32)
            for k, (step, frac) in enumerate(zip(corner, fractions)):
                w *= frac if step else 1 - frac
            self._corners.append((lower + int(np.dot(corner, strides)), w))

    def nearest(self, volume: np.ndarray) -> np.ndarray:
        return volume.reshape(-1)[self.nearest_index]

    def linear(self, volume: np.ndarray) -> np.ndarray:
        """Trilinear interpolation of a (z, y, x) or interleaved (z, y, x, c) volume.

        Float volumes give float32; integer volumes (RGB uint8) are rounded back to their dtype.
        """
        channels = volume.shape[3] if volume.ndim == 4 else 1
        flat = volume.reshape(-1)
        out = np.zeros((len(self.nearest_index), channels), dtype=np.float32)
        for index, w in self._corners:
            for c in range(channels):
                out[:, c] += flat[index * channels + c if channels > 1 else index] * w
        if np.issubdtype(volume.dtype, np.integer):
            info = np.iinfo(volume.dtype)
            out = np.clip(np.rint(out), info.min, info.max).astype(volume.dtype)
        return out if volume.ndim == 4 else out[:, 0]


def resample_to_mri(transform: PhantomTransform, mri_grid: Grid, cryo_grid: Grid,
                    nearest: list[np.ndarray], linear: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Cryosection-grid volumes seen through the transform, on the MRI grid, chunk by chunk.

    Returns (nearest-neighbour results, trilinear results); see `GridPoints.linear` for dtypes.
    """
    shape = mri_grid.shape
    near_out = [np.empty(shape, dtype=v.dtype) for v in nearest]
    lin_out = [np.empty(shape + v.shape[3:], dtype=v.dtype if np.issubdtype(v.dtype, np.integer) else np.float32)
               for v in linear]
    zc, yc, xc = mri_grid.axes()
    for z0 in range(0, shape[0], CHUNK):
        zs = slice(z0, min(z0 + CHUNK, shape[0]))
        pts = GridPoints(cryo_grid, transform.mri_to_cryo_grid(zc[zs], yc, xc))
        chunk = (zs.stop - zs.start,) + shape[1:]
        for src, dst in zip(nearest, near_out):
            dst[zs] = pts.nearest(src).reshape(chunk)
        for src, dst in zip(linear, lin_out):
            dst[zs] = pts.linear(src).reshape(chunk + src.shape[3:])
    return near_out, lin_out
