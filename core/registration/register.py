"""Register an MRI (moving) to a cryosection (fixed): checks, elastix stages, warping, quality report.

The pipeline: refuse inputs that cannot work (wrong modalities, volumes that do not overlap, an
empty mask) before the slow ``import itk``; register on a coarse copy of the cryosection
luminance inside the body mask; sample the transform as a displacement field; warp the MRI onto
the full cryosection grid; then measure each stage's result and keep the last one that is not
visibly wrong (similarity or body overlap got worse, the field folds, or it moves tissue absurdly
far): when the B-spline stage fails, the rigid result is kept with a warning, and only when no
stage passes is the run refused (`RegistrationError`). The rigid stage starts from a pose found
from the body masks (`initialise`), and geometry-dependent elastix settings follow the volumes
(`adapt`). A silently wrong registration would poison every training slice cut from it.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from core.errors import InputError
from core.labels import Label, LabelTable
from core.registration import measures
from core.registration.adapt import adapt_stages
from core.registration.elastix import (RegistrationError, displacement_field, load_itk, run_stages,
                                       transform_maps)
from core.registration.grids import registration_grid, strided
from core.registration.initialise import initial_pose
from core.registration.masks import check_mask, cryo_body_mask, luminance, mri_body_mask
from core.registration.params import ParameterMap, load_stages
from core.registration.quality import QualityLimits, choose_stage, label_problems, quality_problems, refusal
from core.registration.warp import DisplacementField, identity_field
from core.volume import Volume

Progress = Callable[[str], None]

#: Marks a 0/1 body mask as a label volume so it is warped with nearest neighbour.
_BODY_TABLE = LabelTable([Label(0, "background", "", (0, 0, 0)), Label(1, "body", "", (255, 255, 255))])

INIT_MODES = ("frames", "center")


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


def _frame_info(volume: Volume) -> dict:
    return {"shape_zyx": list(volume.array.shape[:3]), "spacing": volume.spacing.round(4).tolist(),
            "origin": volume.origin.round(3).tolist()}


@dataclass(eq=False)
class _Inputs:
    """What the elastix stages and the checks need, prepared before ``import itk``."""

    mri: Volume
    cryo: Volume
    body: np.ndarray      # cryosection grid
    mri_mask: np.ndarray  # MRI grid
    fixed: Volume         # luminance on the registration grid
    fixed_mask: np.ndarray
    moving: Volume        # the MRI as float32
    overlap: float | None


def _prepare(mri: Volume, cryo: Volume, mask, labels: Volume | None, init: str,
             registration_spacing: float | None) -> _Inputs:
    """Refuse inputs that cannot work, find the masks and build the registration grid."""
    if init not in INIT_MODES:
        raise InputError("init", f"must be one of {INIT_MODES}, got {init!r}")
    check_modalities(mri, cryo)
    if labels is not None and not labels.same_frame(cryo, atol=1e-3):
        raise InputError("labels", "must lie on the cryosection grid (they are compared with the registered MRI labels)")
    body = cryo_body_mask(cryo) if mask is None else check_mask(mask, cryo)
    mri_mask = mri_body_mask(mri)
    overlap = check_overlap(mri, mri_mask, cryo, body) if init == "frames" else None
    target = registration_spacing or float(mri.spacing.max())
    fixed, fixed_mask = registration_grid(luminance(cryo), body, max(target, float(cryo.spacing.min())))
    moving = mri.with_array(mri.array.astype(np.float32), label_table=None)
    return _Inputs(mri, cryo, body, mri_mask, fixed, fixed_mask, moving, overlap)


def _stage_measures(field: DisplacementField, rigid: DisplacementField | None, data: _Inputs) -> dict:
    """Similarity, body overlap and deformation of one stage's result (``rigid``: the first stage's)."""
    return {"similarity": {"nmi_after": _nmi(field, data.moving, data.fixed, data.fixed_mask)},
            "body_dice": {"after": _body_dice(field, data.mri, data.mri_mask, data.fixed, data.fixed_mask)},
            "deformation": _deformation(field, rigid, data.fixed_mask)}


def _judge_stages(itk, results: list, data: _Inputs, limits: QualityLimits, truth, points) -> tuple[list, list[dict]]:
    """Every stage's displacement field and its measured, checked report entry."""
    identity = identity_field()
    nmi_before = _nmi(identity, data.moving, data.fixed, data.fixed_mask)
    body_before = _body_dice(identity, data.mri, data.mri_mask, data.fixed, data.fixed_mask)
    fields, entries, previous = [], [], None
    for result in results:
        field = displacement_field(itk, result.transform, data.moving)
        entry = _stage_measures(field, fields[0] if fields else None, data)
        entry["similarity"]["nmi_before"], entry["body_dice"]["before"] = nmi_before, body_before
        entry["problems"] = quality_problems(entry, limits, previous)
        if truth is not None:
            entry["tre_mean_mm"] = _mean_tre(field.map_points, truth, points)
        fields.append(field)
        entries.append({"name": result.name, "seconds": round(result.seconds, 2), "metric": result.metric, **entry})
        previous = entry
    return fields, entries


def _mean_tre(estimate, truth, points: np.ndarray, n: int = 2000) -> float:
    """Mean TRE of an intermediate pose on the first ``n`` TRE points (the kept result gets all)."""
    return measures.target_registration_error(estimate, truth, points[:n])["after"]["mean"]


def _start(data: _Inputs, init: str, threads: int | None, truth, points, say: Progress) -> tuple[dict, dict]:
    """The rigid stage's initial transform map and the initialisation report."""
    say("initial pose from the body masks")
    pose, report = initial_pose(data.fixed, data.fixed_mask, data.mri, data.mri_mask, frames=init == "frames",
                                threads=threads)
    if truth is not None:
        report["tre_mean_mm"] = _mean_tre(pose.map_points, truth, points)
    say(f"initial pose: start '{report['start']}', rotation {report['rotation_deg']:.1f}°")
    return pose.parameter_map(data.fixed), report


def register(mri: Volume, cryo: Volume, *, stages: list[ParameterMap] | None = None,
             mask: Volume | np.ndarray | None = None, threads: int | None = None,
             registration_spacing: float | None = None, init: str = "frames",
             mri_labels: Volume | None = None, labels: Volume | None = None,
             truth: measures.PointMap | None = None, limits: QualityLimits = QualityLimits(),
             strict: bool = True, tre_points: int = 20000, moving_mask: bool = True,
             progress: Progress | None = None) -> RegistrationResult:
    """Register ``mri`` (moving) to ``cryo`` (fixed, RGB) and warp the MRI onto the cryosection grid.

    ``stages``: elastix parameter maps (default: the shipped rigid + B-spline files); keys they
    leave out that depend on the geometry are filled in (`adapt_stages`).
    ``mask``: body mask on the cryosection grid (default: found from the colours).
    ``registration_spacing``: mm of the coarse registration grid (default: the MRI's coarsest spacing).
    ``init``: the first stage starts from the best of several poses found from the body masks;
    "frames" includes the files' frames among them (and refuses volumes that do not overlap),
    "center" does not trust the frames at all.
    ``moving_mask``: also restrict elastix to the MRI's body (found by thresholding), so that
    tissue is never matched to the background around the MRI's body.
    ``mri_labels``/``labels`` (MRI grid / cryosection grid) add Dice per tissue; ``truth`` (the
    phantom's ``mri_to_cryo``) adds TRE. The result is the last stage that passes ``limits``
    (a warning in ``report["checks"]`` says which later stage was discarded and why). When no
    stage passes, ``strict`` raises `RegistrationError`; otherwise the last stage is kept and
    its problems are listed in ``report["checks"]``.
    """
    say = progress or (lambda message: None)
    clock, cpu_start = {"start": time.perf_counter()}, time.process_time()
    say("body mask")
    data = _prepare(mri, cryo, mask, labels, init, registration_spacing)
    stages, filled = adapt_stages(load_stages() if stages is None else stages, data.fixed, data.fixed_mask)
    points = measures.body_points(data.body, cryo, tre_points, seed=0) if truth is not None else None
    initial, init_report = _start(data, init, threads, truth, points, say)
    clock["prepared"] = time.perf_counter()
    say("loading itk/elastix")
    itk = load_itk(threads)
    clock["itk"] = time.perf_counter()
    results = run_stages(itk, data.fixed, data.moving, data.fixed_mask, stages, progress=say,
                         moving_mask=data.mri_mask if moving_mask else None, initial=initial)
    clock["stages"] = time.perf_counter()
    say("checking each stage: similarity, overlap, folding")
    fields, entries = _judge_stages(itk, results, data, limits, truth, points)
    names = [e["name"] for e in entries]
    choice = choose_stage(names, [e["problems"] for e in entries])
    if not choice.passed and strict:
        raise RegistrationError("registration", refusal(names, [e["problems"] for e in entries]))
    for warning in choice.warnings:
        say(f"warning: {warning}")
    kept = entries[choice.kept]
    report: dict = {
        "mri": _frame_info(mri), "cryosection": _frame_info(cryo), "registration_grid": _frame_info(data.fixed),
        "threads": int(itk.MultiThreaderBase.GetGlobalDefaultNumberOfThreads()), "init": init,
        "initial_pose": init_report, "adapted_parameters": filled, "body_overlap_before": data.overlap,
        "mask_fraction": float(data.body.mean()), "stages": entries, "kept_stage": kept["name"],
        "similarity": kept["similarity"], "body_dice": kept["body_dice"], "deformation": kept["deformation"],
        "limits": asdict(limits)}
    say("warping the MRI onto the cryosection grid")
    field = fields[choice.kept]
    result = RegistrationResult(field.warp(data.moving, cryo), field, transform_maps(results[choice.kept].transform),
                                data.body, cryo, report)
    _measure(result, mri_labels, labels, truth, points, say)
    problems = choice.problems + label_problems(report, limits)
    if problems and strict:
        raise RegistrationError("registration", refusal([kept["name"]], [problems]))
    report["checks"] = {"passed": not problems, "problems": problems, "warnings": choice.warnings}
    clock["end"] = time.perf_counter()
    report["seconds"] = {"prepare": clock["prepared"] - clock["start"], "import_itk": clock["itk"] - clock["prepared"],
                         "registration": clock["stages"] - clock["itk"], "check_and_warp": clock["end"] - clock["stages"],
                         "total": clock["end"] - clock["start"], "cpu": time.process_time() - cpu_start}
    return result


def _measure(result: RegistrationResult, mri_labels: Volume | None, labels: Volume | None, truth,
             points: np.ndarray | None, say: Progress) -> None:
    """Add tissue Dice (with labels) and the target registration error (with the truth) to the report."""
    if mri_labels is not None and labels is not None:
        say("measuring Dice per tissue")
        result.report["dice"] = label_dice(result, mri_labels, labels)
    if truth is not None:
        say("measuring the target registration error")
        result.report["tre_mm"] = measures.target_registration_error(result.field.map_points, truth, points)


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
