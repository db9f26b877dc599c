"""Scores of a colorized volume against its subject's truth, on the MRI's own grid.

- ``delta_e``: CIEDE2000 to the true colorization, mean over the body's voxels (labels ≠ 0), and
  per tissue (mean and voxel count, so subjects can be pooled); ``tissue_lab``: the output's mean
  CIE L*a*b* colour over each tissue (what a viewer sees a tissue as, compared with its palette
  colour in `core.evaluation.volume_table.brain_table`).
- ``structure``: SSIM of the normalised MRI against the output's CIE L* / 100 (3-D, 7-voxel
  windows), inside the body's bounding box: does the colour image keep the MRI's edges?
- ``background_std``: standard deviation of L* over the voxels more than ``BACKGROUND_MARGIN``
  voxels outside the body: a flat background has 0.
- ``banding``: in each reformat that contains the slicing axis, the mean colour change (CIE76,
  Lab distance) between neighbouring body voxels across slices over that within slices, and the
  same ratio of the MRI's own intensity (``mri_banding``): a volume colorized slice by slice
  whose slices disagree shows stripes there (ratio well above the MRI's).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.volume import Volume

#: Voxels within this distance of the body are left out of the background's flatness (partial volume).
BACKGROUND_MARGIN = 2
#: Names of the array axes (z, y, x) of a volume stored in the usual LPS/RAS order, for reformats.
AXIS_NAMES = ("z", "y", "x")


@dataclass
class Scores:
    delta_e: float
    per_tissue: dict[int, tuple[float, int]]
    tissue_lab: dict[int, tuple[float, float, float]]
    structure: float
    background_std: float
    banding: dict[str, float]
    mri_banding: dict[str, float]


def lab(rgb_uint8: np.ndarray) -> np.ndarray:
    """CIE L*a*b* (D65) of uint8 RGB (…, 3), float32."""
    from skimage.color import rgb2lab

    return rgb2lab(rgb_uint8.astype(np.float32) / 255.0, channel_axis=-1).astype(np.float32)


def score(painted: Volume, mri01: np.ndarray, truth: Volume, labels: Volume, slicing_axis: int) -> Scores:
    """All scores of ``painted`` (uint8 RGB on the MRI's grid) against the true colorization
    ``truth``, the MRI's labels (the body is labels ≠ 0) and the normalised MRI ``mri01``."""
    from skimage.color import deltaE_ciede2000

    if painted.array.shape != truth.array.shape:
        raise ValueError(f"painted volume {painted.array.shape} is not on the MRI's grid {truth.array.shape}")
    labels = labels.array.astype(np.int64)
    body = labels > 0
    out_lab = lab(painted.array)
    error = deltaE_ciede2000(out_lab[body], lab(truth.array[body]), channel_axis=-1)
    ids, index = np.unique(labels[body], return_inverse=True)
    sums, counts = np.bincount(index, error), np.bincount(index)
    per_tissue = {int(i): (float(s / c), int(c)) for i, s, c in zip(ids, sums, counts)}
    body_lab = out_lab[body].astype(np.float64)
    lab_means = np.stack([np.bincount(index, body_lab[:, c]) for c in range(3)], axis=1) / counts[:, None]
    tissue_lab = {int(i): tuple(float(v) for v in m) for i, m in zip(ids, lab_means)}
    return Scores(float(error.mean()), per_tissue, tissue_lab, structure(mri01, out_lab[..., 0], body),
                  background_std(out_lab[..., 0], body), *banding(out_lab, mri01, body, slicing_axis))


def structure(mri01: np.ndarray, lightness: np.ndarray, body: np.ndarray) -> float:
    """SSIM of the MRI against L* / 100 inside the body's bounding box."""
    from skimage.metrics import structural_similarity

    box = tuple(slice(int(i.min()), int(i.max()) + 1) for i in np.nonzero(body))
    a, b = mri01[box].astype(np.float32), (lightness[box] / 100.0).astype(np.float32)
    if min(a.shape) < 7:
        raise ValueError(f"the body's box {a.shape} is too small for 7-voxel SSIM windows")
    return float(structural_similarity(a, b, data_range=1.0, win_size=7))


def background_std(lightness: np.ndarray, body: np.ndarray) -> float:
    """L* standard deviation more than ``BACKGROUND_MARGIN`` voxels away from the body (NaN if none)."""
    from scipy import ndimage as ndi

    near = ndi.binary_dilation(body, iterations=BACKGROUND_MARGIN)
    values = lightness[~near]
    return float(values.std()) if values.size else float("nan")


def banding(out_lab: np.ndarray, mri01: np.ndarray, body: np.ndarray,
            slicing_axis: int) -> tuple[dict[str, float], dict[str, float]]:
    """Through-slice over in-plane change per reformat containing ``slicing_axis``, for the
    output (Lab distance) and for the MRI (absolute difference)."""
    def step(values: np.ndarray, axis: int, distance) -> float:
        a = [slice(None)] * 3
        b = [slice(None)] * 3
        a[axis], b[axis] = slice(1, None), slice(None, -1)
        both = body[tuple(a)] & body[tuple(b)]
        return float(distance(values[tuple(a)][both], values[tuple(b)][both]).mean())

    colour = lambda p, q: np.linalg.norm(p - q, axis=-1)  # noqa: E731
    grey = lambda p, q: np.abs(p - q)  # noqa: E731
    out, mri = {}, {}
    across_colour, across_grey = step(out_lab, slicing_axis, colour), step(mri01, slicing_axis, grey)
    for axis in (a for a in range(3) if a != slicing_axis):
        name = f"{AXIS_NAMES[slicing_axis]}/{AXIS_NAMES[axis]}"
        out[name] = across_colour / max(step(out_lab, axis, colour), 1e-9)
        mri[name] = across_grey / max(step(mri01, axis, grey), 1e-9)
    return out, mri
