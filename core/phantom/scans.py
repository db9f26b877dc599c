"""The kinds of scan users bring, drawn from one phantom seed: whole bodies, 1 mm heads, skull-stripped heads.

One home for "what a head scan is", so training data (`core.dataset.scans`) and the whole-volume
evaluation (`core.evaluation.volumes`) draw the same scans. A scan is the MRI with its true
colorization and its labels, all on the MRI's own grid.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.errors import InputError
from core.volume import Volume

#: Scan kind → (phantom size, `PhantomOptions` fields).
SCANS: dict[str, tuple[str, dict]] = {
    "body": ("default", {}),
    "small": ("small", {}),
    "head": ("default", {"region": "head", "mri_mm": 1.0}),
    "head-brain": ("default", {"region": "head", "mri_mm": 1.0, "brain_only": True}),
}


@dataclass(eq=False)
class Scan:
    """An MRI with its true colorization and labels on the MRI's grid."""

    name: str
    mri: Volume
    truth: Volume
    labels: Volume


def check_kinds(kinds: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The kinds, or an error listing the valid ones."""
    unknown = [k for k in kinds if k not in SCANS]
    if unknown or not kinds:
        raise InputError("scans", f"unknown or no scan kind(s) {unknown}; valid: {', '.join(SCANS)}")
    return tuple(kinds)


def phantom_scan(seed: int, kind: str) -> Scan:
    """Scan ``kind`` of phantom subject ``seed`` (generated or read from the phantom cache).

    A skull-stripped scan's labels are 0 where the stripping removed the tissue: what is gone
    from the MRI is no longer body, for the labels as for the colours.
    """
    from core.phantom.subject import make_subject

    size, options = SCANS[check_kinds([kind])[0]]
    s = make_subject(seed, size, **options)
    labels = stripped_labels(s.mri_labels, s.true_colorization) if options.get("brain_only") else s.mri_labels
    return Scan(f"{kind} {seed}", s.mri, s.true_colorization, labels)


def stripped_labels(labels: Volume, truth: Volume) -> Volume:
    """``labels`` set to 0 wherever ``truth`` is background (black): what skull-stripping removed
    from the MRI is no longer body, for the labels as for the colours."""
    return labels.with_array(np.where(truth.array.any(axis=-1), labels.array, 0).astype(labels.array.dtype))
