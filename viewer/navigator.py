"""A small navigator: axial, coronal and sagittal localizers of the MRI with the current plane drawn in.

Like a radiologist's scout images, the three views are cut once per MRI, through the body's
centre, so scrolling costs no slicing here; the current plane appears as its intersection line
with each view (bold) and as the outline of its field of view projected onto it (thin), so a
tilted plane shows its tilt. Clicking a view moves the current plane along its normal through
the clicked point, the navigation idiom of Slicer's slice intersections.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QColor

from core.planes import ORIENTATIONS, Plane
from viewer.study import Study
from viewer.jobs import slice_mri
from viewer.state import Frame

_SIZE = 128
_LINE_PEN = pg.mkPen(QColor(255, 220, 60), width=2)
_OUTLINE_PEN = pg.mkPen(QColor(255, 220, 60, 140), width=1, style=Qt.PenStyle.DashLine)


_NORMALS = {name: np.cross(u, v) for name, (u, v) in ORIENTATIONS.items()}


def _corners(plane: Plane) -> np.ndarray:
    """The four corners (4, 3) in mm of the plane's field of view, in drawing order."""
    half_u = plane.u * plane.pixel_mm * plane.width / 2
    half_v = plane.v * plane.pixel_mm * plane.height / 2
    return plane.center + np.array([-half_u - half_v, half_u - half_v, half_u + half_v, half_v - half_u])


def _intersection(corners: np.ndarray, other: Plane, normal: np.ndarray) -> np.ndarray:
    """Endpoints (k, 3) in mm where a field of view (its corners) crosses ``other`` (k = 0 when apart)."""
    side = (corners - other.center) @ normal
    points = [corners[i] + (corners[j] - corners[i]) * (side[i] / (side[i] - side[j]))
              for i, j in ((0, 1), (1, 2), (2, 3), (3, 0)) if (side[i] < 0) != (side[j] < 0)]
    return np.array(points[:2]).reshape(-1, 3)


def _to_view(nav: Plane, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """View coordinates (x, y) of physical points projected onto a navigator plane."""
    d = points - nav.center
    return d @ nav.u / nav.pixel_mm + nav.width / 2, d @ nav.v / nav.pixel_mm + nav.height / 2


def _set_curve(curve: pg.PlotDataItem, x: np.ndarray, y: np.ndarray) -> None:
    """Update a curve only when it moved (an axial scroll leaves the axial view's outline in place)."""
    old_x, old_y = curve.getData()
    if old_x is not None and old_x.shape == x.shape and np.allclose(old_x, x) and np.allclose(old_y, y):
        return
    curve.setData(x, y)


class Navigator(pg.GraphicsLayoutWidget):
    """Three orthogonal MRI views with the current plane drawn in; emits ``clicked(point_mm)``."""

    clicked = pyqtSignal(object)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setBackground("k")
        self.setMinimumHeight(140)
        self.ci.layout.setSpacing(2)
        self._planes: dict[str, Plane] = {}
        self.views: dict[str, pg.ViewBox] = {}
        self._images: dict[str, pg.ImageItem] = {}
        self._curves: dict[str, tuple[pg.PlotDataItem, pg.PlotDataItem]] = {}
        for col, name in enumerate(ORIENTATIONS):
            self.addLabel(name, row=0, col=col, size="8pt")
            view = self.addViewBox(row=1, col=col, lockAspect=True, invertY=True, enableMenu=False)
            view.setMouseEnabled(False, False)
            image = pg.ImageItem(axisOrder="row-major")
            outline, line = pg.PlotDataItem(pen=_OUTLINE_PEN), pg.PlotDataItem(pen=_LINE_PEN)
            for item in (image, outline, line):
                view.addItem(item)
            view.setRange(xRange=(0, _SIZE), yRange=(0, _SIZE), padding=0.0)
            self.views[name], self._images[name], self._curves[name] = view, image, (outline, line)
        self.scene().sigMouseClicked.connect(self._mouse_clicked)

    def set_study(self, study: Study, frame: Frame, levels: tuple[float, float], plane_size: int) -> None:
        """Cut the three localizers, framed as the panels frame planes of ``plane_size`` pixels."""
        for name, image in self._images.items():
            self._planes[name] = nav = Plane.preset(name, frame.center, width=_SIZE, height=_SIZE,
                                                    pixel_mm=frame.pixel_mm[name] * plane_size / _SIZE)
            image.setImage(slice_mri(study, nav), levels=levels, autoLevels=False)

    def set_levels(self, levels: tuple[float, float]) -> None:
        for image in self._images.values():
            image.setLevels(levels)

    def set_plane(self, plane: Plane) -> None:
        """Draw the plane's intersection line and projected outline in the three views."""
        corners = _corners(plane)
        for name, nav in self._planes.items():
            for curve, points in zip(self._curves[name], (np.vstack([corners, corners[:1]]),
                                                          _intersection(corners, nav, _NORMALS[name]))):
                _set_curve(curve, *_to_view(nav, points))

    def _mouse_clicked(self, event) -> None:
        for name, view in self.views.items():
            if name in self._planes and view.sceneBoundingRect().contains(event.scenePos()):
                point = view.mapSceneToView(event.scenePos())
                self.clicked.emit(self._planes[name].pixel_to_physical(point.y() - 0.5, point.x() - 0.5))
                event.accept()
                return

    def plane_of(self, name: str) -> Plane | None:
        """The plane a navigator view currently shows (tests and click mapping)."""
        return self._planes.get(name)
