"""Viewer logic without a window: plane state, framing, loading, readout, volume export, settings."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from core.errors import InputError
from core.io import write_volume
from core.labels import Label, LabelTable
from core.normalize import body_mask, body_region, intensity_range
from core.planes import Plane
from core.volume import Volume
from viewer import study
from viewer.framing import frame_for, framing
from viewer.export import Cancelled, colorize_volume
from viewer.state import ViewerState
from helpers import fake_colorizer
from core.inference import Colorizer

TABLE = LabelTable([Label(0, "background", "", (0, 0, 0)), Label(1, "fat", "adipose", (230, 200, 140)),
                    Label(2, "liver", "digestive", (115, 45, 35))])


def _volumes() -> tuple[Volume, Volume]:
    """An ellipsoid body (fat) with a liver ball, 2 × 2 × 3 mm voxels, off-centre origin."""
    z, y, x = np.mgrid[0:30, 0:50, 0:40].astype(np.float32)
    labels = np.zeros(z.shape, np.int16)
    body = ((x - 20) / 17) ** 2 + ((y - 25) / 20) ** 2 + ((z - 15) / 13) ** 2 < 1
    labels[body] = 1
    labels[body & (((x - 24) / 6) ** 2 + ((y - 22) / 6) ** 2 + ((z - 15) / 5) ** 2 < 1)] = 2
    mri = np.choose(labels, [0.0, 0.9, 0.4]).astype(np.float32)
    frame = dict(spacing=(2.0, 2.0, 3.0), origin=(-40.0, -30.0, 100.0))
    return Volume(mri, **frame), Volume(labels, label_table=TABLE, **frame)


class _Recorder:
    def __init__(self):
        self.calls = []

    def __call__(self, *args):
        self.calls.append(args)


@pytest.fixture
def state() -> ViewerState:
    mri, _ = _volumes()
    return ViewerState(frame_for(mri, 256))


def test_frame_centres_on_the_body_and_frames_it():
    mri, labels = _volumes()
    frame = frame_for(mri, 256)
    body = mri.index_to_physical(np.argwhere(labels.array > 0)[:, ::-1].astype(float))
    assert np.allclose(frame.center, (body.min(0) + body.max(0)) / 2, atol=3.0)
    for orientation in ("axial", "coronal", "sagittal"):
        plane = Plane.preset(orientation, frame.center, pixel_mm=frame.pixel_mm[orientation])
        rows, cols = np.array([plane.physical_to_pixel(p)[:2] for p in body[::7]]).T
        assert rows.min() >= 0 and cols.min() >= 0 and rows.max() <= 255 and cols.max() <= 255
        assert max(np.ptp(rows), np.ptp(cols)) > 0.8 * 256  # the body fills the field, not a corner


def test_scroll_moves_one_voxel_along_the_normal_and_is_clamped(state):
    seen = _Recorder()
    state.plane_changed.connect(seen)
    before = state.plane()
    state.scroll(2)
    assert np.allclose(state.plane().center - before.center, [0, 0, 6.0])  # axial: 2 × 3 mm slices
    state.scroll(10_000)
    assert state.offset_mm == pytest.approx(state.offset_limit())
    calls = len(seen.calls)
    state.scroll(1)  # already at the end: no change, no event
    assert len(seen.calls) == calls


def test_preset_switch_keeps_the_plane_through_the_current_centre(state):
    state.set_plane(offset_mm=12.0, tilt_deg=10.0)
    here = state.plane().center
    state.set_orientation("sagittal")
    plane = state.plane()
    assert (state.tilt_deg, state.rotate_deg) == (0.0, 0.0)
    assert abs(plane.physical_to_pixel(here)[2]) < 1e-6
    assert plane.orientation_letters() == {"left": "A", "right": "P", "top": "S", "bottom": "I"}


def test_move_through_puts_the_point_on_the_plane(state):
    state.set_plane(orientation="coronal", tilt_deg=20, rotate_deg=-30)
    point = state.frame.center + np.array([5.0, -7.0, 9.0])
    state.move_through(point)
    assert abs(state.plane().physical_to_pixel(point)[2]) < 1e-6


def test_window_level_and_overlay_setters(state):
    seen = _Recorder()
    state.window_changed.connect(seen)
    state.set_window(2.0, 1.0)
    state.set_window(2.0, 1.0)
    assert seen.calls == [(2.0, 1.0)] and state.levels == (0.0, 2.0)
    state.set_overlay(opacity=3.0)
    assert state.opacity == 1.0
    with pytest.raises(ValueError):
        state.set_output("grey")


def test_label_at_names_the_voxel_under_a_point():
    _, labels = _volumes()
    liver = labels.index_to_physical(np.array([24.0, 22.0, 15.0]))
    assert study.label_at(labels, liver) == 2
    assert study.label_at(labels, liver + 1000) is None


def test_load_any_decides_the_kind(tmp_path):
    mri, labels = _volumes()
    cryo = mri.with_array((TABLE.color_lut()[labels.array]).astype(np.uint8))
    write_volume(mri, tmp_path / "t1.nii.gz")
    write_volume(cryo, tmp_path / "photo_volume.nrrd")
    write_volume(labels, tmp_path / "segmentation.nii.gz")
    assert study.load_any(tmp_path / "t1.nii.gz")[0] == "mri"
    assert study.load_any(tmp_path / "photo_volume.nrrd")[0] == "cryo"
    kind, loaded = study.load_any(tmp_path / "segmentation.nii.gz")
    assert kind == "labels" and loaded.label_table.name(2) == "liver"


def test_labels_without_a_table_get_the_shipped_tissue_names(tmp_path):
    _, labels = _volumes()
    bare = Volume(labels.array, labels.spacing, labels.origin)
    write_volume(bare, tmp_path / "labels.nii.gz")
    loaded = study.load_volume("labels", tmp_path / "labels.nii.gz")
    assert loaded.label_table.name(2) == "fat"  # id 2 of resources/tissues.csv


def test_a_corrupt_file_raises_input_error_naming_it(tmp_path):
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"not a volume at all")
    with pytest.raises(InputError, match="broken.nii.gz"):
        study.load_volume("mri", bad)


def _doubler(pixel_mm: float | None = None) -> Colorizer:
    """A stand-in model: red = MRI, green = MRI / 2; its generator counts the calls on planes
    bigger than the air probe."""
    def rgb(planes: torch.Tensor) -> torch.Tensor:
        colorizer.calls += bool(planes.abs().sum() > 0)
        return torch.cat([planes, planes / 2, torch.zeros_like(planes)], dim=1)
    colorizer = fake_colorizer(rgb, pixel_mm=pixel_mm)
    colorizer.calls = 0
    return colorizer


def test_colorize_volume_keeps_the_frame_and_reports_progress():
    """The viewer's export is `mricolor colorize`'s pipeline: the same normalisation (fat, the
    brightest tissue, maps to 1) and, without resampling, the model's output voxel for voxel."""
    mri, _ = _volumes()
    progress = []
    rgb = colorize_volume(mri, _doubler(), "c_hat", progress.append)
    assert rgb.array.shape == (*mri.array.shape, 3) and rgb.array.dtype == np.uint8
    assert rgb.same_frame(mri)
    lo, hi = intensity_range(mri)
    expected = np.rint(np.clip((mri.array - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)
    body = body_region(body_mask(mri))
    assert np.abs(rgb.array[..., 0][body].astype(int) - expected[body]).max() <= 1
    assert (rgb.array[~body] == (20, 20, 25)).all()  # the palette's background outside the body
    assert progress[-1] == 1.0 and progress == sorted(progress)


def test_colorize_volume_stops_when_cancelled():
    mri, _ = _volumes()
    cancel = threading.Event()
    model = _doubler()
    with pytest.raises(Cancelled):
        colorize_volume(mri, model, "c_hat", lambda _f: cancel.set(), cancel)
    assert model.calls == 1


def test_model_range_maps_the_body_to_the_phantoms_convention():
    """The viewer frames the model's input with core.normalize, as `mricolor colorize` does."""
    mri, labels = _volumes()
    scaled = mri.with_array(mri.array * 250.0)
    lo, hi = framing(scaled, 64).value_range
    assert lo == 0.0 and hi == pytest.approx(250 * 0.9, rel=1e-3)  # fat, the brightest tissue


def test_inside_marks_the_pixels_within_the_grid():
    mri, _ = _volumes()
    from viewer.jobs import inside

    plane = Plane.oblique("coronal", mri.center + [10, 0, 5], tilt_deg=30, rotate_deg=20, pixel_mm=1.3,
                          width=96, height=80)
    index = mri.physical_to_index(plane.points())
    expected = np.all((index >= -0.5) & (index <= np.asarray(mri.size_xyz) - 0.5), axis=-1)
    got = inside(mri, plane)
    assert got.shape == (80, 96) and 0 < expected.sum() < expected.size
    assert np.mean(got == expected) > 0.999  # float32 rounding at the very edge only


def test_a_preview_colorizes_at_half_resolution_and_fills_the_plane():
    from viewer.jobs import ColorizeRequest, colorize

    mri, _ = _volumes()
    plane = Plane.preset("axial", mri.center, pixel_mm=1.0, width=64, height=48)
    mri01 = np.random.default_rng(0).random((48, 64), dtype=np.float32)
    model = _doubler()
    full = colorize(ColorizeRequest(mri01, model, "c_hat", mri, plane))
    preview = colorize(ColorizeRequest(mri01, model, "c_hat", mri, plane, preview=True))
    assert [s[2:] for s in model.generator.shapes] == [(48, 64), (24, 32)]  # the preview costs a quarter of the model's work
    assert preview.preview and preview.rgb.shape == full.rgb.shape == (48, 64, 3)
    assert abs(preview.rgb[..., 0].mean() - full.rgb[..., 0].mean()) < 2  # the same plane, coarser
    assert np.abs(preview.rgb.astype(int) - full.rgb).mean() > 1  # and really coarser


def test_the_model_sees_the_plane_at_its_training_pixel_size():
    from viewer.jobs import ColorizeRequest, colorize

    mri, _ = _volumes()
    plane = Plane.preset("axial", mri.center, pixel_mm=1.5, width=64, height=48)
    ramp = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (48, 1))
    model = _doubler(pixel_mm=3.0)
    out = colorize(ColorizeRequest(ramp, model, "c_hat", mri, plane))
    assert [s[2:] for s in model.generator.shapes] == [(24, 32)]  # 1.5 mm pixels → 3 mm for the model
    assert out.rgb.shape == (48, 64, 3)  # and back to the plane on screen
    row = out.rgb[24, 8:56, 0].astype(float)
    np.testing.assert_allclose(row, ramp[24, 8:56] * 255, atol=4)  # a ramp survives the round trip


def test_the_model_sees_the_plane_cropped_to_the_body_like_mricolor_colorize():
    """With the framing's body level the model gets the body's box (plus a margin, in multiples
    of 32 model pixels), not the whole plane; the air around it gets the colour of the air at the box's edge."""
    from core.inference.crop import CROP_STEP
    from core.planes import sample
    from viewer.jobs import ColorizeRequest, colorize, to_unit

    mri, _ = _volumes()
    framed = framing(mri, 64)
    assert framed.body_level is not None and 0 < framed.body_level < 0.5  # fat 1.0, liver 0.44, air 0
    plane = Plane.preset("axial", mri.center, pixel_mm=1.0, width=256, height=256)  # 256 mm: air around the body
    mri01 = to_unit(sample(mri, plane)[0, 0].numpy(), framed.value_range)
    model = _doubler(pixel_mm=1.0)
    cropped = colorize(ColorizeRequest(mri01, model, "c_hat", mri, plane, body_level=framed.body_level))
    whole = colorize(ColorizeRequest(mri01, _doubler(pixel_mm=1.0), "c_hat", mri, plane))
    h, w = model.generator.shapes[-1][2:]
    assert h <= 128 and w <= 128 and h % CROP_STEP == 0 and w % CROP_STEP == 0
    body = mri01 > framed.body_level
    assert cropped.rgb.shape == (256, 256, 3) and cropped.rgb.dtype == np.uint8
    assert np.abs(cropped.rgb[body].astype(int) - whole.rgb[body].astype(int)).max() <= 1  # pointwise model
    assert cropped.rgb[0, 0].tolist() == [0, 0, 0]  # the stand-in's colour for air (MRI 0)


def test_the_crosshair_stays_on_the_plane_and_the_orthogonal_planes_pass_through_it(state):
    """A crosshair move carries the current plane through the point; a plane move carries the
    crosshair along the plane's normal; the three orthogonal planes go through it, centred on the MRI."""
    assert np.allclose(state.crosshair, state.plane().center)
    moves = _Recorder()
    state.crosshair_changed.connect(moves)
    point = state.frame.center + np.array([6.0, -4.0, 9.0])
    state.set_crosshair(point)
    assert np.allclose(state.crosshair, point) and len(moves.calls) == 1
    assert abs(state.plane().physical_to_pixel(point)[2]) < 1e-9  # the axial plane moved up 9 mm
    for orientation in ("axial", "coronal", "sagittal"):
        plane = state.ortho_plane(orientation)
        assert abs(plane.physical_to_pixel(point)[2]) < 1e-9
        in_plane = plane.center - state.frame.center
        assert np.allclose(in_plane - (in_plane @ plane.normal) * plane.normal, 0)  # no pan, only a shift
        assert plane.pixel_mm == state.frame.pixel_mm[orientation] and plane.width == state.size
    state.scroll(2)
    step = state.frame.step_mm(state.plane().normal)
    assert np.allclose(state.crosshair, point + [0, 0, 2 * step]) and len(moves.calls) == 2
    state.set_orientation("sagittal")  # through the crosshair, which stays put
    assert np.allclose(state.crosshair, point + [0, 0, 2 * step])
    assert abs(state.plane().physical_to_pixel(state.crosshair)[2]) < 1e-9 and state.orientation == "sagittal"
    state.set_crosshair(state.frame.center + [0, 0, 1e6])  # outside the MRI: kept at its edge
    assert state.crosshair[2] == pytest.approx(state.frame.corners[:, 2].max())  # the sagittal plane cannot clamp z
    assert abs(state.plane().physical_to_pixel(state.crosshair)[2]) < 1e-9
