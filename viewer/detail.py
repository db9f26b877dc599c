"""Zoomed-in views re-cut for the screen: the visible part of a plane at the screen's pixel size.

A plane is cut at the framing's pixel size (256² for the whole body); zoomed in, pyqtgraph would
magnify those pixels into blocks. Once the view has rested for `DETAIL_MS`, `ZoomDetail` cuts
the region on screen again as a plane of its own (`detail_plane`: same axes, the visible
rectangle's centre, one plane pixel per screen pixel, at most `MAX_DETAIL` a side): the MRI on the
UI thread (trilinear, a few ms), the colorization and the cryosection on a worker through the same
functions as the whole plane (`viewer.jobs`; the `Colorizer` decides how the model sees the finer
plane). Each is drawn as an image over the plane's own, placed on the visible rectangle, so pan
and zoom move it with the plane until the next re-cut. A plane change hides it at once (it showed
the old plane); so does a change of network, output or volumes for what they affect.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QObject, QRectF, QTimer, pyqtSignal

from core.planes import Plane
from viewer import jobs
from viewer.session import Session
from viewer.study import Study
from viewer.worker import KeyedLatestWinsWorker

#: Quiet time after the last zoom, pan or plane change before the region is re-cut.
DETAIL_MS = 200
#: Re-cut only where a plane pixel spans at least this many screen pixels,
MIN_MAGNIFICATION = 1.25
#: and the view shows at most this share of the plane's width or height (the user has zoomed in:
#: a framed plane keeps its own pixels, so a plane change costs what it costs unzoomed).
MAX_SHARE = 0.8
#: Largest detail plane side (pixels): a 4K screen's panel is no wider.
MAX_DETAIL = 1024
#: Drawn over the plane's image and its label layer (10), under the crosshair (20); the detail's
#: own label layer just above it.
DETAIL_Z = 15


def detail_plane(plane: Plane, view_range, screen_px: tuple[float, float]) -> tuple[Plane, QRectF] | None:
    """The part of ``plane`` shown in a view as a plane of one pixel per screen pixel, and the
    rectangle it covers in the view's coordinates (plane pixel (r, c) spans [c, c+1] × [r, r+1]).

    ``view_range``: ((x0, x1), (y0, y1)) of the view; ``screen_px``: the view's (width, height) on
    screen. None where the view is not zoomed in (it shows more than `MAX_SHARE` of the plane
    across, or a plane pixel spans fewer than `MIN_MAGNIFICATION` screen pixels) or shows none of
    the plane.
    """
    (vx0, vx1), (vy0, vy1) = view_range
    x0, x1 = max(vx0, 0.0), min(vx1, float(plane.width))
    y0, y1 = max(vy0, 0.0), min(vy1, float(plane.height))
    if x1 - x0 < 1 or y1 - y0 < 1 or vx1 <= vx0 or vy1 <= vy0:
        return None
    if max((x1 - x0) / plane.width, (y1 - y0) / plane.height) > MAX_SHARE:
        return None
    magnification = screen_px[0] / (vx1 - vx0)  # screen pixels per plane pixel (square pixels: aspect locked)
    if magnification < MIN_MAGNIFICATION:
        return None
    scale = min(magnification, MAX_DETAIL / max(x1 - x0, y1 - y0))  # detail pixels per plane pixel
    width, height = max(int(round((x1 - x0) * scale)), 8), max(int(round((y1 - y0) * scale)), 8)
    x1, y1 = x0 + width / scale, y0 + height / scale  # whole detail pixels
    centre = plane.pixel_to_physical((y0 + y1) / 2 - 0.5, (x0 + x1) / 2 - 0.5)
    detail = Plane(centre, plane.u, plane.v, pixel_mm=plane.pixel_mm / scale, width=width, height=height)
    return detail, QRectF(x0, y0, x1 - x0, y1 - y0)


@dataclass(frozen=True)
class DetailRequest:
    """A detail plane's slower parts: its colorization (None: the view shows no colour) and its
    cryosection and labels (``side``)."""

    study: Study
    plane: Plane
    colorize: jobs.ColorizeRequest | None
    side: bool


@dataclass(frozen=True)
class DetailResult:
    colorized: jobs.Colorized | None
    side: jobs.SidePlanes | None


def run_detail(request: DetailRequest) -> DetailResult:
    """The worker's part (no Qt): colorize a detail plane and cut its cryosection and labels."""
    colorized = None if request.colorize is None else jobs.colorize(request.colorize)
    side = jobs.slice_side(request.study, request.plane) if request.side else None
    return DetailResult(colorized, side)


class ZoomDetail(QObject):
    """The detail layer of one view, or of views linked to it (the comparison's three panels).

    ``images``: the layers to draw, by kind ('mri', 'colorized', 'cryo'), each a view to add its
    detail image to; ``view`` is the one whose range and size decide the region. ``overlays``:
    the label layers of those views (by kind), whose look-up table, opacity and visibility the
    detail's own label layers copy. The owner calls
    `set_plane` whenever the plane under the view changes and `set_kinds` when the layers to
    colour change; ``changed`` fires when a detail image is shown or hidden (tests, screenshots).
    """

    changed = pyqtSignal()

    def __init__(self, session: Session, view: pg.ViewBox, images: dict[str, pg.ViewBox],
                 worker: KeyedLatestWinsWorker, key: str, parent: QObject | None = None,
                 overlays: dict[str, pg.ImageItem] | None = None):
        super().__init__(parent)
        self.session, self.view, self.worker, self.key = session, view, worker, key
        self.items: dict[str, pg.ImageItem] = {}
        self.labels: dict[str, tuple[pg.ImageItem, pg.ImageItem]] = {}  # kind: (detail labels, the view's own)
        self.lut_index: np.ndarray | None = None  # label id → row of the overlays' look-up table
        for kind, box in images.items():
            item = pg.ImageItem(axisOrder="row-major")
            item.setZValue(DETAIL_Z)
            item.hide()
            box.addItem(item, ignoreBounds=True)
            self.items[kind] = item
        for kind, base in (overlays or {}).items():
            item = pg.ImageItem(axisOrder="row-major")
            item.setZValue(DETAIL_Z + 1)
            item.hide()
            images[kind].addItem(item, ignoreBounds=True)
            self.labels[kind] = (item, base)
        self.kinds = set(images)  # the layers this view shows now
        self.plane: Plane | None = None
        self.detail: Plane | None = None  # the detail plane on screen or on its way
        self._generation = 0
        self._pending = False
        self._timer = QTimer(self, singleShot=True, interval=DETAIL_MS)
        self._timer.timeout.connect(self._recut)
        view.sigRangeChanged.connect(lambda *_: self._schedule())
        view.sigResized.connect(lambda *_: self._schedule())
        worker.finished.connect(self._on_result)
        worker.failed.connect(lambda key, _rid, _msg: key == self.key and self._settle())
        session.state.window_changed.connect(lambda *_: self._levels())

    # --- what the owner says -----------------------------------------------------------------
    def set_plane(self, plane: Plane | None) -> None:
        """The view now shows ``plane``: the detail of the old one goes, a new one follows at rest."""
        if plane is self.plane:
            return
        self.plane = plane
        self.clear()
        self._schedule()

    def set_kinds(self, kinds) -> None:
        """Which layers the view shows now ('mri', 'colorized', 'cryo'): re-cut for them."""
        kinds = set(kinds) & set(self.items)
        if kinds != self.kinds:
            self.kinds = kinds
            self.clear()
            self._schedule()

    def redo(self, kinds=("colorized", "cryo")) -> None:
        """What ``kinds`` show changed (network, output, volumes): hide them and cut again."""
        for kind in kinds:
            if kind in self.items:
                self.items[kind].hide()
        for item, _ in self.labels.values():
            item.hide()
        self.detail = None
        self._generation += 1
        self._schedule()

    def clear(self) -> None:
        self._generation += 1
        self.detail = None
        self._pending = False
        self.worker.cancel((self.key,))
        for item in self._all_items():
            item.hide()
        self.changed.emit()

    def _all_items(self) -> list[pg.ImageItem]:
        return [*self.items.values(), *(item for item, _ in self.labels.values())]

    # --- re-cutting --------------------------------------------------------------------------
    def _target(self) -> tuple[Plane, QRectF] | None:
        if self.plane is None or self.session.study is None or not self.view.isVisible():
            return None
        rect = self.view.boundingRect()
        return detail_plane(self.plane, self.view.viewRange(), (rect.width(), rect.height()))

    def _schedule(self) -> None:
        """Re-cut once the view has rested, if it is zoomed in (or a detail must go)."""
        if self._target() is not None or any(item.isVisible() for item in self._all_items()):
            self._timer.start()

    def _recut(self) -> None:
        target = self._target()
        if target is None:
            self.clear()
            return
        detail, rect = target
        if self.detail is not None and jobs.same_plane(detail, self.detail):
            return  # the region on screen is cut already
        self._generation += 1
        self.detail = detail
        session = self.session
        mri = jobs.slice_mri(session.study, detail)
        if "mri" in self.kinds:
            self._show("mri", mri, rect, session.state.levels)
        colour = "colorized" in self.kinds and session.network is not None
        side = ("cryo" in self.kinds and session.study.cryo is not None) or (
            bool(self.labels) and session.study.labels is not None)
        for kind, wanted in (("colorized", colour), ("cryo", side)):
            if kind in self.items and not wanted:
                self.items[kind].hide()
        for item, _ in self.labels.values():
            item.hide()
        if colour or side:
            request = DetailRequest(session.study, detail, session.colorize_request(detail, mri) if colour else None,
                                    side)
            self._pending = True
            self._rect = rect
            self.worker.submit(self.key, self._generation, request)
        self.changed.emit()

    def _on_result(self, key: str, generation: int, result: DetailResult) -> None:
        if key != self.key or generation != self._generation:
            return
        self._pending = False
        if result.colorized is not None and "colorized" in self.kinds:
            self._show("colorized", result.colorized.rgb, self._rect, None)
        side = result.side
        if side is not None and side.cryo is not None and "cryo" in self.kinds:
            self._show("cryo", side.cryo, self._rect, None)
        if side is not None and side.labels is not None and self.lut_index is not None:
            dense = self.lut_index[np.clip(side.labels, 0, len(self.lut_index) - 1)]
            for kind, (item, base) in self.labels.items():
                if self.items[kind].isVisible():  # over a detail image only
                    item.setLookupTable(base.lut)
                    item.setImage(dense, levels=(0, 255), autoLevels=False)
                    item.setRect(self._rect)
                    item.setOpacity(base.opacity())
                    item.setVisible(base.isVisible())
        self.changed.emit()

    def overlay_changed(self, opacity: float, visible: bool) -> None:
        """The label layer's opacity or visibility changed: the detail's follows."""
        for item, _ in self.labels.values():
            item.setOpacity(opacity)
            if not visible:
                item.hide()
        if visible and self.detail is not None:
            self.redo(("cryo",))  # brings the labels back with the cryosection

    def _settle(self) -> None:
        self._pending = False

    def _show(self, kind: str, image: np.ndarray, rect: QRectF, levels) -> None:
        item = self.items.get(kind)
        if item is None:
            return
        item.setImage(image, levels=levels, autoLevels=False)
        item.setRect(rect)
        item.show()

    def _levels(self) -> None:
        item = self.items.get("mri")
        if item is not None and item.isVisible():
            item.setLevels(self.session.state.levels)

    @property
    def idle(self) -> bool:
        """True when no re-cut is scheduled or on its way."""
        return not self._timer.isActive() and not self._pending

    def stop(self) -> None:
        self._timer.stop()

