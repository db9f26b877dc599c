"""The 3-D view: texture and clip without GL; the rendered picture with real (Mesa software) GL.

The GL tests need a display: ``QT_QPA_PLATFORM=xcb xvfb-run -a -s "-screen 0 1600x900x24"
python -m pytest tests/test_viewer_3d.py`` (the offscreen platform has no OpenGL; they skip there).
"""
from __future__ import annotations

import os
import threading

import numpy as np
import pytest
from PyQt6.QtCore import QEvent, QPointF, Qt
from PyQt6.QtGui import QMouseEvent
from PyQt6.QtWidgets import QApplication

from core.inference import Colorizer
from core.planes import Plane
from core.volume import Volume
from viewer.export import Cancelled
from viewer.network import LoadedNetwork
from viewer.session import Session
from viewer.study import default_study, prepared
from viewer.volume_data import BODY_ALPHA, VolumeTexture, colorize_for_view, shrink

needs_gl = pytest.mark.skipif(os.environ.get("QT_QPA_PLATFORM") != "xcb" or not os.environ.get("DISPLAY"),
                              reason="needs a display with OpenGL (QT_QPA_PLATFORM=xcb under xvfb-run)")


@pytest.fixture(scope="module")
def colorizer() -> Colorizer:
    return Colorizer.untrained("tiny", device="cpu", pixel_mm=8.0)


@pytest.fixture(scope="module")
def colorized(colorizer) -> tuple[Volume, np.ndarray]:
    study = default_study(0, "small")
    return colorize_for_view(study.mri, colorizer, colorizer.serve)


@pytest.fixture
def session(colorizer) -> Session:
    session = Session(size=128)
    session.open_study(*prepared(default_study(0, "small"), 128))
    session.set_network(LoadedNetwork(colorizer, "untrained"))
    return session


def test_shrink_keeps_the_frame_and_caps_every_side():
    array = np.arange(300 * 20 * 10, dtype=np.float32).reshape(300, 20, 10)
    volume = Volume(array, spacing=(1.0, 2.0, 0.5), origin=(5.0, 6.0, 7.0))
    small = shrink(volume, 128)
    assert max(small.array.shape) <= 128 and small.array.shape == (100, 6, 3)
    assert np.allclose(small.spacing, (3.0, 6.0, 1.5))
    # the first block's centre is where the mean of its voxels' centres is
    assert np.allclose(small.index_to_physical(np.zeros(3)), volume.index_to_physical(np.ones(3)))


def test_the_clip_hides_exactly_the_body_on_the_normals_side(colorized):
    rgb, body = colorized
    texture = VolumeTexture(rgb, body)
    assert set(np.unique(texture.rgba[..., 3])) == {0, BODY_ALPHA}  # air is fully transparent
    plane = Plane.preset("axial", rgb.center)
    alpha = texture.clip(plane)[..., 3]
    z_mm = rgb.index_to_physical(np.array([[0, 0, k] for k in range(rgb.array.shape[0])]))[:, 2]
    above = z_mm > plane.center[2]
    assert not alpha[:, :, above].any()
    assert np.array_equal(alpha[:, :, ~above], texture.body_alpha[:, :, ~above])
    assert np.array_equal(texture.clip(None)[..., 3], texture.body_alpha)


def test_the_background_colorization_can_be_cancelled(colorizer):
    study = default_study(0, "small")
    cancel = threading.Event()
    seen: list[float] = []

    def progress(fraction: float) -> None:
        seen.append(fraction)
        cancel.set()  # the user presses Cancel after the first batch
    with pytest.raises(Cancelled):
        colorize_for_view(study.mri, colorizer, colorizer.serve, progress, cancel)
    assert len(seen) == 1 and seen[0] < 1


def test_the_view_cancels_its_colorization_and_shows_nothing(qtbot, session, monkeypatch):
    from viewer import volume_view

    started, release = threading.Event(), threading.Event()

    def slow(mri, colorizer, output, progress, cancel, colour=None):
        started.set()
        release.wait(10)
        return colorize_for_view(mri, colorizer, output, progress, cancel, colour)
    monkeypatch.setattr(volume_view, "colorize_for_view", slow)
    view = volume_view.VolumeView(session)
    qtbot.addWidget(view)
    view.start()
    assert started.wait(10) and not view.start_button.isEnabled()
    with qtbot.waitSignal(view.ended, timeout=20000) as ended:
        view.cancel_button.click()
        release.set()
    assert ended.args == ["3-D colorization cancelled"]
    assert view.texture is None and view.start_button.isEnabled()
    view.stop()


def test_with_the_whole_volume_colorized_already_the_3d_view_shrinks_it_without_the_network(qtbot, session,
                                                                                            monkeypatch):
    """The three-view layout's colorized volume (`viewer.colour_volume`) is what the 3-D view
    shows, shrunk: the network does not run a second time."""
    from viewer import volume_data
    from viewer.colour_volume import ColourVolume
    from viewer.volume_view import VolumeView

    colour_volume = ColourVolume(session)
    colour_volume.request()
    qtbot.waitUntil(lambda: colour_volume.ready, timeout=60000)

    def no_network(*_args, **_kwargs):
        raise AssertionError("the network ran again")
    monkeypatch.setattr(volume_data, "colorize_volume", no_network)
    view = VolumeView(session, colour_volume)
    qtbot.addWidget(view)
    with qtbot.waitSignal(view.shown, timeout=60000):
        view.start()
    assert np.array_equal(view.texture.volume.array, shrink(colour_volume.volume).array)
    assert view.texture.volume.array.shape[:3] == view.texture.body_alpha.shape[::-1]
    view.stop()
    colour_volume.stop()


def _settle(qtbot, view) -> np.ndarray:
    qtbot.wait(200)
    return view.render_image()


@needs_gl
def test_the_3d_view_renders_the_body_and_its_clip_follows_the_plane(qtbot, session, tmp_path, monkeypatch):
    from viewer.volume_view import VolumeView

    view = VolumeView(session)
    qtbot.addWidget(view)
    view.resize(480, 520)
    view.show()
    qtbot.waitExposed(view)
    with qtbot.waitSignal(view.shown, timeout=120000):
        view.start()
    first = _settle(qtbot, view)
    rgb = first[..., :3].astype(int)
    dark = rgb.max(axis=2) < 10
    assert dark[:10].all() and dark[:, :10].all()  # a black background, no haze of air at the edges
    body = (rgb.max(axis=2) > 40) & (rgb.max(axis=2) - rgb.min(axis=2) > 15)  # coloured, not grey
    assert body.sum() > 0.01 * body.size

    texture = view.texture
    session.state.scroll(-8)  # the plane moves: the clip follows it
    plane = session.state.plane()
    assert texture.clip_plane is plane
    camera = view.gl.cameraPosition()
    towards_camera = np.sign((np.array([camera.x(), camera.y(), camera.z()]) - plane.center) @ plane.normal)
    assert view.side == towards_camera  # the half the camera looks from is opened: the cut faces it
    cut = towards_camera * texture.signed_distance(plane) > 0
    assert cut.any() and not texture.rgba[..., 3][cut].any()
    second = _settle(qtbot, view)
    assert np.abs(second.astype(int) - first.astype(int)).sum(axis=2).astype(bool).mean() > 0.005
    from PIL import Image
    Image.fromarray(second).save(tmp_path / "view3d.png")

    # only the box around what is left to see is drawn, and it is the same picture as the whole texture
    # (one GL widget per test process: pyqtgraph keeps the volume shader of the first context)
    assert np.prod(view._volume_item.data.shape[:3]) < 0.8 * np.prod(texture.rgba.shape[:3])
    whole = tuple(slice(0, n) for n in texture.rgba.shape[:3])
    monkeypatch.setattr(texture, "visible_box", lambda: whole)
    view.show_plane(session.state.plane())
    full = _settle(qtbot, view).astype(int)
    assert view._volume_item.data.shape[:3] == texture.rgba.shape[:3]
    assert np.abs(second.astype(int) - full).max(axis=2).mean() < 2.0  # slice positions shift a little
    monkeypatch.undo()
    view.flip_box.setChecked(True)  # other side: the half the camera looks from is kept, the far one opened
    other = _settle(qtbot, view).astype(int)
    far = towards_camera * texture.signed_distance(plane) < -1e-6
    assert view.side == -towards_camera and not texture.rgba[..., 3][far].any() and texture.rgba[..., 3][cut].any()
    assert np.abs(other - second.astype(int)).sum(axis=2).astype(bool).mean() > 0.005
    view.flip_box.setChecked(False)
    centre = QPointF(view.gl.width() / 2, view.gl.height() / 2)
    qtbot.mousePress(view.gl, Qt.MouseButton.LeftButton, pos=centre.toPoint())
    view.gl.setCameraPosition(elevation=-view.gl.opts["elevation"])  # the user turns the body: camera below
    drag = QMouseEvent(QEvent.Type.MouseMove, centre, view.gl.mapToGlobal(centre), Qt.MouseButton.NoButton,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(view.gl, drag)  # still dragging: no release yet
    qtbot.waitUntil(lambda: view.side == -towards_camera, timeout=5000)
    assert not texture.rgba[..., 3][far].any()  # the cut faces the camera again, mid-drag
    view.gl.setCameraPosition(elevation=-view.gl.opts["elevation"])  # and back above, ending the drag
    qtbot.mouseRelease(view.gl, Qt.MouseButton.LeftButton, pos=centre.toPoint())
    qtbot.waitUntil(lambda: view.side == towards_camera, timeout=5000)
    view.stop()


def test_the_visible_box_holds_every_visible_voxel_and_the_clip_can_open_either_side(colorized):
    rgb, body = colorized
    texture = VolumeTexture(rgb, body)
    full = texture.rgba.shape[:3]
    box = texture.visible_box()
    alpha = texture.rgba[..., 3]
    assert alpha[box].sum(dtype=np.int64) == alpha.sum(dtype=np.int64)  # nothing visible left out
    assert np.prod([part.stop - part.start for part in box]) < 0.8 * np.prod(full)  # air is not drawn (this MRI grid is tight already)
    # the box's corner sits where that voxel sits in the whole texture
    corner = np.array([part.start for part in box] + [1.0])
    assert np.allclose(texture.box_matrix(box) @ np.array([0, 0, 0, 1.0]), texture.item_matrix @ corner)
    plane = Plane.preset("coronal", rgb.center)
    kept = texture.clip(plane)[..., 3] > 0
    opened = texture.clip(plane, side=-1)[..., 3] > 0  # the other side: the complementary half of the body
    on_plane = np.abs(texture.signed_distance(plane)) < 1e-6  # voxels the plane passes through stay in both
    assert kept.any() and opened.any() and not (kept & opened & ~on_plane).any()
    assert np.array_equal(kept | opened, texture.body_alpha > 0)
    half = texture.visible_box()
    assert np.prod([p.stop - p.start for p in half]) < np.prod([p.stop - p.start for p in box])
    texture.rgba[..., 3] = 0
    assert texture.visible_box() is None
