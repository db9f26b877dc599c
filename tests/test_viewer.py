"""The viewer window under pytest-qt (offscreen): small phantom, untrained tiny model, temporary settings."""
from __future__ import annotations

import sys
import time

import numpy as np
import torch
import pytest
from PIL import Image
from PyQt6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl
from PyQt6.QtGui import QDropEvent
from PyQt6.QtWidgets import QMessageBox

from core.io import read_volume, write_volume
from core.planes import Plane
from viewer import jobs, study
from viewer.app import install_excepthook
from viewer.main_window import MainWindow
from core.inference import Colorizer
from viewer.network import UNTRAINED_NOTICE, LoadedNetwork
from viewer.pipeline import METRICS_DELAY_MS
from viewer.settings import ViewerSettings
from viewer.worker import LatestWinsWorker

TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def phantom(tmp_path_factory) -> study.Study:
    """The small phantom, cached in the test session's cache folder (as conftest's autouse fixture does)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MRICOLOR_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
        return study.default_study(seed=0, size="small")


@pytest.fixture(scope="module")
def model() -> LoadedNetwork:
    return LoadedNetwork(Colorizer.untrained("tiny", device="cpu"), "untrained tiny", UNTRAINED_NOTICE)


@pytest.fixture
def settings(tmp_path) -> ViewerSettings:
    return ViewerSettings(QSettings(str(tmp_path / "viewer.ini"), QSettings.Format.IniFormat))


@pytest.fixture
def window(qtbot, phantom, model, settings) -> MainWindow:
    w = MainWindow(phantom, model, settings=settings, size=128)
    qtbot.addWidget(w)
    w.resize(1200, 700)
    w.show()
    qtbot.waitUntil(lambda: w.idle, timeout=TIMEOUT_MS)
    return w


def _expected_colorized(w: MainWindow, plane: Plane) -> np.ndarray:
    return jobs.colorize(w.session.colorize_request(plane)).rgb


def _assert_panels_show(w: MainWindow, plane: Plane) -> None:
    """Every panel shows ``plane``: the MRI, the cryosection and the colorized plane of that plane."""
    images = {key: panel.image.image for key, panel in w.panels.panels.items()}
    assert np.array_equal(images["mri"], jobs.slice_mri(w.session.study, plane))
    side = jobs.slice_side(w.session.study, plane)
    assert np.array_equal(images["cryo"], side.cryo)
    assert np.array_equal(w.side.labels, side.labels)
    assert np.array_equal(images["colorized"], _expected_colorized(w, plane))
    letters = {edge: text.toPlainText() for edge, text in w.panels.panels["cryo"].letters.items()}
    assert letters == plane.orientation_letters()


def _open_default(qtbot, settings) -> MainWindow:
    """What ``mricolor view`` does with no arguments (small phantom to keep it fast)."""
    w = MainWindow(settings=settings, size=128)
    qtbot.addWidget(w)
    w.show()
    w.loader.load_default(seed=0, size="small")
    w.loader.load_checkpoint(None, "cpu")
    qtbot.waitUntil(lambda: w.idle, timeout=TIMEOUT_MS)
    rgb = w.panels.panels["colorized"].image.image
    assert rgb.shape == (128, 128, 3) and rgb.dtype == np.uint8
    assert rgb.std() > 5  # not blank
    assert w.panels.panels["cryo"].image.image.std() > 5
    assert w.legend.count() > 3  # tissues of the plane
    return w


def test_the_default_opens_with_the_shipped_model_and_a_colorized_plane(qtbot, settings):
    w = _open_default(qtbot, settings)
    assert UNTRAINED_NOTICE not in w.panels.panels["colorized"].title.text
    # the viewer says what the shipped model is: on the colorized panel and in Help ▸ About
    assert "synthetic phantoms" in w.panels.panels["colorized"].title.toolTip()
    from viewer.menus import ABOUT

    assert "synthetic phantoms" in ABOUT and "not from real cryosection" in ABOUT


def test_without_shipped_weights_the_default_runs_untrained_with_a_notice(qtbot, settings, monkeypatch):
    from core.errors import InputError
    from core.inference import Colorizer

    def no_default(path=None, device=None, **kwargs):
        raise InputError(path, "no shipped checkpoint")

    monkeypatch.setattr(Colorizer, "from_checkpoint", staticmethod(no_default))
    w = _open_default(qtbot, settings)
    assert UNTRAINED_NOTICE in w.panels.panels["colorized"].title.text


def test_orientation_and_scrolling_update_all_panels_consistently(qtbot, window):
    _assert_panels_show(window, window.state.plane())
    window.state.set_orientation("coronal")
    window.state.scroll(3)
    qtbot.waitUntil(lambda: window.idle, timeout=TIMEOUT_MS)
    _assert_panels_show(window, window.state.plane())
    window.state.set_plane(tilt_deg=25.0, rotate_deg=-10.0, offset_mm=-8.0)
    qtbot.waitUntil(lambda: window.idle, timeout=TIMEOUT_MS)
    _assert_panels_show(window, window.state.plane())


def _wheel(window: MainWindow, notches: int) -> None:
    """A real wheel event over the middle of the MRI panel (up = positive)."""
    from PyQt6.QtCore import QPoint
    from PyQt6.QtGui import QWheelEvent
    from PyQt6.QtWidgets import QApplication

    view = window.panels.panels["mri"].view
    pos = window.panels.mapFromScene(view.sceneBoundingRect().center())
    event = QWheelEvent(QPointF(pos), QPointF(window.panels.viewport().mapToGlobal(pos)), QPoint(0, 0),
                        QPoint(0, 120 * notches), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(window.panels.viewport(), event)


def test_keys_wheel_and_slider_scroll_the_plane(qtbot, window):
    start = window.state.offset_mm
    step = window.state.frame.step_mm(window.state.plane().normal)
    window.panels.setFocus()
    qtbot.keyClick(window.panels, Qt.Key.Key_Up)
    assert window.state.offset_mm == pytest.approx(start + step)
    qtbot.keyClick(window.panels, Qt.Key.Key_PageDown)
    assert window.state.offset_mm == pytest.approx(start - 9 * step)
    _wheel(window, notches=2)
    assert window.state.offset_mm == pytest.approx(start - 7 * step)
    window.plane_controls.offset.slider.setValue(50)  # slider is in tenths of a mm
    assert window.state.offset_mm == pytest.approx(5.0)
    qtbot.keyClick(window.panels, Qt.Key.Key_2)
    assert window.state.orientation == "coronal"


class _SlowGenerator(torch.nn.Module):
    """The tiny generator made as slow as the lite one on a 2-core CPU (100 ms a forward)."""

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x, outputs=None):
        time.sleep(0.1)
        return self.inner(x, outputs)


def _slow(colorizer: Colorizer) -> Colorizer:
    return Colorizer(_SlowGenerator(colorizer.generator), colorizer.config, serve=colorizer.serve, device="cpu",
                     pixel_mm=colorizer.pixel_mm, source="slow tiny")


def test_window_level_drag_and_linked_zoom(qtbot, window):
    window.state.set_window(0.5, 0.5)
    window.panels.window_dragged.emit(40.0, -20.0)  # right widens the window, up lowers the level
    assert window.state.window > 0.5 and window.state.level < 0.5
    assert window.panels.panels["mri"].image.levels == pytest.approx(window.state.levels)
    mri_view = window.panels.panels["mri"].view
    mri_view.setRange(xRange=(20, 60), yRange=(30, 70), padding=0)
    zoomed = np.array(mri_view.viewRange())
    assert zoomed[0] == pytest.approx((20, 60), abs=0.5) or zoomed[1] == pytest.approx((30, 70), abs=0.5)
    for key in ("colorized", "cryo"):
        assert np.array(window.panels.panels[key].view.viewRange()) == pytest.approx(zoomed, abs=0.5)


def test_the_model_moves_to_another_device_as_a_copy(model):
    moved = model.colorizer.to("cpu")
    assert moved.generator is not model.colorizer.generator
    planes = np.random.default_rng(0).random((1, 32, 32), dtype=np.float32)
    assert np.allclose(moved.colorize(planes), model.colorizer.colorize(planes), atol=1e-6)


def test_a_burst_of_plane_changes_runs_the_model_rarely_and_ends_on_the_last_plane(qtbot, window, model):
    window.set_network(LoadedNetwork(_slow(model.colorizer), "slow tiny"))
    qtbot.waitUntil(lambda: window.idle, timeout=TIMEOUT_MS)
    # what reached the screen, in order: the pipeline emits it as it shows it (the worker's own
    # queued signal can arrive after the window already reads as idle)
    shown, previews = [], []
    window.pipeline.colorized.connect(lambda rid, result: (shown.append(rid), previews.append(result.preview)))
    runs_before = window.pipeline.model_worker.runs
    start = time.perf_counter()
    for _ in range(50):
        window.state.set_plane(offset_mm=window.state.offset_mm + 0.5)
    burst_s = time.perf_counter() - start
    qtbot.waitUntil(lambda: window.idle, timeout=TIMEOUT_MS)
    runs = window.pipeline.model_worker.runs - runs_before
    # one run in flight when the burst starts, at most one per 100 ms of burst, then the last
    # plane twice: its half-resolution preview and the full plane once it rests
    assert runs <= min(15, burst_s / 0.1 + 3), f"the model ran {runs} times for 50 plane changes in {burst_s:.2f} s"
    assert shown == sorted(shown) and shown[-1] == window.pipeline.request_id  # never went backwards
    assert any(previews) and not previews[-1]  # half-resolution while scrolling, the full plane at rest
    assert np.array_equal(window.panels.panels["colorized"].image.image,
                          _expected_colorized(window, window.state.plane()))


def test_latest_wins_worker_starts_only_the_newest_request(qtbot):
    worker = LatestWinsWorker(lambda x: (time.sleep(0.05), x)[1], "test-worker")
    results = []
    worker.finished.connect(lambda rid, result: results.append((rid, result)))
    try:
        for i in range(1, 31):
            worker.submit(i, i * 10)
        qtbot.waitUntil(lambda: not worker.busy and bool(results) and results[-1][0] == 30, timeout=5000)
        assert worker.runs <= 3 and results[-1] == (30, 300)
    finally:
        worker.stop()


def test_a_corrupt_file_shows_an_error_and_the_viewer_stays_usable(qtbot, window, tmp_path):
    bad = tmp_path / "corrupt.nii.gz"
    bad.write_bytes(b"\x1f\x8b garbage that is no NIfTI")
    with qtbot.waitSignal(window.error_shown, timeout=TIMEOUT_MS):
        window.loader.open_file("mri", str(bad))
    assert "corrupt.nii.gz" in window.last_error
    assert any(box.isVisible() and "corrupt.nii.gz" in box.text() for box in window.findChildren(QMessageBox))
    window.state.scroll(2)
    qtbot.waitUntil(lambda: window.idle, timeout=TIMEOUT_MS)
    _assert_panels_show(window, window.state.plane())


def test_an_exception_in_a_slot_goes_to_a_dialog_not_a_crash(qtbot, window, monkeypatch):
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    install_excepthook(window)
    sys.excepthook(RuntimeError, RuntimeError("boom"), None)
    assert "boom" in window.last_error


def test_export_writes_a_png_and_a_colorized_volume(qtbot, window, tmp_path):
    png = window.export_png(str(tmp_path / "panels.png"))
    with Image.open(png) as image:
        assert image.size[0] > 300 and image.size[1] > 100
        assert np.asarray(image.convert("RGB")).std() > 5
    target = tmp_path / "colorized.nii.gz"
    cancelled = window.export_volume(str(tmp_path / "cancelled.nii.gz"))
    cancelled.canceled.emit()  # what the Cancel button sends
    dialog = window.export_volume(str(target))
    qtbot.waitUntil(lambda: target.exists() and not dialog.isVisible(), timeout=60_000)
    assert not (tmp_path / "cancelled.nii.gz").exists() and window.last_error is None
    volume = read_volume(target, expect="rgb")
    assert volume.array.shape == (*window.session.study.mri.array.shape, 3)
    assert volume.same_frame(window.session.study.mri)
    assert volume.array.std() > 1
    assert not list(tmp_path.glob(".*tmp*"))  # nothing half-written left behind


def _interior_voxel(labels, label_id: int) -> np.ndarray:
    """A voxel of ``label_id`` whose whole 5×5×5 neighbourhood has that label (robust to rounding)."""
    from scipy.ndimage import binary_erosion

    core = binary_erosion(labels.array == label_id, iterations=2)
    zyx = np.argwhere(core)
    assert len(zyx), f"label {label_id} has no interior"
    return zyx[len(zyx) // 2][::-1].astype(float)


def test_the_readout_names_the_tissue_under_the_cursor(qtbot, window):
    labels = window.session.study.labels
    ids, counts = np.unique(labels.array, return_counts=True)
    tissue = int(next(i for i in ids[np.argsort(-counts)] if i != 0 and labels.label_table.name(i) != "fat"))
    point = labels.index_to_physical(_interior_voxel(labels, tissue))
    window.state.set_orientation("axial")
    window.state.move_through(point)
    qtbot.waitUntil(lambda: window.idle, timeout=TIMEOUT_MS)
    row, col, distance = window.state.plane().physical_to_pixel(point)
    assert abs(distance) < 1e-6
    view = window.panels.panels["mri"].view
    scene = view.mapViewToScene(QPointF(col + 0.5, row + 0.5))
    qtbot.mouseMove(window.panels.viewport(), window.panels.mapFromScene(scene))
    name = labels.label_table.name(tissue).replace("_", " ")
    qtbot.waitUntil(lambda: name in window.readout.text(), timeout=5000)
    assert "mm" in window.readout.text() and "MRI" in window.readout.text()
    assert window.panels.panels["cryo"].lines[0].isVisible()  # crosshair in every panel


def _expected_readout(window: MainWindow, row: int, col: int) -> tuple[str, str]:
    """The position and MRI value the readout must show at pixel (row, col) of the current plane."""
    plane = window.state.plane()
    point = plane.pixel_to_physical(row, col)
    value = jobs.slice_mri(window.session.study, plane)[row, col]
    return f"({point[0]:.1f}, {point[1]:.1f}, {point[2]:.1f}) mm LPS", f"MRI {value:.4g}"


def test_the_readout_follows_keyboard_and_navigator_moves_without_the_mouse(qtbot, window):
    window.point_at(40, 50)
    before = window.readout.text()
    window.panels.setFocus()
    qtbot.keyClick(window.panels, Qt.Key.Key_PageUp)
    position, value = _expected_readout(window, 40, 50)
    assert position in window.readout.text() and value in window.readout.text()
    assert window.readout.text() != before
    moved = window.readout.text()
    window.navigator.clicked.emit(window.navigator.plane_of("coronal").pixel_to_physical(30, 64))
    position, value = _expected_readout(window, 40, 50)
    assert position in window.readout.text() and value in window.readout.text()
    assert window.readout.text() != moved
    window.point_at(float("nan"), float("nan"))  # the mouse leaves the panels: the text stays to be copied
    assert position in window.readout.text()
    qtbot.keyClick(window.panels, Qt.Key.Key_PageUp)
    assert "mm LPS" not in window.readout.text()  # it described another plane


def test_opening_a_second_mri_clears_the_old_metrics_readout_and_zoom(qtbot, window, phantom, tmp_path):
    qtbot.waitUntil(lambda: "dE" in window.metrics.values, timeout=TIMEOUT_MS)  # the phantom's truth ΔE
    window.point_at(60, 70)
    assert "mm LPS" in window.readout.text()
    mri_view = window.panels.panels["mri"].view
    mri_view.setRange(xRange=(20, 60), yRange=(30, 70), padding=0)
    path = tmp_path / "another_t1.nii.gz"
    write_volume(phantom.mri.with_array(phantom.mri.array[::-1].copy()), path)
    with qtbot.waitSignal(window.study_changed, timeout=TIMEOUT_MS):
        window.loader.open_file("mri", str(path))
    qtbot.waitUntil(lambda: window.idle, timeout=TIMEOUT_MS)
    qtbot.wait(2 * METRICS_DELAY_MS)  # long enough for metrics, were there any to compute
    assert window.metrics.values == {} and window.metrics.table.rowCount() == 0
    assert "cryosection" in window.metrics.status.text()
    assert "mm LPS" not in window.readout.text() and not window.panels.panels["mri"].lines[0].isVisible()
    (x0, x1), (y0, y1) = mri_view.viewRange()
    assert x0 <= 0.5 and x1 >= 127.5 and y0 <= 0.5 and y1 >= 127.5  # fitted to the new image again


def test_the_menus_call_the_commands_they_are_given(qtbot):
    """The menus need no window: any widget with a menu bar and a set of commands."""
    from PyQt6.QtWidgets import QMainWindow

    from viewer.menus import MenuCommands, build_menus, fill_recent
    from viewer.state import ViewerState

    calls = []

    def record(name: str):
        return lambda *args: calls.append((name, *args))
    commands = MenuCommands(*(record(name) for name in ("open_file", "open_phantom", "export_png", "export_volume",
                                                        "show_error", "reset_zoom", "quit")))
    host, state = QMainWindow(), ViewerState()
    qtbot.addWidget(host)
    recent = build_menus(host.menuBar(), host, commands, state, [])
    fill_recent(recent, [("cryo", "/data/cryo.nrrd")], commands.open_file)
    actions = {a.text(): a for menu in host.menuBar().findChildren(type(recent)) for a in menu.actions()}
    for text in ("Reset zoom", "Open built-in phantom", "Sagittal"):
        actions[text].trigger()
    recent.actions()[0].trigger()
    assert calls == [("reset_zoom",), ("open_phantom",), ("open_file", "cryo", "/data/cryo.nrrd")]
    assert state.orientation == "sagittal"


def test_navigator_click_moves_the_plane_through_the_point(qtbot, window):
    coronal = window.navigator.plane_of("coronal")
    point = coronal.pixel_to_physical(50, 70)
    window.navigator.clicked.emit(point)
    assert abs(window.state.plane().physical_to_pixel(point)[2]) < 1e-6


def test_output_switch_recolorizes(qtbot, window):
    before = window.panels.panels["colorized"].image.image.copy()
    window.state.set_output("c_prime")
    qtbot.waitUntil(lambda: window.idle, timeout=TIMEOUT_MS)
    after = window.panels.panels["colorized"].image.image
    assert not np.array_equal(before, after)
    assert np.array_equal(after, _expected_colorized(window, window.state.plane()))


def test_metrics_appear_for_the_plane_on_screen(qtbot, window):
    qtbot.waitUntil(lambda: window.pipeline.shown["metrics"] == window.pipeline.request_id, timeout=TIMEOUT_MS)
    values = window.metrics.values
    for key in ("CF", "dCF", "SSIM", "MS-SSIM", "FSIM", "STSIM", "dE"):
        assert key in values and np.isfinite(values[key])


def test_window_level_and_recent_files_persist(qtbot, phantom, model, settings, tmp_path):
    first = MainWindow(phantom, model, settings=settings, size=128)
    qtbot.addWidget(first)
    first.state.set_window(0.123, 0.456)
    path = tmp_path / "t1.nii.gz"
    write_volume(phantom.mri, path)
    with qtbot.waitSignal(first.study_changed, timeout=TIMEOUT_MS):
        first.loader.open_file("mri", str(path))
    first.close()
    assert settings.recent()[0] == ("mri", str(path))
    second = MainWindow(phantom, model, settings=settings, size=128)
    qtbot.addWidget(second)
    assert (second.state.window, second.state.level) == pytest.approx((0.123, 0.456))
    assert str(path) in [a.text() for a in second.recent_menu.actions()][0]


def test_dropped_mri_cryosection_and_labels_open_as_one_study(qtbot, window, phantom, tmp_path):
    """As ``mricolor view MRI --cryo C --labels L`` and a drop of the three files do."""
    paths = {"labels": tmp_path / "body_labels.nii.gz", "cryo": tmp_path / "cryo.nrrd", "mri": tmp_path / "t1.nii.gz"}
    for kind, path in paths.items():
        write_volume(getattr(phantom, kind), path)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths.values()])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                       Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    qtbot.waitUntil(lambda: window.tasks.pending == 0 and window.idle, timeout=TIMEOUT_MS)
    assert window.session.study.name == "t1.nii.gz" and window.session.study.truth is None
    assert np.array_equal(window.session.study.cryo.array, phantom.cryo.array)
    assert window.session.study.label_table.name(int(phantom.labels.array.max())) == \
        phantom.label_table.name(int(phantom.labels.array.max()))
    _assert_panels_show(window, window.state.plane())


def test_view_command_screenshots_the_default_and_refuses_missing_files(tmp_path, monkeypatch):
    """``python -m viewer --screenshot`` end to end (small phantom), and a missing file's one-line error."""
    import subprocess

    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))  # the log goes there
    out = tmp_path / "shot.png"
    run = subprocess.run([sys.executable, "-m", "viewer", "--phantom-size", "small", "--size", "128",
                          "--screenshot", str(out)], capture_output=True, encoding="utf-8", timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    with Image.open(out) as image:
        assert image.size == (1600, 900) and np.asarray(image.convert("RGB")).std() > 10
    missing = subprocess.run([sys.executable, "-m", "viewer", str(tmp_path / "nope.nii.gz")],
                             capture_output=True, encoding="utf-8", timeout=120)
    assert missing.returncode == 2 and "nope.nii.gz" in missing.stderr and "Traceback" not in missing.stderr


def test_a_bad_file_in_screenshot_mode_is_one_line_exit_2_and_no_picture(tmp_path, monkeypatch):
    """A file that exists but cannot be read: ``--screenshot`` says so in one line naming it, exits
    2 and writes no picture of an empty window."""
    import subprocess

    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"not a volume at all")
    out = tmp_path / "shot.png"
    run = subprocess.run([sys.executable, "-m", "viewer", str(bad), "--screenshot", str(out), "--size", "64"],
                         capture_output=True, encoding="utf-8", timeout=300)
    lines = [line for line in run.stderr.splitlines() if line.strip() and "propagateSizeHints" not in line]
    assert run.returncode == 2, run.stderr[-2000:]
    assert len(lines) == 1 and "broken.nii.gz" in lines[0] and "Traceback" not in run.stderr
    assert not out.exists()


def test_the_preset_box_names_the_preset_on_screen_and_says_custom_after_a_drag(qtbot, window):
    box = window.display.preset_box
    first = next(iter(window.display.presets))
    box.activated.emit(0)
    assert box.currentText() == first and (window.state.window, window.state.level) == \
        pytest.approx(window.display.presets[first])
    window.panels.window_dragged.emit(40.0, -20.0)
    assert box.currentText() == "custom"
    box.activated.emit(box.findText("custom"))  # choosing "custom" changes nothing
    assert box.currentText() == "custom"


def test_a_remembered_window_that_shows_nothing_is_not_restored():
    from viewer.session import plausible_window

    assert plausible_window((0.9, 0.45), (0.0, 1.0))
    for bad in ((1e-9, 0.5), (500.0, 0.5), (0.5, 40.0), (float("nan"), 0.5), (-1.0, 0.5)):
        assert not plausible_window(bad, (0.0, 1.0)), bad


def test_outputs_have_plain_names_with_the_notation_in_tooltips(qtbot, window):
    from PyQt6.QtCore import Qt as QtCore

    box = window.display.output
    names = [box.itemText(i) for i in range(box.count())]
    tips = [box.itemData(i, QtCore.ItemDataRole.ToolTipRole) for i in range(box.count())]
    assert names and not any(ch in name for name in names for ch in "ĉ′")
    assert any("ĉ" in tip for tip in tips) and any("c′" in tip for tip in tips)


def test_the_3d_dock_starts_hidden_with_a_view_menu_toggle_and_follows_the_study(window):
    dock = window.docks["view3d"]
    assert not dock.isVisible() and dock.widget().gl is None  # no GL context until it is shown
    view_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
    assert dock.toggleViewAction() in view_menu.actions()
    view = dock.widget()
    view.set_volume(*view_data_for(window))
    assert view.texture is not None
    window.state.set_output(next(o for o in window.session.network.colorizer.outputs if o != window.state.output))
    assert view.texture is None  # another output voids the picture


def view_data_for(w: MainWindow):
    """A tiny stand-in colorized volume of the open study (the view only needs RGB and a body)."""
    from viewer.volume_data import shrink

    small = shrink(w.session.study.mri)
    rgb = small.with_array(np.zeros(small.array.shape + (3,), np.uint8))
    return rgb, np.ones(small.array.shape, bool)


def test_the_label_layer_is_on_the_colorized_panel_too_and_long_messages_are_elided(qtbot, window):
    qtbot.waitUntil(lambda: window.idle, timeout=TIMEOUT_MS)
    colour, cryo = (window.panels.panels[k].overlay for k in ("colorized", "cryo"))
    assert colour is not None and colour.image is not None
    np.testing.assert_array_equal(colour.image, cryo.image)
    window.state.set_overlay(opacity=0.7, visible=False)
    assert colour.opacity() == pytest.approx(0.7) and not colour.isVisible()
    text = "opened " + "/very/long/folder" * 40 + "/scan.nii.gz"
    window.status.showMessage(text)
    shown = window.status.currentMessage()
    assert len(shown) < len(text) and "…" in shown and shown.endswith("nii.gz")
    assert window.status.toolTip() == text
