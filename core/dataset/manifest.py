"""The dataset manifest: subjects (registered volumes on disk) and seeded planes split into train/test.

A dataset is the registered volumes plus this manifest; slices are cut from the volumes on the
fly, so 12,000 planes cost a few megabytes of JSON instead of gigabytes of images. Planes are
stored exactly (JSON floats round-trip bit for bit), so the same manifest gives the same slices
on any machine.

``dataset.json``::

    {"format": "mricolor-dataset", "version": 1, "seed": 0, "split_by": "subject" | "plane",
     "plane": {"width": 256, "height": 256, "pixel_mm": 1.5, "min_foreground": 0.4},
     "label_table": "labels.csv",
     "subjects": [{"id": "phantom-0", "split": "train" | "test" | "mixed",
                   "volumes": {"mri": "subjects/phantom-0/mri.nii.gz", "cryo": …, "labels": …,
                               "truth": …, "mri_labels": …},
                   "metadata": {…}}],
     "planes": {"subject": [0, 0, …], "split": ["train", …],
                "center": [[x, y, z], …], "u": [[…], …], "v": [[…], …]}}
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.atomic import write_text
from core.errors import InputError
from core.planes import Plane, random_planes
from core.volume import Volume

FORMAT = "mricolor-dataset"
VERSION = 1
MANIFEST_NAME = "dataset.json"
SPLITS = ("train", "test")
VOLUME_KINDS = ("mri", "cryo", "labels", "truth", "mri_labels")


@dataclass(frozen=True)
class PlaneSettings:
    """Pixel grid shared by every plane of a dataset, and the background rejection threshold."""

    width: int = 256
    height: int = 256
    pixel_mm: float = 1.5
    min_foreground: float = 0.4  # below 0.5 so axial planes through the trunk (≈ 45 % body at 384 mm) survive

    def __post_init__(self) -> None:
        if self.width < 8 or self.height < 8 or self.pixel_mm <= 0 or not 0 <= self.min_foreground < 1:
            raise InputError("plane settings", f"need width/height ≥ 8, pixel_mm > 0 and 0 ≤ min_foreground < 1, "
                                               f"got {self}")


@dataclass
class SubjectEntry:
    """One body: where its registered volumes are (relative to the dataset root) and its split."""

    id: str
    split: str  # "train", "test" or "mixed" (a single body split by plane)
    volumes: dict[str, str]
    metadata: dict = field(default_factory=dict)


@dataclass(eq=False)
class Manifest:
    """Subjects and planes of a dataset; ``root`` is the folder the volume paths are relative to."""

    root: Path
    seed: int
    split_by: str
    settings: PlaneSettings
    subjects: list[SubjectEntry]
    plane_subject: np.ndarray  # (n,) int: index into ``subjects``
    plane_split: np.ndarray  # (n,) str: "train" / "test"
    centers: np.ndarray  # (n, 3) float64 mm
    us: np.ndarray  # (n, 3) float64 unit vectors
    vs: np.ndarray  # (n, 3) float64 unit vectors
    label_table: str | None = "labels.csv"

    def __len__(self) -> int:
        return len(self.plane_subject)

    def indices(self, split: str | None) -> np.ndarray:
        """Manifest indices of the planes of ``split`` (all planes for None)."""
        if split is None:
            return np.arange(len(self))
        if split not in SPLITS:
            raise InputError("split", f"must be one of {SPLITS} or None, got {split!r}")
        return np.flatnonzero(self.plane_split == split)

    def plane(self, index: int) -> Plane:
        s = self.settings
        return Plane(self.centers[index], self.us[index], self.vs[index], s.pixel_mm, s.width, s.height)

    def volume_path(self, subject: int, kind: str) -> Path:
        return self.root / self.subjects[subject].volumes[kind]

    # --- (de)serialisation -------------------------------------------------------------------
    def to_json(self) -> str:
        data = {"format": FORMAT, "version": VERSION, "seed": self.seed, "split_by": self.split_by,
                "plane": vars(self.settings).copy(), "label_table": self.label_table,
                "subjects": [vars(s) for s in self.subjects],
                "planes": {"subject": self.plane_subject.tolist(), "split": self.plane_split.tolist(),
                           "center": self.centers.tolist(), "u": self.us.tolist(), "v": self.vs.tolist()}}
        return json.dumps(data, indent=None, separators=(",", ":"))

    def save(self, path: str | os.PathLike | None = None) -> Path:
        target = Path(path) if path is not None else self.root / MANIFEST_NAME
        write_text(target, self.to_json())
        return target

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Manifest":
        """Read ``dataset.json`` (or the dataset folder holding it), checking it is complete."""
        p = Path(path)
        if p.is_dir():
            p = p / MANIFEST_NAME
        if not p.is_file():
            raise InputError(p, "dataset manifest not found (build one with `mricolor prepare`)")
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
            if data.get("format") != FORMAT:
                raise InputError(p, f"is not a {FORMAT} manifest")
            if data.get("version") != VERSION:
                raise InputError(p, f"has manifest version {data.get('version')}; this mricolor reads version {VERSION}")
            planes = data["planes"]
            manifest = cls(root=p.parent, seed=int(data["seed"]), split_by=str(data["split_by"]),
                           settings=PlaneSettings(**data["plane"]),
                           subjects=[SubjectEntry(**s) for s in data["subjects"]],
                           plane_subject=np.asarray(planes["subject"], dtype=np.int64),
                           plane_split=np.asarray(planes["split"], dtype=str),
                           centers=np.asarray(planes["center"], dtype=np.float64).reshape(-1, 3),
                           us=np.asarray(planes["u"], dtype=np.float64).reshape(-1, 3),
                           vs=np.asarray(planes["v"], dtype=np.float64).reshape(-1, 3),
                           label_table=data.get("label_table"))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise InputError(p, f"is not a valid dataset manifest ({type(exc).__name__}: {exc})") from None
        manifest.validate(str(p))
        return manifest

    def validate(self, source: str) -> None:
        """Refuse inconsistent manifests: ragged plane arrays, unknown subjects, mixed-up splits."""
        n = len(self.plane_subject)
        if not all(len(a) == n for a in (self.plane_split, self.centers, self.us, self.vs)):
            raise InputError(source, "plane lists have different lengths")
        if n and (self.plane_subject.min() < 0 or self.plane_subject.max() >= len(self.subjects)):
            raise InputError(source, "a plane names a subject that is not listed")
        if not set(self.plane_split.tolist()) <= set(SPLITS):
            raise InputError(source, f"plane splits must be {SPLITS}")
        for i, subject in enumerate(self.subjects):
            missing = [k for k in ("mri", "cryo", "labels") if k not in subject.volumes]
            if missing:
                raise InputError(source, f"subject {subject.id} lacks volumes {missing}")
            splits = set(self.plane_split[self.plane_subject == i].tolist())
            if subject.split in SPLITS and splits - {subject.split}:
                raise InputError(source, f"subject {subject.id} belongs to {subject.split} but has "
                                         f"{sorted(splits - {subject.split})} planes: train and test would mix")


def subject_seed(seed: int, subject_index: int) -> int:
    """The plane seed of one subject: independent streams per subject, stable when subjects are added."""
    return int(np.random.SeedSequence([int(seed), int(subject_index)]).generate_state(1)[0])


def draw_planes(reference: Volume, mask: np.ndarray, n: int, seed: int, settings: PlaneSettings) -> list[Plane]:
    """``n`` random planes through the body of ``reference`` (seeded, mostly-background ones rejected)."""
    try:
        return random_planes(reference, n, seed, pixel_mm=settings.pixel_mm, width=settings.width,
                             height=settings.height, min_foreground=settings.min_foreground, mask=mask)
    except ValueError as exc:
        raise InputError("planes", str(exc)) from None


def plane_arrays(planes: list[Plane]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centers, us, vs) as (n, 3) float64 arrays."""
    return (np.stack([p.center for p in planes]), np.stack([p.u for p in planes]), np.stack([p.v for p in planes]))


def split_planes(n: int, test_fraction: float, seed: int) -> np.ndarray:
    """Seeded train/test assignment of ``n`` planes of one body (the split used for a single body)."""
    if not 0 < test_fraction < 1:
        raise InputError("test fraction", f"must lie strictly between 0 and 1, got {test_fraction}")
    rng = np.random.default_rng([int(seed), 0x5EED])
    split = np.full(n, "train", dtype="<U5")
    split[rng.permutation(n)[:max(1, int(round(n * test_fraction)))]] = "test"
    return split
