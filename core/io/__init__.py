"""Reading and writing volumes in every format the product accepts.

``read_volume(path, **options)`` picks the reader from what ``path`` is:

- ``.nii``/``.nii.gz``/``.mha``/``.mhd``/``.nrrd``/``.nhdr``/``.dcm`` → SimpleITK (frame from the header);
- a folder holding a DICOM series → that series; a folder of ``.raw`` files → raw RGB slices
  (Visible Human); any other folder → a 2-D image stack;
- ``.raw`` → raw RGB (needs ``shape``; ``layout`` planar/interleaved/auto);
- ``.npy``/``.npz`` → NumPy (never unpickled).

Options (keyword arguments, or a sidecar JSON, see `core.io.sidecar`): ``spacing``, ``origin``,
``direction``, ``flip_z``, ``shape``, ``layout``, ``header_bytes``, ``downsample``,
``label_table`` (a `LabelTable` or a CSV/JSON path: the volume is a segmentation, colour-coded
images are mapped to ids), ``expect`` ("scalar" | "rgb" | "labels": refuse anything else),
``max_voxels`` (refuse larger headers before allocating). Every failure is an `InputError`
naming the file.
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from core.errors import InputError
from core.io import raw, sidecar, sitk_formats, stacks
from core.io.checks import Expect, check_array, check_voxel_budget
from core.labels import LabelTable
from core.volume import Volume

READ_SUFFIXES = sitk_formats.SITK_SUFFIXES + (".raw", ".npy", ".npz")
WRITE_SUFFIXES = (".nii", ".nii.gz", ".mha", ".mhd", ".nrrd", ".raw")


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def label_table_sidecar(path: Path) -> Path:
    """Where the label table of a label volume written to ``path`` lives (``<stem>.labels.csv``)."""
    stem = path.name[: -len(_suffix(path))] if _suffix(path) else path.name
    return path.with_name(f"{stem}.labels.csv")


def _read_numpy(path: Path, limit: int | None) -> np.ndarray:
    try:
        if path.suffix.lower() == ".npy":
            with open(path, "rb") as fh:
                version = np.lib.format.read_magic(fh)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, _, _ = read_header(fh)
            check_voxel_budget(str(path), shape, limit)
            return np.load(path, allow_pickle=False)
        with np.load(path, allow_pickle=False) as data:
            keys = list(data.keys())
            if len(keys) != 1 and "array" not in keys:
                raise InputError(path, f"holds arrays {keys}; expected one array (or one named 'array')")
            return data["array" if "array" in keys else keys[0]]
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise InputError(path, f"is not a readable NumPy file ({exc})") from None


def _read_any(path: Path, options: dict, limit: int | None) -> Volume:
    if path.is_dir():
        if sitk_formats.dicom_series_files(path):
            return sitk_formats.read_dicom_series(path, limit)
        if any(p.suffix.lower() == ".raw" for p in path.iterdir()):
            return raw.read_raw(path, options, limit)
        if not any(p.suffix.lower() in stacks.IMAGE_SUFFIXES for p in path.iterdir()) and \
                any(p.is_file() for p in path.iterdir()):
            raise InputError(path, "holds neither a DICOM series nor 2-D images nor .raw slices")
        if not any(path.iterdir()):
            raise InputError(path, "is an empty folder (no DICOM series, no images)")
        return stacks.read_stack(path, options, limit)
    suffix = _suffix(path)
    if suffix in sitk_formats.SITK_SUFFIXES:
        return sitk_formats.read_file(path, limit)
    if suffix == ".raw":
        return raw.read_raw(path, options, limit)
    if suffix in (".npy", ".npz"):
        array = _read_numpy(path, limit)
        check_array(str(path), array, None)
        return Volume(array, spacing=options.get("spacing", (1, 1, 1)), origin=options.get("origin", (0, 0, 0)),
                      direction=np.asarray(options.get("direction", np.eye(3).reshape(-1))).reshape(3, 3))
    if suffix in stacks.IMAGE_SUFFIXES:
        raise InputError(path, "is a single 2-D image; a 3-D volume is needed (give the folder of the image stack)")
    raise InputError(path, f"has an unknown volume format '{suffix or path.name}'; "
                           f"readable: {', '.join(READ_SUFFIXES)}, DICOM folders and image-stack folders")


def _as_label_table(value, source: Path) -> LabelTable:
    if isinstance(value, LabelTable):
        return value
    return LabelTable.read(Path(value))


def read_volume(path: str | os.PathLike, *, expect: Expect = None, max_voxels: int | None = None,
                label_table: "LabelTable | str | os.PathLike | None" = None, **options) -> Volume:
    """Read a 3-D volume (scalar, RGB or labels) with its physical frame.

    Raises `InputError` naming the file for anything that is not a usable 3-D volume.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file or folder not found")
    opts = {**sidecar.read_sidecar(path), **options}
    table_source = label_table if label_table is not None else opts.pop("label_table", None)
    if table_source is None and not path.is_dir():
        side = label_table_sidecar(path)
        table_source = side if side.is_file() else None
    try:
        volume = _read_any(path, opts, max_voxels)
    except PermissionError:
        raise InputError(path, "cannot be read: permission denied") from None
    array = volume.array
    if array.ndim == 4 and array.shape[3] == 4:
        array = array[..., :3]
    check_array(str(path), array, None if table_source is not None and array.ndim == 4 else expect)
    if table_source is not None:
        table = _as_label_table(table_source, path)
        if array.ndim == 4:
            array = table.labels_from_colors(array)
        array = np.asarray(array)
        if np.issubdtype(array.dtype, np.floating):
            array = np.rint(array)
        array = array.astype(np.int16 if table.num_classes < 32768 else np.int32)
        unknown = np.setdiff1d(np.unique(array), table.ids)
        if unknown.size:
            raise InputError(path, f"holds label ids {unknown[:10].tolist()} that the label table does not define")
        return volume.with_array(array, label_table=table)
    if expect == "labels":
        check_array(str(path), array, "labels")
    return volume.with_array(array) if array is not volume.array else volume


def write_volume(volume: Volume, path: str | os.PathLike, *, format: str | None = None,
                 compress: bool = True) -> Path:
    """Write ``volume`` atomically; the format comes from the suffix or ``format``.

    ``format="png"`` (or a path without suffix) writes a PNG stack folder with ``volume.json``;
    ``format="dicom"`` writes a DICOM series folder; ``.raw`` writes planar raw RGB plus a
    sidecar. A label volume's table is written beside it (``<stem>.labels.csv``).
    """
    path = Path(path)
    suffix = _suffix(path)
    fmt = format or ("png" if suffix == "" else suffix)
    if fmt == "png":
        stacks.write_stack(volume, path)
    elif fmt == "dicom":
        sitk_formats.write_dicom_series(volume, path)
    elif fmt == ".raw":
        raw.write_raw(volume, path)
    elif fmt in WRITE_SUFFIXES:
        array = volume.array
        if array.dtype == np.float64:
            volume = volume.with_array(array.astype(np.float32), volume.label_table)
        sitk_formats.write_file(volume, path, compress=compress)
        if volume.label_table is not None:
            volume.label_table.write(label_table_sidecar(path))
    else:
        raise InputError(path, f"cannot write format '{fmt}'; writable: {', '.join(WRITE_SUFFIXES)}, "
                               f"format='png' (image stack) or format='dicom' (series)")
    return path


__all__ = ["read_volume", "write_volume", "label_table_sidecar", "READ_SUFFIXES", "WRITE_SUFFIXES"]
