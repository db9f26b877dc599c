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


def _normalised(frame: Volume, points: np.ndarray) -> torch.Tensor:
    """grid_sample coordinates (align_corners=True) of physical points (n, 3) in ``frame``."""
    index = frame.physical_to_index(points)
    norm = 2.0 / np.maximum(np.asarray(frame.size_xyz, dtype=np.float64) - 1, 1)
    return torch.from_numpy((index * norm - 1).astype(np.float32))


def sample_at(tensor: torch.Tensor, frame: Volume, points: np.ndarray, mode: str = "bilinear",
              padding: str = "zeros") -> np.ndarray:
    """Values (n, C) of a (1, C, Z, Y, X) tensor laid on ``frame``'s grid at physical points (n, 3)."""
    grid = _normalised(frame, points.reshape(-1, 3)).view(1, 1, 1, -1, 3)
    out = F.grid_sample(tensor, grid, mode=mode, padding_mode=padding, align_corners=True)
    return out[0, :, 0, 0].T.numpy()


def _as_tensor(volume: Volume) -> torch.Tensor:
    """(1, C, Z, Y, X) float32 of a volume's raw values (no uint8 scaling: values are kept)."""
    arr = np.ascontiguousarray(volume.array, dtype=np.float32)
    t = torch.from_numpy(arr)
    return (t.permute(3, 0, 1, 2) if arr.ndim == 4 else t[None]).unsqueeze(0)


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
        dtype (uint8 is rounded back). Outside the moving volume: 0.
        """
        nearest = moving.is_labels if nearest is None else nearest
        source = _as_tensor(moving)
        shape = reference.array.shape[:3]
        channels = moving.array.shape[3:] if moving.is_rgb else ()
        out = np.empty(shape + channels, dtype=np.float32)
        flat = out.reshape(-1, *channels) if channels else out.reshape(-1)
        plane = shape[1] * shape[2]
        step = max(1, _CHUNK_POINTS // plane)
        for z0 in range(0, shape[0], step):
            z1 = min(z0 + step, shape[0])
            zz, yy, xx = np.meshgrid(np.arange(z0, z1), np.arange(shape[1]), np.arange(shape[2]), indexing="ij")
            points = reference.index_to_physical(np.stack([xx, yy, zz], axis=-1).reshape(-1, 3))
            values = sample_at(source, moving, self.map_points(points), mode="nearest" if nearest else "bilinear")
            flat[z0 * plane:z1 * plane] = values if channels else values[:, 0]
        return reference.with_array(_restore_dtype(out, moving.array.dtype), label_table=moving.label_table)

    def jacobian_determinant(self) -> np.ndarray:
        """det(∂q/∂p) on the field's grid: ≤ 0 where the mapping folds, ≈ 1 where it is rigid."""
        d = self.vectors.astype(np.float64)
        grads = np.empty(d.shape[:3] + (3, 3))  # [..., component, index axis x/y/z]
        for c in range(3):
            for axis, g in zip(range(3), np.gradient(d[..., c], axis=(2, 1, 0))):
                grads[..., c, axis] = g
        index_to_phys = self.frame.direction @ np.diag(self.frame.spacing)
        return np.linalg.det(np.eye(3) + grads @ np.linalg.inv(index_to_phys))


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
