"""The volumes the viewer shows and how it frames them (no Qt).

A `Dataset` is the MRI plus what is shown beside it: the cryosection (RGB, on its own grid), the
labels (on the cryosection grid) and, for the phantom, the true colorization on the MRI grid.
Every plane is cut in physical space, so the volumes need not share a grid. Framing (pixel size
per orientation, window/level) is derived from the MRI once per load, never per slice, so the
display neither flickers nor costs time while scrolling.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from core.labels import Label, LabelTable
from core.normalize import body_mask, body_threshold, intensity_range
from core.planes import ORIENTATIONS
from core.volume import Volume
from viewer.state import Frame

#: What each kind of file is read as, and its menu name.
KINDS = {"mri": "MRI", "cryo": "cryosection", "labels": "labels"}
_EXPECT = {"mri": "scalar", "cryo": "rgb", "labels": "labels"}

#: Margin around the body's bounding box when framing a plane.
_FRAME_MARGIN = 1.08


@dataclass(frozen=True, eq=False)
class Dataset:
    """MRI plus optional cryosection, labels and true colorization; ``name`` is for titles.

    ``truth`` (the phantom's true colorization, on the MRI grid) belongs to this MRI only.
    """

    mri: Volume
    cryo: Volume | None = None
    labels: Volume | None = None
    truth: Volume | None = None
    name: str = "MRI"

    @property
    def label_table(self) -> LabelTable | None:
        return None if self.labels is None else self.labels.label_table

    def with_volume(self, kind: str, volume: Volume) -> "Dataset":
        """This dataset with its cryosection or labels replaced."""
        if kind not in ("cryo", "labels"):
            raise ValueError(f"a dataset's {kind} is not replaced: open a new MRI as a new dataset")
        return replace(self, **{kind: volume})


def default_dataset(seed: int = 0, size: str = "default") -> Dataset:
    """The built-in default: a phantom subject with its cryosection, labels and true colorization."""
    from core.phantom import make_subject

    subject = make_subject(seed=seed, size=size)
    labels = subject.labels
    if labels.label_table is None:
        labels = labels.with_array(labels.array, label_table=subject.label_table)
    return Dataset(subject.mri, subject.cryo, labels, subject.true_colorization, name=f"phantom seed {seed} ({size})")


def warm(dataset: Dataset) -> Dataset:
    """Convert every volume to its slicing tensor now, on the loading thread.

    `core.planes.volume_tensor` converts a volume once (a default phantom cryosection takes about
    a second); done here, the first plane change does not pay for it on a worker.
    """
    from core.planes import volume_tensor

    for volume in (dataset.mri, dataset.cryo, dataset.labels, dataset.truth):
        if volume is not None:
            volume_tensor(volume)
    return dataset


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


_NAME_HINTS = {"labels": ("label", "seg", "mask"), "cryo": ("cryo", "photo", "rgb", "colou", "color")}


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


# --- framing ------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Framing:
    """What the viewer derives from an MRI once per load, on the loading thread (a few hundred ms
    on the default phantom, too long for the UI thread): plane framing, model input range, W/L presets."""

    frame: Frame
    value_range: tuple[float, float]
    presets: dict[str, tuple[float, float]]
    #: The body/air threshold in model input units ([0, 1] after ``value_range``): what the model
    #: crops each plane to (None: no body found, the whole plane goes through the model).
    body_level: float | None = None


def framing(mri: Volume, size: int = 256) -> Framing:
    threshold = body_threshold(mri)
    mask = body_mask(mri, threshold)
    lo, hi = intensity_range(mri, mask)
    level = None if threshold is None or not mask.any() else float((threshold - lo) / (hi - lo))
    return Framing(frame_for(mri, size, mask), (lo, hi), window_presets(mri), level)


def prepared(dataset: Dataset, size: int = 256) -> tuple[Dataset, Framing]:
    """A dataset ready to show: volumes converted for slicing (`warm`) and its MRI framed."""
    return warm(dataset), framing(dataset.mri, size)


def _corners(volume: Volume, lo_index: np.ndarray, hi_index: np.ndarray) -> np.ndarray:
    """The 8 physical corners of the index box [lo, hi] (x, y, z)."""
    idx = np.array([[(lo_index, hi_index)[b][k] for k, b in enumerate(bits)]
                    for bits in np.ndindex(2, 2, 2)], dtype=np.float64)
    return volume.index_to_physical(idx)


def _bounding_box(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index box (x, y, z) of the true voxels, from the mask's projections on each axis."""
    ranges = [np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis))) for axis in (2, 1, 0)]
    return (np.array([r[0] for r in ranges], dtype=float), np.array([r[-1] for r in ranges], dtype=float))


def frame_for(volume: Volume, size: int = 256, mask: np.ndarray | None = None) -> Frame:
    """Centre on the body and pick, per orientation, the pixel size that shows all of it.

    The body is the MRI's foreground (Otsu, unless ``mask`` is given); an empty or all-foreground
    volume falls back to the whole grid.
    """
    grid_lo, grid_hi = np.zeros(3), np.asarray(volume.size_xyz, dtype=np.float64) - 1
    mask = body_mask(volume) if mask is None else mask
    lo, hi = _bounding_box(mask) if mask.any() and not mask.all() else (grid_lo, grid_hi)
    body = _corners(volume, lo, hi)
    center = body.mean(axis=0)
    pixel_mm = {}
    for name, (u, v) in ORIENTATIONS.items():
        extent = max(np.ptp(body @ np.asarray(u)), np.ptp(body @ np.asarray(v)))
        pixel_mm[name] = float(max(extent, 1e-3) * _FRAME_MARGIN / size)
    mm_to_index = np.linalg.inv(volume.direction @ np.diag(volume.spacing))
    return Frame(center=center, pixel_mm=pixel_mm, corners=_corners(volume, grid_lo, grid_hi),
                 mm_to_index=mm_to_index)


def window_presets(volume: Volume) -> dict[str, tuple[float, float]]:
    """Named (window, level) settings: percentile auto-levels as Slicer offers, and the full range."""
    sample = volume.array[::2, ::2, ::2].astype(np.float32).ravel()
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        sample = np.array([0.0, 1.0], dtype=np.float32)
    named = {"auto (0.5–99.5 %)": (0.5, 99.5), "wide (0.1–99.9 %)": (0.1, 99.9),
             "narrow (5–95 %)": (5.0, 95.0), "full range": (0.0, 100.0)}
    values = np.percentile(sample, [p for pair in named.values() for p in pair])
    out = {}
    for i, name in enumerate(named):
        lo, hi = float(values[2 * i]), float(values[2 * i + 1])
        hi = hi if hi > lo else lo + 1.0
        out[name] = (hi - lo, (hi + lo) / 2)
    return out


def label_at(labels: Volume, point_mm) -> int | None:
    """The label id of the voxel nearest to ``point_mm`` (None outside the grid): the cursor readout."""
    index = np.rint(labels.physical_to_index(np.asarray(point_mm, dtype=np.float64))).astype(int)
    x, y, z = index
    zs, ys, xs = labels.array.shape[:3]
    if not (0 <= x < xs and 0 <= y < ys and 0 <= z < zs):
        return None
    return int(labels.array[z, y, x])
