"""Plane geometry and batched slicing, checked against scipy and SimpleITK resampling."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from scipy.ndimage import distance_transform_edt, map_coordinates

from core.io.sitk_formats import from_sitk, to_sitk
from core.labels import Label, LabelTable
from core.planes import Plane, random_planes, sample
from core.volume import Volume

TILTED = np.array([[0.98, -0.17, 0.0], [0.17, 0.98, 0.0], [0.0, 0.0, 1.0]])
TILTED = np.linalg.qr(TILTED)[0] * np.sign(np.diag(np.linalg.qr(TILTED)[1]))


def _reference(volume: Volume, plane: Plane, order: int = 1) -> np.ndarray:
    """The same plane with scipy.ndimage.map_coordinates on the (z, y, x) array."""
    idx = volume.physical_to_index(plane.points())
    coords = [idx[..., 2], idx[..., 1], idx[..., 0]]
    if volume.is_rgb:
        return np.stack([map_coordinates(volume.array[..., c].astype(np.float64) / 255, coords, order=order)
                         for c in range(3)])
    return map_coordinates(volume.array.astype(np.float64), coords, order=order)


@pytest.fixture
def volume(rng) -> Volume:
    return Volume(rng.random((40, 44, 48)).astype(np.float32), spacing=(1.1, 0.9, 1.6),
                  origin=(-20.0, 15.0, 4.0), direction=TILTED)


@pytest.mark.parametrize("orientation", ["axial", "coronal", "sagittal"])
def test_oblique_plane_matches_map_coordinates(volume, orientation):
    plane = Plane.oblique(orientation, volume.center, tilt_deg=17, rotate_deg=-23, offset_mm=2.5,
                          pixel_mm=0.6, width=40, height=36)
    got = sample(volume, plane)
    assert got.shape == (1, 1, 36, 40) and got.dtype == torch.float32
    np.testing.assert_allclose(got[0, 0].numpy(), _reference(volume, plane), atol=1e-4)


def test_rgb_plane_matches_map_coordinates(rng):
    rgb = Volume(rng.integers(0, 256, (20, 22, 24, 3), dtype=np.uint8), spacing=(1.0, 1.5, 2.0))
    plane = Plane.from_normal(rgb.center, (0.3, -0.5, 0.8), in_plane_deg=40, pixel_mm=0.8, width=24, height=20)
    got = sample(rgb, [plane])
    assert got.shape == (1, 3, 20, 24)
    np.testing.assert_allclose(got[0].numpy(), _reference(rgb, plane), atol=1e-4)


def test_batch_equals_one_by_one(volume):
    planes = [Plane.oblique("axial", volume.center, tilt_deg=t, offset_mm=o, pixel_mm=0.7, width=32, height=32)
              for t, o in [(0, 0), (10, -3), (-25, 4), (40, 1)]]
    batch = sample(volume, planes)
    singles = torch.cat([sample(volume, p) for p in planes])
    torch.testing.assert_close(batch, singles)


@pytest.mark.parametrize("threads", [1, 2, 3, 4])
@pytest.mark.parametrize("height", [36, 37, 1])
def test_planes_cut_in_row_bands_for_threads_match_map_coordinates(rng, volume, threads, height):
    """A plane alone (or a few) is cut in row bands, one per thread; the bands must reassemble
    into the same image whatever the thread count and however the height divides."""
    rgb = Volume(rng.integers(0, 256, (20, 22, 24, 3), dtype=np.uint8), spacing=(1.0, 1.5, 2.0))
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for vol in (volume, rgb):
            planes = [Plane.oblique(o, vol.center, tilt_deg=21, rotate_deg=-12, pixel_mm=0.5, width=30, height=height)
                      for o in ("sagittal", "axial")]
            for batch in (planes[:1], planes):
                got = sample(vol, batch)
                assert got.shape == (len(batch), vol.channels, height, 30)
                for image, plane in zip(got, batch):
                    want = _reference(vol, plane)
                    np.testing.assert_allclose(image.numpy().reshape(want.shape), want, atol=1e-4)
    finally:
        torch.set_num_threads(before)


def test_batches_longer_than_one_call_equal_one_by_one(volume):
    planes = [Plane.oblique("coronal", volume.center, tilt_deg=2 * i - 20, offset_mm=i / 4 - 2, pixel_mm=0.8,
                            width=20, height=18) for i in range(37)]
    torch.testing.assert_close(sample(volume, planes), torch.cat([sample(volume, p) for p in planes]))


def test_size_resamples_same_field_of_view(volume):
    plane = Plane.preset("coronal", volume.center, pixel_mm=0.5, width=64, height=64)
    small = sample(volume, plane, size=16)
    assert small.shape == (1, 1, 16, 16)
    np.testing.assert_allclose(small[0, 0].numpy(), _reference(volume, plane.resized(16)), atol=1e-4)


def test_labels_use_nearest_neighbour_and_line_up_with_an_image_on_another_grid(rng):
    """The same physical plane cut from labels and from an image resampled (by SimpleITK) onto a
    coarser, shifted grid shows the same tissue at each pixel away from the edges."""
    labels = np.zeros((48, 48, 48), np.int16)
    zz, yy, xx = np.mgrid[0:48, 0:48, 0:48]
    labels[(zz - 24) ** 2 + (yy - 20) ** 2 + (xx - 26) ** 2 < 15 ** 2] = 1
    labels[(zz - 20) ** 2 + (yy - 28) ** 2 + (xx - 22) ** 2 < 7 ** 2] = 2
    table = LabelTable([Label(0, "bg", "", (0, 0, 0)), Label(1, "a", "", (255, 0, 0)), Label(2, "b", "", (0, 255, 0))])
    seg = Volume(labels, spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0), label_table=table)
    intensity = np.array([0.0, 0.4, 0.9], np.float32)[labels]
    ref = sitk.Image(20, 20, 16, sitk.sitkFloat32)
    ref.SetSpacing((2.5, 2.5, 3.0))
    ref.SetOrigin((0.7, -0.4, 1.3))
    mri = from_sitk(sitk.Resample(to_sitk(seg.with_array(intensity, None)), ref, sitk.Transform(), sitk.sitkNearestNeighbor))
    plane = Plane.oblique("sagittal", (24.0, 22.0, 23.0), tilt_deg=12, rotate_deg=8, pixel_mm=0.75, width=40, height=40)
    lab = sample(seg, plane)
    assert lab.dtype == torch.int64 and lab.shape == (1, 40, 40)
    assert set(np.unique(lab.numpy())) <= {0, 1, 2}  # nearest neighbour: no blended ids
    # compare only where every tissue boundary is > 5 mm away (the MRI grid is 2.5–3 mm)
    edges = np.zeros(labels.shape, bool)
    for axis in range(3):
        diff = np.diff(labels, axis=axis) != 0
        edges[tuple(slice(0, -1) if a == axis else slice(None) for a in range(3))] |= diff
    depth = seg.with_array(distance_transform_edt(~edges).astype(np.float32), None)
    inner = sample(depth, plane)[0, 0].numpy() > 5.0
    expected = np.array([0.0, 0.4, 0.9])[lab[0].numpy()]
    assert inner.sum() > 200
    assert np.abs(sample(mri, plane)[0, 0].numpy() - expected)[inner].max() < 1e-5
    shifted = from_sitk(to_sitk(mri))
    shifted.origin = shifted.origin + (0.0, 12.0, 0.0)  # a 12 mm misregistration must show
    assert np.abs(sample(shifted, plane)[0, 0].numpy() - expected)[inner].max() > 0.3


def test_orientation_letters_of_presets():
    axial = Plane.preset("axial", (0, 0, 0)).orientation_letters()
    assert axial == {"right": "L", "left": "R", "bottom": "P", "top": "A"}
    coronal = Plane.preset("coronal", (0, 0, 0)).orientation_letters()
    assert (coronal["top"], coronal["bottom"], coronal["left"]) == ("S", "I", "R")
    sagittal = Plane.preset("sagittal", (0, 0, 0)).orientation_letters()
    assert (sagittal["left"], sagittal["right"], sagittal["top"]) == ("A", "P", "S")


def test_plane_geometry_round_trip():
    plane = Plane.oblique("coronal", (5.0, -3.0, 12.0), tilt_deg=30, rotate_deg=15, offset_mm=7)
    assert np.isclose(np.linalg.norm(plane.normal), 1) and abs(plane.u @ plane.v) < 1e-12
    point = plane.pixel_to_physical(100.5, 30.25)
    row, col, dist = plane.physical_to_pixel(point)
    assert np.allclose([row, col, dist], [100.5, 30.25, 0.0])
    moved = plane.translated(4.0)
    assert np.isclose(moved.physical_to_pixel(point)[2], -4.0)
    assert np.allclose(plane.points()[100, 30], plane.pixel_to_physical(100, 30))


def test_random_planes_are_seeded_and_mostly_foreground(rng):
    body = np.zeros((60, 60, 60), np.float32)
    zz, yy, xx = np.mgrid[0:60, 0:60, 0:60]
    body[((zz - 30) / 25) ** 2 + ((yy - 30) / 18) ** 2 + ((xx - 30) / 22) ** 2 < 1] = 1.0
    vol = Volume(body, spacing=(1.0, 1.0, 1.0))
    a = random_planes(vol, 12, seed=3, pixel_mm=0.6, width=48, height=48, min_foreground=0.6)
    b = random_planes(vol, 12, seed=3, pixel_mm=0.6, width=48, height=48, min_foreground=0.6)
    assert all(np.allclose(p.center, q.center) and np.allclose(p.u, q.u) for p, q in zip(a, b))
    normals = np.array([p.normal for p in a])
    assert np.abs(normals).max(axis=0).min() > 0.3  # orientations really vary
    fractions = sample(vol, a)[:, 0].gt(0.5).float().mean(dim=(1, 2))
    assert fractions.min() >= 0.5  # the probe is coarse, the true fraction is close to 0.6


def test_random_planes_give_up_with_a_clear_message():
    tiny = Volume(np.pad(np.ones((2, 2, 2), np.float32), 20), spacing=(1, 1, 1))
    with pytest.raises(ValueError, match="foreground"):
        random_planes(tiny, 3, seed=0, min_foreground=0.9, max_tries=50)


def test_mixed_sizes_need_size_argument(volume):
    a = Plane.preset("axial", volume.center, width=16, height=16)
    b = Plane.preset("axial", volume.center, width=20, height=20)
    with pytest.raises(ValueError, match="same pixel counts"):
        sample(volume, [a, b])
    assert sample(volume, [a, b], size=(12, 10)).shape == (2, 1, 12, 10)
