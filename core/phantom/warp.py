"""The known misalignment between the MRI and the cryosection (docs/phantom.md).

    T(p) = R · (p + u_smooth(p) + u_fine(p) − c) + c + t        (MRI mm → cryosection mm)

a rigid motion (rotation R of 4–6° about a random axis through the body centre c, translation t
of 5–10 mm) after two displacement fields: a smooth one (correlation 40–60 mm, RMS 3–8 mm) that
a B-spline registration can recover, and a fine one (correlation ~10 mm, RMS 1–2 mm) finer than
a B-spline grid, which stays as residual error. Both fields live on coarse lattices in MRI
space, so the whole transform is a 4×4 matrix plus two small arrays: it is cached with the
subject and lets registration code compute its target registration error exactly.
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from core.errors import InputError
from core.phantom.fields import LatticeField, stream

ROTATION_DEG = (4.0, 6.0)
TRANSLATION_MM = (5.0, 10.0)
SMOOTH_CORRELATION_MM, SMOOTH_RMS_MM = (40.0, 60.0), (3.0, 8.0)
FINE_CORRELATION_MM, FINE_RMS_MM = (8.0, 12.0), (1.0, 2.0)


def _random_unit(rng: np.random.Generator) -> np.ndarray:
    v = rng.standard_normal(3)
    return v / np.linalg.norm(v)


def _displacement(rng: np.random.Generator, lo, hi, correlation, rms, nodes: float) -> LatticeField:
    """A vector field whose RMS length over its lattice is exactly ``rms`` mm."""
    field = LatticeField.gaussian(rng, lo, hi, rng.uniform(*correlation), channels=3, nodes_per_correlation=nodes)
    return field.scaled(rng.uniform(*rms) / np.sqrt(3.0))  # unit variance per component → RMS |u| = √3


class PhantomTransform:
    """Maps physical points of the MRI to the physical points of the same tissue in the cryosection."""

    def __init__(self, rigid: np.ndarray, smooth: LatticeField, fine: LatticeField):
        self.rigid = np.asarray(rigid, dtype=np.float64).reshape(4, 4)
        self.smooth = smooth
        self.fine = fine

    @classmethod
    def draw(cls, seed: int, centre, smooth_box, fine_box) -> "PhantomTransform":
        """The misalignment of subject ``seed``; fields cover the given (lo, hi) boxes of MRI space."""
        rng = stream(seed, "warp.rigid")
        axis, angle = _random_unit(rng), np.deg2rad(rng.uniform(*ROTATION_DEG))
        shift = _random_unit(rng) * rng.uniform(*TRANSLATION_MM)
        k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
        rot = np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)
        c = np.asarray(centre, dtype=np.float64)
        rigid = np.eye(4)
        rigid[:3, :3] = rot
        rigid[:3, 3] = c + shift - rot @ c
        smooth = _displacement(stream(seed, "warp.smooth"), *smooth_box, SMOOTH_CORRELATION_MM, SMOOTH_RMS_MM, 3.0)
        fine = _displacement(stream(seed, "warp.fine"), *fine_box, FINE_CORRELATION_MM, FINE_RMS_MM, 1.5)
        return cls(rigid, smooth, fine)

    # --- mapping ---------------------------------------------------------------------------------
    def displacement(self, points: np.ndarray) -> np.ndarray:
        """The non-rigid part u_smooth + u_fine (mm) at MRI points (…, 3)."""
        return self.smooth.at(points) + self.fine.at(points)

    def mri_to_cryo(self, points: np.ndarray) -> np.ndarray:
        """Physical MRI points (…, 3) → physical cryosection points (…, 3) of the same tissue."""
        p = np.asarray(points, dtype=np.float64)
        q = p + self.displacement(p)
        return q @ self.rigid[:3, :3].T + self.rigid[:3, 3]

    def mri_to_cryo_grid(self, zc: np.ndarray, yc: np.ndarray, xc: np.ndarray) -> np.ndarray:
        """`mri_to_cryo` of every point of the axis-aligned grid spanned by z, y, x: (nz, ny, nx, 3).

        The same map evaluated separably (equal to `mri_to_cryo` up to float32 rounding).
        """
        u = self.smooth.on_grid(zc, yc, xc)
        u += self.fine.on_grid(zc, yc, xc)
        u[..., 0] += xc.astype(np.float32).reshape(1, 1, -1)
        u[..., 1] += yc.astype(np.float32).reshape(1, -1, 1)
        u[..., 2] += zc.astype(np.float32).reshape(-1, 1, 1)
        return u @ self.rigid[:3, :3].T.astype(np.float32) + self.rigid[:3, 3].astype(np.float32)

    def cryo_to_mri(self, points: np.ndarray, iterations: int = 30) -> np.ndarray:
        """The inverse map, by fixed-point iteration p ← R⁻¹(c − t') − u(p) (converges: |∇u| < 1)."""
        c = np.asarray(points, dtype=np.float64)
        q = (c - self.rigid[:3, 3]) @ self.rigid[:3, :3]  # R⁻¹ = Rᵀ
        p = q.copy()
        for _ in range(iterations):
            p = q - self.displacement(p)
        return p

    # --- storage ----------------------------------------------------------------------------------
    def to_arrays(self) -> dict[str, np.ndarray]:
        out = {"rigid": self.rigid}
        for name, f in (("smooth", self.smooth), ("fine", self.fine)):
            out.update({f"{name}_values": f.values, f"{name}_origin": f.origin, f"{name}_spacing": f.spacing})
        return out

    @classmethod
    def from_arrays(cls, arrays) -> "PhantomTransform":
        fields = [LatticeField(arrays[f"{n}_values"], arrays[f"{n}_origin"], arrays[f"{n}_spacing"])
                  for n in ("smooth", "fine")]
        return cls(arrays["rigid"], *fields)

    def save(self, path: str | os.PathLike) -> None:
        """Write the transform as an ``.npz`` (atomically)."""
        from core.atomic import atomic_path

        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **self.to_arrays())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "PhantomTransform":
        try:
            with np.load(Path(path), allow_pickle=False) as data:
                return cls.from_arrays({k: data[k] for k in data.files})
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise InputError(path, f"is not a phantom transform ({exc})") from None

    @property
    def rotation_deg(self) -> float:
        """Angle of the rigid rotation (degrees)."""
        return float(np.degrees(np.arccos(np.clip((np.trace(self.rigid[:3, :3]) - 1) / 2, -1, 1))))
