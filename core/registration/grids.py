"""The registration grid: the cryosection luminance block-averaged to about the MRI's resolution.

Elastix's time grows with the pyramid it builds from the fixed image, and the MRI carries no
detail finer than its own voxels, so registering against a full-resolution cryosection (0.2–1 mm)
only costs time. The transform found on the coarse grid is applied to the full grid afterwards.
"""
from __future__ import annotations

import numpy as np

from core.volume import Volume


def block_factors(spacing: np.ndarray, target_mm: float) -> tuple[int, int, int]:
    """Integer (x, y, z) reduction factors that bring ``spacing`` up to at most ``target_mm``."""
    return tuple(max(1, int(np.floor(target_mm / s + 1e-6))) for s in np.asarray(spacing, dtype=np.float64))


def block_mean(volume: Volume, factors: tuple[int, int, int]) -> Volume:
    """Mean over (fx, fy, fz) voxel blocks (a trailing partial block is dropped), frame kept exact."""
    fx, fy, fz = factors
    if factors == (1, 1, 1):
        return volume.with_array(volume.array.astype(np.float32), label_table=None)
    z, y, x = (n // f * f for n, f in zip(volume.array.shape[:3], (fz, fy, fx)))
    if min(z, y, x) == 0:
        raise ValueError(f"volume {volume.array.shape[:3]} is smaller than one block {factors[::-1]}")
    a = volume.array[:z, :y, :x].astype(np.float32)
    a = a.reshape(z // fz, fz, y // fy, fy, x // fx, fx).mean(axis=(1, 3, 5), dtype=np.float32)
    f = np.asarray(factors, dtype=np.float64)
    origin = volume.origin + volume.direction @ ((f - 1) / 2 * volume.spacing)
    return Volume(a, spacing=volume.spacing * f, origin=origin, direction=volume.direction)


def registration_grid(fixed: Volume, mask: np.ndarray, target_mm: float) -> tuple[Volume, np.ndarray]:
    """The fixed image and its body mask on the registration grid (mask: at least half the block)."""
    factors = block_factors(fixed.spacing, target_mm)
    coarse = block_mean(fixed, factors)
    coarse_mask = block_mean(fixed.with_array(mask.astype(np.float32), label_table=None), factors).array >= 0.5
    return coarse, coarse_mask


def strided(volume: Volume, max_voxels: int = 4_000_000) -> Volume:
    """Every k-th voxel along each axis (the same k), so that at most ``max_voxels`` remain.

    Alignment measures on a whole-body cryosection grid do not need every voxel: Dice over
    millions of voxels changes in the third decimal, and the warps it needs cost seconds each.
    """
    k = max(1, int(np.ceil((volume.array.shape[0] * volume.array.shape[1] * volume.array.shape[2] / max_voxels)
                           ** (1 / 3))))
    if k == 1:
        return volume
    return Volume(volume.array[::k, ::k, ::k], spacing=volume.spacing * k, origin=volume.origin,
                  direction=volume.direction, label_table=volume.label_table)
