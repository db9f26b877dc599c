"""The central layouts under pytest-qt (offscreen): comparison and three linked orthogonal views."""
from __future__ import annotations

import threading

import numpy as np
from PyQt6.QtCore import QPointF, QRectF, Qt

from core.planes import Plane
from core.inference import Colorizer
from viewer import jobs
from viewer.export import colorize_volume
from viewer.main_window import MainWindow
from viewer.study import Study
from test_viewer import TIMEOUT_MS, model, phantom, settings, window  # noqa: F401 (fixtures)


def _three(qtbot, w: MainWindow, live: bool = True) -> None:
    """The three-view layout; ``live``: every plane colorized by the network (the colorized volume,
    which would take over mid-test once made, switched off)."""
    w.pipeline.colour_volume.set_enabled(not live)
    w.layouts.set_layout("three")
    qtbot.waitUntil(lambda: w.idle, timeout=TIMEOUT_MS)


def _shown(w: MainWindow, view: str) -> np.ndarray:
    return w.layouts.ortho.panels[view].image.image


def _click(qtbot, w: MainWindow, view: str, row: float, col: float) -> tuple[float, float]:
    """A real left click near pixel (row, col) of a view of the three-view layout; returns the
    plane pixel under the screen pixel it landed on."""
    ortho = w.layouts.ortho
    box = ortho.panels[view].view
    screen = ortho.mapFromScene(box.mapViewToScene(QPointF(col + 0.5, row + 0.5)))
    qtbot.mouseClick(ortho.viewport(), Qt.MouseButton.LeftButton, pos=screen)
    landed = box.mapSceneToView(ortho.mapToScene(screen))
    assert abs(landed.y() - 0.5 - row) < 2 and abs(landed.x() - 0.5 - col) < 2
    return landed.y() - 0.5, landed.x() - 0.5


def _fills(view, size: int) -> bool:
    """The plane (``size`` pixels square) fills the view in one direction, not a speck in its middle."""
    return min(high - low for low, high in view.viewRange()) <= 1.05 * size


def _offset(plane: Plane, w: MainWindow) -> float:
    return float((plane.center - w.state.frame.center) @ plane.normal)


def test_switching_layouts_keeps_the_plane_and_the_crosshair(qtbot, window):
    state = window.state
    state.set_plane(orientation="coronal", tilt_deg=20.0, offset_mm=6.0)
    qtbot.waitUntil(lambda: window.idle, timeout=TIMEOUT_MS)
    plane, crosshair = state.plane(), state.crosshair.copy()
    assert abs(plane.physical_to_pixel(crosshair)[2]) < 1e-9
    _three(qtbot, window)
    assert window.layouts.stack.currentWidget() is window.layouts.ortho
    assert state.plane() is plane and np.array_equal(state.crosshair, crosshair)
    assert np.array_equal(_shown(window, "oblique"), jobs.slice_mri(window.session.study, plane))
    for view in ("axial", "coronal", "sagittal"):
        assert np.array_equal(_shown(window, view), jobs.slice_mri(window.session.study, state.ortho_plane(view)))
        assert abs(window.layouts.ortho_pipeline.planes[view].physical_to_pixel(crosshair)[2]) < 1e-9
    axial = window.layouts.ortho.panels["axial"].view
    axial.setRange(xRange=(10, 30), yRange=(10, 30), padding=0.0)  # zoomed in; View ▸ Reset zoom (R) frames it
    next(a for m in window.menuBar().findChildren(type(window.recent_menu)) for a in m.actions()
         if a.text() == "Reset zoom").trigger()
    (x0, x1), (y0, y1) = axial.viewRange()
    assert _fills(axial, state.size) and x0 <= 0 and y0 <= 0 and x1 >= state.size and y1 >= state.size
    window.layouts.actions[0].trigger()  # View ▸ Switch layout (L): back to the comparison
    assert window.layouts.current == "comparison" and window.layouts.stack.currentWidget() is window.panels
    assert state.plane() is plane and np.array_equal(state.crosshair, crosshair)


def test_a_click_in_one_view_moves_the_other_two_and_the_plane_through_the_point(qtbot, window):
    _three(qtbot, window)
    state, work = window.state, window.layouts.ortho_pipeline
    axial = work.planes["axial"]
    before = {view: _offset(work.planes[view], window) for view in ("coronal", "sagittal")}
    point = axial.pixel_to_physical(*_click(qtbot, window, "axial", 40, 80))
    assert np.allclose(state.crosshair, point, atol=1e-6)
    assert work.planes["axial"] is axial  # the clicked view keeps its plane
    for view in ("coronal", "sagittal"):
        plane = work.planes[view]
        expected = float((point - state.frame.center) @ plane.normal)
        assert abs(_offset(plane, window) - expected) < 1e-6 and abs(expected - before[view]) > 1.0
        assert abs(plane.physical_to_pixel(point)[2]) < 1e-6
        assert np.array_equal(_shown(window, view), jobs.slice_mri(window.session.study, plane))
        row, col, _ = plane.physical_to_pixel(point)  # the crosshair is drawn at the point
        vertical, horizontal = window.layouts.ortho.panels[view].lines
        assert (vertical.value(), horizontal.value()) == (col + 0.5, row + 0.5)
    assert abs(state.plane().physical_to_pixel(point)[2]) < 1e-6  # the current plane too
    qtbot.waitUntil(lambda: window.idle, timeout=TIMEOUT_MS)
    assert np.array_equal(window.panels.panels["mri"].image.image, jobs.slice_mri(window.session.study, state.plane()))
    sagittal, coronal = work.planes["sagittal"], work.planes["coronal"]
    window.layouts.ortho.scrolled.emit("coronal", 3.0)  # the wheel in a view moves its plane only
    assert work.planes["sagittal"] is sagittal
    step = state.frame.step_mm(coronal.normal)
    assert abs(_offset(work.planes["coronal"], window) - (_offset(coronal, window) + 3 * step)) < 1e-6


def test_colour_in_the_three_views_ends_on_the_full_colorized_planes_after_a_drag(qtbot, window):
    _three(qtbot, window)
    layouts, state = window.layouts, window.state
    layouts.colour_action.trigger()  # View ▸ Colour in the three views (C)
    start = state.crosshair.copy()
    for i in range(15):  # a drag of the crosshair across the sagittal view: previews, then the full plane
        state.set_crosshair(start + [0.0, i * 0.8, -i * 0.5])
    qtbot.waitUntil(lambda: window.idle, timeout=TIMEOUT_MS)
    for view in ("axial", "coronal"):
        expected = jobs.colorize(window.session.colorize_request(state.ortho_plane(view))).rgb
        assert np.array_equal(_shown(window, view), expected)
    assert layouts.ortho_pipeline.worker.runs < 30  # latest wins: most of the 15 × 4 stale planes never ran
    assert _shown(window, "oblique").ndim == 3  # the current plane in colour too
    assert window.settings.value("three_view_colour") == "true"


def test_the_layout_is_remembered(qtbot, phantom, model, settings):
    first = MainWindow(phantom, model, settings=settings, size=64)
    qtbot.addWidget(first)
    first.layouts.set_layout("three")
    first.close()
    second = MainWindow(phantom, model, settings=settings, size=64)
    qtbot.addWidget(second)
    assert second.layouts.current == "three" and second.layouts.stack.currentWidget() is second.layouts.ortho
    second.close()


def test_without_a_cryosection_its_panel_gives_its_room_back_and_the_legend_says_why(qtbot, phantom, model, settings):
    bare = Study(phantom.mri, None, None, None, name="MRI only")
    w = MainWindow(bare, model, settings=settings, size=64)
    qtbot.addWidget(w)
    w.resize(1200, 700)
    w.show()
    qtbot.waitUntil(lambda: w.idle, timeout=TIMEOUT_MS)
    panels = w.panels.panels
    assert not panels["cryo"].view.isVisible() and not w.panels.cryo_shown
    assert panels["mri"].view.width() > 0.4 * w.panels.width()  # half the row, not a third
    assert _fills(panels["mri"].view, 64) and _fills(panels["colorized"].view, 64)
    assert w.legend.count() == 1 and "no cryosection" in w.legend.item(0).text()
    w.session.replace_volume("cryo", phantom.cryo)
    qtbot.waitUntil(lambda: w.idle, timeout=TIMEOUT_MS)
    assert panels["cryo"].view.isVisible() and panels["mri"].view.width() < 0.4 * w.panels.width()
    assert panels["cryo"].image.image.std() > 5
    assert all(_fills(panels[key].view, 64) for key in ("mri", "colorized", "cryo"))
    w.close()


def test_the_readout_follows_the_mouse_in_the_three_views(qtbot, window):
    _three(qtbot, window)
    ortho, work = window.layouts.ortho, window.layouts.ortho_pipeline
    box = ortho.panels["sagittal"].view
    screen = ortho.mapFromScene(box.mapViewToScene(QPointF(60.5, 70.5)))
    landed = box.mapSceneToView(ortho.mapToScene(screen))
    qtbot.mouseMove(ortho.viewport(), pos=screen)
    plane = work.planes["sagittal"]
    expected = "sagittal: " + window.session.readout(jobs.slice_mri(window.session.study, plane),
                                                      landed.y() - 0.5, landed.x() - 0.5, plane)
    qtbot.waitUntil(lambda: window.readout.text() == expected, timeout=TIMEOUT_MS)
    assert "mm LPS" in expected and "MRI" in expected


def test_the_current_plane_and_its_orthogonal_twin_are_colorized_once_on_one_worker(qtbot, window):
    """Untilted, the current plane is one of the three orthogonal views: a crosshair move runs the
    network for three planes, not four, on the one network thread, and both views show that run."""
    _three(qtbot, window)
    layouts, state = window.layouts, window.state
    layouts.set_colour(True)
    qtbot.waitUntil(lambda: window.idle, timeout=TIMEOUT_MS)
    assert layouts.ortho_pipeline.worker is window.pipeline.model_worker
    qtbot.wait(200)  # longer than a scroll's pause: the next move is colorized at full resolution at once
    runs = window.pipeline.model_worker.runs
    coronal, sagittal = (layouts.ortho_pipeline.planes[v] for v in ("coronal", "sagittal"))
    state.set_crosshair(state.crosshair + [0.0, 0.0, 5.0])  # up: the current plane and the axial view move
    qtbot.waitUntil(lambda: window.idle, timeout=TIMEOUT_MS)
    assert layouts.ortho_pipeline.planes["coronal"] is coronal and layouts.ortho_pipeline.planes["sagittal"] is sagittal
    assert window.pipeline.model_worker.runs - runs == 1
    assert np.array_equal(_shown(window, "oblique"), _shown(window, "axial"))


def test_the_keyed_worker_runs_the_longest_waiting_keys_newest_request_and_twins_once(qtbot):
    from viewer.worker import KeyedLatestWinsWorker

    gate, ran, done = threading.Event(), [], []

    def run(request):
        gate.wait(5)
        ran.append(request)
        return request * 10
    worker = KeyedLatestWinsWorker(run, "test-keyed", priority=("current", "axial"), same=lambda a, b: a == b)
    worker.finished.connect(lambda key, rid, result: done.append((key, rid, result)))
    try:
        worker.submit("coronal", 1, 1)  # starts and waits at the gate
        qtbot.waitUntil(lambda: worker.busy_with(("coronal",)) and not worker._slots, timeout=5000)
        worker.submit("sagittal", 2, 2)
        worker.submit("axial", 3, 7)
        worker.submit("current", 4, 7)  # the same request as axial's: one run answers both
        worker.submit("sagittal", 5, 5)  # replaces 2, which never runs, and keeps sagittal's place first
        worker.submit("coronal", 6, 1)  # the same as the one running: answered from its result
        gate.set()
        qtbot.waitUntil(lambda: not worker.busy and len(done) == 5, timeout=5000)
        assert ran == [1, 5, 7] and worker.runs == 3
        assert done == [("coronal", 1, 10), ("sagittal", 5, 50), ("axial", 3, 70), ("current", 4, 70),
                        ("coronal", 6, 10)]
    finally:
        worker.stop()


def _letters_clear_of_the_image(panel, size: int) -> bool:
    """No orientation letter of ``panel`` overlaps the part of its image shown on screen."""
    view = panel.view
    corners = [view.mapViewToScene(QPointF(x, y)) for x, y in ((0, 0), (size, size))]
    image = QRectF(corners[0], corners[1]).normalized().intersected(view.sceneBoundingRect())
    boxes = [text.mapRectToScene(text.boundingRect()) for text in panel.letters.values()]
    return image.height() > 10 and all(box.width() > 0 and not box.intersects(image) for box in boxes)


def test_orientation_letters_never_cover_the_image_in_either_layout_even_zoomed_in(qtbot, window):
    size = window.state.size
    comparison = window.panels.panels
    for panel in comparison.values():
        assert _letters_clear_of_the_image(panel, size)
    comparison["mri"].view.setRange(xRange=(40, 80), yRange=(40, 80), padding=0.0)  # the image fills the views
    for panel in comparison.values():
        assert _letters_clear_of_the_image(panel, size)
        assert panel.view.sceneBoundingRect().contains(panel.letters["left"].mapRectToScene(
            panel.letters["left"].boundingRect()).center()) is False  # in the margin beside the view
    _three(qtbot, window)
    panels = window.layouts.ortho.panels
    for name, panel in panels.items():
        assert _letters_clear_of_the_image(panel, size), name
    panels["coronal"].view.setRange(xRange=(30, 60), yRange=(30, 60), padding=0.0)
    assert _letters_clear_of_the_image(panels["coronal"], size)


def test_the_three_views_use_the_windows_width_in_a_row_and_go_back_to_a_grid_when_it_is_squarish(qtbot, window):
    _three(qtbot, window)
    ortho = window.layouts.ortho
    views = [ortho.panels[name].view for name in ("axial", "coronal", "sagittal", "oblique")]
    window.resize(1600, 700)  # a wide central area: the four views side by side
    qtbot.waitUntil(lambda: ortho.columns == 4, timeout=TIMEOUT_MS)
    qtbot.wait(50)
    tops = [view.sceneBoundingRect().top() for view in views]
    lefts = [view.sceneBoundingRect().left() for view in views]
    assert max(tops) - min(tops) < 1 and lefts == sorted(lefts)
    side = min(views[0].sceneBoundingRect().width(), views[0].sceneBoundingRect().height())
    two_by_two = min(ortho.width() / 2, ortho.height() / 2 - 80)  # what a 2 × 2 grid could give a plane
    assert side > 1.3 * two_by_two
    assert _fills(views[0], window.state.size)
    window.resize(1000, 1100)  # squarish: 2 × 2
    qtbot.waitUntil(lambda: ortho.columns == 2, timeout=TIMEOUT_MS)
    qtbot.wait(50)
    rects = [view.sceneBoundingRect() for view in views]
    assert abs(rects[0].top() - rects[1].top()) < 1 and rects[2].top() > rects[0].bottom()
    assert abs(rects[0].width() - rects[1].width()) < 2
    assert ortho.best_columns(400, 2000) == 1 and ortho.best_columns(2000, 400) == 4


def test_a_click_on_a_views_title_switches_that_view_alone_between_mri_and_colour(qtbot, window, settings):
    _three(qtbot, window)
    layouts, ortho, state = window.layouts, window.layouts.ortho, window.state
    title = ortho.panels["coronal"].title
    qtbot.mouseClick(ortho.viewport(), Qt.MouseButton.LeftButton,
                     pos=ortho.mapFromScene(title.sceneBoundingRect().center()))
    qtbot.waitUntil(lambda: window.idle, timeout=TIMEOUT_MS)
    assert layouts.view_colour == {"axial": False, "coronal": True, "sagittal": False, "oblique": False}
    assert _shown(window, "coronal").ndim == 3 and "colorized" in title.text
    assert all(_shown(window, view).ndim == 2 for view in ("axial", "sagittal", "oblique"))
    assert not layouts.colour_action.isChecked()
    state.set_crosshair(state.crosshair + [3.0, 2.0, -4.0])  # the views follow, each in what it shows
    qtbot.waitUntil(lambda: window.idle, timeout=TIMEOUT_MS)
    expected = jobs.colorize(window.session.colorize_request(state.ortho_plane("coronal"))).rgb
    assert np.array_equal(_shown(window, "coronal"), expected)
    assert np.array_equal(_shown(window, "axial"), jobs.slice_mri(window.session.study, state.ortho_plane("axial")))
    assert settings.value("three_view_colour_views") == "coronal"
    layouts.colour_action.trigger()  # C: every view in colour
    qtbot.waitUntil(lambda: window.idle, timeout=TIMEOUT_MS)
    assert all(layouts.view_colour.values()) and all(_shown(window, v).ndim == 3 for v in layouts.view_colour)
    layouts.set_view_colour(("oblique",), False)  # one view back to the MRI: C is no longer "all"
    assert _shown(window, "oblique").ndim == 2 and not layouts.colour_action.isChecked()
    assert _shown(window, "axial").ndim == 3


def test_in_colour_a_crosshair_move_cuts_only_the_current_plane_on_the_ui_thread(qtbot, window, monkeypatch):
    """The views in colour are cut by the network worker and the axial view reuses the current
    plane's cut: the UI thread does one MRI cut per move instead of four."""
    _three(qtbot, window)
    window.layouts.set_colour(True)
    qtbot.waitUntil(lambda: window.idle, timeout=TIMEOUT_MS)
    ui_cuts = []
    cut = jobs.slice_mri

    def counted(study, plane):
        if threading.current_thread() is threading.main_thread():
            ui_cuts.append(plane)
        return cut(study, plane)
    monkeypatch.setattr(jobs, "slice_mri", counted)
    state = window.state
    state.set_crosshair(state.crosshair + [3.0, -2.0, 4.0])
    assert len(ui_cuts) == 1 and jobs.same_plane(ui_cuts[0], state.plane())
    qtbot.waitUntil(lambda: window.idle, timeout=TIMEOUT_MS)
    for view in ("axial", "coronal", "sagittal"):  # and every view still ends on its colorization
        expected = jobs.colorize(window.session.colorize_request(state.ortho_plane(view))).rgb
        assert np.array_equal(_shown(window, view), expected)
    plane = window.layouts.ortho_pipeline.planes["sagittal"]  # the readout cuts on demand
    window.layouts.ortho.hovered.emit("sagittal", 20.0, 30.0)
    assert window.readout.text() == "sagittal: " + window.session.readout(cut(window.session.study, plane), 20.0,
                                                                          30.0, plane)


def test_the_workers_run_below_the_ui_threads_priority_and_leave_it_alone(qtbot, phantom, model, settings):
    import os

    from viewer.worker import KeyedLatestWinsWorker

    if not hasattr(os, "setpriority"):
        return
    ui_nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    w = MainWindow(phantom, model, settings=settings, size=64)
    qtbot.addWidget(w)
    qtbot.waitUntil(lambda: w.idle, timeout=TIMEOUT_MS)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == ui_nice
    seen = []
    worker = KeyedLatestWinsWorker(lambda _r: os.getpriority(os.PRIO_PROCESS, threading.get_native_id()),
                                   "test-nice", nice=3)
    worker.finished.connect(lambda _key, _rid, result: seen.append(result))
    try:
        worker.submit("a", 1, None)
        qtbot.waitUntil(lambda: bool(seen), timeout=5000)
        assert seen == [min(ui_nice + 3, 19)]
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == ui_nice
    finally:
        worker.stop()
        w.close()


def test_the_metrics_wait_until_the_three_views_are_colorized(qtbot, window, model):
    """The current plane's metrics run when the network has no view left to colorize: a 100 ms
    network makes the views finish well after the metrics' 150 ms pause."""
    from test_viewer import _slow
    from viewer.network import LoadedNetwork

    _three(qtbot, window)
    window.layouts.set_colour(True)
    window.set_network(LoadedNetwork(_slow(model.colorizer), "slow tiny"))
    qtbot.waitUntil(lambda: window.idle, timeout=TIMEOUT_MS)
    qtbot.wait(200)
    busy_at_metrics = []
    window.pipeline.metrics_status.connect(
        lambda text: text == "computing…" and busy_at_metrics.append(window.pipeline.model_worker.busy))
    state = window.state
    state.set_crosshair(state.crosshair + [3.0, -2.0, 4.0])
    qtbot.waitUntil(lambda: window.idle and bool(busy_at_metrics), timeout=TIMEOUT_MS)
    assert busy_at_metrics == [False]



def _volume_ready(qtbot, w: MainWindow) -> None:
    qtbot.waitUntil(lambda: w.pipeline.colour_volume.ready and w.idle, timeout=TIMEOUT_MS)


def _count_network_runs(w: MainWindow, monkeypatch) -> list:
    """A list that gets an entry whenever the session's Colorizer runs the network on planes
    (the Colorizer is the module's: the count goes with the test)."""
    colorizer = w.session.network.colorizer
    runs: list = []
    run = colorizer.colorize_planes

    def counted(*args, **kwargs):
        runs.append(1)
        return run(*args, **kwargs)
    monkeypatch.setattr(colorizer, "colorize_planes", counted)
    return runs


def test_colour_in_the_three_views_is_cut_from_the_colorized_volume_once_made(qtbot, window, monkeypatch):
    """Showing colour, the layout has the whole MRI colorized in the background as the export
    does (`viewer.export.colorize_volume`); then a crosshair move shows every view's colour cut
    from that volume, with no network run: every view is a cut of the one exported volume, so a
    voxel has one colour in all of them."""
    from core.planes import sample
    from viewer.export import colorize_volume

    _three(qtbot, window, live=False)
    layouts, state, pipeline = window.layouts, window.state, window.pipeline
    progress = []
    pipeline.colour_volume.progressed.connect(progress.append)
    layouts.set_colour(True)
    _volume_ready(qtbot, window)
    assert progress and progress[-1] == 1000
    session = window.session
    exported = colorize_volume(session.study.mri, session.network.colorizer, state.output)
    assert np.array_equal(pipeline.colour_volume.volume.array, exported.array)
    network = _count_network_runs(window, monkeypatch)
    state.set_crosshair(state.crosshair + [3.0, -2.0, 4.0])
    qtbot.waitUntil(lambda: window.idle, timeout=TIMEOUT_MS)
    assert network == []  # the worker cut the colour; the model never ran
    for view in ("axial", "coronal", "sagittal"):
        plane = state.ortho_plane(view)
        expected = np.clip(np.rint(sample(exported, plane)[0].permute(1, 2, 0).numpy() * 255), 0, 255)
        assert np.abs(_shown(window, view).astype(int) - expected).max() <= 1
    assert np.array_equal(_shown(window, "oblique"), _shown(window, "axial"))  # the current plane is the axial view
    assert window.status.ms.text().endswith("ms/plane (volume)")  # the status bar says where the colour came from


def test_a_new_output_or_network_drops_the_colorized_volume_and_planes_go_live_until_the_next(qtbot, window, model):
    from viewer.network import LoadedNetwork

    _three(qtbot, window, live=False)
    window.layouts.set_colour(True)
    _volume_ready(qtbot, window)
    volume = window.pipeline.colour_volume
    old = volume.volume
    other = next(o for o in window.session.network.colorizer.outputs if o != window.state.output)
    window.state.set_output(other)
    assert not volume.ready  # dropped at once: the old output's colours are never cut again
    _volume_ready(qtbot, window)
    assert volume.volume is not old
    window.set_network(LoadedNetwork(Colorizer.untrained("tiny", seed=1, device="cpu"), "another tiny"))
    assert not volume.ready
    _volume_ready(qtbot, window)
    exported = colorize_volume(window.session.study.mri, window.session.network.colorizer, window.state.output)
    assert np.array_equal(volume.volume.array, exported.array)


def test_with_the_colorized_volume_switched_off_every_plane_is_colorized_live(qtbot, window, monkeypatch):
    _three(qtbot, window, live=False)
    layouts, state, pipeline = window.layouts, window.state, window.pipeline
    layouts.set_colour(True)
    _volume_ready(qtbot, window)
    action = next(a for a in layouts.actions if a.text().startswith("Colour from the colorized volume"))
    action.trigger()  # View ▸ off
    assert not pipeline.colour_volume.ready and window.settings.value("colour_volume") in ("false", False)
    network = _count_network_runs(window, monkeypatch)
    state.set_crosshair(state.crosshair + [0.0, 0.0, 5.0])
    qtbot.waitUntil(lambda: window.idle, timeout=TIMEOUT_MS)
    assert network
    expected = jobs.colorize(window.session.colorize_request(state.ortho_plane("axial"))).rgb
    assert np.array_equal(_shown(window, "axial"), expected)
    assert window.status.ms.text().endswith("ms/plane")  # the network's time again
