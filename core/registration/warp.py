"""A registration result as a dense displacement field, and resampling volumes through it.

Elastix's transform maps a *fixed* (cryosection) point p to the *moving* (MRI) point
q = p + d(p). Sampling d once on the registration grid (transformix's deformation field) turns
every later use into cheap torch ``grid_sample`` calls: warping the MRI, its labels and the true
colorization onto the full-resolution cryosection grid, mapping TRE points, and checking the
field for folds. The B-spline field is smooth on the scale of its control grid (≥ 10 mm), so
trilinear interpolation of a field sampled every 2–3 mm changes positions by hundredths of a mm.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from core.volume import Volume

#: Points per grid_sample call when warping: bounds memory to a few tens of MB.
_CHUNK_POINTS = 1 << 21


def _to_grid(frame: Volume) -> tuple[torch.Tensor, torch.Tensor]:
    """(A, b) with ``A @ p + b`` the grid_sample coordinate (align_corners=True) of physical point p."""
    m = frame.physical_to_index_matrix()
    norm = 2.0 / np.maximum(np.asarray(frame.size_xyz, dtype=np.float64) - 1, 1)
    return (torch.from_numpy((m[:3, :3] * norm[:, None]).astype(np.float32)),
            torch.from_numpy((m[:3, 3] * norm - 1).astype(np.float32)))


def _grid_sample(tensor: torch.Tensor, coords: torch.Tensor, mode: str, padding: str) -> torch.Tensor:
    """Values (n, C) of a (1, C, Z, Y, X) tensor at grid_sample coordinates (n, 3).

    The points are split over as many batch elements as torch has threads (the volume is
    expanded, not copied): the 3-D CPU kernel parallelises over the batch only.
    """
    n = len(coords)
    parts = max(1, min(torch.get_num_threads(), n))
    per = -(-n // parts)
    if per * parts != n:
        coords = torch.cat([coords, coords.new_zeros((per * parts - n, 3))])
    out = F.grid_sample(tensor.expand(parts, -1, -1, -1, -1), coords.view(parts, 1, 1, per, 3), mode=mode,
                        padding_mode=padding, align_corners=True)  # (parts, C, 1, 1, per)
    return out[:, :, 0, 0].permute(0, 2, 1).reshape(parts * per, -1)[:n]


def _affine(points: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``points @ a.T + b`` for (n, 3) points, as three broadcast multiply-adds (a thin matmul is slow)."""
    return points[:, :1] * a[:, 0] + points[:, 1:2] * a[:, 1] + points[:, 2:] * a[:, 2] + b


def sample_at(tensor: torch.Tensor, frame: Volume, points: np.ndarray, mode: str = "bilinear",
              padding: str = "zeros") -> np.ndarray:
    """Values (n, C) of a (1, C, Z, Y, X) tensor laid on ``frame``'s grid at physical points (n, 3)."""
    a, b = _to_grid(frame)
    coords = _affine(torch.from_numpy(np.asarray(points, dtype=np.float64).reshape(-1, 3).astype(np.float32)), a, b)
    return _grid_sample(tensor, coords, mode, padding).numpy()


def _as_tensor(volume: Volume) -> torch.Tensor:
    """(1, C, Z, Y, X) float32 of a volume's raw values (no uint8 scaling: values are kept).

    Multi-channel volumes keep their channels-last memory layout, so ``grid_sample`` reads all
    channels of a voxel from one cache line.
    """
    t = torch.from_numpy(np.ascontiguousarray(volume.array, dtype=np.float32))
    return t[None].permute(0, 4, 1, 2, 3) if t.ndim == 4 else t[None, None]


@dataclass(eq=False)
class DisplacementField:
    """q = p + d(p): fixed-space points p (mm) to moving-space points q (mm).

    ``frame`` is a Volume whose array holds d as (z, y, x, 3) float32 with (x, y, z) components
    in mm (a vector field, not colour), on the grid the registration ran on.
    """

    frame: Volume

    def __post_init__(self) -> None:
        self._tensor = _as_tensor(self.frame)

    @property
    def vectors(self) -> np.ndarray:
        return self.frame.array

    def map_points(self, points: np.ndarray) -> np.ndarray:
        """Moving-space points (…, 3) of fixed-space points (…, 3); the field is clamped at its edges."""
        p = np.asarray(points, dtype=np.float64)
        d = sample_at(self._tensor, self.frame, p, padding="border")
        return p + d.reshape(p.shape).astype(np.float64)

    def warp(self, moving: Volume, reference: Volume, nearest: bool | None = None) -> Volume:
        """``moving`` (a moving-space volume) resampled onto ``reference``'s grid through the field.

        Labels (or ``nearest=True``) use nearest neighbour; images are trilinear and keep their
        dtype (uint8 is rounded back). Outside the moving volume: 0. Runs in float32 torch, slab
        by slab, so whole-body cryosection grids (tens of millions of voxels) take seconds.
        """
        nearest = moving.is_labels if nearest is None else nearest
        source = _as_tensor(moving)
        shape = reference.array.shape[:3]
        channels = moving.array.shape[3:] if moving.is_rgb else ()
        out = torch.empty((int(np.prod(shape)), moving.channels), dtype=torch.float32)
        m = torch.from_numpy(reference.index_to_physical_matrix().astype(np.float32))
        field_a, field_b = _to_grid(self.frame)
        moving_a, moving_b = _to_grid(moving)
        # fixed points and their field / moving coordinates are affine in the voxel index, so each
        # is a broadcast sum of per-axis terms instead of a per-voxel matrix product
        steps = [torch.arange(n, dtype=torch.float32)[:, None] * m[:3, k] for k, n in enumerate(shape[::-1])]
        x_part = steps[0][None, None]
        y_part = steps[1][None, :, None]
        plane = shape[1] * shape[2]
        step = max(1, _CHUNK_POINTS // plane)
        for z0 in range(0, shape[0], step):
            z1 = min(z0 + step, shape[0])
            p = (x_part + y_part + (steps[2][z0:z1] + m[:3, 3])[:, None, None]).reshape(-1, 3)
            q = p + _grid_sample(self._tensor, _affine(p, field_a, field_b), "bilinear", "border")
            out[z0 * plane:z1 * plane] = _grid_sample(source, _affine(q, moving_a, moving_b),
                                                      "nearest" if nearest else "bilinear", "zeros")
        values = out.numpy().reshape(shape + channels)
        return reference.with_array(_restore_dtype(values, moving.array.dtype), label_table=moving.label_table)

    def jacobian_determinant(self) -> np.ndarray:
        """det(∂q/∂p) on the field's grid: ≤ 0 where the mapping folds, ≈ 1 where it is rigid."""
        d = self.vectors.astype(np.float64)
        grads = np.empty(d.shape[:3] + (3, 3))  # [..., component, index axis x/y/z]
        for c in range(3):
            for axis, g in zip(range(3), np.gradient(d[..., c], axis=(2, 1, 0))):
                grads[..., c, axis] = g
        index_to_phys = self.frame.direction @ np.diag(self.frame.spacing)
        j = np.eye(3) + grads @ np.linalg.inv(index_to_phys)
        # the 3×3 determinant written out: np.linalg.det's per-matrix LU costs seconds on a whole body
        return (j[..., 0, 0] * (j[..., 1, 1] * j[..., 2, 2] - j[..., 1, 2] * j[..., 2, 1])
                - j[..., 0, 1] * (j[..., 1, 0] * j[..., 2, 2] - j[..., 1, 2] * j[..., 2, 0])
                + j[..., 0, 2] * (j[..., 1, 0] * j[..., 2, 1] - j[..., 1, 1] * j[..., 2, 0]))


def _restore_dtype(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    return values.astype(dtype, copy=False)


def identity_field() -> DisplacementField:
    """The zero displacement, 'before registration' for the measures.

    Two voxels per axis suffice: the field is clamped at its edges, so it is zero everywhere.
    """
    return DisplacementField(Volume(np.zeros((2, 2, 2, 3), np.float32)))
