"""The fixed image and body masks registration needs: cryosection luminance and the body outline.

The cryosection's embedding medium is coloured (blue gel in the Visible Human, black in the
phantom), and its texture would dominate mutual information if it were sampled, so elastix only
samples inside a body mask. The mask is found from the colour distance to the background colour,
which is estimated from the volume's faces (the body rarely touches all six).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from core.errors import InputError
from core.imaging import luma
from core.volume import Volume



def luminance(cryo: Volume) -> Volume:
    """BT.601 luma of an RGB volume as float32 in [0, 1] (uint8 input is scaled by 1/255)."""
    if not cryo.is_rgb:
        raise InputError("cryosection", "is not an RGB volume; luminance needs 3 colour channels")
    rgb = cryo.array[..., :3]
    y = luma(rgb).astype(np.float32)
    if cryo.array.dtype == np.uint8:
        y *= np.float32(1 / 255)
    return cryo.with_array(y, label_table=None)


def _faces(array: np.ndarray) -> np.ndarray:
    """All voxels on the six faces of a (z, y, x[, c]) array, flattened to (n, c)."""
    c = array.shape[3] if array.ndim == 4 else 1
    parts = [array[0], array[-1], array[:, 0], array[:, -1], array[:, :, 0], array[:, :, -1]]
    return np.concatenate([p.reshape(-1, c) for p in parts])


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 6-connected component of ``mask`` with its internal holes filled.

    Holes are the background components that do not touch the volume's faces (two labelling
    passes; ``binary_fill_holes`` dilates from the faces one voxel per pass, which takes tens of
    seconds on a whole-body grid).
    """
    labels, n = ndi.label(mask)
    if n == 0:
        return mask.astype(bool)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    body = labels == sizes.argmax()
    outside, _ = ndi.label(~body)
    touching = np.unique(_faces(outside))
    return ~np.isin(outside, touching[touching > 0])


def cryo_body_mask(cryo: Volume, min_fraction: float = 0.02) -> np.ndarray:
    """Boolean (z, y, x) body mask of an RGB cryosection.

    Voxels whose colour is further from the background colour (the median of the faces) than an
    Otsu threshold on that distance are body; the largest component is kept, holes filled.
    Raises `InputError` when no plausible body is found (then a mask must be given).
    """
    if not cryo.is_rgb:
        raise InputError("cryosection", "is not an RGB volume; the body mask is found from colour")
    from skimage.filters import threshold_otsu

    rgb = cryo.array[..., :3].astype(np.float32)
    background = np.median(_faces(rgb), axis=0)
    distance = np.sqrt(((rgb - background) ** 2).sum(axis=3))
    if float(distance.max()) <= 1e-6:
        raise InputError("cryosection", "is a single colour: no body to register (give a body mask with --mask)")
    mask = largest_component(distance > threshold_otsu(distance[::2, ::2, ::2]))
    fraction = float(mask.mean())
    if not min_fraction <= fraction <= 0.98:
        raise InputError("cryosection", f"the body found from colour covers {fraction:.1%} of the volume, which "
                                        f"is not plausible; give a body mask with --mask")
    return mask


def mri_body_mask(mri: Volume) -> np.ndarray:
    """Boolean (z, y, x) body mask of a scalar MRI: above an Otsu threshold, largest component."""
    from core.normalize import body_mask

    return largest_component(body_mask(mri))


def check_mask(mask: Volume | np.ndarray, cryo: Volume, source: str = "mask") -> np.ndarray:
    """A user-given mask as a boolean array on the cryosection grid, or a clear `InputError`."""
    if isinstance(mask, Volume):
        if mask.is_rgb:
            raise InputError(source, "is an RGB volume; a body mask is a single-channel 0/1 volume")
        if not mask.same_frame(cryo, atol=1e-3):
            raise InputError(source, f"lies on another grid ({mask!r}) than the cryosection ({cryo!r}); "
                                     f"resample it onto the cryosection grid")
        array = mask.array
    else:
        array = np.asarray(mask)
        if array.shape != cryo.array.shape[:3]:
            raise InputError(source, f"has shape {array.shape}, the cryosection grid is {cryo.array.shape[:3]}")
    out = array != 0
    if not out.any():
        raise InputError(source, "is empty: it marks no body voxel")
    return out
