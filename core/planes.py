"""Planes in physical space and batched slicing of volumes along them.

A `Plane` is a centre (mm), two in-plane unit axes and a pixel grid, so the same plane cut
from the MRI, the cryosection and the labels shows the same anatomy once the volumes are
registered, whatever their voxel grids. `sample` cuts many planes in one
`torch.nn.functional.grid_sample` call on the device the volume lives on.

Axes follow ITK/DICOM LPS: +x patient Left, +y Posterior, +z Superior. Image columns run
along ``u`` (left → right on screen), rows along ``v`` (top → bottom). The presets use the
radiological convention: patient right on the left of the screen, anterior up, superior up.
"""
from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from core.labels import Label, LabelTable
from core.normalize import body_mask
from core.volume import Volume

#: Marks a 0/1 mask volume as labels, so it is sampled with nearest neighbour.
_MASK_TABLE = LabelTable([Label(0, "background", "", (0, 0, 0)), Label(1, "body", "", (255, 255, 255))])

_AXIS_LETTERS = (("L", "R"), ("P", "A"), ("S", "I"))

#: In-plane axes (u, v) of the three standard orientations.
ORIENTATIONS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "axial": ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
    "coronal": ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0)),
    "sagittal": ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0)),
}


def _unit(v) -> np.ndarray:
    a = np.asarray(v, dtype=np.float64).reshape(3)
    n = np.linalg.norm(a)
    if not np.isfinite(n) or n == 0:
        raise ValueError(f"direction {v!r} has no length")
    return a / n


def _rotate(vec: np.ndarray, axis: np.ndarray, degrees: float) -> np.ndarray:
    """Rodrigues rotation of ``vec`` about the unit ``axis``."""
    t = math.radians(degrees)
    return vec * math.cos(t) + np.cross(axis, vec) * math.sin(t) + axis * np.dot(axis, vec) * (1 - math.cos(t))


@dataclass(frozen=True, eq=False)
class Plane:
    """A rectangular grid of ``height × width`` pixels of ``pixel_mm`` centred on ``center``."""

    center: np.ndarray
    u: np.ndarray
    v: np.ndarray
    pixel_mm: float = 1.5
    width: int = 256
    height: int = 256

    def __post_init__(self) -> None:
        u = _unit(self.u)
        v = np.asarray(self.v, dtype=np.float64).reshape(3)
        v = _unit(v - np.dot(v, u) * u)  # keep the axes orthonormal whatever the caller gave
        object.__setattr__(self, "u", u)
        object.__setattr__(self, "v", v)
        object.__setattr__(self, "center", np.asarray(self.center, dtype=np.float64).reshape(3))
        if self.pixel_mm <= 0 or self.width < 1 or self.height < 1:
            raise ValueError(f"plane needs a positive pixel size and pixel counts, got {self.pixel_mm}, "
                             f"{self.width}×{self.height}")

    # --- construction --------------------------------------------------------------------------
    @classmethod
    def preset(cls, orientation: str, center, *, pixel_mm: float = 1.5, width: int = 256,
               height: int = 256) -> "Plane":
        """An axial, coronal or sagittal plane through ``center`` (mm)."""
        if orientation not in ORIENTATIONS:
            raise ValueError(f"orientation must be one of {sorted(ORIENTATIONS)}, got {orientation!r}")
        u, v = ORIENTATIONS[orientation]
        return cls(np.asarray(center, float), np.asarray(u), np.asarray(v), pixel_mm, width, height)

    @classmethod
    def oblique(cls, orientation: str, center, *, tilt_deg: float = 0.0, rotate_deg: float = 0.0,
                offset_mm: float = 0.0, pixel_mm: float = 1.5, width: int = 256, height: int = 256) -> "Plane":
        """A preset tilted by ``tilt_deg`` about its horizontal axis (u) and ``rotate_deg`` about its
        vertical axis (v), then moved ``offset_mm`` along its normal: the viewer's two angles and offset."""
        base = cls.preset(orientation, center, pixel_mm=pixel_mm, width=width, height=height)
        return base.rotated(tilt_deg, rotate_deg).translated(offset_mm)

    @classmethod
    def from_normal(cls, center, normal, *, in_plane_deg: float = 0.0, pixel_mm: float = 1.5,
                    width: int = 256, height: int = 256) -> "Plane":
        """A plane with the given normal; ``in_plane_deg`` spins the pixel grid about the normal."""
        n = _unit(normal)
        helper = np.array([0.0, 0.0, 1.0]) if abs(n[2]) < 0.9 else np.array([0.0, 1.0, 0.0])
        u = _unit(np.cross(helper, n))
        v = np.cross(n, u)
        u, v = _rotate(u, n, in_plane_deg), _rotate(v, n, in_plane_deg)
        return cls(np.asarray(center, float), u, v, pixel_mm, width, height)

    # --- derived planes ------------------------------------------------------------------------
    @property
    def normal(self) -> np.ndarray:
        return np.cross(self.u, self.v)

    def translated(self, offset_mm: float) -> "Plane":
        """The parallel plane ``offset_mm`` along the normal (scrolling)."""
        return replace(self, center=self.center + offset_mm * self.normal)

    def rotated(self, tilt_deg: float = 0.0, rotate_deg: float = 0.0) -> "Plane":
        """Tilt about u (nodding), then rotate about the new v (shaking), through the centre."""
        v = _rotate(self.v, self.u, tilt_deg)
        u = _rotate(self.u, v, rotate_deg)
        return replace(self, u=u, v=v)

    def resized(self, width: int, height: int | None = None, keep_fov: bool = True) -> "Plane":
        """Same plane with another pixel count; ``keep_fov`` scales the pixel size to keep the field of view."""
        height = width if height is None else height
        pixel = self.pixel_mm * max(self.width / width, self.height / height) if keep_fov else self.pixel_mm
        return replace(self, width=int(width), height=int(height), pixel_mm=pixel)

    # --- geometry ------------------------------------------------------------------------------
    def points(self) -> np.ndarray:
        """Physical coordinates (height, width, 3) of the pixel centres."""
        cols = (np.arange(self.width) - (self.width - 1) / 2) * self.pixel_mm
        rows = (np.arange(self.height) - (self.height - 1) / 2) * self.pixel_mm
        return self.center + rows[:, None, None] * self.v + cols[None, :, None] * self.u

    def pixel_to_physical(self, row: float, col: float) -> np.ndarray:
        """Physical point (mm) of a (possibly fractional) pixel position."""
        return (self.center + (row - (self.height - 1) / 2) * self.pixel_mm * self.v
                + (col - (self.width - 1) / 2) * self.pixel_mm * self.u)

    def physical_to_pixel(self, point) -> tuple[float, float, float]:
        """(row, col, distance from the plane in mm) of a physical point."""
        d = np.asarray(point, dtype=np.float64) - self.center
        return (float(d @ self.v / self.pixel_mm + (self.height - 1) / 2),
                float(d @ self.u / self.pixel_mm + (self.width - 1) / 2), float(d @ self.normal))

    def orientation_letters(self) -> dict[str, str]:
        """Anatomical letters for the four image edges (e.g. {'left': 'R', 'right': 'L', ...}).

        Oblique axes get up to two letters, the dominant direction first (e.g. 'LA').
        """
        def letters(vec: np.ndarray) -> str:
            order = np.argsort(-np.abs(vec))
            out = [(_AXIS_LETTERS[i][0] if vec[i] > 0 else _AXIS_LETTERS[i][1])
                   for i in order[:2] if abs(vec[i]) > 0.25]
            return "".join(out)
        return {"right": letters(self.u), "left": letters(-self.u),
                "bottom": letters(self.v), "top": letters(-self.v)}

    def __repr__(self) -> str:
        return (f"Plane(center={np.round(self.center, 2).tolist()}, u={np.round(self.u, 3).tolist()}, "
                f"v={np.round(self.v, 3).tolist()}, pixel_mm={self.pixel_mm:g}, {self.width}×{self.height})")


# --- volumes as tensors ------------------------------------------------------------------------
_TENSORS: dict[tuple[int, str], torch.Tensor] = {}


def volume_tensor(volume: Volume, device: torch.device | str | None = None) -> torch.Tensor:
    """The volume as a float32 (1, C, Z, Y, X) tensor on ``device``, cached per array and device
    (RGB with channels-last strides).

    uint8 images are scaled to [0, 1]; labels keep their ids. Cached so the viewer converts and
    uploads a volume once, then slices it on every event.
    """
    dev = torch.device(device) if device is not None else torch.device("cpu")
    key = (id(volume.array), str(dev))
    cached = _TENSORS.get(key)
    if cached is not None:
        return cached
    arr = volume.array
    t = torch.from_numpy(np.ascontiguousarray(arr))
    scale = 255.0 if arr.dtype == np.uint8 and not volume.is_labels else 1.0
    t = t.to(dev).float()
    if scale != 1.0:
        t = t / scale
    # RGB keeps its (Z, Y, X, C) memory order behind the (1, C, Z, Y, X) view: grid_sample then
    # reads a voxel's three channels from one cache line.
    t = (t.permute(3, 0, 1, 2) if volume.is_rgb else t[None]).unsqueeze(0)
    _TENSORS[key] = t
    weakref.finalize(volume.array, _TENSORS.pop, key, None)
    return t


def plane_grid(volume: Volume, planes: list[Plane], device: torch.device | str = "cpu",
               out: torch.Tensor | None = None) -> torch.Tensor:
    """Normalised ``grid_sample`` coordinates (N, 1, H, W, 3) of the planes' pixels in this volume.

    One batch element per plane, because the 3-D ``grid_sample`` CPU kernel parallelises over
    the batch only (sample the volume expanded to N, which copies nothing). The affine
    physical → index → [-1, 1] is folded into one origin and two pixel steps per plane (float64,
    on the host: a few numbers); per-plane row and column offsets are summed in one broadcast
    add, the only full-size operation, written into ``out[:N]`` when given (a buffer reused
    across chunks costs no fresh pages).
    """
    h, w = planes[0].height, planes[0].width
    m = volume.physical_to_index_matrix()
    norm = 2.0 / np.maximum(np.asarray(volume.size_xyz, dtype=np.float64) - 1, 1)
    lin = m[:3, :3] * norm[:, None]
    centers = np.stack([p.center for p in planes])
    du = np.stack([p.u * p.pixel_mm for p in planes]) @ lin.T
    dv = np.stack([p.v * p.pixel_mm for p in planes]) @ lin.T
    first = (centers @ m[:3, :3].T + m[:3, 3]) * norm - 1 - (w - 1) / 2 * du - (h - 1) / 2 * dv
    rows = first[:, None, :] + np.arange(h)[None, :, None] * dv[:, None, :]  # (N, H, 3)
    cols = np.arange(w)[None, :, None] * du[:, None, :]  # (N, W, 3)
    as_t = lambda a: torch.as_tensor(a, dtype=torch.float32, device=device)  # noqa: E731
    rows_t, cols_t = as_t(rows)[:, None, :, None, :], as_t(cols)[:, None, None, :, :]
    if out is None:
        return rows_t + cols_t
    return torch.add(rows_t, cols_t, out=out[: len(planes)])


#: Planes per grid_sample call: bounds the grid buffer (0.75 MB per 256² plane), which is reused
#: from chunk to chunk, while giving each of the kernel's threads several planes to balance.
_CHUNK = 16


def sample(volume: Volume, planes: "Plane | list[Plane]", size: int | tuple[int, int] | None = None,
           device: torch.device | str | None = None) -> torch.Tensor:
    """Cut ``planes`` from ``volume`` in one batched call.

    Returns float32 (N, C, H, W) for images (C = 1 or 3; uint8 scaled to [0, 1]), trilinear, and
    int64 (N, H, W) for label volumes, nearest neighbour. Outside the volume: 0. ``size``
    (int or (H, W)) resamples every plane to that many pixels over the same field of view;
    without it all planes must share their pixel counts. Runs on ``device`` (default: where the
    volume's cached tensor is, CPU otherwise).
    """
    plist = [planes] if isinstance(planes, Plane) else list(planes)
    if not plist:
        raise ValueError("no planes to sample")
    if size is not None:
        hw = (size, size) if isinstance(size, int) else tuple(size)
        plist = [p.resized(hw[1], hw[0]) for p in plist]
    if len({(p.height, p.width) for p in plist}) != 1:
        raise ValueError("all planes of one batch need the same pixel counts (or pass size=)")
    vol = volume_tensor(volume, device)
    mode = "nearest" if volume.is_labels else "bilinear"
    n, c = len(plist), vol.shape[1]
    h, w = plist[0].height, plist[0].width
    out = torch.empty((n, c, h, w), device=vol.device)
    buffer = torch.empty((min(n, _CHUNK), 1, h, w, 3), device=vol.device)
    # Fewer planes than CPU threads (the viewer's single plane): cut each plane in row bands,
    # one batch element per band, so every thread gets work.
    bands = _bands(n, h) if vol.device.type == "cpu" else 1
    for i in range(0, n, _CHUNK):
        grid = plane_grid(volume, plist[i:i + _CHUNK], vol.device, out=buffer)
        k = len(grid)
        grid = grid.reshape(k * bands, 1, h // bands, w, 3)
        cut = F.grid_sample(vol.expand(k * bands, -1, -1, -1, -1), grid, mode=mode, padding_mode="zeros",
                            align_corners=True)  # (k·bands, C, 1, h/bands, W)
        out[i:i + k] = cut.reshape(k, bands, c, h // bands, w).transpose(1, 2).reshape(k, c, h, w)
    if volume.is_labels:
        return out[:, 0].round().long()
    return out


def _bands(planes: int, height: int) -> int:
    """Row bands per plane that give each of torch's CPU threads at least one batch element."""
    wanted = -(-torch.get_num_threads() // planes)
    return next(b for b in range(min(wanted, height), 0, -1) if height % b == 0)


def random_planes(volume: Volume, n: int, seed: int, *, pixel_mm: float = 1.5, width: int = 256,
                  height: int = 256, min_foreground: float = 0.5, mask: np.ndarray | None = None,
                  max_tries: int | None = None) -> list[Plane]:
    """``n`` planes of random orientation through the body, seeded, rejecting mostly-background ones.

    Centres are drawn among foreground voxels, normals uniformly on the sphere, the in-plane
    rotation uniformly; a plane is kept when at least ``min_foreground`` of a coarse 32×32 probe
    of its pixels lies inside the body.
    """
    rng = np.random.default_rng(seed)
    fg = body_mask(volume) if mask is None else mask
    fg_vol = Volume(fg.astype(np.int16), volume.spacing, volume.origin, volume.direction,
                    label_table=_MASK_TABLE)
    idx = np.argwhere(fg)
    if idx.size == 0:
        raise ValueError("the volume has no foreground to place planes in")
    out: list[Plane] = []
    tries = 0
    limit = max_tries if max_tries is not None else 50 * n + 100
    while len(out) < n:
        if tries >= limit:
            raise ValueError(f"only {len(out)} of {n} planes reached {min_foreground:.0%} foreground "
                             f"after {tries} tries: lower min_foreground or the field of view")
        batch = max(8, 2 * (n - len(out)))
        tries += batch
        picks = idx[rng.integers(0, len(idx), batch)][:, ::-1] + rng.uniform(-0.5, 0.5, (batch, 3))
        centers = volume.index_to_physical(picks)
        normals = rng.normal(size=(batch, 3))
        spins = rng.uniform(0, 360, batch)
        cands = [Plane.from_normal(c, nv, in_plane_deg=s, pixel_mm=pixel_mm, width=width, height=height)
                 for c, nv, s in zip(centers, normals, spins)]
        probe = sample(fg_vol, [c.resized(32, 32) for c in cands])
        frac = probe.float().mean(dim=(1, 2)).numpy()
        out.extend(c for c, f in zip(cands, frac) if f >= min_foreground)
    return out[:n]

