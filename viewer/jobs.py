"""The work done for one plane, as plain functions the workers (or the UI thread) call (no Qt).

The UI thread calls only `slice_mri` (a 256² trilinear cut, about 2 ms). Everything slower —
the cryosection and labels cuts, the model, the metrics — runs on worker threads through the
functions here, each taking an immutable request captured on the UI thread, so no locks are
needed while they run.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from core.imaging import to_uint8
from core.inference import Colorizer
from core.normalize import body_region
from core.planes import Plane, sample
from core.volume import Volume
from viewer.study import Study


def to_unit(mri_plane: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """MRI values mapped to the model's [0, 1] input by the volume's intensity range."""
    lo, hi = value_range
    return np.clip((mri_plane - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def inside(volume: Volume, plane: Plane) -> np.ndarray:
    """Boolean (H, W): which pixels of ``plane`` fall inside the volume's grid.

    The voxel index is affine in (row, col), so each axis is one broadcast sum of a column and a
    row vector instead of a transform of every pixel's point.
    """
    m = volume.physical_to_index_matrix()
    first = volume.physical_to_index(plane.pixel_to_physical(0, 0))
    rows = np.arange(plane.height, dtype=np.float32)[:, None]
    cols = np.arange(plane.width, dtype=np.float32)[None, :]
    mask = np.ones((plane.height, plane.width), dtype=bool)
    for k, size in enumerate(volume.size_xyz):
        step_v, step_u = (m[k, :3] @ (axis * plane.pixel_mm) for axis in (plane.v, plane.u))
        index = (np.float32(first[k]) + rows * np.float32(step_v)) + cols * np.float32(step_u)
        mask &= (index >= -0.5) & (index <= size - 0.5)
    return mask


def slice_mri(study: Study, plane: Plane) -> np.ndarray:
    """The MRI plane (H, W) float32 in the MRI's own units."""
    with torch.inference_mode():
        return sample(study.mri, plane)[0, 0].numpy()


@dataclass(frozen=True)
class SidePlanes:
    """What is shown beside the MRI for one plane: cryosection (uint8 RGB), labels and their ids."""

    cryo: np.ndarray | None
    labels: np.ndarray | None
    present: tuple[int, ...]


def slice_side(study: Study, plane: Plane) -> SidePlanes:
    """Cut the cryosection and the labels at ``plane`` (worker thread: an RGB cut costs more)."""
    with torch.inference_mode():
        cryo = None if study.cryo is None else to_uint8(sample(study.cryo, plane)[0].permute(1, 2, 0).numpy())
        labels = None if study.labels is None else sample(study.labels, plane)[0].numpy().astype(np.int32)
    present = () if labels is None else tuple(int(i) for i in np.unique(labels) if i != 0)
    return SidePlanes(cryo, labels, present)


@dataclass(frozen=True)
class ColorizeRequest:
    """One plane for the model: the MRI plane in [0, 1], the model and which output to show, and
    the MRI and plane so that pixels outside the MRI's grid are shown black, as in the MRI panel.

    ``mri01`` None: the worker cuts the plane from ``mri`` and maps it by ``value_range`` itself
    (a view that shows only the colour needs no MRI cut on the UI thread).

    ``preview`` runs the model at half resolution (a quarter of the work) while the user scrolls;
    the full plane follows when the plane rests. ``body_level`` (the MRI framing's body/air threshold
    in [0, 1]) crops the model's input to the body, as the training planes were framed, and paints
    everything outside the body (`core.normalize.body_region`) with the palette's background.
    ``colour``: the MRI already colorized whole by this network and output (`viewer.colour_volume`):
    the plane's colour is cut from it (milliseconds) instead of running the network.
    """

    mri01: np.ndarray | None
    colorizer: Colorizer
    output: str
    mri: Volume
    plane: Plane
    preview: bool = False
    body_level: float | None = None
    value_range: tuple[float, float] | None = None
    colour: Volume | None = None


def same_plane(a: Plane, b: Plane) -> bool:
    """The same pixels in space: size, pixel size and axes equal, centres within a micrometre."""
    return ((a.width, a.height) == (b.width, b.height) and abs(a.pixel_mm - b.pixel_mm) < 1e-9
            and all(np.allclose(x, y, rtol=0.0, atol=1e-3) for x, y in ((a.center, b.center), (a.u, b.u), (a.v, b.v))))


def same_request(a: ColorizeRequest, b: ColorizeRequest) -> bool:
    """Whether two requests give the same picture: the same network, output, resolution and body
    threshold, the same plane of the same MRI and the same input pixels (compared where both were
    cut already). The current plane of the three-view layout is, untilted, also one of its
    orthogonal views: one run serves both."""
    if a.mri01 is not None and b.mri01 is not None:
        same_input = a.mri01.shape == b.mri01.shape and np.allclose(a.mri01, b.mri01, rtol=0.0, atol=1e-4)
    else:
        same_input = a.value_range == b.value_range and None not in (a.value_range, b.value_range)
    return (a.colorizer is b.colorizer and a.mri is b.mri and a.colour is b.colour and a.output == b.output
            and a.preview == b.preview
            and a.body_level == b.body_level and same_plane(a.plane, b.plane) and same_input)


@dataclass(frozen=True)
class Colorized:
    rgb: np.ndarray  # (H, W, 3) uint8, always at the plane's full size
    ms: float
    preview: bool = False
    from_volume: bool = False  # cut from the colorized volume, not run through the network


def colorize(request: ColorizeRequest) -> Colorized:
    """Run the model on one plane, cropped to the body as ``mricolor colorize`` crops each slice
    (`core.inference.colorizer.Colorizer.colorize_planes`); the time (the status bar's) is that call's: the
    model with its crop and resampling, without the slicing before it. With ``request.colour`` the
    plane is cut from that colorized volume instead (the time is the cut's)."""
    if request.colour is not None:
        start = time.perf_counter()
        with torch.inference_mode():
            rgb = to_uint8(sample(request.colour, request.plane)[0].permute(1, 2, 0).numpy())
        return Colorized(rgb, (time.perf_counter() - start) * 1000.0, from_volume=True)
    mri01 = request.mri01
    if mri01 is None:  # cut here, off the UI thread
        with torch.inference_mode():
            mri01 = to_unit(sample(request.mri, request.plane)[0, 0].numpy(), request.value_range)
    body = None if request.body_level is None else body_region(mri01 > request.body_level)
    start = time.perf_counter()
    rgb = to_uint8(request.colorizer.colorize_planes(mri01[None], request.plane.pixel_mm, request.output,
                                                     body=body, detail=0.5 if request.preview else 1.0)[0])
    ms = (time.perf_counter() - start) * 1000.0
    rgb[~inside(request.mri, request.plane)] = 0
    return Colorized(rgb, ms, request.preview)


@dataclass(frozen=True)
class MetricsRequest:
    """The pair shown on screen for one plane, plus the study to cut the references from."""

    study: Study
    plane: Plane
    mri01: np.ndarray
    rgb: np.ndarray  # uint8 (H, W, 3), as displayed


def plane_metrics(request: MetricsRequest) -> dict[str, float]:
    """CF, ΔCF, SSIM, MS-SSIM, FSIM, STSIM (and truth ΔE, PSNR on the phantom, over its body) of the
    displayed plane.

    Needs a cryosection: the paper pairs ΔCF, FSIM and STSIM with it.
    """
    from core.metrics import table_row

    study, plane = request.study, request.plane
    with torch.inference_mode():
        cryo = None if study.cryo is None else sample(study.cryo, plane)[0].permute(1, 2, 0).numpy()
        truth = None if study.truth is None else sample(study.truth, plane)[0].permute(1, 2, 0).numpy()
        body = None if truth is None or study.truth_labels is None else sample(study.truth_labels, plane)[0].numpy() > 0
    colorized = request.rgb.astype(np.float32) / 255.0
    row = table_row(request.mri01, colorized, cryo, truth=truth, body=body)
    return {k: float(v) for k, v in row.items() if np.isscalar(v)}
