"""A small navigator: axial, coronal and sagittal views of the MRI with the current plane drawn in.

Each view is cut through the current plane's centre; the plane appears as its intersection line
(bold) and as the outline of its field of view projected onto the view (thin), so a tilted plane
shows its tilt. Clicking a view moves the current plane along its normal through the clicked
point, the navigation idiom of Slicer's slice intersections. Views are 128² cuts, re-cut only
when their own position changes (scrolling an axial plane re-cuts the axial view alone).
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QColor

from core.planes import ORIENTATIONS, Plane
from viewer.data import Dataset
from viewer.jobs import slice_mri
from viewer.state import Frame

_SIZE = 128
_LINE_PEN = pg.mkPen(QColor(255, 220, 60), width=2)
_OUTLINE_PEN = pg.mkPen(QColor(255, 220, 60, 140), width=1, style=Qt.PenStyle.DashLine)


def _corners(plane: Plane) -> np.ndarray:
    """The four corners (4, 3) in mm of the plane's field of view, in drawing order."""
    h, w = plane.height - 0.5, plane.width - 0.5
    return np.array([plane.pixel_to_physical(r, c) for r, c in ((-0.5, -0.5), (-0.5, w), (h, w), (h, -0.5))])


def _intersection(plane: Plane, other: Plane) -> np.ndarray:
    """Endpoints (k, 3) in mm where ``plane``'s field of view crosses ``other`` (k = 0 when parallel or apart)."""
    corners = _corners(plane)
    side = (corners - other.center) @ other.normal
    points = []
    for i in range(4):
        a, b = corners[i], corners[(i + 1) % 4]
        sa, sb = side[i], side[(i + 1) % 4]
        if (sa < 0) != (sb < 0):
            points.append(a + (b - a) * (sa / (sa - sb)))
    return np.array(points[:2]).reshape(-1, 3)


class Navigator(pg.GraphicsLayoutWidget):
    """Three orthogonal MRI views with the current plane drawn in; emits ``clicked(point_mm)``."""

    clicked = pyqtSignal(object)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setBackground("k")
        self.setMinimumHeight(140)
        self.ci.layout.setSpacing(2)
        self._dataset: Dataset | None = None
        self._frame: Frame | None = None
        self._levels = (0.0, 1.0)
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

    def set_dataset(self, dataset: Dataset, frame: Frame, levels: tuple[float, float]) -> None:
        self._dataset, self._frame, self._levels = dataset, frame, levels
        self._planes.clear()

    def set_levels(self, levels: tuple[float, float]) -> None:
        self._levels = levels
        for image in self._images.values():
            image.setLevels(levels)

    def set_plane(self, plane: Plane) -> None:
        """Re-cut the views that moved and redraw the plane's line and outline in all three."""
        if self._dataset is None or self._frame is None:
            return
        for name in ORIENTATIONS:
            nav = self._view_plane(name, plane.center)
            if name not in self._planes or not np.allclose(nav.center, self._planes[name].center, atol=1e-3):
                self._planes[name] = nav
                self._images[name].setImage(slice_mri(self._dataset, nav), levels=self._levels, autoLevels=False)
            self._draw(name, plane)

    def _view_plane(self, name: str, through: np.ndarray) -> Plane:
        frame = self._frame
        base = Plane.preset(name, frame.center)
        center = frame.center + float((through - frame.center) @ base.normal) * base.normal
        extent = max(frame.pixel_mm.values()) * 256
        return Plane.preset(name, center, pixel_mm=extent / _SIZE, width=_SIZE, height=_SIZE)

    def _draw(self, name: str, plane: Plane) -> None:
        nav = self._planes[name]
        outline, line = self._curves[name]
        corners = [nav.physical_to_pixel(p) for p in _corners(plane)]
        corners.append(corners[0])
        outline.setData([c[1] + 0.5 for c in corners], [c[0] + 0.5 for c in corners])
        ends = [nav.physical_to_pixel(p) for p in _intersection(plane, nav)]
        line.setData([e[1] + 0.5 for e in ends], [e[0] + 0.5 for e in ends])

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
