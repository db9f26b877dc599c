"""Robust MRI intensity normalisation to the models' [0, 1] input range, and the body mask.

The training datasets (`core.dataset.build.normalise_mri`) and the phantom MRI map 0 to 0 and
the 99.5th percentile of the intensities inside the body to 1, clipping above. Every MRI that
reaches a model — in the viewer, in ``mricolor colorize`` — is brought to the same convention
here, so a real T1-weighted NIfTI in arbitrary scanner units looks to the model like what it
was trained on.

Robustness:

- the body is found by Otsu's threshold (`body_mask`, the project's one body mask); with no usable body the
  whole volume's finite values are used;
- a few hot voxels do not move the upper end (99.5th percentile, not the maximum);
- MRI magnitude images are non-negative and their air is ~0, so 0 stays the lower end; volumes
  that hold clearly negative values (z-scored, bias-field divided, CT-like offsets) use the
  0.5th percentile of the whole volume instead, so their background still lands on 0;
- a volume with no contrast inside the body (constant) is refused with an ``InputError``.
"""
from __future__ import annotations

import numpy as np

from core.errors import InputError
from core.volume import Volume

#: Percentile inside the body mapped to 1 (the same as the training datasets use).
HIGH_PERCENTILE = 99.5
#: Percentile of the whole volume used as 0 when the volume holds clearly negative values.
LOW_PERCENTILE = 0.5
#: At most this many values feed each percentile (an evenly strided subsample beyond it).
MAX_SAMPLES = 2_000_000


def _subsample(values: np.ndarray) -> np.ndarray:
    values = values.ravel()
    return values[::max(1, values.size // MAX_SAMPLES)]


def body_threshold(volume: Volume) -> float | None:
    """The intensity separating body from air (Otsu on the finite values, a few hot voxels clipped
    first), or None when the volume has no two levels to separate."""
    array = volume.array
    if volume.is_rgb or volume.is_labels:
        raise InputError("MRI", "an RGB or label volume is not an MRI to normalise")
    finite = np.isfinite(array)
    if not finite.any():
        return None
    # Clip a few hot voxels first: Otsu on a volume with one huge value would call only it "body".
    lo, hi = np.percentile(_subsample(array[finite]).astype(np.float64), [0.0, 99.9])
    if not hi > lo:
        return None
    clean = np.clip(np.where(finite, array, lo), lo, hi).astype(np.float32, copy=False)
    return otsu_level(clean)


def otsu_level(grey: np.ndarray) -> float:
    """Otsu's threshold of a 3-D array, from every other voxel along each axis (an eighth of the
    work; a body's histogram does not change)."""
    from skimage.filters import threshold_otsu

    return float(threshold_otsu(grey[::2, ::2, ::2]))


def body_mask(volume: Volume, threshold: float | None = None) -> np.ndarray:
    """Boolean (z, y, x) body mask, the one every part of the project uses: labels ≠ 0 for a
    label volume; otherwise intensity (an RGB volume's channel mean) above ``threshold``
    (default: `body_threshold`); all False when there is none."""
    if volume.is_labels:
        return volume.array != 0
    if volume.is_rgb:
        volume = volume.with_array(volume.array.astype(np.float32).mean(axis=3), label_table=None)
    if threshold is None:
        threshold = body_threshold(volume)
    if threshold is None:
        return np.zeros(volume.array.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        return np.asarray(volume.array > threshold)


#: Connected pieces of a body mask smaller than this fraction of the mask are noise, not body.
SPECK_FRACTION = 0.005
#: Voxels the body grows by (a dilation), then gaps it closes (a closing of this many iterations):
#: a threshold leaves out the partial-volume voxels at the skin and the dark CSF of sulci and of
#: the brain's surface where it touches the air (5 % of a skull-stripped head's labelled voxels
#: on validation subject 200), which would otherwise take the background's colour.
GROW_VOXELS = 1
CLOSE_VOXELS = 2


def body_region(mask: np.ndarray) -> np.ndarray:
    """The body a thresholded mask (2-D plane or 3-D volume) stands for: specks of bright noise
    in the air (pieces under ``SPECK_FRACTION`` of the mask) dropped; grown by ``GROW_VOXELS``
    and closed over gaps up to ``CLOSE_VOXELS``, so the dark edge of the body and sulci open to
    the outside are body; enclosed cavities that are dark on T1 (lungs, bowel gas, ventricles,
    cortical bone) filled — for a volume, also the holes of every slice along each axis, since
    airways open the lungs to the outside in 3-D. Everything outside it is background, painted
    with one colour."""
    from scipy import ndimage as ndi

    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return mask
    pieces, _ = ndi.label(mask)
    sizes = np.bincount(pieces.ravel())
    keep = sizes >= SPECK_FRACTION * mask.sum()
    keep[0] = False
    mask = _grown(keep[pieces])
    if mask.ndim == 2:
        return mask | _holes(mask, ndi.generate_binary_structure(2, 1), range(2))
    filled = mask.copy()  # a cavity closed in 3-D is closed in every slice through it
    for axis in range(3):
        in_slice = ndi.generate_binary_structure(3, 1)
        in_slice[tuple(slice(0, 3, 2) if a == axis else 1 for a in range(3))] = False  # no link across slices
        filled |= _holes(mask, in_slice, [a for a in range(3) if a != axis])
    return filled


def _grown(mask: np.ndarray) -> np.ndarray:
    """``mask`` dilated by ``GROW_VOXELS``, then closed with ``CLOSE_VOXELS`` iterations (as if
    the array went on past its faces, so the closing neither stops nor eats into the body there)."""
    from scipy import ndimage as ndi

    grown = ndi.binary_dilation(mask, iterations=GROW_VOXELS)
    pad = CLOSE_VOXELS  # the body goes on past the faces (a neck, a body cut at the chest): so does the closing
    closed = ndi.binary_closing(np.pad(grown, pad, mode="edge"), iterations=CLOSE_VOXELS)
    return grown | closed[tuple(slice(pad, -pad) for _ in grown.shape)]


def _holes(mask: np.ndarray, structure: np.ndarray, edge_axes) -> np.ndarray:
    """Background not connected (through ``structure``) to the array's faces across ``edge_axes``."""
    from scipy import ndimage as ndi

    pieces, _ = ndi.label(~mask, structure=structure)
    outside = np.zeros(pieces.max() + 1, dtype=bool)
    for axis in edge_axes:
        for index in (0, -1):
            outside[np.take(pieces, index, axis=axis)] = True
    outside[0] = True
    return ~outside[pieces]


def intensity_range(volume: Volume, mask: np.ndarray | None = None, *,
                    high_percentile: float = HIGH_PERCENTILE) -> tuple[float, float]:
    """The intensities mapped to the model's 0 and 1: (0 or the 0.5th percentile, the
    ``high_percentile``-th percentile inside the body). ``mask``: the body (default: Otsu)."""
    array = volume.array
    if volume.is_rgb or volume.is_labels or array.ndim != 3:
        raise InputError("MRI", f"expected a single-channel MRI volume, got shape {array.shape}")
    finite = np.isfinite(array)
    if not finite.any():
        raise InputError("MRI", "holds no finite intensities")
    mask = body_mask(volume) if mask is None else np.asarray(mask, dtype=bool)
    if mask.shape != array.shape:
        raise ValueError(f"mask shape {mask.shape} does not match the volume's {array.shape}")
    body = array[mask & finite]
    if body.size < 16 or mask.all():
        body = array[finite]
    everything = _subsample(array[finite]).astype(np.float64)
    low = float(np.percentile(everything, LOW_PERCENTILE))
    span = float(np.max(everything)) - low
    if not span > 0:
        raise InputError("MRI", "has no contrast (every voxel holds the same intensity): nothing to colorize")
    # Non-negative magnitude images (tiny negative ringing tolerated) keep 0 as their zero.
    low = 0.0 if low >= -0.01 * max(span, 1e-12) else low
    high = float(np.percentile(_subsample(body).astype(np.float64), high_percentile))
    if not high > low:
        high = float(np.max(everything))
    if not high > low:
        raise InputError("MRI", "has no contrast (every voxel holds the same intensity): nothing to colorize")
    return low, high


def normalize_array(array: np.ndarray, low: float, high: float) -> np.ndarray:
    """float32 ``(array - low) / (high - low)`` clipped to [0, 1]; NaN becomes 0."""
    out = (np.asarray(array, dtype=np.float32) - np.float32(low)) / np.float32(high - low)
    np.nan_to_num(out, copy=False, nan=0.0, posinf=1.0, neginf=0.0)
    return np.clip(out, 0.0, 1.0, out=out)


def normalize(volume: Volume, mask: np.ndarray | None = None, *,
              high_percentile: float = HIGH_PERCENTILE) -> tuple[Volume, tuple[float, float]]:
    """The MRI scaled to [0, 1] as the models expect (same frame), and the (low, high) used."""
    low, high = intensity_range(volume, mask, high_percentile=high_percentile)
    return volume.with_array(normalize_array(volume.array, low, high)), (low, high)


__all__ = ["HIGH_PERCENTILE", "LOW_PERCENTILE", "body_mask", "body_threshold", "intensity_range", "normalize",
           "normalize_array", "otsu_level", "body_region"]
