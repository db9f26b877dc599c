"""Building a dataset folder: register each body, store its volumes on one grid, draw the planes.

Layout (all volumes of a subject on its cryosection grid)::

    DATASET/dataset.json                     the manifest (`core.dataset.manifest`)
    DATASET/labels.csv                       the label table
    DATASET/subjects/<id>/mri.nii.gz         registered MRI, float32 scaled to [0, 1]
    DATASET/subjects/<id>/cryo.nii.gz        cryosection, uint8 RGB
    DATASET/subjects/<id>/labels.nii.gz      labels (+ labels.labels.csv)
    DATASET/subjects/<id>/mask.nii.gz        body mask used for registration and planes
    DATASET/subjects/<id>/truth.nii.gz       phantom only: true colorization, warped like the MRI
    DATASET/subjects/<id>/mri_labels.nii.gz  MRI labels warped like the MRI (nearest), when known
    DATASET/subjects/<id>/registration/      elastix transform files and report.json/.txt
    DATASET/subjects/<id>/subject.json       source, seed, MRI scale, registration summary

Phantom bodies are split by subject (train and test never share a body); a single real body is
split by plane. The folder is built under a temporary name and renamed into place at the end.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np

from core.atomic import atomic_directory, write_text
from core.dataset.manifest import (Manifest, PlaneSettings, SubjectEntry, draw_planes, plane_arrays, split_planes,
                                   subject_seed)
from core.errors import InputError
from core.io import write_volume
from core.labels import LabelTable
from core.registration import RegistrationResult, register
from core.registration.output import write_report, write_transform
from core.volume import Volume

Progress = Callable[[str], None]

#: Percentile of the MRI inside the body that is mapped to 1.0 (robust to a few hot voxels).
MRI_PERCENTILE = 99.5


def parse_ids(text: str, source: str = "subjects") -> list[int]:
    """``"0-3,7"`` → [0, 1, 2, 3, 7]: subject seeds as users type them (errors name ``source``)."""
    out: list[int] = []
    for part in filter(None, (p.strip() for p in str(text).split(","))):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if m is None or (m.group(2) is not None and int(m.group(2)) < int(m.group(1))):
            raise InputError(source, f"expected numbers and ranges such as '0-3,7', got {text!r}")
        out.extend(range(int(m.group(1)), int(m.group(2) or m.group(1)) + 1))
    if not out or len(set(out)) != len(out):
        raise InputError(source, f"needs at least one subject and no repeats, got {text!r}")
    return out


def normalise_mri(volume: Volume, mask: np.ndarray) -> tuple[Volume, float]:
    """The MRI divided by its 99.5th percentile inside the body and clipped to [0, 1], and that scale.

    Networks take images in [0, 1]; real MRI comes in arbitrary units. Inference must apply the
    same rule (`subject.json` records the scale used).
    """
    values = volume.array[mask]
    scale = float(np.percentile(values, MRI_PERCENTILE)) if values.size else 0.0
    if scale <= 0:
        raise InputError("MRI", "is zero throughout the body after registration: nothing to learn from")
    return volume.with_array(np.clip(volume.array / np.float32(scale), 0, 1).astype(np.float32)), scale


@dataclass
class Body:
    """One body to put in a dataset: its volumes, what registration needs, and where it came from."""

    id: str
    mri: Volume
    cryo: Volume
    labels: Volume
    metadata: dict
    mri_labels: Volume | None = None
    truth_mri: Volume | None = None  # true colorization on the MRI grid (phantom)
    mri_to_cryo: Callable | None = None  # known transform (phantom), for TRE
    mask: Volume | np.ndarray | None = None
    #: the MRI already lies on the cryosection's grid voxel for voxel (a phantom scan paired with its
    #: true colorization, `core.dataset.scans`): stored as it is, without registration
    aligned: bool = False


def _summary(report: dict) -> dict:
    out = {"seconds": round(report["seconds"]["total"], 1), "passed": report["checks"]["passed"]}
    if "tre_mm" in report:
        out["tre_mean_mm"] = {k: round(report["tre_mm"][k]["mean"], 3) for k in ("before", "after")}
    if "dice" in report:
        out["mean_dice"] = {"before": round(report["dice"]["mean_before"], 3), "after": round(report["dice"]["mean_after"], 3)}
    return out


def store_subject(root: Path, body: Body, result: RegistrationResult, split: str) -> SubjectEntry:
    """Write one registered body under ``root/subjects/<id>`` and return its manifest entry."""
    rel = Path("subjects") / body.id
    folder = root / rel
    mri, scale = normalise_mri(result.registered, result.mask)
    volumes = {"mri": mri, "cryo": body.cryo, "labels": body.labels,
               "mask": body.cryo.with_array(result.mask.astype(np.uint8), label_table=None)}
    if body.truth_mri is not None:
        volumes["truth"] = result.warp(body.truth_mri)
    if body.mri_labels is not None:
        volumes["mri_labels"] = result.warp(body.mri_labels)
    paths = {}
    for kind, volume in volumes.items():
        write_volume(volume, folder / f"{kind}.nii.gz")
        paths[kind] = (rel / f"{kind}.nii.gz").as_posix()
    write_transform(result.transform, folder / "registration")
    write_report(result.report, folder / "registration")
    metadata = {**body.metadata, "mri_scale": scale, "registration": _summary(result.report)}
    write_text(folder / "subject.json", json.dumps({"id": body.id, **metadata}, indent=1))
    return SubjectEntry(body.id, split, paths, metadata)


def store_aligned(root: Path, body: Body, split: str) -> SubjectEntry:
    """Write a body whose MRI already matches its cryosection voxel for voxel (no registration).

    Its cryosection is its true colorization and its labels the MRI's own, so the manifest's
    ``truth`` and ``mri_labels`` name the same files as ``cryo`` and ``labels``."""
    rel = Path("subjects") / body.id
    mask = body.labels.array != 0
    mri, scale = normalise_mri(body.mri, mask)
    volumes = {"mri": mri, "cryo": body.cryo, "labels": body.labels,
               "mask": body.labels.with_array(mask.astype(np.uint8), label_table=None)}
    paths = {}
    for kind, volume in volumes.items():
        write_volume(volume, root / rel / f"{kind}.nii.gz")
        paths[kind] = (rel / f"{kind}.nii.gz").as_posix()
    paths.update(truth=paths["cryo"], mri_labels=paths["labels"])
    metadata = {**body.metadata, "mri_scale": scale, "pairs": "truth"}
    write_text(root / rel / "subject.json", json.dumps({"id": body.id, **metadata}, indent=1))
    return SubjectEntry(body.id, split, paths, metadata)


def _register(body: Body, options: dict, say: Progress) -> RegistrationResult:
    """Register one body; a refusal names the body, so a failing subject is easy to find."""
    say(f"{body.id}: registering")
    try:
        return register(body.mri, body.cryo, mask=body.mask, mri_labels=body.mri_labels, labels=body.labels,
                        truth=body.mri_to_cryo, progress=lambda m: say(f"{body.id}: {m}"), **options)
    except InputError as exc:
        raise type(exc)(body.id, str(exc)) from None


def build_dataset(out: str | os.PathLike, bodies: list[tuple[Callable[[], Body], str]], *, planes: int = 12000,
                  settings: PlaneSettings = PlaneSettings(), seed: int = 0, test_fraction: float = 0.2,
                  registration: dict | None = None, progress: Progress | None = None) -> Manifest:
    """Register ``bodies`` (each a function returning the `Body`, so only one is in memory at a time,
    with its split: "train", "test", or "mixed" = split by plane) and write the dataset folder
    ``out`` with ``planes`` planes spread evenly over the bodies.

    ``registration`` holds keyword arguments for `core.registration.register` (stages, threads…).
    """
    say = progress or (lambda message: None)
    if not bodies:
        raise InputError("subjects", "no body to build a dataset from")
    splits = {split for _, split in bodies}
    if "mixed" in splits and len(bodies) > 1:
        raise InputError("subjects", "a split by plane ('mixed') is for a single body; split several bodies by subject")
    if "mixed" not in splits and splits != {"train", "test"}:
        raise InputError("subjects", f"a split by subject needs train and test bodies, got {sorted(splits)}")
    per_body = [planes // len(bodies) + (1 if i < planes % len(bodies) else 0) for i in range(len(bodies))]
    table: LabelTable | None = None
    entries, subject_idx, split_col, arrays = [], [], [], []
    with atomic_directory(out) as tmp:
        for i, ((load, split), n) in enumerate(zip(bodies, per_body)):
            body = load()
            if body.aligned:
                say(f"{body.id}: writing volumes (paired with its truth, no registration)")
                entries.append(store_aligned(tmp, body, split))
            else:
                result = _register(body, dict(registration or {}), say)
                say(f"{body.id}: writing volumes")
                entries.append(store_subject(tmp, body, result, split))
            say(f"{body.id}: drawing {n} planes")
            arrays.append(plane_arrays(draw_planes(body.cryo, body.labels.array != 0, n, subject_seed(seed, i), settings)))
            subject_idx.append(np.full(n, i, dtype=np.int64))
            split_col.append(split_planes(n, test_fraction, subject_seed(seed, i)) if split == "mixed"
                             else np.full(n, split, dtype="<U5"))
            if body.labels.label_table is not None:
                table = body.labels.label_table if table is None else table.union(body.labels.label_table, body.id)
        if table is not None:
            table.write(tmp / "labels.csv")
        centers, us, vs = (np.concatenate([a[k] for a in arrays]) for k in range(3))
        manifest = Manifest(root=tmp, seed=seed, split_by="plane" if "mixed" in splits else "subject",
                            settings=settings, subjects=entries, plane_subject=np.concatenate(subject_idx),
                            plane_split=np.concatenate(split_col), centers=centers, us=us, vs=vs,
                            label_table="labels.csv" if table is not None else None)
        manifest.validate("dataset")
        manifest.save()
    manifest.root = Path(out)
    return manifest


def phantom_body(seed: int, size: str) -> Body:
    """Phantom subject ``seed`` as a body, with its labels on both grids, truth and transform."""
    from core.phantom import make_subject

    s = make_subject(seed, size)
    return Body(f"phantom-{seed}", s.mri, s.cryo, s.labels, {"source": "phantom", "seed": seed, "size": size},
                mri_labels=s.mri_labels, truth_mri=s.true_colorization, mri_to_cryo=s.transform.mri_to_cryo)


def phantom_bodies(train: list[int], test: list[int], size: str) -> list[tuple[Callable[[], Body], str]]:
    """Phantom subjects split by subject (a seed may not be in both lists), generated when needed."""
    both = set(train) & set(test)
    if both:
        raise InputError("subjects", f"seeds {sorted(both)} are in both the training and the test subjects")
    if not train or not test:
        raise InputError("subjects", "a split by subject needs at least one training and one test subject")
    return [(partial(phantom_body, s, size), split) for split, seeds in (("train", train), ("test", test))
            for s in seeds]
