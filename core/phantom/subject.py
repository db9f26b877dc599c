"""A phantom subject (MRI, cryosection, labels, the truth) and its on-disk cache.

Generation order: labels with the MRI's bowel loops; the cryosection rendered from them and
resampled through the transform as the true colorization, and the MRI signal resampled the same
way; then the cryosection's own bowel loops drawn over the same labels and their slabs
re-rendered. Then the scan's variety (`PhantomOptions`): intensity curve, skull stripping and
storage orientation. Subjects are cached as one ``.npz`` per (phantom version, seed, size,
options) in the user's cache directory; a file that fails to load or check is regenerated,
never trusted.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import InputError
from core.labels import LabelTable
from core.phantom import mri as mri_sim
from core.phantom.anatomy import Anatomy
from core.phantom import variety
from core.phantom.body import Body
from core.phantom.cryo import CryoRenderer
from core.phantom.fields import stream
from core.phantom.grid import Grid
from core.phantom.options import PhantomOptions
from core.phantom.regions import REGIONS
from core.phantom.sampling import resample_to_mri
from core.phantom.tissues import HEAD_TISSUES, TISSUES, load_table, tissue_ids
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
    options: PhantomOptions = PhantomOptions()


def _check_request(seed, size) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError("seed", f"must be a non-negative integer, got {seed!r}")
    if size not in SIZES:
        raise InputError("size", f"unknown phantom size {size!r}; valid sizes: {', '.join(SIZES)}")


MAX_CRYO_VOXELS = 120_000_000  # a whole body at 1 mm would be 220 M voxels (≈ 10 GB while rendering)
BRAIN = ("grey_matter", "white_matter", "deep_grey_matter")


def mri_spacing(size: str, options: PhantomOptions) -> tuple[float, float, float]:
    """The MRI voxel size: the option, else the region's default, else the size's."""
    return options.mri_mm or REGIONS[options.region].default_mri_mm or SIZES[size].mri_mm


def grids(size: str, options: PhantomOptions = PhantomOptions()) -> tuple[Grid, Grid]:
    """The cryosection and MRI grids of a size and scan. The cryosection is never coarser than the
    MRI's finest spacing, so the truth has the MRI's detail."""
    region, mri_mm = REGIONS[options.region], mri_spacing(size, options)
    cryo_mm = min(SIZES[size].cryo_mm, min(mri_mm))
    cryo = Grid.covering(region.lo, region.hi, (cryo_mm,) * 3)
    if np.prod(cryo.shape) > MAX_CRYO_VOXELS:
        raise InputError("mri_mm", f"a {options.region} cryosection at {cryo_mm:g} mm would have "
                                   f"{np.prod(cryo.shape) / 1e6:.0f} M voxels; choose a region or a coarser voxel size")
    return cryo, Grid.covering(*region.mri_box(), mri_mm)


def generate(seed: int, size: str = "default", options: PhantomOptions = PhantomOptions()) -> Subject:
    """Build a subject from scratch (no cache)."""
    _check_request(seed, size)
    seed = int(seed)
    region = REGIONS[options.region]
    table = load_table(HEAD_TISSUES if region.clinical_head else TISSUES)
    cryo_grid, mri_grid = grids(size, options)
    anatomy = Anatomy(cryo_grid, tissue_ids(table), Body.draw(seed), seed, clinical_head=region.clinical_head)
    labels = anatomy.take_labels("mri")  # first the MRI's bowel: the MRI and the truth are made from it
    lo, hi = np.array(region.lo), np.array(region.hi)
    transform = PhantomTransform.draw(seed, region.centre, region.mri_box(), (lo - 10, hi + 10))

    renderer = CryoRenderer(cryo_grid, table, seed)
    rgb = renderer.render(labels)
    means = mri_sim.tissue_signal(table, seed, options.effective_sequence, options.field_t)
    signal = mri_sim.signal_volume(labels, cryo_grid, means, table, seed, mri_spacing(size, options))
    (mri_labels,), (clean, true_colour) = resample_to_mri(transform, mri_grid, cryo_grid, [labels], [signal, rgb])
    del signal
    anatomy.draw(labels, "cryo")  # then the cryosection's own bowel, and its colours there
    renderer.render(labels, out=rgb, z_range=anatomy.zone_slices[0])
    mri = mri_sim.acquire(clean, mri_grid, mri_labels != 0, means, table, seed, options.bias, options.noise)
    if options.nonlinearity:
        mri = variety.intensity_curve(mri, stream(seed, "variety.curve"), options.nonlinearity)
    if options.brain_only:
        keep = variety.brain_mask(mri_labels, [lab.id for lab in table if lab.name in BRAIN], mri_grid.spacing,
                                  [lab.id for lab in table if lab.name == "csf"])
        mri, true_colour = variety.keep_only(mri, keep), variety.keep_only(true_colour, keep)
    vols = {"mri": mri_grid.volume(mri), "cryo": cryo_grid.volume(rgb), "labels": cryo_grid.volume(labels, table),
            "mri_labels": mri_grid.volume(mri_labels, table), "true_colorization": mri_grid.volume(true_colour)}
    if options.orientation != "LPS":
        vols = {name: variety.reorient(vol, options.orientation) for name, vol in vols.items()}
    return Subject(seed, size, label_table=table, transform=transform, options=options, **vols)


# --- cache ---------------------------------------------------------------------------------------
def cache_dir() -> Path:
    """Where subjects are cached: ``$MRICOLOR_CACHE_DIR/phantom`` or the user cache directory."""
    root = os.environ.get("MRICOLOR_CACHE_DIR")
    if not root:
        import platformdirs

        root = platformdirs.user_cache_dir("mricolor")
    return Path(root) / "phantom"


def cache_path(seed: int, size: str, options: PhantomOptions = PhantomOptions()) -> Path:
    """The cache file of a subject; the default scan keeps the name it always had."""
    key = options.key()
    tag = f"-{hashlib.sha1(key.encode()).hexdigest()[:12]}" if key else ""
    return cache_dir() / f"phantom-v{PHANTOM_VERSION}-seed{int(seed)}-{size}{tag}.npz"


def _to_arrays(subject: Subject) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {"version": np.array(PHANTOM_VERSION), "seed": np.array(subject.seed),
                                  "size": np.array(subject.size),
                                  "label_table": np.array(subject.label_table.to_json()),
                                  "options": np.array(subject.options.key())}
    for name in VOLUMES:
        vol: Volume = getattr(subject, name)
        out.update({name: vol.array, f"{name}_spacing": vol.spacing, f"{name}_origin": vol.origin,
                    f"{name}_direction": vol.direction})
    out.update({f"transform_{k}": v for k, v in subject.transform.to_arrays().items()})
    return out


def _from_arrays(data: dict[str, np.ndarray], seed: int, size: str, options: PhantomOptions) -> Subject:
    if str(data["version"]) != PHANTOM_VERSION or int(data["seed"]) != seed or str(data["size"]) != size \
            or str(data.get("options", "")) != options.key():
        raise ValueError("cache entry is for another phantom version, seed, size or scan options")
    table = LabelTable.from_json(str(data["label_table"]))
    vols = {}
    for name in VOLUMES:
        vols[name] = Volume(data[name], spacing=data[f"{name}_spacing"], origin=data[f"{name}_origin"],
                            direction=data[f"{name}_direction"], label_table=table if "labels" in name else None)
    cryo_grid, mri_grid = grids(size, options)
    expected = {"cryo": cryo_grid.shape + (3,), "labels": cryo_grid.shape, "mri": mri_grid.shape,
                "mri_labels": mri_grid.shape, "true_colorization": mri_grid.shape + (3,)}
    if any(vols[n].array.shape != s for n, s in expected.items()):
        raise ValueError("cache entry has the wrong shapes")
    transform = PhantomTransform.from_arrays({k[len("transform_"):]: v for k, v in data.items()
                                              if k.startswith("transform_")})
    return Subject(seed, size, label_table=table, transform=transform, options=options, **vols)


def load_cached(seed: int, size: str, options: PhantomOptions = PhantomOptions()) -> Subject | None:
    """The cached subject, or None if its file is missing or unusable in any way (then it warns)."""
    path = cache_path(seed, size, options)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            return _from_arrays({k: npz[k] for k in npz.files}, int(seed), size, options)
    except Exception as exc:  # noqa: BLE001 - any failure means the file cannot be trusted
        warnings.warn(f"phantom cache {path} is unreadable ({type(exc).__name__}: {exc}); regenerating",
                      stacklevel=3)
        return None


def save_cached(subject: Subject) -> Path:
    """Write ``subject`` to its cache file atomically (a failure to write only warns)."""
    from core.atomic import atomic_path

    path = cache_path(subject.seed, subject.size, subject.options)
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **_to_arrays(subject))
    except (OSError, InputError) as exc:          # InputError: no room on the cache's disk
        warnings.warn(f"could not cache the phantom in {path} ({exc})", stacklevel=3)
    return path


def make_subject(seed: int = 0, size: str = "default", cache: bool = True, **options) -> Subject:
    """The phantom subject ``seed`` at ``size`` ("small" for tests, "default"), from the cache if there.

    ``options`` are the fields of `PhantomOptions` (``region="head"``, ``mri_mm=1``, …). The same
    seed and options give the same subject, bit for bit; different seeds give different bodies.
    """
    _check_request(seed, size)
    seed = int(seed)
    scan = PhantomOptions(**options)
    if not cache:
        return generate(seed, size, scan)
    subject = load_cached(seed, size, scan)
    if subject is None:
        subject = generate(seed, size, scan)
        save_cached(subject)
    return subject
