"""What the 3-D view renders, without Qt: the colorized volume downsampled to at most
``MAX_SIDE`` voxels a side, as an RGBA texture whose alpha is the body (so air leaves no haze)
and is zeroed on one side of the current plane (the clip that opens the body at it).

The colour is computed once per study, network and output; a plane move only recomputes the
alpha channel from a precomputed signed distance (a 128³ multiply-compare, milliseconds), so
moving the plane never reruns the network. Only the box around the voxels left visible
(`VolumeTexture.visible_box`) is drawn: under software OpenGL the picture costs what its slices
cover, and air and the opened half cover most of the texture.
"""
from __future__ import annotations

import math
import threading
from typing import Callable

import numpy as np

from core.inference import Colorizer
from core.normalize import body_mask, body_region
from core.planes import Plane
from core.volume import Volume
from viewer.export import colorize_volume

#: Largest side of the rendered texture: 128³ RGBA is 8 MiB, re-uploaded in milliseconds.
MAX_SIDE = 128
#: Opacity of one body voxel (0–255): low enough that a few voxels deep still show through a
#: slice stack, high enough that the surface reads as solid colour.
BODY_ALPHA = 90


def shrink(volume: Volume, max_side: int = MAX_SIDE) -> Volume:
    """``volume`` block-averaged by the smallest integer factor that brings every side to at most
    ``max_side`` (the frame follows: spacing × factor, origin at the first block's centre)."""
    factor = max(1, math.ceil(max(volume.array.shape[:3]) / max_side))
    if factor == 1:
        return volume
    z, y, x = (n // factor * factor for n in volume.array.shape[:3])
    a = volume.array[:z, :y, :x]
    blocks = a.reshape(z // factor, factor, y // factor, factor, x // factor, factor, *a.shape[3:])
    mean = blocks.mean(axis=(1, 3, 5), dtype=np.float32)
    if volume.array.dtype == np.uint8:
        mean = np.clip(np.rint(mean), 0, 255).astype(np.uint8)
    spacing = volume.spacing * factor
    origin = volume.origin + volume.direction @ (volume.spacing * (factor - 1) / 2)
    return Volume(mean, spacing, origin, volume.direction)


def colorize_for_view(mri: Volume, colorizer: Colorizer, output: str,
                      progress: Callable[[float], None] | None = None,
                      cancel: threading.Event | None = None,
                      colour: Volume | None = None) -> tuple[Volume, np.ndarray]:
    """The MRI shrunk to ≤ ``MAX_SIDE``³ and colorized as an export is (`viewer.export.colorize_volume`:
    progress, cancel between batches), with its body (`core.normalize.body_region`). Shrinking first
    makes the network's work up to 8× smaller than colorizing the full grid and then shrinking,
    for a picture that shows no more detail than the texture holds. ``colour``: the MRI already
    colorized whole by this network and output (`viewer.colour_volume`): shrunk instead, no network."""
    small = shrink(mri)
    rgb = colorize_volume(small, colorizer, output, progress, cancel) if colour is None else shrink(colour)
    return rgb, body_region(body_mask(small))


class VolumeTexture:
    """The RGBA texture of a colorized volume in GL's (x, y, z, 4) order, clipped at a plane.

    ``rgb``: a uint8 RGB `Volume`; ``body``: its (z, y, x) body mask. ``item_matrix`` places the
    texture (corners at 0…n along each axis) in physical millimetres (LPS), where the plane lives.
    """

    def __init__(self, rgb: Volume, body: np.ndarray):
        self.volume = rgb
        colour = np.ascontiguousarray(rgb.array.transpose(2, 1, 0, 3))
        self.rgba = np.empty(colour.shape[:3] + (4,), dtype=np.uint8)
        self.rgba[..., :3] = colour
        self.body_alpha = np.where(np.asarray(body, dtype=bool).transpose(2, 1, 0), BODY_ALPHA, 0).astype(np.uint8)
        self.rgba[..., 3] = self.body_alpha
        self.clip_plane: Plane | None = None

    @property
    def item_matrix(self) -> np.ndarray:
        """4×4 affine from texture coordinates (voxel i spans i…i+1) to physical mm."""
        shift = np.eye(4)
        shift[:3, 3] = -0.5
        return self.volume.index_to_physical_matrix() @ shift

    def signed_distance(self, plane: Plane) -> np.ndarray:
        """(x, y, z) distance in mm of every voxel centre from ``plane``, positive on its normal's side."""
        m = self.volume.index_to_physical_matrix()
        normal = plane.normal
        g = m[:3, :3].T @ normal  # mm per index step along x, y, z
        d0 = float(np.dot(m[:3, 3] - plane.center, normal))
        nx, ny, nz = self.rgba.shape[:3]
        return (d0 + g[0] * np.arange(nx, dtype=np.float32)[:, None, None]
                + g[1] * np.arange(ny, dtype=np.float32)[None, :, None]
                + g[2] * np.arange(nz, dtype=np.float32)[None, None, :])

    def clip(self, plane: Plane | None, side: int = 1) -> np.ndarray:
        """Hide (alpha 0) the voxels on one side of ``plane`` — its normal's (``side`` 1) or the
        other (-1) — (None: show the whole body); returns the texture. The colour channels are untouched."""
        self.clip_plane = plane
        if plane is None:
            self.rgba[..., 3] = self.body_alpha
        else:
            self.rgba[..., 3] = np.where(side * self.signed_distance(plane) > 0, 0, self.body_alpha)
        return self.rgba

    def visible_box(self) -> tuple[slice, slice, slice] | None:
        """The (x, y, z) box around every voxel with alpha, one transparent voxel wider on each
        side (so linear filtering at its faces is what it is in the whole texture); None when
        nothing is visible."""
        alpha = self.rgba[..., 3] > 0
        box = []
        for axis in range(3):
            hit = np.flatnonzero(alpha.any(axis=tuple(a for a in range(3) if a != axis)))
            if hit.size == 0:
                return None
            box.append(slice(max(int(hit[0]) - 1, 0), min(int(hit[-1]) + 2, alpha.shape[axis])))
        return tuple(box)

    def box_matrix(self, box: tuple[slice, slice, slice]) -> np.ndarray:
        """`item_matrix` for a texture cut to ``box``: its corner 0 is voxel (box starts)."""
        shift = np.eye(4)
        shift[:3, 3] = [part.start for part in box]
        return self.item_matrix @ shift
