"""The `Volume`: a voxel array plus its physical frame (spacing, origin, direction as ITK has them).

Index order of ``array`` is (z, y, x[, channel]) as ``SimpleITK.GetArrayFromImage`` gives it;
``spacing`` and ``origin`` are (x, y, z) and ``direction`` is the 3×3 ITK direction matrix
(columns are the physical directions of the x, y, z index axes). Keeping exactly ITK's
conventions means every reader/writer round trip is a plain copy of the frame.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from core.labels import LabelTable


def _vec3(values, name: str) -> np.ndarray:
    out = np.asarray(values, dtype=np.float64).reshape(-1)
    if out.shape != (3,) or not np.all(np.isfinite(out)):
        raise ValueError(f"{name} must be three finite numbers, got {values!r}")
    return out


@dataclass(eq=False)
class Volume:
    """A 3-D scalar, RGB or label volume in physical space (millimetres)."""

    array: np.ndarray
    spacing: np.ndarray = field(default_factory=lambda: np.ones(3))
    origin: np.ndarray = field(default_factory=lambda: np.zeros(3))
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))
    label_table: "LabelTable | None" = None

    def __post_init__(self) -> None:
        self.array = np.asarray(self.array)
        if self.array.ndim not in (3, 4) or (self.array.ndim == 4 and self.array.shape[3] not in (3, 4)):
            raise ValueError(f"a Volume holds (z, y, x) or (z, y, x, 3) arrays, got shape {self.array.shape}")
        self.spacing = _vec3(self.spacing, "spacing")
        if np.any(self.spacing <= 0):
            raise ValueError(f"spacing must be positive, got {self.spacing.tolist()}")
        self.origin = _vec3(self.origin, "origin")
        self.direction = np.asarray(self.direction, dtype=np.float64).reshape(3, 3)

    # --- shape -------------------------------------------------------------------------------
    @property
    def is_rgb(self) -> bool:
        return self.array.ndim == 4

    @property
    def is_labels(self) -> bool:
        """A label map: sampled with nearest neighbour, never interpolated."""
        return self.label_table is not None

    @property
    def size_xyz(self) -> tuple[int, int, int]:
        """Number of voxels along x, y, z (ITK order)."""
        z, y, x = self.array.shape[:3]
        return (x, y, z)

    @property
    def channels(self) -> int:
        return self.array.shape[3] if self.is_rgb else 1

    # --- frame -------------------------------------------------------------------------------
    def index_to_physical_matrix(self) -> np.ndarray:
        """4×4 affine taking a continuous (x, y, z) index to physical (x, y, z) in mm."""
        m = np.eye(4)
        m[:3, :3] = self.direction @ np.diag(self.spacing)
        m[:3, 3] = self.origin
        return m

    def physical_to_index_matrix(self) -> np.ndarray:
        """4×4 affine taking physical (x, y, z) mm to a continuous (x, y, z) index."""
        return np.linalg.inv(self.index_to_physical_matrix())

    def index_to_physical(self, index_xyz: np.ndarray) -> np.ndarray:
        """Physical points (…, 3) of continuous (x, y, z) indices (…, 3)."""
        p = np.asarray(index_xyz, dtype=np.float64)
        m = self.index_to_physical_matrix()
        return p @ m[:3, :3].T + m[:3, 3]

    def physical_to_index(self, points: np.ndarray) -> np.ndarray:
        """Continuous (x, y, z) indices (…, 3) of physical points (…, 3)."""
        p = np.asarray(points, dtype=np.float64)
        m = self.physical_to_index_matrix()
        return p @ m[:3, :3].T + m[:3, 3]

    @property
    def center(self) -> np.ndarray:
        """Physical centre of the voxel grid (mm)."""
        return self.index_to_physical((np.asarray(self.size_xyz, dtype=np.float64) - 1) / 2)

    @property
    def extent_mm(self) -> np.ndarray:
        """Physical size of the grid along its x, y, z index axes (mm)."""
        return np.asarray(self.size_xyz, dtype=np.float64) * self.spacing

    def same_frame(self, other: "Volume", atol: float = 1e-6) -> bool:
        """True when ``other`` has the same grid size, spacing, origin and direction."""
        return (self.size_xyz == other.size_xyz
                and np.allclose(self.spacing, other.spacing, atol=atol)
                and np.allclose(self.origin, other.origin, atol=atol)
                and np.allclose(self.direction, other.direction, atol=atol))

    def with_array(self, array: np.ndarray, label_table: "LabelTable | None | object" = ...) -> "Volume":
        """A volume on the same grid holding ``array`` (same z, y, x shape).

        Keeps this volume's label table unless ``label_table`` is given (``None`` drops it).
        """
        if np.asarray(array).shape[:3] != self.array.shape[:3]:
            raise ValueError(f"array shape {np.asarray(array).shape} does not fit grid {self.array.shape[:3]}")
        table = self.label_table if label_table is ... else label_table
        return replace(self, array=array, label_table=table)

    def __repr__(self) -> str:
        return (f"Volume(shape={self.array.shape}, dtype={self.array.dtype}, "
                f"spacing={np.round(self.spacing, 4).tolist()}, origin={np.round(self.origin, 3).tolist()})")
