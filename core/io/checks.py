"""Checks shared by every reader: dimensionality, channels, finite values, size limits.

A reader turns whatever a library gives into a `Volume`, then calls `validate` so that every
format refuses the same bad input with the same wording.
"""
from __future__ import annotations

import os
from typing import Literal

import numpy as np

from core.errors import InputError

Expect = Literal["scalar", "rgb", "labels", None]

#: Default cap on voxels a header may ask for before anything is allocated (about 8 GiB of float32).
DEFAULT_MAX_VOXELS = 2_000_000_000


def max_voxels(limit: int | None = None) -> int:
    """The voxel limit in force: the argument, else ``MRICOLOR_MAX_VOXELS``, else the default."""
    if limit is not None:
        return int(limit)
    env = os.environ.get("MRICOLOR_MAX_VOXELS")
    return int(float(env)) if env else DEFAULT_MAX_VOXELS


def check_voxel_budget(source: str, shape: tuple[int, ...], limit: int | None = None) -> None:
    """Refuse, from the header alone, a volume larger than the voxel limit."""
    n = int(np.prod([int(s) for s in shape], dtype=np.float64))
    cap = max_voxels(limit)
    if n > cap:
        dims = " × ".join(str(int(s)) for s in shape)
        raise InputError(source, f"header asks for {dims} = {n:,} voxels, more than the limit of {cap:,} "
                                 f"(raise it with max_voxels= or MRICOLOR_MAX_VOXELS)")


def non_finite(array: np.ndarray) -> str:
    """How many values are NaN and how many infinite, e.g. "3 NaN and 2 infinite" (nonzero counts only)."""
    counts = {"NaN": int(np.isnan(array).sum()), "infinite": int(np.isinf(array).sum())}
    return " and ".join(f"{n:,} {kind}" for kind, n in counts.items() if n)


def check_array(source: str, array: np.ndarray, expect: Expect) -> None:
    """Refuse arrays that are not a 3-D volume of the expected kind."""
    if array.ndim == 2:
        raise InputError(source, f"is a 2-D image (shape {array.shape}); a 3-D volume is needed")
    if array.ndim > 4 or (array.ndim == 4 and array.shape[3] > 4):
        raise InputError(source, f"is a {array.ndim}-D array (shape {array.shape}); a 3-D volume is needed "
                                 f"(4-D series such as fMRI or DWI are not supported: pick one volume)")
    if array.ndim < 3:
        raise InputError(source, f"is a {array.ndim}-D array; a 3-D volume is needed")
    channels = array.shape[3] if array.ndim == 4 else 1
    if channels == 1 and array.ndim == 4:
        array = array[..., 0]
    if expect in ("scalar", "labels") and channels != 1:
        raise InputError(source, f"has {channels} channels per voxel; a single-channel "
                                 f"{'MRI' if expect == 'scalar' else 'label'} volume is needed")
    if expect == "rgb" and channels not in (3, 4):
        raise InputError(source, f"has {channels} channel{'s' if channels != 1 else ''} per voxel; "
                                 f"an RGB cryosection volume (3 channels) is needed")
    if array.ndim == 4 and channels not in (3, 4):
        raise InputError(source, f"has {channels} channels per voxel; only scalar or RGB volumes are supported")
    if min(array.shape[:3]) < 1:
        raise InputError(source, f"is empty (shape {array.shape})")
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise InputError(source, f"contains {non_finite(array)} voxel values (NaN/Inf are not valid intensities)")
    if expect == "labels" and not np.issubdtype(array.dtype, np.integer):
        if not np.array_equal(array, np.round(array)):
            raise InputError(source, "label volume holds non-integer values")
