"""Whole-volume evaluation: colour truth where users look, on the scan's own grid.

Each unseen phantom subject's MRI is colorized exactly as ``mricolor colorize`` does it
(`core.inference.volume.colorize_volume` with its defaults) and compared with the subject's true
colorization over the body's voxels (the MRI-grid labels ≠ 0): CIEDE2000 overall and per tissue.
Reference rows, computed without learning, frame the numbers:

- the true colorization itself (ΔE 0: its structure, background and banding figures are the
  targets);
- a 64-bin intensity→colour lookup table fitted on the training subjects' registered MRI and
  cryosection (what a user could build from the same data);
- the same table fitted on the training subjects' true colorization (the best any intensity
  table can do);
- the tissue oracle: the subject's true labels painted with each tissue's mean true colour over
  the training subjects (a perfect segmentation with perfect colours per tissue).

Beside ΔE (`core.evaluation.volume_scores`): structure (SSIM of the MRI against the output's
CIE L*, in the body's box), background flatness (L* spread outside the body) and banding
(through-slice over in-plane colour change in each reformat, beside the MRI's own ratio).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from core.dataset.manifest import Manifest
from core.errors import InputError
from core.imaging import to_uint8
from core.evaluation.volume_scores import Scores, score
from core.inference import Colorizer
from core.inference.volume import colorize_volume, slicing_axis
from core.io import read_volume
from core.normalize import body_mask, body_region, normalize
from core.phantom.scans import check_kinds, phantom_scan
from core.volume import Volume

#: Bins of the intensity→colour lookup tables over the normalised MRI's [0, 1].
LUT_BINS = 64

Painter = Callable[["TruthSubject"], Volume]


@dataclass(eq=False)
class TruthSubject:
    """An MRI with its true colorization and labels on the MRI's grid (an unseen phantom subject).

    Its normalised MRI and its body are computed once and shared by every row that paints it and
    every score of it."""

    name: str
    mri: Volume
    truth: Volume
    labels: Volume

    @cached_property
    def mri01(self) -> np.ndarray:
        """The MRI in the models' [0, 1] convention, as `mricolor colorize` normalises it."""
        return normalize(self.mri)[0].array

    @cached_property
    def body(self) -> np.ndarray:
        """The body outside which `mricolor colorize` paints the background."""
        return body_region(body_mask(self.mri))


def phantom_subjects(seeds: list[int], scans: tuple[str, ...] = ("body",)) -> list[TruthSubject]:
    """Phantom subjects ``seeds``, each as every kind of scan in ``scans`` (keys of
    `core.phantom.scans.SCANS`: whole bodies, 1 mm heads, skull-stripped 1 mm heads)."""
    check_kinds(scans)
    return [TruthSubject(scan.name, scan.mri, scan.truth, scan.labels)
            for scan in (phantom_scan(seed, kind) for kind in scans for seed in seeds)]



def dataset_subjects(data: str | Path, seeds: list[int] | None = None,
                     scans: tuple[str, ...] | None = None) -> Iterator[TruthSubject]:
    """The training subjects of a phantom dataset (its ``train`` split) with their MRI-grid truth
    and labels, every scan variant included, read one at a time (a 1 mm head is large);
    ``seeds`` / ``scans``: only those phantom seeds and kinds of scan."""
    manifest = Manifest.load(data)
    chosen = [s for s in manifest.subjects if s.split == "train"
              and (seeds is None or s.metadata.get("seed") in seeds)
              and (scans is None or s.metadata.get("scan", "body") in scans)]
    if not chosen:
        raise InputError(data, "has no training subjects of the requested seeds and scans")
    lacking = [s.id for s in chosen if not {"mri", "truth", "mri_labels"} <= set(s.volumes)]
    if lacking:
        raise InputError(data, f"training subjects {lacking[:3]} have no true colorization on the MRI grid "
                               "(a phantom dataset has one)")
    for s in chosen:
        volumes = {k: read_volume(manifest.root / s.volumes[k]) for k in ("mri", "truth", "mri_labels")}
        yield TruthSubject(s.id, volumes["mri"], volumes["truth"], volumes["mri_labels"])

@dataclass
class References:
    """What the reference rows are fitted on: the training subjects of a prepared dataset."""

    registered_lut: np.ndarray   # (LUT_BINS, 3) float RGB in [0, 1]: MRI → registered cryosection
    truth_lut: np.ndarray        # (LUT_BINS, 3): MRI → true colorization
    tissue_colours: np.ndarray   # (max label + 1, 3): mean true colour per MRI-grid label
    seen: np.ndarray             # (max label + 1,) bool: labels present in the training subjects
    background: np.ndarray = field(default_factory=lambda: np.array([20, 20, 25]) / 255.0)

    @classmethod
    def fit(cls, dataset: str | Path, background: np.ndarray | None = None) -> "References":
        """Fit on the training subjects of a dataset written by ``mricolor prepare --phantom``
        (it keeps each subject's registered MRI, cryosection, true colorization and labels)."""
        manifest = Manifest.load(dataset)
        train = [s for s in manifest.subjects if s.split == "train"]
        missing = [s.id for s in train if not {"mri", "cryo", "truth", "mri_labels"} <= set(s.volumes)]
        if not train or missing:
            raise InputError(dataset, "whole-volume references need training subjects with a true colorization "
                                      f"and MRI labels (a phantom dataset); missing in {missing or 'the dataset'}")
        sums = {k: np.zeros((LUT_BINS, 3)) for k in ("cryo", "truth")}
        counts = np.zeros(LUT_BINS)
        tissue_sums, tissue_counts = np.zeros((256, 3)), np.zeros(256)
        for subject in train:
            vol = {k: read_volume(manifest.root / subject.volumes[k]).array for k in ("mri", "cryo", "truth", "mri_labels")}
            body = vol["mri_labels"] > 0
            bins = _bins(vol["mri"][body])
            counts += np.bincount(bins, minlength=LUT_BINS)
            for key in sums:
                colours = vol[key][body].astype(np.float64) / 255.0
                for c in range(3):
                    sums[key][:, c] += np.bincount(bins, colours[:, c], minlength=LUT_BINS)
            labels = vol["mri_labels"].ravel().astype(np.int64)
            tissue_counts += np.bincount(labels, minlength=256)[:256]
            truth = vol["truth"].reshape(-1, 3).astype(np.float64) / 255.0
            for c in range(3):
                tissue_sums[:, c] += np.bincount(labels, truth[:, c], minlength=256)[:256]
        seen = counts > 0
        centres = np.arange(LUT_BINS)

        def table(key: str) -> np.ndarray:
            means = sums[key] / np.maximum(counts, 1)[:, None]
            return np.stack([np.interp(centres, centres[seen], means[seen, c]) for c in range(3)], axis=1)
        tissue = tissue_sums / np.maximum(tissue_counts, 1)[:, None]
        bg = tissue[0] if background is None else np.asarray(background, dtype=np.float64)
        return cls(table("cryo"), table("truth"), tissue, tissue_counts > 0, bg)

    def rows(self) -> dict[str, Painter]:
        """Reference row name → how it paints a subject."""
        return {"*true colorization* (reference)": lambda s: s.truth,
                "*lookup table, registered cryosection* (reference)": lambda s: self._lut(s, self.registered_lut),
                "*lookup table, true colorization* (reference)": lambda s: self._lut(s, self.truth_lut),
                "*tissue oracle* (reference)": self._oracle}

    def _lut(self, subject: TruthSubject, lut: np.ndarray) -> Volume:
        rgb = np.where(subject.body[..., None], lut[_bins(subject.mri01)], self.background)
        return subject.mri.with_array(to_uint8(rgb), label_table=None)

    def _oracle(self, subject: TruthSubject) -> Volume:
        """Each tissue's mean training colour; a tissue the training subjects lack (a head's deep
        grey matter after training on bodies) takes its palette colour from the subject's table."""
        colours = self.tissue_colours.copy()
        table = subject.labels.label_table
        if table is not None:
            for label in table:
                if label.id < len(colours) and not self.seen[label.id]:
                    colours[label.id] = np.asarray(label.color) / 255.0
        labels = np.clip(subject.labels.array.astype(np.int64), 0, len(colours) - 1)
        return subject.mri.with_array(to_uint8(colours[labels]), label_table=None)


def model_row(colorizer: Colorizer, axis: str = "axial", output: str | None = None) -> Painter:
    """A checkpoint's output (None: the one it serves), colorized as ``mricolor colorize`` does."""
    return lambda subject: colorize_volume(subject.mri, colorizer, axis=axis, output=output)


def choose_serve_on_volumes(checkpoint: str | Path, seeds: list[int], scans: tuple[str, ...] = ("body",),
                            device=None) -> tuple[str, dict[str, float]]:
    """The output of ``checkpoint`` with the lowest body ΔE on whole volumes of the phantom
    ``seeds`` (validation subjects), painted as ``mricolor colorize`` does, and every output's mean."""
    colorizer = Colorizer.from_checkpoint(checkpoint, device=device)
    rows = {output: model_row(colorizer, output=output) for output in colorizer.outputs}
    results = evaluate_volumes(phantom_subjects(seeds, scans), rows)
    means = {output: float(np.mean([r.scores.delta_e for r in results if r.row == output])) for output in rows}
    return min(means, key=means.get), means


@dataclass
class VolumeResult:
    row: str
    subject: str
    scores: Scores
    seconds: float


def evaluate_volumes(subjects: list[TruthSubject], rows: dict[str, Painter], axis: str = "axial",
                     progress: Callable[[str], None] | None = None) -> list[VolumeResult]:
    """Paint every subject with every row and score it against the truth."""
    results = []
    for subject in subjects:
        a = slicing_axis(subject.mri, axis)
        for name, paint in rows.items():
            if progress is not None:
                progress(f"{subject.name}: {name}")
            start = time.perf_counter()
            painted = paint(subject)
            seconds = time.perf_counter() - start
            results.append(VolumeResult(name, subject.name, score(painted, subject.mri01, subject.truth, subject.labels, a),
                                        seconds))
    return results


def _bins(norm: np.ndarray) -> np.ndarray:
    return np.clip((np.asarray(norm, dtype=np.float64) * LUT_BINS).astype(np.int64), 0, LUT_BINS - 1)
