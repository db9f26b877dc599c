"""The subject: every per-seed anatomical choice (proportions, fat, organ sizes and positions).

Anatomy is written in *nominal* coordinates of a 1.75 m adult: x mm to the patient's left,
y mm posterior, and d mm down from the crown. `Body` turns them into physical LPS millimetres
for one subject, stretching by its proportions and moving each organ by its own jitter, so all
randomness of the geometry lives here and the anatomy modules read as an atlas.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.phantom.fields import stream

# Field of view of the cryosection (x, y, z mm, LPS): the crown near the top, mid-thigh at the bottom.
FOV_LO = (-300.0, -160.0, 600.0)
FOV_HI = (300.0, 160.0, 1740.0)
Z_CROWN = 1720.0

ORGANS = ("lung_r", "lung_l", "heart", "liver", "stomach", "spleen", "kidney_r", "kidney_l",
          "bladder", "bowel", "colon")


@dataclass(frozen=True)
class Body:
    height: float          # vertical scale of trunk and limbs
    width: float           # lateral scale
    depth: float           # antero-posterior scale
    head: float            # head size scale
    fat_mm: float          # mean subcutaneous fat thickness over the trunk
    visceral: float        # 0..1, share of mesenteric fat between bowel loops
    abduction_deg: tuple[float, float]  # right, left arm away from the trunk
    kyphosis: float        # scale of the spinal curves
    bladder_fill: float
    sulcal_depth_mm: float
    fold_mm: float         # correlation length of the cortical folding pattern
    jitter: dict = field(repr=False, default_factory=dict)  # organ -> (offset mm (3,), scale)

    @classmethod
    def draw(cls, seed: int) -> "Body":
        rng = stream(seed, "body.proportions")
        jitter_rng = stream(seed, "body.organs")
        jitter = {name: (np.clip(jitter_rng.normal(0.0, 6.0, 3), -12, 12), float(jitter_rng.uniform(0.88, 1.12)))
                  for name in ORGANS}
        return cls(
            height=float(rng.uniform(0.93, 1.05)),
            width=float(rng.uniform(0.90, 1.08)),
            depth=float(rng.uniform(0.90, 1.08)),
            head=float(rng.uniform(0.94, 1.05)),
            fat_mm=float(np.exp(rng.uniform(np.log(5.0), np.log(28.0)))),
            visceral=float(rng.uniform(0.0, 1.0)),
            abduction_deg=(float(rng.uniform(4, 11)), float(rng.uniform(4, 11))),
            kyphosis=float(rng.uniform(0.7, 1.3)),
            bladder_fill=float(rng.uniform(0.65, 1.2)),
            sulcal_depth_mm=float(rng.uniform(18, 26)),
            fold_mm=float(rng.uniform(4.5, 5.5)),
            jitter=jitter,
        )

    # --- nominal → physical -----------------------------------------------------------------
    def z(self, d):
        """Physical z of a nominal depth below the crown (trunk and limbs)."""
        return Z_CROWN - self.height * np.asarray(d, dtype=np.float64)

    def d(self, z):
        """Nominal depth below the crown of a physical z (inverse of `z`)."""
        return (Z_CROWN - z) / np.float32(self.height)

    def pt(self, x, y, d) -> np.ndarray:
        return np.array([self.width * x, self.depth * y, self.z(d)], dtype=np.float64)

    def pts(self, nodes) -> np.ndarray:
        return np.array([self.pt(*n) for n in nodes])

    def size(self, rx, ry, rz) -> np.ndarray:
        return np.array([self.width * rx, self.depth * ry, self.height * rz], dtype=np.float64)

    def head_pt(self, x, y, d) -> np.ndarray:
        """Head landmarks scale with head size, hanging from the crown."""
        return np.array([self.head * x, self.head * y, Z_CROWN - self.head * d], dtype=np.float64)

    def organ(self, name: str, centre: np.ndarray, radii: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """An organ's physical centre and radii after its own jitter (position and size)."""
        offset, scale = self.jitter[name]
        return centre + offset, radii * scale
