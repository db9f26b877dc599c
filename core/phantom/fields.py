"""Seeded random streams and smooth random fields, cheap enough for whole-body volumes.

A smooth field is Gaussian white noise on a coarse lattice (spacing a fraction of the correlation
length), blurred there, and evaluated anywhere by trilinear interpolation of the lattice. Because
the lattice is defined in millimetres, not voxels, the same seed gives the same field whatever
grid it is sampled on (so ``size="small"`` and ``size="default"`` show the same body), and
evaluating it on an axis-aligned grid is separable: three 1-D interpolations instead of a 3-D one.
"""
from __future__ import annotations

import zlib

import numpy as np
from scipy import ndimage as ndi


def stream(seed: int, name: str) -> np.random.Generator:
    """The generator of one named random component of subject ``seed``.

    Each component draws from its own stream, so adding or changing one component never shifts
    the random numbers of another (subjects stay stable across phantom edits).
    """
    return np.random.default_rng([int(seed), zlib.crc32(name.encode("utf-8"))])


def _axis_weights(coords: np.ndarray, origin: float, spacing: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Lower lattice index and linear weight of each coordinate (clamped to the lattice)."""
    f = np.clip((np.asarray(coords, dtype=np.float64) - origin) / spacing, 0.0, n - 1.0)
    i0 = np.minimum(np.floor(f).astype(np.intp), n - 2)
    return i0, (f - i0).astype(np.float32)


def _interp_axis(a: np.ndarray, axis: int, coords: np.ndarray, origin: float, spacing: float) -> np.ndarray:
    i0, w = _axis_weights(coords, origin, spacing, a.shape[axis])
    shape = [1] * a.ndim
    shape[axis] = w.size
    w = w.reshape(shape)
    a0 = np.take(a, i0, axis=axis)
    a1 = np.take(a, i0 + 1, axis=axis)
    a1 -= a0
    a1 *= w
    a0 += a1
    return a0


class LatticeField:
    """A field (scalar or vector) defined by trilinear interpolation of values on a regular lattice.

    ``values`` is indexed (z, y, x[, channel]); ``origin`` and ``spacing`` are (x, y, z) in mm.
    Outside the lattice the field is clamped to its edge values.
    """

    def __init__(self, values: np.ndarray, origin, spacing):
        self.values = np.ascontiguousarray(values, dtype=np.float32)
        if self.values.ndim not in (3, 4) or min(self.values.shape[:3]) < 2:
            raise ValueError(f"lattice values must be (z, y, x[, c]) with at least 2 nodes per axis, "
                             f"got {self.values.shape}")
        self.origin = np.asarray(origin, dtype=np.float64).reshape(3)
        self.spacing = np.asarray(spacing, dtype=np.float64).reshape(3)

    @classmethod
    def gaussian(cls, rng: np.random.Generator, lo, hi, correlation_mm, channels: int | None = None,
                 nodes_per_correlation: float = 3.0) -> "LatticeField":
        """A zero-mean, unit-variance Gaussian random field over the box [lo, hi] (mm, x y z).

        ``correlation_mm`` (scalar or per axis x, y, z) is the length ℓ of the autocorrelation
        exp(-r²/2ℓ²); a per-axis value stretches the field (muscle fibres). The lattice has
        ``nodes_per_correlation`` nodes per ℓ and a one-node margin around the box.
        """
        lo = np.asarray(lo, dtype=np.float64)
        hi = np.asarray(hi, dtype=np.float64)
        corr = np.broadcast_to(np.asarray(correlation_mm, dtype=np.float64), (3,))
        spacing = corr / nodes_per_correlation
        n = np.ceil((hi - lo) / spacing).astype(int) + 3
        origin = lo - spacing
        sigma = (corr / np.sqrt(2.0)) / spacing  # white noise blurred by σ has correlation length σ·√2
        shape = (n[2], n[1], n[0]) + (() if channels is None else (channels,))
        noise = rng.standard_normal(shape, dtype=np.float32)
        blur = (sigma[2], sigma[1], sigma[0]) + (() if channels is None else (0.0,))
        ndi.gaussian_filter(noise, blur, output=noise, mode="wrap", truncate=3.0)
        axes = (0, 1, 2)
        noise -= noise.mean(axis=axes)
        noise /= np.maximum(noise.std(axis=axes), 1e-12)
        return cls(noise, origin, spacing)

    @property
    def channels(self) -> int | None:
        return self.values.shape[3] if self.values.ndim == 4 else None

    def on_grid(self, zc: np.ndarray, yc: np.ndarray, xc: np.ndarray) -> np.ndarray:
        """The field on the axis-aligned grid spanned by coordinate vectors z, y, x (mm), float32.

        Separable: interpolates one axis at a time, so the cost is a few operations per output voxel.
        """
        out = _interp_axis(self.values, 0, zc, self.origin[2], self.spacing[2])
        out = _interp_axis(out, 1, yc, self.origin[1], self.spacing[1])
        return _interp_axis(out, 2, xc, self.origin[0], self.spacing[0])

    def at(self, points: np.ndarray) -> np.ndarray:
        """The field at physical points (…, 3) in mm (x, y, z): (…) or (…, channels), float64."""
        p = np.asarray(points, dtype=np.float64)
        flat = p.reshape(-1, 3)
        n_xyz = np.array(self.values.shape[:3][::-1]) - 1
        idx = np.clip((flat - self.origin) / self.spacing, 0, n_xyz)[:, ::-1].T  # (z, y, x) × N
        chans = [self.values] if self.channels is None else [self.values[..., c] for c in range(self.channels)]
        out = np.stack([ndi.map_coordinates(c, idx, order=1, mode="nearest", prefilter=False) for c in chans],
                       axis=-1).astype(np.float64)
        return out.reshape(p.shape[:-1]) if self.channels is None else out.reshape(p.shape[:-1] + (self.channels,))

    def gradient(self) -> "LatticeField":
        """The gradient (per mm, channels x, y, z) of a scalar field, on the same lattice."""
        if self.channels is not None:
            raise ValueError("gradient of a vector field is not defined here")
        gz, gy, gx = np.gradient(self.values, *self.spacing[::-1])
        return LatticeField(np.stack([gx, gy, gz], axis=-1), self.origin, self.spacing)

    def scaled(self, factor: float) -> "LatticeField":
        return LatticeField(self.values * np.float32(factor), self.origin, self.spacing)
