"""What kind of scan a phantom subject is: region, voxel size, T1 sequence and scanner effects.

Every field is part of the subject's cache key (`PhantomOptions.key`); the defaults reproduce
the whole-body phantom as it always was, bit for bit.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields

import numpy as np

from core.errors import InputError
from core.phantom.regions import REGIONS
from core.phantom.relaxation import FIELDS, SEQUENCES
from core.phantom.variety import ORIENTATIONS

MRI_MM_RANGE = (0.5, 8.0)


@dataclass(frozen=True)
class PhantomOptions:
    """``region``: a key of `REGIONS`. ``mri_mm``: MRI voxel size (x, y, z mm), None for the
    region's or size's default. ``sequence``/``field_t``: "mprage" or "spin_echo" at 1.5 or 3 T
    from relaxation times; None keeps the whole body's spin-echo table (the head defaults to
    MPRAGE). ``brain_only``: skull-stripped MRI and truth (0 outside the brain).
    ``orientation``: how volumes are stored, "LPS" or "RAS". ``nonlinearity``: strength of a
    random monotone intensity curve (0: none). ``bias``/``noise``: bias-field strength and Rician
    σ (fraction of muscle signal); None draws them from the default ranges."""

    region: str = "body"
    mri_mm: tuple[float, float, float] | None = None
    sequence: str | None = None
    field_t: float = 3.0
    brain_only: bool = False
    orientation: str = "LPS"
    nonlinearity: float = 0.0
    bias: float | None = None
    noise: float | None = None

    def __post_init__(self) -> None:
        if self.region not in REGIONS:
            raise InputError("region", f"unknown region {self.region!r}; valid: {', '.join(REGIONS)}")
        if self.mri_mm is not None:
            mm = np.broadcast_to(np.asarray(self.mri_mm, dtype=np.float64), (3,)) \
                if np.ndim(self.mri_mm) == 0 or len(self.mri_mm) == 1 else np.asarray(self.mri_mm, dtype=np.float64)
            if mm.shape != (3,) or not np.all((mm >= MRI_MM_RANGE[0]) & (mm <= MRI_MM_RANGE[1])):
                raise InputError("mri_mm", f"must be 1 or 3 voxel sizes in {MRI_MM_RANGE[0]}–{MRI_MM_RANGE[1]} mm, "
                                           f"got {self.mri_mm!r}")
            object.__setattr__(self, "mri_mm", tuple(float(v) for v in mm))
        if self.sequence is not None and self.sequence not in SEQUENCES:
            raise InputError("sequence", f"unknown T1 sequence {self.sequence!r}; valid: {', '.join(SEQUENCES)}")
        if self.field_t not in FIELDS:
            raise InputError("field", f"must be one of {FIELDS} T, got {self.field_t!r}")
        if self.orientation not in ORIENTATIONS:
            raise InputError("orientation", f"must be one of {', '.join(ORIENTATIONS)}, got {self.orientation!r}")
        for name, top in (("nonlinearity", 1.0), ("bias", 1.0), ("noise", 0.5)):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= top:
                raise InputError(name, f"must be between 0 and {top}, got {value!r}")
        if self.brain_only and self.region not in ("head", "body"):
            raise InputError("brain_only", f"the {self.region} region holds no brain; use the head or the body")

    @property
    def effective_sequence(self) -> str | None:
        """The sequence simulated: the chosen one, MPRAGE for the head, else the body's table (None)."""
        return self.sequence or ("mprage" if REGIONS[self.region].clinical_head else None)

    def key(self) -> str:
        """The options that differ from the defaults, as canonical JSON ("" for the defaults)."""
        default = PhantomOptions()
        changed = {f.name: getattr(self, f.name) for f in fields(self)
                   if getattr(self, f.name) != getattr(default, f.name)}
        return json.dumps(changed, sort_keys=True) if changed else ""

    def to_dict(self) -> dict:
        return asdict(self)
