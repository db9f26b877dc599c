"""The volumes the viewer shows, and reading them from files (no Qt).

A `Study` is the MRI plus what is shown beside it: the cryosection (RGB, on its own grid), the
labels (on the cryosection grid) and, for the phantom, the true colorization on the MRI grid.
Every plane is cut in physical space, so the volumes need not share a grid.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from core.labels import Label, LabelTable
from core.volume import Volume
from viewer.framing import Framing, framing

#: What each kind of file is read as, and its menu name.
KINDS = {"mri": "MRI", "cryo": "cryosection", "labels": "labels"}
_EXPECT = {"mri": "scalar", "cryo": "rgb", "labels": "labels"}
_NAME_HINTS = {"labels": ("label", "seg", "mask"), "cryo": ("cryo", "photo", "rgb", "colou", "color")}
#: Dropped files whose names say they go with an MRI are opened after it.
_COMPANION_HINTS = ("label", "seg", "cryo")


@dataclass(frozen=True, eq=False)
class Study:
    """MRI plus optional cryosection, labels and true colorization; ``name`` is for titles.

    ``truth`` (the phantom's true colorization, on the MRI grid) belongs to this MRI only;
    ``truth_labels`` (its tissue labels on the MRI grid) say where its body is: the truth ΔE is
    scored there, not over the air around it.
    """

    mri: Volume
    cryo: Volume | None = None
    labels: Volume | None = None
    truth: Volume | None = None
    name: str = "MRI"
    truth_labels: Volume | None = None

    @property
    def label_table(self) -> LabelTable | None:
        return None if self.labels is None else self.labels.label_table

    def with_volume(self, kind: str, volume: Volume) -> "Study":
        """This study with its cryosection or labels replaced."""
        if kind not in ("cryo", "labels"):
            raise ValueError(f"a study's {kind} is not replaced: open a new MRI as a new study")
        return replace(self, **{kind: volume})


def default_study(seed: int = 0, size: str = "default") -> Study:
    """The built-in default: a phantom subject with its cryosection, labels and true colorization."""
    from core.phantom import make_subject

    subject = make_subject(seed=seed, size=size)
    labels = subject.labels
    if labels.label_table is None:
        labels = labels.with_array(labels.array, label_table=subject.label_table)
    return Study(subject.mri, subject.cryo, labels, subject.true_colorization, name=f"phantom seed {seed} ({size})",
                 truth_labels=subject.mri_labels)


def warm(study: Study) -> Study:
    """Convert every volume to its slicing tensor now, on the loading thread.

    `core.planes.volume_tensor` converts a volume once (a default phantom cryosection takes about
    a second); done here, the first plane change does not pay for it on a worker.
    """
    from core.planes import volume_tensor

    for volume in (study.mri, study.cryo, study.labels, study.truth, study.truth_labels):
        if volume is not None:
            volume_tensor(volume)
    return study


def prepared(study: Study, size: int = 256) -> tuple[Study, Framing]:
    """A study ready to show: volumes converted for slicing (`warm`) and its MRI framed."""
    return warm(study), framing(study.mri, size)


def _default_table() -> LabelTable:
    from resources import __file__ as resources_init

    return LabelTable.read(Path(resources_init).with_name("tissues.csv"))


def _table_for(array: np.ndarray, candidates: list[LabelTable]) -> LabelTable:
    """The first table that names every id in ``array``; otherwise generic names and colours."""
    ids = np.unique(array)
    for table in candidates:
        if all(int(i) in table for i in ids):
            return table
    rng = np.random.default_rng(0)
    return LabelTable([Label(0, "background", "", (0, 0, 0))]
                      + [Label(int(i), f"label {int(i)}", "", tuple(int(c) for c in rng.integers(40, 255, 3)))
                         for i in ids if i != 0])


def _prepared(kind: str, volume: Volume, current: LabelTable | None) -> Volume:
    """Give a label volume without its own table the current table, else the shipped tissue table
    (whichever names all its ids); keep the MRI in float32, the dtype the slicer and model use."""
    if kind == "labels" and volume.label_table is None:
        table = _table_for(volume.array, [t for t in (current, _default_table()) if t is not None])
        return volume.with_array(volume.array, label_table=table)
    if kind == "mri" and volume.array.dtype != np.float32:
        return volume.with_array(volume.array.astype(np.float32))
    return volume


def load_volume(kind: str, path: str | os.PathLike, current: LabelTable | None = None) -> Volume:
    """Read an MRI, cryosection or label volume; raises `InputError` naming the file."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {sorted(KINDS)}, got {kind!r}")
    from core.io import read_volume

    return _prepared(kind, read_volume(path, expect=_EXPECT[kind]), current)


def load_any(path: str | os.PathLike, current: LabelTable | None = None) -> tuple[str, Volume]:
    """Read a dropped file and decide what it is: the name first (``*labels*``, ``*cryo*``), else
    the content (a label table → labels, RGB → cryosection, anything else → MRI)."""
    name = Path(path).name.lower()
    for kind, hints in _NAME_HINTS.items():
        if any(h in name for h in hints):
            return kind, load_volume(kind, path, current)
    from core.io import read_volume

    volume = read_volume(path)
    kind = "labels" if volume.is_labels else "cryo" if volume.is_rgb else "mri"
    return kind, _prepared(kind, volume, current)


def read_file(kind: str | None, path: str | os.PathLike, current: LabelTable | None,
              size: int) -> tuple[str, Volume, Framing | None]:
    """Everything opening a file needs off the UI thread: the volume (``kind`` None: decided from
    the file), converted for slicing, and for an MRI its framing for planes of ``size`` pixels."""
    from core.planes import volume_tensor

    read_as, volume = load_any(path, current) if kind is None else (kind, load_volume(kind, path, current))
    volume_tensor(volume)  # converted here, not on the first plane change
    return read_as, volume, framing(volume, size) if read_as == "mri" else None


def opening_order(paths: list[str]) -> list[str]:
    """Dropped files, an MRI first, so that a cryosection or labels dropped with it have something to go with."""
    return sorted(paths, key=lambda p: any(h in Path(p).name.lower() for h in _COMPANION_HINTS))


def label_at(labels: Volume, point_mm) -> int | None:
    """The label id of the voxel nearest to ``point_mm`` (None outside the grid): the cursor readout."""
    index = np.rint(labels.physical_to_index(np.asarray(point_mm, dtype=np.float64))).astype(int)
    x, y, z = index
    zs, ys, xs = labels.array.shape[:3]
    if not (0 <= x < xs and 0 <= y < ys and 0 <= z < zs):
        return None
    return int(labels.array[z, y, x])
