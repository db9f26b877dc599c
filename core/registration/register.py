"""Register an MRI (moving) to a cryosection (fixed): checks, elastix stages, warping, quality report.

The pipeline: refuse inputs that cannot work (wrong modalities, volumes that do not overlap, an
empty mask) before the slow ``import itk``; register on a coarse copy of the cryosection
luminance inside the body mask; sample the transform as a displacement field; warp the MRI onto
the full cryosection grid; then measure the result and refuse it (`RegistrationError`) when it is
visibly wrong: similarity or body overlap got worse, the field folds, or it moves tissue absurdly
far. A silently wrong registration would poison every training slice cut from it.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from core.errors import InputError
from core.labels import Label, LabelTable
from core.registration import measures
from core.registration.elastix import (RegistrationError, displacement_field, load_itk, run_stages,
                                       transform_maps)
from core.registration.grids import registration_grid, strided
from core.registration.masks import check_mask, cryo_body_mask, luminance, mri_body_mask
from core.registration.params import ParameterMap, load_stages
from core.registration.warp import DisplacementField, identity_field
from core.volume import Volume

Progress = Callable[[str], None]

#: Marks a 0/1 body mask as a label volume so it is warped with nearest neighbour.
_BODY_TABLE = LabelTable([Label(0, "background", "", (0, 0, 0)), Label(1, "body", "", (255, 255, 255))])

INIT_MODES = ("frames", "center")


@dataclass(frozen=True)
class QualityLimits:
    """When a finished registration is refused as wrong rather than written."""

    min_body_dice: float = 0.6       # body outlines must overlap at least this much afterwards
    max_body_dice_drop: float = 0.05  # … and not overlap less than before
    max_nmi_drop: float = 0.02       # normalised mutual information (1: independent, 2: identical) must not fall
    max_label_dice_drop: float = 0.05  # mean tissue Dice (when labels are given) must not fall
    max_folding_fraction: float = 1e-3  # share of body voxels where the mapping folds (det J ≤ 0)
    max_nonrigid_mm: float = 40.0    # largest displacement beyond the first (rigid) stage


@dataclass(eq=False)
class RegistrationResult:
    """The registered MRI on the cryosection grid, the transform in two forms, the mask and a report."""

    registered: Volume
    field: DisplacementField  # fixed (cryosection) point → moving (MRI) point, on the registration grid
    transform: list[ParameterMap]  # elastix transform maps, chained (the files users can reuse)
    mask: np.ndarray  # body mask on the cryosection grid
    reference: Volume = field(repr=False)  # the cryosection (its grid is the output grid)
    report: dict = field(default_factory=dict)

    def warp(self, volume: Volume, nearest: bool | None = None) -> Volume:
        """Any MRI-space volume (labels, true colorization…) on the cryosection grid, like the MRI."""
        return self.field.warp(volume, self.reference, nearest)


def check_modalities(mri: Volume, cryo: Volume) -> None:
    """Refuse an MRI that is colour or labels, a cryosection that is not colour, constant images."""
    if mri.is_rgb:
        raise InputError("MRI", "is an RGB volume; the MRI must be a single-channel scalar volume "
                                "(were the MRI and the cryosection swapped?)")
    if mri.is_labels:
        raise InputError("MRI", "is a label volume; give the MRI intensities (labels go with --mri-labels)")
    if not cryo.is_rgb:
        raise InputError("cryosection", "is a single-channel volume; the cryosection must be an RGB colour "
                                        "volume (were the MRI and the cryosection swapped?)")
    if float(np.ptp(mri.array)) == 0:
        raise InputError("MRI", "is constant: there is nothing to register")


def body_overlap(mri: Volume, mri_mask: np.ndarray, cryo: Volume, mask: np.ndarray, n: int = 4000) -> float:
    """Share of cryosection body points that fall inside the MRI's body where the frames put them."""
    points = measures.body_points(mask, cryo, n, seed=0)
    index = np.rint(mri.physical_to_index(points)).astype(np.int64)
    size = np.asarray(mri.size_xyz)
    inside = np.all((index >= 0) & (index < size), axis=1)
    hit = np.zeros(len(points), dtype=bool)
    i = index[inside]
    hit[inside] = mri_mask[i[:, 2], i[:, 1], i[:, 0]]
    return float(hit.mean())


def _extent(volume: Volume, mask: np.ndarray | None = None) -> str:
    idx = np.argwhere(mask)[:, ::-1] if mask is not None else np.array([[0, 0, 0], np.asarray(volume.size_xyz) - 1])
    corners = volume.index_to_physical(np.array([idx.min(axis=0), idx.max(axis=0)], dtype=np.float64))
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    return "x {:.0f}…{:.0f}, y {:.0f}…{:.0f}, z {:.0f}…{:.0f} mm".format(*np.stack([lo, hi], 1).ravel())


def check_overlap(mri: Volume, mri_mask: np.ndarray, cryo: Volume, mask: np.ndarray, minimum: float = 0.1) -> float:
    """`InputError` when the MRI and cryosection bodies barely overlap in physical space."""
    share = body_overlap(mri, mri_mask, cryo, mask)
    if share < minimum:
        raise InputError("MRI and cryosection", f"do not overlap in physical space: only {share:.0%} of the "
                         f"cryosection's body ({_extent(cryo, mask)}) lies inside the MRI's body "
                         f"({_extent(mri, mri_mask)}). Check their origin, spacing and direction, or align their "
                         f"centres first (init='center', --init center)")
    return share


def _with_center_init(stages: list[ParameterMap]) -> list[ParameterMap]:
    first = dict(stages[0])
    first["AutomaticTransformInitialization"] = ["true"]
    first["AutomaticTransformInitializationMethod"] = ["CenterOfGravity"]
    return [first, *stages[1:]]


def _body_dice(field: DisplacementField, mri: Volume, mri_mask: np.ndarray, grid: Volume, mask: np.ndarray) -> float:
    body = mri.with_array(mri_mask.astype(np.int16), label_table=_BODY_TABLE)
    warped = field.warp(body, grid).array
    return measures.dice_per_label(warped, mask.astype(np.int16), ids=[1])[1]


def _nmi(field: DisplacementField, moving: Volume, grid: Volume, mask: np.ndarray) -> float:
    warped = field.warp(moving, grid).array
    return measures.normalised_mutual_information(grid.array[mask], warped[mask])


def _deformation(final: DisplacementField, first: DisplacementField | None, mask: np.ndarray) -> dict:
    vectors = final.vectors[mask]
    jac = final.jacobian_determinant()[mask]
    nonrigid = (np.linalg.norm(vectors - first.vectors[mask], axis=1) if first is not None
                else np.zeros(len(vectors)))
    return {"max_displacement_mm": float(np.linalg.norm(vectors, axis=1).max()),
            "max_nonrigid_mm": float(nonrigid.max()), "mean_nonrigid_mm": float(nonrigid.mean()),
            "min_jacobian": float(jac.min()), "folding_fraction": float((jac <= 0).mean())}


def quality_problems(report: dict, limits: QualityLimits) -> list[str]:
    """Human-readable reasons to distrust a finished registration (empty when it looks sound)."""
    problems = []
    body, sim, deform = report["body_dice"], report["similarity"], report["deformation"]
    if body["after"] < limits.min_body_dice:
        problems.append(f"the body outlines overlap poorly after registration (Dice {body['after']:.2f} "
                        f"< {limits.min_body_dice})")
    if body["after"] < body["before"] - limits.max_body_dice_drop:
        problems.append(f"the body outlines overlap less than before (Dice {body['before']:.2f} → {body['after']:.2f})")
    if sim["nmi_after"] < sim["nmi_before"] - limits.max_nmi_drop:
        problems.append(f"image similarity got worse (NMI {sim['nmi_before']:.3f} → {sim['nmi_after']:.3f})")
    if deform["folding_fraction"] > limits.max_folding_fraction:
        problems.append(f"the deformation folds over {deform['folding_fraction']:.2%} of the body "
                        f"(Jacobian determinant down to {deform['min_jacobian']:.2f})")
    if deform["max_nonrigid_mm"] > limits.max_nonrigid_mm:
        problems.append(f"the non-rigid stage moves tissue by up to {deform['max_nonrigid_mm']:.0f} mm "
                        f"(> {limits.max_nonrigid_mm:.0f} mm)")
    dice = report.get("dice")
    if dice and dice["mean_after"] < dice["mean_before"] - limits.max_label_dice_drop:
        problems.append(f"mean tissue Dice got worse ({dice['mean_before']:.2f} → {dice['mean_after']:.2f})")
    return problems


def _frame_info(volume: Volume) -> dict:
    return {"shape_zyx": list(volume.array.shape[:3]), "spacing": volume.spacing.round(4).tolist(),
            "origin": volume.origin.round(3).tolist()}


def register(mri: Volume, cryo: Volume, *, stages: list[ParameterMap] | None = None,
             mask: Volume | np.ndarray | None = None, threads: int | None = None,
             registration_spacing: float | None = None, init: str = "frames",
             mri_labels: Volume | None = None, labels: Volume | None = None,
             truth: measures.PointMap | None = None, limits: QualityLimits = QualityLimits(),
             strict: bool = True, tre_points: int = 20000, moving_mask: bool = True,
             progress: Progress | None = None) -> RegistrationResult:
    """Register ``mri`` (moving) to ``cryo`` (fixed, RGB) and warp the MRI onto the cryosection grid.

    ``stages``: elastix parameter maps (default: the shipped rigid + B-spline files).
    ``mask``: body mask on the cryosection grid (default: found from the colours).
    ``registration_spacing``: mm of the coarse registration grid (default: the MRI's coarsest spacing).
    ``init``: "frames" trusts both physical frames; "center" aligns centres of gravity first.
    ``moving_mask``: also restrict elastix to the MRI's body (found by thresholding), so that
    tissue is never matched to the background around the MRI's body.
    ``mri_labels``/``labels`` (MRI grid / cryosection grid) add Dice per tissue; ``truth`` (the
    phantom's ``mri_to_cryo``) adds TRE. With ``strict`` a result failing ``limits`` raises
    `RegistrationError`; otherwise the problems are listed in ``report["checks"]``.
    """
    say = progress or (lambda message: None)
    if init not in INIT_MODES:
        raise InputError("init", f"must be one of {INIT_MODES}, got {init!r}")
    clock = {"start": time.perf_counter()}
    cpu_start = time.process_time()
    check_modalities(mri, cryo)
    if labels is not None and not labels.same_frame(cryo, atol=1e-3):
        raise InputError("labels", "must lie on the cryosection grid (they are compared with the registered MRI labels)")
    stages = load_stages() if stages is None else stages
    if init == "center":
        stages = _with_center_init(stages)

    say("body mask")
    body = cryo_body_mask(cryo) if mask is None else check_mask(mask, cryo)
    mri_mask = mri_body_mask(mri)
    overlap = check_overlap(mri, mri_mask, cryo, body) if init == "frames" else None
    target = registration_spacing or float(mri.spacing.max())
    fixed, fixed_mask = registration_grid(luminance(cryo), body, max(target, float(cryo.spacing.min())))
    moving = mri.with_array(mri.array.astype(np.float32), label_table=None)
    clock["prepared"] = time.perf_counter()

    say("loading itk/elastix")
    itk = load_itk(threads)
    clock["itk"] = time.perf_counter()
    results = run_stages(itk, fixed, moving, fixed_mask, stages, progress=say,
                         moving_mask=mri_mask if moving_mask else None)
    clock["stages"] = time.perf_counter()

    say("checking the result: deformation field")
    final = displacement_field(itk, results[-1].transform, moving)
    first = displacement_field(itk, results[0].transform, moving) if len(results) > 1 else None
    before = identity_field()
    say("checking the result: similarity, overlap, folding")
    report: dict = {
        "mri": _frame_info(mri), "cryosection": _frame_info(cryo), "registration_grid": _frame_info(fixed),
        "threads": int(itk.MultiThreaderBase.GetGlobalDefaultNumberOfThreads()), "init": init,
        "body_overlap_before": overlap, "mask_fraction": float(body.mean()),
        "stages": [{"name": r.name, "seconds": round(r.seconds, 2), "metric": r.metric} for r in results],
        "similarity": {"nmi_before": _nmi(before, moving, fixed, fixed_mask),
                       "nmi_after": _nmi(final, moving, fixed, fixed_mask)},
        "body_dice": {"before": _body_dice(before, mri, mri_mask, fixed, fixed_mask),
                      "after": _body_dice(final, mri, mri_mask, fixed, fixed_mask)},
        "deformation": _deformation(final, first, fixed_mask),
        "limits": asdict(limits),
    }
    say("warping the MRI onto the cryosection grid")
    result = RegistrationResult(final.warp(moving, cryo), final, transform_maps(results[-1].transform), body, cryo, report)
    if mri_labels is not None and labels is not None:
        say("measuring Dice per tissue")
        report["dice"] = label_dice(result, mri_labels, labels)
    if truth is not None:
        say("measuring the target registration error")
        points = measures.body_points(body, cryo, tre_points, seed=0)
        report["tre_mm"] = measures.target_registration_error(final.map_points, truth, points)
    clock["end"] = time.perf_counter()
    report["seconds"] = {"prepare": clock["prepared"] - clock["start"], "import_itk": clock["itk"] - clock["prepared"],
                         "registration": clock["stages"] - clock["itk"], "check_and_warp": clock["end"] - clock["stages"],
                         "total": clock["end"] - clock["start"], "cpu": time.process_time() - cpu_start}
    problems = quality_problems(report, limits)
    report["checks"] = {"passed": not problems, "problems": problems}
    if problems and strict:
        raise RegistrationError("registration", "did not converge to a trustworthy alignment: " + "; ".join(problems)
                                + " (inspect the inputs and parameters, or keep the result anyway with strict=False / --force)")
    return result


def label_dice(result: RegistrationResult, mri_labels: Volume, labels: Volume) -> dict:
    """Dice per tissue of the MRI labels warped nearest-neighbour (identity before, transform after),
    on the cryosection grid thinned to a few million voxels (`strided`)."""
    if not mri_labels.is_labels:
        raise InputError("MRI labels", "have no label table; read them with label_table= (or a .labels.csv sidecar)")
    grid = strided(labels)
    before = measures.dice_per_label(identity_field().warp(mri_labels, grid).array, grid.array)
    after = measures.dice_per_label(result.field.warp(mri_labels, grid).array, grid.array)
    table = labels.label_table or mri_labels.label_table
    return {"before": measures.named_dice(before, table), "after": measures.named_dice(after, table),
            "mean_before": measures.mean_dice(before), "mean_after": measures.mean_dice(after)}
