"""Transforms that make one scan look like another: the variety of real MRI.

Shared by the phantom (as seeded options of a subject) and by training-time augmentation
(`core.dataset.scan_variety`), so both produce the same kinds of images. Each takes arrays or
`Volume`s and a generator and returns new data; none changes the anatomy's geometry except
`reorient` (which changes only how a volume is stored) and `resample` (its voxel size).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from core.errors import InputError
from core.volume import Volume

ORIENTATIONS = ("LPS", "RAS")


def brain_mask(labels: np.ndarray, brain_ids: list[int], spacing_xyz, fluid_ids: list[int] = ()) -> np.ndarray:
    """What a skull-stripping tool keeps: brain tissue and the fluid (``fluid_ids``: CSF) in its
    sulci and ventricles, i.e. those labels inside the brain closed over ≈ 3 mm with its holes
    filled; the largest connected piece only (no optic nerves)."""
    tissue = np.isin(labels, brain_ids)
    if not tissue.any():
        raise InputError("brain_only", "the volume holds no brain tissue to keep")
    radius = np.maximum(np.round(3.0 / np.asarray(spacing_xyz, dtype=np.float64)[::-1]).astype(int), 1)
    ball = np.linalg.norm(np.mgrid[tuple(slice(-r, r + 1) for r in radius)] / radius.reshape(3, 1, 1, 1), axis=0) <= 1
    closed = ndi.binary_closing(tissue, ball)  # not border-padded: the brain never touches the edge of a head scan
    closed = ndi.binary_fill_holes(closed | tissue) & np.isin(labels, list(brain_ids) + list(fluid_ids))
    parts, n = ndi.label(closed)
    if n > 1:
        closed = parts == np.argmax(np.bincount(parts.ravel())[1:]) + 1
    return closed


def keep_only(array: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``array`` (scalar or RGB) with every voxel outside ``mask`` set to 0."""
    return np.where(mask.reshape(mask.shape + (1,) * (array.ndim - mask.ndim)), array, np.zeros((), array.dtype))


def intensity_curve(image: np.ndarray, rng: np.random.Generator, strength: float, knots: int = 6) -> np.ndarray:
    """A smooth, monotone, random remapping of intensities in [0, 1] (beyond 1: the last slope).

    Real scanners and reconstruction pipelines do not keep intensities linear in the signal;
    slopes between ``knots`` evenly spaced points are drawn as exp(N(0, strength)), normalised so
    that 0 → 0 and 1 → 1, and joined by a monotone cubic (PCHIP), which cannot overshoot.
    """
    from scipy.interpolate import PchipInterpolator

    if strength < 0:
        raise InputError("nonlinearity", f"must not be negative, got {strength}")
    slopes = np.exp(rng.normal(0.0, strength, knots - 1))
    x = np.linspace(0.0, 1.0, knots)
    y = np.concatenate([[0.0], np.cumsum(slopes)]) / slopes.sum()
    curve = PchipInterpolator(x, y)
    image = np.asarray(image, dtype=np.float32)
    out = curve(np.clip(image, 0.0, 1.0)).astype(np.float32)
    above = image > 1
    out[above] = 1 + (image[above] - 1) * np.float32(curve.derivative()(1.0))
    return out


def bias_field(shape: tuple[int, int, int], rng: np.random.Generator, strength: float, cells: int = 3) -> np.ndarray:
    """A smooth multiplicative field exp(strength · g), g a unit-variance field with ``cells``
    correlation lengths across the volume (the receive-coil shading of a real scan)."""
    coarse = rng.standard_normal((cells + 1,) * 3)
    field = ndi.zoom(coarse, [n / (cells + 1) for n in shape], order=3, mode="nearest", grid_mode=True)
    field = field[:shape[0], :shape[1], :shape[2]]
    field = (field - field.mean()) / max(field.std(), 1e-6)
    return np.exp(np.float32(strength) * field).astype(np.float32)


def rician_noise(image: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Magnitude of the image plus complex Gaussian noise of standard deviation ``sigma``."""
    real = image + rng.normal(0.0, sigma, image.shape).astype(np.float32)
    imag = rng.normal(0.0, sigma, image.shape).astype(np.float32)
    return np.sqrt(real * real + imag * imag)


def retarget_contrast(image: np.ndarray, labels: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Change the T1 weighting (spin echo ↔ inversion recovery) of an image whose labels are known.

    Every tissue's voxels are scaled by target mean / current median of that tissue, the gain map
    blurred by half a voxel so partial-volume edges blend instead of stepping. ``target`` is indexed
    by label id (e.g. `core.phantom.relaxation.sequence_signal`).
    """
    ids = np.unique(labels)
    gain_of = np.zeros(max(int(ids.max()) + 1, len(target)), dtype=np.float32)
    for i in ids:
        current = float(np.median(image[labels == i]))
        gain_of[i] = target[i] / current if current > 1e-6 else 0.0
    gain = ndi.gaussian_filter(np.take(gain_of, labels), 0.5)
    out = image * gain
    scale = np.percentile(out[labels > 0], 99.5) if (labels > 0).any() else 1.0
    return (out / np.float32(max(scale, 1e-6))).astype(np.float32)


def crop(volume: Volume, lo, hi) -> Volume | None:
    """The part of ``volume`` inside the physical box [lo, hi] (x, y, z mm), whatever its storage
    orientation (a region scan cut from a larger one); None if they do not overlap."""
    corners = np.array(np.meshgrid(*zip(lo, hi), indexing="ij")).reshape(3, -1).T
    index = volume.physical_to_index(corners)
    size = np.array(volume.size_xyz)
    start = np.clip(np.ceil(index.min(axis=0) - 1e-6).astype(int), 0, size)
    stop = np.clip(np.floor(index.max(axis=0) + 1e-6).astype(int) + 1, 0, size)
    if np.any(stop <= start):
        return None
    array = volume.array[start[2]:stop[2], start[1]:stop[1], start[0]:stop[0]]
    return Volume(array, spacing=volume.spacing, origin=volume.index_to_physical(start.astype(np.float64)),
                  direction=volume.direction, label_table=volume.label_table)


def resample(volume: Volume, spacing_xyz, order: int = 1) -> Volume:
    """``volume`` on a grid of ``spacing_xyz`` mm covering the same extent (thicker slices, coarser
    pixels), through SimpleITK; ``order`` 0 for labels, 1 for images."""
    import SimpleITK as sitk

    from core.io.sitk_formats import from_sitk, to_sitk

    spacing = np.asarray(spacing_xyz, dtype=np.float64)
    if spacing.shape != (3,) or np.any(spacing <= 0):
        raise InputError("spacing", f"must be three positive millimetre values, got {spacing_xyz!r}")
    image = to_sitk(volume)
    size = np.maximum(np.round(np.array(image.GetSize()) * volume.spacing / spacing), 1).astype(int)
    origin = volume.index_to_physical(0.5 * (spacing / volume.spacing - 1))
    interpolator = sitk.sitkNearestNeighbor if order == 0 else sitk.sitkLinear
    out = sitk.Resample(image, [int(n) for n in size], sitk.Transform(), interpolator, origin.tolist(),
                        spacing.tolist(), volume.direction.reshape(-1).tolist(), 0.0, image.GetPixelID())
    return from_sitk(out).with_array(sitk.GetArrayFromImage(out), label_table=volume.label_table)


def reorient(volume: Volume, orientation: str) -> Volume:
    """The same volume stored with its axes running to ``orientation`` ("LPS": identity direction,
    ITK's convention; "RAS": x to the right, y to the front, NIfTI's), via SimpleITK."""
    import SimpleITK as sitk

    from core.io.sitk_formats import from_sitk, to_sitk

    if orientation not in ORIENTATIONS:
        raise InputError("orientation", f"must be one of {', '.join(ORIENTATIONS)}, got {orientation!r}")
    out = sitk.DICOMOrient(to_sitk(volume), orientation)
    return from_sitk(out).with_array(sitk.GetArrayFromImage(out), label_table=volume.label_table)
