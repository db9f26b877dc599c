"""The itk-elastix calls: run registration stages, sample the displacement field, apply transforms.

``import itk`` takes about 10 s, so it happens here, inside the functions, only when a
registration actually runs. Threads are set with ``MultiThreaderBase.SetGlobalDefaultNumberOfThreads``
and never with elastix's ``number_of_threads``: the latter segfaults with the multi-metric B-spline
stage (ITKElastix issues #160, #295).

Each parameter map runs as its own stage, started from the previous stage's transform, so the
user sees progress stage by stage and the report has each stage's time and metric trace. Elastix
reports failures only in its log, so every stage logs to a temporary folder and a failure is
turned into a `RegistrationError` quoting the log's own description of the problem.
"""
from __future__ import annotations

import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import InputError
from core.registration.params import ParameterMap
from core.registration.warp import DisplacementField
from core.volume import Volume


class RegistrationError(InputError):
    """Registration failed or produced an alignment that the quality checks reject."""


def default_threads() -> int:
    """Threads elastix may use: ``MRICOLOR_THREADS`` or every CPU this process may run on."""
    env = os.environ.get("MRICOLOR_THREADS")
    if env:
        return max(1, int(env))
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def load_itk(threads: int | None = None) -> Any:
    """``itk`` with its global thread count set (the safe way to limit elastix's threads).

    ``itk`` loads its wrapped templates lazily, on first use; touching the elastix classes here
    puts that cost (most of the ~10 s) into the import instead of into the first stage's timing.
    """
    import itk

    itk.MultiThreaderBase.SetGlobalDefaultNumberOfThreads(int(threads or default_threads()))
    itk.ParameterObject.New()
    _ = itk.ElastixRegistrationMethod, itk.TransformixFilter
    return itk


def to_itk(itk: Any, volume: Volume, dtype=np.float32) -> Any:
    """An ITK image (a copy in ``dtype``) carrying the volume's physical frame."""
    image = itk.image_from_array(np.ascontiguousarray(volume.array, dtype=dtype))
    image.SetSpacing([float(s) for s in volume.spacing])
    image.SetOrigin([float(o) for o in volume.origin])
    image.SetDirection(itk.matrix_from_array(np.ascontiguousarray(volume.direction, dtype=np.float64)))
    return image


def _parameter_object(itk: Any, maps: list[ParameterMap]) -> Any:
    po = itk.ParameterObject.New()
    for pmap in maps:
        po.AddParameterMap({k: tuple(v) for k, v in pmap.items()})
    return po


def transform_maps(tp: Any) -> list[ParameterMap]:
    """Plain dicts of an elastix transform-parameter object (one per chained transform)."""
    return [{k: list(v) for k, v in dict(tp.GetParameterMap(i)).items()}
            for i in range(tp.GetNumberOfParameterMaps())]


_DESCRIPTION = re.compile(r"Description:\s*(?:ITK ERROR:\s*)?(?:[A-Za-z]+\(0x[0-9a-f]+\):\s*)?(.*)")


def log_problem(log_text: str) -> str:
    """elastix's own description of why it stopped, from its log (last one wins)."""
    found = [m.group(1).strip() for m in _DESCRIPTION.finditer(log_text) if m.group(1).strip()]
    if found:
        return found[-1]
    errors = [ln.strip() for ln in log_text.splitlines() if "ERROR" in ln]
    return errors[-1] if errors else "no reason given in the elastix log"


def metric_trace(log_text: str) -> list[dict[str, float]]:
    """First and last metric value and iteration count of each resolution in an elastix log."""
    out: list[dict[str, float]] = []
    rows: list[float] = []
    in_table = False
    for line in log_text.splitlines():
        if line.startswith("1:ItNr"):
            in_table, rows = True, []
        elif in_table:
            cells = line.split("\t")
            if len(cells) > 2 and cells[0].strip().isdigit():
                try:
                    rows.append(float(cells[1]))
                except ValueError:
                    in_table = False
            elif rows:
                out.append({"resolution": len(out), "iterations": len(rows), "first": rows[0], "last": rows[-1]})
                in_table = False
    return out


@dataclass
class StageResult:
    """One stage: its name (the transform), time, metric trace and the chained transform."""

    name: str
    seconds: float
    metric: list[dict[str, float]]
    transform: Any = field(repr=False)  # itk transform-parameter object, all stages so far


#: Report names of elastix transforms (users know "rigid", not "Euler").
STAGE_NAMES = {"EulerTransform": "rigid", "SimilarityTransform": "similarity", "AffineTransform": "affine",
               "BSplineTransform": "B-spline"}


def stage_name(pmap: ParameterMap, number: int) -> str:
    """The name a stage goes by in progress messages and reports."""
    transform = pmap["Transform"][0]
    return STAGE_NAMES.get(transform) or transform.replace("Transform", "").lower() or f"stage {number}"


def run_stages(itk: Any, fixed: Volume, moving: Volume, mask: np.ndarray, stages: list[ParameterMap],
               progress=None, moving_mask: np.ndarray | None = None,
               initial: ParameterMap | None = None) -> list[StageResult]:
    """Run ``stages`` one after another (each started from the previous), returning each stage's result.

    ``mask`` (fixed grid) limits where elastix samples; ``moving_mask`` (moving grid), when given,
    drops samples that land outside the MRI's body. ``initial`` (a transform map) is where the
    first stage starts; it stays first in every stage's chained transform.
    """
    fixed_image = to_itk(itk, fixed)
    moving_image = to_itk(itk, moving)
    mask_image = to_itk(itk, fixed.with_array(mask.astype(np.uint8), label_table=None), dtype=np.uint8)
    moving_mask_image = (None if moving_mask is None else
                         to_itk(itk, moving.with_array(moving_mask.astype(np.uint8), label_table=None), dtype=np.uint8))
    results: list[StageResult] = []
    for number, pmap in enumerate(stages, start=1):
        name = stage_name(pmap, number)
        if progress:
            progress(f"stage {number}/{len(stages)}: {name} registration")
        with tempfile.TemporaryDirectory(prefix="mricolor-elastix-") as logdir:
            method = itk.ElastixRegistrationMethod.New(fixed_image, moving_image)
            method.SetParameterObject(_parameter_object(itk, [pmap]))
            method.SetFixedMask(mask_image)
            if moving_mask_image is not None:
                method.SetMovingMask(moving_mask_image)
            method.SetLogToConsole(False)
            method.SetLogToFile(True)
            method.SetOutputDirectory(logdir)
            if results:
                method.SetInitialTransformParameterObject(results[-1].transform)
            elif initial is not None:
                method.SetInitialTransformParameterObject(_parameter_object(itk, [initial]))
            start = time.perf_counter()
            try:
                method.UpdateLargestPossibleRegion()
            except RuntimeError:
                log = _read_log(logdir)
                raise RegistrationError("registration", f"elastix failed in the {name} stage: {log_problem(log)}") \
                    from None
            seconds = time.perf_counter() - start
            trace = metric_trace(_read_log(logdir))
        results.append(StageResult(name, seconds, trace, method.GetTransformParameterObject()))
        if progress:
            summary = (f"metric {trace[-1]['first']:.4f} → {trace[-1]['last']:.4f} at the finest resolution"
                       if trace else "no metric trace")
            progress(f"stage {number}/{len(stages)}: {name} done in {seconds:.1f} s ({summary})")
    return results


def _read_log(folder: str) -> str:
    path = Path(folder) / "elastix.log"
    return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""


def displacement_field(itk: Any, transform: Any, moving: Volume) -> DisplacementField:
    """The transform sampled on its fixed (registration) grid: d(p) = T(p) − p in mm.

    Transformix also writes the field to its output folder (the working directory by default),
    so it is pointed at a temporary one.
    """
    with tempfile.TemporaryDirectory(prefix="mricolor-transformix-") as scratch:
        transformix = itk.TransformixFilter.New(to_itk(itk, moving), transform_parameter_object=transform)
        transformix.SetComputeDeformationField(True)
        transformix.SetLogToConsole(False)
        transformix.SetOutputDirectory(scratch)
        transformix.UpdateLargestPossibleRegion()
        image = transformix.GetOutputDeformationField()
    vectors = np.asarray(itk.array_from_image(image), dtype=np.float32)
    frame = Volume(vectors, spacing=tuple(image.GetSpacing()), origin=tuple(image.GetOrigin()),
                   direction=itk.array_from_matrix(image.GetDirection()))
    return DisplacementField(frame)


def retarget(maps: list[ParameterMap], reference: Volume, nearest: bool = False) -> list[ParameterMap]:
    """Copies of transform maps whose output grid is ``reference``'s (and nearest-neighbour if asked).

    Transformix resamples onto the grid written in the transform (the registration grid); this
    points it at another grid, e.g. the full-resolution cryosection.
    """
    out = []
    for pmap in maps:
        m = {k: list(v) for k, v in pmap.items()}
        m["Size"] = [str(int(s)) for s in reference.size_xyz]
        m["Index"] = ["0", "0", "0"]
        m["Spacing"] = [repr(float(s)) for s in reference.spacing]
        m["Origin"] = [repr(float(o)) for o in reference.origin]
        m["Direction"] = [repr(float(d)) for d in reference.direction.T.reshape(-1)]
        if nearest:
            m["FinalBSplineInterpolationOrder"] = ["0"]
        out.append(m)
    return out


def apply_transform(volume: Volume, maps: list[ParameterMap], reference: Volume, nearest: bool | None = None,
                    threads: int | None = None) -> Volume:
    """Resample a moving-space (MRI-space) volume onto ``reference``'s grid with transformix.

    The route for volumes registered later with saved transform files; label volumes (or
    ``nearest=True``) use ``FinalBSplineInterpolationOrder 0`` so ids are never blended.
    Scalar volumes only (warp RGB channel by channel).
    """
    if volume.is_rgb:
        raise InputError("volume", "transformix resamples one channel at a time; warp each channel")
    nearest = volume.is_labels if nearest is None else nearest
    itk = load_itk(threads)
    po = _parameter_object(itk, retarget(maps, reference, nearest))
    try:
        image = itk.transformix_filter(to_itk(itk, volume), po, log_to_console=False)
    except RuntimeError as exc:
        raise RegistrationError("transform", f"transformix could not apply it ({str(exc).strip()[-200:]})") from None
    values = np.asarray(itk.array_from_image(image))
    if nearest or np.issubdtype(volume.array.dtype, np.integer):
        values = np.rint(values)
    return reference.with_array(values.astype(volume.array.dtype), label_table=volume.label_table)
