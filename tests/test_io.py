"""Round trips through every format, and clear errors for every kind of bad input."""
from __future__ import annotations

import gzip
import json
import struct

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from core.errors import InputError
from core.io import read_volume, write_volume
from core.labels import Label, LabelTable
from core.volume import Volume

ROTATION = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
TABLE = LabelTable([Label(0, "background", "none", (0, 0, 0)), Label(1, "liver", "digestive", (115, 45, 35)),
                    Label(2, "fat", "integument", (232, 205, 140)), Label(3, "bone", "skeletal", (225, 215, 190))])


def _frame(volume: Volume) -> tuple:
    return volume.spacing, volume.origin, volume.direction


def _assert_same(a: Volume, b: Volume) -> None:
    assert a.array.shape == b.array.shape
    np.testing.assert_array_equal(a.array, b.array)
    for x, y in zip(_frame(a), _frame(b)):
        np.testing.assert_allclose(x, y, atol=1e-5)


@pytest.fixture
def mri(rng) -> Volume:
    return Volume((rng.random((6, 7, 9)) * 1000).astype(np.float32), spacing=(0.8, 1.1, 2.5),
                  origin=(-12.5, 30.0, 7.25), direction=ROTATION)


@pytest.fixture
def rgb(rng) -> Volume:
    return Volume(rng.integers(0, 256, (5, 8, 6, 3), dtype=np.uint8), spacing=(0.33, 0.33, 1.0),
                  origin=(1.0, 2.0, 3.0))


@pytest.fixture
def labels(rng) -> Volume:
    return Volume(rng.integers(0, 4, (5, 6, 7)).astype(np.int16), spacing=(2.0, 2.0, 3.0),
                  origin=(0.5, -4.0, 9.0), label_table=TABLE)


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz", ".mha", ".mhd", ".nrrd"])
def test_scalar_round_trip_keeps_values_and_frame(tmp_path, mri, suffix):
    path = write_volume(mri, tmp_path / f"mri{suffix}")
    _assert_same(read_volume(path, expect="scalar"), mri)


@pytest.mark.parametrize("suffix", [".nii.gz", ".mha", ".nrrd"])
def test_rgb_round_trip(tmp_path, rgb, suffix):
    path = write_volume(rgb, tmp_path / f"cryo{suffix}")
    back = read_volume(path, expect="rgb")
    assert back.is_rgb and back.array.dtype == np.uint8
    _assert_same(back, rgb)


@pytest.mark.parametrize("suffix", [".nii.gz", ".mha", ".nrrd"])
def test_label_round_trip_keeps_the_table(tmp_path, labels, suffix):
    path = write_volume(labels, tmp_path / f"seg{suffix}")
    assert (tmp_path / "seg.labels.csv").is_file()
    back = read_volume(path, expect="labels")
    assert back.label_table == TABLE and back.is_labels
    _assert_same(back, labels)


def test_dicom_series_round_trip(tmp_path, mri):
    ints = mri.with_array(np.round(mri.array).astype(np.int16))
    write_volume(ints, tmp_path / "series", format="dicom")
    assert len(list((tmp_path / "series").glob("*.dcm"))) == ints.array.shape[0]
    back = read_volume(tmp_path / "series", expect="scalar")
    np.testing.assert_array_equal(back.array.astype(np.int16), ints.array)
    for x, y in zip(_frame(back), _frame(ints)):
        np.testing.assert_allclose(x, y, atol=1e-4)


def test_png_stack_round_trip_with_sidecar(tmp_path, rgb):
    write_volume(rgb, tmp_path / "stack", format="png")
    assert json.loads((tmp_path / "stack" / "volume.json").read_text(encoding="utf-8"))["spacing"] == rgb.spacing.tolist()
    _assert_same(read_volume(tmp_path / "stack", expect="rgb"), rgb)


def test_image_stack_sorted_naturally_and_downsampled(tmp_path, rng):
    planes = rng.integers(0, 256, (12, 8, 8, 3), dtype=np.uint8)
    folder = tmp_path / "photos"
    folder.mkdir()
    for k, plane in enumerate(planes):  # slice2 must come before slice10
        Image.fromarray(plane).save(folder / f"slice{k}.bmp")
    (folder / "volume.json").write_text(json.dumps({"spacing": [0.5, 0.5, 1.0]}))
    full = read_volume(folder)
    np.testing.assert_array_equal(full.array, planes)
    small = read_volume(folder, downsample=[2, 2, 3])
    expected = planes.astype(np.float32).reshape(4, 3, 4, 2, 4, 2, 3).mean(axis=(1, 3, 5))
    np.testing.assert_array_equal(small.array, np.rint(expected).astype(np.uint8))
    np.testing.assert_allclose(small.spacing, [1.0, 1.0, 3.0])


@pytest.mark.parametrize("layout", ["planar", "interleaved"])
def test_visible_human_raw_slices(tmp_path, layout):
    # smooth images so that layout detection has something to go on, as real photographs do
    yy, xx = np.mgrid[0:24, 0:40]
    slices = np.stack([np.stack([(xx * 6 + k) % 256, (yy * 9) % 256, (xx + yy + 40 * k) % 256], -1)
                       for k in range(3)]).astype(np.uint8)
    folder = tmp_path / "vhp"
    folder.mkdir()
    for k, s in enumerate(slices):
        data = s.transpose(2, 0, 1) if layout == "planar" else s
        np.ascontiguousarray(data).tofile(folder / f"a_vm{1001 + k}.raw")
    explicit = read_volume(folder, shape=[40, 24], layout=layout, spacing=[0.33, 0.33, 1.0])
    np.testing.assert_array_equal(explicit.array, slices)
    detected = read_volume(folder, shape=[40, 24])
    np.testing.assert_array_equal(detected.array, slices)


def test_raw_volume_file_round_trip(tmp_path, rgb):
    path = write_volume(rgb, tmp_path / "cryo.raw")
    _assert_same(read_volume(path), rgb)  # shape, layout and frame come from the sidecar


def test_colour_coded_segmentation_stack(tmp_path, labels):
    lut = TABLE.color_lut()
    folder = tmp_path / "seg"
    folder.mkdir()
    coloured = lut[labels.array]
    coloured[0, 0, 0] = (lut[2].astype(int) + [3, -2, 1]).astype(np.uint8)  # anti-aliasing near "fat"
    for k, plane in enumerate(coloured):
        Image.fromarray(plane).save(folder / f"{k:03d}.png")
    TABLE.write(tmp_path / "colours.csv")
    back = read_volume(folder, label_table=tmp_path / "colours.csv")
    expected = labels.array.copy()
    expected[0, 0, 0] = 2
    np.testing.assert_array_equal(back.array, expected)
    assert back.label_table == TABLE


def test_npy_with_sidecar(tmp_path, mri):
    np.save(tmp_path / "vol.npy", mri.array)
    (tmp_path / "vol.npy.json").write_text(json.dumps({"spacing": mri.spacing.tolist(),
                                                       "origin": mri.origin.tolist()}))
    back = read_volume(tmp_path / "vol.npy")
    np.testing.assert_array_equal(back.array, mri.array)
    np.testing.assert_allclose(back.spacing, mri.spacing)


def test_failed_write_leaves_nothing_behind(tmp_path, mri, monkeypatch):
    target = tmp_path / "mri.nii.gz"
    write_volume(mri, target)
    before = target.read_bytes()

    def broken(image, path, *args, **kwargs):
        open(path, "wb").write(b"half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(sitk, "WriteImage", broken)
    with pytest.raises(InputError, match=r"mri\.nii\.gz: could not be written \(disk full\)"):
        write_volume(mri.with_array(mri.array * 2), target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mri.nii.gz"]


@pytest.mark.parametrize("name", ["mri.nii", "mri.nii.gz"])
def test_a_nifti_written_only_in_part_without_an_error_is_refused(tmp_path, mri, monkeypatch, name):
    """SimpleITK's NIfTI writer reports a full disk on the C stderr and returns success."""
    real = sitk.WriteImage

    def quietly_truncated(image, path, *args, **kwargs):
        real(image, path, *args, **kwargs)
        data = open(path, "rb").read()
        open(path, "wb").write(data[: len(data) // 2])

    monkeypatch.setattr(sitk, "WriteImage", quietly_truncated)
    with pytest.raises(InputError, match=f"{name}: could not be written"):
        write_volume(mri, tmp_path / name)
    assert list(tmp_path.iterdir()) == []


# --- bad input -----------------------------------------------------------------------------------

def _error(path, **kwargs) -> str:
    with pytest.raises(InputError) as info:
        read_volume(path, **kwargs)
    assert str(path) in str(info.value)
    return str(info.value)


def test_missing_file(tmp_path):
    assert "not found" in _error(tmp_path / "nope.nii.gz")


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz", ".mha", ".nrrd"])
def test_truncated_file(tmp_path, mri, suffix):
    path = write_volume(mri, tmp_path / f"mri{suffix}")
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])
    message = _error(path)
    assert "truncated" in message or "corrupt" in message


def test_truncated_raw(tmp_path):
    (tmp_path / "a.raw").write_bytes(bytes(100))
    assert "truncated" in _error(tmp_path / "a.raw", shape=[10, 10])


def test_raw_without_shape(tmp_path):
    (tmp_path / "a.raw").write_bytes(bytes(300))
    assert "shape" in _error(tmp_path / "a.raw")


@pytest.mark.parametrize("suffix", [".nii.gz", ".mha", ".nrrd", ".npy"])
def test_random_bytes(tmp_path, rng, suffix):
    path = tmp_path / f"noise{suffix}"
    path.write_bytes(rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
    assert "not a readable" in _error(path) or "corrupt" in _error(path)


def test_two_dimensional_image(tmp_path, rng):
    path = tmp_path / "slice.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(rng.random((20, 30)).astype(np.float32)), str(path))
    assert "2-D" in _error(path)
    Image.fromarray(rng.integers(0, 255, (10, 10, 3), dtype=np.uint8)).save(tmp_path / "photo.png")
    assert "2-D" in _error(tmp_path / "photo.png")


def test_four_dimensional_volume(tmp_path, rng):
    path = tmp_path / "fmri.nii.gz"
    frames = [sitk.GetImageFromArray(rng.random((4, 5, 6)).astype(np.float32)) for _ in range(3)]
    sitk.WriteImage(sitk.JoinSeries(frames), str(path))
    assert "4-D" in _error(path)


def test_wrong_channel_count(tmp_path, mri, rgb):
    assert "RGB" in _error(write_volume(mri, tmp_path / "mri.mha"), expect="rgb")
    assert "single-channel" in _error(write_volume(rgb, tmp_path / "cryo.mha"), expect="scalar")
    two = sitk.GetImageFromArray(np.zeros((3, 4, 5, 2), np.float32), isVector=True)
    sitk.WriteImage(two, str(tmp_path / "two.mha"))
    assert "2 channels" in _error(tmp_path / "two.mha")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_voxels(tmp_path, mri, bad):
    arr = mri.array.copy()
    arr[2, 3, 4] = bad
    path = write_volume(mri.with_array(arr), tmp_path / "bad.nii.gz")
    assert ("NaN" if np.isnan(bad) else "infinite") in _error(path)


def test_empty_dicom_folder(tmp_path, capfd):
    (tmp_path / "empty").mkdir()
    assert "empty folder" in _error(tmp_path / "empty")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("no images here")
    (tmp_path / "junk" / "a.dcm").write_bytes(b"")
    assert "neither a DICOM series" in _error(tmp_path / "junk")
    assert capfd.readouterr().err == ""                     # no ITK warning before the one-line error


@pytest.mark.parametrize("suffix", [".npy", ".nii.gz"])
def test_nan_and_inf_are_counted_apart(tmp_path, mri, suffix):
    arr = mri.array.astype(np.float32)
    arr[0, 0, 0], arr[1, 1, 1], arr[1, 1, 2] = np.nan, np.inf, -np.inf
    path = tmp_path / f"bad{suffix}"
    if suffix == ".npy":
        np.save(path, arr)
    else:
        write_volume(mri.with_array(arr), path)
    assert "contains 1 NaN and 2 infinite voxel values" in _error(path)


def test_a_zero_sized_dimension_is_called_empty_not_truncated(tmp_path):
    path = tmp_path / "flat.nii"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((3, 4, 5), np.float32)), str(path))
    header = bytearray(path.read_bytes()[:352])
    struct.pack_into("<h", header, 44, 0)                    # dim[2] = 0: ITK would read it as 1
    path.write_bytes(bytes(header))
    message = _error(path)
    assert "zero-sized dimension" in message and "truncated" not in message


def test_oversized_header_refused_before_allocation(tmp_path):
    # a NIfTI-1 header claiming 30000³ float32 voxels, followed by no data at all
    hdr = bytearray(352)
    struct.pack_into("<i", hdr, 0, 348)
    struct.pack_into("<8h", hdr, 40, 3, 30000, 30000, 30000, 1, 1, 1, 1)
    struct.pack_into("<hh", hdr, 70, 16, 32)  # datatype float32, bitpix
    struct.pack_into("<8f", hdr, 76, 1, 1, 1, 1, 1, 1, 1, 1)
    struct.pack_into("<f", hdr, 108, 352.0)
    hdr[344:348] = b"n+1\0"
    path = tmp_path / "huge.nii.gz"
    path.write_bytes(gzip.compress(bytes(hdr)))
    assert "more than the limit" in _error(path)


def test_voxel_limit_is_configurable(tmp_path, mri, monkeypatch):
    path = write_volume(mri, tmp_path / "mri.nrrd")
    assert "limit of 100" in _error(path, max_voxels=100)
    monkeypatch.setenv("MRICOLOR_MAX_VOXELS", "50")
    assert "limit of 50" in _error(path)


def test_unknown_label_ids_are_refused(tmp_path, labels):
    arr = labels.array.copy()
    arr[0, 0, 0] = 9
    path = write_volume(labels.with_array(arr), tmp_path / "seg.nrrd")
    (tmp_path / "seg.labels.csv").unlink()
    assert "9" in _error(path, label_table=TABLE)


def test_bad_label_table(tmp_path):
    (tmp_path / "t.csv").write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="columns"):
        LabelTable.read(tmp_path / "t.csv")
