"""Fitting the colour calibration of the ``calibrated`` output (`core.model.calibration`).

After the GAN, on the *training* subjects' whole scans: each is colorized as ``mricolor colorize``
does it (c′ slice by slice, the guided filter over the volume), the calibration's features are
computed slice by slice as the plane path computes them, and a sample of the body's voxels is
paired with the subject's true colorization. The same number of voxels is drawn from every scan,
so a 1 mm head (14 M voxels) does not drown a whole body at 3 × 3 × 4 mm. The perceptron then
learns the correction with L1 in CIE L*a*b* (ΔE00 as the loss scored the same on validation, and
is slower), Adam with a one-cycle rate. Everything is seeded: the same subjects and settings give
the same calibration.

The defaults were chosen on validation subject 200 (body, 1 mm head, skull-stripped head; v5's
network, mean ΔE over every body voxel, `runs/v7/sweep.py`): 64 hidden units and 3000 steps at
3e-3 gave 8.57 (guided: 9.82); 128 units 6000 / 12000 / 24000 / 48000 steps at 3e-3 7.91 / 7.73 /
7.52 / 7.39; 256 units 24000 steps 7.40; **128 units 24000 steps at 1e-2 7.37**; at 2e-2 7.40.
The perceptron under-fits long before it over-fits: more steps kept helping on the unseen subject.
Then (v7, `runs/v7/sweep3.py`, `sweep4.py`: cached features of every training scan, mean over the
labelled voxels of the three validation scans) at those settings with ``balance`` 0.25: MRI context
3/6/12 mm 7.40; + 24 mm 7.38; + the guided colour's mean at 6/12/24 mm 7.25; + the body's share at
12/24/48 mm and the MRI's spread at 3 mm 7.20; **all of them with MRI context up to 48 mm 7.13**
(the defaults). ``balance`` 0 / 0.25 / 0.5 with v6's features scored 7.42 / 7.41 / 7.52: 0.25
keeps the mean and moves the small tissues (lung, bowel content, bone, marrow). Fitted with these
features and scored by ``mricolor evaluate`` on validation 200: 24 000 steps 7.20, 48 000 steps
7.04, **96 000 steps 6.90** (the default); 192 000 steps 6.88. The tissue-mean term (``tissue_mean``)
at 0 / 0.05 / 0.1 / 0.25 scored 6.90 / 6.92 / 6.97 / 7.03 with CSF's mean colour 8.98 / 8.75 /
8.44 / 7.74 from its palette: it buys brain colours with the bodies' per-voxel ΔE (0.25 missed the
bodies' target on the test subjects), so it is off by default. 256 units (alone, or with the term
at 0.1) scored what 128 score over validation subjects 200–202 (7.30 ΔE over their nine scans)
at a quarter more time per volume, so ``HIDDEN`` stays 128. Three hidden layers at a peak rate of
5e-3 (v9; 1e-2 diverged once) beat two by 0.02 over the nine validation scans. Then (v10,
`runs/v13/sweep2.py`: cached voxels, validation 200, 24 000 steps at 5e-3) finer MRI windows, the
context at 1 and 2 mm and the spread at 1 mm beside the others, scored 6.65 against 6.77 on every
scan and moved CSF's mean colour 9.44 → 8.77 from its palette; the tissue-mean term over the
brain's tissues only (``mean_tissues``) brought CSF to 7.31 (the truth's own 7.76) at 6.77, where
over every tissue it cost 0.26. Fitted as shipped and scored over validation 200–202: 7.19 (fine
windows) and 7.21 with CSF 7.74 (fine windows and the brain's term, v10) against v9's 7.29. The
defaults are v10's but for the term, which names tissues of the model's label table.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Iterable

import numpy as np
import torch

from core.errors import Stopped
from core.evaluation.volumes import TruthSubject
from core.heap import release_free_memory
from core.imaging import rgb_to_lab
from core.inference import Colorizer
from core.inference.volume import DEFAULT_BATCH, guided_volume, in_plane_mm, slice_by_slice, slicing_axis
from core.labels import LabelTable
from core.model.calibration import HIDDEN, LAB_SCALE, ColourCalibration

Say = Callable[[str], None]

#: A fit whose running loss (mean over 100 steps) rises above this multiple of its lowest so far
#: has diverged: a three-layer perceptron at a peak rate of 1e-2 once jumped from 0.043 to the
#: identity's 0.068 within 1000 steps and never came back, where a healthy one-cycle fit rises
#: by about 5 % near its peak rate.
DIVERGED = 1.25


class CalibrationDiverged(Stopped):
    """The calibration's fit diverged; nothing is written (exit status 5)."""

    exit_status = 5


@dataclass(frozen=True)
class CalibrationSettings:
    """How a calibration is fitted (recorded in the checkpoint it is written to)."""

    samples_per_scan: int = 150_000
    steps: int = 96_000
    batch_size: int = 4096
    lr: float = 5e-3
    seed: int = 0
    context_mm: tuple[float, ...] = (1.0, 2.0, 3.0, 6.0, 12.0, 24.0, 48.0)
    hidden: int = HIDDEN
    #: v9's and v10's depth (`core.model.calibration.LAYERS`, two, is what specs without a
    #: depth were written with).
    layers: int = 3
    #: the optional feature windows of `ColourCalibration` (mm half-widths; empty: not used).
    colour_mm: tuple[float, ...] = (6.0, 12.0, 24.0)
    body_mm: tuple[float, ...] = (12.0, 24.0, 48.0)
    spread_mm: tuple[float, ...] = (1.0, 3.0)
    #: p of the per-tissue weights (median f / f_k)^p of the voxels' L1 (0: every voxel alike),
    #: as ``loss.l1_balance`` weighs the GAN's colour pull: small tissues count beside muscle.
    balance: float = 0.25
    #: weight of the tissue-mean term (`tissue_mean_gap`) beside the voxels' L1 (0: L1 alone).
    #: The L1 pulls each voxel to a median; a viewer sees a tissue as its mean colour.
    tissue_mean: float = 0.0
    #: the tissues (label names) whose mean the term matches; empty: every tissue. The brain's
    #: (grey and white matter, CSF) are where a tissue's mean colour is judged, and matching only
    #: them leaves the other tissues' voxels to the L1.
    mean_tissues: tuple[str, ...] = ()

    def __post_init__(self):
        for name in ("samples_per_scan", "steps", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not (np.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {self.lr}")
        self.calibration()  # the architecture checks its own windows, units and layers (ValueError)
        if not 0.0 <= self.balance <= 1.0:
            raise ValueError(f"balance must lie in [0, 1], got {self.balance}")
        if not (np.isfinite(self.tissue_mean) and self.tissue_mean >= 0):
            raise ValueError(f"tissue_mean must be a number ≥ 0, got {self.tissue_mean}")
        if self.mean_tissues and self.tissue_mean == 0:
            raise ValueError(f"mean_tissues {list(self.mean_tissues)} need a tissue_mean weight > 0")

    def to_dict(self) -> dict:
        lists = ("context_mm", "colour_mm", "body_mm", "spread_mm", "mean_tissues")
        return {**asdict(self), **{k: list(getattr(self, k)) for k in lists}}

    def mean_ids(self, table: LabelTable | None) -> list[int] | None:
        """The label ids of ``mean_tissues`` in ``table`` (None: every tissue); ``ValueError``
        naming the table's tissues for a name it lacks, or for no table."""
        if not self.mean_tissues:
            return None
        if table is None:
            raise ValueError(f"mean_tissues {list(self.mean_tissues)} need the model's label table, and it has none")
        ids = {label.name: label.id for label in table}
        unknown = [name for name in self.mean_tissues if name not in ids]
        if unknown:
            raise ValueError(f"mean_tissues {unknown} are not in the label table (its tissues: {', '.join(ids)})")
        return [ids[name] for name in self.mean_tissues]

    def calibration(self) -> ColourCalibration:
        """An untrained calibration of the architecture these settings fit."""
        return ColourCalibration(self.context_mm, self.hidden, self.colour_mm, self.body_mm, self.spread_mm, self.layers)


def scan_pixels(subject: TruthSubject, colorizer: Colorizer, calibration: ColourCalibration, count: int,
                rng: np.random.Generator, axis: str = "axial") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """About ``count`` voxels of ``subject``'s body, drawn at random: their calibration features
    (P, F) as ``colorizer`` would compute them for the ``calibrated`` output, their true colour
    (P, 3) in L*a*b* / ``LAB_SCALE`` and their tissue labels (P,)."""
    a = slicing_axis(subject.mri, axis)
    pixel_mm = in_plane_mm(subject.mri, a)
    mri01, body = subject.mri01, subject.body
    c_prime = slice_by_slice(mri01, body, a, pixel_mm, colorizer, "c_prime")
    guided = guided_volume(c_prime, mri01, subject.mri.spacing, colorizer, body)
    keep = count / max(1, int(body.sum()))
    views = [np.moveaxis(x, a, 0) for x in (guided, c_prime, mri01, body, subject.truth.array, subject.labels.array)]
    feats, targets, tissues = [], [], []
    with torch.inference_mode():
        for start in range(0, views[0].shape[0], DEFAULT_BATCH):
            g, c, m, b, t, k = (torch.from_numpy(np.ascontiguousarray(v[start:start + DEFAULT_BATCH], dtype=d))
                                for v, d in zip(views, (None, None, None, None, None, np.int64)))
            chosen = b & torch.from_numpy(rng.random(tuple(b.shape)) < keep)
            if not chosen.any():
                continue
            f = calibration.features(g.permute(0, 3, 1, 2), c.permute(0, 3, 1, 2), m[:, None], b[:, None], pixel_mm)
            feats.append(f.permute(0, 2, 3, 1)[chosen])
            rgb = t.permute(0, 3, 1, 2).float() / 255.0  # uint8 truth, converted a batch at a time
            targets.append(rgb_to_lab(rgb).permute(0, 2, 3, 1)[chosen] / LAB_SCALE)
            tissues.append(k[chosen])
    if not feats:
        raise ValueError(f"{subject.name}: no body voxels to fit a calibration on")
    return torch.cat(feats).float(), torch.cat(targets).float(), torch.cat(tissues)


def gather_pixels(colorizer: Colorizer, subjects: Iterable[TruthSubject], settings: CalibrationSettings,
                  say: Say | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The features, true colours and labels of ``settings.samples_per_scan`` voxels of each
    subject (`scan_pixels`), drawn with ``settings.seed``; ``subjects`` may be read one at a time."""
    rng = np.random.default_rng(settings.seed)
    features = settings.calibration()
    xs, ys, ks = [], [], []
    for subject in subjects:
        x, y, k = scan_pixels(subject, colorizer, features, settings.samples_per_scan, rng)
        xs.append(x)
        ys.append(y)
        ks.append(k)
        release_free_memory()  # the scan's volumes are gone; without this the heap grows scan by scan
        if say is not None:
            say(f"{subject.name}: {len(x)} voxels")
    if not xs:
        raise ValueError("fitting a calibration needs at least one subject")
    return torch.cat(xs), torch.cat(ys), torch.cat(ks)


def tissue_weights(labels: torch.Tensor, power: float, cap: float = 10.0) -> torch.Tensor:
    """Per-voxel weights (median f / f_k)^power of the voxels' tissue frequencies f_k (capped at
    ``cap`` before the power), normalised to mean 1; all ones for power 0."""
    if power == 0:
        return torch.ones(len(labels))
    ids, index, counts = torch.unique(labels, return_inverse=True, return_counts=True)
    frequency = counts.double() / counts.sum()
    per_tissue = (frequency.median() / frequency).clamp(max=cap) ** power
    weights = per_tissue[index].float()
    return weights / weights.mean()


def tissue_mean_gap(predicted: torch.Tensor, target: torch.Tensor, labels: torch.Tensor,
                    only: torch.Tensor | None = None) -> torch.Tensor:
    """The Euclidean distance between each tissue's mean ``predicted`` and mean ``target`` colour
    (P, 3), summed over the tissues of ``labels`` (P,) weighed by their share of all P voxels;
    with ``only`` (label ids), over those tissues alone (0 when none is present).

    What a viewer sees a tissue as is its mean colour. Weighed by share, each voxel's gradient is
    as large as under the L1, whatever its tissue: a rare tissue's few voxels (a noisy mean)
    do not steer the fit, and leaving tissues out does not make the others' pull stronger."""
    chosen = torch.ones_like(labels, dtype=torch.bool) if only is None else torch.isin(labels, only.to(labels.dtype))
    ids, index, counts = torch.unique(labels[chosen], return_inverse=True, return_counts=True)
    difference = torch.zeros(len(ids), predicted.shape[1], dtype=predicted.dtype).index_add(
        0, index, (predicted - target)[chosen])
    gap = ((difference / counts[:, None]).square().sum(dim=1) + 1e-12).sqrt()
    return (gap * counts).sum() / len(labels)


def train_calibration(x: torch.Tensor, y: torch.Tensor, settings: CalibrationSettings,
                      say: Say | None = None, labels: torch.Tensor | None = None,
                      mean_ids: list[int] | None = None) -> tuple[ColourCalibration, list[tuple[int, float]]]:
    """A calibration trained on features ``x`` (P, F) and true colours ``y`` (P, 3), each voxel's
    L1 weighed per tissue, plus ``settings.tissue_mean`` × `tissue_mean_gap` over the tissues
    ``mean_ids`` (None: every tissue; ``labels`` (P,) are needed when ``settings.balance`` or
    ``settings.tissue_mean`` > 0), and its loss curve
    [(step, mean loss over the last 100 steps)]. A fit that diverges (`DIVERGED`) stops with
    `CalibrationDiverged`."""
    if (settings.balance > 0 or settings.tissue_mean > 0) and labels is None:
        raise ValueError("balance > 0 and tissue_mean > 0 weigh voxels per tissue: pass their labels")
    weights = tissue_weights(labels if labels is not None else torch.zeros(len(x)), settings.balance)
    only = None if mean_ids is None else torch.as_tensor(mean_ids, dtype=torch.int64)
    torch.manual_seed(settings.seed)
    calibration = settings.calibration()
    if x.shape[1] != calibration.n_features:
        raise ValueError(f"features have {x.shape[1]} columns, the calibration takes {calibration.n_features}")
    optimiser = torch.optim.Adam(calibration.parameters(), lr=settings.lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, settings.lr, total_steps=settings.steps)
    generator = torch.Generator().manual_seed(settings.seed)
    curve, running = [], []
    for step in range(1, settings.steps + 1):
        pick = torch.randint(0, len(x), (settings.batch_size,), generator=generator)
        predicted = calibration.correct(x[pick])
        loss = ((predicted - y[pick]).abs().mean(dim=1) * weights[pick]).mean()
        if settings.tissue_mean > 0:
            loss = loss + settings.tissue_mean * tissue_mean_gap(predicted, y[pick], labels[pick], only)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        running.append(loss.item())
        if step % 100 == 0 or step == settings.steps:
            curve.append((step, float(np.mean(running))))
            running = []
            lowest = min(loss for _, loss in curve)
            if not curve[-1][1] <= DIVERGED * lowest:  # NaN too
                raise CalibrationDiverged(
                    f"the calibration's fit diverged at step {step}: its loss rose from {lowest:.4f} to "
                    f"{curve[-1][1]:.4f}; nothing was written: fit it again with a lower --lr (now {settings.lr:g})")
            if say is not None and (step % 1000 == 0 or step == settings.steps):
                say(f"step {step}/{settings.steps}: {'L1' if settings.tissue_mean == 0 else 'L1 + tissue mean'} "
                    f"(L*a*b* / {LAB_SCALE:g}) {curve[-1][1]:.4f}")
    return calibration.eval(), curve


def fit_calibration(colorizer: Colorizer, subjects: Iterable[TruthSubject], settings: CalibrationSettings = CalibrationSettings(),
                    say: Say | None = None) -> tuple[ColourCalibration, list[tuple[int, float]]]:
    """A calibration of ``colorizer``'s ``guided`` output fitted on ``subjects`` (training
    subjects, never the ones that will score it), and its loss curve. On the CPU."""
    mean_ids = settings.mean_ids(colorizer.label_table)
    x, y, labels = gather_pixels(colorizer, subjects, settings, say)
    return train_calibration(x, y, settings, say, labels, mean_ids)


__all__ = ["DIVERGED", "CalibrationDiverged", "CalibrationSettings", "scan_pixels", "gather_pixels", "tissue_weights",
           "tissue_mean_gap", "train_calibration", "fit_calibration"]
