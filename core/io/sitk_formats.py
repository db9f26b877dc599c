"""NIfTI, MetaImage, NRRD and DICOM series through SimpleITK, with the checks SimpleITK skips.

SimpleITK reads a truncated NIfTI (plain or gzipped) without complaint and returns garbage,
so the byte count is checked here before reading; the header alone is read first so that an
oversized volume is refused before it is allocated. Its NIfTI writer is as quiet about a full disk
(it prints to the C stderr and returns success), so a written NIfTI is read back the same way
before it is renamed into place.
"""
from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import sys
import tempfile
import zlib
from pathlib import Path
from typing import Iterator

import numpy as np
import SimpleITK as sitk

from core.atomic import atomic_directory, atomic_path, reporting_write_errors, unwritable
from core.errors import InputError
from core.io.checks import check_array, check_voxel_budget, non_finite
from core.volume import Volume

SITK_SUFFIXES = (".nii", ".nii.gz", ".mha", ".mhd", ".nrrd", ".nhdr", ".dcm")


def _library_message(exc: Exception) -> str:
    """The last meaningful line of an ITK exception, without the C++ source path noise."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = lines[-1] if lines else type(exc).__name__
    if "ERROR:" in text:
        text = text.split("ERROR:", 1)[1].strip()
    return text[:300]


_NIFTI_FLOATS = {16: "f4", 64: "f8"}  # NIfTI datatype codes of float32 / float64


def _scan_nifti(path: Path, reader: sitk.ImageFileReader, finite: bool = True) -> None:
    """Check a NIfTI's voxel payload: its length and, for float data (``finite``), that it is finite.

    ITK neither notices a truncated NIfTI nor keeps NaN (it reads them as numbers), so the
    payload is streamed once here; for ``.nii.gz`` this also catches a corrupt gzip stream.
    """
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    need = (int(np.prod(reader.GetSize(), dtype=np.float64)) * reader.GetNumberOfComponents()
            * _component_bytes(reader.GetPixelID()))
    try:
        with opener(path, "rb") as fh:
            head = fh.read(540)
            endian = "<" if int.from_bytes(head[:4], "little") in (348, 540) else ">"
            version2 = int.from_bytes(head[:4], "little" if endian == "<" else "big") == 540
            if version2:
                datatype = int(np.frombuffer(head[12:14], f"{endian}i2")[0])
                offset = int(np.frombuffer(head[168:176], f"{endian}i8")[0])
                dims = np.frombuffer(head[16:80], f"{endian}i8")
            else:
                datatype = int(np.frombuffer(head[70:72], f"{endian}i2")[0])
                offset = int(np.frombuffer(head[108:112], f"{endian}f4")[0])
                dims = np.frombuffer(head[40:56], f"{endian}i2")
            sizes = dims[1:1 + min(max(int(dims[0]), 1), 7)].tolist()
            if min(sizes) < 1:          # ITK reads a zero as one and would call the file truncated
                raise InputError(path, f"is empty: its header gives a zero-sized dimension (size {sizes})")
            fh.seek(max(offset, 348))
            dtype = np.dtype(endian + _NIFTI_FLOATS[datatype]) if finite and datatype in _NIFTI_FLOATS else None
            have, carry, bad = 0, b"", []
            while chunk := fh.read(1 << 22):
                have += len(chunk)
                if dtype is not None:
                    data = carry + chunk
                    usable = len(data) - len(data) % dtype.itemsize
                    values = np.frombuffer(data[:usable], dtype)
                    carry = data[usable:]
                    if not np.isfinite(values).all():
                        bad.append(values[~np.isfinite(values)])
    except (EOFError, OSError, zlib.error) as exc:
        raise InputError(path, f"is a corrupt or truncated file ({exc})") from None
    if bad:
        raise InputError(path, f"contains {non_finite(np.concatenate(bad))} voxel values "
                               f"(NaN/Inf are not valid intensities)")
    if have < need:
        raise InputError(path, f"is truncated: the header needs {need:,} bytes of voxel data, the file holds {have:,}")


def _component_bytes(pixel_id: int) -> int:
    probe = sitk.Image([1, 1], pixel_id)
    return sitk.GetArrayViewFromImage(probe).dtype.itemsize


def read_header(path: Path, limit: int | None) -> sitk.ImageFileReader:
    """Read only the header; refuse missing, unreadable, non-3-D or oversized images."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise InputError(path, f"is not a readable image ({_library_message(exc)})") from None
    size = reader.GetSize()
    if len(size) == 2:
        raise InputError(path, f"is a 2-D image ({size[0]} × {size[1]}); a 3-D volume is needed")
    if len(size) > 3 and any(s > 1 for s in size[3:]):
        raise InputError(path, f"is a {len(size)}-D image (size {size}); a 3-D volume is needed "
                               f"(4-D series such as fMRI or DWI are not supported: pick one volume)")
    check_voxel_budget(str(path), tuple(size) + (reader.GetNumberOfComponents(),), limit)
    return reader


def from_sitk(image: sitk.Image, source: str = "image") -> Volume:
    """A `Volume` with the image's pixels and physical frame (3-D part of a 3-/4-D image)."""
    if image.GetDimension() == 4:
        image = image[:, :, :, 0]
    array = sitk.GetArrayFromImage(image)
    check_array(source, array, None)
    return Volume(array, spacing=image.GetSpacing(), origin=image.GetOrigin(),
                  direction=np.asarray(image.GetDirection()).reshape(3, 3))


def to_sitk(volume: Volume) -> sitk.Image:
    """A SimpleITK image carrying the volume's pixels and physical frame."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(volume.array), isVector=volume.is_rgb)
    image.SetSpacing(tuple(float(s) for s in volume.spacing))
    image.SetOrigin(tuple(float(o) for o in volume.origin))
    image.SetDirection(tuple(float(d) for d in volume.direction.reshape(-1)))
    return image


def read_file(path: Path, limit: int | None) -> Volume:
    """Read one NIfTI / MetaImage / NRRD / single DICOM file."""
    reader = read_header(path, limit)
    if path.name.lower().endswith((".nii", ".nii.gz")):
        _scan_nifti(path, reader)
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        raise InputError(path, f"could not be read, it may be truncated or corrupt ({_library_message(exc)})") from None
    return from_sitk(image, str(path))


def dicom_series_files(folder: Path) -> list[str]:
    """File names of the largest DICOM series in ``folder`` (empty when it holds none)."""
    quiet = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)     # "No Series were found" is ITK's two-line warning
    try:
        ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(quiet)
    best: list[str] = []
    for sid in ids:
        files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), sid)
        if len(files) > len(best):
            best = list(files)
    return best


def read_dicom_series(folder: Path, limit: int | None) -> Volume:
    """Read the largest DICOM series of a folder as one volume (slices ordered by position)."""
    files = dicom_series_files(folder)
    if not files:
        raise InputError(folder, "holds no DICOM series")
    first = read_header(Path(files[0]), None)
    sx, sy = first.GetSize()[:2]
    check_voxel_budget(str(folder), (sx, sy, len(files), first.GetNumberOfComponents()), limit)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        raise InputError(folder, f"DICOM series could not be read ({_library_message(exc)})") from None
    return from_sitk(image, str(folder))


@contextlib.contextmanager
def _library_stderr() -> Iterator[list[str]]:
    """Collect what C libraries print on file descriptor 2 meanwhile (NIfTI's writer reports a failed
    write only there); the lines are handed to the caller, who passes them on when they matter."""
    sys.stderr.flush()
    lines: list[str] = []
    with tempfile.TemporaryFile() as sink:
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines.extend(ln.strip() for ln in sink.read().decode("utf-8", "replace").splitlines() if ln.strip())


def _write_image(image: sitk.Image, tmp: Path, target: Path, compress: bool) -> None:
    """``sitk.WriteImage`` to ``tmp`` that fails loudly: a library error, or a NIfTI that does not
    read back whole, becomes `core.atomic.unwritable` for ``target``."""
    with reporting_write_errors(target), _library_stderr() as said:
        try:
            sitk.WriteImage(image, str(tmp), useCompression=compress)
        except RuntimeError as exc:
            raise unwritable(target, _library_message(exc)) from None
    if tmp.name.lower().endswith((".nii", ".nii.gz")):
        try:
            _scan_nifti(tmp, read_header(tmp, None), finite=False)
        except InputError as exc:
            raise unwritable(target, said[-1].removeprefix("** ERROR: ") if said else exc.problem) from None
    if said:
        print("\n".join(said), file=sys.stderr)


def write_file(volume: Volume, path: Path, compress: bool = True) -> None:
    """Write NIfTI / MetaImage / NRRD atomically (MetaImage .mhd: header and .raw both atomically)."""
    image = to_sitk(volume)
    name = path.name.lower()
    if name.endswith(".mhd"):
        with reporting_write_errors(path):
            tmpdir = Path(tempfile.mkdtemp(prefix=".mricolor-", dir=path.parent))
        try:
            _write_image(image, tmpdir / path.name, path, compress)
            for produced in sorted(tmpdir.iterdir(), key=lambda p: p.suffix == ".mhd"):
                os.replace(produced, path.parent / produced.name)
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)
        return
    with atomic_path(path) as tmp:
        _write_image(image, tmp, path, compress and not name.endswith(".nii"))


def write_dicom_series(volume: Volume, folder: Path) -> None:
    """Write a scalar volume as a DICOM series (one file per slice, int16), keeping the frame.

    Written through `core.atomic.atomic_directory`, so a reader never sees half a series.
    """
    if volume.is_rgb:
        raise InputError(folder, "DICOM series export supports scalar volumes only")
    arr = volume.array
    if np.issubdtype(arr.dtype, np.floating) or arr.dtype.itemsize > 2:
        if arr.min() < -32768 or arr.max() > 32767 or not np.array_equal(arr, np.round(arr)):
            raise InputError(folder, "DICOM export needs integer intensities within int16 "
                                     "(rescale the volume first)")
    image = to_sitk(volume.with_array(arr.astype(np.int16)))
    with atomic_directory(folder) as tmpdir:
        writer = sitk.ImageFileWriter()
        writer.KeepOriginalImageUIDOn()
        direction = image.GetDirection()
        series_uid = "1.2.826.0.1.3680043.2.1125." + str(abs(hash((Path(folder).name, arr.shape))) % 10**12)
        for k in range(image.GetDepth()):
            sl = image[:, :, k]
            pos = image.TransformIndexToPhysicalPoint((0, 0, k))
            tags = {
                "0008|0060": "MR",
                "0020|000e": series_uid,
                "0020|0037": "\\".join(f"{v:.9f}" for v in (direction[0], direction[3], direction[6],
                                                              direction[1], direction[4], direction[7])),
                "0020|0032": "\\".join(f"{v:.6f}" for v in pos),
                "0020|0013": str(k + 1),
                "0018|0050": f"{image.GetSpacing()[2]:.6f}",
                "0028|0030": f"{image.GetSpacing()[1]:.6f}\\{image.GetSpacing()[0]:.6f}",
            }
            for tag, value in tags.items():
                sl.SetMetaData(tag, value)
            writer.SetFileName(str(tmpdir / f"slice{k:04d}.dcm"))
            try:
                writer.Execute(sl)
            except RuntimeError as exc:
                raise unwritable(folder, _library_message(exc)) from None
