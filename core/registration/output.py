"""Writing a registration to a folder, all or nothing, and reading its transform back.

Layout of the folder::

    mri_registered.nii.gz      the MRI on the cryosection grid (float32)
    mask.nii.gz                the body mask used (uint8, cryosection grid)
    mri_labels_registered.nii.gz  the MRI labels warped the same way (when given)
    deformation_field.nii.gz   d(p) = T(p) − p in mm on the registration grid (vector image)
    transform/TransformParameters.{0,1,…}.txt  elastix transform files, chained (0: the initial pose
                                               from the body masks, then one per stage kept)
    report.json, report.txt    times, metrics, Dice, TRE, quality checks

The folder is built under a temporary name beside the target and renamed into place, so an
interrupted or refused run never leaves a mixture of old and new files.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from core.atomic import atomic_directory, write_text
from core.errors import InputError
from core.io import write_volume
from core.registration.params import TRANSFORM_KEYS, ParameterMap, format_parameter_map, read_parameter_file
from core.volume import Volume

TRANSFORM_DIR = "transform"


def transform_file_name(index: int) -> str:
    return f"TransformParameters.{index}.txt"


def write_transform(maps: list[ParameterMap], folder: Path) -> list[Path]:
    """Write chained elastix transform files; each names its predecessor by its bare file name.

    elastix resolves ``InitialTransformParameterFileName`` against the working directory, so
    command-line ``transformix`` must be run from inside ``folder``; `read_transform` needs no such care.
    """
    paths = []
    for i, pmap in enumerate(maps):
        m = dict(pmap)
        m["InitialTransformParameterFileName"] = [transform_file_name(i - 1) if i else "NoInitialTransform"]
        path = folder / transform_file_name(i)
        write_text(path, format_parameter_map(m))
        paths.append(path)
    return paths


def read_transform(folder: str | os.PathLike) -> list[ParameterMap]:
    """The chained transform maps of a registration folder (or of its ``transform/`` subfolder)."""
    root = Path(folder)
    if (root / TRANSFORM_DIR).is_dir():
        root = root / TRANSFORM_DIR
    files = sorted(root.glob("TransformParameters.*.txt"), key=lambda p: int(p.name.split(".")[1]))
    if not files:
        raise InputError(root, "holds no TransformParameters.N.txt files (not a registration folder?)")
    return [read_parameter_file(p, TRANSFORM_KEYS) for p in files]


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def report_text(report: dict) -> str:
    """A short human-readable summary of a registration report."""
    sec = report["seconds"]
    lines = [f"registration: {'OK' if report['checks']['passed'] else 'FAILED QUALITY CHECKS'}",
             f"time: {sec['total']:.1f} s (import itk {sec['import_itk']:.1f} s, elastix {sec['registration']:.1f} s, "
             f"checks and warping {sec['check_and_warp']:.1f} s) on {report['threads']} thread(s), "
             f"{sec['cpu']:.0f} s of CPU time"]
    start = report.get("initial_pose")
    if start:
        lines.append(f"initial pose: from the {start['start']} start, rotation {start['rotation_deg']:.1f}°, "
                     f"translation {', '.join(f'{t:.0f}' for t in start['translation_mm'])} mm")
    for stage in report["stages"]:
        trace = stage["metric"]
        metric = ("metric per resolution " + ", ".join(f"{r['first']:.3f} → {r['last']:.3f}" for r in trace)
                  if trace else "no metric trace")
        verdict = "" if "problems" not in stage else " (failed its checks)" if stage["problems"] else " (passed)"
        lines.append(f"  {stage['name']}: {stage['seconds']:.1f} s, {metric}{verdict}")
    if "kept_stage" in report:
        lines.append(f"kept: the {report['kept_stage']} result")
    sim, body, deform = report["similarity"], report["body_dice"], report["deformation"]
    lines.append(f"normalised mutual information: {_fmt(sim['nmi_before'], 3)} → {_fmt(sim['nmi_after'], 3)}")
    lines.append(f"body outline Dice: {_fmt(body['before'])} → {_fmt(body['after'])}")
    lines.append(f"deformation: max {deform['max_displacement_mm']:.1f} mm, non-rigid max "
                 f"{deform['max_nonrigid_mm']:.1f} mm, min Jacobian {deform['min_jacobian']:.2f}")
    if "dice" in report:
        d = report["dice"]
        lines.append(f"tissue Dice (mean): {_fmt(d['mean_before'])} → {_fmt(d['mean_after'])}")
    if "tre_mm" in report:
        t = report["tre_mm"]
        lines.append(f"TRE mean/p95: {t['before']['mean']:.2f}/{t['before']['p95']:.2f} mm → "
                     f"{t['after']['mean']:.2f}/{t['after']['p95']:.2f} mm ({t['reduction']:.0%} less)")
    lines.extend(f"warning: {w}" for w in report["checks"].get("warnings", []))
    lines.extend(f"problem: {p}" for p in report["checks"]["problems"])
    return "\n".join(lines) + "\n"


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def write_report(report: dict, folder: Path) -> None:
    write_text(folder / "report.json", json.dumps(report, indent=1, default=_json_default))
    write_text(folder / "report.txt", report_text(report))


def save_result(result, folder: str | os.PathLike, extra: dict[str, Volume] | None = None) -> Path:
    """Write a `RegistrationResult` (plus ``extra`` volumes already on the cryosection grid) atomically."""
    from core.io.sitk_formats import to_sitk

    import SimpleITK as sitk

    with atomic_directory(folder) as tmp:
        write_volume(result.registered, tmp / "mri_registered.nii.gz")
        write_volume(result.reference.with_array(result.mask.astype(np.uint8), label_table=None), tmp / "mask.nii.gz")
        for name, volume in (extra or {}).items():
            write_volume(volume, tmp / f"{name}.nii.gz")
        sitk.WriteImage(to_sitk(result.field.frame), str(tmp / "deformation_field.nii.gz"), True)
        write_transform(result.transform, tmp / TRANSFORM_DIR)
        write_report(result.report, tmp)
    return Path(folder)
