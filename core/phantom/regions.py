"""Fields of view: the whole body, or one region the way a clinical scan frames it.

Users bring one body region at a time far more often than a whole body. A region is a box of
the same seeded body (physical LPS mm), so a subject's head scan and its whole-body scan show
the same person; only ``head`` paints more (the clinical head of `core.phantom.brain` and
`core.phantom.skull`, with its own tissues) because at 1 mm the whole body's head is too coarse.
The MRI's field of view is the region's widened in x and y, so the misaligned body stays in it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.phantom.body import FOV_HI, FOV_LO, Z_CROWN


@dataclass(frozen=True)
class Region:
    lo: tuple[float, float, float]   # cryosection field of view (x, y, z mm, LPS)
    hi: tuple[float, float, float]
    mri_margin: float                # MRI field of view = the region's ± this in x and y
    clinical_head: bool = False      # paint the 1 mm head (brain anatomy, sinuses, orbits)
    default_mri_mm: tuple[float, float, float] | None = None  # None: the size's MRI spacing

    @property
    def centre(self) -> np.ndarray:
        return (np.array(self.lo) + np.array(self.hi)) / 2

    def mri_box(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        m = self.mri_margin
        return (self.lo[0] - m, self.lo[1] - m, self.lo[2]), (self.hi[0] + m, self.hi[1] + m, self.hi[2])


REGIONS = {
    "body": Region(FOV_LO, FOV_HI, 40.0),
    "head": Region((-95.0, -122.0, Z_CROWN - 232.0), (95.0, 114.0, Z_CROWN + 6.0), 15.0, clinical_head=True,
                   default_mri_mm=(1.0, 1.0, 1.0)),
    "thorax": Region((-240.0, -160.0, 1090.0), (240.0, 160.0, 1420.0), 20.0),
    "abdomen": Region((-240.0, -160.0, 860.0), (240.0, 160.0, 1170.0), 20.0),
    "pelvis": Region((-240.0, -160.0, 700.0), (240.0, 160.0, 960.0), 20.0),
    "limb": Region((-20.0, -140.0, 600.0), (220.0, 140.0, 830.0), 20.0),  # the left thigh
}
