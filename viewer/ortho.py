"""The three-view layout's work and widget: axial, coronal and sagittal planes through the crosshair.

`OrthoPipeline` cuts the three orthogonal planes of `ViewerState.ortho_plane` on the UI thread
(~2 ms each) whenever the crosshair moves one of them, and, when the views show colour,
colorizes them on the plane pipeline's network worker, after the current plane and sharing its
run where a view is the current plane: a drag of the crosshair runs the network a few times per
view at half resolution and ends on the full planes, as `PlanePipeline` does for the main plane.
Showing colour, the layout also has the whole MRI colorized in the background
(`viewer.colour_volume`); once it is, the same worker cuts each view's colour from it (a few ms a
view) instead of running the network three times per crosshair step.
`OrthoPanels` shows those three and the current (possibly oblique) plane of the main pipeline
with the crosshair drawn in each, in the grid that gives the views the most room: four in a row
in a wide window, 2 × 2 in a squarish one, a column in a tall one.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QObject, Qt, QTimer, pyqtSignal

from core.planes import ORIENTATIONS, Plane
from viewer import jobs
from viewer.colour_volume import ColourVolume
from viewer.panels import LETTER_MARGINS, _Panel
from viewer.pipeline import SCROLL_MS, WORKER_NICE
from viewer.session import Session
from viewer.worker import KeyedLatestWinsWorker

#: The views of the three-view layout, in grid order (row-major).
VIEWS = (*ORIENTATIONS, "oblique")
#: Column counts the grid chooses from (four in a row, 2 × 2, one column).
GRID_COLUMNS = (4, 2, 1)
#: Height of a view's title (two lines of 10 pt) and its letter margins, in screen pixels: what a
#: grid row costs beside the image.
_TITLE_PX = 40


class OrthoPipeline(QObject):
    """MRI cuts and (optional) colorizations of the three orthogonal planes, newest request per view.

    ``enabled`` is off while another layout is shown (no work for views nobody sees);
    ``colour[view]`` makes the network colorize that view (each view shows the MRI or its colour). The views' requests go to the plane
    pipeline's network worker (`viewer.worker.KeyedLatestWinsWorker`), one slot per view beside
    the current plane's, which runs first: one network thread whatever the number of views
    (several threads of Python pre- and post-processing fought the UI thread for the interpreter
    lock and each other for the cores), and a view that is the current plane (an untilted preset)
    is colorized once for both. Results older than the newest shown for their view, or requested
    before the network or output changed, are dropped.
    """

    # orientation, MRI plane (H, W) in MRI units (None: not cut, the view shows colour), Plane, colour follows
    cut = pyqtSignal(str, object, object, bool)
    colorized = pyqtSignal(str, object)  # orientation, jobs.Colorized

    def __init__(self, session: Session, worker: KeyedLatestWinsWorker, colour_volume: ColourVolume,
                 parent: QObject | None = None,
                 current_cut: Callable[[], tuple[Plane | None, np.ndarray | None]] | None = None):
        super().__init__(parent)
        self.session = session
        self.colour_volume = colour_volume
        colour_volume.changed.connect(self.refresh)
        self._current_cut = current_cut  # the current plane and its MRI cut: a view that is that plane reuses it
        self.enabled = False
        self.colour = {name: False for name in ORIENTATIONS}
        self.planes: dict[str, Plane] = {}
        self.request_id = {name: 0 for name in ORIENTATIONS}
        self.shown = {name: 0 for name in ORIENTATIONS}
        self._floor = {name: 0 for name in ORIENTATIONS}  # per view: results of older requests are dropped
        self._next_id = 0
        self._last_change = {name: 0.0 for name in ORIENTATIONS}
        self._waiting: dict[str, tuple[int, jobs.ColorizeRequest]] = {}  # per view: the request not yet back
        self._preview_shown: dict[str, bool] = {}  # per view: a half-resolution preview is on screen
        self.worker = worker
        worker.finished.connect(self._on_colorized)
        worker.failed.connect(self._on_failed)
        self._refine = QTimer(self, singleShot=True, interval=SCROLL_MS)
        self._refine.timeout.connect(self._submit_full)
        state = session.state
        state.crosshair_changed.connect(lambda _point: self.update())
        state.output_changed.connect(lambda _output: self.refresh())
        session.network_changed.connect(lambda _network: self.refresh())
        session.volumes_changed.connect(lambda _study: self.refresh())
        session.study_opened.connect(lambda _study: self.refresh(update=False))  # its frame (and planes) follow

    def set_enabled(self, enabled: bool) -> None:
        """Start (all three views at once) or stop following the crosshair."""
        self.enabled = enabled
        self.refresh()

    def set_colour(self, colour: bool, views=ORIENTATIONS) -> None:
        """Colorize ``views`` (True) or show their MRI only; the other views keep what they show."""
        views = [name for name in views if self.colour[name] != colour]
        for name in views:
            self.colour[name] = colour
        if views:
            self.refresh(views=views)

    def refresh(self, update: bool = True, views=ORIENTATIONS) -> None:
        """Redo ``views`` (all): what they show changed (layout, colour, network, output, study);
        results requested before are dropped, requests not yet started are withdrawn."""
        for name in views:
            self._floor[name] = self._next_id + 1
            self.planes.pop(name, None)
            self._waiting.pop(name, None)
            self._preview_shown.pop(name, None)
        self.worker.cancel(views)
        if update:
            self.update()

    def update(self) -> None:
        """Cut (and colorize) the views whose plane the crosshair has moved."""
        session = self.session
        if not self.enabled or session.study is None:
            return
        if any(self.colour.values()):
            self.colour_volume.request()
        for name in ORIENTATIONS:
            plane = session.state.ortho_plane(name)
            old = self.planes.get(name)
            if old is not None and np.allclose(old.center, plane.center):
                continue
            self.planes[name] = plane
            self._request(name, plane)

    def _request(self, name: str, plane: Plane) -> None:
        """Cut the view's MRI on the UI thread where it is shown (an MRI view, or a colour view's
        first plane, shown until its colour comes) or is the current plane's cut already; a colour
        view's later planes are cut by the network worker, off the UI thread."""
        session = self.session
        colour = self.colour[name] and session.network is not None
        current, current_mri = self._current_cut() if self._current_cut is not None else (None, None)
        if current is not None and current_mri is not None and jobs.same_plane(current, plane):
            mri = current_mri
        elif not colour or name not in self._preview_shown:
            mri = jobs.slice_mri(session.study, plane)
        else:
            mri = None
        self._next_id += 1
        self.request_id[name] = self._next_id
        if colour:
            now = time.perf_counter()
            preview = (now - self._last_change[name]) * 1000 < SCROLL_MS
            self._last_change[name] = now
            request = session.colorize_request(plane, mri, preview=preview, cut_later=True,
                                               colour=self.colour_volume.usable)
            self._send(name, self._next_id, request)
            if request.preview:
                self._refine.start()
        else:
            self.shown[name] = self._next_id  # the MRI is all this view shows
        self.cut.emit(name, mri, plane, colour)

    def _send(self, name: str, rid: int, request: jobs.ColorizeRequest) -> None:
        self._waiting[name] = (rid, request)
        self.worker.submit(name, rid, request)

    def _submit_full(self) -> None:
        """The crosshair has rested: the views shown or waiting as previews get their full plane (same ids)."""
        session = self.session
        if session.network is None:
            return
        for name, plane in self.planes.items():
            if not self.colour[name]:
                continue
            waiting = self._waiting.get(name)
            if (waiting is not None and waiting[1].preview) or (waiting is None and self._preview_shown.get(name)):
                self._send(name, self.request_id[name],
                           session.colorize_request(plane, cut_later=True, colour=self.colour_volume.usable))

    def _on_colorized(self, name: str, rid: int, result: jobs.Colorized) -> None:
        if name not in self.shown:  # the current plane's result (viewer.pipeline)
            return
        waiting = self._waiting.get(name)
        answered = waiting is not None and (rid > waiting[0]
                                            or (rid, result.preview) == (waiting[0], waiting[1].preview))
        if answered:  # else a newer request (or the full plane after this preview) still waits
            del self._waiting[name]
        if rid < max(self.shown[name], self._floor[name]) or not self.colour[name]:
            return
        self.shown[name] = rid
        self._preview_shown[name] = result.preview
        self.colorized.emit(name, result)

    def _on_failed(self, name: str, rid: int, _message: str) -> None:
        """The view keeps its MRI (the current plane's pipeline reports the failure once)."""
        waiting = self._waiting.get(name)
        if waiting is not None and waiting[0] == rid:
            del self._waiting[name]
            self.shown[name] = max(self.shown[name], rid)

    @property
    def idle(self) -> bool:
        """True when every view shows its newest plane at full resolution and the worker is done with them."""
        return (not self._refine.isActive() and not self._waiting and not self.worker.busy_with(ORIENTATIONS)
                and not any(self._preview_shown.values())
                and all(self.shown[n] == self.request_id[n] for n in ORIENTATIONS))

    def stop(self) -> None:
        """Stop the refinement timer (the network worker is the plane pipeline's to stop)."""
        self._refine.stop()


class OrthoPanels(pg.GraphicsLayoutWidget):
    """Axial, coronal, sagittal and the current plane, each with the crosshair and orientation letters,
    in the grid (`GRID_COLUMNS`) where a square plane is largest on screen: re-chosen on resize.

    Emits ``clicked(view, row, col)`` (left click on a plane pixel) and ``scrolled(view, notches)``,
    which the layout turns into crosshair moves, and ``title_clicked(view)`` (left click on a
    view's title: MRI or colour for that view).
    """

    clicked = pyqtSignal(str, float, float)
    title_clicked = pyqtSignal(str)  # view: switch it between MRI and colour
    scrolled = pyqtSignal(str, float)
    hovered = pyqtSignal(str, float, float)  # view, plane pixel; ("", nan, nan) off the images

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setBackground("k")
        self.ci.layout.setSpacing(4)
        self.columns = 2
        self.panels = {name: _Panel(self.ci, i % 2, name, window_drag=False, overlay=False, row=2 * (i // 2))
                       for i, name in enumerate(VIEWS)}
        self.shapes: dict[str, tuple[int, int]] = {}
        for name, panel in self.panels.items():
            panel.title.setToolTip("click: this view shows the MRI or its colorization (C: all views)")
            panel.title.setCursor(Qt.CursorShape.PointingHandCursor)
            panel.view.scrolled.connect(lambda notches, n=name: self.scrolled.emit(n, notches))
            for moved in (panel.view.sigResized, panel.view.sigRangeChanged):  # letters stay at the image's edges
                moved.connect(lambda *_, n=name: self._place_texts(n))
        self.scene().sigMouseClicked.connect(self._mouse_clicked)
        self._proxy = pg.SignalProxy(self.scene().sigMouseMoved, rateLimit=60,
                                     slot=lambda event: self.hovered.emit(*self._pixel_at(event[0])))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if hasattr(self, "panels"):  # pyqtgraph resizes once while constructing
            self.arrange()

    @staticmethod
    def best_columns(width: float, height: float) -> int:
        """How many columns of `GRID_COLUMNS` show a square plane largest in a ``width`` × ``height`` area."""
        def side(columns: int) -> float:
            rows = -(-len(VIEWS) // columns)
            return min(width / columns, height / rows - _TITLE_PX - LETTER_MARGINS[1] - LETTER_MARGINS[3])
        return max(GRID_COLUMNS, key=side)

    def arrange(self) -> None:
        """Lay the views out in the best grid for the widget's size, equal columns."""
        columns = self.best_columns(self.viewport().width(), self.viewport().height())
        layout = self.ci.layout
        if columns != self.columns:
            self.columns = columns
            for i, panel in enumerate(self.panels.values()):
                row, col = 2 * (i // columns), i % columns
                for item, r in ((panel.title, row), (panel.frame, row + 1)):
                    self.ci.removeItem(item)
                    self.ci.addItem(item, row=r, col=col)
            used = 2 * -(-len(VIEWS) // columns)
            for row in range(2 * len(VIEWS)):  # the views' rows share the height; titles and empty rows take none
                layout.setRowStretchFactor(row, 1 if row % 2 and row < used else 0)
        left, _, right, _ = layout.getContentsMargins()
        width = (self.viewport().width() - left - right - layout.horizontalSpacing() * (columns - 1)) / columns
        for col in range(len(VIEWS)):
            layout.setColumnFixedWidth(col, max(width - 1, 10) if col < columns else 0)
        layout.activate()
        for name in self.shapes:
            self._place_texts(name)

    def set_image(self, name: str, image: np.ndarray, levels: tuple[float, float] | None) -> None:
        """An MRI plane (with ``levels``) or an RGB uint8 plane (``levels`` None) in view ``name``."""
        panel = self.panels[name]
        panel.image.setImage(image, levels=levels, autoLevels=False)
        shape = image.shape[:2]
        if self.shapes.get(name) != shape:  # frame each view once per plane size, then keep the user's zoom
            self.shapes[name] = shape
            panel.view.setRange(xRange=(0, shape[1]), yRange=(0, shape[0]), padding=0.0)
            self._place_texts(name)

    def reset_zoom(self) -> None:
        """Frame every view's plane again (R; a new study)."""
        for name, (h, w) in self.shapes.items():
            self.panels[name].view.setRange(xRange=(0, w), yRange=(0, h), padding=0.0)

    def _place_texts(self, name: str) -> None:
        if name in self.shapes:
            self.panels[name].place_texts(self.shapes[name])

    def set_levels(self, name: str, levels: tuple[float, float]) -> None:
        self.panels[name].image.setLevels(levels)

    def set_plane(self, name: str, plane: Plane, crosshair: np.ndarray) -> None:
        """Title, orientation letters and crosshair of view ``name``, which shows ``plane``."""
        panel = self.panels[name]
        for edge, text in plane.orientation_letters().items():
            panel.letters[edge].setText(text)
        self.set_crosshair(name, plane, crosshair)

    def set_crosshair(self, name: str, plane: Plane, crosshair: np.ndarray) -> None:
        row, col, _ = plane.physical_to_pixel(crosshair)
        vertical, horizontal = self.panels[name].lines
        vertical.setPos(col + 0.5)
        horizontal.setPos(row + 0.5)
        vertical.show()
        horizontal.show()

    def set_title(self, name: str, text: str) -> None:
        self.panels[name].heading = text
        self.panels[name].show_title()

    def _pixel_at(self, pos) -> tuple[str, float, float]:
        """The view and plane pixel (row, col) under scene position ``pos`` ("", nan, nan off the images)."""
        for name, panel in self.panels.items():
            shape = self.shapes.get(name)
            if shape is None or not panel.view.sceneBoundingRect().contains(pos):
                continue
            point = panel.view.mapSceneToView(pos)
            row, col = point.y() - 0.5, point.x() - 0.5
            if -0.5 <= row < shape[0] - 0.5 and -0.5 <= col < shape[1] - 0.5:
                return name, row, col
        return "", float("nan"), float("nan")

    def _mouse_clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        for view, panel in self.panels.items():
            if panel.title.sceneBoundingRect().contains(event.scenePos()):
                event.accept()
                self.title_clicked.emit(view)
                return
        name, row, col = self._pixel_at(event.scenePos())
        if name:
            event.accept()
            self.clicked.emit(name, row, col)
