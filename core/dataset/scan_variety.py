"""Training-time augmentation at the scan level: make one subject look like many real scans.

Users bring brain MRI at ~1 mm, skull-stripped or not, or one body region, spin echo or
MPRAGE, stored RAS or LPS, with their scanner's shading, noise and intensity curve. `ScanVariety.apply` draws one such scan
from a subject's MRI, its MRI-grid labels and its true colorization (all on the MRI grid), using
the transforms of `core.phantom.variety` that the phantom's own options use. It works on whole
volumes, before planes are cut, so it composes with the per-plane `Augment`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.errors import InputError
from core.labels import LabelTable
from core.phantom import variety
from core.phantom.regions import REGIONS
from core.phantom.relaxation import FIELDS, SEQUENCES, sequence_signal
from core.volume import Volume

BRAIN = ("grey_matter", "white_matter", "deep_grey_matter")


@dataclass(frozen=True)
class ScanVariety:
    """Probabilities (p_*) and ranges of each scan-level change; `ScanVariety.none()` changes nothing."""

    p_region: float = 0.3          # cut to one region's field of view (a whole-body subject)
    p_sequence: float = 0.5        # re-weight the tissues as MPRAGE or spin echo (1.5 / 3 T)
    curve: float = 0.15            # strength of the random monotone intensity curve
    bias: float = 0.2              # largest bias-field strength
    noise: float = 0.03            # largest Rician σ (fraction of the 99.5th percentile)
    p_brain_only: float = 0.2      # skull-stripped (only where the labels hold a brain)
    p_resample: float = 0.5        # a new voxel size …
    voxel_mm: tuple[float, float] = (0.8, 4.0)  # … in-plane in this range, slices 1–2.5× thicker
    p_ras: float = 0.5             # stored RAS instead of LPS

    def __post_init__(self) -> None:
        for name in ("p_region", "p_sequence", "p_brain_only", "p_resample", "p_ras"):
            if not 0 <= getattr(self, name) <= 1:
                raise InputError("scan variety", f"{name} is a probability in [0, 1], got {getattr(self, name)}")
        for name in ("curve", "bias", "noise"):
            if getattr(self, name) < 0:
                raise InputError("scan variety", f"{name} must not be negative, got {getattr(self, name)}")
        lo, hi = self.voxel_mm
        if not 0.3 <= lo <= hi <= 8:
            raise InputError("scan variety", f"voxel_mm must be (low, high) within 0.3–8 mm, got {self.voxel_mm}")

    @classmethod
    def none(cls) -> "ScanVariety":
        return cls(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, (1.0, 1.0), 0.0)

    def apply(self, mri: Volume, labels: Volume, truth: Volume | None, table: LabelTable,
              rng: np.random.Generator) -> tuple[Volume, Volume, Volume | None]:
        """One random scan of the subject: (MRI, labels, truth), all on the same new grid."""
        if not (mri.same_frame(labels) and (truth is None or truth.same_frame(mri))):
            raise InputError("scan variety", "the MRI, its labels and the truth must share one grid")
        if rng.random() < self.p_region:
            mri, labels, truth = self._region(mri, labels, truth, rng)
        image, lab = mri.array.astype(np.float32), labels.array
        colours = None if truth is None else truth.array
        if rng.random() < self.p_sequence:
            sequence = str(rng.choice(sorted(SEQUENCES)))
            image = variety.retarget_contrast(image, lab, sequence_signal(table, sequence, float(rng.choice(FIELDS))))
        if self.curve:
            image = variety.intensity_curve(image, rng, self.curve)
        if self.bias:
            image = image * variety.bias_field(image.shape, rng, rng.uniform(0, self.bias))
        if self.noise:
            image = variety.rician_noise(image, rng, rng.uniform(0, self.noise))
        brain_ids = [t.id for t in table if t.name in BRAIN]
        if rng.random() < self.p_brain_only and np.isin(lab, brain_ids).any():
            keep = variety.brain_mask(lab, brain_ids, mri.spacing, [t.id for t in table if t.name == "csf"])
            image = variety.keep_only(image, keep)
            colours = None if colours is None else variety.keep_only(colours, keep)
        out = [mri.with_array(image), labels, None if truth is None else truth.with_array(colours)]
        if rng.random() < self.p_resample:
            in_plane = rng.uniform(*self.voxel_mm)
            spacing = (in_plane, in_plane, min(in_plane * rng.uniform(1.0, 2.5), 8.0))
            out = [None if v is None else variety.resample(v, spacing, order=0 if v is labels else 1) for v in out]
        if rng.random() < self.p_ras:
            out = [None if v is None else variety.reorient(v, "RAS") for v in out]
        return out[0], out[1], out[2]

    @staticmethod
    def _region(mri: Volume, labels: Volume, truth: Volume | None, rng: np.random.Generator):
        """The volumes cut to a random body region (`core.phantom.regions`) that lies in them."""
        names = [n for n, r in REGIONS.items() if n != "body" and variety.crop(labels, r.lo, r.hi) is not None]
        if not names:
            return mri, labels, truth
        region = REGIONS[str(rng.choice(names))]
        lo, hi = region.mri_box()
        return tuple(None if v is None else variety.crop(v, lo, hi) for v in (mri, labels, truth))
