"""A phantom subject (MRI, cryosection, labels, the truth) and its on-disk cache.

Generation order: labels with the MRI's bowel loops; the cryosection rendered from them and
resampled through the transform as the true colorization, and the MRI signal resampled the same
way; then the cryosection's own bowel loops drawn over the same labels and their slabs
re-rendered. Subjects are cached as one ``.npz`` per (phantom version, seed, size) in the
user's cache directory; a file that fails to load or check is regenerated, never trusted.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import InputError
from core.labels import LabelTable
from core.phantom import mri as mri_sim
from core.phantom.anatomy import Anatomy
from core.phantom.body import FOV_HI, FOV_LO, Body
from core.phantom.cryo import CryoRenderer
from core.phantom.grid import Grid
from core.phantom.sampling import resample_to_mri
from core.phantom.tissues import load_table, tissue_ids
from core.phantom.warp import PhantomTransform
from core.volume import Volume

PHANTOM_VERSION = "1"  # bump whenever generation changes, so stale caches are not reused


@dataclass(frozen=True)
class SizeSpec:
    cryo_mm: float                       # isotropic cryosection spacing
    mri_mm: tuple[float, float, float]   # MRI spacing (x, y, z): coarser in-plane, thicker slices


SIZES = {
    "small": SizeSpec(5.0, (7.5, 7.5, 10.0)),
    "default": SizeSpec(2.0, (3.0, 3.0, 4.0)),
}
# The MRI field of view is wider than the cryosection's in x and y, so the rotated body stays in it.
MRI_FOV_LO = (FOV_LO[0] - 40.0, FOV_LO[1] - 40.0, FOV_LO[2])
MRI_FOV_HI = (FOV_HI[0] + 40.0, FOV_HI[1] + 40.0, FOV_HI[2])
VOLUMES = ("mri", "cryo", "labels", "mri_labels", "true_colorization")


@dataclass(eq=False)
class Subject:
    """One procedural body: an MRI, its cryosection, their labels, and the truth between them.

    ``labels`` and ``cryo`` share the cryosection grid; ``mri``, ``mri_labels`` (the warped labels
    the MRI was simulated from, with the MRI's own bowel) and ``true_colorization`` (the
    cryosection's colours and textures in the MRI's geometry) share the MRI grid. ``transform``
    maps MRI points to cryosection points.
    """

    seed: int
    size: str
    mri: Volume
    cryo: Volume
    labels: Volume
    mri_labels: Volume
    true_colorization: Volume
    label_table: LabelTable
    transform: PhantomTransform


def _check_request(seed, size) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError("seed", f"must be a non-negative integer, got {seed!r}")
    if size not in SIZES:
        raise InputError("size", f"unknown phantom size {size!r}; valid sizes: {', '.join(SIZES)}")


def grids(size: str) -> tuple[Grid, Grid]:
    """The cryosection and MRI grids of a size."""
    spec = SIZES[size]
    return Grid.covering(FOV_LO, FOV_HI, (spec.cryo_mm,) * 3), Grid.covering(MRI_FOV_LO, MRI_FOV_HI, spec.mri_mm)


def generate(seed: int, size: str = "default") -> Subject:
    """Build a subject from scratch (no cache)."""
    _check_request(seed, size)
    seed = int(seed)
    table = load_table()
    cryo_grid, mri_grid = grids(size)
    anatomy = Anatomy(cryo_grid, tissue_ids(table), Body.draw(seed), seed)
    labels = anatomy.take_labels("mri")  # first the MRI's bowel: the MRI and the truth are made from it
    centre = (np.array(FOV_LO) + np.array(FOV_HI)) / 2
    transform = PhantomTransform.draw(seed, centre, (MRI_FOV_LO, MRI_FOV_HI), (np.array(FOV_LO) - 10, np.array(FOV_HI) + 10))

    renderer = CryoRenderer(cryo_grid, table, seed)
    rgb = renderer.render(labels)
    signal = mri_sim.signal_volume(labels, cryo_grid, table, seed, SIZES[size].mri_mm)
    (mri_labels,), (clean, true_colour) = resample_to_mri(transform, mri_grid, cryo_grid, [labels], [signal, rgb])
    del signal
    anatomy.draw(labels, "cryo")  # then the cryosection's own bowel, and its colours there
    renderer.render(labels, out=rgb, z_range=anatomy.zone_slices[0])
    mri = mri_sim.acquire(clean, mri_grid, mri_labels != 0, table, seed)
    return Subject(seed, size, mri=mri_grid.volume(mri), cryo=cryo_grid.volume(rgb),
                   labels=cryo_grid.volume(labels, table), mri_labels=mri_grid.volume(mri_labels, table),
                   true_colorization=mri_grid.volume(true_colour), label_table=table, transform=transform)


# --- cache ---------------------------------------------------------------------------------------
def cache_dir() -> Path:
    """Where subjects are cached: ``$MRICOLOR_CACHE_DIR/phantom`` or the user cache directory."""
    root = os.environ.get("MRICOLOR_CACHE_DIR")
    if not root:
        import platformdirs

        root = platformdirs.user_cache_dir("mricolor")
    return Path(root) / "phantom"


def cache_path(seed: int, size: str) -> Path:
    return cache_dir() / f"phantom-v{PHANTOM_VERSION}-seed{int(seed)}-{size}.npz"


def _to_arrays(subject: Subject) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {"version": np.array(PHANTOM_VERSION), "seed": np.array(subject.seed),
                                  "size": np.array(subject.size), "label_table": np.array(subject.label_table.to_json())}
    for name in VOLUMES:
        vol: Volume = getattr(subject, name)
        out.update({name: vol.array, f"{name}_spacing": vol.spacing, f"{name}_origin": vol.origin,
                    f"{name}_direction": vol.direction})
    out.update({f"transform_{k}": v for k, v in subject.transform.to_arrays().items()})
    return out


def _from_arrays(data: dict[str, np.ndarray], seed: int, size: str) -> Subject:
    if str(data["version"]) != PHANTOM_VERSION or int(data["seed"]) != seed or str(data["size"]) != size:
        raise ValueError("cache entry is for another phantom version, seed or size")
    table = LabelTable.from_json(str(data["label_table"]))
    vols = {}
    for name in VOLUMES:
        vols[name] = Volume(data[name], spacing=data[f"{name}_spacing"], origin=data[f"{name}_origin"],
                            direction=data[f"{name}_direction"], label_table=table if "labels" in name else None)
    cryo_grid, mri_grid = grids(size)
    expected = {"cryo": cryo_grid.shape + (3,), "labels": cryo_grid.shape, "mri": mri_grid.shape,
                "mri_labels": mri_grid.shape, "true_colorization": mri_grid.shape + (3,)}
    if any(vols[n].array.shape != s for n, s in expected.items()):
        raise ValueError("cache entry has the wrong shapes")
    transform = PhantomTransform.from_arrays({k[len("transform_"):]: v for k, v in data.items()
                                              if k.startswith("transform_")})
    return Subject(seed, size, label_table=table, transform=transform, **vols)


def load_cached(seed: int, size: str) -> Subject | None:
    """The cached subject, or None if its file is missing or unusable in any way (then it warns)."""
    path = cache_path(seed, size)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            return _from_arrays({k: npz[k] for k in npz.files}, int(seed), size)
    except Exception as exc:  # noqa: BLE001 - any failure means the file cannot be trusted
        warnings.warn(f"phantom cache {path} is unreadable ({type(exc).__name__}: {exc}); regenerating",
                      stacklevel=3)
        return None


def save_cached(subject: Subject) -> Path:
    """Write ``subject`` to its cache file atomically (a failure to write only warns)."""
    from core.atomic import atomic_path

    path = cache_path(subject.seed, subject.size)
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **_to_arrays(subject))
    except (OSError, InputError) as exc:          # InputError: no room on the cache's disk
        warnings.warn(f"could not cache the phantom in {path} ({exc})", stacklevel=3)
    return path


def make_subject(seed: int = 0, size: str = "default", cache: bool = True) -> Subject:
    """The phantom subject ``seed`` at ``size`` ("small" for tests, "default"), from the cache if there.

    The same seed gives the same subject, bit for bit; different seeds give different bodies.
    """
    _check_request(seed, size)
    seed = int(seed)
    if not cache:
        return generate(seed, size)
    subject = load_cached(seed, size)
    if subject is None:
        subject = generate(seed, size)
        save_cached(subject)
    return subject
